"""Issue 10.5: never act on the wrong VM. The selection follows the VM (not
the row index), a selected VM that goes away leaves nothing selected, Esc
on a sub-screen keeps the list's filter, confirmations name the VM, keys
that do not apply say why, and a linked clone's source warns before it
changes."""

from __future__ import annotations

import asyncio

import libvirt

from tests.notes import notes_of, run_noted
from vmtui.core.clones import clone
from vmtui.core.config import Config
from vmtui.core.connection.service import LibvirtService
from vmtui.ui.app import SelectionBar, VmtuiApp
from vmtui.ui.dialogs import ConfirmDialog, DeleteDialog

from .conftest import ALPHA, BRAVO, CHARLIE, DELTA, ECHO, wait_for

NEW = "11111111-1111-4111-8111-0000000000aa"


def make_app(uri: str) -> VmtuiApp:
    return VmtuiApp(LibvirtService(uri, stats_interval=3600, reconnect=False), Config())


async def ready(app: VmtuiApp, pilot) -> None:
    await wait_for(lambda: app.ready and app.table.row_count > 0, what="list loaded")
    await app.service.wait_loaded()
    await pilot.pause()


def selection_text(app) -> str:
    return str(app.list_screen.query_one(SelectionBar).content)


def messages(app) -> list[str]:
    return [str(n.message) for n in notes_of(app).all]


async def on_host(app, fn):
    """Change the host through the app's own connection, from a thread, as
    another client would (the test driver keeps each connection's host
    private): libvirt's events reach the app as for any outside change."""
    conn = app.service.conn
    return await asyncio.to_thread(fn, conn)


def define_copy(conn, name: str, uuid: str, source: str = "echo"):
    xml = conn.lookupByName(source).XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
    xml = xml.replace(f"<name>{source}</name>", f"<name>{name}</name>")
    old_uuid = conn.lookupByName(source).UUIDString()
    return conn.defineXML(xml.replace(old_uuid, uuid))


# --- the selection follows the VM -------------------------------------------------------


async def test_undefining_a_vm_above_keeps_the_selected_vm_selected(small_uri):
    app = make_app(small_uri)
    async with run_noted(app, size=(80, 24)) as pilot:
        await ready(app, pilot)
        app.table.select(DELTA)  # row 3 of alpha bravo charlie delta echo
        await pilot.pause()
        await on_host(app, lambda c: c.lookupByUUIDString(BRAVO).undefine())  # row 1
        await wait_for(lambda: BRAVO not in app.table.rows, what="bravo gone")
        await pilot.pause()
        assert app.table.selected_uuid == DELTA
        assert selection_text(app).startswith(" delta")
        assert app.check_action("force_off", ()) is True  # the keys are delta's: it runs
        # a VM defined above it
        await on_host(app, lambda c: define_copy(c, "aaa-new", NEW))
        await wait_for(lambda: NEW in app.table.rows, what="new row")
        await pilot.pause()
        assert app.table.visible_uuids()[0] == NEW
        assert app.table.selected_uuid == DELTA
        # re-sorts, a filter that keeps it, a reset (reconnect) all keep it
        await pilot.press("o")  # by state
        await pilot.press("O")
        await pilot.pause()
        assert app.table.selected_uuid == DELTA
        await pilot.press("t")  # running only: delta still shows
        await pilot.pause()
        assert app.table.selected_uuid == DELTA and app.table.visible_uuids() != [DELTA]
        await pilot.press("slash", "d", "enter")  # a text filter that keeps it
        await pilot.pause()
        assert app.table.selected_uuid == DELTA
        await pilot.press("slash", "escape")
        await pilot.press("t", "t", "t", "t")  # through the other filters (delta hidden) back to all
        app.table.select(DELTA)
        await app.service.refresh_all()
        await wait_for(lambda: app.table.row_count == 5, what="reset")
        await pilot.pause()
        assert app.table.selected_uuid == DELTA
        assert not [m for m in messages(app) if "removed" in m]  # nothing was said about delta


