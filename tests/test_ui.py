"""The domain list through Textual's Pilot, on the test driver."""

from __future__ import annotations

import asyncio

from textual.widgets import Input, TextArea

from tests.notes import notes_of, run_noted
from vmtui.core.config import Config
from vmtui.core.connection.service import LibvirtService
from vmtui.ui.app import SelectionBar, StatusBar, VmtuiApp
from vmtui.ui.dialogs import ConfirmDialog, DeleteDialog, DiskCheckbox
from vmtui.ui.screens import DetailsScreen, HelpScreen, XmlScreen

from .conftest import ALPHA, BRAVO, CHARLIE, DELTA, ECHO, wait_for


def make_app(uri: str, **kw) -> VmtuiApp:
    return VmtuiApp(LibvirtService(uri, stats_interval=3600, reconnect=False, **kw), Config())


async def ready(app: VmtuiApp, pilot) -> None:
    await wait_for(lambda: app.ready and app.table.row_count > 0, what="list loaded")
    await app.service.wait_loaded()  # titles, and the sizes the test driver's stats lack
    await pilot.pause()


def cell(app, uuid, col) -> str:
    return str(app.table.get_cell(uuid, col))


def select(app, uuid) -> None:
    app.table.select(uuid)


async def test_list_shows_every_domain(small_uri):
    app = make_app(small_uri)
    async with run_noted(app, size=(80, 24)) as pilot:
        await ready(app, pilot)
        t = app.table
        assert t.row_count == 5
        assert t.visible_uuids() == [ALPHA, BRAVO, CHARLIE, DELTA, ECHO]  # sorted by name
        assert cell(app, ALPHA, "state") == "running"
        assert cell(app, BRAVO, "state") == "shut off"
        assert cell(app, CHARLIE, "state") == "paused"
        assert cell(app, DELTA, "vcpus") == "4"
        assert cell(app, DELTA, "memory") == "4.0 GiB"
        await wait_for(lambda: cell(app, DELTA, "title") == "Delta database", what="title")
        status = status_text(app)
        assert "2 running, 1 paused, 2 shut off" in status
        assert "connected" in status


async def test_keys_act_on_selected_vm(small_uri):
    app = make_app(small_uri)
    async with run_noted(app, size=(80, 24)) as pilot:
        await ready(app, pilot)
        select(app, ALPHA)
        await pilot.press("p")
        await wait_for(lambda: cell(app, ALPHA, "state") == "paused", what="alpha paused in table")
        await pilot.press("p")
        await wait_for(lambda: cell(app, ALPHA, "state") == "running", what="alpha resumed")
        select(app, BRAVO)
        await pilot.press("s")
        await wait_for(lambda: cell(app, BRAVO, "state") == "running", what="bravo started")
        await pilot.press("h")
        await wait_for(lambda: cell(app, BRAVO, "state") == "shut off", what="bravo shut down")
        await pilot.press("a")
        await wait_for(lambda: app.table.domains[BRAVO].autostart, what="autostart")
        await pilot.pause()
        assert "autostart" in selection_text(app)


async def test_force_off_asks_first(small_uri):
    app = make_app(small_uri)
    async with run_noted(app, size=(80, 24)) as pilot:
        await ready(app, pilot)
        select(app, DELTA)
        await pilot.press("F")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmDialog)
        await pilot.press("escape")  # no
        await pilot.pause()
        assert app.table.domains[DELTA].state == "running"
        await pilot.press("F")
        await pilot.pause()
        await pilot.press("y")
        await wait_for(lambda: cell(app, DELTA, "state") == "shut off", what="delta destroyed")
        assert app.table.domains[DELTA].reason == "destroyed"


async def test_actions_that_do_not_apply_are_greyed(small_uri):
    app = make_app(small_uri)
    async with run_noted(app, size=(80, 24)) as pilot:
        await ready(app, pilot)
        select(app, BRAVO)  # shut off
        await pilot.pause()
        assert app.check_action("start", ()) is True
        assert app.check_action("shutdown", ()) is None
        assert app.check_action("force_off", ()) is None
        assert app.check_action("pause_resume", ()) is None
        assert app.check_action("delete", ()) is True
        select(app, ALPHA)  # running
        await pilot.pause()
        assert app.check_action("start", ()) is None
        assert app.check_action("shutdown", ()) is True
        # pressing a greyed key does nothing but say why
        select(app, BRAVO)
        await pilot.press("h")
        await pilot.pause()
        assert app.table.domains[BRAVO].state == "shut off"


async def test_readonly_greys_out_changes(small_uri):
    app = make_app(small_uri, readonly=True)
    async with run_noted(app, size=(80, 24)) as pilot:
        await ready(app, pilot)
        select(app, BRAVO)
        await pilot.pause()
        assert app.check_action("start", ()) is None
        assert app.check_action("details", ()) is True
        assert "[read-only]" in status_text(app)


