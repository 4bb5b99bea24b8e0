"""Creating VMs on the real libvirtd + QEMU (qemu:///system), like virt-install.

A tiny bootable ISO is built here: the tiny test guest's kernel + initramfs
(tests/guest.py) behind isolinux (Debian packages ``isolinux`` and
``syslinux-common``), made El Torito bootable with pycdlib. VMs use machine
'pc', virt type 'qemu' (TCG), an IDE CD-ROM and no NIC, and must boot from
the CD to the guest's banner on the serial console.

Each test works in its own transient dir pool ``vmtui-test-cpool-<pid>-...``
under /var/lib/libvirt/images; domains are named ``vmtui-test-<pid>-...``.
Both are removed at teardown (and leftovers of dead sessions first).
"""

from __future__ import annotations

import functools
import http.server
import itertools
import os
import re
import shutil
import subprocess
import sys
import threading
import xml.etree.ElementTree as ET
from pathlib import Path

import libvirt
import pytest

from tests import guest
from tests.prereq import missing
from vmtui.core import storage
from vmtui.core.create.builder import NS_LIBOSINFO, NS_VMTUI
from vmtui.core.host.domcaps import host_caps
from vmtui.core.errors import VmtuiError
from vmtui.core.create.installer import create_vm, export_spec, host_facts
from vmtui.core.create.vmspec import DiskSpec, InstallSource, NicSpec, VmSpec
from vmtui.core.create.vmspec_yaml import dump_spec, load_spec

pytestmark = pytest.mark.real

URI = "qemu:///system"
MiB = 1024 ** 2
IMAGES = Path("/var/lib/libvirt/images")
GOLDEN = Path(__file__).resolve().parent.parent / "data" / "builder"
_counter = itertools.count(1)


def unique(kind: str) -> str:
    return f"vmtui-test-{os.getpid()}-{kind}{next(_counter)}-{os.urandom(2).hex()}"


@pytest.fixture
def boot_iso(system_conn, pool, tiny_guest_files) -> Path:
    """The tiny guest on a bootable ISO, as volume ``vmtui-test.iso`` of ``pool``."""
    try:  # a hybrid ISO: a CD-ROM boots it as well
        path = guest.hybrid_disk_image(IMAGES / pool / "vmtui-test.iso", tiny_guest_files.kernel,
                                       tiny_guest_files.initrd)
    except FileNotFoundError as exc:
        missing(str(exc))
    system_conn.storagePoolLookupByName(pool).refresh(0)
    return path


def tiny_spec(name: str, pool: str, **kw) -> VmSpec:
    base = dict(name=name, virt_type="qemu", machine="pc", cpu_mode="host-model", memory_mib=256, vcpus=1,
                cdrom_bus="ide", graphics="none", tablet=False, nics=[],
                install=InstallSource(kind="iso", iso=f"{pool}/vmtui-test.iso"),
                disks=[DiskSpec(pool=pool, size=64 * MiB)])
    base.update(kw)
    return VmSpec(**base)


def dom_xml(conn, name: str, inactive: bool = False) -> ET.Element:
    dom = conn.lookupByName(name)
    return ET.fromstring(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE if inactive else 0))


