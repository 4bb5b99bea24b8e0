"""Cloud images that boot, on the real libvirtd + QEMU (issue 12, items 1-2).

The "cloud image" is a qcow2 disk SeaBIOS boots (tests/guest.py's
:func:`build_boot_disk`: isolinux + Debian's cloud kernel + the tiny
initramfs), whose /init prints the files of every block device labelled
``cidata`` on any bus (:func:`guest.cidata_init_script`), as cloud-init's
NoCloud would find them. Debian's cloud kernel has no AHCI driver, like
many cloud kernels: a SATA CD-ROM on q35 is invisible to it.

Each test creates the VM with :func:`create_vm` from a spec -- the image given
as a host path or as a pool volume, on q35 or i440fx -- boots it, reads what
the guest found, and checks that the base image's owner and mode are what
they were before the boot (libvirt's DAC driver would have given it to the
QEMU user for good).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import shutil
import stat
import xml.etree.ElementTree as ET
from pathlib import Path

import libvirt
import pytest

from tests import guest
from tests.prereq import missing
from vmtui.core.create.installer import InvalidSpec, create_vm
from vmtui.core.create.vmspec import DiskSpec, InstallSource, VmSpec
from vmtui.core.errors import VmtuiError
from vmtui.core.provision import seed
from vmtui.core.storage.images import probe_image

pytestmark = pytest.mark.real

URI = "qemu:///system"
MIB = 1024 ** 2
IMAGES = Path("/var/lib/libvirt/images")
_counter = itertools.count(1)


def unique(kind: str) -> str:
    return f"vmtui-test-{os.getpid()}-{kind}{next(_counter)}-{os.urandom(2).hex()}"


@pytest.fixture(scope="module")
def cloud_image_files(_libvirt_available) -> guest.GuestFiles:
    try:
        return guest.tiny_guest_files(guest.cidata_init_script())
    except Exception as exc:  # no apt, no network, ...
        missing(f"cannot build the tiny test guest: {exc}")


@pytest.fixture(scope="module")
def cloud_image(cloud_image_files, tmp_path_factory) -> Path:
    """The bootable qcow2 "cloud image" (built once; tests copy it)."""
    dest = tmp_path_factory.mktemp("cloud") / "tiny-cloud.qcow2"
    try:
        return guest.build_boot_disk(dest, cloud_image_files.kernel, cloud_image_files.initrd)
    except FileNotFoundError as exc:
        missing(str(exc))


@pytest.fixture
def host_path_base(cloud_image):
    """A copy of the image outside any pool (QEMU can read /var/lib/libvirt/boot), mode 0644."""
    made: list[Path] = []

    def make(mode: int = 0o644) -> Path:
        dest = guest.BOOT_DIR / f"{unique('base')}.qcow2"
        shutil.copyfile(cloud_image, dest)
        os.chmod(dest, mode)
        made.append(dest)
        return dest

    yield make
    for p in made:
        p.unlink(missing_ok=True)


def owner_and_mode(path: Path) -> tuple[int, int, int]:
    st = os.stat(path)
    return st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)


def cloud_spec(name: str, image: str, pool: str, machine: str, **cloud_init) -> VmSpec:
    user_data = f"#cloud-config\nhostname: {name}\n# {name}: seen by the guest\n"
    return VmSpec(name=name, virt_type="qemu", machine=machine, cpu_mode="host-model", memory_mib=256, vcpus=1,
                  graphics="none", tablet=False, nics=[],
                  install=InstallSource(kind="cloud", image=image,
                                        cloud_init={"user_data": user_data, **cloud_init}),
                  disks=[DiskSpec(pool=pool, size=64 * MIB)])


async def boot_and_read_cidata(svc, system_conn, spec: VmSpec, serial_console) -> list[guest.CidataDevice]:
    """create_vm starts the VM; the guest's report of its cidata devices."""
    await create_vm(svc, spec)
    dom = system_conn.lookupByName(spec.name)
    con = serial_console(dom)
    await asyncio.to_thread(con.read_until, guest.CIDATA_DONE, 180)
    return guest.parse_cidata(con.text())


def check_seen(found: list[guest.CidataDevice], spec: VmSpec, dev: str) -> None:
    assert [d.dev for d in found] == [dev], found
    (seen,) = found
    assert seen.fstype == "iso9660"
    assert sorted(seen.files) == ["meta-data", "user-data"]
    assert seen.files["user-data"] == spec.install.cloud_init["user_data"]
    assert f"local-hostname: {spec.name}" in seen.files["meta-data"]


