"""A stand-in for :class:`vmtui.core.consoles.serial.ConsoleManager` (the test
driver has no console streams): sessions that tests feed by hand, and
recorded guest output replayed for snapshots and screenshots."""

from __future__ import annotations

from pathlib import Path

from vmtui.core.consoles import serial as C

#: A real boot of the tiny test guest (tests/guest.py, ``ignore_loglevel``)
#: and a few commands, as the serial console sent it.
BOOT_LOG = Path(__file__).resolve().parent / "data" / "console" / "boot.log"


class FakeSession:
    def __init__(self, uuid: str, name: str, scrollback: C.ScrollBack) -> None:
        self.uuid, self.name, self.scrollback = uuid, name, scrollback
        self.state = "open"
        self.close_reason: str | None = None
        self.sent: list[bytes] = []
        self._on_data = self._on_closed = None
        self.observers: list = []

    @property
    def is_open(self) -> bool:
        return self.state == "open"

    def attach_from(self, pos, on_data, on_closed=None):
        self._on_data, self._on_closed = on_data, on_closed
        return self.scrollback.since(pos), self.scrollback.total

    def detach(self) -> None:
        self._on_data = self._on_closed = None

    def attach(self, on_data, on_closed=None) -> bytes:
        self._on_data, self._on_closed = on_data, on_closed
        return self.scrollback.snapshot()

    def observe(self, on_data, on_closed=None):
        entry = (on_data, on_closed)
        self.observers.append(entry)
        return lambda: self.observers.remove(entry) if entry in self.observers else None

    def send(self, data: bytes) -> None:
        if self.is_open:
            self.sent.append(data)

    def emit(self, data: bytes) -> None:
        """Guest output (as the libvirt-events thread would deliver it)."""
        self.scrollback.append(data)
        if self._on_data:
            self._on_data(data)
        for on_data, _ in list(self.observers):
            on_data(data)

    def finish(self, reason: str) -> None:
        if not self.is_open:
            return
        self.state, self.close_reason = "closed", reason
        if self._on_closed:
            self._on_closed(reason)
        for _, on_closed in self.observers:
            if on_closed:
                on_closed(reason)
        self.observers = []

    def close(self) -> None:
        self.finish(C.CLOSED_BY_USER)


class FakeManager:
    """ConsoleManager's interface; ``fail[uuid]`` is raised by open() (once per entry)."""

    def __init__(self, service) -> None:
        self.service = service
        self.sessions: dict[str, FakeSession] = {}
        self.scrollbacks: dict[str, C.ScrollBack] = {}
        self.fail: dict[str, list[Exception]] = {}
        self.opens: list[tuple[str, bool]] = []
        self.watchers: dict[str, list] = {}

    def scrollback(self, uuid):
        return self.scrollbacks.setdefault(uuid, C.ScrollBack())

    def session(self, uuid):
        return self.sessions.get(uuid)

    async def open(self, uuid, *, force=False, dev_name=None):
        self.opens.append((uuid, force))
        errors = self.fail.get(uuid)
        if errors:
            raise errors.pop(0)
        s = self.sessions.get(uuid)
        if s is not None and s.is_open and not force:
            return s
        if s is not None:
            s.close()
        d = self.service.domains.get(uuid)
        s = self.sessions[uuid] = FakeSession(uuid, d.name if d else uuid, self.scrollback(uuid))
        for entry in self.watchers.get(uuid, ()):
            s.observe(*entry)
        return s

    def observe(self, uuid, on_data, on_closed=None):
        entry = (on_data, on_closed)
        self.watchers.setdefault(uuid, []).append(entry)
        s = self.sessions.get(uuid)
        if s is not None and s.is_open:
            s.observe(*entry)

        def stop():
            if entry in self.watchers.get(uuid, []):
                self.watchers[uuid].remove(entry)
            for sess in self.sessions.values():
                if entry in sess.observers:
                    sess.observers.remove(entry)
        return stop

    def close(self, uuid):
        s = self.sessions.pop(uuid, None)
        if s is not None:
            s.close()

    def forget(self, uuid):
        self.close(uuid)
        self.scrollbacks.pop(uuid, None)

    def close_all(self):
        for u in list(self.sessions):
            self.close(u)


def replay_manager(service, recordings: dict[str, bytes], closed: dict[str, str] | None = None) -> FakeManager:
    """A FakeManager whose consoles already hold ``recordings`` (uuid -> bytes);
    ``closed`` (uuid -> reason) makes that console end with that reason."""
    mgr = FakeManager(service)
    for uuid, data in recordings.items():
        mgr.scrollback(uuid).append(data)
    orig_open = mgr.open

    async def open_(uuid, *, force=False, dev_name=None):
        s = await orig_open(uuid, force=force, dev_name=dev_name)
        if closed and uuid in closed and s.is_open:
            s.state, s.close_reason = "closed", closed[uuid]
        return s

    mgr.open = open_
    return mgr