@pytest.mark.parametrize("provisioning,fmt", [("thin", "qcow2"), ("thick", "raw"), ("thick", "qcow2")])
async def test_create_from_iso_boots_from_the_cd(svc, system_conn, pool, boot_iso, domains, serial_console,
                                                 provisioning, fmt):
    name = unique("iso")
    domains.append(name)
    spec = tiny_spec(name, pool, disks=[DiskSpec(pool=pool, size=64 * MiB, format=fmt,
                                                 provisioning=provisioning)])
    steps = []
    uuid = await create_vm(svc, spec, progress=lambda m, f: steps.append(m))
    assert "Creating disk 1 of 1" in steps and svc.domains[uuid].is_active

    dom = system_conn.lookupByName(name)
    assert dom.UUIDString() == uuid and dom.isPersistent()
    assert dom.state()[0] == libvirt.VIR_DOMAIN_RUNNING

    # the running install phase: CD-ROM first, reboot ends it
    live = dom_xml(system_conn, name)
    assert live.get("type") == "qemu"
    assert [b.get("dev") for b in live.findall("os/boot")] == ["cdrom", "hd"]
    assert live.findtext("on_reboot") == "destroy"
    cd = [d for d in live.iter("disk") if d.get("device") == "cdrom"][0]
    assert cd.find("source").get("file") == str(boot_iso)
    assert cd.find("target").attrib == {"dev": "hda", "bus": "ide"}

    # the definition: boots the disk, drive kept with the media ejected
    final = dom_xml(system_conn, name, inactive=True)
    assert [b.get("dev") for b in final.findall("os/boot")] == ["hd"]
    assert final.findtext("on_reboot") == "restart"
    cd = [d for d in final.iter("disk") if d.get("device") == "cdrom"][0]
    assert cd.find("source") is None
    disk = [d for d in final.iter("disk") if d.get("device") == "disk"][0]
    ext = "qcow2" if fmt == "qcow2" else "img"
    assert disk.find("source").get("file") == str(IMAGES / pool / f"{name}.{ext}")
    assert disk.find("driver").get("type") == fmt
    assert final.find(f"metadata/{{{NS_VMTUI}}}vmtui/{{{NS_VMTUI}}}os").get("id") == "generic"

    vol = storage.find_volume(system_conn, f"{pool}/{name}.{ext}")
    assert vol.capacity == 64 * MiB and vol.format == fmt
    if provisioning == "thin":
        assert vol.allocation < 1 * MiB  # a fresh qcow2 holds its header only
    else:
        assert vol.allocation >= vol.capacity

    con = serial_console(dom)
    con.wait_ready(timeout=120)
    assert con.run("cat /sys/block/sr0/device/model 2>/dev/null || ls /dev/sr0") != ""


async def test_start_failure_removes_volumes_and_domain(svc, system_conn, pool, boot_iso, domains):
    name = unique("fail")
    domains.append(name)
    spec = tiny_spec(name, pool, disks=[DiskSpec(pool=pool, size=64 * MiB),
                                        DiskSpec(pool=pool, size=32 * MiB, format="raw", provisioning="thick")])
    spec.nics = [NicSpec(kind="network", source="vmtui-test-no-such-network")]
    facts = await host_facts(svc)
    facts.networks.add("vmtui-test-no-such-network")  # get past validation: libvirt must refuse the start
    before = {v.name() for v in system_conn.storagePoolLookupByName(pool).listAllVolumes(0)}
    with pytest.raises(VmtuiError) as ei:
        await create_vm(svc, spec, facts=facts)
    msg = str(ei.value)
    assert "start the installation failed" in msg and "vmtui-test-no-such-network" in msg
    assert "Everything created so far was removed" in msg
    assert {v.name() for v in system_conn.storagePoolLookupByName(pool).listAllVolumes(0)} == before
    assert name not in [d.name() for d in system_conn.listAllDomains(0)]


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


async def test_url_install_boots_the_tree_kernel(svc, system_conn, pool, tiny_guest_files, domains, serial_console,
                                                 tmp_path):
    """A local 'install tree' over HTTP: the kernel/initrd are fetched, uploaded
    into the pool, booted directly, and deleted once QEMU has loaded them."""
    tree = tmp_path / "tree"
    (tree / "images" / "pxeboot").mkdir(parents=True)
    shutil.copy(tiny_guest_files.kernel, tree / "images" / "pxeboot" / "vmlinuz")
    shutil.copy(tiny_guest_files.initrd, tree / "images" / "pxeboot" / "initrd.img")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(tree)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/"
        name = unique("url")
        domains.append(name)
        spec = tiny_spec(name, pool, install=InstallSource(kind="url", url=url, kernel_args=guest.DEFAULT_CMDLINE))
        await create_vm(svc, spec)
    finally:
        server.shutdown()
        server.server_close()
    dom = system_conn.lookupByName(name)
    live = dom_xml(system_conn, name)
    assert live.findtext("os/cmdline") == guest.DEFAULT_CMDLINE
    assert live.findtext("os/kernel").startswith(str(IMAGES / pool / f"vmtui-{name}-"))
    con = serial_console(dom)
    con.wait_ready(timeout=120)
    vols = [v.name() for v in system_conn.storagePoolLookupByName(pool).listAllVolumes(0)]
    assert vols == [f"{name}.qcow2"]  # the uploaded kernel/initrd are gone
    final = dom_xml(system_conn, name, inactive=True)
    assert final.find("os/kernel") is None