async def test_the_selected_vm_undefined_leaves_nothing_selected_until_the_cursor_moves(small_uri):
    app = make_app(small_uri)
    async with run_noted(app, size=(80, 24)) as pilot:
        await ready(app, pilot)
        app.table.select(BRAVO)
        await pilot.pause()
        await on_host(app, lambda c: c.lookupByUUIDString(BRAVO).undefine())
        await wait_for(lambda: BRAVO not in app.table.rows, what="bravo gone")
        await pilot.pause()
        assert app.table.selected is None and not app.table.show_cursor
        assert "'bravo' was removed (undefined on the host)" in selection_text(app)
        assert any("'bravo' was removed (undefined on the host)" in m for m in messages(app))
        # charlie (paused) slid under the cursor: no key acts on it
        assert app.check_action("force_off", ()) is None
        assert app.check_action("pause_resume", ()) is None
        await pilot.press("p", "F", "D", "enter")
        await pilot.pause()
        assert app.screen is app.list_screen
        assert app.table.domains[CHARLIE].state == "paused"
        assert any("no VM is selected" in m for m in messages(app))
        # the first cursor key selects the row that followed bravo
        await pilot.press("down")
        await pilot.pause()
        assert app.table.selected_uuid == CHARLIE and app.table.show_cursor
        assert selection_text(app).startswith(" charlie")
        # the same from the other side: up selects the row before it
        await on_host(app, lambda c: c.lookupByUUIDString(CHARLIE).destroy())
        await wait_for(lambda: app.table.domains[CHARLIE].is_shut_off, what="charlie off")
        await on_host(app, lambda c: c.lookupByUUIDString(CHARLIE).undefine())
        await wait_for(lambda: CHARLIE not in app.table.rows, what="charlie gone")
        await pilot.press("up")
        await pilot.pause()
        assert app.table.selected_uuid == ALPHA


