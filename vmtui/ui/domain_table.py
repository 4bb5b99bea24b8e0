"""The domain list: a DataTable keyed by UUID whose rows change in place."""

from __future__ import annotations

from typing import Callable, Iterable

from rich.text import Text
from textual.widgets import DataTable
from textual.widgets.data_table import CellDoesNotExist, RowDoesNotExist

from ..core.model import CRASHED, IDLE, IN_SHUTDOWN, PAUSED, PMSUSPENDED, RUNNING, SHUT_OFF, DomainInfo
from ..core.sizes import fmt_kib, fmt_percent, fmt_rate

STATE_STYLE = {
    RUNNING: "green", IDLE: "green", PAUSED: "yellow", IN_SHUTDOWN: "yellow",
    SHUT_OFF: "dim", CRASHED: "bold red", PMSUSPENDED: "cyan",
}

# The state filter cycles through these: (label, predicate).
STATE_FILTERS: list[tuple[str, Callable[[DomainInfo], bool]]] = [
    ("all", lambda d: True),
    ("running", lambda d: d.is_running),
    ("shut off", lambda d: d.is_shut_off),
    ("paused", lambda d: d.is_paused),
]


class Cell:
    """A rendered cell that sorts by its raw value."""

    __slots__ = ("text", "key")

    def __init__(self, text: Text | str, key: object) -> None:
        self.text = text if isinstance(text, Text) else Text(text)
        self.key = key

    def __rich__(self) -> Text:
        return self.text

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Cell) and self.key == other.key and self.text == other.text

    def __hash__(self) -> int:
        return hash(self.key)

    def __str__(self) -> str:
        return self.text.plain


def _io(a: float | None, b: float | None) -> tuple[str, float]:
    if a is None and b is None:
        return "-", -1.0
    total = (a or 0.0) + (b or 0.0)
    return fmt_rate(total), total


def _num(text: str) -> Text:
    return Text(text, justify="right")


# column key -> (label, cell builder)
COLUMNS: list[tuple[str, str, Callable[[DomainInfo], Cell]]] = [
    ("name", "Name", lambda d: Cell(Text(d.name, style="bold" if d.is_active else ""), d.name.lower())),
    ("state", "State", lambda d: Cell(Text(d.state, style=STATE_STYLE.get(d.state_code, "")), (d.state_code, d.name))),
    ("vcpus", "vCPU", lambda d: Cell(_num(str(d.vcpus) if d.vcpus else "-"), d.vcpus)),
    ("memory", "Memory", lambda d: Cell(_num(fmt_kib(d.memory_kib) if d.memory_kib else "-"), d.memory_kib)),
    ("cpu", "CPU%", lambda d: Cell(_num(fmt_percent(d.stats.cpu_percent)), d.stats.cpu_percent or -1.0)),
    ("disk", "Disk I/O", lambda d: Cell(_num(_io(d.stats.disk_read_bps, d.stats.disk_write_bps)[0]),
                                        _io(d.stats.disk_read_bps, d.stats.disk_write_bps)[1])),
    ("net", "Net I/O", lambda d: Cell(_num(_io(d.stats.net_rx_bps, d.stats.net_tx_bps)[0]),
                                      _io(d.stats.net_rx_bps, d.stats.net_tx_bps)[1])),
    ("title", "Title", lambda d: Cell(Text(d.title, style="italic"), d.title.lower())),
]
COLUMN_KEYS = [c[0] for c in COLUMNS]
SORTABLE = ["name", "state", "cpu", "memory", "vcpus", "disk", "net"]