@pytest.mark.parametrize("secure", [True, False])
async def test_uefi_vm_starts(svc, system_conn, pool, boot_iso, domains, secure):
    caps = await host_caps(svc)
    if not caps.uefi or (secure and not caps.secure_boot):
        missing("no (Secure Boot) UEFI firmware on this host (ovmf)")
    name = unique("uefi")
    domains.append(name)
    spec = tiny_spec(name, pool, machine="q35", cdrom_bus="sata", firmware="uefi", secure_boot=secure)
    uuid = await create_vm(svc, spec, caps=caps)
    dom = system_conn.lookupByUUIDString(uuid)
    assert dom.isActive()
    assert dom_xml(system_conn, name, inactive=True).find("os").get("firmware") == "efi"
    live = dom_xml(system_conn, name)  # libvirt picks the firmware at start
    loader = live.find("os/loader")
    assert live.find("os/nvram") is not None
    if secure:
        assert loader.get("secure") == "yes" and live.find("features/smm").get("state") == "on"
    else:
        assert loader.get("secure") in (None, "no")
        assert not re.search(r"secboot|\.ms\.|snakeoil", loader.text), loader.text


async def test_host_caps_from_libvirt(svc):
    caps = await host_caps(svc)
    assert caps.from_libvirt and "qemu" in caps.virt_types
    assert caps.emulator and caps.emulator.startswith("/")
    assert set(caps.machines) == {"pc", "q35"} and caps.canonical_machines["q35"].startswith("pc-q35")
    assert caps.cpu_mode_supported("qemu", "host-passthrough") is False
    assert caps.cpu_mode_supported("qemu", "host-model") is True
    assert caps.uefi and caps.cpus and caps.memory_total_kib


def _define_golden(conn, path: Path, name: str) -> str:
    root = ET.fromstring(path.read_text())
    root.set("type", "qemu")
    cpu = root.find("cpu")
    if cpu.get("mode") == "host-passthrough":
        cpu.attrib = {"mode": "host-model"}
    for feat in root.findall("features/hyperv"):
        root.find("features").remove(feat)
    root.find("name").text = name
    root.remove(root.find("uuid"))
    xml = ET.tostring(root, encoding="unicode")
    return conn.defineXML(xml).XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)


@pytest.mark.parametrize("golden", sorted(p.name for p in GOLDEN.glob("*-*.xml") if not p.name.startswith("domcaps")))
def test_golden_xml_is_accepted_by_libvirt(system_conn, domains, golden):
    """Every builder golden file (as a TCG domain) defines on the real libvirtd,
    and the metadata survives."""
    name = unique("golden")
    domains.append(name)
    out = ET.fromstring(_define_golden(system_conn, GOLDEN / golden, name))
    meta = out.find("metadata")
    assert meta.find(f"{{{NS_VMTUI}}}vmtui/{{{NS_VMTUI}}}os") is not None
    src = ET.fromstring((GOLDEN / golden).read_text())
    if src.find(f"metadata/{{{NS_LIBOSINFO}}}libosinfo") is not None:
        assert meta.find(f"{{{NS_LIBOSINFO}}}libosinfo/{{{NS_LIBOSINFO}}}os") is not None


