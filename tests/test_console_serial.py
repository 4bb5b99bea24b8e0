"""Serial consoles: add-serial XML edit, scroll-back saving, tabs, states and
offers in the console screen (Pilot on the test driver, with a fake console
manager where the test driver has no console stream)."""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET

import libvirt
import pytest

from vmtui.core.consoles import serial as C
from vmtui.core.config import Config
from vmtui.core.errors import VmtuiError
from vmtui.core.connection.service import ConnState, DomainEvent, LibvirtService
from vmtui.ui.app import VmtuiApp
from vmtui.ui.messages import ConnectionStateChanged, DomainEventsArrived
from vmtui.ui.console_screen import (
    CONNECTED,
    ConsoleListScreen,
    ConsoleScreen,
    SaveScrollbackDialog,
)
from vmtui.ui.screens import DetailsScreen

from .conftest import ALPHA, BRAVO, DELTA, wait_for
from .console_fakes import FakeManager

# --------------------------------------------------------------------------
# adding a serial console to a definition

DOMAIN_NO_SERIAL = """<domain type='kvm' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>
  <name>noserial</name>
  <uuid>aaaaaaaa-1111-4111-8111-000000000001</uuid>
  <metadata>
    <app:data xmlns:app="http://example.org/app/1">keep me</app:data>
  </metadata>
  <memory unit='KiB'>1048576</memory>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices>
    <!-- the admin's comment -->
    <disk type='file' device='disk'>
      <source file='/var/lib/libvirt/images/a.qcow2'/>
      <target dev='vda' bus='virtio'/>
      <iotune><total_bytes_sec>1000</total_bytes_sec></iotune>
    </disk>
    <interface type='network'><source network='default'/></interface>
    <graphics type='vnc' port='-1' passwd='secret'/>
    <watchdog model='i6300esb' action='reset'/>
  </devices>
  <qemu:commandline><qemu:arg value='-no-hpet'/></qemu:commandline>
</domain>
"""


def test_add_serial_console_xml_keeps_everything_else():
    assert not C.has_serial_console(DOMAIN_NO_SERIAL)
    out = C.add_serial_console_xml(DOMAIN_NO_SERIAL)
    assert C.has_serial_console(out)
    root = ET.fromstring(out)
    devices = root.find("devices")
    tags = [el.tag for el in devices if isinstance(el.tag, str)]
    # after the NIC (libvirt's order), before graphics and the watchdog
    assert tags == ["disk", "interface", "serial", "console", "graphics", "watchdog"]
    serial, console = devices.find("serial"), devices.find("console")
    assert serial.get("type") == "pty" and serial.find("target").attrib == {"port": "0"}
    assert console.get("type") == "pty" and console.find("target").attrib == {"type": "serial", "port": "0"}
    # what vmtui does not model is kept: metadata, iotune, passwd, qemu:commandline, the comment
    assert "keep me" in out and 'xmlns:app="http://example.org/app/1"' in out
    assert "<total_bytes_sec>1000</total_bytes_sec>" in out
    assert "passwd=\"secret\"" in out
    assert "<qemu:commandline>" in out and "-no-hpet" in out
    assert "<!-- the admin's comment -->" in out
    # and indented like its neighbours
    assert "\n    <serial type=\"pty\">\n      <target port=\"0\" />\n    </serial>\n" in out
    # removing what we added gives the original elements back
    devices.remove(serial)
    devices.remove(console)
    orig = ET.fromstring(DOMAIN_NO_SERIAL)
    assert [el.tag for el in orig.find("devices")] == [el.tag for el in devices]


def test_add_serial_console_xml_refuses_when_present():
    once = C.add_serial_console_xml(DOMAIN_NO_SERIAL)
    with pytest.raises(Exception, match="already has a serial"):
        C.add_serial_console_xml(once)


def test_add_serial_console_xml_without_devices():
    out = C.add_serial_console_xml("<domain type='kvm'><name>x</name></domain>")
    assert [el.tag for el in ET.fromstring(out).find("devices")] == ["serial", "console"]


# --------------------------------------------------------------------------
# scroll-back


