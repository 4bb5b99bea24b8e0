"""Editing a VM's persistent XML (issue 13, part 2): vmtui's checks, the
diff, libvirt's define with validation, the line of a refusal; the
built-in editor and $EDITOR through Textual's Pilot on the test driver."""

from __future__ import annotations

import contextlib
import sys
import textwrap

import libvirt
import pytest
from textual.widgets import Static, TextArea

from vmtui.core.config import Config
from vmtui.core.connection.service import LibvirtService
from vmtui.core.xml.edit_text import XmlEditConflict, XmlEditError, check_edit, define_edited_xml, error_line
from vmtui.ui.app import VmtuiApp
from vmtui.ui.screens import XmlScreen
from vmtui.ui.xml_editor import XML_LANGUAGE, DiffDialog, EditFailedDialog, XmlEditScreen, editor_command

from .conftest import ALPHA, BRAVO, wait_for
from .notes import Notes

BRAVO_MEM = "<memory unit='KiB'>2097152</memory>"
NEW_MEM = "<memory unit='KiB'>3145728</memory>"


@pytest.fixture
def conn(small_uri):
    c = libvirt.open(small_uri)
    yield c
    c.close()


def inactive(conn, uuid: str) -> str:
    return conn.lookupByUUIDString(uuid).XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)


# --- core: checks, diff, define ------------------------------------------------------


def test_a_good_edit_is_defined_and_libvirt_holds_it(conn):
    before = inactive(conn, BRAVO)
    assert BRAVO_MEM in before
    edited = before.replace(BRAVO_MEM, NEW_MEM)
    plan = check_edit(before, edited)
    assert plan.changed and f"-  {BRAVO_MEM}" in plan.diff and f"+  {NEW_MEM}" in plan.diff
    assert plan.diff.startswith("--- persistent definition\n+++ edited\n")
    done = define_edited_xml(conn, BRAVO, edited, expected=before)
    assert done.changed and not done.running and done.name == "bravo"
    assert NEW_MEM in inactive(conn, BRAVO) and NEW_MEM in done.xml


def test_a_running_vm_is_told_the_changes_wait_for_its_next_boot(conn):
    before = inactive(conn, ALPHA)
    edited = before.replace("<title>Alpha web server</title>", "<title>Alpha, edited</title>")
    done = define_edited_xml(conn, ALPHA, edited, expected=before)
    assert done.running and "<title>Alpha, edited</title>" in inactive(conn, ALPHA)


def test_libvirt_refuses_an_unknown_element_with_its_line_and_nothing_changes(conn):
    before = inactive(conn, BRAVO)
    edited = before.replace("<devices>", "<devices>\n    <bogus/>")
    bogus_line = edited.splitlines().index("    <bogus/>") + 1
    with pytest.raises(XmlEditError) as info:
        define_edited_xml(conn, BRAVO, edited, expected=before)
    err = info.value
    assert "failed to validate against schema" in err.cause  # without VALIDATE libvirt drops it silently
    assert err.line == bogus_line and err.how == "changed" and err.line_text == "<bogus/>"
    assert err.message.startswith("Cannot define domain 'bravo': XML document failed to validate")
    assert f"Line {bogus_line} (your first change; libvirt names no line): <bogus/>" in err.message
    assert inactive(conn, BRAVO) == before


def test_the_line_of_a_value_libvirt_quotes(conn):
    before = inactive(conn, BRAVO)
    edited = before.replace(BRAVO_MEM, "<memory unit='KiB'>lots</memory>")
    with pytest.raises(XmlEditError) as info:
        define_edited_xml(conn, BRAVO, edited, expected=before)
    assert info.value.line == edited.splitlines().index("  <memory unit='KiB'>lots</memory>") + 1
    assert info.value.how == "quoted"
    assert inactive(conn, BRAVO) == before


@pytest.mark.parametrize("message, line, how", [
    ("XML error: (domain_definition):4: Opening and ending tag mismatch", 4, "named"),
    ("internal error: something at line 3 went wrong", 3, "named"),
    ("XML error: Invalid value for attribute 'bus' in element 'target': 'nope'.", 6, "quoted"),
    ("Type unsignedLong doesn't allow value 'abc'\nExtra element memory in interleave", 5, "quoted"),
    ("unsupported configuration: something", 5, "changed"),
])
def test_error_line(message, line, how):
    original = "<domain>\n  <name>x</name>\n  <uuid>u</uuid>\n  <devices>\n  <memory>1</memory>\n" \
               "  <target bus='virtio'/>\n  </devices>\n</domain>\n"
    edited = original.replace("<memory>1", "<memory>abc").replace("bus='virtio'", "bus='nope'")
    assert error_line(message, original, edited) == (line, how)