def _vmtui(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.pop("LIBVIRT_DEFAULT_URI", None)
    return subprocess.run([sys.executable, "-m", "vmtui", *args], capture_output=True, text=True, env=env,
                          timeout=300, input=stdin)


def _normalized(root: ET.Element, name: str) -> str:
    root = ET.fromstring(ET.tostring(root))
    root.remove(root.find("uuid"))
    root.find("name").text = "X"
    for d in root.iter("disk"):
        src = d.find("source")
        if src is not None and src.get("file"):
            src.set("file", src.get("file").replace(name, "X"))
    for iface in root.iter("interface"):
        for tag in ("mac",):
            for el in iface.findall(tag):
                iface.remove(el)
    for el in root.iter("seclabel"):
        el.clear()
    return ET.canonicalize(ET.tostring(root, encoding="unicode"), strip_text=True)


def test_cli_create_export_and_recreate(system_conn, pool, boot_iso, domains, tmp_path):
    name = unique("cli")
    copy_name = unique("copy")
    domains.extend([name, copy_name])
    spec_file = tmp_path / "vm.yaml"
    spec_file.write_text(dump_spec(tiny_spec(name, pool, install=InstallSource(kind="iso",
                                                                                           iso=str(boot_iso)),
                                             title="Made by the CLI")))

    # --dry-run: XML and virt-install line, nothing created
    out = _vmtui("create", "--from", str(spec_file), "-c", URI, "--dry-run")
    assert out.returncode == 0, out.stderr
    assert "<on_reboot>destroy</on_reboot>" in out.stdout and "virt-install --connect qemu:///system" in out.stdout
    assert name not in [d.name() for d in system_conn.listAllDomains(0)]

    out = _vmtui("create", "--from", str(spec_file), "-c", URI, "-q")
    assert out.returncode == 0, out.stderr
    uuid = system_conn.lookupByName(name).UUIDString()
    assert out.stdout.strip() == f"Created VM '{name}' (UUID {uuid})"
    assert system_conn.lookupByName(name).isActive()

    # the same spec again: the name is taken, the volume exists -> exit 2, with lines
    out = _vmtui("create", "--from", str(spec_file), "-c", URI)
    assert out.returncode == 2
    assert f"{spec_file}:2: name: A VM named '{name}' already exists on this host" in out.stderr
    assert "Traceback" not in out.stderr

    # export -> create under another name -> an equivalent domain
    out = _vmtui("export", name, "-c", URI)
    assert out.returncode == 0, out.stderr
    exported = load_spec(out.stdout)
    assert exported.title == "Made by the CLI" and exported.disks[0].pool == pool
    copy_file = tmp_path / "copy.yaml"
    copy_file.write_text(out.stdout.replace(f"name: {name}", f"name: {copy_name}"))
    out = _vmtui("create", "--from", str(copy_file), "-c", URI, "-q")
    assert out.returncode == 0, out.stderr
    a = dom_xml(system_conn, name, inactive=True)
    b = dom_xml(system_conn, copy_name, inactive=True)
    assert _normalized(a, name) == _normalized(b, copy_name)
    va = storage.find_volume(system_conn, f"{pool}/{name}.qcow2")
    vb = storage.find_volume(system_conn, f"{pool}/{copy_name}.qcow2")
    assert (va.capacity, va.format) == (vb.capacity, vb.format)

    # errors: unknown domain, bad spec
    out = _vmtui("export", "vmtui-test-no-such-vm", "-c", URI)
    assert out.returncode == 1 and "vmtui-test-no-such-vm" in out.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nmemroy: 2G\n")
    out = _vmtui("create", "--from", str(bad), "-c", URI)
    assert out.returncode == 2 and f"{bad}:2: memroy: unknown key 'memroy' (did you mean 'memory'?)" in out.stderr


async def test_export_spec_of_created_vm(svc, system_conn, pool, boot_iso, domains):
    name = unique("exp")
    domains.append(name)
    spec = tiny_spec(name, pool, start_install=False,
                     disks=[DiskSpec(pool=pool, size=64 * MiB),
                            DiskSpec(pool=pool, size=16 * MiB, format="raw", provisioning="thick", bus="sata")])
    await create_vm(svc, spec)
    assert not system_conn.lookupByName(name).isActive()
    got = export_spec(system_conn, name)
    assert got.install == spec.install
    assert [(d.mode, d.pool, d.size, d.format, d.provisioning, d.bus) for d in got.disks] == [
        ("new", pool, 64 * MiB, "qcow2", "thin", "virtio"), ("new", pool, 16 * MiB, "raw", "thick", "sata")]
    assert (got.machine, got.virt_type, got.cdrom_bus, got.memory_mib) == ("pc", "qemu", "ide", 256)