async def test_text_and_state_filters(small_uri):
    app = make_app(small_uri)
    async with run_noted(app, size=(80, 24)) as pilot:
        await ready(app, pilot)
        await pilot.press("slash")
        assert isinstance(app.focused, Input)
        await pilot.press("d", "e", "l")
        await pilot.pause()
        assert app.table.visible_uuids() == [DELTA]
        await pilot.press("enter")
        assert app.focused is app.table
        await pilot.press("escape")  # table focused: escape does not clear; use the box again
        await pilot.press("slash")
        await pilot.press("escape")
        await pilot.pause()
        assert app.table.row_count == 5
        await pilot.press("t")  # running
        await pilot.pause()
        assert set(app.table.visible_uuids()) == {ALPHA, DELTA}
        assert "showing running" in status_text(app)
        # a VM that starts appears in the running view by itself
        await app.service.start(BRAVO)
        await wait_for(lambda: BRAVO in app.table.visible_uuids(), what="bravo appears")
        await pilot.press("t")  # shut off
        await pilot.pause()
        assert app.table.visible_uuids() == [ECHO]
        await pilot.press("t")  # paused
        await pilot.pause()
        assert app.table.visible_uuids() == [CHARLIE]
        await pilot.press("t")  # templates (none here)
        await pilot.pause()
        assert app.table.visible_uuids() == []
        await pilot.press("t")  # all
        await pilot.pause()
        assert app.table.row_count == 5


async def test_sort_cycles(small_uri):
    app = make_app(small_uri)
    async with run_noted(app, size=(80, 24)) as pilot:
        await ready(app, pilot)
        await pilot.press("o")  # state
        await pilot.pause()
        assert app.table.sort_key == "state"
        order = app.table.visible_uuids()
        assert order.index(ALPHA) < order.index(CHARLIE) < order.index(BRAVO)  # running, paused, shut off
        await pilot.press("o", "o", "o")  # cpu, memory, vcpus
        await pilot.pause()
        assert app.table.sort_key == "vcpus"
        assert app.table.visible_uuids()[0] == DELTA  # 4 vCPUs, largest first
        await pilot.press("O")
        await pilot.pause()
        assert app.table.visible_uuids()[-1] == DELTA


async def test_row_updates_in_place_keep_selection(small_uri):
    app = make_app(small_uri)
    async with run_noted(app, size=(80, 24)) as pilot:
        await ready(app, pilot)
        select(app, DELTA)
        await pilot.pause()
        row_keys_before = list(app.table.rows)
        await app.service.pause(ALPHA)
        await wait_for(lambda: cell(app, ALPHA, "state") == "paused", what="alpha paused")
        assert list(app.table.rows) == row_keys_before  # same rows, updated in place
        assert app.table.selected_uuid == DELTA


async def test_details_screen(small_uri):
    app = make_app(small_uri)
    async with run_noted(app, size=(120, 40)) as pilot:
        await ready(app, pilot)
        select(app, ALPHA)
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, DetailsScreen)
        await wait_for(lambda: "alpha.qcow2" in _static_text(app.screen, "#details"), what="details")
        text = _static_text(app.screen, "#details")
        assert "10.0 GiB" in text and "2.0 GiB (thin)" in text
        assert "shared.img" in text
        assert "VNC" in text
        assert "network 'default'" in text
        await pilot.press("x")
        await pilot.pause()
        assert isinstance(app.screen, XmlScreen)
        await wait_for(lambda: "<name>alpha</name>" in app.screen.query_one(TextArea).text, what="xml")
        await pilot.press("escape")
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is app.screen_stack[0]


def _static_text(screen, selector) -> str:
    from rich.console import Console
    widget = screen.query_one(selector)
    console = Console(width=200, record=True, color_system=None)
    console.print(widget.content)
    return console.export_text()


async def test_xml_key_and_help(small_uri):
    app = make_app(small_uri)
    async with run_noted(app, size=(80, 24)) as pilot:
        await ready(app, pilot)
        select(app, ECHO)
        await pilot.press("x")
        await pilot.pause()
        await wait_for(lambda: "<name>echo</name>" in app.screen.query_one(TextArea).text, what="xml")
        await pilot.press("escape")
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        text = _static_text(app.screen, "#help-body Static")
        assert "virsh destroy" in text and "Ctrl+P" in text
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is app.screen_stack[0]


