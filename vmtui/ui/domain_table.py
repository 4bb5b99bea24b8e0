"""The domain list: a table of its own on Textual's Line API.

Rows are keyed by an opaque hashable key that the caller chooses: by
default core/fleet/model.py's ``row_key``, the UUID (with several hosts,
UUID and host). With several hosts a Host column shows first, with marked
VMs a mark column before it (:meth:`DomainTable.set_extra_columns`); rows
can be grouped by host (:meth:`DomainTable.toggle_group_by_host`).
The table keeps, for the rows it shows, their order, their sort keys and
the widths of their cells -- no widget, no Rich object, no cell object per
row. A row's cells are built from its :class:`DomainInfo` by the builders
of :data:`COLUMNS` when the row is drawn (the lines on screen are cached)
or measured, so a host of 10,000 domains costs what its records cost plus
a few lines of text.

* The first page is drawn before the rest of the rows are measured: the
  column widths of the other rows are worked out in slices afterwards.
* An update re-measures and re-places only the rows that changed, and
  repaints only the lines on screen whose text changed: a stats tick that
  changes nothing visible repaints nothing.
* The selection follows the VM, not the row index (issue 10.5): when the
  selected VM leaves the list, nothing is selected (:attr:`lost`) until the
  cursor moves.
"""

from __future__ import annotations

import bisect
import ipaddress
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from operator import attrgetter
from typing import Any, Callable, Hashable, Iterable, Iterator

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.geometry import Region, Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from ..core.connection.history import CPU
from ..core.connection.rows import CRASHED, IDLE, IN_SHUTDOWN, PAUSED, PMSUSPENDED, RUNNING, SHUT_OFF, DomainInfo
from ..core.fleet.model import Marks, matches_text
from ..core.fleet.model import row_key as fleet_row_key
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

RowKey = Hashable
uuid_key: Callable[[DomainInfo], RowKey] = attrgetter("uuid")


class Cell:
    """What a column's builder makes of a domain: the text (a ``str``, or a
    Rich ``Text`` with spans), the value it sorts by, its style and justify.
    Cells are made when a row is drawn or measured and then dropped."""

    __slots__ = ("plain", "key", "style", "justify", "text")

    def __init__(self, text: Text | str, key: object = None, style: str = "", justify: str | None = None) -> None:
        if isinstance(text, Text):
            self.text: Text | None = text if text.spans else None
            self.plain = text.plain
            self.style = style or (text.style if isinstance(text.style, str) else str(text.style or ""))
            self.justify = justify or text.justify
        else:
            self.text = None
            self.plain, self.style, self.justify = text, style, justify
        self.key = self.plain if key is None else key

    @property
    def width(self) -> int:
        plain = self.plain
        return len(plain) if plain.isascii() else cell_len(plain)

    def __str__(self) -> str:
        return self.plain

    def __repr__(self) -> str:
        return f"Cell({self.plain!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Cell):
            return NotImplemented
        return (self.plain == other.plain and self.style == other.style and self.justify == other.justify
                and self.text == other.text)

    def __hash__(self) -> int:
        return hash(self.plain)


class ColumnKey(str):
    """A column's key, as :attr:`DomainTable.columns` gives it."""

    __slots__ = ()

    @property
    def value(self) -> str:
        return str(self)


class Column:
    """A column of the list: its key, its label, the builder that makes a
    domain's :class:`Cell`, and

    * ``optional``: hidden until shown (:meth:`DomainTable.set_column_shown`);
    * ``sort``: a domain's sort value without building its cell (default:
      the cell's ``key``);
    * ``largest_first``: sorting by it starts with the largest value.

    A column unpacks like the (key, label, builder) triple it was before, and
    :data:`COLUMNS` takes such triples too."""

    __slots__ = ("key", "label", "build", "optional", "sort", "largest_first")

    def __init__(self, key: str, label: str, build: Callable[[DomainInfo], Cell], *, optional: bool = False,
                 sort: Callable[[DomainInfo], Any] | None = None, largest_first: bool = False) -> None:
        self.key, self.label, self.build = key, label, build
        self.optional, self.largest_first = optional, largest_first
        self.sort = sort if sort is not None else (lambda d, _build=build: _build(d).key)

    def __iter__(self) -> Iterator:
        return iter((self.key, self.label, self.build))

    def __repr__(self) -> str:
        return f"Column({self.key!r})"


def as_column(entry: Column | tuple) -> Column:
    """A :class:`Column` from an entry of :data:`COLUMNS` (a Column, or a
    (key, label, builder[, optional]) tuple)."""
    if isinstance(entry, Column):
        return entry
    key, label, build, *rest = entry
    return Column(key, label, build, optional=bool(rest and rest[0]))


def _io(a: float | None, b: float | None) -> tuple[str, float]:
    if a is None and b is None:
        return "-", -1.0
    total = (a or 0.0) + (b or 0.0)
    return fmt_rate(total), total


def _io_total(a: float | None, b: float | None) -> float:
    return -1.0 if a is None and b is None else (a or 0.0) + (b or 0.0)


def _num(text: str, key: object) -> Cell:
    return Cell(text, key, justify="right")


# Formatting goes through humanize; a host has few distinct values.
_fmt_kib = lru_cache(maxsize=4096)(fmt_kib)
_fmt_rate = lru_cache(maxsize=8192)(fmt_rate)


def _io_cell(a: float | None, b: float | None) -> Cell:
    if a is None and b is None:
        return Cell("-", -1.0, justify="right")
    total = (a or 0.0) + (b or 0.0)
    return Cell(_fmt_rate(total), total, justify="right")


