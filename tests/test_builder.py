"""Domain XML from a VmSpec (install and final phases), the virt-install line,
and the way back (spec_from_domain_xml). No libvirt needed.

Golden files live in tests/data/builder/: ``CASE-install.xml`` /
``CASE-final.xml`` and ``CASE.virt-install.txt``. XML is compared in
canonical form (attribute order and indentation do not matter). To
regenerate after an intended change: ``VMTUI_REGEN_GOLDEN=1 pytest
tests/test_builder.py`` and review the diff.
"""

from __future__ import annotations

import os
import shlex
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path

import pytest

from vmtui.core.create import builder
from vmtui.core.xml import domxml
from vmtui.core.create.builder import (
    NS_LIBOSINFO,
    NS_VMTUI,
    BuildError,
    ResolvedDisk,
    build_domain_xml,
    disk_target,
    install_kernel_args,
    offline_disks,
    plan_disks,
)
from vmtui.core.create.spec_from_xml import spec_from_domain_xml
from vmtui.core.create.virt_install import virt_install_command, virt_install_cmdline
from vmtui.core.host.domcaps import HostCaps, Loader
from vmtui.core.create.osinfo import OsInfo
from vmtui.core.create.vmspec import DiskSpec, InstallSource, NicSpec, VmSpec

DATA = Path(__file__).parent / "data" / "builder"
REGEN = bool(os.environ.get("VMTUI_REGEN_GOLDEN"))
UUID = "6f1c0e4e-3d2a-4c5b-9e8f-0a1b2c3d4e5f"
GIB = 1024 ** 3

DEBIAN = OsInfo(id="http://debian.org/debian/12", short_id="debian12", short_ids=("debian12",),
                name="Debian 12", family="linux", distro="debian", version="12", virtio=True, uefi=True)
FEDORA = OsInfo(id="http://fedoraproject.org/fedora/39", short_id="fedora39", short_ids=("fedora39",),
                name="Fedora 39", family="linux", distro="fedora", version="39", virtio=True, uefi=True,
                is_anaconda=True)
WIN11 = OsInfo(id="http://microsoft.com/win/11", short_id="win11", short_ids=("win11",), name="Windows 11",
               family="winnt", distro="win", version="10.0", virtio=False, uefi=True)

CAPS = HostCaps(arch="x86_64", kvm_available=True, virt_types=["kvm", "qemu"],
                emulator="/usr/bin/qemu-system-x86_64", efi_autoselect=True, secure_boot=True,
                uefi_loaders=[Loader("/usr/share/OVMF/OVMF_CODE_4M.secboot.fd", True),
                              Loader("/usr/share/OVMF/OVMF_CODE_4M.fd", False)],
                cpus=8, memory_total_kib=16 * 1024 * 1024, from_libvirt=True)
CAPS_NO_AUTOSELECT = replace(CAPS, efi_autoselect=False)


def spec(**kw) -> VmSpec:
    base = dict(name="vm1", os="debian12", memory_mib=2048, vcpus=2)
    base.update(kw)
    return VmSpec(**base)


