"""The domain list widget on its own (no libvirt): rows keyed by any key,
the sort mark in the header, optional columns, keys and clicks, the lines
it draws and the ones it does not draw again."""

from __future__ import annotations

from textual.app import App, ComposeResult

from vmtui.core.connection.rows import DomainInfo, DomainStats
from vmtui.ui import domain_table
from vmtui.ui.domain_table import Cell, Column, DomainTable, SORT_DOWN, SORT_UP

from .conftest import wait_for


def dom(i: int, name: str | None = None, state: int = 1, cpu: float | None = None, title: str = "") -> DomainInfo:
    return DomainInfo(uuid=f"00000000-0000-4000-8000-{i:012d}", name=name or f"vm-{i:05d}", id=None,
                      state_code=state, vcpus=1 + i % 4, memory_kib=1024 * 1024, title=title,
                      stats=DomainStats(cpu_percent=cpu))


class TableApp(App):
    def __init__(self, table: DomainTable) -> None:
        super().__init__()
        self.table = table
        self.seen: list = []

    def compose(self) -> ComposeResult:
        yield self.table

    def on_mount(self) -> None:
        self.table.focus()

    def on_domain_table_row_highlighted(self, message: DomainTable.RowHighlighted) -> None:
        self.seen.append(("highlighted", message.row_key))

    def on_domain_table_row_selected(self, message: DomainTable.RowSelected) -> None:
        self.seen.append(("selected", message.row_key))

    def on_domain_table_selection_lost(self, message: DomainTable.SelectionLost) -> None:
        self.seen.append(("lost", message.lost.key))


def line(table: DomainTable, y: int) -> str:
    return table.render_line(y).text


async def test_the_header_marks_the_sort_column_without_moving_columns():
    table = DomainTable()
    app = TableApp(table)
    async with app.run_test(size=(100, 12)) as pilot:
        table.reset([dom(1, "alpha", cpu=5.0), dom(2, "bravo", cpu=50.0), dom(3, "charlie")])
        await pilot.pause()
        header = line(table, 0)
        assert f"Name{SORT_UP}" in header
        assert [line(table, y).split()[0] for y in (1, 2, 3)] == ["alpha", "bravo", "charlie"]
        table.sort_by("cpu")  # largest first
        await pilot.pause()
        by_cpu = line(table, 0)
        assert f"CPU%{SORT_DOWN}" in by_cpu and SORT_UP not in by_cpu
        assert by_cpu.index("State") == header.index("State") and by_cpu.index("Title") == header.index("Title")
        assert [line(table, y).split()[0] for y in (1, 2, 3)] == ["bravo", "alpha", "charlie"]
        table.reverse_sort()
        await pilot.pause()
        assert f"CPU%{SORT_UP}" in line(table, 0)
        # a click on a label sorts by that column; on the same one again, reversed
        await pilot.click(DomainTable, offset=(header.index("Name") + 1, 0))
        await pilot.pause()
        assert table.sort_key == "name" and not table.sort_reverse
        await pilot.click(DomainTable, offset=(header.index("Name") + 1, 0))
        await pilot.pause()
        assert table.sort_reverse and f"Name{SORT_DOWN}" in line(table, 0)
        assert table.visible_keys()[0] == dom(3).uuid


async def test_rows_are_keyed_by_the_key_the_caller_chooses():
    table = DomainTable(row_key=lambda d: (d.id, d.uuid))  # e.g. (host, UUID)
    app = TableApp(table)
    one, other = dom(1, "web"), dom(1, "web")  # the same UUID on two hosts
    one.id, other.id = 1, 2
    async with app.run_test(size=(100, 12)) as pilot:
        table.reset([one, other, dom(2, "db")])
        await pilot.pause()
        assert table.row_count == 3
        table.select((2, one.uuid))
        await pilot.pause()
        assert table.selected_key == (2, one.uuid) and table.selected is other
        assert table.selected_uuid == one.uuid
        table.drop_many([(1, one.uuid)])
        await pilot.pause()
        assert (1, one.uuid) not in table.rows and table.selected_key == (2, one.uuid)
        table.drop((2, one.uuid))
        await pilot.pause()
        assert table.selected is None and table.lost is not None and table.lost.key == (2, one.uuid)
        assert ("lost", (2, one.uuid)) in app.seen


