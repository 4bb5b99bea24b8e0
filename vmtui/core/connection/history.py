"""The last few minutes of each running domain's figures, for the graphs.

Fed by the stats tick (:meth:`.service.LibvirtService.stats_tick`) with the
figures it already computed: no libvirt call of its own.

* One :class:`Ring` per running domain: a single ``array('f')`` of
  ``capacity`` samples of the six figures of :data:`SERIES` (4 bytes each:
  150 samples, 5 minutes at the default 2 s tick, are 3.6 KB a domain). A
  domain that stops or goes away loses its ring.
* A tick writes only the domains whose figures changed. A domain whose
  figures did not change repeats its last sample: the ticks it missed are
  filled in on its next write, and read as its last sample until then. So a
  tick costs O(changed domains), whatever the number of idle ones.
* Unknown figures (no balloon driver, no network interface, the first tick
  after a start) are NaN in the ring and None when read.
"""

from __future__ import annotations

from array import array
from math import ceil, isnan
from typing import Iterable

HISTORY_SECONDS = 300.0  # what the graphs cover
MAX_SAMPLES = 150  # whatever the tick: a short tick covers less time
#: DomainStats fields, in the order of a sample
SERIES = ("cpu_percent", "mem_used_kib", "disk_read_bps", "disk_write_bps", "net_rx_bps", "net_tx_bps")
WIDTH = len(SERIES)
CPU, MEM, DISK_READ, DISK_WRITE, NET_RX, NET_TX = range(WIDTH)
NAN = float("nan")


def capacity_for(interval: float) -> int:
    """Samples kept for a stats tick of ``interval`` seconds."""
    if interval <= 0:
        return MAX_SAMPLES
    return max(2, min(MAX_SAMPLES, ceil(HISTORY_SECONDS / interval)))


class Clock:
    """The number of stats ticks so far; shared by a history and its rings."""

    __slots__ = ("tick",)

    def __init__(self) -> None:
        self.tick = 0


class Ring:
    """One domain's samples, tick ``t`` at row ``t % capacity``."""

    __slots__ = ("clock", "capacity", "data", "first", "last")

    def __init__(self, clock: Clock, capacity: int) -> None:
        self.clock = clock
        self.capacity = capacity
        self.data = array("f", bytes(4 * WIDTH * capacity))
        self.first = clock.tick  # the tick of the first sample
        self.last = clock.tick  # the tick of the latest sample written

    def _row(self, tick: int) -> tuple[float, ...]:
        at = (tick % self.capacity) * WIDTH
        return tuple(self.data[at:at + WIDTH])

    def put(self, values: Iterable[float | None]) -> None:
        """The sample of the current tick (None: unknown)."""
        now, cap, data = self.clock.tick, self.capacity, self.data
        if now > self.last + 1:  # the ticks in between repeated the last sample
            row = self._row(self.last)
            for t in range(max(self.last + 1, now - cap + 1), now):
                at = (t % cap) * WIDTH
                data[at:at + WIDTH] = array("f", row)
        at = (now % cap) * WIDTH
        for i, v in enumerate(values):
            data[at + i] = NAN if v is None else v
        self.last = now

    def series(self, index: int, count: int | None = None) -> list[float | None]:
        """The figure ``index`` (see :data:`SERIES`) over the last ``count``
        ticks (default: all kept), oldest first; fewer when the domain has
        not been running that long."""
        now, cap = self.clock.tick, self.capacity
        count = cap if count is None else min(count, cap)
        start = max(self.first, now - count + 1)
        data, last = self.data, self.last
        out: list[float | None] = []
        for t in range(start, now + 1):
            v = data[(min(t, last) % cap) * WIDTH + index]
            out.append(None if isnan(v) else v)
        return out

    def __len__(self) -> int:
        """Ticks covered so far (at most the capacity)."""
        return min(self.capacity, self.clock.tick - self.first + 1)


class StatsHistory:
    """The rings of the running domains, by UUID."""

    __slots__ = ("clock", "capacity", "rings")

    def __init__(self, capacity: int = MAX_SAMPLES) -> None:
        self.clock = Clock()
        self.capacity = capacity
        self.rings: dict[str, Ring] = {}

    @property
    def tick(self) -> int:
        return self.clock.tick

    def advance(self) -> None:
        """A new stats tick begins."""
        self.clock.tick += 1

    def record(self, uuid: str, stats) -> Ring:
        """The figures of ``stats`` (a DomainStats) for this tick."""
        ring = self.rings.get(uuid)
        if ring is None:
            ring = self.rings[uuid] = Ring(self.clock, self.capacity)
        ring.put([getattr(stats, name) for name in SERIES])
        return ring

    def get(self, uuid: str) -> Ring | None:
        return self.rings.get(uuid)

    def drop(self, uuid: str) -> None:
        self.rings.pop(uuid, None)

    def clear(self) -> None:
        self.rings.clear()

    def __len__(self) -> int:
        return len(self.rings)