class DomainTable(DataTable):
    """Rows keyed by UUID. Filter by text and state; sort by any column."""

    DEFAULT_CSS = ""

    def __init__(self, **kwargs) -> None:
        super().__init__(cursor_type="row", zebra_stripes=False, **kwargs)
        self.domains: dict[str, DomainInfo] = {}
        self.text_filter = ""
        self.state_filter = 0
        self.sort_key = "name"
        self.sort_reverse = False

    def on_mount(self) -> None:
        for key, label, _ in COLUMNS:
            self.add_column(label, key=key)

    # --- what is shown --------------------------------------------------

    def matches(self, d: DomainInfo) -> bool:
        if not STATE_FILTERS[self.state_filter][1](d):
            return False
        if self.text_filter:
            needle = self.text_filter.lower()
            return needle in d.name.lower() or needle in d.title.lower()
        return True

    @staticmethod
    def cells(d: DomainInfo) -> list[Cell]:
        return [build(d) for _, _, build in COLUMNS]

    @property
    def selected_uuid(self) -> str | None:
        if self.row_count == 0:
            return None
        try:
            row_key, _ = self.coordinate_to_cell_key(self.cursor_coordinate)
        except (CellDoesNotExist, RowDoesNotExist):
            return None
        return row_key.value

    @property
    def selected(self) -> DomainInfo | None:
        uuid = self.selected_uuid
        return self.domains.get(uuid) if uuid else None

    def visible_uuids(self) -> list[str]:
        return [row.key.value for row in self.ordered_rows]

    def _sort(self) -> None:
        if self.row_count > 1:
            self.sort(self.sort_key, key=lambda cell: cell.key, reverse=self.sort_reverse)

    # --- feeding it -------------------------------------------------------

    def reset(self, domains: Iterable[DomainInfo]) -> None:
        """Replace everything (after connecting or reconnecting)."""
        keep = self.selected_uuid
        self.domains = {d.uuid: d for d in domains}
        self.rebuild(keep)

    def rebuild(self, keep: str | None = None) -> None:
        """Re-fill from ``self.domains`` (filter or sort changed)."""
        keep = keep or self.selected_uuid
        self.clear()
        rows = [d for d in self.domains.values() if self.matches(d)]
        self.add_rows_keyed(rows)
        self._sort()
        self.select(keep)

    def add_rows_keyed(self, rows: list[DomainInfo]) -> None:
        for d in rows:
            self.add_row(*self.cells(d), key=d.uuid)

    def select(self, uuid: str | None) -> None:
        if uuid is None:
            return
        try:
            index = self.get_row_index(uuid)
        except RowDoesNotExist:
            return
        self.move_cursor(row=index)

    def upsert(self, changed: Iterable[DomainInfo]) -> None:
        """Update rows in place; add or drop rows whose filter match changed."""
        resort = False
        for d in changed:
            old = self.domains.get(d.uuid)
            self.domains[d.uuid] = d
            shown = d.uuid in self.rows
            if not self.matches(d):
                if shown:
                    self.remove_row(d.uuid)
                continue
            if not shown:
                self.add_row(*self.cells(d), key=d.uuid)
                resort = True
                continue
            new_cells = self.cells(d)
            for key, cell in zip(COLUMN_KEYS, new_cells):
                current = self.get_cell(d.uuid, key)
                if current != cell:
                    self.update_cell(d.uuid, key, cell, update_width=True)
                    if key == self.sort_key:
                        resort = True
            if old is not None and old.name != d.name:
                resort = True
        if resort:
            keep = self.selected_uuid
            self._sort()
            self.select(keep)

    def drop(self, uuid: str) -> None:
        self.domains.pop(uuid, None)
        if uuid in self.rows:
            self.remove_row(uuid)

    # --- filter and sort controls ------------------------------------------

    def set_text_filter(self, text: str) -> None:
        if text != self.text_filter:
            self.text_filter = text
            self.rebuild()

    def cycle_state_filter(self) -> str:
        self.state_filter = (self.state_filter + 1) % len(STATE_FILTERS)
        self.rebuild()
        return STATE_FILTERS[self.state_filter][0]

    @property
    def state_filter_label(self) -> str:
        return STATE_FILTERS[self.state_filter][0]

    def cycle_sort(self) -> str:
        i = SORTABLE.index(self.sort_key) if self.sort_key in SORTABLE else 0
        self.sort_key = SORTABLE[(i + 1) % len(SORTABLE)]
        # numbers read best largest first
        self.sort_reverse = self.sort_key in ("cpu", "memory", "vcpus", "disk", "net")
        keep = self.selected_uuid
        self._sort()
        self.select(keep)
        return dict((k, lbl) for k, lbl, _ in COLUMNS)[self.sort_key]

    def reverse_sort(self) -> None:
        self.sort_reverse = not self.sort_reverse
        keep = self.selected_uuid
        self._sort()
        self.select(keep)