def test_scrollback_since():
    sb = C.ScrollBack(limit=10)
    sb.append(b"abcdef")
    pos = sb.total
    sb.append(b"ghij")
    assert sb.since(pos) == b"ghij"
    assert sb.since(0) == b"abcdefghij"
    sb.append(b"KLMNO")  # drops the oldest 5 bytes
    assert sb.since(pos) == b"ghijKLMNO"[-(sb.total - pos):]
    assert sb.since(0) == b"fghijKLMNO"  # what is kept


def test_scrollback_text():
    raw = (b"\x1b[1;32mOK\x1b[0m  Started\r\n"
           b"progress  10%\rprogress 100%\r\n"
           b"\x1b]0;vmtui-guest\x07typo\x08\x08\x08\x08word\r\n"
           b"\x1b(B\x1b[?25hgr\xc3\xbc\xc3\x9fe\r\n")
    assert C.scrollback_text(raw) == "OK  Started\nprogress 100%\nword\ngrüße\n"


def test_write_scrollback(tmp_path):
    data = b"\x1b[31mred\x1b[0m line\r\n"
    path = tmp_path / "out.log"
    n = C.write_scrollback(str(path), data)
    assert path.read_text() == "red line\n\n" and n == len("red line\n\n")
    with pytest.raises(FileExistsError):
        C.write_scrollback(str(path), data)
    C.write_scrollback(str(path), data, raw=True, overwrite=True)
    assert path.read_bytes() == data
    with pytest.raises(VmtuiError, match="does not exist"):
        C.write_scrollback(str(tmp_path / "nope" / "x.log"), data)
    with pytest.raises(VmtuiError, match="is a directory"):
        C.write_scrollback(str(tmp_path), data)
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        if os.geteuid() != 0:  # root writes anywhere
            with pytest.raises(VmtuiError, match="Permission denied"):
                C.write_scrollback(str(ro / "x.log"), data)
    finally:
        ro.chmod(0o700)


def test_default_log_path():
    import datetime
    p = C.default_log_path("web 01/x", datetime.datetime(2026, 11, 27, 15, 4, 5), "/tmp")
    assert p == "/tmp/web_01_x-console-20261127-150405.log"


def make_app(uri: str, fake: bool = True) -> VmtuiApp:
    app = VmtuiApp(LibvirtService(uri, stats_interval=3600, reconnect=False), Config())
    if fake:
        app.consoles = FakeManager(app.service)
    return app


async def ready(app, pilot) -> None:
    await wait_for(lambda: app.ready and app.table.row_count > 0, what="list loaded")
    await pilot.pause()


def consoles(app) -> ConsoleScreen:
    assert isinstance(app.screen, ConsoleScreen), app.screen
    return app.screen


async def open_console(app, pilot, uuid, state=CONNECTED):
    app.table.select(uuid)
    await pilot.pause()
    await pilot.press("c")
    await wait_for(lambda: isinstance(app.screen, ConsoleScreen) and app.screen.current is not None
                   and app.screen.current.uuid == uuid and app.screen.current.state == state,
                   what=f"console of {uuid} {state}")
    await pilot.pause()
    return app.screen.current


def screen_text(pane) -> str:
    pane.terminal.flush()
    return pane.terminal.text()


def panel_text(pane) -> str:
    return str(pane.panel.render()) if pane.panel.display else ""


# --------------------------------------------------------------------------
# tabs


