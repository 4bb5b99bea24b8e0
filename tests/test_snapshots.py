"""Snapshot tests of the main screens (pytest-textual-snapshot).

Update on purpose with: pytest tests/test_snapshots.py --snapshot-update
"""

from __future__ import annotations

from vmtui.core.config import Config
from vmtui.core.service import LibvirtService
from vmtui.ui.app import VmtuiApp

from .conftest import DELTA, SMALL_HOST, host_uri, wait_for


def _app() -> VmtuiApp:
    return VmtuiApp(LibvirtService(host_uri(SMALL_HOST), stats_interval=3600, reconnect=False), Config())


async def _loaded(pilot) -> None:
    app = pilot.app
    await wait_for(lambda: app.ready and app.table.row_count == 5, what="list")
    await app.service.wait_loaded()
    await wait_for(lambda: app.table.domains[DELTA].title == "Delta database", what="titles")
    app.table.select(DELTA)
    await pilot.pause()


def test_domain_list_80x24(snap_compare):
    assert snap_compare(_app(), terminal_size=(80, 24), run_before=_loaded)


def test_domain_list_120x40(snap_compare):
    assert snap_compare(_app(), terminal_size=(120, 40), run_before=_loaded)


def test_help_80x24(snap_compare):
    async def run_before(pilot):
        await _loaded(pilot)
        await pilot.press("question_mark")
        await pilot.pause()

    assert snap_compare(_app(), terminal_size=(80, 24), run_before=run_before)


def test_delete_dialog_80x24(snap_compare):
    async def run_before(pilot):
        await _loaded(pilot)
        pilot.app.table.select("11111111-1111-4111-8111-000000000001")
        await pilot.press("D")
        await wait_for(lambda: type(pilot.app.screen).__name__ == "DeleteDialog", what="dialog")
        await pilot.pause()

    assert snap_compare(_app(), terminal_size=(80, 24), run_before=run_before)


def test_details_120x40(snap_compare):
    async def run_before(pilot):
        await _loaded(pilot)
        await pilot.press("enter")
        await wait_for(lambda: "Loading" not in str(pilot.app.screen.query_one("#details").content),
                       what="details")
        await pilot.pause()

    assert snap_compare(_app(), terminal_size=(120, 40), run_before=run_before)
