"""Snapshot tests of the main screens (pytest-textual-snapshot).

Update on purpose with: pytest tests/test_snapshots.py --snapshot-update
"""

from __future__ import annotations

from vmtui.core.config import Config
from vmtui.core.connection.service import LibvirtService
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


def _wizard_at(step: int, customize: bool = False):
    """run_before: open the wizard (n) and walk to ``step`` (0-based) with sample answers."""

    async def run_before(pilot):
        from textual.widgets import Checkbox, Input
        from vmtui.ui.wizard import CustomizeScreen, NewVmWizard

        await _loaded(pilot)
        app = pilot.app
        await pilot.press("n")
        await wait_for(lambda: isinstance(app.screen, NewVmWizard), what="wizard")
        wiz = app.screen
        await wait_for(lambda: wiz.ctx.osdb is not None and wiz.ctx.pools, timeout=15, what="context")
        await pilot.pause()
        answers = [
            lambda: setattr(wiz.query_one("#iso", Input), "value", "default/install.iso"),
            lambda: setattr(wiz.query_one("#os-search", Input), "value", "generic linux"),
            lambda: None,
            lambda: setattr(wiz.query_one("#vol-size", Input), "value", "10G"),
            lambda: setattr(wiz.query_one("#name", Input), "value", "web-03"),
        ]
        for i in range(step + 1):
            answers[i]()
            await pilot.pause()
            if i < step:
                await pilot.press("ctrl+n")
                await pilot.pause()
        if customize:
            wiz.query_one("#customize", Checkbox).value = True
            await pilot.press("ctrl+n")
            await wait_for(lambda: isinstance(app.screen, CustomizeScreen), what="customize")
        await pilot.pause()
        app.screen.set_focus(None)
        await pilot.pause()

    return run_before


def test_wizard_step1_source(snap_compare):
    assert snap_compare(_app(), terminal_size=(100, 32), run_before=_wizard_at(0))


def test_wizard_step2_os(snap_compare):
    assert snap_compare(_app(), terminal_size=(100, 32), run_before=_wizard_at(1))


def test_wizard_step3_resources(snap_compare):
    assert snap_compare(_app(), terminal_size=(100, 32), run_before=_wizard_at(2))


def test_wizard_step4_storage(snap_compare):
    assert snap_compare(_app(), terminal_size=(100, 32), run_before=_wizard_at(3))


def test_wizard_step4_storage_80x24(snap_compare):
    """The storage step fits or scrolls at 80x24 (one-line buttons leave it the room)."""
    assert snap_compare(_app(), terminal_size=(80, 24), run_before=_wizard_at(3))


def test_wizard_step5_finish_80x24(snap_compare):
    assert snap_compare(_app(), terminal_size=(80, 24), run_before=_wizard_at(4))


def test_wizard_step5_finish(snap_compare):
    assert snap_compare(_app(), terminal_size=(100, 40), run_before=_wizard_at(4))


def test_wizard_customize(snap_compare):
    assert snap_compare(_app(), terminal_size=(100, 40), run_before=_wizard_at(4, customize=True))
