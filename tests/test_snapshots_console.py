"""Snapshot tests of the serial console screens (pytest-textual-snapshot).

The test driver has no console stream, so the consoles replay a recorded boot
of the tiny test guest (tests/data/console/boot.log).

Update on purpose with: pytest tests/test_snapshots_console.py --snapshot-update
"""

from __future__ import annotations

from vmtui.core.consoles import serial as C
from vmtui.core.config import Config
from vmtui.core.connection.service import LibvirtService
from vmtui.ui.app import VmtuiApp
from vmtui.ui.console_screen import CONNECTED, ConsoleListScreen, ConsoleScreen

from .conftest import ALPHA, BRAVO, DELTA, SMALL_HOST, host_uri, wait_for
from .console_fakes import BOOT_LOG, replay_manager


def _app(closed: dict[str, str] | None = None) -> VmtuiApp:
    app = VmtuiApp(LibvirtService(host_uri(SMALL_HOST), stats_interval=3600, reconnect=False), Config())
    app.consoles = replay_manager(app.service, {DELTA: BOOT_LOG.read_bytes(),
                                                ALPHA: b"alpha login: "}, closed)
    return app


async def _open(pilot, uuid: str, state: str = CONNECTED) -> None:
    app = pilot.app
    await wait_for(lambda: app.ready and app.table.row_count == 5, what="list")
    if isinstance(app.screen, ConsoleScreen):
        await pilot.press("ctrl+right_square_bracket")
    app.table.select(uuid)
    await pilot.pause()
    await pilot.press("c")
    await wait_for(lambda: isinstance(app.screen, ConsoleScreen) and app.screen.current is not None
                   and app.screen.current.uuid == uuid and app.screen.current.state == state,
                   what="console")
    app.screen.current.terminal.flush()
    await pilot.pause()


def test_console_boot_log_two_tabs_80x24(snap_compare):
    async def run_before(pilot):
        await _open(pilot, ALPHA)
        await _open(pilot, DELTA)

    assert snap_compare(_app(), terminal_size=(80, 24), run_before=run_before)


def test_console_vm_not_running_80x24(snap_compare):
    async def run_before(pilot):
        pilot.app.consoles = C.ConsoleManager(pilot.app.service)  # the real one: bravo is shut off
        await _open(pilot, BRAVO, C.VM_NOT_RUNNING)

    assert snap_compare(_app(), terminal_size=(80, 24), run_before=run_before)


def test_console_shut_down_while_watching_80x24(snap_compare):
    async def run_before(pilot):
        await _open(pilot, DELTA, C.VM_SHUT_DOWN)

    assert snap_compare(_app({DELTA: C.VM_SHUT_DOWN}), terminal_size=(80, 24), run_before=run_before)


def test_console_list_80x24(snap_compare):
    async def run_before(pilot):
        await _open(pilot, DELTA)
        await _open(pilot, ALPHA)
        await pilot.press("ctrl+right_square_bracket")
        await pilot.press("C")
        await wait_for(lambda: isinstance(pilot.app.screen, ConsoleListScreen), what="console list")
        await pilot.pause()

    assert snap_compare(_app(), terminal_size=(80, 24), run_before=run_before)


def test_console_save_dialog_80x24(snap_compare):
    async def run_before(pilot):
        await _open(pilot, DELTA, C.VM_SHUT_DOWN)
        await pilot.press("w")
        await wait_for(lambda: type(pilot.app.screen).__name__ == "SaveScrollbackDialog", what="dialog")
        pilot.app.screen.query_one("#save-path").value = "/root/delta-console-20261127-150405.log"
        await pilot.pause()

    assert snap_compare(_app({DELTA: C.VM_SHUT_DOWN}), terminal_size=(80, 24), run_before=run_before)
