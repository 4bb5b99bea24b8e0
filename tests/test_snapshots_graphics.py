"""Snapshot of the graphical console screen (pytest-textual-snapshot).

The test driver's only screenshot is a canned picture that depends on the
libvirt package, so the screen gets an injected sample picture and fixed
displays; the connection lines are those for a remote ssh host.

Update on purpose with: pytest tests/test_snapshots_graphics.py --snapshot-update
"""

from __future__ import annotations

import time

from vmtui.core.consoles import graphics as G
from vmtui.ui.graphics_screen import GraphicsScreen

from .conftest import ALPHA, wait_for
from .test_snapshots import _app, _loaded

REMOTE = "qemu+ssh://admin@kvm1.example.org/system"
TAKEN = 1_790_000_000.0  # a fixed time for the status line


def _frame() -> G.Frame:
    return G.Frame(G.sample_image(), "image/png", 41_000, 0.12, taken=TAKEN)


def _screen(size_run_before=None):
    async def run_before(pilot):
        await _loaded(pilot)
        app = pilot.app
        app.service.display_uri = REMOTE  # lines as for a remote host
        displays = [G.Display(type="vnc", listen_type="address", address="127.0.0.1", port=5901,
                              autoport=True, password_set=True)]
        scr = GraphicsScreen(app.service, ALPHA, "alpha", source=_frame, displays=displays)
        await app.push_screen(scr)
        await wait_for(lambda: scr.frames >= 1 and scr.view.cells, what="picture")
        await pilot.pause()
        await pilot.pause()

    return run_before


def test_graphics_80x24(snap_compare, monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    try:
        assert snap_compare(_app(), terminal_size=(80, 24), run_before=_screen())
    finally:
        monkeypatch.undo()
        time.tzset()


def test_graphics_120x40(snap_compare, monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    try:
        assert snap_compare(_app(), terminal_size=(120, 40), run_before=_screen())
    finally:
        monkeypatch.undo()
        time.tzset()