def test_a_name_change_is_refused_before_libvirt_with_a_reason(conn):
    before = inactive(conn, BRAVO)
    edited = before.replace("<name>bravo</name>", "<name>bravo2</name>")
    with pytest.raises(XmlEditError) as info:
        define_edited_xml(conn, BRAVO, edited, expected=before)
    err = info.value
    assert "the name changed from 'bravo' to 'bravo2'" in err.cause
    assert "second VM named 'bravo2'" in err.cause and "domrename" in err.cause
    assert err.line == 2 and err.line_text == "<name>bravo2</name>"
    with pytest.raises(libvirt.libvirtError):
        conn.lookupByName("bravo2")
    assert inactive(conn, BRAVO) == before


def test_a_uuid_change_or_removal_is_refused(conn):
    before = inactive(conn, BRAVO)
    other = before.replace(BRAVO, "22222222-1111-4111-8111-000000000002")
    with pytest.raises(XmlEditError) as info:
        check_edit(before, other)
    assert "the UUID changed from" in info.value.cause and info.value.line == 3
    gone = before.replace(f"<uuid>{BRAVO}</uuid>", "")
    with pytest.raises(XmlEditError, match="the <uuid> element is gone"):
        check_edit(before, gone)
    # the same UUID written another way is the same UUID
    check_edit(before, before.replace(BRAVO, BRAVO.upper().replace("-", "")))


def test_malformed_xml_names_its_line(conn):
    before = inactive(conn, BRAVO)
    edited = before.replace("</devices>", "</device>")
    with pytest.raises(XmlEditError) as info:
        define_edited_xml(conn, BRAVO, edited, expected=before)
    assert "not well-formed XML: mismatched tag" in info.value.cause
    assert info.value.line == edited.splitlines().index("  </device>") + 1
    with pytest.raises(XmlEditError, match="root element is <network>"):
        check_edit(before, "<network><name>bravo</name></network>")
    with pytest.raises(XmlEditError, match="the XML is empty"):
        check_edit(before, "  \n")


def test_no_change_defines_nothing(conn):
    before = inactive(conn, BRAVO)
    assert not check_edit(before, before).changed
    assert not define_edited_xml(conn, BRAVO, before, expected=before).changed


def test_a_definition_changed_meanwhile_is_a_conflict(conn):
    before = inactive(conn, BRAVO)
    conn.defineXML(before.replace(BRAVO_MEM, "<memory unit='KiB'>655360</memory>"))  # another tool
    with pytest.raises(XmlEditConflict, match="changed on the host since the editor opened"):
        define_edited_xml(conn, BRAVO, before.replace(BRAVO_MEM, NEW_MEM), expected=before)
    assert "655360" in inactive(conn, BRAVO)


def test_the_flag_falls_back_where_the_driver_lacks_it(conn, monkeypatch):
    """A driver without VIR_DOMAIN_DEFINE_VALIDATE gets a plain define."""
    calls = []

    class NoValidate:
        def __getattr__(self, name):
            return getattr(conn, name)

        def defineXMLFlags(self, xml, flags):  # noqa: N802
            calls.append(flags)
            raise libvirt.libvirtError("unsupported flags (0x1) in function testDomainDefineXMLFlags")

    monkeypatch.setattr(libvirt.libvirtError, "get_error_code", lambda self: libvirt.VIR_ERR_INVALID_ARG)
    before = inactive(conn, BRAVO)
    done = define_edited_xml(NoValidate(), BRAVO, before.replace(BRAVO_MEM, NEW_MEM))
    monkeypatch.undo()
    assert calls == [libvirt.VIR_DOMAIN_DEFINE_VALIDATE] and done.changed
    assert NEW_MEM in inactive(conn, BRAVO)


def test_editor_command_is_chosen_like_virsh():
    assert editor_command({"VISUAL": "code -w", "EDITOR": "vi"}) == ["code", "-w"]
    assert editor_command({"VISUAL": " ", "EDITOR": "nano -R"}) == ["nano", "-R"]
    assert editor_command({}) is None


def test_xml_is_highlighted():
    """tree-sitter-xml is a dependency: Textual's TextArea highlights XML with it."""
    assert XML_LANGUAGE == "xml"


