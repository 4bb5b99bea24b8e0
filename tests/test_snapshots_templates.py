"""Snapshot tests of the template and clone screens (pytest-textual-snapshot).

Update on purpose with: pytest tests/test_snapshots_templates.py --snapshot-update
"""

from __future__ import annotations

from textual.widgets import Input

from vmtui.core.clones import templates
from vmtui.core.config import Config
from vmtui.core.connection.service import LibvirtService
from vmtui.ui.app import VmtuiApp
from vmtui.ui.templates_ui import CloneScreen, PrepareTemplateScreen

from .conftest import BRAVO, ECHO, SMALL_HOST, host_uri, wait_for


def _app() -> VmtuiApp:
    return VmtuiApp(LibvirtService(host_uri(SMALL_HOST), stats_interval=3600, reconnect=False), Config())


async def _loaded_with_template(pilot) -> None:
    app = pilot.app
    await wait_for(lambda: app.ready and app.table.row_count == 5, what="list")
    await app.service.wait_loaded()
    await app.service.call(lambda c: templates.set_marked(c.lookupByUUIDString(ECHO), True))
    await app.service.refresh_domain(ECHO)
    await wait_for(lambda: app.table.domains[ECHO].template, what="echo marked")
    app.table.select(ECHO)
    await pilot.pause()


async def _clone_screen(pilot, uuid: str = ECHO, key: str = "l") -> CloneScreen:
    app = pilot.app
    app.table.select(uuid)
    await pilot.press(key)
    await wait_for(lambda: isinstance(app.screen, CloneScreen), what="clone screen")
    screen = app.screen
    screen.query_one("#clone-name", Input).cursor_blink = False  # the same picture every time
    await wait_for(lambda: screen.plan is not None and not screen.query_one("#err-name").display, what="plan")
    await pilot.pause(0.3)  # the plans the mount-time changes asked for have settled
    await wait_for(lambda: screen.plan is not None, what="plan")
    await pilot.pause()
    return screen


def test_template_list_80x24(snap_compare):
    assert snap_compare(_app(), terminal_size=(80, 24), run_before=_loaded_with_template)


def test_clone_dialog_template_80x24(snap_compare):
    async def run_before(pilot):
        await _loaded_with_template(pilot)
        await _clone_screen(pilot)

    assert snap_compare(_app(), terminal_size=(80, 24), run_before=run_before)


def test_clone_dialog_name_error_80x24(snap_compare):
    async def run_before(pilot):
        await _loaded_with_template(pilot)
        screen = await _clone_screen(pilot, BRAVO)
        screen.query_one("#clone-name", Input).value = "echo"
        await wait_for(lambda: screen.query_one("#err-name").display, what="name error")
        await pilot.pause()

    assert snap_compare(_app(), terminal_size=(80, 24), run_before=run_before)


def test_new_vm_from_template_80x24(snap_compare):
    async def run_before(pilot):
        await _loaded_with_template(pilot)
        await _clone_screen(pilot, ECHO, key="u")

    assert snap_compare(_app(), terminal_size=(80, 24), run_before=run_before)


def test_prepare_template_80x24(snap_compare):
    async def run_before(pilot):
        await _loaded_with_template(pilot)
        app = pilot.app
        app.push_screen(PrepareTemplateScreen(app.service, app.table.domains[BRAVO], sysprep=False))
        await pilot.pause()

    assert snap_compare(_app(), terminal_size=(80, 24), run_before=run_before)
