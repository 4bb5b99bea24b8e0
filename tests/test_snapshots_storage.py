"""Snapshot tests of the storage (S) and networks (N) screens.

Update on purpose with: pytest tests/test_snapshots_storage.py --snapshot-update
"""

from __future__ import annotations

from vmtui.core.config import Config
from vmtui.core.connection.service import LibvirtService
from vmtui.ui.app import VmtuiApp

from .conftest import DATA, SMALL_HOST, host_uri, wait_for


def _app(path=SMALL_HOST) -> VmtuiApp:
    return VmtuiApp(LibvirtService(host_uri(path), stats_interval=3600, reconnect=False), Config())


def _open(key: str, then: list[str] = (), screen: str | None = None):
    async def run_before(pilot):
        app = pilot.app
        await wait_for(lambda: app.ready and app.table.row_count > 0, what="list")
        await app.service.wait_loaded()
        await pilot.press(key)
        await wait_for(lambda: getattr(app.screen, "loaded", False), what="screen")
        await pilot.pause()
        for k in then:
            await pilot.press(k)
            await pilot.pause()
        if screen is not None:
            await wait_for(lambda: type(app.screen).__name__ == screen, what=screen)
        await pilot.pause()
    return run_before


def test_storage_80x24(snap_compare):
    assert snap_compare(_app(), terminal_size=(80, 24), run_before=_open("S"))


def test_storage_120x40(snap_compare):
    assert snap_compare(_app(), terminal_size=(120, 40), run_before=_open("S"))


def test_storage_warnings_80x24(snap_compare):
    assert snap_compare(_app(DATA / "host-storage-warn.xml"), terminal_size=(80, 24), run_before=_open("S"))


def test_storage_new_volume_80x24(snap_compare):
    assert snap_compare(_app(), terminal_size=(80, 24),
                        run_before=_open("S", ["n"], screen="CreateVolumeDialog"))


def test_networks_80x24(snap_compare):
    assert snap_compare(_app(), terminal_size=(80, 24), run_before=_open("N"))


def test_networks_120x40(snap_compare):
    assert snap_compare(_app(), terminal_size=(120, 40), run_before=_open("N"))


def test_networks_new_network_80x24(snap_compare):
    assert snap_compare(_app(), terminal_size=(80, 24),
                        run_before=_open("N", ["n"], screen="DefineNetworkDialog"))
