"""What the connection service says, as Textual messages.

The service (``vmtui.core.connection.service``) tells its listeners plain dataclasses.
:class:`ServiceBridge` listens and posts one typed Textual message per kind
of news to the app, which handles each with ``@on``:

=============================  ==========================================
service says                   the app receives
=============================  ==========================================
``ConnectionChanged``          :class:`ConnectionStateChanged`
``HostChanged``                :class:`HostInfoChanged`
``DomainsReset``               :class:`DomainsLoaded`
``DomainsChanged`` /           :class:`DomainRowsChanged` (coalesced, at
``DomainRemoved``              most one per frame)
``DomainEvent``                :class:`DomainEventArrived`
``ObjectEvent``                :class:`HostObjectChanged`
=============================  ==========================================

With several hosts, each host's service has a bridge of its own and every
message carries ``host``: the name of the service it came from
(``LibvirtService.name``; "" when vmtui shows one host).

Row changes are what floods during an event storm (hundreds of VMs defined,
started and undefined by a script): the bridge keeps the latest state of
each domain by UUID and hands the app one batch per frame, so the work the
UI does follows the frame rate, not the event rate.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from textual.message import Message

from ..core.connection.rows import DomainInfo, HostInfo
from ..core.connection.service import (
    ConnectionChanged,
    ConnState,
    DomainEvent,
    DomainRemoved,
    DomainsChanged,
    DomainsReset,
    HostChanged,
    ObjectEvent,
)

if TYPE_CHECKING:  # pragma: no cover
    from textual.app import App

    from ..core.connection.service import LibvirtService

FRAME = 1 / 30  # seconds: row changes reach the app at most this often


class ConnectionStateChanged(Message):
    """The connection went up, down, or is retrying."""

    def __init__(self, state: ConnState, message: str = "", host: str = "") -> None:
        super().__init__()
        self.state = state
        self.message = message
        self.host = host


class HostInfoChanged(Message):
    """Host facts or host CPU/memory figures changed."""

    def __init__(self, info: HostInfo, host: str = "") -> None:
        super().__init__()
        self.info = info
        self.host = host


class DomainsLoaded(Message):
    """The full list of domains, after (re)connecting."""

    def __init__(self, domains: list[DomainInfo], host: str = "") -> None:
        super().__init__()
        self.domains = domains
        self.host = host


class DomainRowsChanged(Message):
    """Domains that changed or appeared, and domains that went away
    (``removed``: UUID -> name), since the last such message."""

    def __init__(self, changed: list[DomainInfo], removed: dict[str, str], host: str = "") -> None:
        super().__init__()
        self.changed = changed
        self.removed = removed
        self.host = host


class DomainEventArrived(Message):
    """A libvirt domain event (for notifications, consoles and clean-ups)."""

    def __init__(self, event: DomainEvent, host: str = "") -> None:
        super().__init__()
        self.event = event
        self.host = host

    @property
    def uuid(self) -> str:
        return self.event.uuid

    @property
    def name(self) -> str:
        return self.event.name

    @property
    def kind(self) -> str:
        return self.event.event

    @property
    def detail(self) -> int:
        return self.event.detail


class HostObjectChanged(Message):
    """A storage pool or virtual network changed (``kind``: "pool" | "network")."""

    def __init__(self, kind: str, name: str, event: int, host: str = "") -> None:
        super().__init__()
        self.kind = kind
        self.name = name
        self.event = event
        self.host = host


class ServiceBridge:
    """Subscribes to a service and posts its news to ``app`` as messages."""

    def __init__(self, app: "App", service: "LibvirtService", frame: float = FRAME) -> None:
        self.app = app
        self.service = service
        self.frame = frame
        self._changed: dict[str, DomainInfo] = {}
        self._removed: dict[str, str] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._unsubscribe = service.subscribe(self)

    def close(self) -> None:
        self._unsubscribe()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    @property
    def host(self) -> str:
        """The tag of this bridge's messages: its service's name (now)."""
        return self.service.name

    def __call__(self, news: Any) -> None:
        post = self.app.post_message
        host = self.service.name
        if isinstance(news, DomainsChanged):
            for d in news.domains:
                self._removed.pop(d.uuid, None)
                self._changed[d.uuid] = d
            self._soon()
        elif isinstance(news, DomainRemoved):
            self._changed.pop(news.uuid, None)
            self._removed[news.uuid] = news.name
            self._soon()
        elif isinstance(news, DomainEvent):
            post(DomainEventArrived(news, host))
        elif isinstance(news, DomainsReset):
            # the full list supersedes whatever was waiting
            self._changed.clear()
            self._removed.clear()
            post(DomainsLoaded(news.domains, host))
        elif isinstance(news, HostChanged):
            post(HostInfoChanged(news.host, host))
        elif isinstance(news, ConnectionChanged):
            post(ConnectionStateChanged(news.state, news.message, host))
        elif isinstance(news, ObjectEvent):
            post(HostObjectChanged(news.kind, news.name, news.event, host))

    def _soon(self) -> None:
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.frame, self.flush)

    def flush(self) -> None:
        """Post the changes gathered so far (now)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._changed and not self._removed:
            return
        changed, removed = list(self._changed.values()), self._removed
        self._changed, self._removed = {}, {}
        self.app.post_message(DomainRowsChanged(changed, removed, self.service.name))