def _state_sort(d: DomainInfo) -> float:
    """Running first, shut off last; a shut-off template after shut off."""
    return d.state_code + 0.5 if d.template and d.is_shut_off else float(d.state_code)


READINESS_STYLE = {"error": "bold red", "ready": "green"}


def _state_cell(d: DomainInfo) -> Cell:
    """The state; a shut-off template says "template" (sorted after shut off);
    a running guest whose boot vmtui watches says how far it got
    ("running (cloud-init)", see core/consoles/readiness.py)."""
    if d.template and d.is_shut_off:
        return Cell("template", d.state_code + 0.5, "magenta")
    ready = d.guest.readiness if d.is_active else ""
    if ready:
        return Cell(f"{d.state} ({ready})", float(d.state_code),
                    READINESS_STYLE.get(ready, STATE_STYLE.get(d.state_code, "")))
    return Cell(d.state, float(d.state_code), STATE_STYLE.get(d.state_code, ""))


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
    return Cell(bars.rjust(GRAPH_WIDTH) if bars else "", _cpu(d))


def _cpu(d: DomainInfo) -> float:
    cpu = d.stats.cpu_percent
    return -1.0 if cpu is None else cpu


# the host breaks ties: one name on two hosts sorts the same way every time
COLUMNS: list[Column | tuple] = [
    Column("name", "Name", lambda d: Cell(d.name, (d.name.lower(), d.host), "bold" if d.is_active else ""),
           sort=lambda d: (d.name.lower(), d.host)),
    Column("state", "State", _state_cell, sort=_state_sort),
    Column("address", "Address", _address_cell, optional=True),
    Column("vcpus", "vCPU", lambda d: _num(str(d.vcpus) if d.vcpus else "-", d.vcpus),
           sort=attrgetter("vcpus"), largest_first=True),
    Column("memory", "Memory", lambda d: _num(_fmt_kib(d.memory_kib) if d.memory_kib else "-", d.memory_kib),
           sort=attrgetter("memory_kib"), largest_first=True),
    Column("cpu", "CPU%", lambda d: _num(fmt_percent(d.stats.cpu_percent), _cpu(d)), sort=_cpu,
           largest_first=True),
    Column("disk", "Disk I/O", lambda d: _io_cell(d.stats.disk_read_bps, d.stats.disk_write_bps),
           sort=lambda d: _io_total(d.stats.disk_read_bps, d.stats.disk_write_bps), largest_first=True),
    Column("net", "Net I/O", lambda d: _io_cell(d.stats.net_rx_bps, d.stats.net_tx_bps),
           sort=lambda d: _io_total(d.stats.net_rx_bps, d.stats.net_tx_bps), largest_first=True),
    Column("graph", "CPU graph", _graph_cell, optional=True, sort=_cpu, largest_first=True),
    Column("title", "Title", lambda d: Cell(d.title, d.title.lower(), "italic"), sort=lambda d: d.title.lower()),
]
# Sorting (o) cycles through these, among the columns shown.
SORTABLE = ["name", "state", "cpu", "memory", "vcpus", "disk", "net"]
#: Shown first when there are several hosts / marked VMs (DomainTable.set_extra_columns)
HOST_COLUMN = Column("host", "Host", lambda d: Cell(d.host, (d.host.lower(), d.name.lower()), "cyan"),
                     sort=lambda d: (d.host.lower(), d.name.lower()))
MARK_LABEL = "*"
#: Columns shown only when asked for: A (the guests' addresses), G (the CPU graph)
OPTIONAL_COLUMNS = frozenset({"address", "graph"})
PAD = 1  # spaces on each side of a cell
MEASURE_SLICE = 2000  # rows measured per slice after the first page is drawn
LINE_CACHE = 400  # rendered lines kept (a 40-row screen shows 39)
SORT_UP, SORT_DOWN = "▲", "▼"


def column_keys() -> list[str]:
    return [as_column(c).key for c in COLUMNS]


class _Desc:
    """Reverses the order of a value that cannot be negated (a name)."""

    __slots__ = ("v",)

    def __init__(self, v: Any) -> None:
        self.v = v

    def __lt__(self, other: "_Desc") -> bool:
        return other.v < self.v

    def __gt__(self, other: "_Desc") -> bool:
        return other.v > self.v

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Desc) and self.v == other.v

    def __le__(self, other: "_Desc") -> bool:
        return other.v <= self.v

    def __ge__(self, other: "_Desc") -> bool:
        return other.v >= self.v


@dataclass(frozen=True, slots=True)
class LostSelection:
    """The selected VM left the list under the cursor: ``why`` is "removed"
    (undefined on the host, or gone while disconnected) or "hidden" (it no
    longer matches the filter, e.g. it stopped while only running VMs show)."""

    uuid: str  # the VM's UUID
    name: str
    why: str
    index: int  # where its row was
    key: RowKey = None  # its row key (the UUID; with several hosts, UUID and host)


class _Rows:
    """``table.rows``: the keys of the rows shown, in order (``key in
    table.rows``, ``list(table.rows)``, ``len``)."""

    __slots__ = ("_table",)

    def __init__(self, table: "DomainTable") -> None:
        self._table = table

    def __contains__(self, key: object) -> bool:
        return key in self._table._shown

    def __iter__(self) -> Iterator[RowKey]:
        return iter(list(self._table._order))

    def __len__(self) -> int:
        return len(self._table._order)


