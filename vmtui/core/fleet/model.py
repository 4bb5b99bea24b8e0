"""The fleet's list, without the widget: row keys, matching, marks, host states.

A row is one VM of one host. After a migration the same UUID can be on two
hosts for a moment (defined on the destination before the source's copy is
gone), so rows are keyed by host and UUID: :func:`row_key`. With one host
(``DomainInfo.host`` is "") the key is the UUID alone, as it always was.

Marks (:class:`Marks`) are kept by row key, apart from what is shown: a
filter hides a marked VM, it stays marked; a VM that leaves its host (deleted,
migrated away) loses its mark.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable, Iterator

from ..connection.rows import DomainInfo

if TYPE_CHECKING:  # pragma: no cover
    from ..connection.service import LibvirtService

SEPARATOR = "@"  # UUIDs never hold one


def key_of(host: str, uuid: str) -> str:
    return f"{uuid}{SEPARATOR}{host}" if host else uuid


def row_key(d: DomainInfo) -> str:
    """The list's key of ``d``: its UUID, and its host when there are several."""
    return key_of(d.host, d.uuid)


def split_key(key: str) -> tuple[str, str]:
    """(host, uuid) of a row key."""
    uuid, _, host = key.partition(SEPARATOR)
    return host, uuid


def matches_text(d: DomainInfo, needle: str) -> bool:
    """``/`` matches the name, the title and the host's name (any case)."""
    if not needle:
        return True
    needle = needle.lower()
    return needle in d.name.lower() or needle in d.title.lower() or (bool(d.host) and needle in d.host.lower())


class Marks:
    """Marked rows, by key, in the order they were marked."""

    def __init__(self) -> None:
        self._keys: dict[str, None] = {}

    def __contains__(self, key: object) -> bool:
        return key in self._keys

    def __len__(self) -> int:
        return len(self._keys)

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._keys))

    def toggle(self, key: str) -> bool:
        """Mark or unmark ``key``; True when it is marked now."""
        if key in self._keys:
            del self._keys[key]
            return False
        self._keys[key] = None
        return True

    def mark(self, keys: Iterable[str]) -> list[str]:
        """Mark ``keys``; the ones that were not marked before."""
        new = [k for k in keys if k not in self._keys]
        self._keys.update(dict.fromkeys(new))
        return new

    def unmark(self, keys: Iterable[str]) -> list[str]:
        gone = [k for k in keys if k in self._keys]
        for k in gone:
            del self._keys[k]
        return gone

    def clear(self) -> list[str]:
        gone, self._keys = list(self._keys), {}
        return gone

    def forget_missing(self, present: Iterable[str] | dict) -> list[str]:
        """Drop the marks of rows that are gone (``present``: the keys there are)."""
        here = present if isinstance(present, (dict, set, frozenset)) else set(present)
        return self.unmark([k for k in self._keys if k not in here])

    def marked(self, rows: dict[str, DomainInfo]) -> list[DomainInfo]:
        """The marked VMs that ``rows`` (key -> VM) hold, in marking order."""
        return [rows[k] for k in self._keys if k in rows]


# --- hosts -----------------------------------------------------------------

@dataclass(frozen=True)
class HostState:
    """A host's line in the status bar: its name and one word for its state."""

    name: str
    word: str  # connected, connecting, retrying, read-only, auth failed, not connected
    problem: str = ""  # why it is not connected, when known

    @property
    def ok(self) -> bool:
        return self.word in ("connected", "read-only")


def host_state(service: "LibvirtService", error: str = "") -> HostState:
    """What the status line says about ``service``'s host."""
    from ..connection.service import ConnState

    state = service.state
    name = service.name or service.display_uri
    if service.auth_problem and state is not ConnState.CONNECTED:
        return HostState(name, "auth failed", service.auth_problem)
    if state is ConnState.CONNECTED:
        return HostState(name, "read-only" if service.readonly else "connected")
    if state is ConnState.CONNECTING:
        return HostState(name, "connecting")
    if state is ConnState.DISCONNECTED:
        return HostState(name, "retrying", error)
    return HostState(name, "not connected", error)
