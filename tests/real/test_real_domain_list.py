"""The domain list on the real libvirtd + QEMU that .ci/run starts.

A tiny guest (Debian's cloud kernel + a busybox initramfs, TCG) is defined,
then driven through the app with Pilot keys and from outside with virsh.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import libvirt
import pytest

from tests.conftest import wait_for
from tests.guest import READY_BANNER
from tests.notes import notes_of, run_noted
from vmtui.core import storage
from vmtui.core.config import Config
from vmtui.core.connection.service import LibvirtService
from vmtui.ui.app import VmtuiApp
from vmtui.ui.dialogs import ConfirmDialog, DeleteDialog, DiskCheckbox

pytestmark = pytest.mark.real

URI = "qemu:///system"
HERE = Path(__file__).resolve().parent
START_LIBVIRTD = HERE.parent.parent / "scripts" / "start-libvirtd.sh"


def virsh(*args: str) -> str:
    out = subprocess.run(["virsh", "-c", URI, *args], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout


def make_app(stats_interval: float = 3600) -> VmtuiApp:
    return VmtuiApp(LibvirtService(URI, stats_interval=stats_interval), Config())


def state_of(app: VmtuiApp, uuid: str) -> str | None:
    d = app.table.domains.get(uuid)
    return d.state if d else None


async def loaded(app: VmtuiApp, pilot, uuid: str) -> None:
    await wait_for(lambda: app.ready and uuid in app.table.rows, timeout=30, what="guest in the list")
    app.table.select(uuid)
    await pilot.pause()


async def wait_banner(serial_console, dom) -> None:
    con = serial_console(dom)
    await asyncio.to_thread(con.wait_ready, 180)
    con.close()


async def test_start_from_app_and_outside_changes_arrive_as_events(tiny_guest, serial_console):
    dom = tiny_guest(start=False)
    uuid, name = dom.UUIDString(), dom.name()
    app = make_app(stats_interval=1.0)
    async with run_noted(app, size=(120, 40)) as pilot:
        await loaded(app, pilot, uuid)
        assert str(app.table.get_cell(uuid, "state")) == "shut off"
        await pilot.press("s")
        await wait_for(lambda: state_of(app, uuid) == "running", timeout=60, what="started from the app")
        assert str(app.table.get_cell(uuid, "state")) == "running"
        assert app.table.domains[uuid].id is not None
        # the bulk stats tick fills CPU% for the running guest
        await wait_for(lambda: app.table.domains[uuid].stats.cpu_percent is not None, timeout=15,
                       what="CPU% from getAllDomainStats")
        # someone else stops and starts it: the row follows, no key pressed
        await asyncio.to_thread(virsh, "destroy", name)
        await wait_for(lambda: state_of(app, uuid) == "shut off", timeout=30, what="destroy seen via event")
        assert app.table.domains[uuid].reason == "destroyed"
        await asyncio.to_thread(virsh, "start", name)
        await wait_for(lambda: state_of(app, uuid) == "running", timeout=30, what="start seen via event")
        await asyncio.to_thread(virsh, "suspend", name)
        await wait_for(lambda: state_of(app, uuid) == "paused", timeout=30, what="suspend seen via event")
        await pilot.press("p")  # resume from the app
        await wait_for(lambda: state_of(app, uuid) == "running", timeout=30, what="resumed from the app")


async def test_shutdown_and_force_off_from_app(tiny_guest, serial_console):
    dom = tiny_guest(start=True)
    uuid = dom.UUIDString()
    await wait_banner(serial_console, dom)  # acpid runs in the guest from here on
    app = make_app()
    async with run_noted(app, size=(120, 40)) as pilot:
        await loaded(app, pilot, uuid)
        await pilot.press("h")  # ACPI shutdown: the guest powers itself off
        await wait_for(lambda: state_of(app, uuid) == "shut off", timeout=120, what="guest shut down")
        assert app.table.domains[uuid].reason == "shutdown"
        await pilot.press("s")
        await wait_for(lambda: state_of(app, uuid) == "running", timeout=60, what="started again")
        await pilot.press("F")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmDialog)
        await pilot.press("y")
        await wait_for(lambda: state_of(app, uuid) == "shut off", timeout=30, what="forced off")
        assert app.table.domains[uuid].reason == "destroyed"


@pytest.fixture
def test_pool(system_conn):
    """A directory pool of our own, removed with its volumes at teardown."""
    name = f"vmtui-test-pool-{os.getpid()}"
    path = Path("/var/lib/libvirt/images") / name
    pool = system_conn.storagePoolDefineXML(storage.dir_pool_xml(name, str(path)))
    pool.build(0)
    pool.create(0)
    yield pool
    try:
        for vol in pool.listAllVolumes():
            vol.delete(0)
        pool.destroy()
        pool.delete(0)
        pool.undefine()
    except libvirt.libvirtError:
        pass


def make_volume(pool, name: str, fmt: str = "qcow2", mib: int = 16) -> libvirt.virStorageVol:
    root = ET.Element("volume")
    ET.SubElement(root, "name").text = name
    ET.SubElement(root, "capacity", unit="MiB").text = str(mib)
    ET.SubElement(ET.SubElement(root, "target"), "format", type=fmt)
    return pool.createXML(ET.tostring(root, encoding="unicode"), 0)


def disk_element(path: str, target: str, fmt: str, shareable: bool = False) -> ET.Element:
    disk = ET.Element("disk", type="file", device="disk")
    ET.SubElement(disk, "driver", name="qemu", type=fmt)
    ET.SubElement(disk, "source", file=path)
    ET.SubElement(disk, "target", dev=target, bus="virtio")
    if shareable:
        ET.SubElement(disk, "shareable")
    return disk


async def test_delete_with_storage_keeps_a_disk_another_vm_uses(tiny_guest, test_pool, system_conn):
    own = make_volume(test_pool, "own.qcow2")
    shared = make_volume(test_pool, "shared.raw", fmt="raw")
    victim = tiny_guest(start=True, extra_devices_xml=[
        disk_element(own.path(), "vda", "qcow2"), disk_element(shared.path(), "vdb", "raw", shareable=True)])
    other = tiny_guest(start=False, extra_devices_xml=[disk_element(shared.path(), "vdb", "raw", shareable=True)])
    uuid = victim.UUIDString()
    own_path = Path(own.path())
    assert own_path.exists()
    app = make_app()
    async with run_noted(app, size=(100, 30)) as pilot:
        await loaded(app, pilot, uuid)
        await pilot.press("D")
        await wait_for(lambda: isinstance(app.screen, DeleteDialog), timeout=30, what="delete dialog")
        await pilot.pause()
        boxes = {b.usage.disk.target: b for b in app.screen.query(DiskCheckbox)}
        assert not boxes["vda"].disabled
        assert boxes["vdb"].disabled and f"used by {other.name()}" in boxes["vdb"].note
        assert app.focused is boxes["vda"]
        await pilot.press("space")
        await pilot.pause()
        app.screen.query_one("#delete").press()
        await wait_for(lambda: uuid not in app.table.rows, timeout=30, what="row gone")
    # what libvirt holds now: the VM and its own volume are gone, the shared one stays
    with pytest.raises(libvirt.libvirtError):
        system_conn.lookupByUUIDString(uuid)
    test_pool.refresh(0)
    names = {v.name() for v in test_pool.listAllVolumes()}
    assert names == {"shared.raw"}
    assert not own_path.exists()
    assert system_conn.lookupByName(other.name()).isPersistent()


async def test_kvm_start_failure_is_explained(system_conn, tiny_guest_files):
    """KVM guests fail on these machines: the message says so and what to do."""
    from tests.guest import destroy_and_undefine, domain_xml
    name = f"vmtui-test-{os.getpid()}-kvm"
    root = ET.fromstring(domain_xml(name, tiny_guest_files.kernel, tiny_guest_files.initrd))
    root.set("type", "kvm")
    try:
        dom = system_conn.defineXML(ET.tostring(root, encoding="unicode"))
    except libvirt.libvirtError as err:
        pytest.skip(f"this host does not even define KVM domains: {err}")
    try:
        app = make_app()
        async with run_noted(app, size=(100, 30)) as pilot:
            await loaded(app, pilot, dom.UUIDString())
            await pilot.press("s")
            def note():
                return next((n.message for n in notes_of(app).all if "Cannot start" in n.message), None)
            try:
                await wait_for(note, timeout=60, what="start failure")
            except AssertionError:
                if state_of(app, dom.UUIDString()) == "running":
                    pytest.skip("KVM works on this machine")
                raise
            msg = note()
            assert f"Cannot start domain '{name}'" in msg
            assert "QEMU (TCG)" in msg, msg
    finally:
        destroy_and_undefine(system_conn, name)


async def test_console_inside_the_app(tiny_guest):
    """c opens the serial console; typed keys reach the guest; Ctrl+] leaves; reopening shows the past."""
    import random

    from vmtui.ui.console_screen import ConsoleScreen

    dom = tiny_guest(start=True)
    uuid = dom.UUIDString()
    app = make_app()
    async with run_noted(app, size=(100, 30)) as pilot:
        await loaded(app, pilot, uuid)
        await pilot.press("c")
        await wait_for(lambda: isinstance(app.screen, ConsoleScreen) and app.screen.current is not None,
                       what="console screen")
        term = app.screen.current.terminal
        await wait_for(lambda: "vmtui-guest#" in term.text(), timeout=180, what="guest prompt on the console")
        assert READY_BANNER in "".join(app.consoles.scrollback(uuid).snapshot().decode(errors="replace"))
        word = f"hello-{random.randint(1000, 9999)}"
        for ch in f"echo {word}":
            await pilot.press(ch if ch != " " else "space")
        await pilot.press("enter")
        await wait_for(lambda: term.text().count(word) >= 2, timeout=30, what="echoed output")
        await pilot.press("ctrl+right_square_bracket")
        await wait_for(lambda: app.screen is app.list_screen, what="left the console")
        await pilot.press("c")
        await wait_for(lambda: isinstance(app.screen, ConsoleScreen) and app.screen.current is not None,
                       what="console again")
        await wait_for(lambda: word in app.screen.current.terminal.text(), timeout=10, what="scroll-back shown again")