async def test_two_consoles_switch_with_ctrl_pagedown(small_uri):
    app = make_app(small_uri)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app, pilot)
        a = await open_console(app, pilot, ALPHA)
        app.consoles.sessions[ALPHA].emit(b"alpha says hi\r\n")
        await pilot.press("ctrl+right_square_bracket")  # back to the list; the console stays open
        await wait_for(lambda: not isinstance(app.screen, ConsoleScreen), what="left")
        d = await open_console(app, pilot, DELTA)
        app.consoles.sessions[DELTA].emit(b"delta here\r\n")
        app.consoles.sessions[ALPHA].emit(b"alpha while away\r\n")
        cs = consoles(app)
        assert [p.vm_name for p in cs.panes] == ["alpha", "delta"]
        tabs = str(cs.query_one("#console-tabs").render())
        assert "1 alpha" in tabs and "2 delta" in tabs
        assert cs.current is d and d.terminal.has_focus
        await pilot.press("e", "enter")
        assert app.consoles.sessions[DELTA].sent == [b"e", b"\r"]

        await pilot.press("ctrl+pagedown")
        await wait_for(lambda: cs.current is a and a.terminal.has_focus, what="switched to alpha")
        assert "alpha says hi" in screen_text(a) and "alpha while away" in screen_text(a)
        assert "delta" not in screen_text(a)
        assert "delta here" in screen_text(d)
        await pilot.press("l", "s")
        assert app.consoles.sessions[ALPHA].sent == [b"l", b"s"]
        assert app.consoles.sessions[DELTA].sent == [b"e", b"\r"]  # nothing leaked to the other guest
        await pilot.press("ctrl+pageup")
        await wait_for(lambda: cs.current is d, what="back to delta")
        await pilot.press("ctrl+pageup")
        await wait_for(lambda: cs.current is a, what="wraps around")

        # C on the list: both consoles, Enter switches, x closes
        await pilot.press("ctrl+right_square_bracket")
        await wait_for(lambda: not isinstance(app.screen, ConsoleScreen), what="left")
        await pilot.press("C")
        await wait_for(lambda: isinstance(app.screen, ConsoleListScreen), what="console list")
        await pilot.pause()
        table = app.screen.query_one("DataTable")
        assert table.row_count == 2
        assert [str(table.get_row_at(i)[1]) for i in range(2)] == ["alpha", "delta"]
        await pilot.press("down", "enter")
        await wait_for(lambda: isinstance(app.screen, ConsoleScreen) and app.screen.current is d, what="delta")
        await pilot.press("ctrl+right_square_bracket")  # back where we came from: the console list
        await wait_for(lambda: isinstance(app.screen, ConsoleListScreen), what="back on the console list")
        await pilot.press("x")
        await wait_for(lambda: app.screen.query_one("DataTable").row_count == 1, what="closed one")
        assert DELTA not in app.consoles.sessions and ALPHA in app.consoles.sessions
        assert [p.vm_name for p in cs.panes] == ["alpha"]


async def test_capital_c_without_consoles_says_so(small_uri):
    app = make_app(small_uri)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app, pilot)
        await pilot.press("C")
        await wait_for(lambda: any("No consoles are open" in n.message for n in app._notifications),
                       what="notification")
        assert not isinstance(app.screen, ConsoleListScreen)


async def test_ctrl_p_and_ctrl_q_go_to_the_guest(small_uri):
    app = make_app(small_uri)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app, pilot)
        await open_console(app, pilot, ALPHA)
        await pilot.press("ctrl+p", "ctrl+q")
        await pilot.pause()
        assert app.consoles.sessions[ALPHA].sent == [b"\x10", b"\x11"]
        assert isinstance(app.screen, ConsoleScreen) and app.is_running


async def test_details_has_a_console_key(small_uri):
    app = make_app(small_uri)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app, pilot)
        app.table.select(DELTA)
        await pilot.press("enter")
        await wait_for(lambda: isinstance(app.screen, DetailsScreen), what="details")
        await pilot.press("c")
        await wait_for(lambda: isinstance(app.screen, ConsoleScreen) and app.screen.current.state == CONNECTED,
                       what="console from details")
        assert app.screen.current.uuid == DELTA
        await pilot.press("ctrl+right_square_bracket")
        await wait_for(lambda: isinstance(app.screen, DetailsScreen), what="back to the details")


# --------------------------------------------------------------------------
# states and offers


