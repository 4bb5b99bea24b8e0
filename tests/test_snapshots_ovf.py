"""Snapshot tests of the OVF import screen and the OVA export dialog.

Update on purpose with: pytest tests/test_snapshots_ovf.py --snapshot-update
"""

from __future__ import annotations

from pathlib import Path

import pytest

from vmtui.core.config import Config
from vmtui.core.connection.service import LibvirtService
from vmtui.ui.app import VmtuiApp

from .conftest import BRAVO, SMALL_HOST, host_uri, wait_for

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = "tests/data/ovf/appliance.ova"  # relative: the same text on every machine


def _app() -> VmtuiApp:
    return VmtuiApp(LibvirtService(host_uri(SMALL_HOST), stats_interval=3600, reconnect=False), Config())


@pytest.fixture(autouse=True)
def _in_root(monkeypatch):
    monkeypatch.chdir(ROOT)


async def _import_read(pilot) -> None:
    from textual.widgets import Input
    app = pilot.app
    await wait_for(lambda: app.ready, what="list")
    await app.service.wait_loaded()
    await pilot.press("I")
    await wait_for(lambda: type(app.screen).__name__ == "ImportOvfScreen" and app.screen.pools, what="screen")
    scr = app.screen
    scr.query_one("#ovf-path", Input).value = SAMPLE
    await pilot.press("enter")
    await wait_for(lambda: scr.package is not None, timeout=20, what="package")
    await pilot.pause()
    box = scr.query_one("#ovf-path", Input)
    box.cursor_blink = False  # a steady cursor: the same picture every run
    box.cursor_position = 0
    await pilot.pause()


def test_ovf_import_parsed_80x24(snap_compare):
    assert snap_compare(_app(), terminal_size=(80, 24), run_before=_import_read)


def test_ovf_import_parsed_100x34(snap_compare):
    assert snap_compare(_app(), terminal_size=(100, 34), run_before=_import_read)


def test_ova_export_dialog_80x24(snap_compare):
    async def run_before(pilot):
        from textual.widgets import Input
        app = pilot.app
        await wait_for(lambda: app.ready, what="list")
        await app.service.wait_loaded()
        app.table.select(BRAVO)
        await pilot.pause()
        await pilot.press("E")
        await wait_for(lambda: type(app.screen).__name__ == "ExportOvaScreen", what="dialog")
        box = app.screen.query_one("#ova-path", Input)
        box.cursor_blink = False
        box.value = "/srv/export/bravo.ova"
        box.cursor_position = 0  # a fixed cursor: the picture must not depend on timing
        await pilot.pause()

    assert snap_compare(_app(), terminal_size=(80, 24), run_before=run_before)