# name -> (spec, os, caps, phases)
CASES = {
    # ISO install, thin qcow2, q35, BIOS, NAT network
    "iso-thin-q35": (spec(install=InstallSource(kind="iso", iso="/srv/iso/debian-12.iso")), DEBIAN, CAPS,
                     ("install", "final")),
    # ISO install, thick raw, i440fx, IDE CD-ROM, bridge; TCG with host-model
    "iso-thick-pc-bridge": (spec(machine="pc", virt_type="qemu", cpu_mode="host-model", cdrom_bus="ide",
                                 install=InstallSource(kind="iso", iso="default/debian-12.iso"),
                                 disks=[DiskSpec(size=10 * GIB, format="raw", provisioning="thick")],
                                 nics=[NicSpec(kind="bridge", source="br0", mac="52:54:00:AA:BB:CC")]),
                            DEBIAN, CAPS, ("install", "final")),
    # URL install of an Anaconda OS: kernel/initrd/cmdline with inst.repo
    "url-fedora": (spec(os="fedora39", install=InstallSource(kind="url",
                                                             url="https://mirror.example.org/fedora/39/os/",
                                                             kernel_args="console=ttyS0 inst.text")),
                   FEDORA, CAPS, ("install", "final")),
    # PXE on an isolated network (NIC added from install.network)
    "pxe": (spec(install=InstallSource(kind="pxe", network="provisioning"), nics=[]), DEBIAN, CAPS,
            ("install", "final")),
    # import an existing image; macvtap NIC
    "import-macvtap": (spec(install=InstallSource(kind="import", image="/srv/images/appliance.qcow2"),
                            disks=[], nics=[NicSpec(kind="macvtap", source="eno1", mode="vepa")]),
                       DEBIAN, CAPS, ("final",)),
    # cloud image as backing file of a new overlay
    "cloud": (spec(install=InstallSource(kind="cloud", image="default/debian-12-genericcloud.qcow2"),
                   disks=[DiskSpec(size=30 * GIB)]), DEBIAN, CAPS, ("final",)),
    # UEFI with Secure Boot through firmware autoselection
    "uefi-secure-autoselect": (spec(firmware="uefi", secure_boot=True,
                                    install=InstallSource(kind="iso", iso="/srv/iso/debian-12.iso")),
                               DEBIAN, CAPS, ("final",)),
    # plain UEFI on i440fx: Secure Boot builds ruled out
    "uefi-plain-pc": (spec(firmware="uefi", machine="pc", cdrom_bus="ide",
                           install=InstallSource(kind="iso", iso="/srv/iso/debian-12.iso")),
                      DEBIAN, CAPS, ("install", "final")),
    # UEFI through an explicit loader (no autoselection on this host)
    "uefi-loader": (spec(firmware="uefi", secure_boot=True,
                         install=InstallSource(kind="iso", iso="/srv/iso/debian-12.iso")),
                    DEBIAN, CAPS_NO_AUTOSELECT, ("final",)),
    # Windows: SATA disk, e1000e, local time, Hyper-V enlightenments, media kept
    "windows": (spec(name="win-desk", os="win11", memory_mib=4096, firmware="uefi", secure_boot=True,
                     install=InstallSource(kind="iso", iso="/srv/iso/Win11.iso"),
                     disks=[DiskSpec(size=64 * GIB, bus="sata", cache="none")],
                     nics=[NicSpec(model="e1000e")]),
                WIN11, CAPS, ("install", "final")),
    # SPICE, no tablet/serial, SCSI disks + existing volume, custom CPU with topology,
    # two NICs, max memory, title/description with XML specials
    "spice-scsi-custom": (spec(name="db <primary> & co", title="Ünïcode & <title>",
                               description="multi\nline & 'quotes'", memory_mib=4096, max_memory_mib=8192,
                               vcpus=4, cpu_mode="custom", cpu_model="Haswell-noTSX", sockets=1, cores=2,
                               threads=2, graphics="spice", graphics_listen="0.0.0.0", tablet=False,
                               serial_console=False, cdrom_bus="scsi",
                               install=InstallSource(kind="iso", iso="/srv/iso/debian-12.iso"),
                               disks=[DiskSpec(size=20 * GIB, bus="scsi"),
                                      DiskSpec(mode="existing", path="/dev/vg0/data", bus="scsi"),
                                      DiskSpec(size=5 * GIB, bus="virtio", name="scratch.qcow2")],
                               nics=[NicSpec(), NicSpec(kind="network", source="isolated", model="e1000e",
                                                        mac="52:54:00:12:34:56")]),
                          DEBIAN, CAPS, ("install", "final")),
    # define only: media stays, the disk boots first, the CD-ROM when it is empty
    "iso-define-only": (spec(start_install=False, install=InstallSource(kind="iso", iso="/srv/iso/debian-12.iso")),
                        DEBIAN, CAPS, ("final",)),
    # unknown OS, no caps (test driver): no emulator, no libosinfo metadata
    "generic-nocaps": (spec(os="generic", install=InstallSource(kind="none"), graphics="none"), None, None,
                       ("final",)),
}


def _canon(xml: str) -> str:
    return ET.canonicalize(xml_data=xml, strip_text=True)


def _build(name: str, phase: str) -> str:
    s, os_, caps, _ = CASES[name]
    kw = {}
    if phase == "install" and s.install.kind == "url":
        kw = dict(install_kernel="/var/lib/libvirt/images/vmtui-vm1-kernel",
                  install_initrd="/var/lib/libvirt/images/vmtui-vm1-initrd")
    return build_domain_xml(s, caps, offline_disks(s), phase=phase, os=os_, uuid=UUID, **kw)


def _golden(path: Path, text: str) -> str:
    if REGEN or not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        if not REGEN:
            pytest.fail(f"golden file {path.name} was missing: written, check it and run again")
    return path.read_text()


