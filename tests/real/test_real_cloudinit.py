"""cloud-init seeds on the real libvirtd + QEMU: upload, attach, the guest
reads the ``cidata`` CD, and removal after the first boot."""

from __future__ import annotations

import itertools
import os
import re
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import libvirt
import pytest

from tests import guest
from vmtui.core import storage
from vmtui.core.provision import cloudinit, seed
from vmtui.core.provision.seed import CloudInitDocs

pytestmark = pytest.mark.real

IMAGES = Path("/var/lib/libvirt/images")
POOL_PREFIX = "vmtui-test-pool-"
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
        if os.environ.get("CI"):
            raise
        pytest.skip(f"cannot build the tiny test guest: {exc}")


@pytest.fixture
def pool(system_conn):
    name = f"{POOL_PREFIX}{os.getpid()}-ci{next(_counter)}-{os.urandom(2).hex()}"
    path = IMAGES / name
    path.mkdir(mode=0o755)
    root = ET.Element("pool", type="dir")
    ET.SubElement(root, "name").text = name
    ET.SubElement(ET.SubElement(root, "target"), "path").text = str(path)
    system_conn.storagePoolCreateXML(ET.tostring(root, encoding="unicode"), 0)
    yield name
    conn = libvirt.open("qemu:///system")
    try:
        p = conn.storagePoolLookupByName(name)
        for vol in p.listAllVolumes(0):
            try:
                vol.delete(0)
            except libvirt.libvirtError:
                pass
        p.destroy()
    except libvirt.libvirtError:
        pass
    finally:
        conn.close()
    shutil.rmtree(path, ignore_errors=True)


def _between(text: str, what: str) -> str:
    m = re.search(rf"SEED-{what}-BEGIN\n(.*?)SEED-{what}-END\n", text, re.S)
    assert m, f"no {what} on the console:\n{text[-3000:]}"
    return m.group(1)


def _docs(hostname: str) -> CloudInitDocs:
    form = cloudinit.CloudConfigForm(
        hostname=hostname, timezone="Europe/Berlin", packages=["nginx"], ssh_pwauth=False,
        users=[cloudinit.UserForm(name="admin", groups=["sudo"], shell="/bin/bash",
                                  ssh_keys=["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample admin@x"],
                                  password="s3cret")])
    user_data = cloudinit.apply_form("#cloud-config\n# made by the test\nunknown_module: {keep: true}\n", form)
    assert "s3cret" not in user_data
    return seed.complete_docs(CloudInitDocs(user_data, ""), hostname)


def test_seed_is_read_by_the_guest_and_removed_after_first_boot(system_conn, tiny_guest, seed_guest_files,
                                                                 serial_console, pool):
    dom = tiny_guest(start=False, files=seed_guest_files)
    name = dom.name()
    docs = _docs(name)
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

    dom.create()
    con = serial_console(dom)
    con.read_until(guest.READY_BANNER, timeout=120)
    out = con.text().replace("\r\n", "\n")
    assert "SEED-MISSING" not in out
    files = re.search(r"SEED-FILES (.*)\n", out).group(1).split()
    assert sorted(files) == ["meta-data", "user-data"]
    # byte for byte what the form wrote (cat adds nothing; the doc ends in \n)
    assert _between(out, "USER-DATA") == docs.user_data
    assert _between(out, "META-DATA") == docs.meta_data
    assert "$6$" in docs.user_data and "unknown_module" in docs.user_data

    guest.wait_for_state(dom, libvirt.VIR_DOMAIN_SHUTOFF, timeout=60)
    removed = seed.cleanup_after_first_boot(system_conn, dom.UUIDString())
    assert removed == path
    xml = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
    assert seed.seed_disk_elements(xml, path) == []
    assert seed.seed_record(xml) is None
    assert storage.find_volume(system_conn, path) is None
    # nothing more to do the next time
    assert seed.cleanup_after_first_boot(system_conn, dom.UUIDString()) is None


def test_attach_replaces_and_detach_keeps_volume_on_request(system_conn, tiny_guest, pool):
    dom = tiny_guest(start=False)
    name = dom.name()
    first = seed.attach_seed(system_conn, name, pool, seed.default_docs(name))
    second = seed.attach_seed(system_conn, name, pool, seed.default_docs(name))  # replaced, not doubled
    assert first == second
    xml = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
    assert len(seed.seed_disk_elements(xml, second)) == 1
    assert not seed.seed_record(xml).detach_after_first_boot
    # no removal wish: a stop does nothing
    assert seed.cleanup_after_first_boot(system_conn, dom.UUIDString()) is None
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
