"""Editing the XML on the real libvirtd + QEMU (issue 13, part 2): what
libvirt holds after a good edit, a refused one and a name change."""

from __future__ import annotations

import libvirt
import pytest
from textual.widgets import Static, TextArea

from tests.conftest import wait_for
from tests.notes import Notes
from vmtui.core.config import Config
from vmtui.core.connection.service import LibvirtService
from vmtui.ui.app import VmtuiApp
from vmtui.ui.screens import XmlScreen
from vmtui.ui.xml_editor import DiffDialog, XmlEditScreen

pytestmark = pytest.mark.real

URI = "qemu:///system"


def inactive(dom) -> str:
    return dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)


async def open_editor(app, pilot, uuid: str) -> XmlEditScreen:
    await wait_for(lambda: app.ready and uuid in app.table.rows, timeout=30, what="guest in the list")
    app.table.select(uuid)
    await pilot.press("x")
    await wait_for(lambda: isinstance(app.screen, XmlScreen) and app.screen.is_mounted, what="xml screen")
    await pilot.press("E")
    await wait_for(lambda: isinstance(app.screen, XmlEditScreen) and app.screen.is_mounted, timeout=15, what="editor")
    await pilot.pause()
    return app.screen


def replace(editor: XmlEditScreen, old: str, new: str) -> str:
    ta = editor.query_one("#xml-edit", TextArea)
    assert old in ta.text, old
    ta.text = ta.text.replace(old, new)
    return ta.text


async def test_edit_xml_good_refused_and_renamed(tiny_guest, system_conn):
    dom = tiny_guest(start=False)
    uuid, name = dom.UUIDString(), dom.name()
    mem = "<memory unit='KiB'>131072</memory>"
    assert mem in inactive(dom)
    app = VmtuiApp(LibvirtService(URI, stats_interval=3600), Config())
    notes = Notes()
    async with app.run_test(size=(120, 40), message_hook=notes.hook) as pilot:
        # a good edit: libvirt holds it
        editor = await open_editor(app, pilot, uuid)
        replace(editor, mem, "<memory unit='KiB'>196608</memory>")
        await pilot.press("ctrl+s")
        await wait_for(lambda: isinstance(app.screen, DiffDialog) and app.screen.is_mounted, timeout=15, what="diff")
        await pilot.press("y")
        await wait_for(lambda: isinstance(app.screen, XmlScreen) and app.screen.is_mounted, timeout=30, what="defined")
        assert "<memory unit='KiB'>196608</memory>" in inactive(system_conn.lookupByUUIDString(uuid))
        assert notes.has(f"Defined '{name}'.")

        # an element libvirt does not know: its schema refuses it, on its line, nothing changes
        before = inactive(system_conn.lookupByUUIDString(uuid))
        editor = await open_editor(app, pilot, uuid)
        text = replace(editor, "<devices>", "<devices>\n    <frobnicator/>")
        await pilot.press("ctrl+s")
        await wait_for(lambda: isinstance(app.screen, DiffDialog) and app.screen.is_mounted, timeout=15, what="diff")
        await pilot.press("y")
        await wait_for(lambda: app.screen is editor and editor.error is not None, timeout=30, what="refused")
        shown = str(editor.query_one("#xml-edit-error", Static).content)
        line = text.splitlines().index("    <frobnicator/>") + 1
        assert f"Cannot define domain '{name}'" in shown and "schema" in shown
        assert f"Line {line}" in shown and "<frobnicator/>" in shown
        assert editor.text == text
        assert inactive(system_conn.lookupByUUIDString(uuid)) == before

        # a name change: refused with its reason, libvirt never asked
        replace(editor, "\n    <frobnicator/>", "")
        replace(editor, f"<name>{name}</name>", f"<name>{name}-x</name>")
        await pilot.press("ctrl+s")
        await wait_for(lambda: "the name changed" in str(editor.query_one("#xml-edit-error", Static).content),
                       timeout=15, what="rename refused")
        assert app.screen is editor
        with pytest.raises(libvirt.libvirtError):
            system_conn.lookupByName(f"{name}-x")
        assert inactive(system_conn.lookupByUUIDString(uuid)) == before
