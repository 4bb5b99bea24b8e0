"""Snapshot tests of the settings screen (e) and its NIC dialog, at 80×24 and
120×40.

Update on purpose with: pytest tests/test_snapshots_settings.py --snapshot-update
"""

from __future__ import annotations

from textual.widgets import Input, Select

from vmtui.core.config import Config
from vmtui.core.connection.service import LibvirtService
from vmtui.ui.app import VmtuiApp
from vmtui.ui.settings.screen import SectionList

from .conftest import ALPHA, BRAVO, SMALL_HOST, host_uri, wait_for
from .test_settings_ui import apply_and_wait, go_to, open_settings


def _app() -> VmtuiApp:
    return VmtuiApp(LibvirtService(host_uri(SMALL_HOST), stats_interval=3600, reconnect=False), Config())


def _section(uuid: str, section: str, then=None):
    async def run_before(pilot):
        await open_settings(pilot, uuid, section)
        if then is not None:
            await then(pilot)
        await pilot.pause()

    return run_before


async def _cpus_wrong(pilot):
    screen = pilot.app.screen
    screen.query_one("#cpus-maximum", Input).value = "4"
    screen.query_one("#cpus-sockets", Input).value = "1"
    screen.query_one("#cpus-cores", Input).value = "3"
    screen.query_one("#cpus-threads", Input).value = "1"
    screen.query_one("#cpus-mode", Select).value = "custom"
    await pilot.pause()
    screen.query_one(SectionList).focus()  # no text cursor in the picture


async def _memory_saved(pilot):
    screen = pilot.app.screen
    screen.query_one("#memory-current", Input).value = "512M"
    screen.query_one("#memory-maximum", Input).value = "2G"
    await apply_and_wait(pilot, "memory")
    pilot.app.clear_notifications()  # the pending line, not the toast over it
    screen.query_one(SectionList).focus()


async def _list_focused(pilot):
    pilot.app.screen.query_one(SectionList).focus()


async def _nic_dialog(pilot):
    await pilot.press("a")
    await wait_for(lambda: type(pilot.app.screen).__name__ == "NicDialog", what="dialog")
    pilot.app.screen.query_one("#nic-mac", Input).value = "01:00:5e:00:00:01"
    await pilot.pause()
    pilot.app.screen.query_one("#nic-kind").focus()


async def _boot_moved(pilot):
    await pilot.press("down", "space", "u")


async def _tpm_chosen(pilot):
    await go_to(pilot, "tpm")
    pilot.app.screen.query_one("#tpm-model", Select).value = "tpm-crb"
    await pilot.pause()
    pilot.app.screen.query_one(SectionList).focus()


def test_settings_overview_80x24(snap_compare):
    assert snap_compare(_app(), terminal_size=(80, 24), run_before=_section(BRAVO, "overview", _list_focused))


def test_settings_overview_120x40(snap_compare):
    assert snap_compare(_app(), terminal_size=(120, 40), run_before=_section(ALPHA, "overview", _list_focused))


def test_settings_cpus_error_80x24(snap_compare):
    assert snap_compare(_app(), terminal_size=(80, 24), run_before=_section(BRAVO, "cpus", _cpus_wrong))


def test_settings_cpus_error_120x40(snap_compare):
    assert snap_compare(_app(), terminal_size=(120, 40), run_before=_section(BRAVO, "cpus", _cpus_wrong))


def test_settings_memory_pending_80x24(snap_compare):
    assert snap_compare(_app(), terminal_size=(80, 24), run_before=_section(ALPHA, "memory", _memory_saved))


def test_settings_memory_pending_120x40(snap_compare):
    assert snap_compare(_app(), terminal_size=(120, 40), run_before=_section(ALPHA, "memory", _memory_saved))


def test_settings_boot_80x24(snap_compare):
    assert snap_compare(_app(), terminal_size=(80, 24), run_before=_section(BRAVO, "boot", _boot_moved))


def test_settings_nics_80x24(snap_compare):
    assert snap_compare(_app(), terminal_size=(80, 24), run_before=_section(ALPHA, "nics"))


def test_settings_nic_dialog_80x24(snap_compare):
    assert snap_compare(_app(), terminal_size=(80, 24), run_before=_section(BRAVO, "nics", _nic_dialog))


def test_settings_nic_dialog_120x40(snap_compare):
    assert snap_compare(_app(), terminal_size=(120, 40), run_before=_section(BRAVO, "nics", _nic_dialog))


def test_settings_display_80x24(snap_compare):
    assert snap_compare(_app(), terminal_size=(80, 24), run_before=_section(BRAVO, "display", _list_focused))


def test_settings_tpm_120x40(snap_compare):
    assert snap_compare(_app(), terminal_size=(120, 40), run_before=_section(BRAVO, "display", _tpm_chosen))