async def test_optional_columns_are_hidden_until_shown(monkeypatch):
    columns = list(domain_table.COLUMNS)
    columns.append(Column("ip", "Address", lambda d: Cell(f"10.0.0.{d.vcpus}"), optional=True))
    columns.append(("host", "Host", lambda d: Cell("h1")))  # the (key, label, builder) form still works
    monkeypatch.setattr(domain_table, "COLUMNS", columns)
    table = DomainTable()
    app = TableApp(table)
    async with app.run_test(size=(140, 12)) as pilot:
        table.reset([dom(1, "alpha"), dom(2, "bravo")])
        await pilot.pause()
        assert "Address" not in line(table, 0) and "Host" in line(table, 0)
        table.set_column_shown("ip")
        await pilot.pause()
        assert "Address" in line(table, 0) and "10.0.0.2" in line(table, 1)
        assert str(table.get_cell(dom(1).uuid, "ip")) == "10.0.0.2"
        table.set_column_shown("ip", False)
        await pilot.pause()
        assert "Address" not in line(table, 0)
        assert [k for k, *_ in domain_table.COLUMNS][:2] == ["name", "state"]  # columns unpack as triples


async def test_keys_move_the_cursor_by_row_and_by_page_and_enter_opens():
    table = DomainTable()
    app = TableApp(table)
    async with app.run_test(size=(100, 12)) as pilot:  # 12 lines: the header and 11 rows
        table.reset([dom(i) for i in range(100)])
        await pilot.pause()
        assert table.cursor_row == 0
        await pilot.press("down", "down")
        assert table.cursor_row == 2
        await pilot.press("pagedown")
        assert table.cursor_row == 13
        assert int(table.scroll_y) <= 13 < int(table.scroll_y) + 11
        await pilot.press("end")
        assert table.cursor_row == 99 and line(table, 11).split()[0] == "vm-00099"
        await pilot.press("pageup", "home")
        assert table.cursor_row == 0 and int(table.scroll_y) == 0
        await pilot.press("enter")
        await pilot.pause()
        assert app.seen[-1] == ("selected", dom(0).uuid)
        # a click selects the row and opens it, as Enter does
        await pilot.click(DomainTable, offset=(3, 4))
        await pilot.pause()
        assert table.selected_key == dom(3).uuid and app.seen[-1] == ("selected", dom(3).uuid)
        assert ("highlighted", dom(3).uuid) in app.seen


async def test_the_selection_follows_the_vm_and_is_lost_when_it_leaves():
    table = DomainTable()
    app = TableApp(table)
    async with app.run_test(size=(100, 12)) as pilot:
        rows = [dom(i, state=1) for i in range(5)]
        table.reset(rows)
        table.cycle_state_filter()  # running only
        table.select(rows[2].uuid)
        await pilot.pause()
        table.upsert([dom(0, "zzz", state=1)])  # renamed: moves below the selected row
        await pilot.pause()
        assert table.selected_key == rows[2].uuid and table.cursor_row == 1
        table.upsert([dom(2, state=5)])  # the selected VM stops: hidden by the filter
        await pilot.pause()
        assert table.selected is None and not table.show_cursor and table.lost.why == "hidden"
        await pilot.press("down")  # selects the row that took its place
        assert table.selected_key == rows[3].uuid and table.show_cursor
        table.upsert([dom(3, state=5)])  # lost again...
        await pilot.pause()
        assert table.lost is not None and table.lost.key == rows[3].uuid
        table.cycle_state_filter()  # ... until a filter shows it: selected again
        await pilot.pause()
        assert table.state_filter_label == "shut off" and table.selected_key == rows[3].uuid and table.show_cursor


async def test_an_update_repaints_only_lines_on_screen_whose_text_changed():
    table = DomainTable()
    app = TableApp(table)
    async with app.run_test(size=(100, 12)) as pilot:
        rows = [dom(i, cpu=1.0) for i in range(200)]
        table.reset(rows)
        await pilot.pause()
        painted = []
        table.refresh_line = lambda y: painted.append(y)
        refreshed = []
        real_refresh = table.refresh
        table.refresh = lambda *a, **k: (refreshed.append(a), real_refresh(*a, **k))[1]
        table.upsert([dom(150, cpu=7.0)])  # off screen
        table.upsert([dom(3, cpu=1.04)])  # on screen, but "1.0" either way
        await pilot.pause()
        assert painted == [] and refreshed == []
        table.upsert([dom(3, cpu=2.0)])
        await pilot.pause()
        assert painted == [4] and refreshed == []
        assert "2.0" in line(table, 4)


async def test_the_first_page_is_drawn_before_every_row_is_measured():
    table = DomainTable()
    app = TableApp(table)
    rows = [dom(i) for i in range(3000)] + [dom(3000, "z" + "-very-long-name" * 3)]
    async with app.run_test(size=(100, 12)) as pilot:
        table.reset(rows)
        assert len(table._widths) < len(rows)  # only the first page so far
        await wait_for(lambda: len(table._widths) == len(rows), what="every row measured")
        await pilot.pause()
        assert line(table, 0).index("State") > len("z" + "-very-long-name" * 3)
