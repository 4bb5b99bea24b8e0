"""The graphical console screen through Pilot on the test driver (g key,
connection info, injected pictures, send-keys menu, type-text prompt)."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import Input

from tests.notes import notes_of, run_noted
from vmtui.core.consoles import graphics as G
from vmtui.ui.graphics_screen import (
    GraphicsScreen,
    ScreenView,
    SendKeysMenu,
    TypeTextDialog,
)

from .conftest import ALPHA, BRAVO, DELTA, wait_for
from .test_ui import make_app, ready, select

TEST_SCREENSHOT = Path("/usr/share/libvirt/test-screenshot.png")


def _stripes() -> G.Image:
    """Top half red, bottom half blue."""
    w, h = 40, 20
    return G.Image(w, h, bytes([255, 0, 0]) * (w * h // 2) + bytes([0, 0, 255]) * (w * h // 2))


async def test_g_opens_the_screen_with_connection_info(small_uri):
    app = make_app(small_uri)
    async with run_noted(app, size=(80, 24)) as pilot:
        await ready(app, pilot)
        select(app, ALPHA)
        await pilot.press("g")
        await wait_for(lambda: isinstance(app.screen, GraphicsScreen), what="graphics screen")
        scr = app.screen
        info = str(scr.query_one("#gfx-info-text").content)
        title = str(scr.query_one("#gfx-title").content)
        assert "alpha" in title and "VNC" in title
        # test driver: local URI, so direct lines and no ssh
        assert scr.infos and scr.infos[0].display.type == "vnc"
        assert "virt-viewer --connect" in info and "ssh" not in info
        if TEST_SCREENSHOT.exists():  # the test driver's canned screenshot (libvirt0 package)
            await wait_for(lambda: scr.frames >= 1 and scr.view.cells, timeout=30, what="first picture")
            assert scr.last_frame.mime == "image/png"
            assert (scr.last_frame.image.width, scr.last_frame.image.height) == (1120, 832)
            cells = scr.view.cells
            assert len(cells) == scr.view.size.height and len({c for row in cells for c in row}) > 10
            status = str(scr.query_one("#gfx-status").content)
            assert "1120×832 PNG" in status and "live" in status
        await pilot.press("space")
        assert scr.paused and "paused" in str(scr.query_one("#gfx-status").content)
        await pilot.press("escape")
        await wait_for(lambda: not isinstance(app.screen, GraphicsScreen), what="back to the list")


async def test_g_greyed_for_shut_off_vm_and_explained_without_graphics(small_uri):
    app = make_app(small_uri)
    async with run_noted(app, size=(80, 24)) as pilot:
        await ready(app, pilot)
        select(app, BRAVO)  # shut off
        await pilot.pause()
        assert app.check_action("graphics", ()) is None
        await pilot.press("g")  # greyed: the binding does not run, the notice says why
        await pilot.pause()
        assert not isinstance(app.screen, GraphicsScreen)
        assert any("shut off" in n.message and "screen" in n.message for n in notes_of(app).all)
        select(app, DELTA)  # running, but no <graphics>
        await pilot.pause()
        assert app.check_action("graphics", ()) is True
        await pilot.press("g")
        await wait_for(lambda: any("no VNC or SPICE display" in n.message for n in notes_of(app).all),
                       what="no-graphics notice")
        assert not isinstance(app.screen, GraphicsScreen)


async def test_injected_picture_is_drawn_with_half_blocks(small_uri):
    app = make_app(small_uri)
    async with run_noted(app, size=(80, 24)) as pilot:
        await ready(app, pilot)
        scr = GraphicsScreen(app.service, ALPHA, "alpha", source=_stripes)
        await app.push_screen(scr)
        await wait_for(lambda: scr.frames >= 1 and scr.view.cells, what="picture")
        await pilot.pause()
        view = scr.query_one(ScreenView)
        lines = view.text().splitlines()
        assert any("▀" in line for line in lines)
        colours = {c for row in view.cells for c in row if c != (None, None)}
        assert ((255, 0, 0), (255, 0, 0)) in colours and ((0, 0, 255), (0, 0, 255)) in colours
        # the strip draws fg = top, bg = bottom
        strip = view.render_line(len(view.cells) // 4)
        seg = next(s for s in strip if s.text.strip())
        assert seg.style.color.triplet == (255, 0, 0) and seg.style.bgcolor.triplet == (255, 0, 0)
        # f stretches to the whole widget, i hides the info panel (the view grows)
        h0 = view.size.height
        await pilot.press("i")
        await pilot.pause()
        assert view.size.height > h0
        await pilot.press("f")
        await wait_for(lambda: all(c != (None, None) for c in view.cells[0]), what="stretched")


async def test_no_color_uses_a_character_ramp(small_uri, monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    app = make_app(small_uri)
    async with run_noted(app, size=(80, 24)) as pilot:
        await ready(app, pilot)
        assert app.no_color
        scr = GraphicsScreen(app.service, ALPHA, "alpha", source=lambda: G.sample_image())
        await app.push_screen(scr)
        await wait_for(lambda: scr.frames >= 1 and scr.view.cells, what="picture")
        await pilot.pause()
        text = scr.query_one(ScreenView).text()
        assert "▀" not in text
        assert len(set(text) - {" ", "\n"}) >= 3  # several shades


async def test_send_keys_menu_and_type_text(small_uri, monkeypatch):
    app = make_app(small_uri)
    sent: list[list[int]] = []
    async with run_noted(app, size=(80, 24)) as pilot:
        await ready(app, pilot)
        scr = GraphicsScreen(app.service, ALPHA, "alpha", source=_stripes)
        await app.push_screen(scr)
        await pilot.pause()
        # record what reaches virDomainSendKey (the test driver accepts it)
        real = G.send_combo

        def spy(dom, codes, holdtime=0):
            sent.append(list(codes))
            real(dom, codes, holdtime)

        monkeypatch.setattr(G, "send_combo", spy)
        if True:
            await pilot.press("k")
            await wait_for(lambda: isinstance(app.screen, SendKeysMenu), what="menu")
            await pilot.press("d")
            await wait_for(lambda: sent == [[29, 56, 111]], what="Ctrl+Alt+Del")
            await wait_for(lambda: any("Sent Ctrl+Alt+Del" in n.message for n in notes_of(app).all),
                           what="notice")
            await pilot.press("k")
            await wait_for(lambda: isinstance(app.screen, SendKeysMenu), what="menu")
            await pilot.press("2")
            await wait_for(lambda: sent[-1] == [29, 56, 60], what="Ctrl+Alt+F2")
            sent.clear()
            await pilot.press("t")
            await wait_for(lambda: isinstance(app.screen, TypeTextDialog), what="type dialog")
            dlg = app.screen
            dlg.query_one("#text", Input).value = "café"
            await pilot.press("enter")
            await pilot.pause()
            assert "Cannot type 'é'" in str(dlg.query_one("#text-error").content)
            assert isinstance(app.screen, TypeTextDialog)
            dlg.query_one("#text", Input).value = "ls -l /Root"
            await pilot.press("enter")
            await wait_for(lambda: any("Typed 12 keys" in n.message for n in notes_of(app).all), what="typed")
            assert sent == G.keycodes_for_text("ls -l /Root\n")


def test_read_displays_on_a_read_only_connection(small_uri):
    import libvirt
    libvirt.registerErrorHandler(lambda _ctx, _err: None, None)
    conn = libvirt.openReadOnly(small_uri)
    try:
        (d,) = G.read_displays(conn.lookupByUUIDString(ALPHA))
    finally:
        conn.close()
    assert d.type == "vnc" and d.password_set is None  # the SECURE flag is refused: unknown
    assert "password: unknown (read-only connection)" in d.describe()


async def test_details_show_displays_with_connection_lines(small_uri):
    from vmtui.ui.screens import DetailsScreen
    app = make_app(small_uri)
    async with run_noted(app, size=(120, 40)) as pilot:
        await ready(app, pilot)
        select(app, ALPHA)
        await pilot.press("enter")
        await wait_for(lambda: isinstance(app.screen, DetailsScreen)
                       and "Loading" not in str(app.screen.query_one("#details").content), what="details")
        await pilot.pause()
        from io import StringIO

        from rich.console import Console
        out = StringIO()
        Console(file=out, width=200, color_system=None).print(app.screen.query_one("#details").content)
        text = out.getvalue()
        assert "VNC" in text and "listen 127.0.0.1 (this host only)" in text and "no password" in text
        assert f"virt-viewer --connect {small_uri} alpha" in text


async def test_save_picture(small_uri, tmp_path):
    from vmtui.ui.graphics_screen import SavePictureDialog
    app = make_app(small_uri)
    async with run_noted(app, size=(80, 24)) as pilot:
        await ready(app, pilot)
        scr = GraphicsScreen(app.service, ALPHA, "alpha", source=_stripes)
        await app.push_screen(scr)
        await wait_for(lambda: scr.frames >= 1, what="picture")
        await pilot.press("s")
        await wait_for(lambda: isinstance(app.screen, SavePictureDialog), what="save dialog")
        dlg = app.screen
        assert dlg.query_one("#path", Input).value.endswith(".png")
        dlg.query_one("#path", Input).value = str(tmp_path / "missing" / "x.png")
        await pilot.press("enter")
        await pilot.pause()
        assert "No directory" in str(dlg.query_one("#path-error").content)
        (tmp_path / "taken.png").write_bytes(b"")
        dlg.query_one("#path", Input).value = str(tmp_path / "taken.png")
        await pilot.press("enter")
        await pilot.pause()
        assert "exists" in str(dlg.query_one("#path-error").content)
        dlg.query_one("#path", Input).value = str(tmp_path / "shot.png")
        await pilot.press("enter")
        await wait_for(lambda: (tmp_path / "shot.png").exists(), what="file")
        assert G.decode_png((tmp_path / "shot.png").read_bytes()) == _stripes()
        assert isinstance(app.screen, GraphicsScreen)


async def test_typed_errors_choose_what_the_screen_says(small_uri):
    """No screenshots on this driver: paused, said once in the status line;
    a VM that is not running: a plain note, the picture comes back later.
    Neither is an error notification."""
    from vmtui.core.errors import InvalidState, Unsupported

    def unsupported():
        raise Unsupported("take a screenshot of", "domain 'alpha'",
                          "this function is not supported by the connection driver")

    def not_running():
        raise InvalidState("take a screenshot of", "domain 'alpha'",
                           "Requested operation is not valid: domain is not running")

    app = make_app(small_uri)
    async with run_noted(app, size=(80, 24)) as pilot:
        await ready(app, pilot)
        scr = GraphicsScreen(app.service, ALPHA, "alpha", source=unsupported)
        await app.push_screen(scr)
        await wait_for(lambda: scr.paused, what="paused")
        status = str(scr.query_one("#gfx-status").render())
        assert "no screenshots on this connection" in status
        scr.dismiss()
        await pilot.pause()
        scr = GraphicsScreen(app.service, ALPHA, "alpha", source=not_running)
        await app.push_screen(scr)
        await wait_for(lambda: scr.last_error is not None, what="failure noticed")
        await pilot.pause()
        assert "VM not running" in str(scr.query_one("#gfx-status").render())
        assert not scr.paused
        assert not [n for n in notes_of(app).all if n.severity == "error"]
