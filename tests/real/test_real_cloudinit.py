"""cloud-init seeds on the real libvirtd + QEMU: upload, attach, the guest
reads the ``cidata`` CD, and removal after the first boot (the removal while
the VM runs, after cloud-init finished: tests/real/test_real_reach.py)."""

from __future__ import annotations

import asyncio
import itertools
import os
import re
from pathlib import Path

import libvirt
import pytest

from tests import guest
from tests.notes import notes_of, run_noted
from tests.prereq import missing
from vmtui.core import storage
from vmtui.core.provision import seed
from vmtui.core.provision.seed import CloudInitDocs

pytestmark = pytest.mark.real

IMAGES = Path("/var/lib/libvirt/images")
_counter = itertools.count(1)

# mounts every CD-ROM until one holds user-data, prints the seed between
# markers, then powers off (a guest-initiated shutdown: "stopped/shutdown")
SEED_INIT = r"""#!/bin/sh
export PATH=/sbin:/bin:/usr/sbin:/usr/bin HOME=/root
/sbin/vmtui-guest-setup
echo 1 > /proc/sys/kernel/printk
mkdir -p /mnt/seed
found=
for i in 1 2 3 4 5 6 7 8 9 10; do
  for d in /dev/sr0 /dev/sr1 /dev/sr2 /dev/sr3; do
    [ -b "$d" ] || continue
    if mount -t iso9660 -o ro "$d" /mnt/seed 2>/dev/null; then
      if [ -f /mnt/seed/user-data ]; then found=$d; break 2; fi
      umount /mnt/seed
    fi
  done
  sleep 0.5
done
if [ -n "$found" ]; then
  echo "SEED-FILES $(ls /mnt/seed | tr '\n' ' ')" > /dev/ttyS0
  echo "SEED-USER-DATA-BEGIN" > /dev/ttyS0
  cat /mnt/seed/user-data > /dev/ttyS0
  echo "SEED-USER-DATA-END" > /dev/ttyS0
  echo "SEED-META-DATA-BEGIN" > /dev/ttyS0
  cat /mnt/seed/meta-data > /dev/ttyS0
  echo "SEED-META-DATA-END" > /dev/ttyS0
else
  echo "SEED-MISSING" > /dev/ttyS0
fi
echo "VMTUI-GUEST-READY" > /dev/ttyS0
sleep 1
poweroff -f
"""


@pytest.fixture(scope="module")
def seed_guest_files(_libvirt_available):
    try:
        return guest.tiny_guest_files(SEED_INIT)
    except Exception as exc:  # no apt, no network, ...
        missing(f"cannot build the tiny test guest: {exc}")


def _between(text: str, what: str) -> str:
    m = re.search(rf"SEED-{what}-BEGIN\n(.*?)SEED-{what}-END\n", text, re.S)
    assert m, f"no {what} on the console:\n{text[-3000:]}"
    return m.group(1)


async def editor_docs(hostname: str, tmp_path) -> CloudInitDocs:
    """What the cloud-init editor returns after typing into its form."""
    from textual.app import App
    from textual.widgets import Input, TextArea

    from vmtui.core.provision.library import Library
    from vmtui.ui.cloudinit_editor import CloudInitEditorScreen

    result: list = []

    class EditorApp(App):
        CSS_PATH = str(Path(__file__).resolve().parents[2] / "vmtui" / "ui" / "vmtui.tcss")

        def on_mount(self) -> None:
            self.push_screen(CloudInitEditorScreen(None, hostname=hostname, library=Library(tmp_path)),
                             result.append)

    app = EditorApp()
    async with run_noted(app, size=(80, 24)) as pilot:
        scr = app.screen
        scr.ta("user-data").load_text("#cloud-config\n# made in the editor\nunknown_module: {keep: true}\n")
        await pilot.press("f5")
        await pilot.pause()
        scr.query_one("#f-timezone", Input).value = "Europe/Berlin"
        scr.query_one("#f-user-add").press()
        await pilot.pause()
        scr.query_one("#f-user-name", Input).value = "admin"
        scr.query_one("#f-user-keys", TextArea).load_text("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample admin@x")
        scr.query_one("#f-user-password", Input).value = "s3cret"
        await pilot.press("ctrl+s")
        await pilot.pause()
    (docs,) = result
    assert docs is not None and "s3cret" not in docs.user_data
    return docs


