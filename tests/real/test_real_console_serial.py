"""The console screen against the real libvirtd + QEMU, driven through the app (Pilot):
adding a serial device to a guest that has none, force-taking a console in use,
a VM shutting down while watched, two consoles open and switched."""

from __future__ import annotations

import asyncio
import re
import time
import xml.etree.ElementTree as ET

import libvirt
import pytest

from tests.guest import PROMPT, READY_BANNER
from tests.notes import notes_of, run_noted
from vmtui.core.config import Config
from vmtui.core.connection.service import LibvirtService
from vmtui.core.consoles import serial as C
from vmtui.ui.app import VmtuiApp
from vmtui.ui.console_screen import CONNECTED, ConsoleScreen

pytestmark = pytest.mark.real

URI = "qemu:///system"
BOOT_TIMEOUT = 120.0
_KEYS = {" ": "space", "-": "minus", "$": "dollar_sign", ";": "semicolon"}


def make_app() -> VmtuiApp:
    return VmtuiApp(LibvirtService(URI, stats_interval=3600, reconnect=False), Config())


async def wait(pilot, pred, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await pilot.pause(0.1)


def text_of(pane) -> str:
    pane.terminal.flush()
    return pane.terminal.text()


async def wait_text(pilot, pane, pattern: str, timeout: float = BOOT_TIMEOUT) -> re.Match:
    rx = re.compile(pattern, re.M)
    deadline = time.monotonic() + timeout
    while True:
        m = rx.search(text_of(pane))
        if m:
            return m
        assert time.monotonic() < deadline, f"no {pattern!r} in the console of {pane.vm_name}:\n{text_of(pane)[-2000:]}"
        await pilot.pause(0.1)


async def type_line(pilot, line: str) -> None:
    await pilot.press(*[_KEYS.get(c, c) for c in line], "enter")


async def open_console(app, pilot, dom, state: str = CONNECTED):
    uuid = dom.UUIDString()
    await wait(pilot, lambda: uuid in app.table.domains, 30, f"{dom.name()} listed")
    app.table.select(uuid)
    await pilot.pause()
    await pilot.press("c")
    def shown():
        scr = app.screen
        return isinstance(scr, ConsoleScreen) and scr.current is not None and scr.current.uuid == uuid \
            and scr.current.state == state

    try:
        await wait(pilot, shown, 60, f"console of {dom.name()}: {state}")
    except AssertionError:
        scr = app.screen
        cur = getattr(scr, "current", None)
        raise AssertionError(f"screen {scr!r}, console {cur and cur.vm_name} {cur and cur.state}: "
                             f"{cur and panel_text(cur)}; notifications "
                             f"{[n.message for n in notes_of(app).all]}") from None
    return app.screen.current


def panel_text(pane) -> str:
    return str(pane.panel.render()) if pane.panel.display else ""


async def test_add_serial_to_guest_without_one_then_next_boot_has_console(tiny_guest):
    dom = tiny_guest(start=False)
    root = ET.fromstring(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
    devices = root.find("devices")
    for tag in ("serial", "console"):
        for el in devices.findall(tag):
            devices.remove(el)
    desc = ET.Element("description")
    desc.text = "no serial here"
    root.insert(1, desc)
    conn = dom.connect()
    dom = conn.defineXML(ET.tostring(root, encoding="unicode"))
    await asyncio.get_running_loop().run_in_executor(None, dom.create)

    app = make_app()
    async with run_noted(app, size=(100, 30)) as pilot:
        await wait(pilot, lambda: app.ready, 30, "list")
        pane = await open_console(app, pilot, dom, state=C.NO_SERIAL)
        assert "No serial device" in panel_text(pane)
        await pilot.press("a")
        await wait(pilot, lambda: pane.serial_added, 30, "serial added")
        await pilot.pause()
        assert "next boot" in panel_text(pane)
        inactive = ET.fromstring(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
        assert inactive.find("devices/serial").get("type") == "pty"
        assert inactive.find("devices/console/target").get("type") == "serial"
        assert inactive.findtext("description") == "no serial here"
        assert inactive.find("os/kernel") is not None  # the rest is still there
        live = ET.fromstring(dom.XMLDesc(0))
        assert live.find("devices/serial") is None  # the running VM is unchanged

        # next boot: the console connects by itself when the VM starts
        await asyncio.get_running_loop().run_in_executor(None, dom.destroy)
        await asyncio.get_running_loop().run_in_executor(None, dom.create)
        await wait(pilot, lambda: pane.state == CONNECTED, 60, "console after the next boot")
        await wait_text(pilot, pane, re.escape(READY_BANNER))


async def test_console_in_use_force_take(tiny_guest, serial_console):
    dom = tiny_guest()
    other = serial_console(dom)  # "virsh console" in another window
    other.read_until(PROMPT, timeout=BOOT_TIMEOUT)
    app = make_app()
    async with run_noted(app, size=(100, 30)) as pilot:
        await wait(pilot, lambda: app.ready, 30, "list")
        pane = await open_console(app, pilot, dom, state=C.IN_USE)
        assert "Console in use by another client" in panel_text(pane)
        assert other.eof is False
        await pilot.press("f")
        await wait(pilot, lambda: pane.state == CONNECTED, 30, "forced")
        await wait(pilot, lambda: other.eof, 15, "the other client kicked off")
        await type_line(pilot, "echo forced-$((6*7))")
        await wait_text(pilot, pane, r"^forced-42\s*$", 30)


async def test_two_consoles_switch_and_shutdown_keeps_scrollback(tiny_guest):
    one, two = tiny_guest(), tiny_guest(start=False)
    app = make_app()
    async with run_noted(app, size=(100, 30)) as pilot:
        await wait(pilot, lambda: app.ready, 30, "list")
        p1 = await open_console(app, pilot, one)
        await wait_text(pilot, p1, re.escape(READY_BANNER))  # output before opening is not kept anywhere
        await wait_text(pilot, p1, "^" + re.escape(PROMPT.rstrip()))
        await type_line(pilot, "echo first-$((1+1))")
        await wait_text(pilot, p1, r"^first-2\s*$", 30)
        await pilot.press("ctrl+right_square_bracket")
        p2 = await open_console(app, pilot, two, state=C.VM_NOT_RUNNING)
        cs = app.screen
        assert "VM not running" in panel_text(p2)
        await pilot.press("s")  # the offer: start it, the console follows
        await wait(pilot, lambda: p2.state == CONNECTED, 60, "started and connected")
        await wait_text(pilot, p2, re.escape(READY_BANNER))
        await wait_text(pilot, p2, "^" + re.escape(PROMPT.rstrip()))
        await type_line(pilot, "echo second-$((2+2))")
        await wait_text(pilot, p2, r"^second-4\s*$", 30)
        assert "first-2" not in text_of(p2)

        await pilot.press("ctrl+pagedown")
        await wait(pilot, lambda: cs.current is p1 and p1.terminal.has_focus, 5, "switched to the first")
        assert "second-4" not in text_of(p1) and re.search(r"^first-2\s*$", text_of(p1), re.M)
        await type_line(pilot, "echo again-$((3+3))")
        await wait_text(pilot, p1, r"^again-6\s*$", 30)
        assert "again-6" not in text_of(p2)

        # the first VM powers off while watched: said so, scroll-back kept
        await type_line(pilot, "poweroff -f")
        await wait(pilot, lambda: p1.state == C.VM_SHUT_DOWN, 60, "VM shut down")
        await pilot.pause()
        assert "VM shut down" in panel_text(p1)
        text = text_of(p1)
        assert READY_BANNER in text and re.search(r"^first-2\s*$", text, re.M)
        assert p2.state == CONNECTED  # the other console carries on
        await pilot.press("ctrl+pagedown")
        await wait(pilot, lambda: cs.current is p2, 5, "switched to the second")
        await type_line(pilot, "echo still-$((4+4))")
        await wait_text(pilot, p2, r"^still-8\s*$", 30)


def test_a_console_quiet_past_the_reopen_limit_keeps_working(tiny_guest, serial_console, monkeypatch):
    """The harness opens a quiet console again (tests/guest.py, _reopen):
    the stream it gives up must not read as the console closing, and what
    the guest says afterwards arrives on the new one."""
    from tests import guest

    monkeypatch.setattr(guest, "NUDGE_AFTER", 0.5)
    monkeypatch.setattr(guest, "REOPEN_AFTER", 1.0)
    dom = tiny_guest()
    con = serial_console(dom)
    con.wait_ready()
    with pytest.raises(TimeoutError):
        con.read_until("never-printed-by-the-guest", timeout=4)
    assert con.reopened == 1 and not con.eof and con.error is None
    monkeypatch.undo()  # the command below runs with the usual limits (no XON every half second)
    assert con.run("echo again-$((6*7))").strip().endswith("again-42")