@pytest.mark.parametrize("machine", ["q35", "pc"])
async def test_host_path_image_boots_and_the_guest_sees_the_seed(svc, system_conn, pool, host_path_base, domains,
                                                                 serial_console, machine):
    base = host_path_base()
    before = owner_and_mode(base)
    name = unique(f"hp{machine}")
    domains.append(name)
    spec = cloud_spec(name, str(base), pool, machine)
    found = await boot_and_read_cidata(svc, system_conn, spec, serial_console)
    # it booted from the overlay (a qcow2 base read as raw would not boot at all) ...
    check_seen(found, spec, "vdb")  # ... and its kernel read the seed: a virtio disk next to vda
    assert "virtio" in found[0].sysfs
    dom = system_conn.lookupByName(name)
    disk = ET.fromstring(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)).find("devices/disk")
    assert disk.find("backingStore/format").get("type") == "qcow2"
    assert disk.find("backingStore/source").get("file") == str(base)
    vol = system_conn.storageVolLookupByPath(disk.find("source").get("file"))
    assert ET.fromstring(vol.XMLDesc(0)).find("backingStore/format").get("type") == "qcow2"
    # the base image, untouched while the VM runs and after it stops
    assert owner_and_mode(base) == before
    dom.destroy()
    assert owner_and_mode(base) == before == (0, 0, 0o644)


async def test_pool_volume_image_on_i440fx(svc, system_conn, pool, cloud_image, domains, serial_console):
    target = IMAGES / pool / "tiny-cloud.qcow2"
    shutil.copyfile(cloud_image, target)
    os.chmod(target, 0o644)
    system_conn.storagePoolLookupByName(pool).refresh(0)
    before = owner_and_mode(target)
    name = unique("vol")
    domains.append(name)
    spec = cloud_spec(name, f"{pool}/tiny-cloud.qcow2", pool, "pc")
    found = await boot_and_read_cidata(svc, system_conn, spec, serial_console)
    check_seen(found, spec, "vdb")
    rec = seed.seed_record(system_conn.lookupByName(name).XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
    assert (rec.pool, rec.volume) == (pool, f"{name}-cidata.iso")
    system_conn.lookupByName(name).destroy()
    assert owner_and_mode(target) == before


@pytest.mark.parametrize("bus,dev,seen", [("scsi", "sr0", True), ("sata", None, False)])
async def test_chosen_seed_bus_on_q35(svc, system_conn, pool, host_path_base, domains, serial_console,
                                      bus, dev, seen):
    """A virtio-scsi CD-ROM is seen too; a SATA CD-ROM on q35 is not: Debian's
    cloud kernel has no AHCI driver (why the seed goes next to the boot disk)."""
    base = host_path_base()
    name = unique(f"bus{bus}")
    domains.append(name)
    spec = cloud_spec(name, str(base), pool, "q35", seed_bus=bus)
    found = await boot_and_read_cidata(svc, system_conn, spec, serial_console)
    if seen:
        check_seen(found, spec, dev)
    else:
        assert found == []


async def test_a_base_qemu_cannot_read_is_refused_and_left_alone(svc, system_conn, pool, host_path_base, domains):
    base = host_path_base(mode=0o600)
    name = unique("ro")
    domains.append(name)
    with pytest.raises(InvalidSpec) as ei:
        await create_vm(svc, cloud_spec(name, str(base), pool, "q35"))
    (err,) = [e for e in ei.value.errors if e.field == "install.image"]
    assert "cannot read" in err.message and str(base) in err.message and "chmod o+r" in err.message
    assert owner_and_mode(base) == (0, 0, 0o600)
    assert name not in [d.name() for d in system_conn.listAllDomains(0)]
    assert system_conn.storagePoolLookupByName(pool).listVolumes() == []


async def test_a_missing_image_is_refused(svc, system_conn, pool, domains):
    name = unique("nofile")
    domains.append(name)
    with pytest.raises(InvalidSpec) as ei:
        await create_vm(svc, cloud_spec(name, str(guest.BOOT_DIR / f"{name}-missing.qcow2"), pool, "q35"))
    (err,) = [e for e in ei.value.errors if e.field == "install.image"]
    assert "No such file" in err.message
    assert system_conn.storagePoolLookupByName(pool).listVolumes() == []


def test_a_remote_host_path_is_probed_by_libvirt(system_conn, host_path_base):
    """What a remote host does (no qemu-img here): libvirt reads the file
    through a transient pool on its directory, which goes again."""
    base = host_path_base()
    pools = {p.name() for p in system_conn.listAllStoragePools()}
    probe = probe_image(system_conn, str(base), local=False)
    assert (probe.format, probe.path) == ("qcow2", str(base))
    assert "transient pool on /var/lib/libvirt/boot" in probe.how
    assert (probe.owner, probe.group, probe.mode) == (0, 0, 0o644)
    assert {p.name() for p in system_conn.listAllStoragePools()} == pools
    with pytest.raises(VmtuiError, match="no such file on the host"):
        probe_image(system_conn, str(base) + ".missing", local=False)
