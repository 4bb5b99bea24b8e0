"""Serial consoles against the real libvirtd + QEMU: core API and the widget."""

from __future__ import annotations

import asyncio
import os
import re
import threading
import time

import pytest
from textual.app import App, ComposeResult

from tests.guest import PROMPT, READY_BANNER
from vmtui.core.consoles import serial as C
from vmtui.core.connection.service import LibvirtService
from vmtui.ui.terminal import TerminalView

pytestmark = pytest.mark.real

URI = "qemu:///system"
BOOT_TIMEOUT = 120.0


class Collector:
    """Thread-safe sink for on_data/on_closed (they run on the libvirt-events thread)."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.closed: list[str] = []
        self._cond = threading.Condition()

    def on_data(self, b: bytes) -> None:
        with self._cond:
            self.data += b
            self._cond.notify_all()

    def on_closed(self, reason: str) -> None:
        with self._cond:
            self.closed.append(reason)
            self._cond.notify_all()

    async def wait_for(self, pred, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not pred():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}; got {bytes(self.data[-2000:])!r} "
                                     f"closed={self.closed}")
            await asyncio.sleep(0.05)

    async def wait_text(self, text: bytes, timeout: float = BOOT_TIMEOUT, start: int = 0) -> int:
        await self.wait_for(lambda: self.data.find(text, start) >= 0, timeout, repr(text))
        return self.data.find(text, start) + len(text)


@pytest.fixture
async def service():
    svc = LibvirtService(URI, reconnect=False)
    await svc.connect()
    yield svc
    await svc.close()


async def test_console_round_trip_and_shutdown(tiny_guest, service):
    dom = tiny_guest()
    uuid = dom.UUIDString()
    sink = Collector()
    session = await C.ConsoleSession.open(service, uuid, on_data=sink.on_data, on_closed=sink.on_closed)
    assert session.is_open and session.name == dom.name()
    pos = await sink.wait_text(READY_BANNER.encode())
    pos = await sink.wait_text(PROMPT.encode(), start=pos)

    token = f"hello-{os.urandom(3).hex()}"
    session.send(f"echo {token}\r".encode())
    end = await sink.wait_text(f"\n{token}".encode(), timeout=30, start=pos)
    await sink.wait_text(PROMPT.encode(), timeout=30, start=end)
    assert session.bytes_out == len(f"echo {token}\r")
    # the scroll-back holds the same bytes
    assert session.scrollback.snapshot() == bytes(sink.data)

    await asyncio.get_running_loop().run_in_executor(None, dom.destroy)
    await sink.wait_for(lambda: sink.closed, 30, "close")
    assert sink.closed == [C.VM_SHUT_DOWN]
    assert session.state == "closed" and session.close_reason == C.VM_SHUT_DOWN
    session.send(b"ignored\r")  # no error after close
    session.close()
    assert sink.closed == [C.VM_SHUT_DOWN]


async def test_console_in_use_and_force(tiny_guest, service):
    dom = tiny_guest()
    uuid = dom.UUIDString()
    first = Collector()
    s1 = await C.ConsoleSession.open(service, uuid, on_data=first.on_data, on_closed=first.on_closed)
    await first.wait_text(PROMPT.encode())

    with pytest.raises(C.ConsoleInUse) as info:
        await C.ConsoleSession.open(service, uuid)
    assert info.value.state == C.IN_USE
    assert "console in use by another client" in str(info.value)
    assert s1.is_open

    second = Collector()
    s2 = await C.ConsoleSession.open(service, uuid, force=True, on_data=second.on_data,
                                     on_closed=second.on_closed)
    try:
        await first.wait_for(lambda: first.closed, 15, "first session kicked off")
        assert first.closed == [C.TAKEN_OVER]
        token = f"forced-{os.urandom(3).hex()}"
        s2.send(f"echo {token}\r".encode())
        await second.wait_text(f"\n{token}".encode(), timeout=30)
    finally:
        s2.close()
    assert second.closed == [C.CLOSED_BY_USER]


async def test_console_not_running_and_manager_keeps_scrollback(tiny_guest, service):
    off = tiny_guest(start=False)
    await service.refresh_all()
    with pytest.raises(C.ConsoleNotRunning) as info:
        await C.ConsoleSession.open(service, off.UUIDString())
    assert info.value.state == C.VM_NOT_RUNNING

    dom = tiny_guest()
    uuid = dom.UUIDString()
    mgr = C.ConsoleManager(service)
    s = await mgr.open(uuid)
    assert await mgr.open(uuid) is s  # reused while open
    sink = Collector()
    history = s.attach(sink.on_data, sink.on_closed)
    sink.data[:0] = history
    await sink.wait_text(PROMPT.encode())
    s.detach()
    s.send(b"echo meanwhile-$((6*7))\r")
    deadline = time.monotonic() + 30
    while b"meanwhile-42" not in s.scrollback.snapshot():
        assert time.monotonic() < deadline, s.scrollback.snapshot()[-500:]
        await asyncio.sleep(0.05)
    # reopening after detach shows what arrived meanwhile
    s_again = await mgr.open(uuid)
    assert b"meanwhile-42" in s_again.attach(None)
    mgr.close_all()
    assert s.state == "closed"


async def test_console_no_serial_device(tiny_guest, service):
    import xml.etree.ElementTree as ET

    import libvirt

    dom = tiny_guest(start=False)  # the fixture undefines it at teardown
    root = ET.fromstring(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
    devices = root.find("devices")
    for tag in ("serial", "console"):
        for el in devices.findall(tag):
            devices.remove(el)
    conn = dom.connect()
    dom = conn.defineXML(ET.tostring(root, encoding="unicode"))
    await asyncio.get_running_loop().run_in_executor(None, dom.create)
    await service.refresh_all()
    with pytest.raises(C.ConsoleNoDevice) as info:
        await C.ConsoleSession.open(service, dom.UUIDString())
    assert info.value.state == C.NO_SERIAL
    assert "no serial device" in str(info.value)


# --- the widget fed by a real console -------------------------------------------

_KEY_NAMES = {" ": "space", "-": "minus", "$": "dollar_sign"}


class ConsoleApp(App):
    def __init__(self, session: C.ConsoleSession) -> None:
        super().__init__()
        self.session = session
        self.closed: list[str] = []
        self.detached = False

    def compose(self) -> ComposeResult:
        yield TerminalView(on_input=self.session.send)

    def on_mount(self) -> None:
        term = self.query_one(TerminalView)
        term.focus()
        history = self.session.attach(term.feed_threadsafe, self.closed.append)
        term.feed(history)

    def on_terminal_view_detach(self, _msg: TerminalView.Detach) -> None:
        self.detached = True
        self.session.detach()


async def test_terminal_view_with_real_console(tiny_guest, service):
    dom = tiny_guest()
    session = await C.ConsoleSession.open(service, dom.UUIDString())
    app = ConsoleApp(session)
    try:
        async with app.run_test(size=(100, 30)) as pilot:
            term = app.query_one(TerminalView)

            async def wait_screen(pattern: str, timeout: float) -> re.Match:
                deadline = time.monotonic() + timeout
                rx = re.compile(pattern, re.M)
                while True:
                    m = rx.search(term.text())
                    if m:
                        return m
                    assert time.monotonic() < deadline, f"no {pattern!r} on screen:\n{term.text()}"
                    await pilot.pause(0.1)

            await wait_screen(re.escape(READY_BANNER), BOOT_TIMEOUT)
            await wait_screen(r"^" + re.escape(PROMPT.rstrip()) + r"\s*$", BOOT_TIMEOUT)
            await pilot.press(*[_KEY_NAMES.get(c, c) for c in "echo hi-$RANDOM"], "enter")
            m = await wait_screen(r"^hi-(\d+)\s*$", 30)
            assert "echo hi-$RANDOM" in term.text()
            assert int(m.group(1)) >= 0
            # the widget's screen (pyte display lines) shows it, not just the scroll-back
            assert any(re.match(r"hi-\d+\s*$", line) for line in term.display_lines)
            await pilot.press("ctrl+right_square_bracket")
            await pilot.pause()
            assert app.detached
            assert session.is_open  # leaving the view keeps the console
    finally:
        session.close()