async def test_delete_dialog_protects_shared_disks(small_uri):
    app = make_app(small_uri)
    async with run_noted(app, size=(80, 24)) as pilot:
        await ready(app, pilot)
        select(app, ALPHA)
        await pilot.press("D")
        await wait_for(lambda: isinstance(app.screen, DeleteDialog), what="delete dialog")
        await pilot.pause()
        boxes = {b.usage.disk.source.rsplit("/", 1)[-1]: b for b in app.screen.query(DiskCheckbox)}
        assert set(boxes) == {"alpha.qcow2", "shared.img"}
        assert boxes["shared.img"].disabled  # used by bravo
        assert "kept: used by bravo" in boxes["shared.img"].note
        assert not boxes["alpha.qcow2"].disabled
        assert app.focused is boxes["alpha.qcow2"]
        await pilot.press("space")  # tick alpha.qcow2
        await pilot.pause()
        app.screen.query_one("#delete").press()
        await wait_for(lambda: ALPHA not in app.table.rows, what="alpha gone from list")
        names = await asyncio.to_thread(
            lambda: [v.name() for v in app.service.conn.storagePoolLookupByName("default").listAllVolumes()])
        assert "alpha.qcow2" not in names and "shared.img" in names


async def test_delete_cancel_changes_nothing(small_uri):
    app = make_app(small_uri)
    async with run_noted(app, size=(80, 24)) as pilot:
        await ready(app, pilot)
        select(app, ECHO)
        await pilot.press("delete")
        await wait_for(lambda: isinstance(app.screen, DeleteDialog), what="delete dialog")
        cd = [b for b in app.screen.query(DiskCheckbox) if b.usage.disk.device == "cdrom"]
        assert cd and cd[0].disabled
        await pilot.press("escape")
        await pilot.pause()
        assert ECHO in app.table.rows


async def test_libvirt_error_becomes_notification(small_uri):
    app = make_app(small_uri)
    async with run_noted(app, size=(80, 24)) as pilot:
        await ready(app, pilot)
        # Someone else starts bravo behind our back; our row still says shut off
        # until the event lands, so call start directly to provoke the error.
        app._run("Start", lambda: app.service.start(ALPHA))
        await wait_for(lambda: any("Cannot start domain 'alpha'" in n.message for n in notes_of(app).all),
                       what="error notification")


async def test_connect_failure_exits_with_message():
    app = make_app("test:///no/such/file.xml")
    async with run_noted(app, size=(80, 24)) as pilot:
        await wait_for(lambda: app.connect_error is not None, what="connect error")
        await pilot.pause()
    assert app.return_code == 1
    assert "Cannot connect to test:///no/such/file.xml" in app.connect_error.message


async def test_command_palette_lists_actions(small_uri):
    app = make_app(small_uri)
    async with run_noted(app, size=(80, 24)) as pilot:
        await ready(app, pilot)
        select(app, BRAVO)
        await pilot.pause()
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert "Start (s)" in titles
        assert "Delete (D)" in titles
        assert not any(t.startswith("Shutdown") for t in titles)  # not for a shut-off VM


async def test_config_notice_is_shown(small_uri, tmp_path):
    from vmtui.core.config import load_config
    bad = tmp_path / "config.yaml"
    bad.write_text("stats_interval: [1,\n")
    cfg = load_config(bad)
    app = VmtuiApp(LibvirtService(small_uri, stats_interval=3600, reconnect=False), cfg)
    async with run_noted(app, size=(80, 24)) as pilot:
        await ready(app, pilot)
        assert any(n.message.startswith(f"{bad}:2: not valid YAML: ") for n in notes_of(app).all)


def status_text(app) -> str:
    return str(app.query_one(StatusBar).content)


def selection_text(app) -> str:
    return str(app.query_one(SelectionBar).content)


async def test_no_color_still_readable(small_uri, monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    app = make_app(small_uri)
    assert app.no_color
    async with run_noted(app, size=(80, 24)) as pilot:
        await ready(app, pilot)
        svg = app.export_screenshot()
        # states are words, not colours: every one of them is on screen
        for word in ("running", "shut off", "paused"):
            assert word.replace(" ", "&#160;") in svg or word in svg


async def test_console_errors_are_notifications(small_uri):
    """The test driver has no consoles: the key still behaves (offer, message, back to the list)."""
    from vmtui.core.consoles import serial as C
    from vmtui.ui.console_screen import ConsoleScreen
    app = make_app(small_uri)
    async with run_noted(app, size=(80, 24)) as pilot:
        await ready(app, pilot)
        select(app, BRAVO)  # shut off: offered to start it first
        await pilot.press("c")
        await wait_for(lambda: isinstance(app.screen, ConsoleScreen) and app.screen.current is not None
                       and app.screen.current.state == C.VM_NOT_RUNNING, what="start offer")
        await pilot.press("s")
        await wait_for(lambda: app.table.domains[BRAVO].state == "running", what="started from the offer")
        await wait_for(lambda: any("console" in n.message.lower() for n in notes_of(app).all),
                       what="console error notification")
        await wait_for(lambda: not isinstance(app.screen, ConsoleScreen), what="back on the list")