# --- the editor screen (Pilot) ---------------------------------------------------------------


def make_app(uri: str) -> VmtuiApp:
    return VmtuiApp(LibvirtService(uri, stats_interval=3600, reconnect=False), Config())


async def open_xml(app, pilot, uuid: str) -> XmlScreen:
    await wait_for(lambda: app.ready and app.table.row_count > 0, what="list")
    app.table.select(uuid)
    assert app.table.selected_uuid == uuid
    await pilot.press("x")
    await wait_for(lambda: isinstance(app.screen, XmlScreen) and app.screen.is_mounted, what="xml screen")
    screen = app.screen
    await wait_for(lambda: "<domain" in screen.query_one("#xml", TextArea).text, what="xml loaded")
    return screen


async def open_editor(app, pilot, uuid: str) -> XmlEditScreen:
    await open_xml(app, pilot, uuid)
    await pilot.press("E")
    await wait_for(lambda: isinstance(app.screen, XmlEditScreen) and app.screen.is_mounted, what="editor")
    await pilot.pause()
    return app.screen


def edit(screen: XmlEditScreen, old: str, new: str) -> None:
    ta = screen.query_one("#xml-edit", TextArea)
    assert old in ta.text
    ta.text = ta.text.replace(old, new)


async def persistent(app, uuid: str) -> str:
    return await app.service.domain_xml(uuid, inactive=True)


async def test_good_edit_shows_the_diff_then_defines(small_uri):
    app = make_app(small_uri)
    notes = Notes()
    async with app.run_test(size=(120, 40), message_hook=notes.hook) as pilot:
        editor = await open_editor(app, pilot, BRAVO)
        ta = editor.query_one("#xml-edit", TextArea)
        assert ta.language == "xml" and ta.text == await persistent(app, BRAVO)
        edit(editor, BRAVO_MEM, NEW_MEM)
        await pilot.press("ctrl+s")
        await wait_for(lambda: isinstance(app.screen, DiffDialog) and app.screen.is_mounted, what="diff")
        diff = str(app.screen.query_one("#diff", Static).content)
        assert f"-  {BRAVO_MEM}" in diff and f"+  {NEW_MEM}" in diff
        assert await persistent(app, BRAVO) != ta.text  # nothing defined before the answer
        await pilot.press("y")
        await wait_for(lambda: isinstance(app.screen, XmlScreen) and app.screen.is_mounted, what="back to the XML")
        xml_view = app.screen
        await wait_for(lambda: NEW_MEM in xml_view.query_one("#xml", TextArea).text, what="new XML shown")
        assert "persistent configuration" in str(xml_view.query_one("#xml-title", Static).content)
        assert NEW_MEM in await persistent(app, BRAVO)
        assert notes.has("Defined 'bravo'.")


async def test_keep_editing_returns_to_the_text(small_uri):
    app = make_app(small_uri)
    async with app.run_test(size=(80, 24)) as pilot:
        editor = await open_editor(app, pilot, BRAVO)
        edit(editor, BRAVO_MEM, NEW_MEM)
        await pilot.press("ctrl+s")
        await wait_for(lambda: isinstance(app.screen, DiffDialog) and app.screen.is_mounted, what="diff")
        await pilot.press("escape")
        await wait_for(lambda: app.screen is editor, what="editor again")
        assert NEW_MEM in editor.text and BRAVO_MEM in await persistent(app, BRAVO)


async def test_refused_edit_shows_libvirts_error_on_its_line_and_keeps_the_text(small_uri):
    app = make_app(small_uri)
    notes = Notes()
    async with app.run_test(size=(120, 40), message_hook=notes.hook) as pilot:
        editor = await open_editor(app, pilot, BRAVO)
        before = await persistent(app, BRAVO)
        edit(editor, "<devices>", "<devices>\n    <bogus/>")
        text = editor.text
        bogus_line = text.splitlines().index("    <bogus/>") + 1
        await pilot.press("ctrl+s")
        await wait_for(lambda: isinstance(app.screen, DiffDialog) and app.screen.is_mounted, what="diff")
        await pilot.press("y")
        await wait_for(lambda: app.screen is editor and editor.error is not None, what="refusal shown")
        shown = str(editor.query_one("#xml-edit-error", Static).content)
        assert "Cannot define domain 'bravo': XML document failed to validate against schema" in shown
        assert f"Line {bogus_line}" in shown and "<bogus/>" in shown
        ta = editor.query_one("#xml-edit", TextArea)
        assert ta.text == text  # kept for another try
        assert ta.cursor_location[0] == bogus_line - 1 and ta.selected_text == "    <bogus/>"
        assert await persistent(app, BRAVO) == before  # nothing changed
        # fixed, it goes through
        edit(editor, "\n    <bogus/>", "")
        edit(editor, BRAVO_MEM, NEW_MEM)
        await pilot.press("ctrl+s")
        await wait_for(lambda: isinstance(app.screen, DiffDialog) and app.screen.is_mounted, what="diff")
        await pilot.press("y")
        await wait_for(lambda: isinstance(app.screen, XmlScreen) and app.screen.is_mounted, what="defined")
        assert NEW_MEM in await persistent(app, BRAVO)


