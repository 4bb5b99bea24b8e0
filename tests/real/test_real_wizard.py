"""The wizard's promises on the real libvirtd + QEMU (issue 13, part 4).

* The virt-install line of the preview, run as ``virt-install --print-xml
  --dry-run`` (Debian's ``virtinst`` package), describes the devices that
  matter as vmtui's own XML does: disks, CD-ROMs, NICs, display, firmware,
  boot order, memory, CPUs, title and a multi-line description.
* On this machine kind the capabilities offer KVM but a KVM guest cannot
  start ("Could not access KVM kernel module", scripts/setup-host.sh): the
  creation fails, leaves nothing behind, and the same VM switched to QEMU
  (TCG) is created and runs.
* The host's interfaces come from libvirt with their kinds: the bridge of a
  network made here is listed as a bridge, and a bridge NIC naming a missing
  one is refused before anything is made.

Pools, networks and domains are named with the per-run prefix and removed.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import xml.etree.ElementTree as ET

import libvirt
import pytest

from tests.prereq import missing
from tests.real.test_real_create import (  # noqa: F401 (fixtures)
    MiB, boot_iso, tiny_spec, unique,
)
from vmtui.core.create import osinfo
from vmtui.core.create.installer import (
    InvalidSpec, KvmStartFailed, create_vm, host_facts, preview, switch_to_tcg,
)
from vmtui.core.create.vmspec import DiskSpec, InstallSource, NicSpec, VmSpec
from vmtui.core.host.domcaps import host_caps
from vmtui.core.host.networks import host_interfaces

pytestmark = pytest.mark.real


@pytest.fixture
def bridge_net(system_conn):
    """A transient isolated network (a bridge, no addresses): (network name, bridge name)."""
    tag = f"{os.getpid() % 100000}{os.urandom(1).hex()}"
    name, bridge = f"vmtui-test-{os.getpid()}-wiznet-{tag}", f"vtw{tag}"[:15]
    root = ET.Element("network")
    ET.SubElement(root, "name").text = name
    ET.SubElement(root, "bridge", name=bridge, stp="off")
    net = system_conn.networkCreateXML(ET.tostring(root, encoding="unicode"))
    yield name, bridge
    try:
        net.destroy()
    except libvirt.libvirtError:
        pass


@pytest.fixture
def virt_install():
    path = shutil.which("virt-install")
    if path is None:
        missing("virt-install is not installed (Debian package virtinst; scripts/setup-host.sh installs it)")
    return path


def _devices(root: ET.Element) -> dict:
    """The facts of a domain XML both vmtui and virt-install must agree on."""
    def disk(d):
        src = d.find("source")
        drv = d.find("driver")
        return (d.get("device"), src.get("file") if src is not None else None, d.find("target").get("bus"),
                drv.get("type") if drv is not None and d.get("device") == "disk" else None)

    def nic(i):
        src = i.find("source")
        model = i.find("model")
        mac = i.find("mac")
        return (i.get("type"), dict(src.attrib) if src is not None else {},
                model.get("type") if model is not None else None, mac.get("address") if mac is not None else None)

    os_el = root.find("os")
    firmware = os_el.get("firmware") or ("efi" if os_el.find("loader") is not None else None)
    graphics = [(g.get("type"), g.get("listen") or g.find("listen").get("address")) for g in root.iter("graphics")]
    return {
        "type": root.get("type"),
        "title": root.findtext("title"),
        "description": root.findtext("description"),
        "memory KiB": _kib(root.find("memory")),
        "vcpus": int(root.findtext("vcpu")),
        "cpu mode": root.find("cpu").get("mode"),
        "machine is q35": "q35" in os_el.find("type").get("machine", ""),
        "firmware": firmware,
        "boot": [b.get("dev") for b in os_el.findall("boot")],
        "disks": [disk(d) for d in root.iter("disk")],
        "nics": [nic(i) for i in root.iter("interface")],
        "graphics": graphics,
        "serial console": root.find("devices/console") is not None,
        "tablet": any(i.get("type") == "tablet" for i in root.iter("input")),
    }


def _kib(el: ET.Element) -> int:
    unit = (el.get("unit") or "KiB").lower()
    factor = {"kib": 1, "k": 1, "mib": 1024, "m": 1024, "gib": 1024 * 1024, "g": 1024 * 1024}[unit]
    return int(el.text) * factor


def _dry_run(cmdline: str) -> list[ET.Element]:
    """The domain XML(s) virt-install prints for the line (install phase, then final)."""
    argv = shlex.split(cmdline) + ["--print-xml", "--dry-run"]
    run = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, f"virt-install refused the line:\n{cmdline}\n{run.stderr}"
    text = run.stdout.strip()
    return [ET.fromstring("<domain" + part) for part in text.split("<domain")[1:]]


def _specs(pool_name: str, iso: str, net: str, bridge: str) -> dict[str, VmSpec]:
    return {
        # an ISO install: 64 MiB thin disk (size=0.0625, not 0.062), a NIC on a network
        "iso install": tiny_spec(unique("vi"), pool_name, machine="q35", cdrom_bus="sata", os="debian11",
                                 install=InstallSource(kind="iso", iso=iso), graphics="vnc",
                                 disks=[DiskSpec(pool=pool_name, size=64 * MiB)],
                                 nics=[NicSpec("network", net, mac="52:54:00:12:34:56")]),
        # define only, UEFI: one --boot; a multi-line description with commas and quotes
        "uefi define-only": tiny_spec(unique("vu"), pool_name, machine="q35", cdrom_bus="sata", firmware="uefi",
                                      start_install=False, title="Tëst, <title>",
                                      description="line one, with a comma\nline two: \"quoted\", it's",
                                      install=InstallSource(kind="iso", iso=iso),
                                      disks=[DiskSpec(pool=pool_name, size=1536 * MiB, format="raw",
                                                      provisioning="thick")]),
        # an existing volume, a bridge NIC and macvtap, an OS virt-install does not know (generic)
        "import": tiny_spec(unique("vm"), pool_name, machine="q35", os="debian99", graphics="vnc",
                            install=InstallSource(kind="import", image=f"{pool_name}/image.qcow2"), disks=[],
                            nics=[NicSpec("bridge", bridge, model="e1000e"),
                                  NicSpec("macvtap", "eth0", mode="vepa")]),
    }


@pytest.mark.parametrize("case", ["iso install", "uefi define-only", "import"])
async def test_virt_install_builds_the_devices_of_our_xml(svc, system_conn, pool, boot_iso, bridge_net,
                                                          virt_install, case):
    from vmtui.core import storage

    net, bridge = bridge_net
    spec = _specs(pool, f"{pool}/vmtui-test.iso", net, bridge)[case]
    if case == "import":
        storage.create_volume(system_conn, pool, "image.qcow2", 64 * MiB, "qcow2", "thin")
    final_xml, install_xml, cmdline = await preview(svc, spec, osdb=osinfo.default_db())
    if case == "import":
        assert " --osinfo generic " in cmdline  # debian99 is unknown: never passed through
    printed = _dry_run(cmdline)
    # an install boots the install-time XML first, then the definition; define-only has the definition only
    ours = [ET.fromstring(install_xml), ET.fromstring(final_xml)] if spec.start_install and \
        install_xml != final_xml else [ET.fromstring(final_xml)]
    assert len(printed) == len(ours), cmdline
    for mine, theirs in zip(ours, printed):
        a, b = _devices(mine), _devices(theirs)
        # virt-install makes up a MAC where none was asked for; libvirt does the same at define
        b["nics"] = [n if m[3] else n[:3] + (None,) for m, n in zip(a["nics"], b["nics"])] + b["nics"][len(a["nics"]):]
        assert a == b, f"{cmdline}\nvmtui: {a}\nvirt-install: {b}"
    if case == "iso install":
        assert "size=0.0625," in cmdline
    if case == "uefi define-only":
        assert shlex.split(cmdline).count("--boot") == 1
        assert _devices(printed[0])["description"] == "line one, with a comma\nline two: \"quoted\", it's"


async def test_kvm_start_failure_is_offered_as_tcg_and_the_vm_runs(svc, system_conn, pool, boot_iso, domains):
    caps = await host_caps(svc)
    if not caps.kvm_available:
        missing("the capabilities offer no KVM here: the KVM start failure cannot happen")
    name = unique("kvm")
    domains.append(name)
    spec = tiny_spec(name, pool, virt_type="kvm", cpu_mode="host-passthrough")
    before = {v.name() for v in system_conn.storagePoolLookupByName(pool).listAllVolumes(0)}
    try:
        await create_vm(svc, spec, caps=caps)
    except KvmStartFailed as err:
        assert "Could not access KVM kernel module" in err.cause and "Everything created so far was removed" \
            in err.cause
    else:
        pytest.skip("KVM works on this machine: the start does not fail")
    assert name not in [d.name() for d in system_conn.listAllDomains(0)]
    assert {v.name() for v in system_conn.storagePoolLookupByName(pool).listAllVolumes(0)} == before
    tcg = switch_to_tcg(spec, caps)
    assert (tcg.virt_type, tcg.cpu_mode) == ("qemu", "host-model")
    uuid = await create_vm(svc, tcg, caps=caps)
    dom = system_conn.lookupByUUIDString(uuid)
    assert dom.isActive() and ET.fromstring(dom.XMLDesc(0)).get("type") == "qemu"


async def test_host_bridges_are_listed_and_a_missing_one_refused(svc, system_conn, pool, boot_iso, bridge_net,
                                                                 domains):
    _net, bridge = bridge_net
    found = {i.name: i for i in host_interfaces(system_conn)}
    assert bridge in found and found[bridge].is_bridge, found
    assert "lo" not in found
    facts = await host_facts(svc)
    assert facts.interfaces.get(bridge) == "bridge"
    name = unique("br")
    domains.append(name)
    spec = tiny_spec(name, pool, nics=[NicSpec("bridge", "vmtui-nobr0")])
    with pytest.raises(InvalidSpec) as ei:
        await create_vm(svc, spec, facts=facts)
    assert any(e.field == "nics[0].source" and "no bridge named 'vmtui-nobr0'" in e.message
               for e in ei.value.errors)
    assert name not in [d.name() for d in system_conn.listAllDomains(0)]
