"""Snapshot tests of the XML editor (issue 13, part 2): the editor, a
refusal on its line, the diff before define, at 80x24 and 120x40.

Update on purpose with: pytest tests/test_snapshots_xml_edit.py --snapshot-update
"""

from __future__ import annotations

from textual.widgets import TextArea

from vmtui.core.config import Config
from vmtui.ui.app import VmtuiApp
from vmtui.ui.screens import XmlScreen
from vmtui.ui.xml_editor import DiffDialog, XmlEditScreen

from .conftest import ALPHA, BRAVO, SMALL_HOST, host_uri, wait_for
from .statsfeed import quiet_service


def _editor(refused: bool):
    async def run_before(pilot):
        app = pilot.app
        await wait_for(lambda: app.ready and app.table.row_count == 5, what="list")
        app.table.select(BRAVO)
        await pilot.press("x")
        await wait_for(lambda: isinstance(app.screen, XmlScreen) and app.screen.is_mounted, what="xml")
        await pilot.press("E")
        await wait_for(lambda: isinstance(app.screen, XmlEditScreen) and app.screen.is_mounted, what="editor")
        editor = app.screen
        ta = editor.query_one("#xml-edit", TextArea)
        ta.cursor_blink = False  # the same frame every time
        await wait_for(lambda: "<domain" in ta.text, what="text")
        if refused:
            ta.text = ta.text.replace("<devices>", "<devices>\n    <bogus/>")
            await pilot.press("ctrl+s")
            await wait_for(lambda: isinstance(app.screen, DiffDialog) and app.screen.is_mounted, what="diff")
            await pilot.press("y")
            await wait_for(lambda: app.screen is editor and editor.error is not None, what="refused")
        await pilot.pause()

    return run_before


def test_xml_editor_80x24(snap_compare):
    assert snap_compare(VmtuiApp(quiet_service(host_uri(SMALL_HOST)), Config()), terminal_size=(80, 24),
                        run_before=_editor(refused=False))


def test_xml_editor_refused_80x24(snap_compare):
    assert snap_compare(VmtuiApp(quiet_service(host_uri(SMALL_HOST)), Config()), terminal_size=(80, 24),
                        run_before=_editor(refused=True))


def test_xml_editor_refused_120x40(snap_compare):
    assert snap_compare(VmtuiApp(quiet_service(host_uri(SMALL_HOST)), Config()), terminal_size=(120, 40),
                        run_before=_editor(refused=True))


def _diff_dialog():
    async def run_before(pilot):
        app = pilot.app
        await wait_for(lambda: app.ready and app.table.row_count == 5, what="list")
        app.table.select(ALPHA)
        await pilot.press("x")
        await wait_for(lambda: isinstance(app.screen, XmlScreen) and app.screen.is_mounted, what="xml")
        await pilot.press("E")
        await wait_for(lambda: isinstance(app.screen, XmlEditScreen) and app.screen.is_mounted, what="editor")
        ta = app.screen.query_one("#xml-edit", TextArea)
        ta.cursor_blink = False
        await wait_for(lambda: "<domain" in ta.text, what="text")
        ta.text = (ta.text.replace("<title>Alpha web server</title>", "<title>Alpha, edited</title>")
                   .replace("<vcpu placement='static'>1</vcpu>", "<vcpu placement='static'>2</vcpu>"))
        await pilot.press("ctrl+s")
        await wait_for(lambda: isinstance(app.screen, DiffDialog) and app.screen.is_mounted, what="diff")
        await pilot.pause()

    return run_before


def test_diff_dialog_80x24(snap_compare):
    assert snap_compare(VmtuiApp(quiet_service(host_uri(SMALL_HOST)), Config()), terminal_size=(80, 24),
                        run_before=_diff_dialog())


def test_diff_dialog_120x40(snap_compare):
    assert snap_compare(VmtuiApp(quiet_service(host_uri(SMALL_HOST)), Config()), terminal_size=(120, 40),
                        run_before=_diff_dialog())