PHASE_CASES = [(n, ph) for n, (_, _, _, phases) in CASES.items() for ph in phases]


@pytest.mark.parametrize("name,phase", PHASE_CASES, ids=[f"{n}-{p}" for n, p in PHASE_CASES])
def test_golden_xml(name, phase):
    xml = _build(name, phase)
    expected = _golden(DATA / f"{name}-{phase}.xml", xml)
    assert _canon(xml) == _canon(expected)
    # what we write, our own parser reads
    ov = domxml.parse_domain(xml)
    assert ov.name == CASES[name][0].name


@pytest.mark.parametrize("name", list(CASES))
def test_golden_virt_install(name):
    s, os_, _, _ = CASES[name]
    line = virt_install_cmdline(s, offline_disks(s), os=os_) + "\n"
    expected = _golden(DATA / f"{name}.virt-install.txt", line)
    assert line == expected
    assert shlex.split(line) == virt_install_command(s, offline_disks(s), os=os_)


def _root(xml: str) -> ET.Element:
    return ET.fromstring(xml)


def test_install_and_final_phases_of_an_iso_install():
    inst, final = _root(_build("iso-thin-q35", "install")), _root(_build("iso-thin-q35", "final"))
    assert [b.get("dev") for b in inst.findall("os/boot")] == ["cdrom", "hd"]
    assert [b.get("dev") for b in final.findall("os/boot")] == ["hd"]
    assert inst.findtext("on_reboot") == "destroy" and final.findtext("on_reboot") == "restart"
    assert inst.findtext("uuid") == final.findtext("uuid") == UUID
    assert inst.findtext("name") == final.findtext("name")
    cd_inst = [d for d in inst.iter("disk") if d.get("device") == "cdrom"]
    cd_final = [d for d in final.iter("disk") if d.get("device") == "cdrom"]
    assert cd_inst[0].find("source").get("file") == "/srv/iso/debian-12.iso"
    assert len(cd_final) == 1 and cd_final[0].find("source") is None  # drive kept, media ejected
    assert cd_final[0].find("readonly") is not None


def test_windows_keeps_install_media_and_uses_localtime():
    final = _root(_build("windows", "final"))
    cd = [d for d in final.iter("disk") if d.get("device") == "cdrom"][0]
    assert cd.find("source").get("file") == "/srv/iso/Win11.iso"
    assert final.find("clock").get("offset") == "localtime"
    assert final.find("features/hyperv") is not None
    assert final.find("devices/interface/model").get("type") == "e1000e"
    assert final.find("devices/memballoon").get("model") == "none"


def test_url_install_boots_kernel_with_inst_repo():
    inst = _root(_build("url-fedora", "install"))
    assert inst.findtext("os/kernel") == "/var/lib/libvirt/images/vmtui-vm1-kernel"
    assert inst.findtext("os/initrd") == "/var/lib/libvirt/images/vmtui-vm1-initrd"
    assert inst.findtext("os/cmdline") == ("inst.repo=https://mirror.example.org/fedora/39/os/ "
                                           "console=ttyS0 inst.text")
    assert inst.findall("os/boot") == []
    final = _root(_build("url-fedora", "final"))
    assert final.find("os/kernel") is None and final.find("os/cmdline") is None


def test_url_install_needs_kernel():
    s = CASES["url-fedora"][0]
    with pytest.raises(BuildError):
        build_domain_xml(s, CAPS, offline_disks(s), phase="install", os=FEDORA)


def test_kernel_url_arg_per_distro():
    def args(os_id, os_=None, kernel_args=""):
        s = spec(os=os_id, install=InstallSource(kind="url", url="http://m/tree", kernel_args=kernel_args))
        return install_kernel_args(s, os_)

    assert args("fedora39", FEDORA) == "inst.repo=http://m/tree"
    assert args("rhel9.2") == "inst.repo=http://m/tree"
    assert args("centos-stream9") == "inst.repo=http://m/tree"
    assert args("rhel6.10") == "method=http://m/tree"
    assert args("opensuse15.5") == "install=http://m/tree"
    assert args("debian12", DEBIAN) == ""
    assert args("debian12", DEBIAN, "auto=true") == "auto=true"
    # the user's own inst.repo wins
    assert args("fedora39", FEDORA, "inst.repo=http://other/x") == "inst.repo=http://other/x"


