"""The live figures of one VM on its details screen: CPU, memory, disk and
network now, with a graph (Textual's Sparkline) of the last few minutes.

Everything comes from what the service's stats tick already computed: the
VM's ``DomainStats`` and its stats history (core/connection/history.py). No
libvirt call: the app hands the screen each batch of changed rows
(``DomainRowsChanged``), and a timer at the stats interval moves the graphs
of a VM whose figures stayed the same.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.css.query import NoMatches
from textual.widgets import Sparkline, Static

from ..core.connection.history import CPU, DISK_READ, DISK_WRITE, HISTORY_SECONDS, MEM, NET_RX, NET_TX
from ..core.connection.rows import DomainInfo
from ..core.connection.service import LibvirtService
from ..core.sizes import fmt_kib, fmt_percent, fmt_rate

#: the rows: key, label
ROWS = (("cpu", "CPU"), ("mem", "Memory"), ("disk", "Disk"), ("net", "Network"))


def _sum(a: list[float | None], b: list[float | None]) -> list[float | None]:
    return [None if x is None and y is None else (x or 0.0) + (y or 0.0) for x, y in zip(a, b)]


def _peak(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return max(known) if known else None


def figures(d: DomainInfo) -> dict[str, str]:
    """What each row says now."""
    s = d.stats
    mem = "-" if s.mem_used_kib is None else f"{fmt_kib(s.mem_used_kib)} in use"
    if s.mem_used_kib is not None and d.memory_kib:
        mem += f" of {fmt_kib(d.memory_kib)}"
    return {
        "cpu": fmt_percent(s.cpu_percent),
        "mem": mem,
        "disk": "-" if s.disk_read_bps is None and s.disk_write_bps is None else
                f"read {fmt_rate(s.disk_read_bps)}, write {fmt_rate(s.disk_write_bps)}",
        "net": "-" if s.net_rx_bps is None and s.net_tx_bps is None else
               f"rx {fmt_rate(s.net_rx_bps)}, tx {fmt_rate(s.net_tx_bps)}",
    }


def series(d: DomainInfo) -> dict[str, list[float | None]]:
    """Each row's graph data, oldest first (empty without a history)."""
    ring = d.history
    if ring is None or not d.is_active:
        return {key: [] for key, _ in ROWS}
    return {
        "cpu": ring.series(CPU),
        "mem": ring.series(MEM),
        "disk": _sum(ring.series(DISK_READ), ring.series(DISK_WRITE)),
        "net": _sum(ring.series(NET_RX), ring.series(NET_TX)),
    }


def _fmt_peak(key: str, value: float | None) -> str:
    if value is None:
        return ""
    if key == "cpu":
        return "max " + fmt_percent(value)
    if key == "mem":
        return "max " + fmt_kib(int(value))
    return "max " + fmt_rate(value)


def graph_data(values: list[float | None], capacity: int) -> list[float]:
    """Sparkline data: the whole window (older ticks not seen yet are 0,
    so new figures come in from the right) after a 0, so that the graph
    starts at zero rather than at the smallest figure."""
    known = [0.0 if v is None else v for v in values]
    return [0.0] * (capacity - len(known) + 1) + known


class LiveFigures(Vertical):
    """The live section of the details screen."""

    def __init__(self, service: LibvirtService, uuid: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.service = service
        self.uuid = uuid

    def compose(self) -> ComposeResult:
        seconds = min(HISTORY_SECONDS, self.service.history.capacity * self.service.stats_interval)
        span = f"{seconds / 60:.0f} min" if seconds >= 60 else f"{seconds:.0f} s"
        yield Static(f"Live (graphs: the last {span})", classes="live-heading")
        yield Static("", id="live-note", classes="dim")
        for key, label in ROWS:
            with Horizontal(classes="live-row", id=f"live-{key}"):
                yield Static(label, classes="live-label")
                yield Static("-", classes="live-figure", id=f"fig-{key}")
                yield Sparkline([], id=f"spark-{key}", classes="live-graph")
                yield Static("", classes="live-peak", id=f"peak-{key}")

    def on_mount(self) -> None:
        self.call_after_refresh(lambda: self.show(self.service.domains.get(self.uuid)))
        # a VM whose figures stay the same gets no rows: its graphs move on anyway
        self.set_interval(self.service.stats_interval, self._tick)

    def _tick(self) -> None:
        d = self.service.domains.get(self.uuid)
        if d is not None and d.history is not None:
            self.show(d)

    def show(self, d: DomainInfo | None, gone: bool = False) -> None:
        """Show the figures of ``d`` (the VM's latest row)."""
        try:
            self._show(d, gone)
        except NoMatches:  # still composing (or closing): the next row or tick shows them
            pass

    def _show(self, d: DomainInfo | None, gone: bool) -> None:
        note = self.query_one("#live-note", Static)
        running = d is not None and d.is_active and not gone
        shown = running and d.history is not None  # a history from the first figure on
        for key, _ in ROWS:
            self.query_one(f"#live-{key}").display = shown
        note.display = not shown
        if not running:
            note.update("The VM is gone." if gone or d is None else
                        f"{d.state.capitalize()}: the figures show while it runs.")
            return
        if not shown:
            note.update("Waiting for the first figures (this driver may give none).")
            return
        now = figures(d)
        graphs = series(d)
        capacity = self.service.history.capacity
        for key, _ in ROWS:
            self.query_one(f"#fig-{key}", Static).update(now[key])
            values = graphs[key]
            self.query_one(f"#spark-{key}", Sparkline).data = graph_data(values, capacity) if values else []
            self.query_one(f"#peak-{key}", Static).update(_fmt_peak(key, _peak(values)))
