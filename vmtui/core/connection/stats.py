"""The stats tick's work, done on the worker thread that made the call.

One ``getAllDomainStats`` call a tick returns a record per domain. This
module turns records into rows' facts (state, vCPUs, memory, rates) and
remembers what it said last time, so that the event loop only hears about
domains whose facts changed: a tick on a quiet host of 5,000 domains hands
the loop nothing. A record identical to the last one of a domain whose
rates were already zero is skipped without being read.

Ticks read the running domains only (inactive ones have no figures; their
changes arrive as events); every :data:`FULL_EVERY`-th tick reads every
domain, the safety net for events missed. When the UI says which domains it
shows (the rows on screen, an open details screen), the other ticks read
only those, and every :data:`SWEEP_EVERY`-th tick all the running ones: on a
host of thousands of running domains the figures nobody looks at are read
one tick in five. Nothing here talks to libvirt: the service hands the
records in, and :meth:`StatsState.domains_for` the ``virDomain`` objects a
close tick asks about (those of the last pass: no lookups).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Iterable, NamedTuple

from .rows import ACTIVE_STATES, DomainStats

FULL_EVERY = 15  # ticks: one in this many reads every domain, not only the running ones
SWEEP_EVERY = 5  # ticks: one in this many reads every running domain, not only those shown


@dataclass(slots=True)
class Sample:
    when: float
    cpu_time: int | None
    rd: int | None
    wr: int | None
    rx: int | None
    tx: int | None


class Facts(NamedTuple):
    """What a record says about a domain's row (None: the record did not say)."""

    id: int | None
    state: int | None
    reason: int
    vcpus: int | None
    memory_kib: int | None
    max_memory_kib: int | None
    stats: DomainStats


class Tick(NamedTuple):
    """One pass: ``changed`` holds (uuid, facts) of domains whose facts
    differ from the last pass's; ``seen`` the UUIDs the call returned, only
    when they differ from those of the last pass of the same kind (None:
    same as before); ``full`` whether every domain was read."""

    changed: list[tuple[str, Facts]]
    seen: frozenset[str] | None
    full: bool


@lru_cache(maxsize=512)
def _keys(prefix: str, n: int, suffix: str) -> tuple[str, ...]:
    return tuple(f"{prefix}.{i}.{suffix}" for i in range(n))


def sum_keys(rec: dict, prefix: str, count_key: str, suffix: str) -> int | None:
    n = rec.get(count_key)
    if n is None:
        return None
    total, seen = 0, False
    get = rec.get
    for key in _keys(prefix, int(n), suffix):
        v = get(key)
        if v is not None:
            total += int(v)
            seen = True
    return total if seen else None


def rate(new: int | None, old: int | None, dt: float) -> float | None:
    if new is None or old is None or dt <= 0 or new < old:
        return None
    return (new - old) / dt


def _moving(stats: DomainStats) -> bool:
    """Any rate above zero: the same record again would bring it to zero."""
    return bool(stats.cpu_percent or stats.disk_read_bps or stats.disk_write_bps or stats.net_rx_bps
                or stats.net_tx_bps)


class _Entry:
    """What the last pass said of one domain."""

    __slots__ = ("uuid", "sig", "facts", "moving", "dom")

    def __init__(self, uuid: str, dom: Any) -> None:
        self.uuid = uuid
        self.dom = dom  # the virDomain of the last pass (a close tick asks libvirt about it)
        self.sig: int | None = None  # a fingerprint of its last record
        self.facts: Facts | None = None
        self.moving = False  # a rate above zero: the same record again brings it to zero