def test_pxe_boots_network_then_disk():
    inst = _root(_build("pxe", "install"))
    assert [b.get("dev") for b in inst.findall("os/boot")] == ["network", "hd"]
    assert inst.find("devices/interface/source").get("network") == "provisioning"
    assert [b.get("dev") for b in _root(_build("pxe", "final")).findall("os/boot")] == ["hd"]


def test_import_and_cloud_disks():
    s = CASES["import-macvtap"][0]
    disks = plan_disks(s)
    assert [(d.mode, d.path) for d in disks] == [("existing", "/srv/images/appliance.qcow2")]
    final = _root(_build("import-macvtap", "final"))
    iface = final.find("devices/interface")
    assert iface.get("type") == "direct"
    assert iface.find("source").attrib == {"dev": "eno1", "mode": "vepa"}
    c = plan_disks(CASES["cloud"][0])
    assert c[0].backing == "default/debian-12-genericcloud.qcow2" and c[0].format == "qcow2"
    assert c[0].name == "vm1.qcow2"
    # no new disk given: one overlay, as big as the image
    c2 = plan_disks(spec(install=InstallSource(kind="cloud", image="/srv/cloud.img"), disks=[]))
    assert len(c2) == 1 and c2[0].size == 0 and c2[0].backing == "/srv/cloud.img"


def test_firmware_variants():
    auto = _root(_build("uefi-secure-autoselect", "final"))
    assert auto.find("os").get("firmware") == "efi"
    feats = {f.get("name"): f.get("enabled") for f in auto.findall("os/firmware/feature")}
    assert feats == {"secure-boot": "yes", "enrolled-keys": "yes"}
    assert auto.find("features/smm").get("state") == "on"
    loader = _root(_build("uefi-loader", "final"))
    assert loader.find("os").get("firmware") is None
    lo = loader.find("os/loader")
    assert lo.text == "/usr/share/OVMF/OVMF_CODE_4M.secboot.fd"
    assert lo.get("secure") == "yes" and lo.get("type") == "pflash" and lo.get("readonly") == "yes"
    plain = _root(_build("uefi-plain-pc", "final"))
    feats = {f.get("name"): f.get("enabled") for f in plain.findall("os/firmware/feature")}
    assert feats == {"secure-boot": "no", "enrolled-keys": "no"} and plain.find("features/smm") is None
    cmd = virt_install_command(CASES["uefi-plain-pc"][0])
    assert cmd[cmd.index("--boot") + 1] == "uefi,firmware.feature0.name=secure-boot,firmware.feature0.enabled=no"
    bios = _root(_build("iso-thin-q35", "final"))
    assert bios.find("os/loader") is None and bios.find("os").get("firmware") is None


def test_i440fx_vs_q35_controllers():
    q35 = _root(_build("iso-thin-q35", "final"))
    pc = _root(_build("iso-thick-pc-bridge", "final"))
    assert q35.find("os/type").get("machine") == "q35" and pc.find("os/type").get("machine") == "pc"
    ports = [c for c in q35.iter("controller") if c.get("model") == "pcie-root-port"]
    assert len(ports) >= builder.SPARE_PCIE_PORTS + 1
    assert not [c for c in pc.iter("controller") if c.get("model") == "pcie-root-port"]
    assert [c for c in q35.iter("controller") if c.get("model") == "qemu-xhci"]


def test_target_names_per_bus():
    assert [disk_target("vd", i) for i in (0, 1, 25, 26, 27, 701, 702)] == \
        ["vda", "vdb", "vdz", "vdaa", "vdab", "vdzz", "vdaaa"]
    s = spec(machine="pc", cdrom_bus="ide", install=InstallSource(kind="iso", iso="/x.iso"),
             disks=[DiskSpec(size=GIB), DiskSpec(size=GIB, bus="sata"), DiskSpec(size=GIB, bus="scsi"),
                    DiskSpec(size=GIB, bus="ide"), DiskSpec(size=GIB)])
    root = _root(build_domain_xml(s, CAPS, offline_disks(s), phase="install", os=DEBIAN))
    targets = [(d.get("device"), d.find("target").get("dev"), d.find("target").get("bus"))
               for d in root.iter("disk")]
    assert targets == [("disk", "vda", "virtio"), ("disk", "sda", "sata"), ("disk", "sdb", "scsi"),
                       ("disk", "hda", "ide"), ("disk", "vdb", "virtio"), ("cdrom", "hdb", "ide")]
    assert [c.get("model") for c in root.iter("controller") if c.get("type") == "scsi"] == ["virtio-scsi"]