async def test_seed_is_read_by_the_guest_and_removed_after_first_boot(system_conn, tiny_guest, seed_guest_files,
                                                                       serial_console, pool, tmp_path):
    from vmtui.core.connection.service import DomainEvent, LibvirtService

    dom = tiny_guest(start=False, files=seed_guest_files)
    name = dom.name()
    docs = await editor_docs(name, tmp_path)
    path = seed.attach_seed(system_conn, name, pool, docs, detach_after_first_boot=True)

    # the volume is in the pool, the CD-ROM is read-only on IDE (i440fx)
    assert path.endswith(f"/{name}-cidata.iso")
    vol = system_conn.storagePoolLookupByName(pool).storageVolLookupByName(f"{name}-cidata.iso")
    assert vol.path() == path
    xml = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
    cds = seed.seed_disk_elements(xml, path)
    assert len(cds) == 1
    assert cds[0].find("target").attrib == {"dev": "hda", "bus": "ide"}
    assert cds[0].find("readonly") is not None
    assert seed.seed_record(xml).detach_after_first_boot

    # watch the lifecycle events as the app does
    svc = LibvirtService("qemu:///system", stats_interval=3600, reconnect=False)
    await svc.connect()
    events: list[DomainEvent] = []
    svc.subscribe(lambda e: events.append(e) if isinstance(e, DomainEvent) and e.name == name else None)
    try:
        dom.create()
        con = serial_console(dom)
        await asyncio.to_thread(con.read_until, guest.READY_BANNER, 120)
        out = con.text().replace("\r\n", "\n")
        assert "SEED-MISSING" not in out
        files = re.search(r"SEED-FILES (.*)\n", out).group(1).split()
        assert sorted(files) == ["meta-data", "user-data"]
        # byte for byte what the editor wrote (cat adds nothing; the doc ends in \n)
        assert _between(out, "USER-DATA") == docs.user_data
        assert _between(out, "META-DATA") == docs.meta_data
        assert "$6$" in docs.user_data and "unknown_module" in docs.user_data

        await asyncio.to_thread(guest.wait_for_state, dom, libvirt.VIR_DOMAIN_SHUTOFF, 60)
        for _ in range(100):
            if any(e.event == "stopped" for e in events):
                break
            await asyncio.sleep(0.05)
        assert any(e.event == "stopped" for e in events)
    finally:
        await svc.close()
    # the stop removed nothing (nothing waited for cloud-init): the seed stays
    xml = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
    assert len(seed.seed_disk_elements(xml, path)) == 1 and seed.seed_record(xml).detach_after_first_boot
    # what the one that waits does once cloud-init finished (here: the VM is off)
    removed = seed.remove_seed(system_conn, dom.UUIDString())
    assert (removed.path, removed.volume_deleted, removed.live, removed.kept) == (path, True, "", "")
    xml = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
    assert seed.seed_disk_elements(xml, path) == []
    assert seed.seed_record(xml) is None
    assert storage.find_volume(system_conn, path) is None
    # nothing more to do the next time
    assert seed.remove_seed(system_conn, dom.UUIDString()) is None


def test_attach_to_a_running_vm(system_conn, tiny_guest, pool):
    dom = tiny_guest(start=True)
    name = dom.name()
    path = seed.attach_seed(system_conn, name, pool, seed.default_docs(name))
    # IDE cannot be hot-plugged: the definition has it (next boot)
    assert len(seed.seed_disk_elements(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE), path)) == 1
    assert seed.detach_seed(system_conn, name) == path
    assert seed.seed_disk_elements(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE), path) == []
    assert storage.find_volume(system_conn, path) is None


async def test_create_vm_from_a_cloud_image_attaches_the_seed(system_conn, pool, monkeypatch):
    from vmtui.core.connection.service import LibvirtService
    from vmtui.core.create import installer
    from vmtui.core.create.vmspec import DiskSpec, InstallSource, VmSpec
    from vmtui.core.errors import VmtuiError

    base = storage.create_volume(system_conn, pool, "base.qcow2", 64 * 1024 ** 2, "qcow2", "thin")
    os.chmod(base.path, 0o644)  # QEMU reads a base as it is: libvirt must not chown it
    svc = LibvirtService("qemu:///system", stats_interval=3600, reconnect=False)
    await svc.connect()
    names = [f"vmtui-test-{os.getpid()}-cloud{i}-{os.urandom(2).hex()}" for i in (1, 2)]
    try:
        def spec(name, **kw):
            return VmSpec(name=name, virt_type="qemu", machine="q35", cpu_mode="host-model", memory_mib=128,
                          vcpus=1, graphics="none", nics=[], start_install=False,
                          install=InstallSource(kind="cloud", image=f"{pool}/base.qcow2",
                                                cloud_init={"user_data": "#cloud-config\npackages: [nginx]\n"}),
                          disks=[DiskSpec(pool=pool, size=64 * 1024 ** 2)], **kw)

        await installer.create_vm(svc, spec(names[0]))
        dom = system_conn.lookupByName(names[0])
        xml = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
        seed_path = system_conn.storagePoolLookupByName(pool).storageVolLookupByName(
            f"{names[0]}-cidata.iso").path()
        (dev,) = seed.seed_disk_elements(xml, seed_path)
        # next to the virtio boot disk, on q35 too (no SATA CD-ROM cloud kernels cannot see)
        assert dev.get("device") == "disk" and dev.find("target").attrib == {"dev": "vdb", "bus": "virtio"}
        assert not seed.seed_record(xml).detach_after_first_boot

        # a failure after the seed was attached removes it with everything else
        def boom(dom):
            raise libvirt.libvirtError("injected failure")

        monkeypatch.setattr(installer, "_set_autostart", boom)
        with pytest.raises(VmtuiError, match="Everything created so far was removed"):
            await installer.create_vm(svc, spec(names[1], autostart=True))
        vols = system_conn.storagePoolLookupByName(pool).listVolumes()
        assert f"{names[1]}-cidata.iso" not in vols and f"{names[1]}.qcow2" not in vols
    finally:
        await svc.close()
        for name in names:
            guest.destroy_and_undefine(system_conn, name)


