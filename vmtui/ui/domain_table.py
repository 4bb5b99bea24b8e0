"""The domain list: a DataTable keyed by row key (the UUID; with several
hosts, UUID and host: core/fleet/model.py) whose rows change in place."""

from __future__ import annotations

import gc
import ipaddress
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable, Iterable

from rich.cells import cell_len
from rich.control import strip_control_codes
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.message import Message
from textual.widgets import DataTable
from textual.widgets.data_table import CellDoesNotExist, ColumnKey, DuplicateKey, Row, RowDoesNotExist, RowKey

from ..core.connection.history import CPU
from ..core.connection.rows import CRASHED, IDLE, IN_SHUTDOWN, PAUSED, PMSUSPENDED, RUNNING, SHUT_OFF, DomainInfo
from ..core.fleet.model import Marks, matches_text, row_key, split_key
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
    ("templates", lambda d: d.template),
]


class Cell:
    """A cell that sorts by its raw value.

    The Rich ``Text`` is only made when the cell is drawn: a big host has
    tens of thousands of cells, of which a screenful is ever rendered.
    """

    __slots__ = ("plain", "style", "justify", "key", "_text", "_width", "_simple")

    def __init__(self, text: Text | str, key: object, style: str = "", justify: str | None = None) -> None:
        if isinstance(text, Text):
            self._text: Text | None = text
            self.plain, self.style, self.justify = text.plain, text.style, text.justify
        else:
            self._text = None
            self.plain, self.style, self.justify = text, style, justify
        self.key = key
        self._width = -1
        self._simple: bool | None = None

    @property
    def simple(self) -> bool:
        """Printable ASCII only, no spans, nothing to strip: DomainTable can
        draw it without going through Rich (see ``DomainTable._render_cell``)."""
        if self._simple is None:
            plain = self.plain
            self._simple = (plain.isascii() and plain.isprintable() and self.justify in (None, "right")
                            and (self._text is None or not self._text._spans)
                            and not (self.justify == "right" and plain.endswith(" ")))
        return self._simple

    @property
    def text(self) -> Text:
        if self._text is None:
            self._text = Text(self.plain, style=self.style, justify=self.justify)
        return self._text

    @property
    def width(self) -> int:
        """What DataTable's measure() says for this cell (widest line, in cells)."""
        if self._width < 0:
            plain = self.plain
            if plain.isascii() and plain.isprintable():
                self._width = len(plain)
            else:
                plain = strip_control_codes(plain)
                self._width = (max(map(cell_len, plain.splitlines()), default=0) if "\n" in plain
                               else cell_len(plain))
        return self._width

    def __rich__(self) -> Text:
        return self.text

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Cell):
            return False
        if self._text is not None and other._text is not None and (self._text._spans or other._text._spans):
            if self._text != other._text:
                return False
        return (self.key == other.key and self.plain == other.plain and self.style == other.style
                and self.justify == other.justify)

    def __hash__(self) -> int:
        return hash(self.key)

    def __str__(self) -> str:
        return self.plain


def _io(a: float | None, b: float | None) -> tuple[str, float]:
    if a is None and b is None:
        return "-", -1.0
    total = (a or 0.0) + (b or 0.0)
    return fmt_rate(total), total


def _num(text: str, key: object) -> Cell:
    return Cell(text, key, justify="right")


# Formatting sizes goes through humanize; a host has few distinct values.
_fmt_kib = lru_cache(maxsize=4096)(fmt_kib)


def _io_cell(a: float | None, b: float | None) -> Cell:
    return _num(*_io(a, b))


@contextmanager
def _gc_paused(objects: int):
    """Building thousands of rows allocates ~20 objects a row; with the
    heap of a running app, each full collection that triggers costs
    ~0.1 s. Nothing built here is cyclic: hold collection off meanwhile."""
    pause = objects > 2000 and gc.isenabled()
    if pause:
        gc.disable()
    try:
        yield
    finally:
        if pause:
            gc.enable()


READINESS_STYLE = {"error": "bold red", "ready": "green"}