def test_thin_and_thick_disk_formats():
    thin = _root(_build("iso-thin-q35", "final")).find("devices/disk")
    thick = _root(_build("iso-thick-pc-bridge", "final")).find("devices/disk")
    assert thin.find("driver").get("type") == "qcow2"
    assert thin.find("source").get("file") == "/var/lib/libvirt/images/vm1.qcow2"
    assert thick.find("driver").get("type") == "raw"
    assert thick.find("source").get("file") == "/var/lib/libvirt/images/vm1.img"


def test_metadata_namespaces():
    root = _root(_build("iso-thin-q35", "final"))
    lo = root.find(f"metadata/{{{NS_LIBOSINFO}}}libosinfo/{{{NS_LIBOSINFO}}}os")
    assert lo.get("id") == "http://debian.org/debian/12"
    ours = root.find(f"metadata/{{{NS_VMTUI}}}vmtui")
    assert ours.find(f"{{{NS_VMTUI}}}os").get("id") == "debian12"
    assert ours.find(f"{{{NS_VMTUI}}}install").attrib == {"kind": "iso", "iso": "/srv/iso/debian-12.iso"}
    xml = _build("iso-thin-q35", "final")
    assert 'xmlns:libosinfo="http://libosinfo.org/xmlns/libvirt/domain/1.0"' in xml
    assert 'xmlns:vmtui="https://vmtui.dev/xmlns/vmtui/1"' in xml
    assert domxml.get_metadata(xml, NS_VMTUI) is not None
    generic = _root(_build("generic-nocaps", "final"))
    assert generic.find(f"metadata/{{{NS_LIBOSINFO}}}libosinfo") is None
    assert generic.find("devices/emulator") is None


def test_special_characters_survive():
    xml = _build("spice-scsi-custom", "final")
    root = _root(xml)
    assert root.findtext("name") == "db <primary> & co"
    assert root.findtext("title") == "Ünïcode & <title>"
    assert root.findtext("description") == "multi\nline & 'quotes'"
    disk = root.find("devices/disk/source")
    assert disk.get("file") == "/var/lib/libvirt/images/db <primary> & co.qcow2"
    ov = domxml.parse_domain(xml)
    assert ov.title == "Ünïcode & <title>"


def test_cpu_topology_and_memory():
    root = _root(_build("spice-scsi-custom", "final"))
    assert root.find("cpu").get("mode") == "custom"
    assert root.findtext("cpu/model") == "Haswell-noTSX"
    assert root.find("cpu/topology").attrib == {"sockets": "1", "dies": "1", "cores": "2", "threads": "2"}
    assert root.findtext("memory") == "8192" and root.findtext("currentMemory") == "4096"
    assert builder.topology(spec(vcpus=8, cores=4)) == (2, 4, 1)
    assert builder.topology(spec(vcpus=8, sockets=2)) == (2, 4, 1)
    assert builder.topology(spec(vcpus=8)) is None


def test_define_only_keeps_media_and_boots_disk_first():
    root = _root(_build("iso-define-only", "final"))
    assert [b.get("dev") for b in root.findall("os/boot")] == ["hd", "cdrom"]
    cd = [d for d in root.iter("disk") if d.get("device") == "cdrom"][0]
    assert cd.find("source").get("file") == "/srv/iso/debian-12.iso"
    assert root.findtext("on_reboot") == "restart"


def test_no_uuid_without_argument_and_bad_phase():
    s = CASES["iso-thin-q35"][0]
    assert _root(build_domain_xml(s, CAPS, offline_disks(s))).find("uuid") is None
    with pytest.raises(BuildError):
        build_domain_xml(s, CAPS, offline_disks(s), phase="later")
    with pytest.raises(BuildError):
        build_domain_xml(s, CAPS, [], phase="final")


def test_resolved_disks_are_used():
    s = spec(install=InstallSource(kind="iso", iso="default/x.iso"),
             disks=[DiskSpec(size=GIB), DiskSpec(mode="existing", path="default/data.img")])
    disks = [ResolvedDisk("/pool/vm1.qcow2", "qcow2"), ResolvedDisk("/dev/sdb", "raw", type="block"),
             ResolvedDisk("/isos/x.iso", "raw", device="cdrom")]
    root = _root(build_domain_xml(s, CAPS, disks, phase="install"))
    sources = [(d.get("type"), d.find("source").attrib) for d in root.iter("disk")]
    assert sources == [("file", {"file": "/pool/vm1.qcow2"}), ("block", {"dev": "/dev/sdb"}),
                       ("file", {"file": "/isos/x.iso"})]
    cmd = virt_install_command(s, disks)
    assert cmd[cmd.index("--cdrom") + 1] == "/isos/x.iso"
    assert "vol=default/data.img,bus=virtio" in cmd


