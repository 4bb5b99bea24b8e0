"""The graphical console against the real libvirtd + QEMU: a tiny guest with a
VNC display and a VGA card, its screen through the app (Pilot), keys sent to it.

The guest's init (tests.guest.graphics_init_script) draws a coloured title on
the VGA text screen, echoes each line typed on its keyboard to the serial
console, and reports Ctrl+Alt+Del there; the serial console proves what the
keys did.
"""

from __future__ import annotations

import asyncio
import os
import time

import pytest
from textual.widgets import Input

from tests import guest
from tests.conftest import wait_for
from tests.notes import notes_of, run_noted
from tests.prereq import missing
from vmtui.core.config import Config
from vmtui.core.connection.service import LibvirtService
from vmtui.core.consoles import graphics as G
from vmtui.ui.app import VmtuiApp
from vmtui.ui.graphics_screen import GraphicsScreen, SendKeysMenu, TypeTextDialog

pytestmark = pytest.mark.real

URI = "qemu:///system"
def is_blue(c) -> bool:
    """VGA text-mode blue (QEMU draws (0, 0, 168)): the title's background."""
    return c is not None and c[2] > 120 and c[0] < 60 and c[1] < 60


@pytest.fixture(scope="module")
def graphics_guest_files(_libvirt_available):
    try:
        return guest.tiny_guest_files(init_script=guest.graphics_init_script())
    except Exception as exc:  # no apt, no network, ...
        missing(f"cannot build the tiny test guest: {exc}")


def test_capture_and_displays_core(tiny_guest, graphics_guest_files, serial_console):
    dom = tiny_guest(files=graphics_guest_files, graphics=True)
    con = serial_console(dom)
    con.wait_ready(180)
    displays = G.read_displays(dom)
    assert [(d.type, d.address, d.autoport, d.password_set) for d in displays] == [("vnc", "127.0.0.1", True, False)]
    assert displays[0].port and displays[0].port >= 5900
    info = G.connect_info(displays[0], URI, dom.name())
    assert f"remote-viewer vnc://127.0.0.1:{displays[0].port}" in [c for _w, c in info.commands]

    frame = G.capture(dom.connect(), dom.UUIDString())
    assert frame.mime in ("image/png", "image/x-portable-pixmap")
    assert (frame.image.width, frame.image.height) == (720, 400)  # VGA text mode
    # saving writes QEMU's own bytes, which decode to the same picture
    assert G.decode_image(frame.mime, frame.file_bytes()) == frame.image
    again = G.capture(dom.connect(), dom.UUIDString(), previous=frame)
    if again.digest == frame.digest:
        assert again.unchanged and again.image is frame.image
    # the guest's title (white on blue) is on the screen
    deadline = 60
    while not any(map(is_blue, frame.image.colours())) and deadline:
        time.sleep(1)
        deadline -= 1
        frame = G.capture(dom.connect(), dom.UUIDString())
    assert any(map(is_blue, frame.image.colours())), frame.image.colours()


async def test_screen_view_and_send_keys_through_the_app(tiny_guest, graphics_guest_files, serial_console):
    dom = tiny_guest(files=graphics_guest_files, graphics=True)
    uuid, name = dom.UUIDString(), dom.name()
    con = serial_console(dom)
    await asyncio.to_thread(con.wait_ready, 180)

    app = VmtuiApp(LibvirtService(URI, stats_interval=3600), Config())
    async with run_noted(app, size=(100, 34)) as pilot:
        await wait_for(lambda: app.ready and uuid in app.table.rows, timeout=30, what="guest in the list")
        app.table.select(uuid)
        await pilot.pause()
        await pilot.press("g")
        await wait_for(lambda: isinstance(app.screen, GraphicsScreen), timeout=15, what="screen view")
        scr = app.screen
        assert "VNC" in str(scr.query_one("#gfx-title").content)
        info = str(scr.query_one("#gfx-info-text").content)
        assert "listen 127.0.0.1" in info and "remote-viewer vnc://127.0.0.1:" in info

        # a rendered picture, not one colour, with the title's blue
        def blue_cells() -> int:
            return sum(1 for row in scr.view.cells for c in row if is_blue(c[0]) or is_blue(c[1]))

        await wait_for(lambda: scr.frames >= 1 and scr.view.cells, timeout=30, what="first picture")
        await wait_for(lambda: blue_cells() > 0, timeout=60, what="the guest's blue title on screen")
        colours = {c for row in scr.view.cells for c in row if c != (None, None)}
        assert len(colours) > 2
        assert any("▀" in line for line in scr.view.text().splitlines())
        frames = scr.frames
        await wait_for(lambda: scr.frames >= frames + 2, timeout=30, what="refresh every second")

        # type text: shift, digits, punctuation; Enter ends the line
        token = f"Hello-There_{os.urandom(2).hex()}:42!"  # shifted keys, a doubled letter
        await pilot.press("t")
        await wait_for(lambda: isinstance(app.screen, TypeTextDialog), what="type dialog")
        app.screen.query_one("#text", Input).value = token
        await pilot.press("enter")
        await asyncio.to_thread(con.read_until, f"{guest.TTY1_PREFIX}{token}", 60)

        # Ctrl+Alt+F2 switches the guest to the second virtual terminal, F1 back
        async def send(key: str) -> None:
            await pilot.press("k")
            await wait_for(lambda: isinstance(app.screen, SendKeysMenu), what="send-keys menu")
            await pilot.press(key)
            await wait_for(lambda: isinstance(app.screen, GraphicsScreen), what="menu closed")

        async def active_vt(expected: str) -> None:
            for _ in range(50):
                out = await asyncio.to_thread(con.run, "cat /sys/class/tty/tty0/active")
                if out.strip().splitlines()[-1] == expected:
                    return
                await asyncio.sleep(0.2)
            raise AssertionError(f"active VT is {out!r}, wanted {expected}")

        await send("2")
        await active_vt("tty2")
        await send("1")
        await active_vt("tty1")

        # Ctrl+Alt+Del reaches the guest's keyboard driver -> SIGINT to init
        await send("d")
        await asyncio.to_thread(con.read_until, guest.CAD_MARK, 30)
        await wait_for(lambda: any("Sent Ctrl+Alt+Del" in n.message for n in notes_of(app).all),
                       what="notice")

        # pause stops the refresh
        await pilot.press("space")
        await pilot.pause(0.5)
        frames = scr.frames
        await asyncio.sleep(2.5)
        assert scr.frames == frames
        await pilot.press("escape")
        await wait_for(lambda: not isinstance(app.screen, GraphicsScreen), what="back")


async def test_screen_says_when_the_vm_stops(tiny_guest, graphics_guest_files):
    dom = tiny_guest(files=graphics_guest_files, graphics=True)
    uuid = dom.UUIDString()
    svc = LibvirtService(URI, stats_interval=3600)
    app = VmtuiApp(svc, Config())
    async with run_noted(app, size=(80, 24)) as pilot:
        await wait_for(lambda: app.ready and uuid in app.table.rows, timeout=30, what="guest in the list")
        scr = GraphicsScreen(svc, uuid, dom.name())
        await app.push_screen(scr)
        await wait_for(lambda: scr.frames >= 1, timeout=60, what="first picture")
        await asyncio.to_thread(dom.destroy)
        await wait_for(lambda: "not running" in str(scr.query_one("#gfx-status").content), timeout=30,
                       what="not-running state")
        assert scr.view.image is not None  # the last picture stays