def _state_cell(d: DomainInfo) -> Cell:
    """The state; a shut-off template says "template" (sorted after shut off);
    a running guest whose boot vmtui watches says how far it got
    ("running (cloud-init)", see core/consoles/readiness.py)."""
    if d.template and d.is_shut_off:
        return Cell("template", (d.state_code + 0.5, d.name), "magenta")
    ready = d.guest.readiness if d.is_active else ""
    if ready:
        return Cell(f"{d.state} ({ready})", (d.state_code, d.name),
                    READINESS_STYLE.get(ready, STATE_STYLE.get(d.state_code, "")))
    return Cell(d.state, (d.state_code, d.name), STATE_STYLE.get(d.state_code, ""))


def _ip_key(ip: str) -> tuple:
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return (2, ip)
    return (addr.version, int(addr))


def _address_cell(d: DomainInfo) -> Cell:
    """The first address of a running guest (+N more), from the cache the
    guest watch keeps (core/consoles/guests.py); blank when unknown."""
    ips = d.guest.addresses if d.is_active else ()
    if not ips:
        return Cell("", (9,))
    more = f" +{len(ips) - 1}" if len(ips) > 1 else ""
    return Cell(ips[0] + more, _ip_key(ips[0]))


GRAPH_WIDTH = 10  # ticks in the list's CPU graph (20 s at the default tick)
_BARS = "▁▂▃▄▅▆▇█"


def _graph_cell(d: DomainInfo) -> Cell:
    """The CPU % of the last GRAPH_WIDTH ticks as bars, 0-100 % (the
    service's stats history; nothing while the VM does not run)."""
    ring = d.history
    values = ring.series(CPU, GRAPH_WIDTH) if ring is not None and d.is_active else []
    bars = "".join(" " if v is None else _BARS[min(7, int(v * 8 / 100.0))] for v in values)
    return Cell(bars.rjust(GRAPH_WIDTH) if bars else "", d.stats.cpu_percent or -1.0)


# column key -> (label, cell builder); the OPTIONAL ones show when switched on
COLUMNS: list[tuple[str, str, Callable[[DomainInfo], Cell]]] = [
    # the host breaks ties: one name on two hosts sorts the same way every time
    ("name", "Name", lambda d: Cell(d.name, (d.name.lower(), d.host), "bold" if d.is_active else "")),
    ("state", "State", lambda d: _state_cell(d)),
    ("address", "Address", _address_cell),
    ("vcpus", "vCPU", lambda d: _num(str(d.vcpus) if d.vcpus else "-", d.vcpus)),
    ("memory", "Memory", lambda d: _num(_fmt_kib(d.memory_kib) if d.memory_kib else "-", d.memory_kib)),
    ("cpu", "CPU%", lambda d: _num(fmt_percent(d.stats.cpu_percent), d.stats.cpu_percent or -1.0)),
    ("disk", "Disk I/O", lambda d: _io_cell(d.stats.disk_read_bps, d.stats.disk_write_bps)),
    ("net", "Net I/O", lambda d: _io_cell(d.stats.net_rx_bps, d.stats.net_tx_bps)),
    ("graph", "CPU graph", _graph_cell),
    ("title", "Title", lambda d: Cell(d.title, d.title.lower(), "italic")),
]
COLUMN_KEYS = [c[0] for c in COLUMNS]
# Shown first when there are several hosts / marked VMs (DomainTable.set_extra_columns)
HOST_COLUMN = ("host", "Host", lambda d: Cell(d.host, (d.host.lower(), d.name.lower()), "cyan"))
MARK_LABEL = "*"
#: Columns shown only when asked for: A (the guests' addresses), G (the CPU graph)
OPTIONAL_COLUMNS = frozenset({"address", "graph"})
CELL_CACHE = 2000  # rendered cells kept (a 40-row screen has ~320)
LINE_CACHE = 300  # rendered rows and lines kept
REBUILD_AFTER = 8  # removals in one batch beyond which the table is rebuilt
SORTABLE = ["name", "state", "cpu", "memory", "vcpus", "disk", "net"]


@dataclass(frozen=True, slots=True)
class LostSelection:
    """The selected VM left the list under the cursor: ``why`` is "removed"
    (undefined on the host, or gone while disconnected) or "hidden" (it no
    longer matches the filter, e.g. it stopped while only running VMs show)."""

    uuid: str  # the row key (the UUID; with several hosts, UUID and host)
    name: str
    why: str
    index: int  # where its row was