def test_plan_disks_names():
    s = spec(name="web", disks=[DiskSpec(size=GIB), DiskSpec(size=GIB, format="raw"), DiskSpec(size=GIB,
                                                                                                  name="web.img"),
                                DiskSpec(size=GIB, pool="fast")])
    assert [(d.pool, d.name) for d in plan_disks(s)] == [("default", "web.qcow2"), ("default", "web-1.img"),
                                                          ("default", "web.img"), ("fast", "web-2.qcow2")]
    assert s.disks[0].name is None  # the spec itself is untouched


def test_virt_install_details():
    cmd = virt_install_command(CASES["iso-thick-pc-bridge"][0], offline_disks(CASES["iso-thick-pc-bridge"][0]))
    assert cmd[:3] == ["virt-install", "--name", "vm1"]
    disk = cmd[cmd.index("--disk") + 1]
    assert "sparse=no" in disk and "format=raw" in disk and "size=10" in disk
    assert "bridge=br0,model=virtio,mac=52:54:00:aa:bb:cc" in cmd
    mv = virt_install_command(CASES["import-macvtap"][0])
    assert "--import" in mv and "type=direct,source=eno1,source_mode=vepa,model=virtio" in mv
    pxe = virt_install_command(CASES["pxe"][0])
    assert "--pxe" in pxe
    url = virt_install_command(CASES["url-fedora"][0], os=FEDORA)
    assert url[url.index("--location") + 1] == "https://mirror.example.org/fedora/39/os/"
    assert url[url.index("--extra-args") + 1] == "console=ttyS0 inst.text"
    sb = virt_install_command(CASES["uefi-secure-autoselect"][0])
    assert sb[sb.index("--boot") + 1].startswith("uefi,")
    weird = virt_install_command(CASES["spice-scsi-custom"][0])
    assert weird[weird.index("--metadata") + 1].startswith("title=Ünïcode & <title>,description=")
    assert "--serial" in weird and "--noautoconsole" in weird
    comma = virt_install_command(spec(title="a, b", install=InstallSource(kind="iso", iso="/x,y.iso")))
    assert comma[comma.index("--metadata") + 1] == 'title="a, b"'
    assert comma[comma.index("--cdrom") + 1] == "/x,y.iso"
    cloud = virt_install_command(CASES["cloud"][0])
    assert "backing_store=/var/lib/libvirt/images/debian-12-genericcloud.qcow2" in cloud[cloud.index("--disk") + 1]


@pytest.mark.parametrize("name", [n for n in CASES if n != "generic-nocaps"])
def test_spec_from_domain_xml_round_trip(name):
    s, os_, _, _ = CASES[name]
    back = spec_from_domain_xml(_build(name, "final"))
    want = replace(s, disks=[], nics=[replace(n, mac=None) for n in builder.plan_nics(s)])
    got = replace(back, disks=[], nics=back.nics)
    if s.cpu_mode != "custom":
        want.cpu_model = None
    want.start_install = True  # a choice at creation time, not part of the domain
    assert got == want
    # disks come back as existing paths, in order, with bus and format
    planned = plan_disks(s)
    assert [(d.path, d.bus, d.format) for d in back.disks] == \
        [(r.path, p.bus, p.format if p.mode == "new" else r.format)
         for p, r in zip(planned, offline_disks(s)) if r.device == "disk"
         and not (s.install.kind == "import" and p.path == s.install.image)]


def test_spec_from_foreign_domain():
    xml = (Path(__file__).parent / "data" / "domxml" / "q35-uefi-kvm.xml").read_text()
    s = spec_from_domain_xml(xml)
    assert s.machine == "q35" and s.firmware == "uefi" and s.virt_type == "kvm"
    assert s.disks and all(d.mode == "existing" for d in s.disks)
    assert s.install.kind in ("iso", "none", "cdrom")
    with pytest.raises(domxml.DomainXMLError):
        spec_from_domain_xml("<network/>")
