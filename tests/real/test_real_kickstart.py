"""Kickstart delivery on the real libvirtd + QEMU (tiny test guest, TCG).

* ISO install: the OEMDRV ISO is uploaded into the pool (stream upload) and
  attached as a second CD-ROM of the install run; the guest mounts it and
  prints ks.cfg on the serial console -- exactly the kickstart written.
  Defined only, the volume stays: downloaded again, pycdlib reads label
  OEMDRV and ks.cfg back.
* Network install: ks.cfg is appended to the tree's initrd; the guest finds
  /ks.cfg in its root file system next to its own files, and the kernel
  command line holds inst.ks=file:/ks.cfg.
"""

from __future__ import annotations

import functools
import http.server
import shutil
import threading
import xml.etree.ElementTree as ET

import pytest

from tests import guest
from tests.real.test_real_create import (  # noqa: F401 -- fixtures
    IMAGES, _QuietHandler, boot_iso, dom_xml, tiny_spec, unique)
from tests.test_kickstart_delivery import read_oemdrv
from vmtui.core import storage
from vmtui.core.create.installer import create_vm
from vmtui.core.provision.kickstart import starter_kickstart
from vmtui.core.create.vmspec import InstallSource

pytestmark = pytest.mark.real

KS = starter_kickstart("en_US.UTF-8", "de", "Europe/Berlin", "$6$vmtuitest$abc", "admin", disk="vda",
                       post="echo from-vmtui")


def ks_source(**kw) -> InstallSource:
    return InstallSource(kickstart={"text": KS, "version": "RHEL9", "delivery": kw.pop("delivery", "oemdrv")}, **kw)


def cdroms(root: ET.Element) -> list[str | None]:
    return [(d.find("source").get("file") if d.find("source") is not None else None)
            for d in root.iter("disk") if d.get("device") == "cdrom"]


async def test_iso_install_gets_an_oemdrv_cdrom_the_guest_reads(svc, system_conn, pool, boot_iso, domains,
                                                                serial_console):
    name = unique("ks")
    domains.append(name)
    spec = tiny_spec(name, pool, install=ks_source(kind="iso", iso=f"{pool}/vmtui-test.iso"))
    await create_vm(svc, spec)
    dom = system_conn.lookupByName(name)
    live = dom_xml(system_conn, name)
    media, oemdrv = cdroms(live)
    assert media == str(boot_iso)
    assert oemdrv.startswith(str(IMAGES / pool / f"vmtui-{name}-")) and oemdrv.endswith("-ks-oemdrv.iso")
    targets = [d.find("target").get("dev") for d in live.iter("disk") if d.get("device") == "cdrom"]
    assert targets == ["hda", "hdb"]
    # the definition has no OEMDRV drive, and the uploaded volume is gone (QEMU holds it open)
    assert cdroms(dom_xml(system_conn, name, inactive=True)) == [None]
    assert [v.name() for v in system_conn.storagePoolLookupByName(pool).listAllVolumes(0)
            if "oemdrv" in v.name()] == []

    con = serial_console(dom)
    con.wait_ready(timeout=120)
    con.run("mkdir -p /mnt/oem && mount -t iso9660 -o ro /dev/sr1 /mnt/oem")
    shown = con.run("cat /mnt/oem/ks.cfg", timeout=30)
    assert shown.replace("\r\n", "\n").strip() == KS.strip()
    label = con.run("dd if=/dev/sr1 bs=1 skip=32808 count=6 2>/dev/null; echo")
    assert "OEMDRV" in label


async def test_define_only_keeps_the_oemdrv_volume_readable_with_pycdlib(svc, system_conn, pool, boot_iso, domains,
                                                                         tmp_path):
    name = unique("ksdef")
    domains.append(name)
    spec = tiny_spec(name, pool, start_install=False, install=ks_source(kind="iso", iso=f"{pool}/vmtui-test.iso"))
    await create_vm(svc, spec)
    final = dom_xml(system_conn, name, inactive=True)
    media, oemdrv = cdroms(final)
    assert media == str(boot_iso) and oemdrv.endswith("-ks-oemdrv.iso")
    vol = storage.find_volume(system_conn, oemdrv)
    assert vol is not None and vol.pool == pool
    local = tmp_path / "oemdrv.iso"
    storage.download_volume(system_conn, vol.key, local)
    assert read_oemdrv(local.read_bytes()) == ("OEMDRV", KS.encode())


async def test_network_install_injects_ks_cfg_into_the_initrd(svc, system_conn, pool, tiny_guest_files, domains,
                                                              serial_console, tmp_path):
    tree = tmp_path / "tree"
    (tree / "images" / "pxeboot").mkdir(parents=True)
    shutil.copy(tiny_guest_files.kernel, tree / "images" / "pxeboot" / "vmlinuz")
    shutil.copy(tiny_guest_files.initrd, tree / "images" / "pxeboot" / "initrd.img")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(tree)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/"
        name = unique("ksurl")
        domains.append(name)
        spec = tiny_spec(name, pool, install=ks_source(kind="url", url=url, kernel_args=guest.DEFAULT_CMDLINE,
                                                       delivery="initrd"))
        await create_vm(svc, spec)
    finally:
        server.shutdown()
        server.server_close()
    dom = system_conn.lookupByName(name)
    assert dom_xml(system_conn, name).findtext("os/cmdline") == f"{guest.DEFAULT_CMDLINE} inst.ks=file:/ks.cfg"
    con = serial_console(dom)
    con.wait_ready(timeout=120)  # the original initramfs still works (its /init ran)
    assert "inst.ks=file:/ks.cfg" in con.run("cat /proc/cmdline")
    shown = con.run("cat /ks.cfg", timeout=30)
    assert shown.replace("\r\n", "\n").strip() == KS.strip()
    assert "busybox" in con.run("ls /bin/busybox")  # the original files are there too