async def test_name_change_is_refused_with_a_reason_and_no_diff(small_uri):
    app = make_app(small_uri)
    notes = Notes()
    async with app.run_test(size=(120, 40), message_hook=notes.hook) as pilot:
        editor = await open_editor(app, pilot, BRAVO)
        before = await persistent(app, BRAVO)
        edit(editor, "<name>bravo</name>", "<name>bravo-renamed</name>")
        await pilot.press("ctrl+s")
        await wait_for(lambda: editor.error is not None, what="refusal")
        assert app.screen is editor  # refused before any diff or define
        shown = str(editor.query_one("#xml-edit-error", Static).content)
        assert "the name changed from 'bravo' to 'bravo-renamed'" in shown and "Line 2" in shown
        assert editor.query_one("#xml-edit", TextArea).cursor_location[0] == 1
        assert await persistent(app, BRAVO) == before
        assert "bravo-renamed" not in {d.name for d in app.service.domains.values()}
        # Ctrl+R puts the definition back
        await pilot.press("ctrl+r")
        assert editor.text == before and editor.error is None


async def test_running_vm_edit_says_next_boot_and_conflict_shows_the_new_diff(small_uri):
    app = make_app(small_uri)
    notes = Notes()
    async with app.run_test(size=(120, 40), message_hook=notes.hook) as pilot:
        editor = await open_editor(app, pilot, ALPHA)
        edit(editor, "<title>Alpha web server</title>", "<title>Alpha, edited</title>")
        # meanwhile, another tool changes alpha's definition
        xml = await persistent(app, ALPHA)
        await app.service.call(lambda c: c.defineXML(xml.replace("<vcpu placement='static'>1</vcpu>",
                                                                 "<vcpu placement='static'>2</vcpu>")))
        await pilot.press("ctrl+s")
        await wait_for(lambda: isinstance(app.screen, DiffDialog) and app.screen.is_mounted, what="diff")
        assert "apply at its next boot" in str(app.screen.query_one(".dim", Static).content)
        first = str(app.screen.query_one("#diff", Static).content)
        assert "-  <vcpu" not in first and "+  <title>Alpha, edited</title>" in first
        await pilot.press("y")
        await wait_for(lambda: notes.has("changed on the host while you edited it"), what="conflict told")
        await wait_for(lambda: isinstance(app.screen, DiffDialog) and app.screen.is_mounted, what="the diff again")
        # against what the host holds now: defining the text would undo the other change
        diff = str(app.screen.query_one("#diff", Static).content)
        assert "-  <vcpu placement='static'>2</vcpu>" in diff and "+  <title>Alpha, edited</title>" in diff
        await pilot.press("y")
        await wait_for(lambda: isinstance(app.screen, XmlScreen) and app.screen.is_mounted, what="defined")
        assert notes.has("Defined 'alpha': it is running, the changes apply at its next boot.")
        assert "<title>Alpha, edited</title>" in await persistent(app, ALPHA)


async def test_escape_asks_before_throwing_an_edit_away(small_uri):
    app = make_app(small_uri)
    async with app.run_test(size=(80, 24)) as pilot:
        editor = await open_editor(app, pilot, BRAVO)
        edit(editor, BRAVO_MEM, NEW_MEM)
        await pilot.press("escape")
        await wait_for(lambda: type(app.screen).__name__ == "ConfirmDialog" and app.screen.is_mounted, what="asked")
        await pilot.press("n")
        await wait_for(lambda: app.screen is editor, what="still editing")
        await pilot.press("escape")
        await wait_for(lambda: type(app.screen).__name__ == "ConfirmDialog" and app.screen.is_mounted, what="asked")
        await pilot.press("y")
        await wait_for(lambda: isinstance(app.screen, XmlScreen) and app.screen.is_mounted, what="closed")
        assert BRAVO_MEM in await persistent(app, BRAVO)