class StatsState:
    """What the passes remember between ticks. One pass runs at a time (the
    service awaits each tick); the loop only ever calls :meth:`forget`."""

    def __init__(self) -> None:
        self.samples: dict[str, Sample] = {}
        self.entries: dict[bytes, _Entry] = {}  # by raw UUID (what virDomain.UUID() gives)
        self.by_uuid: dict[str, _Entry] = {}
        self.seen: dict[bool, frozenset[str]] = {}
        self.conn: Any = None  # the connection whose virDomain objects the entries hold

    def domains_for(self, conn: Any, uuids: Iterable[str]) -> list[Any] | None:
        """The ``virDomain`` objects of ``uuids`` from the last passes on
        ``conn``, for a close tick; None when one is not known (a domain
        started since the last sweep: the tick sweeps instead)."""
        if conn is not self.conn:
            return None
        by_uuid, doms = self.by_uuid, []
        for uuid in uuids:
            e = by_uuid.get(uuid)
            if e is None or e.dom is None:
                return None
            doms.append(e.dom)
        return doms

    def forget(self, uuid: str, gone: bool = False) -> None:
        """The row was read anew otherwise (after an event): the next record
        is compared with nothing. ``gone``: the domain is, its last sample too."""
        e = self.by_uuid.get(uuid)
        if e is not None:
            e.sig = e.facts = None
            if gone:
                e.moving = False
        if gone:
            self.samples.pop(uuid, None)

    def compute(self, uuid: str, vcpus: int, rec: dict, now: float) -> DomainStats:
        """Rates from this record and the domain's last sample."""
        state = rec.get("state.state")
        if state is not None and int(state) not in ACTIVE_STATES:
            self.samples.pop(uuid, None)
            return DomainStats()
        sample = Sample(
            when=now,
            cpu_time=rec.get("cpu.time"),
            rd=sum_keys(rec, "block", "block.count", "rd.bytes"),
            wr=sum_keys(rec, "block", "block.count", "wr.bytes"),
            rx=sum_keys(rec, "net", "net.count", "rx.bytes"),
            tx=sum_keys(rec, "net", "net.count", "tx.bytes"),
        )
        old = self.samples.get(uuid)
        self.samples[uuid] = sample
        stats = DomainStats()
        if "balloon.available" in rec and "balloon.unused" in rec:
            stats.mem_used_kib = int(rec["balloon.available"]) - int(rec["balloon.unused"])
        elif "balloon.rss" in rec:
            stats.mem_used_kib = int(rec["balloon.rss"])
        if old is None:
            return stats
        dt = now - old.when
        cpu = rate(sample.cpu_time, old.cpu_time, dt)
        if cpu is not None:
            stats.cpu_percent = round(min(100.0, cpu / 1e9 * 100.0 / max(1, vcpus)), 1)
        stats.disk_read_bps = rate(sample.rd, old.rd, dt)
        stats.disk_write_bps = rate(sample.wr, old.wr, dt)
        stats.net_rx_bps = rate(sample.rx, old.rx, dt)
        stats.net_tx_bps = rate(sample.tx, old.tx, dt)
        return stats

    def facts_of(self, uuid: str, dom_id: int, rec: dict, now: float, vcpus_known: int) -> Facts:
        state = rec.get("state.state")
        state = None if state is None else int(state)
        vcpus = rec.get("vcpu.current")
        vcpus = None if vcpus is None else int(vcpus)
        maximum = rec.get("balloon.maximum")
        maximum = None if maximum is None else int(maximum)
        memory = None if maximum is None else int(rec.get("balloon.current", maximum))
        stats = self.compute(uuid, vcpus or vcpus_known, rec, now)
        active = state in ACTIVE_STATES if state is not None else dom_id >= 0
        return Facts(dom_id if dom_id >= 0 and active else None, state, int(rec.get("state.reason", 0)),
                     vcpus, memory, maximum, stats)

    def run(self, records: Iterable[tuple[Any, dict]], now: float, full: bool, vcpus_of: Any = None,
            listed: bool = True, conn: Any = None) -> Tick:
        """Turn one call's (virDomain, record) pairs into a Tick.
        ``vcpus_of(uuid)`` gives the vCPU count a record lacks (for CPU%).
        ``listed``: the call listed the domains (all, or all running): the
        UUIDs it returned are compared with the last such pass's; a close
        tick's (some domains only) are not. ``conn``: the connection the
        records came from (its virDomain objects are kept for close ticks).

        A domain is known by its raw UUID (``UUID()``: cheaper than the
        formatted one, which is asked once per domain); its ID is read only
        when its record changed (a restart changes the record, and sends
        events)."""
        changed: list[tuple[str, Facts]] = []
        seen: list[str] = []
        entries, by_uuid = self.entries, self.by_uuid
        if conn is not None and conn is not self.conn:
            for e in entries.values():
                e.dom = None  # of a connection given up: never asked about again
            self.conn = conn
        for dom, rec in records:
            raw = dom.UUID()
            e = entries.get(raw)
            if e is None:
                e = entries[raw] = _Entry(dom.UUIDString(), dom)
                by_uuid[e.uuid] = e
            elif e.dom is None:
                e.dom = dom
            uuid = e.uuid
            seen.append(uuid)
            sig = hash(tuple(rec.items()))
            if sig == e.sig and not e.moving:
                continue  # the same record, and nothing was moving: nothing changes
            e.sig = sig
            known = vcpus_of(uuid) if vcpus_of is not None else 0
            new = self.facts_of(uuid, dom.ID(), rec, now, known or 0)
            e.moving = _moving(new.stats)
            if e.facts != new:
                e.facts = new
                changed.append((uuid, new))
        if not listed:
            return Tick(changed, None, False)
        now_seen = frozenset(seen)
        before = self.seen.get(full)
        self.seen[full] = now_seen
        if now_seen != before:
            # gone from the host (or, for a pass of running domains, stopped):
            # what is remembered of them would only be stale when they return
            if full:
                for raw, e in [(r, e) for r, e in entries.items() if e.uuid not in now_seen]:
                    del entries[raw]
                    by_uuid.pop(e.uuid, None)
                    self.samples.pop(e.uuid, None)
            elif before:
                for uuid in before - now_seen:
                    self.forget(uuid, gone=True)
        return Tick(changed, None if now_seen == before else now_seen, full)