async def test_in_use_offers_force(small_uri):
    app = make_app(small_uri)
    app.consoles.fail[ALPHA] = [C.ConsoleInUse("domain 'alpha'", "Active console session exists")]
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app, pilot)
        pane = await open_console(app, pilot, ALPHA, state=C.IN_USE)
        assert "Console in use by another client" in panel_text(pane)
        assert "virsh console --force" in panel_text(pane)
        await pilot.press("l")  # not for a guest: nothing connected
        await pilot.press("f")
        await wait_for(lambda: pane.state == CONNECTED, what="forced")
        assert app.consoles.opens[-1] == (ALPHA, True)
        assert not pane.panel.display
        await pilot.press("f")  # now typed into the guest
        assert app.consoles.sessions[ALPHA].sent == [b"f"]
        # someone else forces it back
        app.consoles.sessions[ALPHA].finish(C.TAKEN_OVER)
        await wait_for(lambda: pane.state == C.TAKEN_OVER, what="taken over")
        assert "took over" in panel_text(pane)


async def test_shutdown_while_watching_keeps_scrollback(small_uri):
    app = make_app(small_uri)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app, pilot)
        pane = await open_console(app, pilot, ALPHA)
        s = app.consoles.sessions[ALPHA]
        s.emit(b"".join(b"boot line %d\r\n" % i for i in range(40)))
        s.emit(b"reboot: Power down\r\n")
        s.finish(C.VM_SHUT_DOWN)
        await wait_for(lambda: pane.state == C.VM_SHUT_DOWN, what="shut down state")
        text = screen_text(pane)
        assert "boot line 0" in text and "Power down" in text
        assert "VM shut down" in panel_text(pane) and "scroll-back is kept" in panel_text(pane)
        assert "VM shut down" in str(consoles(app).query_one("#console-status").render())
        # a 'started' event reconnects by itself, without repeating old output
        app.post_message(DomainEventsArrived([DomainEvent(ALPHA, "alpha", "started")]))
        await wait_for(lambda: pane.state == CONNECTED, what="reconnected after start")
        app.consoles.sessions[ALPHA].emit(b"second boot\r\n")
        await pilot.pause(0.1)
        text = screen_text(pane)
        assert text.count("boot line 0") == 1 and "second boot" in text


async def test_connection_lost_then_reconnects(small_uri):
    app = make_app(small_uri)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app, pilot)
        pane = await open_console(app, pilot, ALPHA)
        first = app.consoles.sessions[ALPHA]
        first.emit(b"before the loss\r\n")
        app.post_message(ConnectionStateChanged(ConnState.DISCONNECTED, "end of file"))
        await wait_for(lambda: pane.state == C.CONNECTION_LOST, what="connection lost")
        assert "Connection lost" in panel_text(pane) and "reconnects by itself" in panel_text(pane)
        app.post_message(ConnectionStateChanged(ConnState.CONNECTED))
        await wait_for(lambda: pane.state == CONNECTED, what="reconnected")
        second = app.consoles.sessions[ALPHA]
        assert second is not first and first.close_reason == C.CLOSED_BY_USER
        second.emit(b"after the loss\r\n")
        await pilot.pause(0.1)
        text = screen_text(pane)
        assert text.count("before the loss") == 1 and "after the loss" in text


async def test_not_running_offers_start_then_connects(small_uri):
    """Real ConsoleManager on the test driver: 'VM not running' comes before openConsole."""
    app = make_app(small_uri)
    fake = app.consoles
    app.consoles = C.ConsoleManager(app.service)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app, pilot)
        pane = await open_console(app, pilot, BRAVO, state=C.VM_NOT_RUNNING)
        assert "VM not running" in panel_text(pane)
        assert " s " in panel_text(pane) and "start it" in panel_text(pane)
        pane.manager = fake  # after the start, a console that works
        await pilot.press("s")
        await wait_for(lambda: pane.state == CONNECTED, what="started and connected")
        assert app.table.domains[BRAVO].is_running
        assert fake.opens == [(BRAVO, False)]  # the 'started' event did not open a second time


NO_SERIAL_TEST_DOMAIN = """<domain type='test'>
  <name>vmtui-noserial</name>
  <uuid>bbbbbbbb-2222-4222-8222-000000000001</uuid>
  <description>keep this description</description>
  <metadata><v:note xmlns:v="http://example.org/vmtui-test/1">unknown to vmtui</v:note></metadata>
  <memory unit='MiB'>64</memory>
  <os><type arch='x86_64'>hvm</type></os>
  <devices>
    <disk type='file' device='disk'><source file='/tmp/x.img'/><target dev='vda' bus='virtio'/></disk>
  </devices>
</domain>"""
NOSERIAL_UUID = "bbbbbbbb-2222-4222-8222-000000000001"