async def test_typing_in_the_editor_then_ctrl_s(small_uri):
    """Keys, not assignments: the title typed at the end of its line."""
    app = make_app(small_uri)
    async with app.run_test(size=(80, 24)) as pilot:
        editor = await open_editor(app, pilot, ALPHA)
        ta = editor.query_one("#xml-edit", TextArea)
        row = ta.text.splitlines().index("  <title>Alpha web server</title>")
        ta.move_cursor((row, len("  <title>Alpha web server")))
        await pilot.press("space", "2")
        await pilot.press("ctrl+s")
        await wait_for(lambda: isinstance(app.screen, DiffDialog) and app.screen.is_mounted, what="diff")
        await pilot.press("enter")  # the focused Define button
        await wait_for(lambda: isinstance(app.screen, XmlScreen) and app.screen.is_mounted, what="defined")
        assert "<title>Alpha web server 2</title>" in await persistent(app, ALPHA)


async def test_read_only_and_transient_vms_cannot_be_edited(small_uri):
    app = VmtuiApp(LibvirtService(small_uri, stats_interval=3600, reconnect=False, readonly=True), Config())
    notes = Notes()
    async with app.run_test(size=(80, 24), message_hook=notes.hook) as pilot:
        await open_xml(app, pilot, BRAVO)
        await pilot.press("E")
        await wait_for(lambda: notes.has("Read-only connection"), what="told")
        assert isinstance(app.screen, XmlScreen)
    app = make_app(small_uri)
    notes = Notes()
    async with app.run_test(size=(80, 24), message_hook=notes.hook) as pilot:
        await wait_for(lambda: app.ready, what="list")
        xml = await persistent(app, BRAVO)
        await app.service.call(lambda c: c.createXML(
            xml.replace("<name>bravo</name>", "<name>temp</name>").replace(BRAVO, "33333333-1111-4111-8111-000000000003"),
            0))
        await wait_for(lambda: "33333333-1111-4111-8111-000000000003" in app.table.rows, what="transient VM")
        await open_xml(app, pilot, "33333333-1111-4111-8111-000000000003")
        await pilot.press("e")
        await wait_for(lambda: notes.has("'temp' is transient: it has no persistent definition"), what="told")


# --- $EDITOR ------------------------------------------------------------------------------


FAKE_EDITOR = textwrap.dedent("""\
    #!{python}
    # A fake $EDITOR: the n-th run applies the n-th step of FAKE_EDITOR_STEPS (steps
    # separated by ";;", each "old=>new" replacements joined by "&&") to the file,
    # and can wait for a line from the terminal.
    import os, pathlib, sys
    path = pathlib.Path(sys.argv[-1])
    state = pathlib.Path(os.environ["FAKE_EDITOR_STATE"])
    n = int(state.read_text()) if state.exists() else 0
    state.write_text(str(n + 1))
    if os.environ.get("FAKE_EDITOR_WAIT"):
        print("FAKE-EDITOR editing " + path.name + ": type a line", flush=True)
        sys.stdin.readline()
    steps = os.environ["FAKE_EDITOR_STEPS"].split(";;")
    text = path.read_text()
    for pair in steps[min(n, len(steps) - 1)].split("&&"):
        old, new = pair.split("=>")
        assert old in text, old
        text = text.replace(old, new)
    path.write_text(text)
    sys.exit(int(os.environ.get("FAKE_EDITOR_EXIT", "0")))
    """)


@pytest.fixture
def fake_editor(tmp_path, monkeypatch):
    script = tmp_path / "fake-editor"
    script.write_text(FAKE_EDITOR.format(python=sys.executable))
    script.chmod(0o755)
    monkeypatch.delenv("VISUAL", raising=False)
    monkeypatch.setenv("EDITOR", f"{script} --wait")
    monkeypatch.setenv("FAKE_EDITOR_STATE", str(tmp_path / "runs"))
    return script


@pytest.fixture
def suspendable(monkeypatch):
    """Pilot's headless driver cannot suspend; the pty test (test_xml_edit_pty.py)
    does it for real. Here suspend() is a no-op and the editor runs as a child."""
    monkeypatch.setattr(VmtuiApp, "suspend", lambda self: contextlib.nullcontext())


