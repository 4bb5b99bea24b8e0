"""vmtui.core.storage.disks and vmtui.core.storage.snapshots on the real libvirtd + QEMU.

The tiny test guest (tests/guest.py) gets extra disks from a transient dir
pool of its own; the guest's busybox shell writes and reads a marker
straight on the block device (no file system needed), so what survives a
power-off is checked inside the guest and in the image file on the host.
"""

from __future__ import annotations

import io
import os
import xml.etree.ElementTree as ET

import libvirt
import pycdlib
import pytest

from tests import guest
from tests.real.test_real_storage import make_pool  # noqa: F401  (fixture)

from vmtui.core import storage
from vmtui.core.storage import disks, snapshots
from vmtui.core.xml import domxml
from vmtui.core.errors import VmtuiError

pytestmark = pytest.mark.real

MiB = 1024 ** 2


@pytest.fixture
def pool(make_pool):  # noqa: F811
    return make_pool()


def _disk_xml(path: str, target: str, fmt: str) -> str:
    return disks.element_xml(disks.disk_element(path, target, fmt=fmt))


def _write_marker(con: guest.SerialConsole, dev: str, text: str) -> None:
    # the guest names virtio disks in probe order: the only one is vda
    assert con.run(f"[ -b /dev/{dev} ] && echo block") == "block"
    con.run(f"printf '{text}' | dd of=/dev/{dev} bs=512 conv=sync 2>/dev/null; sync")


def _read_marker(con: guest.SerialConsole, dev: str, n: int) -> str:
    return con.run(f"dd if=/dev/{dev} bs={n} count=1 2>/dev/null | tr -d '\\000'; echo")


def _boot(dom, serial_console) -> guest.SerialConsole:
    if not dom.isActive():
        dom.create()
    con = serial_console(dom)
    con.wait_ready(timeout=120)
    return con


def _power_off(dom, con) -> None:
    con.close()
    dom.destroy()
    guest.wait_for_state(dom, libvirt.VIR_DOMAIN_SHUTOFF, timeout=30)


def test_non_persistent_disk_discards_writes_persistent_keeps_them(system_conn, tiny_guest, serial_console, pool):
    name, path = pool
    vol = storage.create_volume(system_conn, name, "data.img", 4 * MiB, "raw", "thin")
    dom = tiny_guest(start=False, extra_devices_xml=_disk_xml(vol.path, "vda", "raw"))
    uuid = dom.UUIDString()
    ok, how = disks.transient_support(system_conn)
    assert ok, how

    # non-persistent: libvirt's <transient/>
    disks.set_mode(system_conn, uuid, "vda", persistent=False)
    row = next(r for r in disks.list_disks(system_conn, uuid) if r.disk.target == "vda")
    assert row.mode == "nonpersistent"
    con = _boot(dom, serial_console)
    _write_marker(con, "vda", "GONE-AFTER-POWEROFF")
    assert _read_marker(con, "vda", 19) == "GONE-AFTER-POWEROFF"
    # the writes went to libvirt's overlay, not the image
    assert any(p.name.startswith("data.img.TRANSIENT") for p in path.iterdir())
    assert b"GONE" not in open(vol.path, "rb").read(512)
    _power_off(dom, con)
    assert not any(p.name.startswith("data.img.TRANSIENT") for p in path.iterdir())
    con = _boot(dom, serial_console)
    assert _read_marker(con, "vda", 19) == ""
    _power_off(dom, con)

    # switching needs the VM shut off
    dom.create()
    with pytest.raises(VmtuiError, match="Shut the VM off"):
        disks.set_mode(system_conn, uuid, "vda", persistent=True)
    dom.destroy()

    # persistent: the marker survives
    disks.set_mode(system_conn, uuid, "vda", persistent=True)
    assert ET.fromstring(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)).find(
        "devices/disk/transient") is None
    con = _boot(dom, serial_console)
    _write_marker(con, "vda", "STAYS-AFTER-POWEROFF")
    _power_off(dom, con)
    assert open(vol.path, "rb").read(20) == b"STAYS-AFTER-POWEROFF"
    con = _boot(dom, serial_console)
    assert _read_marker(con, "vda", 20) == "STAYS-AFTER-POWEROFF"
    _power_off(dom, con)