class DomainTable(DataTable):
    """Rows keyed by UUID. Filter by text and state; sort by any column.

    The selection follows the VM, not the row index: rows added, removed or
    re-sorted around it leave the same VM selected. When the selected VM
    itself leaves the list, nothing is selected (:attr:`lost` says which VM
    it was, the cursor is hidden, no action applies) until the user moves
    the cursor: a key pressed right then never acts on the neighbour that
    slid under the cursor.

    Column widths are kept by this class rather than measured by DataTable:
    a multiset of the cell widths in each column makes adding, updating and
    dropping a row O(1), where DataTable re-measures every new cell on idle
    and a whole column each time an updated cell got narrower (quadratic for
    a stats tick or the titles pass on thousands of rows). The widths come
    out as DataTable would make them: new rows only widen a column; an
    updated cell sets its column to the widest cell (or label).
    """

    DEFAULT_CSS = ""

    class SelectionLost(Message):
        """The selected VM left the list (see :class:`LostSelection`)."""

        def __init__(self, lost: LostSelection) -> None:
            super().__init__()
            self.lost = lost

    def __init__(self, **kwargs) -> None:
        super().__init__(cursor_type="row", zebra_stripes=False, **kwargs)
        # DataTable caches 10,000 rendered cells and 1,000 rows and lines:
        # every focus change or screen switch renders the visible rows anew
        # and fills them further, ~15 MB for a table that shows 40 rows. A few
        # screenfuls are enough.
        for name, size in (("_cell_render_cache", CELL_CACHE), ("_row_render_cache", LINE_CACHE),
                           ("_line_cache", LINE_CACHE)):
            cache = getattr(self, name, None)
            if cache is not None and hasattr(cache, "maxsize"):
                setattr(self, name, type(cache)(size))
        self.domains: dict[str, DomainInfo] = {}
        self.text_filter = ""
        self.state_filter = 0
        self.sort_key = "name"
        self.sort_reverse = False
        self.group_by_host = False
        self.marks: Marks | None = None  # set by the app: the mark column shows them
        self._with_marks = self._with_host = False  # the mark and Host columns (set_extra_columns)
        # column key -> Counter of the widths of the cells in the table
        self._cell_widths: dict[str, Counter[int]] = {key: Counter() for key in [*COLUMN_KEYS, "mark", "host"]}
        self._label_widths: dict[str, int] = {}
        self.lost: LostSelection | None = None
        self.optional_shown: set[str] = set()
        self._settling: set[str] = set()  # rows whose CPU graph still moves without a change (refresh_graphs)
        self._shown = self._columns()
        self.column_keys = [c[0] for c in self._shown]  # the columns shown, in order

    def on_mount(self) -> None:
        self._add_columns()

    def _add_columns(self) -> None:
        for key, label, _ in self._shown:
            self.add_column(label, key=key)
            self._label_widths[key] = self.columns[ColumnKey(key)].content_width

    def _columns(self) -> list:
        """The columns to show: the mark and Host columns when on, then
        COLUMNS with the optional ones that are switched on."""
        return (([("mark", MARK_LABEL, self._mark_cell)] if self._with_marks else [])
                + ([HOST_COLUMN] if self._with_host else [])
                + [c for c in COLUMNS if c[0] not in OPTIONAL_COLUMNS or c[0] in self.optional_shown])

    def _relayout(self) -> bool:
        """Build the columns again when the set shown changed (the rows too).
        True when it changed."""
        shown = self._columns()
        if [c[0] for c in shown] == self.column_keys:
            return False
        self._shown = shown
        self.column_keys = [c[0] for c in shown]
        if self.sort_key not in self.column_keys:
            self.sort_key = "name"
        if not self.columns:
            return True  # not mounted yet: on_mount adds these
        keep = self.selected_key or (self.lost.uuid if self.lost else None)
        self.clear(columns=True)
        self._add_columns()
        self.rebuild(keep)
        return True

    def column_shown(self, key: str) -> bool:
        return key in self.column_keys

    def show_column(self, key: str, shown: bool) -> None:
        """Show or hide an optional column (OPTIONAL_COLUMNS); the rows are built again."""
        if key not in OPTIONAL_COLUMNS or (key in self.optional_shown) == shown:
            return
        (self.optional_shown.add if shown else self.optional_shown.discard)(key)
        if self._relayout() and self.columns:
            self._settling = {u for u, d in self.domains.items() if d.history is not None} if shown else set()

    def _mark_cell(self, d: DomainInfo) -> Cell:
        marked = self.marks is not None and row_key(d) in self.marks
        return Cell(MARK_LABEL if marked else "", 0 if marked else 1, "bold")

    def set_extra_columns(self, *, host: bool, marks: bool) -> bool:
        """Show or hide the Host column (several hosts) and the mark column
        (VMs are marked). True when that changed (the table was rebuilt)."""
        self._with_host, self._with_marks = host, marks
        return self._relayout()

    def refresh_marks(self, keys) -> None:
        """The marks of ``keys`` changed: redraw their mark cells."""
        if "mark" not in self.column_keys:
            return
        for key in keys:
            d = self.domains.get(key)
            if d is not None and key in self.rows:
                self.update_cell(key, "mark", self._mark_cell(d))

    # --- what is shown --------------------------------------------------

    def matches(self, d: DomainInfo) -> bool:
        if not STATE_FILTERS[self.state_filter][1](d):
            return False
        return matches_text(d, self.text_filter)

    def cells(self, d: DomainInfo) -> list[Cell]:
        return [build(d) for _, _, build in self._shown]

    @property
    def selected_key(self) -> str | None:
        """The row key of the selected VM (its UUID when there is one host)."""
        if self.row_count == 0 or self.lost is not None:
            return None
        try:
            key, _ = self.coordinate_to_cell_key(self.cursor_coordinate)
        except (CellDoesNotExist, RowDoesNotExist):
            return None
        return key.value

    @property
    def selected_uuid(self) -> str | None:
        key = self.selected_key
        return split_key(key)[1] if key else None

    @property
    def selected(self) -> DomainInfo | None:
        key = self.selected_key
        return self.domains.get(key) if key else None

    def visible_keys(self) -> list[str]:
        return [row.key.value for row in self.ordered_rows]

    def visible_uuids(self) -> list[str]:
        return [split_key(key)[1] for key in self.visible_keys()]

    def _sort(self) -> None:
        if self.row_count > 1:
            self.sort(self.sort_key, key=lambda cell: cell.key, reverse=self.sort_reverse)
            if self.group_by_host and "host" in self.column_keys:
                self.sort("host", key=lambda cell: cell.key[0])  # stable: the order within a host stays

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
        self.refresh()
        self.check_idle()

    def _update_dimensions(self, new_rows: Iterable[RowKey]) -> None:
        """DataTable measures every cell of every new row here; our rows
        (height 1, no label) were measured when added, so only rows of
        another kind are left to it (it still recomputes the virtual size)."""
        rows = self.rows
        other = [key for key in new_rows
                 if (row := rows.get(key)) is not None and (row.height != 1 or row.label is not None)]
        super()._update_dimensions(other)

    # --- drawing ------------------------------------------------------------

    def _render_cell(self, row_index: int, column_index: int, base_style: Style, width: int,
                     cursor: bool = False, hover: bool = False):
        """DataTable draws each cell through Rich (Padding, Styled, Text
        wrapping and justification): about a quarter of a millisecond per
        cell, so a screenful of a few hundred cells costs tens of ms on
        every scroll and every update. Our cells are one line of plain text
        that fits its column; for those this builds the very same segments
        directly (checked against DataTable's own output by the bench and
        the snapshot tests). Anything else goes to DataTable."""
        if self._fast_cells:
            try:
                lines = self._render_simple_cell(row_index, column_index, base_style, width, cursor, hover)
            except Exception:  # a DataTable we do not know: draw everything its way
                self._fast_cells = False
                lines = None
            if lines is not None:
                return lines
        return super()._render_cell(row_index, column_index, base_style, width, cursor, hover)

    _fast_cells = True

    def _render_simple_cell(self, row_index: int, column_index: int, base_style: Style, width: int,
                            cursor: bool, hover: bool) -> list[list[Segment]] | None:
        if row_index < 0 or column_index < 0 or self.fixed_rows or self.fixed_columns:
            return None
        row_key = self._row_locations.get_key(row_index)
        column_key = self._column_locations.get_key(column_index)
        # DataTable's own cache and key: rows and lines are cached on top of it
        cache_key = (row_key, column_key, base_style, cursor, hover, self._show_hover_cursor,
                     self._update_count, self._pseudo_class_state)
        cache = self._cell_render_cache
        lines = cache.get(cache_key)
        if lines is not None:
            return lines
        cell = self._data[row_key][column_key]
        if not isinstance(cell, Cell) or not cell.simple or self.rows[row_key].height != 1:
            return None
        pad = self.cell_padding
        inner = width - 2 * pad
        plain = cell.plain
        length = len(plain)  # printable ASCII: one cell per character
        if length > inner:
            return None
        console = self.app.console
        base_style += Style.from_meta({"row": row_index, "column": column_index})
        component_style, post_style = self._get_styles_to_render_cell(
            False, False, False, hover, cursor, self.show_cursor, self._show_hover_cursor,
            self.cursor_foreground_priority == "css", self.cursor_background_priority == "css")
        pre = console.get_style(base_style + component_style)
        post = console.get_style(post_style)
        null = Style.null()
        text_style = console.get_style(cell.style, default=null) if cell.style else None

        def styled(style: Style | None) -> Style | None:
            # Segment.apply_style(pre_style, post_style), as Styled does
            if pre:
                style = pre + style
            if post:
                style = style + post if style else post
            return style

        # Padding(Text) at no_wrap: Text's base style covers the text (and,
        # right-justified, the spaces put before it); spaces after it carry
        # Padding's null style.
        segments = []
        if pad:
            segments.append(Segment(" " * pad, styled(null)))
        if cell.justify == "right":
            if inner:
                segments.append(Segment(" " * (inner - length) + plain, styled(text_style)))
        else:
            if length:
                segments.append(Segment(plain, styled(text_style)))
            if inner > length:
                segments.append(Segment(" " * (inner - length), styled(null)))
        if pad:
            segments.append(Segment(" " * pad, styled(null)))
        lines = [segments]
        cache[cache_key] = lines
        return lines

    # --- feeding it -------------------------------------------------------

    def reset(self, domains: Iterable[DomainInfo]) -> None:
        """Replace everything (after connecting or reconnecting)."""
        keep = self.selected_key
        index = self.cursor_row
        old = self.domains.get(keep) if keep else None
        self.domains = {row_key(d): d for d in domains}
        self.rebuild(keep)
        if old is not None and keep not in self.rows:
            self._lose(old, "hidden" if keep in self.domains else "removed", index)

    def clear(self, columns: bool = False):
        for widths in self._cell_widths.values():
            widths.clear()
        return super().clear(columns)

    def rebuild(self, keep: str | None = None) -> None:
        """Re-fill from ``self.domains`` (filter or sort changed). The
        selected VM stays selected if it still shows; if the user's new
        filter hides it, the cursor goes to the first row, in plain view
        (a lost selection shown again is selected again)."""
        keep = keep or self.selected_key or (self.lost.uuid if self.lost else None)
        self.clear()
        rows = [d for d in self.domains.values() if self.matches(d)]
        # Add them in order: sorting the table afterwards would give the same
        # order (both sorts are stable), so it is not needed.
        self.add_rows_keyed(rows, presort=True)
        self.select(keep)

    def add_rows_keyed(self, rows: list[DomainInfo], presort: bool = False) -> None:
        with _gc_paused(len(rows) * len(self._shown)):
            self._add_rows_keyed(rows, presort)

    def _add_rows_keyed(self, rows: list[DomainInfo], presort: bool) -> None:
        built = [(row_key(d), self.cells(d)) for d in rows]
        if presort and len(built) > 1:
            index = self.column_keys.index(self.sort_key)
            built.sort(key=lambda item: item[1][index].key, reverse=self.sort_reverse)
            if self.group_by_host and "host" in self.column_keys:
                host = self.column_keys.index("host")
                built.sort(key=lambda item: item[1][host].key[0])
        self._append_rows(built)
        widest: dict[str, int] = {}
        keys = self.column_keys
        cell_widths = [self._cell_widths[key] for key in keys]
        for _, cells in built:
            for key, counter, cell in zip(keys, cell_widths, cells):
                w = cell.width
                counter[w] += 1
                if w > widest.get(key, -1):
                    widest[key] = w
        self._widen(widest)

    def _append_rows(self, built: list[tuple[str, list[Cell]]]) -> None:
        """``add_row`` for many rows at once. DataTable.add_row costs ~0.1 ms
        a row in bookkeeping done once per call (the cursor is re-validated,
        the column list rebuilt); here it is done once for the whole batch,
        with the same end state. Falls back to add_row on a DataTable
        without the internals this relies on."""
        if len(built) < 2 or not self._bulk_rows_ok():
            for uuid, cells in built:
                self.add_row(*cells, key=uuid)
            return
        locations, data, rows, new_rows = self._row_locations, self._data, self.rows, self._new_rows
        column_keys = [column.key for column in self.ordered_columns]
        keys = [RowKey(uuid) for uuid, _ in built]
        if len(set(keys)) != len(keys) or any(key in locations for key in keys):
            raise DuplicateKey("a row key is already in the table")
        start = self.row_count
        for index, (key, (_, cells)) in enumerate(zip(keys, built), start):
            locations[key] = index
            data[key] = dict(zip(column_keys, cells))
            rows[key] = Row(key, 1, None, False)
            new_rows.add(key)
        self._require_update_dimensions = True
        self.cursor_coordinate = self.cursor_coordinate
        if start == 0 and self.columns and self.show_cursor and self.cursor_type != "none":
            self._highlight_cursor()  # add_row does this when the first row arrives
        self._update_count += 1
        self.check_idle()

    def _bulk_rows_ok(self) -> bool:
        return all(hasattr(self, name) for name in (
            "_row_locations", "_data", "_new_rows", "_update_count", "_highlight_cursor",
            "_require_update_dimensions"))

    def _forget_widths(self, uuid: str) -> None:
        for key in self.column_keys:
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
        """Put the cursor on ``uuid``'s row (if shown); a lost selection ends."""
        if uuid is None:
            return
        try:
            index = self.get_row_index(uuid)
        except RowDoesNotExist:
            return
        self.move_cursor(row=index)
        if self.lost is not None:
            self._found()

    # --- the selected VM leaving the list ------------------------------------

    def _lose(self, d: DomainInfo, why: str, index: int) -> None:
        """The selected VM ``d`` is no longer shown: select nothing."""
        self.lost = LostSelection(row_key(d), d.name, why, index)
        self.show_cursor = False
        self.post_message(self.SelectionLost(self.lost))

    def _found(self) -> None:
        """Selecting a row again: show the cursor (DataTable then tells
        RowHighlighted for the row under it)."""
        self.lost = None
        self.show_cursor = True

    def _wake(self, offset: int) -> bool:
        """The first cursor key after the selected VM left: select the row
        that followed it (``offset`` 0, down) or preceded it (-1, up),
        without skipping one. False when nothing was lost."""
        lost = self.lost
        if lost is None:
            return False
        if self.row_count:
            row = min(max(lost.index + offset, 0), self.row_count - 1)
            self.move_cursor(row=row, animate=False)
        self._found()
        return True

    def action_cursor_down(self) -> None:
        if not self._wake(0):
            super().action_cursor_down()

    def action_cursor_up(self) -> None:
        if not self._wake(-1):
            super().action_cursor_up()

    def action_page_down(self) -> None:
        self._wake(0)
        super().action_page_down()

    def action_page_up(self) -> None:
        self._wake(-1)
        super().action_page_up()

    def action_scroll_top(self) -> None:
        self._wake(0)
        super().action_scroll_top()

    def action_scroll_bottom(self) -> None:
        self._wake(0)
        super().action_scroll_bottom()

    async def _on_click(self, event: events.Click) -> None:
        # runs before DataTable's own _on_click (Textual calls both), which
        # then moves the cursor to the clicked row: a click selects again
        if self.lost is not None and event.style.meta.get("row", -1) >= 0:
            self._found()

    @contextmanager
    def _keeping_selection(self):
        """A context in which rows come and go: afterwards the selected VM
        is selected again, wherever its row went; if it went away, the
        selection is lost (see :meth:`_lose`). A lost VM shown again is
        selected again."""
        uuid, index = self.selected_key, self.cursor_row
        before = self.domains.get(uuid) if uuid else None
        yield
        if uuid is None:
            if self.lost is not None and self.lost.uuid in self.rows:
                self.select(self.lost.uuid)  # it matches again, or was defined again
        elif uuid in self.rows:
            if self.selected_key != uuid:
                self.select(uuid)
        elif (d := self.domains.get(uuid)) is not None:
            self._lose(d, "hidden", index)
        elif before is not None:
            self._lose(before, "removed", index)

    def upsert(self, changed: Iterable[DomainInfo]) -> None:
        """Update rows in place; add or drop rows whose filter match changed."""
        with self._keeping_selection():
            self._upsert(changed)

    def _upsert(self, changed: Iterable[DomainInfo]) -> None:
        resort = False
        resized: set[str] = set()
        for d in changed:
            rk = row_key(d)
            old = self.domains.get(rk)
            self.domains[rk] = d
            shown = rk in self.rows
            if not self.matches(d):
                if shown:
                    self._remove(rk)
                continue
            if not shown:
                self.add_rows_keyed([d])
                resort = True
                continue
            new_cells = self.cells(d)
            for key, cell in zip(self.column_keys, new_cells):
                if self._replace_cell(rk, key, cell):
                    resized.add(key)
                    if key == self.sort_key:
                        resort = True
            if d.history is not None and "graph" in self.optional_shown:
                self._settling.add(rk)
            if old is not None and old.name != d.name:
                resort = True
        if resized:
            self._fit(resized)
        if resort:
            self._sort()

    def _replace_cell(self, uuid: str, key: str, cell: Cell) -> bool:
        """Put ``cell`` in place if it differs (its width counted); True if it did."""
        current = self.get_cell(uuid, key)
        if current == cell:
            return False
        counter = self._cell_widths[key]
        if isinstance(current, Cell):
            counter[current.width] -= 1
            if counter[current.width] <= 0:
                del counter[current.width]
        counter[cell.width] += 1
        self.update_cell(uuid, key, cell)
        return True

    def refresh_graphs(self) -> None:
        """Move the CPU graphs of the rows whose figures stopped changing (run
        at each stats tick): their history repeats their last sample, and no
        row change says so. Only rows changed in the last GRAPH_WIDTH ticks
        are looked at."""
        if "graph" not in self.optional_shown:
            self._settling.clear()
            return
        resized = False
        for uuid in list(self._settling):
            d = self.domains.get(uuid)
            ring = d.history if d is not None else None
            if ring is None or ring.clock.tick - ring.last >= GRAPH_WIDTH:
                self._settling.discard(uuid)  # its bars are all its last figure now
            if d is not None and uuid in self.rows:
                resized |= self._replace_cell(uuid, "graph", _graph_cell(d))
        if resized:
            self._fit(["graph"])

    def drop(self, uuid: str) -> None:
        """The VM (row key) is gone from the host."""
        self.drop_many([uuid])

    def drop_many(self, uuids: Iterable[str]) -> None:
        """The VMs are gone from the host. DataTable re-indexes every row on
        each removal, so many at once (an event storm) rebuild the table
        instead: O(rows)."""
        gone = set(uuids)
        with self._keeping_selection():
            shown = []
            for uuid in gone:
                self.domains.pop(uuid, None)
                if uuid in self.rows:
                    shown.append(uuid)
            if len(shown) > REBUILD_AFTER:
                self.rebuild()
            else:
                for uuid in shown:
                    self._remove(uuid)
        lost = self.lost
        if lost is not None and lost.uuid in gone and lost.why != "removed":
            self.lost = LostSelection(lost.uuid, lost.name, "removed", lost.index)  # hidden, now gone too

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
        keep = self.selected_key
        self._sort()
        self.select(keep)
        return dict((k, lbl) for k, lbl, _ in COLUMNS)[self.sort_key]

    def toggle_group_by_host(self) -> bool:
        """Rows of one host together (in the sort order within it)."""
        self.group_by_host = not self.group_by_host
        keep = self.selected_key
        self._sort()
        self.select(keep)
        return self.group_by_host

    def reverse_sort(self) -> None:
        self.sort_reverse = not self.sort_reverse
        keep = self.selected_key
        self._sort()
        self.select(keep)