async def test_a_vm_defined_again_is_selected_again(small_uri):
    app = make_app(small_uri)
    async with run_noted(app, size=(80, 24)) as pilot:
        await ready(app, pilot)
        app.table.select(ECHO)
        await pilot.pause()
        xml = await on_host(app, lambda c: c.lookupByUUIDString(ECHO).XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
        await on_host(app, lambda c: c.lookupByUUIDString(ECHO).undefine())
        await wait_for(lambda: app.table.lost is not None, what="lost")
        await on_host(app, lambda c: c.defineXML(xml))
        await wait_for(lambda: app.table.selected_uuid == ECHO, what="echo selected again")
        assert app.table.show_cursor


async def test_a_selected_vm_hidden_by_the_state_filter_is_said_and_not_replaced(small_uri):
    app = make_app(small_uri)
    async with run_noted(app, size=(80, 24)) as pilot:
        await ready(app, pilot)
        await pilot.press("t")  # running: alpha, delta
        app.table.select(ALPHA)
        await pilot.pause()
        await app.service.force_off(ALPHA)
        await wait_for(lambda: ALPHA not in app.table.rows, what="alpha hidden")
        await pilot.pause()
        assert app.table.selected is None
        text = selection_text(app)
        assert "'alpha' is shut off now and no longer matches the filter (showing running)" in text
        assert app.check_action("shutdown", ()) is None  # delta slid under the cursor: not selected
        await app.service.start(ALPHA)  # it matches again: selected again
        await wait_for(lambda: app.table.selected_uuid == ALPHA, what="alpha back")


async def test_actions_keep_the_vm_of_key_time_through_their_dialogs(small_uri):
    app = make_app(small_uri)
    async with run_noted(app, size=(80, 24)) as pilot:
        await ready(app, pilot)
        app.table.select(DELTA)
        await pilot.press("F")
        await wait_for(lambda: isinstance(app.screen, ConfirmDialog), what="confirm")
        assert "'delta'" in str(app.screen.question)
        # the list changes under the dialog: the answer still goes to delta
        await on_host(app, lambda c: c.lookupByUUIDString(BRAVO).undefine())
        await wait_for(lambda: BRAVO not in app.table.domains, what="bravo gone")
        await pilot.press("y")
        await wait_for(lambda: app.table.domains[DELTA].is_shut_off, what="delta forced off")
        assert app.table.domains[ECHO].is_shut_off and app.table.domains[ALPHA].is_running


# --- Esc on a sub-screen keeps the filter ------------------------------------------------


async def test_escape_on_sub_screens_keeps_the_filter(small_uri):
    app = make_app(small_uri)
    async with run_noted(app, size=(80, 24)) as pilot:
        await ready(app, pilot)
        await pilot.press("slash", "e", "l", "t", "enter")  # delta (and its title)
        await pilot.pause()
        assert app.table.visible_uuids() == [DELTA] and app.table.text_filter == "elt"
        for key in ("enter", "x", "d", "z", "question_mark"):
            await pilot.press(key)
            await wait_for(lambda: app.screen is not app.list_screen, what=f"screen of {key}")
            await pilot.pause()
            await pilot.press("escape")
            await wait_for(lambda: app.screen is app.list_screen, what=f"back from {key}")
            await pilot.pause()
            assert app.table.text_filter == "elt", key
            assert app.table.visible_uuids() == [DELTA], key
        # on the list itself Esc still clears it
        await pilot.press("escape")
        await pilot.pause()
        assert app.table.text_filter == "" and app.table.row_count == 5


# --- confirmations name the VM, keys that do not apply say why -----------------------------


async def test_destructive_confirmations_name_the_vm(small_uri):
    from textual.widgets import Label

    from vmtui.ui.snapshots_screen import (
        DeleteSnapshotDialog,
        RevertDialog,
        SnapshotsScreen,
    )

    app = make_app(small_uri)
    async with run_noted(app, size=(80, 24)) as pilot:
        await ready(app, pilot)
        app.table.select(DELTA)
        await pilot.press("F")
        await wait_for(lambda: isinstance(app.screen, ConfirmDialog), what="force off dialog")
        assert "Force off 'delta'?" in str(app.screen.question)
        await pilot.press("escape")
        await pilot.press("D")
        await wait_for(lambda: isinstance(app.screen, DeleteDialog), what="delete dialog")
        assert "Delete domain 'delta'" in str(app.screen.query_one(".dialog-title", Label).content)
        await pilot.press("escape")
        await pilot.pause()
        from vmtui.core.storage import snapshots
        await app.service.call(lambda c: snapshots.create_snapshot(c, ECHO, "s1", "", memory=False))
        app.table.select(ECHO)
        await pilot.press("z")
        await wait_for(lambda: isinstance(app.screen, SnapshotsScreen) and app.screen.snaps, what="snapshots")
        await pilot.press("v")
        await wait_for(lambda: isinstance(app.screen, RevertDialog), what="revert dialog")
        assert "Revert 'echo' to 's1'?" in str(app.screen.query_one(".dialog-title", Label).content)
        await pilot.press("escape")
        await pilot.press("D")
        await wait_for(lambda: isinstance(app.screen, DeleteSnapshotDialog), what="delete snapshot dialog")
        assert "Delete snapshot 's1' of 'echo'?" in str(app.screen.query_one(".dialog-title", Label).content)


async def test_keys_that_do_not_apply_say_why(small_uri):
    app = make_app(small_uri)
    async with run_noted(app, size=(80, 24)) as pilot:
        await ready(app, pilot)
        app.table.select(ALPHA)  # running
        await pilot.pause()
        await pilot.press("l")
        await pilot.press("E")
        await pilot.press("s")
        await pilot.pause()
        assert app.screen is app.list_screen
        said = messages(app)
        assert any("'alpha' is running: shut it off to clone it" in m for m in said), said
        assert any("'alpha' is running: shut it off to export it" in m for m in said), said
        assert any("'alpha' is already running" in m for m in said), said
        app.table.select(BRAVO)  # shut off: u on a VM that is not a template
        await pilot.press("u")
        await pilot.pause()
        assert any("'bravo' is not a template" in m for m in messages(app))


# --- a linked clone's source warns before it changes -------------------------------------


async def _linked_clone_of_echo(app) -> str:
    def make(conn) -> str:
        return clone.run_clone(conn, clone.plan_clone(conn, ECHO, "echo-linked", "linked", None), None).uuid
    uuid = await app.service.call(make)
    await wait_for(lambda: uuid in app.table.domains, what="the clone listed")
    return uuid


async def test_starting_a_linked_clones_source_asks_first_naming_the_clones(small_uri):
    app = make_app(small_uri)
    async with run_noted(app, size=(80, 24)) as pilot:
        await ready(app, pilot)
        linked = await _linked_clone_of_echo(app)
        app.table.select(ECHO)
        await pilot.press("s")
        await wait_for(lambda: isinstance(app.screen, ConfirmDialog), what="start confirmation")
        question = str(app.screen.question)
        assert "'echo'" in question and "default/echo-linked.qcow2" in question
        await pilot.press("escape")  # no
        await pilot.pause()
        assert app.table.domains[ECHO].is_shut_off
        # the clone itself and a VM without clones start at once
        for uuid in (linked, BRAVO):
            app.table.select(uuid)
            await pilot.press("s")
            await wait_for(lambda: app.table.domains[uuid].is_running, what="started without asking")
            assert not isinstance(app.screen, ConfirmDialog)
        app.table.select(ECHO)
        await pilot.press("s")
        await wait_for(lambda: isinstance(app.screen, ConfirmDialog), what="start confirmation")
        await pilot.press("y")
        await wait_for(lambda: app.table.domains[ECHO].is_running, what="echo started after yes")


async def test_a_linked_clones_source_warns_in_the_console_revert_and_grow_dialogs(small_uri):
    from textual.widgets import Static

    from vmtui.core.storage import snapshots
    from vmtui.ui.console_screen import ConsolePane
    from vmtui.ui.disks_screen import DisksScreen, ResizeDialog
    from vmtui.ui.snapshots_screen import RevertDialog, SnapshotsScreen

    def warnings(screen) -> str:
        return " ".join(str(w.content) for w in screen.query(".warning").results(Static))

    app = make_app(small_uri)
    async with run_noted(app, size=(100, 30)) as pilot:
        await ready(app, pilot)
        await app.service.call(lambda c: snapshots.create_snapshot(c, ECHO, "s1", "", memory=False))
        await _linked_clone_of_echo(app)
        app.table.select(ECHO)
        await pilot.press("z")
        await wait_for(lambda: isinstance(app.screen, SnapshotsScreen) and app.screen.snaps, what="snapshots")
        await pilot.press("v")
        await wait_for(lambda: isinstance(app.screen, RevertDialog), what="revert dialog")
        assert "backing files of linked clones (default/echo-linked.qcow2)" in warnings(app.screen)
        await pilot.press("escape", "escape")
        await wait_for(lambda: app.screen is app.list_screen, what="back")
        await pilot.press("d")
        await wait_for(lambda: isinstance(app.screen, DisksScreen) and app.screen.rows, what="disks")
        await pilot.press("g")  # vda: the clone's backing file
        await wait_for(lambda: isinstance(app.screen, ResizeDialog), what="grow dialog")
        assert "backing file of linked clones (default/echo-linked.qcow2)" in warnings(app.screen)
        await pilot.press("escape", "escape")
        await wait_for(lambda: app.screen is app.list_screen, what="back")
        # the console's offer to start a shut-off VM asks too
        await pilot.press("c")
        await wait_for(lambda: app.screen.query(ConsolePane), what="console")
        app.screen.query_one(ConsolePane).start_vm()
        await wait_for(lambda: isinstance(app.screen, ConfirmDialog), what="start confirmation")
        assert "default/echo-linked.qcow2" in str(app.screen.question)
        await pilot.press("escape")
        await pilot.pause()
        assert app.table.domains[ECHO].is_shut_off


async def test_screens_opened_for_a_vm_hold_its_uuid(small_uri):
    from vmtui.ui.cloudinit_editor import CloudInitLibraryScreen
    from vmtui.ui.ovf_screens import ExportOvaScreen

    app = make_app(small_uri)
    async with run_noted(app, size=(80, 24)) as pilot:
        await ready(app, pilot)
        app.table.select(ECHO)
        await pilot.press("E")
        await wait_for(lambda: isinstance(app.screen, ExportOvaScreen), what="export dialog")
        assert app.screen.uuid == ECHO  # looked up by UUID when it runs, not by name
        await pilot.press("escape")
        await wait_for(lambda: app.screen is app.list_screen, what="back")
        await pilot.press("i")
        await wait_for(lambda: isinstance(app.screen, CloudInitLibraryScreen), what="library")
        assert (app.screen.domain_name, app.screen.domain_uuid) == ("echo", ECHO)
