"""Snapshot tests of the fleet's screens (issue 15): the list of two hosts
with a marked VM, the migration dialog after its checks, the connections
screen and the bulk confirmation.

Update on purpose with: pytest tests/test_snapshots_fleet.py --snapshot-update
"""

from __future__ import annotations

from vmtui.core.config import Config, SavedConnection
from vmtui.core.connection.service import LibvirtService
from vmtui.core.fleet.model import key_of
from vmtui.ui.app import VmtuiApp

from .conftest import ALPHA, DATA, DELTA, SMALL_HOST, host_uri, press_button, wait_for

FLEET_B = DATA / "host-fleet-b.xml"
FOXTROT = "44444444-4444-4444-8444-000000000002"


def _app() -> VmtuiApp:
    a = LibvirtService(host_uri(SMALL_HOST), stats_interval=3600, reconnect=False, name="small")
    b = LibvirtService(host_uri(FLEET_B), stats_interval=3600, reconnect=False, name="lab-b")
    # the saved connections: test-driver URIs hold this checkout's path, which a
    # snapshot must not show; the connections screen shows the saved names
    return VmtuiApp([a, b], Config(connections=[SavedConnection("spare", "qemu+ssh://root@spare/system")]))


async def _loaded(pilot) -> None:
    app = pilot.app
    await wait_for(lambda: app.ready and app.table.row_count == 9, what="list")
    for slot in app.slots.values():
        await slot.service.wait_loaded()
    await wait_for(lambda: app.table.domains[key_of("small", DELTA)].title == "Delta database", what="titles")
    app.table.select(key_of("lab-b", FOXTROT))
    await pilot.pause()
    await pilot.press("space")  # foxtrot marked, the cursor on the next row
    app.table.select(key_of("small", DELTA))
    await pilot.pause()


def test_fleet_list_120x40(snap_compare):
    assert snap_compare(_app(), terminal_size=(120, 40), run_before=_loaded)


def test_fleet_list_80x24(snap_compare):
    assert snap_compare(_app(), terminal_size=(80, 24), run_before=_loaded)


def test_migrate_dialog_after_checks_120x40(snap_compare):
    async def run_before(pilot):
        await _loaded(pilot)
        pilot.app.table.select(key_of("small", ALPHA))
        await pilot.pause()
        await pilot.press("M")
        await wait_for(lambda: type(pilot.app.screen).__name__ == "MigrateScreen", what="dialog")
        await press_button(pilot, "#check")
        await wait_for(lambda: "already exists" in str(pilot.app.screen.query_one("#migrate-checks").content),
                       what="checks")
        await pilot.pause()

    assert snap_compare(_app(), terminal_size=(120, 40), run_before=run_before)


def test_connections_screen_120x40(snap_compare):
    async def run_before(pilot):
        await _loaded(pilot)
        await pilot.press("H")
        await wait_for(lambda: type(pilot.app.screen).__name__ == "ConnectionsScreen", what="connections")
        await pilot.pause()
        # the test-driver URIs hold this checkout's path: show the saved one's row
        pilot.app.screen.query_one("#connections").move_cursor(row=0)
        await pilot.pause()

    assert snap_compare(_app(), terminal_size=(120, 40), run_before=run_before)


def test_bulk_confirmation_80x24(snap_compare):
    async def run_before(pilot):
        await _loaded(pilot)
        await pilot.press("space")  # delta too
        await pilot.press("b")
        await wait_for(lambda: type(pilot.app.screen).__name__ == "BulkMenu", what="menu")
        await pilot.press("h")
        await wait_for(lambda: type(pilot.app.screen).__name__ == "BulkConfirm", what="confirmation")
        await pilot.pause()

    assert snap_compare(_app(), terminal_size=(80, 24), run_before=run_before)
