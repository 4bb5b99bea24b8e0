"""Stats ticks with figures: the test driver's bulk stats carry none.

:class:`FedConnection` wraps a test-driver connection (counting every call,
like ``CountingConnection``) and adds to each domain's ``getAllDomainStats``
record the counters a test sets; :class:`Feed` drives a service's ticks at
chosen times, so that the rates it computes are exact::

    feed = Feed()
    svc = LibvirtService(uri, stats_interval=3600, open_func=feed.opener)
    await svc.connect()
    feed.set(ALPHA, cpu_ns=0, rd=0, ...)
    await feed.tick(svc, at=10.0, monkeypatch)
"""

from __future__ import annotations

import types

import libvirt

from vmtui.core.connection import service as service_module
from vmtui.core.connection.counting import CountingConnection


class FedConnection(CountingConnection):
    def __init__(self, conn: libvirt.virConnect, figures: dict[str, dict]) -> None:
        super().__init__(conn)
        self.figures = figures

    def getAllDomainStats(self, stats: int = 0, flags: int = 0):  # noqa: N802 - libvirt's name
        self.counts["getAllDomainStats"] += 1
        return self._fed(self._conn.getAllDomainStats(stats, flags))

    def domainListGetStats(self, doms, stats: int = 0, flags: int = 0):  # noqa: N802 - libvirt's name
        self.counts["domainListGetStats"] += 1
        return self._fed(self._conn.domainListGetStats(doms, stats, flags))

    def _fed(self, records):
        out = []
        for dom, rec in records:
            extra = self.figures.get(dom.UUIDString())
            out.append((dom, {**rec, **extra} if extra else rec))
        return out


def record(*, cpu_ns: int, rd: int = 0, wr: int = 0, rx: int = 0, tx: int = 0,
           available_kib: int | None = None, unused_kib: int | None = None) -> dict:
    """A bulk stats record's counters: one disk, one NIC, the balloon."""
    rec = {"cpu.time": cpu_ns, "block.count": 1, "block.0.rd.bytes": rd, "block.0.wr.bytes": wr,
           "net.count": 1, "net.0.rx.bytes": rx, "net.0.tx.bytes": tx}
    if available_kib is not None and unused_kib is not None:
        rec["balloon.available"] = available_kib
        rec["balloon.unused"] = unused_kib
    return rec


class Feed:
    def __init__(self) -> None:
        self.figures: dict[str, dict] = {}
        self.connections: list[FedConnection] = []

    def opener(self, uri: str, readonly: bool) -> FedConnection:
        conn = libvirt.openReadOnly(uri) if readonly else libvirt.open(uri)
        fed = FedConnection(conn, self.figures)
        self.connections.append(fed)
        return fed

    @property
    def conn(self) -> FedConnection:
        return self.connections[-1]

    def set(self, uuid: str, **counters) -> None:
        self.figures[uuid] = record(**counters)

    async def tick(self, svc, at: float, monkeypatch) -> None:
        """One stats tick of ``svc`` that happens at monotonic time ``at``."""
        monkeypatch.setattr(service_module, "time", types.SimpleNamespace(monotonic=lambda: at))
        await svc.stats_tick()


def quiet_service(uri: str, feed: Feed | None = None, interval: float = 2.0) -> "service_module.LibvirtService":
    """A service whose history is sized for ``interval`` but that never
    ticks by itself (the test ticks, with :meth:`Feed.tick`)."""
    svc = service_module.LibvirtService(uri, stats_interval=interval, reconnect=False,
                                        open_func=feed.opener if feed is not None else None)
    svc.stats_interval = 3600
    return svc
