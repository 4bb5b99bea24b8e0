"""Snapshot tests of the disks (d) and snapshots (z) screens and their dialogs.

Update on purpose with: pytest tests/test_snapshots_disks_snaps.py --snapshot-update
"""

from __future__ import annotations

import time

import pytest

from vmtui.core.storage import snapshots
from vmtui.core.config import Config
from vmtui.core.connection.service import LibvirtService
from vmtui.ui.app import VmtuiApp

from .conftest import BRAVO, DELTA, SMALL_HOST, host_uri, wait_for


@pytest.fixture(autouse=True)
def _utc(monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def _app() -> VmtuiApp:
    return VmtuiApp(LibvirtService(host_uri(SMALL_HOST), stats_interval=3600, reconnect=False), Config())


async def _open(pilot, uuid: str, key: str, screen: str, detail: str) -> None:
    app = pilot.app
    await wait_for(lambda: app.ready and app.table.row_count == 5, what="list")
    await app.service.wait_loaded()
    app.table.select(uuid)
    await pilot.pause()
    await pilot.press(key)
    await wait_for(lambda: type(app.screen).__name__ == screen, what=screen)
    await wait_for(lambda: "Loading" not in str(app.screen.query_one(detail).content), what="rows")
    await pilot.pause()


def test_disks_80x24(snap_compare):
    async def run_before(pilot):
        await _open(pilot, BRAVO, "d", "DisksScreen", "#disk-detail")
        await pilot.press("down")
        await pilot.pause()

    assert snap_compare(_app(), terminal_size=(80, 24), run_before=run_before)


def test_add_disk_dialog_80x24(snap_compare):
    async def run_before(pilot):
        from textual.widgets import Input
        await _open(pilot, BRAVO, "d", "DisksScreen", "#disk-detail")
        await pilot.press("a")
        await wait_for(lambda: type(pilot.app.screen).__name__ == "AddDiskDialog", what="dialog")
        pilot.app.screen.query_one("#vol-size", Input).value = "200G"
        await wait_for(lambda: "200.0 GiB" in str(pilot.app.screen.query_one("#vol-plan").content)
                       and "overcommit" in str(pilot.app.screen.query_one("#vol-warning").content), what="plan")
        pilot.app.screen.query_one("#vol-pool").focus()  # no text cursor in the picture
        await pilot.pause()

    assert snap_compare(_app(), terminal_size=(80, 24), run_before=run_before)


async def _with_snapshots(pilot) -> None:
    app = pilot.app
    await wait_for(lambda: app.ready, what="list")

    def make(conn):
        dom = conn.lookupByUUIDString(DELTA)
        S = snapshots.SnapshotInfo
        snapshots.redefine_snapshot(dom, S("installed", None, 1764000000, "shutoff", "Fresh Debian 12 install"))
        snapshots.redefine_snapshot(dom, S("pg16", "installed", 1764100000, "running", "PostgreSQL 16 set up",
                                           memory="internal"))
        snapshots.redefine_snapshot(dom, S("before-upgrade", "pg16", 1764200000, "running",
                                           "Before the 16.4 upgrade", memory="internal"), current=True)
        snapshots.redefine_snapshot(dom, S("tuning-test", "installed", 1764150000, "shutoff", ""))
    await app.service.call(make)


def test_snapshots_80x24(snap_compare):
    async def run_before(pilot):
        await _with_snapshots(pilot)
        await _open(pilot, DELTA, "z", "SnapshotsScreen", "#snap-detail")

    assert snap_compare(_app(), terminal_size=(80, 24), run_before=run_before)


def test_revert_dialog_80x24(snap_compare):
    async def run_before(pilot):
        await _with_snapshots(pilot)
        await _open(pilot, DELTA, "z", "SnapshotsScreen", "#snap-detail")
        await pilot.press("up", "v")
        await wait_for(lambda: type(pilot.app.screen).__name__ == "RevertDialog", what="dialog")
        await pilot.pause()

    assert snap_compare(_app(), terminal_size=(80, 24), run_before=run_before)


def test_new_snapshot_dialog_running_80x24(snap_compare):
    async def run_before(pilot):
        from textual.widgets import Input
        await _open(pilot, DELTA, "z", "SnapshotsScreen", "#snap-detail")
        await pilot.press("n")
        await wait_for(lambda: type(pilot.app.screen).__name__ == "NewSnapshotDialog", what="dialog")
        pilot.app.screen.query_one("#snap-name", Input).value = "before-upgrade"
        pilot.app.screen.query_one("#snap-description", Input).value = "PostgreSQL 16.3, before 16.4"
        pilot.app.screen.query_one("#snap-memory").focus()  # no text cursor in the picture
        await pilot.pause()

    assert snap_compare(_app(), terminal_size=(80, 24), run_before=run_before)