async def test_editor_edit_is_defined(small_uri, fake_editor, suspendable, monkeypatch, tmp_path):
    monkeypatch.setenv("FAKE_EDITOR_STEPS", f"{BRAVO_MEM}=>{NEW_MEM}")
    app = make_app(small_uri)
    notes = Notes()
    async with app.run_test(size=(120, 40), message_hook=notes.hook) as pilot:
        await open_xml(app, pilot, BRAVO)
        await pilot.press("e")
        await wait_for(lambda: isinstance(app.screen, DiffDialog) and app.screen.is_mounted, timeout=20, what="diff after the editor")
        assert f"+  {NEW_MEM}" in str(app.screen.query_one("#diff", Static).content)
        await pilot.press("y")
        await wait_for(lambda: notes.has("Defined 'bravo'."), what="defined")
        assert NEW_MEM in await persistent(app, BRAVO)
        assert (tmp_path / "runs").read_text() == "1"


async def test_editor_refusal_offers_another_try_with_the_same_text(small_uri, fake_editor, suspendable,
                                                                    monkeypatch, tmp_path):
    # first run: an element libvirt does not know; second run: fix it and change the memory;
    # third run: put the memory back
    monkeypatch.setenv("FAKE_EDITOR_STEPS", f"<devices>=><devices><bogus/>;;<bogus/>=>&&{BRAVO_MEM}=>{NEW_MEM}"
                                            f";;{NEW_MEM}=>{BRAVO_MEM}")
    app = make_app(small_uri)
    notes = Notes()
    async with app.run_test(size=(120, 40), message_hook=notes.hook) as pilot:
        before = None
        await open_xml(app, pilot, BRAVO)
        before = await persistent(app, BRAVO)
        await pilot.press("e")
        await wait_for(lambda: isinstance(app.screen, DiffDialog) and app.screen.is_mounted, timeout=20, what="diff")
        await pilot.press("y")
        await wait_for(lambda: isinstance(app.screen, EditFailedDialog) and app.screen.is_mounted, what="refusal")
        body = str(app.screen.query_one(".dialog-body", Static).content)
        assert "failed to validate against schema" in body and "<bogus/>" in body
        assert await persistent(app, BRAVO) == before
        await pilot.press("e")  # edit again: the second run sees the first run's text
        await wait_for(lambda: (tmp_path / "runs").read_text() == "2", timeout=20, what="second run")
        await wait_for(lambda: isinstance(app.screen, DiffDialog) and app.screen.is_mounted, what="diff")
        diff = str(app.screen.query_one("#diff", Static).content)
        assert "bogus" not in diff and f"+  {NEW_MEM}" in diff
        await pilot.press("escape")  # keep editing: back to the editor (a third run)
        await wait_for(lambda: (tmp_path / "runs").read_text() == "3", timeout=20, what="third run")
        await wait_for(lambda: notes.has("No changes"), what="nothing to define")
        assert await persistent(app, BRAVO) == before


async def test_editor_failure_defines_nothing(small_uri, fake_editor, suspendable, monkeypatch):
    monkeypatch.setenv("FAKE_EDITOR_STEPS", f"{BRAVO_MEM}=>{NEW_MEM}")
    monkeypatch.setenv("FAKE_EDITOR_EXIT", "3")
    app = make_app(small_uri)
    notes = Notes()
    async with app.run_test(size=(80, 24), message_hook=notes.hook) as pilot:
        await open_xml(app, pilot, BRAVO)
        await pilot.press("e")
        await wait_for(lambda: notes.has("exited with status 3: nothing was defined"), timeout=20, what="told")
        assert BRAVO_MEM in await persistent(app, BRAVO)
    monkeypatch.setenv("EDITOR", "/no/such/editor")
    app = make_app(small_uri)
    notes = Notes()
    async with app.run_test(size=(80, 24), message_hook=notes.hook) as pilot:
        await open_xml(app, pilot, BRAVO)
        await pilot.press("e")
        await wait_for(lambda: notes.has("cannot run the editor '/no/such/editor'"), timeout=20, what="told")


async def test_editor_without_a_terminal_to_hand_over_opens_vmtuis_editor(small_uri, fake_editor):
    """Pilot's headless driver cannot suspend: the built-in editor instead."""
    app = make_app(small_uri)
    notes = Notes()
    async with app.run_test(size=(80, 24), message_hook=notes.hook) as pilot:
        await open_xml(app, pilot, BRAVO)
        await pilot.press("e")
        await wait_for(lambda: isinstance(app.screen, XmlEditScreen) and app.screen.is_mounted, what="built-in editor")
        assert notes.has("cannot be handed to $EDITOR")
