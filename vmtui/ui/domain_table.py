"""The domain list: a DataTable keyed by UUID whose rows change in place."""

from __future__ import annotations

from collections import Counter
from functools import lru_cache
from typing import Callable, Iterable

from rich.cells import cell_len
from rich.text import Text
from textual.widgets import DataTable
from textual.widgets.data_table import CellDoesNotExist, ColumnKey, RowDoesNotExist, RowKey

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

    __slots__ = ("text", "key", "_width")

    def __init__(self, text: Text | str, key: object) -> None:
        self.text = text if isinstance(text, Text) else Text(text)
        self.key = key
        self._width = -1

    @property
    def width(self) -> int:
        """What DataTable's measure() says for this cell (widest line, in cells)."""
        if self._width < 0:
            plain = self.text.plain
            self._width = (max(map(cell_len, plain.splitlines()), default=0) if "\n" in plain
                           else cell_len(plain))
        return self._width

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


# Formatting sizes goes through humanize; a host has few distinct values.
_fmt_kib = lru_cache(maxsize=4096)(fmt_kib)


def _io_cell(a: float | None, b: float | None) -> Cell:
    text, key = _io(a, b)
    return Cell(_num(text), key)


# column key -> (label, cell builder)
COLUMNS: list[tuple[str, str, Callable[[DomainInfo], Cell]]] = [
    ("name", "Name", lambda d: Cell(Text(d.name, style="bold" if d.is_active else ""), d.name.lower())),
    ("state", "State", lambda d: Cell(Text(d.state, style=STATE_STYLE.get(d.state_code, "")), (d.state_code, d.name))),
    ("vcpus", "vCPU", lambda d: Cell(_num(str(d.vcpus) if d.vcpus else "-"), d.vcpus)),
    ("memory", "Memory", lambda d: Cell(_num(_fmt_kib(d.memory_kib) if d.memory_kib else "-"), d.memory_kib)),
    ("cpu", "CPU%", lambda d: Cell(_num(fmt_percent(d.stats.cpu_percent)), d.stats.cpu_percent or -1.0)),
    ("disk", "Disk I/O", lambda d: _io_cell(d.stats.disk_read_bps, d.stats.disk_write_bps)),
    ("net", "Net I/O", lambda d: _io_cell(d.stats.net_rx_bps, d.stats.net_tx_bps)),
    ("title", "Title", lambda d: Cell(Text(d.title, style="italic"), d.title.lower())),
]
COLUMN_KEYS = [c[0] for c in COLUMNS]
SORTABLE = ["name", "state", "cpu", "memory", "vcpus", "disk", "net"]