async def test_no_serial_offers_add_to_definition(small_uri):
    app = make_app(small_uri, fake=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(app, pilot)

        def define_and_start(conn):
            conn.defineXML(NO_SERIAL_TEST_DOMAIN).create()

        await app.service.call(define_and_start, action="define", obj="test domain")
        await app.service.refresh_all()
        await wait_for(lambda: NOSERIAL_UUID in app.table.domains, what="new domain listed")
        pane = await open_console(app, pilot, NOSERIAL_UUID, state=C.NO_SERIAL)
        assert "No serial device" in panel_text(pane)
        await pilot.press("a")
        await wait_for(lambda: pane.serial_added, what="serial added")
        await pilot.pause()
        assert "takes effect at the next boot" in panel_text(pane)
        assert any("takes effect at the next boot" in n.message for n in app._notifications)
        xml = await app.service.call(
            lambda c: c.lookupByUUIDString(NOSERIAL_UUID).XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE),
            action="read", obj="test domain")
        root = ET.fromstring(xml)
        assert root.find("devices/serial/target").get("port") == "0"
        assert root.find("devices/console").get("type") == "pty"
        assert root.findtext("description") == "keep this description"
        assert "unknown to vmtui" in xml
        assert root.find("devices/disk/source").get("file") == "/tmp/x.img"
        # asking again says it is already there instead of adding a second one
        await pilot.press("r")
        await wait_for(lambda: pane.state == C.NO_SERIAL, what="still no serial in the running VM")


async def test_save_scrollback_dialog(small_uri, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    app = make_app(small_uri)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app, pilot)
        pane = await open_console(app, pilot, ALPHA)
        s = app.consoles.sessions[ALPHA]
        s.emit(b"\x1b[1mLogin:\x1b[0m root\r\nuptime 12 days\r\n")
        s.finish(C.VM_SHUT_DOWN)
        await wait_for(lambda: pane.state == C.VM_SHUT_DOWN, what="closed")
        await pilot.press("w")
        await wait_for(lambda: isinstance(app.screen, SaveScrollbackDialog), what="save dialog")
        box = app.screen.query_one("#save-path")
        assert box.value.startswith(str(tmp_path) + "/alpha-console-") and box.value.endswith(".log")
        # an unwritable place: the error is on the dialog, which stays
        box.value = str(tmp_path / "missing-dir" / "x.log")
        await pilot.press("enter")
        await wait_for(lambda: "does not exist" in str(app.screen.query_one("#save-error").render()),
                       what="error shown")
        assert isinstance(app.screen, SaveScrollbackDialog)
        target = tmp_path / "alpha.log"
        target.write_text("old")
        box.value = str(target)
        await pilot.press("enter")
        await wait_for(lambda: "exists" in str(app.screen.query_one("#save-error").render()), what="exists")
        assert target.read_text() == "old"
        await pilot.press("enter")  # again: overwrite
        await wait_for(lambda: not isinstance(app.screen, SaveScrollbackDialog), what="saved")
        assert target.read_text() == "Login: root\nuptime 12 days\n\n"
        assert any(str(target) in n.message for n in app._notifications)


async def test_send_size_from_the_console_list(small_uri):
    app = make_app(small_uri)
    async with app.run_test(size=(90, 30)) as pilot:
        await ready(app, pilot)
        pane = await open_console(app, pilot, ALPHA)
        cols, rows = pane.terminal.screen_buffer.columns, pane.terminal.screen_buffer.lines
        assert (cols, rows) == (pane.terminal.size.width, pane.terminal.size.height)
        await pilot.press("ctrl+right_square_bracket")
        await pilot.press("C")
        await wait_for(lambda: isinstance(app.screen, ConsoleListScreen), what="console list")
        await pilot.press("t")
        await pilot.pause()
        assert app.consoles.sessions[ALPHA].sent == [f"stty rows {rows} cols {cols}\r".encode()]