class DomainTable(ScrollView, can_focus=True):
    """The live list of domains: filter by text and state, sort by a column,
    the selection follows the VM. Keys: arrows, PgUp/PgDn, Home/End, Enter
    (:class:`RowSelected`); a click selects a row (and opens it, as Enter
    does); a click on a column's label sorts by it (again: reversed)."""

    BINDINGS = [
        Binding("up", "cursor_up", "Up", show=False),
        Binding("down", "cursor_down", "Down", show=False),
        Binding("pageup", "page_up", "Page up", show=False),
        Binding("pagedown", "page_down", "Page down", show=False),
        Binding("home", "scroll_top", "First", show=False),
        Binding("end", "scroll_bottom", "Last", show=False),
        Binding("enter", "select_cursor", "Open", show=False),
    ]

    COMPONENT_CLASSES = {
        "domain-table--header",
        "domain-table--cursor",
        "domain-table--sort",
    }

    DEFAULT_CSS = """
    DomainTable {
        background: $surface;
        color: $foreground;
        height: 1fr;
        &:focus {
            background-tint: $foreground 5%;
            & > .domain-table--cursor {
                background: $block-cursor-background;
                color: $block-cursor-foreground;
                text-style: $block-cursor-text-style;
            }
            & > .domain-table--header {
                background-tint: $foreground 5%;
            }
        }
        & > .domain-table--header {
            text-style: bold;
            background: $panel;
            color: $foreground;
        }
        &:ansi > .domain-table--header {
            background: ansi_bright_blue;
            color: ansi_default;
        }
        & > .domain-table--cursor {
            background: $block-cursor-blurred-background;
            color: $block-cursor-blurred-foreground;
            text-style: $block-cursor-blurred-text-style;
        }
        & > .domain-table--sort {
            text-style: bold;
        }
    }
    """

    class SelectionLost(Message):
        """The selected VM left the list (see :class:`LostSelection`)."""

        def __init__(self, lost: LostSelection) -> None:
            super().__init__()
            self.lost = lost

    class _RowMessage(Message):
        """A message about one row of the table."""

        def __init__(self, table: "DomainTable", row_key: RowKey) -> None:
            super().__init__()
            self.table = table
            self.row_key = row_key

        @property
        def control(self) -> "DomainTable":
            return self.table

    class RowHighlighted(_RowMessage):
        """Another VM is selected (the cursor moved to it, or it is selected
        again after a lost selection)."""

    class RowSelected(_RowMessage):
        """Enter (or a click) on a row: open it."""

    def __init__(self, *, row_key: Callable[[DomainInfo], RowKey] = fleet_row_key, name: str | None = None,
                 id: str | None = None, classes: str | None = None, disabled: bool = False) -> None:
        super().__init__(name=name, id=id, classes=classes, disabled=disabled)
        self.row_key = row_key
        self.domains: dict[RowKey, DomainInfo] = {}
        self.text_filter = ""
        self.state_filter = 0
        self.sort_key = "name"
        self.sort_reverse = False
        self.lost: LostSelection | None = None
        self.rows = _Rows(self)
        self.group_by_host = False
        self.marks: Marks | None = None  # set by the app: the mark column shows them
        self._with_marks = self._with_host = False  # the mark and Host columns (set_extra_columns)
        self._settling: set[RowKey] = set()  # rows whose CPU graph still moves without a change (refresh_graphs)
        self._hidden: set[str] = {c.key for c in map(as_column, COLUMNS) if c.optional}
        self._columns: list[Column] = []  # the columns shown
        self._order: list[RowKey] = []  # the rows shown, in order
        self._okeys: list[tuple] = []  # their sort keys (ascending), side by side with _order
        self._shown: set[RowKey] = set()
        self._pos: dict[RowKey, int] | None = {}  # row index by key (None: to be rebuilt)
        self._cursor_key: RowKey | None = None
        self._widths: dict[RowKey, tuple[int, ...]] = {}  # measured rows: their cell widths
        self._counts: list[dict[int, int]] = []  # per column: cell width -> rows
        self._col_widths: list[int] = []  # content width of each column shown
        self._to_measure: list[RowKey] = []
        self._measuring = False
        self._lines: dict[RowKey, tuple[tuple, Strip, list[Cell]]] = {}
        self._header: tuple[tuple, Strip] | None = None
        self._gen = 0  # bumped when every line must be drawn again (widths, styles, columns)
        self._styles: tuple[Style, Style, Style, Style] | None = None
        self._total_width = 0
        self._set_columns()

    # --- columns ---------------------------------------------------------------

    def _set_columns(self) -> None:
        extra = ([Column("mark", MARK_LABEL, self._mark_cell)] if self._with_marks else []) + (
            [HOST_COLUMN] if self._with_host else [])
        self._columns = extra + [c for c in map(as_column, COLUMNS) if c.key not in self._hidden]
        self._counts = [{} for _ in self._columns]
        self._col_widths = [cell_len(c.label) for c in self._columns]
        self._gen += 1
        self._widths.clear()
        self._to_measure = list(self._order)
        self._measure_first_page()
        self._fit_widths()
        self._schedule_measuring()

    @property
    def columns(self) -> dict["ColumnKey", Column]:
        """The columns shown, in order, by key (a str with ``.value``, as
        DataTable's column keys have)."""
        return {ColumnKey(c.key): c for c in self._columns}

    @property
    def column_keys(self) -> list[str]:
        """The keys of the columns shown, in order."""
        return [c.key for c in self._columns]

    def column_shown(self, key: str) -> bool:
        return any(c.key == key for c in self._columns)

    def show_column(self, key: str, shown: bool) -> None:
        """Show or hide an optional column (OPTIONAL_COLUMNS)."""
        if key not in OPTIONAL_COLUMNS or self.column_shown(key) == shown:
            return
        self.set_column_shown(key, shown)
        if key == "graph":
            self._settling = {k for k, d in self.domains.items() if d.history is not None} if shown else set()

    def _mark_cell(self, d: DomainInfo) -> Cell:
        marked = self.marks is not None and self.row_key(d) in self.marks
        return Cell(MARK_LABEL if marked else "", 0 if marked else 1, "bold")

    def set_extra_columns(self, *, host: bool, marks: bool) -> bool:
        """Show or hide the Host column (several hosts) and the mark column
        (VMs are marked). True when that changed."""
        if (host, marks) == (self._with_host, self._with_marks):
            return False
        self._with_host, self._with_marks = host, marks
        if self.sort_key in ("host", "mark") and not self.column_shown(self.sort_key):
            self.sort_key, self.sort_reverse = "name", False
        self._set_columns()
        if self.group_by_host:
            self._resort()
        self._changed_everything()
        return True

    def refresh_marks(self, keys: Iterable[RowKey]) -> None:
        """The marks of ``keys`` changed: redraw their rows."""
        if self._with_marks:
            self._redraw_rows([k for k in keys if k in self._shown])

    def refresh_graphs(self) -> None:
        """Move the CPU graphs of the rows whose figures stopped changing (run
        at each stats tick): their history repeats their last sample, and no
        row change says so. Only rows changed in the last GRAPH_WIDTH ticks
        are looked at."""
        if not self.column_shown("graph"):
            self._settling.clear()
            return
        keys = []
        widened = False
        for key in list(self._settling):
            d = self.domains.get(key)
            ring = d.history if d is not None else None
            if ring is None or ring.clock.tick - ring.last >= GRAPH_WIDTH:
                self._settling.discard(key)  # its bars are all its last figure now
            if d is not None and key in self._shown:
                keys.append(key)
                widened |= self._measure(key)
        if widened and self._fit_widths():
            self._changed_everything()
        else:
            self._redraw_rows(keys)

    def set_column_shown(self, key: str, shown: bool = True) -> None:
        """Show or hide a column (an optional one, typically)."""
        if key not in column_keys():
            raise KeyError(key)
        if shown == (key not in self._hidden):
            return
        (self._hidden.discard if shown else self._hidden.add)(key)
        if not shown and self.sort_key == key:
            self.sort_key, self.sort_reverse = "name", False
            self._resort()
        self._set_columns()
        self._changed_everything()

    @staticmethod
    def cells(d: DomainInfo) -> list[Cell]:
        """Every column's cell of ``d`` (shown or not)."""
        return [as_column(c).build(d) for c in COLUMNS]

    def get_cell(self, key: RowKey, column: str) -> Cell:
        """The cell of row ``key`` in ``column`` (KeyError: no such row)."""
        d = self.domains[key]
        for c in [*self._columns, *map(as_column, COLUMNS)]:
            if c.key == column:
                return c.build(d)
        raise KeyError(column)

    # --- what is shown --------------------------------------------------

    def matches(self, d: DomainInfo) -> bool:
        if not STATE_FILTERS[self.state_filter][1](d):
            return False
        return matches_text(d, self.text_filter)

    @property
    def row_count(self) -> int:
        return len(self._order)

    def visible_keys(self) -> list[RowKey]:
        """The keys of the rows shown, in order."""
        return list(self._order)

    def visible_uuids(self) -> list[str]:
        """The UUIDs of the rows shown, in order."""
        domains = self.domains
        return [domains[k].uuid for k in self._order]

    def keys_on_screen(self) -> list[RowKey]:
        """The keys of the rows on screen now (the titles pass reads these first)."""
        top = int(self.scroll_y)
        return self._order[top:top + self._page() + 1]

    @property
    def show_cursor(self) -> bool:
        """False while the selection is lost (nothing is selected)."""
        return self.lost is None

    @property
    def selected_key(self) -> RowKey | None:
        if self.lost is not None or self._cursor_key not in self._shown:
            return None
        return self._cursor_key

    @property
    def selected(self) -> DomainInfo | None:
        key = self.selected_key
        return None if key is None else self.domains.get(key)

    @property
    def selected_uuid(self) -> str | None:
        d = self.selected
        return None if d is None else d.uuid

    @property
    def cursor_row(self) -> int:
        """The index of the selected row (of the lost one's place while the
        selection is lost; 0 in an empty list)."""
        key = self.selected_key
        if key is not None:
            return self._index()[key]
        if self.lost is not None:
            return min(self.lost.index, max(0, len(self._order) - 1))
        return 0

    def _index(self) -> dict[RowKey, int]:
        if self._pos is None:
            self._pos = {key: i for i, key in enumerate(self._order)}
        return self._pos

    # --- sort keys --------------------------------------------------------

    def _sort_column(self) -> Column:
        for c in self._columns:
            if c.key == self.sort_key:
                return c
        for c in map(as_column, COLUMNS):
            if c.key == self.sort_key:
                return c
        return as_column(COLUMNS[0])

    def _okey_fn(self) -> Callable[[RowKey, DomainInfo], tuple]:
        """The sort key of a row: its column's value (reversed when sorting
        largest first), then its name, then its key -- the order is the
        same whichever way rows arrive."""
        value = self._sort_column().sort
        reverse = self.sort_reverse
        grouped = self.group_by_host and self._with_host

        def okey(key: RowKey, d: DomainInfo) -> tuple:
            v = value(d)
            if reverse:
                v = -v if isinstance(v, (int, float)) else _Desc(v)
            if grouped:  # the rows of one host together, in the sort order within it
                return (d.host.lower(), v, d.name.lower(), key)
            return (v, d.name.lower(), key)

        return okey

    def _resort(self) -> None:
        """Sort every row shown again (the sort column or direction changed)."""
        okey, domains = self._okey_fn(), self.domains
        pairs = sorted(((okey(k, domains[k]), k) for k in self._order), key=lambda p: p[0])
        self._okeys = [p[0] for p in pairs]
        self._order = [p[1] for p in pairs]
        self._pos = None

    # --- feeding it -------------------------------------------------------

    def reset(self, domains: Iterable[DomainInfo]) -> None:
        """Replace everything (after connecting or reconnecting)."""
        keep = self.selected_key
        index = self.cursor_row
        old = self.domains.get(keep) if keep is not None else None
        self.domains = {self.row_key(d): d for d in domains}
        self.rebuild(keep)
        if old is not None and keep not in self._shown:
            self._lose(old, keep, "hidden" if keep in self.domains else "removed", index)

    def rebuild(self, keep: RowKey | None = None) -> None:
        """Re-fill from ``self.domains`` (the filter changed). The selected
        VM stays selected if it still shows; if the user's new filter hides
        it, the first row is selected (a lost selection shown again is
        selected again)."""
        if keep is None:
            keep = self.selected_key if self.lost is None else self.lost.key
        okey, match = self._okey_fn(), self.matches
        pairs = sorted(((okey(k, d), k) for k, d in self.domains.items() if match(d)), key=lambda p: p[0])
        self._okeys = [p[0] for p in pairs]
        self._order = [p[1] for p in pairs]
        self._shown = set(self._order)
        self._pos = None
        for counts in self._counts:
            counts.clear()
        self._widths.clear()
        self._to_measure = list(self._order)
        if keep is not None and keep in self._shown:
            if self.lost is not None:  # shown again: selected again
                self._found()
                self._set_cursor(keep, scroll=False)
            else:
                self._cursor_key = keep
        elif self.lost is None:
            self._cursor_key = None
        self._ensure_cursor()
        self._scroll_to_cursor()
        self._measure_first_page()
        self._fit_widths()
        self._schedule_measuring()
        self._changed_everything()

    def upsert(self, changed: Iterable[DomainInfo]) -> None:
        """Update rows in place; add or drop rows whose filter match changed."""
        with self._keeping_selection():
            self._upsert(changed)

    def _upsert(self, changed: Iterable[DomainInfo]) -> None:
        okey, shown = self._okey_fn(), self._shown
        leaving: list[RowKey] = []
        placing: list[tuple[tuple, RowKey]] = []
        redraw: list[RowKey] = []
        graph = self.column_shown("graph")
        for d in changed:
            key = self.row_key(d)
            self.domains[key] = d
            if graph and d.history is not None:
                self._settling.add(key)
            if not self.matches(d):
                if key in shown:
                    leaving.append(key)
                continue
            new = okey(key, d)
            if key in shown:
                i = self._index()[key]
                if self._okeys[i] != new:
                    leaving.append(key)
                    placing.append((new, key))
                else:
                    redraw.append(key)
            else:
                placing.append((new, key))
        if leaving:
            self._take_out(leaving, keep_measured={k for _, k in placing})
        if len(placing) > max(256, len(self._order) // 8):  # many rows move: one sort
            pairs = sorted([*zip(self._okeys, self._order), *placing])
            self._okeys = [p[0] for p in pairs]
            self._order = [p[1] for p in pairs]
            self._shown.update(key for _, key in placing)
        else:
            for new, key in placing:
                i = bisect.bisect_left(self._okeys, new)
                self._okeys.insert(i, new)
                self._order.insert(i, key)
                self._shown.add(key)
        if placing:
            self._pos = None
        moved = bool(leaving or placing)
        widened = False
        for key in redraw:
            widened |= self._measure(key)
        for _, key in placing:
            widened |= self._measure(key)
        if widened:
            widened = self._fit_widths()
        if moved or widened:
            self._changed_everything()
        else:
            self._redraw_rows(redraw)

    def drop(self, key: RowKey) -> None:
        """The VM is gone from the host."""
        self.drop_many([key])

    def drop_many(self, keys: Iterable[RowKey]) -> None:
        """The VMs are gone from the host."""
        gone = set(keys)
        with self._keeping_selection():
            shown = []
            for key in gone:
                self.domains.pop(key, None)
                if key in self._shown:
                    shown.append(key)
            if shown:
                self._take_out(shown)
                self._fit_widths()
                self._changed_everything()
        lost = self.lost
        if lost is not None and lost.key in gone and lost.why != "removed":
            self.lost = LostSelection(lost.uuid, lost.name, "removed", lost.index, lost.key)  # hidden, now gone too

    def _take_out(self, keys: list[RowKey], keep_measured: set[RowKey] = frozenset()) -> None:
        """Remove rows from the order: one by one when few, else by joining
        the slices between them (list operations in C either way)."""
        index = self._index()
        positions = sorted(index[key] for key in keys)
        if len(positions) <= 32:
            for i in reversed(positions):
                del self._order[i]
                del self._okeys[i]
        else:
            order, okeys, start = [], [], 0
            for i in positions:
                order += self._order[start:i]
                okeys += self._okeys[start:i]
                start = i + 1
            order += self._order[start:]
            okeys += self._okeys[start:]
            self._order, self._okeys = order, okeys
        self._pos = None
        for key in keys:
            self._shown.discard(key)
            self._lines.pop(key, None)
            if key not in keep_measured:
                self._forget(key)

    # --- column widths ----------------------------------------------------

    def _measure(self, key: RowKey) -> bool:
        """Measure row ``key``'s cells; True if a column's width changed."""
        d = self.domains[key]
        new = tuple(c.build(d).width for c in self._columns)
        old = self._widths.get(key)
        if old == new:
            return False
        self._widths[key] = new
        changed = False
        for j, (counts, w) in enumerate(zip(self._counts, new)):
            if old is not None:
                o = old[j]
                if o == w:
                    continue
                n = counts[o] - 1
                if n:
                    counts[o] = n
                else:
                    del counts[o]
                    changed |= o >= self._col_widths[j]
            counts[w] = counts.get(w, 0) + 1
            changed |= w > self._col_widths[j]
        return changed

    def _forget(self, key: RowKey) -> None:
        old = self._widths.pop(key, None)
        if old is None:
            return
        for counts, w in zip(self._counts, old):
            n = counts[w] - 1
            if n:
                counts[w] = n
            else:
                del counts[w]

    def _fit_widths(self) -> bool:
        """Each column as wide as its widest cell measured, or its label;
        True if a width changed."""
        widths = [max(cell_len(c.label), max(counts, default=0)) for c, counts in zip(self._columns, self._counts)]
        changed = widths != self._col_widths
        if changed:
            self._col_widths = widths
            self._gen += 1
        total = sum(widths) + 2 * PAD * len(widths)
        if total != self._total_width:
            self._total_width = total
            self._update_virtual_size()
        return changed

    def _measure_first_page(self) -> None:
        top = int(self.scroll_y) if self.is_mounted else 0
        page = self._order[top:top + max(self._page(), 50) + 1]
        for key in page:
            if key not in self._widths:
                self._measure(key)

    def _schedule_measuring(self) -> None:
        """Measure the other rows in slices after the next frame."""
        if self._measuring or not self._to_measure or not self.is_mounted:
            return
        self._measuring = True
        self.call_after_refresh(self._measure_slice)

    def _measure_slice(self) -> None:
        self._measuring = False
        todo, shown, measured = self._to_measure, self._shown, self._widths
        widened = False
        done = 0
        while todo and done < MEASURE_SLICE:
            key = todo.pop()
            if key in shown and key not in measured:
                widened |= self._measure(key)
                done += 1
        if widened and self._fit_widths():
            self._lines.clear()
            self.refresh()
        if todo:
            self._measuring = True
            self.set_timer(0.005, self._measure_slice)

    # --- drawing ------------------------------------------------------------

    def _page(self) -> int:
        """Rows on screen."""
        if not self.is_mounted:
            return 40
        return max(1, self.scrollable_content_region.height - 1)

    def _update_virtual_size(self) -> None:
        size = Size(self._total_width, len(self._order) + 1)
        if self.virtual_size != size:
            self.virtual_size = size

    def _changed_everything(self) -> None:
        """Rows moved or widths changed: draw every line again."""
        self._update_virtual_size()
        self._lines.clear()
        self._header = None
        self._scroll_to_cursor()
        self.refresh()

    def _redraw_rows(self, keys: list[RowKey]) -> None:
        """Rows changed in place: repaint those on screen whose cells changed."""
        if not keys or not self.is_mounted:
            return
        top = int(self.scroll_y)
        bottom = top + self._page()
        index = self._index()
        for key in keys:
            i = index.get(key)
            if i is None or not top <= i < bottom:
                self._lines.pop(key, None)
                continue
            entry = self._lines.get(key)
            if entry is not None:
                d = self.domains[key]
                if [c.build(d) for c in self._columns] == entry[2]:
                    continue
                del self._lines[key]
            self.refresh_line(i + 1)

    def refresh_line(self, y: int) -> None:
        """Repaint line ``y`` of the content (0: the header; row i is line i + 1)."""
        self.refresh(Region(0, y - int(self.scroll_y), max(self._total_width, self.size.width), 1))

    def clear_caches(self) -> None:
        """Forget the lines drawn (the next frame draws every line anew)."""
        self._lines.clear()
        self._header = None
        self.refresh()

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._styles = None
        self._gen += 1
        self._lines.clear()

    def _get_styles(self) -> tuple[Style, Style, Style, Style]:
        if self._styles is None:
            base = self.rich_style
            header = self.get_component_rich_style("domain-table--header")
            cursor = self.get_component_rich_style("domain-table--cursor")
            sort = self.get_component_rich_style("domain-table--sort", partial=True)
            if self.app.no_color:
                cursor += Style(reverse=True)  # no colours: the cursor row still shows
            self._styles = (base, header, cursor, sort)
        return self._styles

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        scroll_x = int(self.scroll_x)
        if y == 0:
            strip = self._header_strip()
        else:
            i = int(self.scroll_y) + y - 1
            if i >= len(self._order):
                return Strip.blank(width, self._get_styles()[0])
            strip = self._row_strip(i)
        if scroll_x or strip.cell_length != width:
            strip = strip.crop(scroll_x, scroll_x + width).adjust_cell_length(width, self._get_styles()[0])
        return strip

    def _header_strip(self) -> Strip:
        sig = (self._gen, self.sort_key, self.sort_reverse)
        if self._header is not None and self._header[0] == sig:
            return self._header[1]
        _, header, _, sort_style = self._get_styles()
        segments = []
        pad = " " * PAD
        for c, w in zip(self._columns, self._col_widths):
            label = c.label
            if c.key != self.sort_key:
                text = label.rjust(w) if c.largest_first else label.ljust(w)
                segments.append(Segment(pad + text + pad, header))
                continue
            # the sort mark right after the label: in the padding when the
            # label is right-aligned or fills its column (widths never move)
            mark = SORT_DOWN if self.sort_reverse else SORT_UP
            room = w - cell_len(label)
            before = " " * room if c.largest_first or not room else ""
            after = " " * (room - 1) if room and not c.largest_first else ""
            inside = not c.largest_first and room > 0
            segments.append(Segment(pad + before + label, header))
            segments.append(Segment(mark, header + sort_style))
            segments.append(Segment(after + (pad if inside else pad[1:]), header))
        strip = Strip(segments).adjust_cell_length(max(self._total_width, self.size.width), header)
        self._header = (sig, strip)
        return strip

    def _row_strip(self, i: int) -> Strip:
        key = self._order[i]
        focused = self.has_focus
        state = 0 if key != self._cursor_key or self.lost is not None else (1 if focused else 2)
        sig = (self._gen, state)
        entry = self._lines.get(key)
        if entry is not None and entry[0] == sig:
            return entry[1]
        if key not in self._widths and self._measure(key) and self._fit_widths():
            self._lines.clear()
            self.call_after_refresh(self.refresh)
        base, _, cursor, _ = self._get_styles()
        row_style = cursor if state else base
        d = self.domains[key]
        cells = [c.build(d) for c in self._columns]
        pad = " " * PAD
        segments: list[Segment] = []
        for cell, w in zip(cells, self._col_widths):
            segments.append(Segment(pad, row_style))
            segments.extend(_cell_segments(cell, w, row_style, bool(state)))
            segments.append(Segment(pad, row_style))
        strip = Strip(segments).adjust_cell_length(max(self._total_width, self.size.width), row_style)
        if len(self._lines) >= LINE_CACHE:
            self._lines.clear()
        self._lines[key] = (sig, strip, cells)
        return strip

    # --- the cursor -------------------------------------------------------

    def _ensure_cursor(self) -> None:
        """Rows shown and nothing selected (not lost): select the first."""
        if self.lost is None and self._cursor_key not in self._shown:
            self._cursor_key = None
            if self._order:
                self._set_cursor(self._order[0])

    def _set_cursor(self, key: RowKey | None, scroll: bool = True) -> None:
        old = self._cursor_key if self.lost is None else None
        self._cursor_key = key
        if old is not None:
            self._lines.pop(old, None)
        if key is not None:
            self._lines.pop(key, None)
        if scroll:
            self._scroll_to_cursor()
        if self.is_mounted:
            index = self._index()
            for k in (old, key):
                if k is not None and k in index:
                    self.refresh_line(index[k] + 1)
        if key is not None and key != old:
            self.post_message(self.RowHighlighted(self, key))

    def move_cursor(self, *, row: int, animate: bool = False, scroll: bool = True) -> None:
        """Select the row at index ``row`` (clamped)."""
        if not self._order:
            return
        row = min(max(row, 0), len(self._order) - 1)
        if self.lost is not None:
            self._found()
        self._set_cursor(self._order[row], scroll)

    def _scroll_to_cursor(self) -> None:
        if not self.is_mounted or self.lost is not None:
            return
        key = self.selected_key
        if key is None:
            return
        i = self._index()[key]
        page = self._page()
        top = int(self.scroll_y)
        if i < top:
            self.scroll_to(y=i, animate=False, force=True)
        elif i >= top + page:
            self.scroll_to(y=i - page + 1, animate=False, force=True)

    def select(self, key: RowKey | None) -> None:
        """Put the cursor on ``key``'s row (if shown); a lost selection ends."""
        if key is None or key not in self._shown:
            return
        if self.lost is not None:
            self._found()
        self._set_cursor(key)

    def _step(self, delta: int) -> None:
        if not self._order:
            return
        self.move_cursor(row=self.cursor_row + delta)

    def action_cursor_down(self) -> None:
        if not self._wake(0):
            self._step(1)

    def action_cursor_up(self) -> None:
        if not self._wake(-1):
            self._step(-1)

    def action_page_down(self) -> None:
        self._wake(0)
        if not self._order:
            return
        page = self._page()
        target = min(self.cursor_row + page, len(self._order) - 1)
        self.scroll_to(y=int(self.scroll_y) + page, animate=False, force=True)
        self.move_cursor(row=target)

    def action_page_up(self) -> None:
        self._wake(-1)
        if not self._order:
            return
        page = self._page()
        target = max(self.cursor_row - page, 0)
        self.scroll_to(y=max(0, int(self.scroll_y) - page), animate=False, force=True)
        self.move_cursor(row=target)

    def action_scroll_top(self) -> None:
        self._wake(0)
        self.move_cursor(row=0)

    def action_scroll_bottom(self) -> None:
        self._wake(0)
        self.move_cursor(row=len(self._order) - 1)

    def action_select_cursor(self) -> None:
        key = self.selected_key
        if key is not None:
            self.post_message(self.RowSelected(self, key))

    async def _on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None:
            return
        event.stop()
        if offset.y == 0:
            self._sort_by_label(offset.x + int(self.scroll_x))
            return
        row = int(self.scroll_y) + offset.y - 1
        if 0 <= row < len(self._order):
            self.move_cursor(row=row)
            self.action_select_cursor()

    def _sort_by_label(self, x: int) -> None:
        """A click on a column's label sorts by it (again: reversed)."""
        for c, w in zip(self._columns, self._col_widths):
            span = w + 2 * PAD
            if x < span:
                if c.key == self.sort_key:
                    self.reverse_sort()
                elif c.key in SORTABLE:
                    self.sort_by(c.key)
                return
            x -= span

    def _on_focus(self, event: events.Focus) -> None:
        self._lines.clear()
        self.refresh()

    def _on_blur(self, event: events.Blur) -> None:
        self._lines.clear()
        self.refresh()

    def on_resize(self, event: events.Resize) -> None:
        self._measure_first_page()
        self._fit_widths()
        self._lines.clear()
        self._header = None
        self._scroll_to_cursor()

    def on_mount(self) -> None:
        self._update_virtual_size()
        self._schedule_measuring()

    # --- the selected VM leaving the list ------------------------------------

    def _lose(self, d: DomainInfo, key: RowKey, why: str, index: int) -> None:
        """The selected VM ``d`` is no longer shown: select nothing."""
        self.lost = LostSelection(d.uuid, d.name, why, index, key)
        if key in self._lines:
            del self._lines[key]
        self.refresh()
        self.post_message(self.SelectionLost(self.lost))

    def _found(self) -> None:
        """Selecting a row again: show the cursor."""
        self.lost = None
        self._cursor_key = None  # the next _set_cursor tells RowHighlighted
        self.refresh()

    def _wake(self, offset: int) -> bool:
        """The first cursor key after the selected VM left: select the row
        that followed it (``offset`` 0, down) or preceded it (-1, up),
        without skipping one. False when nothing was lost."""
        lost = self.lost
        if lost is None:
            return False
        self._found()
        if self._order:
            row = min(max(lost.index + offset, 0), len(self._order) - 1)
            self._set_cursor(self._order[row])
        return True

    @contextmanager
    def _keeping_selection(self):
        """A context in which rows come and go: afterwards the selected VM
        is selected again, wherever its row went; if it went away, the
        selection is lost (see :meth:`_lose`). A lost VM shown again is
        selected again."""
        key = self.selected_key
        index = self.cursor_row
        before = self.domains.get(key) if key is not None else None
        yield
        if key is None:
            if self.lost is not None and self.lost.key in self._shown:
                self.select(self.lost.key)  # it matches again, or was defined again
            else:
                self._ensure_cursor()
        elif key in self._shown:
            self._scroll_to_cursor()
        elif (d := self.domains.get(key)) is not None:
            self._lose(d, key, "hidden", index)
        elif before is not None:
            self._lose(before, key, "removed", index)

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

    def sort_by(self, column: str, reverse: bool | None = None) -> str:
        """Sort by ``column`` (numbers largest first unless ``reverse`` says
        otherwise); the label of the column."""
        col = next((c for c in map(as_column, COLUMNS) if c.key == column), None)
        if col is None:
            raise KeyError(column)
        self.sort_key = column
        self.sort_reverse = col.largest_first if reverse is None else reverse
        self._apply_sort()
        return col.label

    def cycle_sort(self) -> str:
        keys = [k for k in SORTABLE if self.column_shown(k)] or ["name"]
        i = keys.index(self.sort_key) if self.sort_key in keys else -1
        return self.sort_by(keys[(i + 1) % len(keys)])

    def reverse_sort(self) -> None:
        self.sort_reverse = not self.sort_reverse
        self._apply_sort()

    def toggle_group_by_host(self) -> bool:
        """Rows of one host together (in the sort order within it)."""
        self.group_by_host = not self.group_by_host
        self._apply_sort()
        return self.group_by_host

    def _apply_sort(self) -> None:
        self._resort()
        self._header = None
        self._changed_everything()


def _cell_segments(cell: Cell, width: int, style: Style, cursor: bool) -> list[Segment]:
    """A cell's text in ``width`` columns: justified, cropped if it must be."""
    plain = cell.plain
    simple = plain.isascii() and plain.isprintable()
    text_style = style + _style(cell.style) if cell.style else style
    if cursor and cell.style:
        text_style += style  # the cursor's colours win over the cell's (as DataTable draws it)
    if cell.text is None and simple:
        length = len(plain)
        if length > width:
            plain, length = plain[:width], width
        gap = " " * (width - length)
        if cell.justify == "right":
            return [Segment(gap, style), Segment(plain, text_style)] if gap else [Segment(plain, text_style)]
        return [Segment(plain, text_style), Segment(gap, style)] if gap else [Segment(plain, text_style)]
    text = cell.text.copy() if cell.text is not None else Text(plain)
    text.plain = text.plain.replace("\n", " ")
    text.truncate(width, overflow="crop")
    segments = [Segment(s.text, (text_style + s.style) if s.style else text_style)
                for s in text.render(_console()) if not s.control]
    length = sum(s.cell_length for s in segments)
    gap = Segment(" " * max(0, width - length), style)
    return [gap, *segments] if cell.justify == "right" else [*segments, gap]


@lru_cache(maxsize=256)
def _style(spec: str) -> Style:
    return Style.parse(spec)


_CONSOLE = None


def _console():
    """Rich's Text.render wants a console for its options (cells with spans only)."""
    global _CONSOLE
    if _CONSOLE is None:
        from rich.console import Console
        _CONSOLE = Console(width=1000, color_system=None, legacy_windows=False)
    return _CONSOLE