def test_attach_replaces_and_detach_keeps_volume_on_request(system_conn, tiny_guest, pool):
    dom = tiny_guest(start=False)
    name = dom.name()
    first = seed.attach_seed(system_conn, name, pool, seed.default_docs(name))
    second = seed.attach_seed(system_conn, name, pool, seed.default_docs(name))  # replaced, not doubled
    assert first == second
    xml = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
    assert len(seed.seed_disk_elements(xml, second)) == 1
    assert not seed.seed_record(xml).detach_after_first_boot
    # no removal wish: nothing to remove after the first boot
    assert seed.remove_seed(system_conn, dom.UUIDString()) is None
    assert seed.detach_seed(system_conn, name, delete_volume=False) == second
    xml = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
    assert seed.seed_disk_elements(xml, second) == [] and seed.seed_record(xml) is None
    assert storage.find_volume(system_conn, second) is not None
    assert seed.detach_seed(system_conn, name) is None


def test_attach_rolls_back_the_volume(system_conn, tiny_guest, pool, monkeypatch):
    dom = tiny_guest(start=False)
    name = dom.name()

    def boom(*a, **kw):
        raise libvirt.libvirtError("injected failure")

    monkeypatch.setattr(seed, "_write_metadata", boom)
    with pytest.raises(Exception, match="injected failure"):
        seed.attach_seed(system_conn, name, pool, seed.default_docs(name))
    xml = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
    assert seed.seed_disk_elements(xml, None, f"{name}-cidata.iso") == []
    assert not system_conn.storagePoolLookupByName(pool).listVolumes()


async def test_attach_from_the_library_screen(system_conn, tiny_guest, pool, monkeypatch, tmp_path):
    """i on the list, a on a saved config, Ctrl+S in the editor, choose the pool: the
    real VM has the seed."""
    from textual.widgets import Select

    from tests.conftest import wait_for
    from vmtui.core.config import Config
    from vmtui.core.connection.service import LibvirtService
    from vmtui.core.provision.library import Library
    from vmtui.ui.app import VmtuiApp
    from vmtui.ui.cloudinit_editor import (
        AttachSeedDialog,
        CloudInitEditorScreen,
        CloudInitLibraryScreen,
    )

    monkeypatch.setattr("vmtui.core.provision.library.default_dir", lambda: tmp_path / "lib")
    Library().save("base", CloudInitDocs("#cloud-config\npackages: [git]\n", ""))
    dom = tiny_guest(start=False)
    name, uuid = dom.name(), dom.UUIDString()
    app = VmtuiApp(LibvirtService("qemu:///system", stats_interval=3600, reconnect=False), Config())
    async with run_noted(app, size=(100, 30)) as pilot:
        await wait_for(lambda: app.ready and uuid in app.table.domains, timeout=20, what="list loaded")
        app.table.select(uuid)
        await pilot.pause()
        await pilot.press("i")
        await wait_for(lambda: isinstance(app.screen, CloudInitLibraryScreen), what="library")
        await pilot.pause()
        await pilot.press("a")
        await wait_for(lambda: isinstance(app.screen, CloudInitEditorScreen), what="editor")
        await pilot.press("ctrl+s")
        await wait_for(lambda: isinstance(app.screen, AttachSeedDialog), timeout=20, what="pool question")
        app.screen.query_one("#attach-pool", Select).value = pool
        app.screen.query_one("#ok").press()
        await wait_for(lambda: any("Attached" in n.message or "Cannot" in n.message for n in notes_of(app).all),
                       timeout=60, what="attached")
        assert not [n.message for n in notes_of(app).all if "Cannot" in n.message]
    xml = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
    rec = seed.seed_record(xml)
    assert rec.pool == pool and rec.volume == f"{name}-cidata.iso"
    assert len(seed.seed_disk_elements(xml, rec.path)) == 1