def test_snapshot_create_revert_on_qcow2(system_conn, tiny_guest, serial_console, pool):
    name, _path = pool
    vol = storage.create_volume(system_conn, name, "snap.qcow2", 4 * MiB, "qcow2", "thin")
    dom = tiny_guest(start=False, extra_devices_xml=_disk_xml(vol.path, "vda", "qcow2"))
    uuid = dom.UUIDString()

    off = snapshots.create_snapshot(system_conn, uuid, "clean", "before anything")
    assert off.state == "shutoff" and off.current and off.kind == "disks"

    con = _boot(dom, serial_console)
    _write_marker(con, "vda", "FIRST")
    live = snapshots.create_snapshot(system_conn, uuid, "first", "marker FIRST", memory=True)
    assert live.state == "running" and live.memory == "internal" and live.parent == "clean"
    xml = ET.fromstring(dom.snapshotLookupByName("first").getXMLDesc(0))
    assert xml.findtext("description") == "marker FIRST"
    assert xml.find("disks/disk[@name='vda']").get("snapshot") == "internal"

    _write_marker(con, "vda", "SECOND")
    assert _read_marker(con, "vda", 6) == "SECOND"
    snapshots.revert_snapshot(system_conn, uuid, "first")
    assert dom.state()[0] == libvirt.VIR_DOMAIN_RUNNING
    con.close()  # libvirt closes the console stream on a revert: open a new one
    con = serial_console(dom)
    con.send("\n")
    con.read_until(guest.PROMPT, timeout=30)
    assert _read_marker(con, "vda", 6) == "FIRST"
    assert dom.snapshotCurrent(0).getName() == "first"

    tree = snapshots.list_snapshots(system_conn, uuid)
    assert [(d, s.name) for d, s in tree] == [(0, "clean"), (1, "first")]
    assert [s.name for _, s in tree if s.current] == ["first"]

    # back to the shut-off state: the VM is off afterwards
    snapshots.revert_snapshot(system_conn, uuid, "clean")
    assert dom.state()[0] == libvirt.VIR_DOMAIN_SHUTOFF
    snapshots.delete_snapshot(system_conn, uuid, "clean")
    assert [(d, s.name) for d, s in snapshots.list_snapshots(system_conn, uuid)] == [(0, "first")]
    assert dom.snapshotLookupByName("first").getXMLDesc(0).find("<parent>") < 0
    con.close()


def test_snapshot_refused_on_raw_disk_names_it(system_conn, tiny_guest, pool):
    name, _path = pool
    vol = storage.create_volume(system_conn, name, "raw.img", 4 * MiB, "raw", "thin")
    dom = tiny_guest(start=False, extra_devices_xml=_disk_xml(vol.path, "vda", "raw"))
    with pytest.raises(VmtuiError) as exc:
        snapshots.create_snapshot(system_conn, dom.UUIDString(), "s1")
    assert "vda" in str(exc.value) and "raw" in str(exc.value) and "qcow2" in str(exc.value)
    assert dom.snapshotNum(0) == 0


def _size_in_guest(con, dev: str) -> int:
    return int(con.run(f"cat /sys/block/{dev}/size").strip()) * 512