class DomainTable(DataTable):
    """Rows keyed by UUID. Filter by text and state; sort by any column.

    Column widths are kept by this class rather than measured by DataTable:
    a multiset of the cell widths in each column makes adding, updating and
    dropping a row O(1), where DataTable re-measures every new cell on idle
    and a whole column each time an updated cell got narrower (quadratic for
    a stats tick or the titles pass on thousands of rows). The widths come
    out as DataTable would make them: new rows only widen a column; an
    updated cell sets its column to the widest cell (or label).
    """

    DEFAULT_CSS = ""

    def __init__(self, **kwargs) -> None:
        super().__init__(cursor_type="row", zebra_stripes=False, **kwargs)
        self.domains: dict[str, DomainInfo] = {}
        self.text_filter = ""
        self.state_filter = 0
        self.sort_key = "name"
        self.sort_reverse = False
        # column key -> Counter of the widths of the cells in the table
        self._cell_widths: dict[str, Counter[int]] = {key: Counter() for key in COLUMN_KEYS}
        self._label_widths: dict[str, int] = {}

    def on_mount(self) -> None:
        for key, label, _ in COLUMNS:
            self.add_column(label, key=key)
            self._label_widths[key] = self.columns[ColumnKey(key)].content_width

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

    # --- column widths ----------------------------------------------------

    def _widen(self, widest: dict[str, int]) -> None:
        """New rows only widen columns (what DataTable does for new rows)."""
        for key, width in widest.items():
            column = self.columns.get(ColumnKey(key))
            if column is not None and width > column.content_width:
                column.content_width = width
                self._dimensions_changed()

    def _fit(self, keys: Iterable[str]) -> None:
        """Updated cells set their column to its widest cell or label
        (what DataTable's ``update_cell(update_width=True)`` does)."""
        for key in keys:
            column = self.columns.get(ColumnKey(key))
            if column is None:
                continue
            widths = self._cell_widths[key]
            width = max(self._label_widths.get(key, 0), max(widths) if widths else 0)
            if width != column.content_width:
                column.content_width = width
                self._dimensions_changed()

    def _dimensions_changed(self) -> None:
        # DataTable recomputes its virtual size on idle when this is set.
        self._require_update_dimensions = True
        self.refresh(layout=True)
        self.check_idle()

    def _update_dimensions(self, new_rows: Iterable[RowKey]) -> None:
        """DataTable measures every cell of every new row here; our rows
        (height 1, no label) were measured when added, so only rows of
        another kind are left to it (it still recomputes the virtual size)."""
        rows = self.rows
        other = [key for key in new_rows
                 if (row := rows.get(key)) is not None and (row.height != 1 or row.label is not None)]
        super()._update_dimensions(other)

    # --- feeding it -------------------------------------------------------

    def reset(self, domains: Iterable[DomainInfo]) -> None:
        """Replace everything (after connecting or reconnecting)."""
        keep = self.selected_uuid
        self.domains = {d.uuid: d for d in domains}
        self.rebuild(keep)

    def clear(self, columns: bool = False):
        for widths in self._cell_widths.values():
            widths.clear()
        return super().clear(columns)

    def rebuild(self, keep: str | None = None) -> None:
        """Re-fill from ``self.domains`` (filter or sort changed)."""
        keep = keep or self.selected_uuid
        self.clear()
        rows = [d for d in self.domains.values() if self.matches(d)]
        # Add them in order: sorting the table afterwards would give the same
        # order (both sorts are stable), so it is not needed.
        self.add_rows_keyed(rows, presort=True)
        self.select(keep)

    def add_rows_keyed(self, rows: list[DomainInfo], presort: bool = False) -> None:
        built = [(d.uuid, self.cells(d)) for d in rows]
        if presort and len(built) > 1:
            index = COLUMN_KEYS.index(self.sort_key)
            built.sort(key=lambda item: item[1][index].key, reverse=self.sort_reverse)
        widest: dict[str, int] = {}
        add_row = self.add_row
        cell_widths = [self._cell_widths[key] for key in COLUMN_KEYS]
        for uuid, cells in built:
            add_row(*cells, key=uuid)
            for key, counter, cell in zip(COLUMN_KEYS, cell_widths, cells):
                w = cell.width
                counter[w] += 1
                if w > widest.get(key, -1):
                    widest[key] = w
        self._widen(widest)

    def _forget_widths(self, uuid: str) -> None:
        for key in COLUMN_KEYS:
            try:
                cell = self.get_cell(uuid, key)
            except CellDoesNotExist:
                continue
            if isinstance(cell, Cell):
                counter = self._cell_widths[key]
                counter[cell.width] -= 1
                if counter[cell.width] <= 0:
                    del counter[cell.width]

    def _remove(self, uuid: str) -> None:
        self._forget_widths(uuid)
        self.remove_row(uuid)

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
        resized: set[str] = set()
        for d in changed:
            old = self.domains.get(d.uuid)
            self.domains[d.uuid] = d
            shown = d.uuid in self.rows
            if not self.matches(d):
                if shown:
                    self._remove(d.uuid)
                continue
            if not shown:
                self.add_rows_keyed([d])
                resort = True
                continue
            new_cells = self.cells(d)
            for key, cell in zip(COLUMN_KEYS, new_cells):
                current = self.get_cell(d.uuid, key)
                if current != cell:
                    counter = self._cell_widths[key]
                    if isinstance(current, Cell):
                        counter[current.width] -= 1
                        if counter[current.width] <= 0:
                            del counter[current.width]
                    counter[cell.width] += 1
                    resized.add(key)
                    self.update_cell(d.uuid, key, cell)
                    if key == self.sort_key:
                        resort = True
            if old is not None and old.name != d.name:
                resort = True
        if resized:
            self._fit(resized)
        if resort:
            keep = self.selected_uuid
            self._sort()
            self.select(keep)

    def drop(self, uuid: str) -> None:
        self.domains.pop(uuid, None)
        if uuid in self.rows:
            self._remove(uuid)

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
