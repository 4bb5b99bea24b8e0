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
``DomainEvent``                :class:`DomainEventsArrived` (batched,
                               in order, at most one per frame)
``ObjectEvent``                :class:`HostObjectChanged`
=============================  ==========================================

With several hosts, each host's service has a bridge of its own and every
message carries ``host``: the name of the service it came from
(``LibvirtService.name``; "" when vmtui shows one host).

Row changes and domain events are what floods during an event storm
(hundreds of VMs defined, started and undefined by a script): the bridge
keeps the latest state of each domain by UUID and the events in order, and
hands the app one batch of each per frame, so the messages the UI handles
(and the keys queued behind them) follow the frame rate, not the event rate.

The guest watch (``vmtui.core.consoles.guests.GuestWatch``) puts what it
learns about running guests on their rows through the service (so it comes
as :class:`DomainRowsChanged`); the seeds it removes come as
:class:`GuestSeedRemoved`.
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

    from ..core.consoles.guests import SeedRemoved

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


class DomainEventsArrived(Message):
    """libvirt domain events since the last such message, in the order they
    came (for notifications, consoles and clean-ups)."""

    def __init__(self, events: list[DomainEvent], host: str = "") -> None:
        super().__init__()
        self.events = events
        self.host = host


class HostObjectChanged(Message):
    """A storage pool or virtual network changed (``kind``: "pool" | "network")."""

    def __init__(self, kind: str, name: str, event: int, host: str = "") -> None:
        super().__init__()
        self.kind = kind
        self.name = name
        self.event = event
        self.host = host


class GuestSeedRemoved(Message):
    """The guest watch removed a cloud-init seed after cloud-init finished
    with it (``news.removal``), or could not (``news.error``)."""

    def __init__(self, news: "SeedRemoved", host: str = "") -> None:
        super().__init__()
        self.news = news
        self.host = host


class ServiceBridge:
    """Subscribes to a service and posts its news to ``app`` as messages."""

    def __init__(self, app: "App", service: "LibvirtService", frame: float = FRAME) -> None:
        self.app = app
        self.service = service
        self.frame = frame
        self._changed: dict[str, DomainInfo] = {}
        self._removed: dict[str, str] = {}
        self._events: list[DomainEvent] = []
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
            self._events.append(news)
            self._soon()
        elif isinstance(news, DomainsReset):
            # the full list supersedes the row changes waiting (not the events)
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
        if self._events:
            events, self._events = self._events, []
            self.app.post_message(DomainEventsArrived(events, self.service.name))
        if not self._changed and not self._removed:
            return
        changed, removed = list(self._changed.values()), self._removed
        self._changed, self._removed = {}, {}
        self.app.post_message(DomainRowsChanged(changed, removed, self.service.name))