def test_add_resize_remove_disk_on_running_vm(system_conn, tiny_guest, serial_console, pool):
    name, path = pool
    dom = tiny_guest(start=True)
    uuid = dom.UUIDString()
    con = _boot(dom, serial_console)

    target = disks.add_disk(system_conn, uuid, pool=name, name="hot.qcow2", size=8 * MiB,
                            fmt="qcow2", provisioning="thin")
    assert target == "vda"
    for xml in (dom.XMLDesc(0), dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)):
        d = {x.target: x for x in domxml.disk_sources(xml)}["vda"]
        assert d.path == str(path / "hot.qcow2") and d.driver_type == "qcow2"
    # ACPI PCI hot-plug: the guest kernel finds the new virtio disk on its own
    con.run("for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do "
            "[ -e /sys/block/vda ] && break; sleep 1; done", timeout=40)
    assert _size_in_guest(con, "vda") == 8 * MiB

    disks.resize_disk(system_conn, uuid, "vda", 16 * MiB)
    assert storage.find_volume(system_conn, f"{name}/hot.qcow2").capacity == 16 * MiB
    assert _size_in_guest(con, "vda") == 16 * MiB
    with pytest.raises(VmtuiError, match="only grow"):
        disks.resize_disk(system_conn, uuid, "vda", 8 * MiB)

    deleted = disks.remove_disk(system_conn, uuid, "vda", delete_volume=True)
    assert deleted == str(path / "hot.qcow2")
    assert "vda" not in disks.used_targets(dom.XMLDesc(0), dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
    assert not storage.volume_exists(system_conn, name, "hot.qcow2")
    con.close()


def test_add_and_grow_disk_on_shut_off_vm_keeps_volume_on_remove(system_conn, tiny_guest, pool):
    name, path = pool
    dom = tiny_guest(start=False)
    uuid = dom.UUIDString()
    target = disks.add_disk(system_conn, uuid, pool=name, name="cold.img", size=4 * MiB,
                            fmt="raw", provisioning="thick")
    vol = storage.find_volume(system_conn, f"{name}/cold.img")
    assert target == "vda" and not vol.thin and vol.capacity == 4 * MiB
    disks.resize_disk(system_conn, uuid, "vda", 6 * MiB)
    assert os.path.getsize(path / "cold.img") == 6 * MiB
    grown = storage.find_volume(system_conn, f"{name}/cold.img")
    assert not grown.thin  # thick stays thick: the new part is allocated too
    assert disks.remove_disk(system_conn, uuid, "vda") is None
    assert storage.volume_exists(system_conn, name, "cold.img")
    assert domxml.disk_sources(dom.XMLDesc(0)) == []
    # adding it back as an existing volume
    assert disks.add_disk(system_conn, uuid, existing=vol.path) == "vda"


def _iso(path, text: bytes) -> None:
    iso = pycdlib.PyCdlib()
    iso.new(interchange_level=3, vol_ident="VMTUITEST")
    iso.add_fp(io.BytesIO(text), len(text), "/HELLO.TXT;1")
    iso.write(str(path))
    iso.close()


def test_cdrom_insert_and_eject_on_running_guest(system_conn, tiny_guest, serial_console, pool):
    name, path = pool
    _iso(path / "hello.iso", b"hello from vmtui\n")
    system_conn.storagePoolLookupByName(name).refresh(0)
    empty = disks.element_xml(disks.cdrom_element("hdc", "ide"))
    dom = tiny_guest(start=True, extra_devices_xml=empty)
    uuid = dom.UUIDString()
    con = _boot(dom, serial_console)

    disks.change_media(system_conn, uuid, "hdc", f"{name}/hello.iso")
    for xml in (dom.XMLDesc(0), dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)):
        assert {d.target: d for d in domxml.disk_sources(xml)}["hdc"].path == str(path / "hello.iso")
    # the drive reports the media change on the next access: retry briefly
    out = con.run("mkdir -p /mnt/cd; for i in 1 2 3 4 5 6 7 8 9 10; do "
                  "mount -t iso9660 -o ro /dev/sr0 /mnt/cd 2>/dev/null && break; sleep 1; done; "
                  "cat /mnt/cd/hello.txt; umount /mnt/cd", timeout=60)
    assert "hello from vmtui" in out

    disks.change_media(system_conn, uuid, "hdc", None)
    for xml in (dom.XMLDesc(0), dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)):
        assert {d.target: d for d in domxml.disk_sources(xml)}["hdc"].source == ""
    out = con.run("mount -t iso9660 -o ro /dev/sr0 /mnt/cd 2>&1; echo rc=$?")
    assert "rc=0" not in out
    con.close()


async def test_overlay_non_persistent_disk_is_emptied_by_the_service_at_power_off(
        system_conn, tiny_guest, serial_console, pool):
    """The second mechanism (for hosts without <transient/>): a vmtui overlay
    that the service recreates when it sees the VM stop."""
    import asyncio

    from vmtui.core.connection.service import LibvirtService

    name, path = pool
    vol = storage.create_volume(system_conn, name, "base.img", 4 * MiB, "raw", "thin")
    dom = tiny_guest(start=False, extra_devices_xml=_disk_xml(vol.path, "vda", "raw"))
    uuid = dom.UUIDString()
    assert disks.set_mode(system_conn, uuid, "vda", persistent=False, mechanism="overlay") == "overlay"
    over = disks.overlay_disks(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))["vda"]
    assert over.base == vol.path and over.overlay == str(path / "base.vda.nonpersistent.qcow2")

    service = LibvirtService("qemu:///system", stats_interval=3600, reconnect=False)
    await service.connect()
    try:
        await service.start(uuid)
        con = await asyncio.to_thread(_boot, dom, serial_console)
        await asyncio.to_thread(_write_marker, con, "vda", "OVERLAY-WRITE")
        assert b"OVERLAY-WRITE" in open(over.overlay, "rb").read()
        assert b"OVERLAY-WRITE" not in open(vol.path, "rb").read()
        con.close()
        dom.destroy()  # a power-off the service sees as a "stopped" event

        async def emptied() -> bool:
            while True:
                try:
                    if b"OVERLAY-WRITE" not in open(over.overlay, "rb").read():
                        return True
                except FileNotFoundError:
                    pass
                await asyncio.sleep(0.1)
        await asyncio.wait_for(emptied(), 20)
        vol_now = storage.find_volume(system_conn, over.overlay)
        assert vol_now is not None and vol_now.backing == vol.path

        await service.start(uuid)
        con = await asyncio.to_thread(_boot, dom, serial_console)
        assert await asyncio.to_thread(_read_marker, con, "vda", 13) == ""
        con.close()
        dom.destroy()
    finally:
        await service.close()

    # back to persistent: the overlay goes, the disk is the base again
    await asyncio.sleep(0.5)
    disks.set_mode(system_conn, uuid, "vda", persistent=True)
    xml = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
    assert domxml.disk_sources(xml)[0].path == vol.path and disks.overlay_disks(xml) == {}
    assert not (path / "base.vda.nonpersistent.qcow2").exists()
