"""Tests for vmtui.core.xml.domxml (pure XML parsing/editing, no libvirt needed).

Golden files live in tests/data/domxml/: ``NAME.xml`` plus ``NAME.json`` holding
``dataclasses.asdict(parse_domain(xml))``. The JSON was generated from the parser once
and checked by hand (the hand checks are also spelled out below). To regenerate after
an intended change: ``VMTUI_REGEN_GOLDEN=1 pytest tests/test_domxml.py`` and review
the diff.
"""

from __future__ import annotations

import dataclasses
import json
import os
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from vmtui.core.xml.domxml import (
    DiskInfo,
    DomainOverview,
    DomainXMLError,
    GraphicsInfo,
    NicInfo,
    disk_sources,
    get_metadata,
    parse_domain,
    parse_memory,
    set_description,
    set_metadata_element,
    set_title,
)

DATA = Path(__file__).parent / "data" / "domxml"
GOLDEN = sorted(p.stem for p in DATA.glob("*.xml"))
VMTUI_NS = "https://vmtui.example.org/xmlns/1"
LIBOSINFO_NS = "http://libosinfo.org/xmlns/libvirt/domain/1.0"
QEMU_NS = "http://libvirt.org/schemas/domain/qemu/1.0"


def load(name: str) -> str:
    return (DATA / f"{name}.xml").read_text()


def minimal(body: str = "", root_attrs: str = "type='test'") -> str:
    return (
        f"<domain {root_attrs}><name>t</name><memory>1024</memory>"
        f"<os><type>hvm</type></os>{body}</domain>"
    )


# ---------------------------------------------------------------------------
# golden files
# ---------------------------------------------------------------------------


def test_golden_files_present():
    assert set(GOLDEN) >= {"q35-uefi-kvm", "i440fx-bios", "test-driver", "aarch64-kernel-boot"}


@pytest.mark.parametrize("name", GOLDEN)
def test_golden_json(name):
    got = dataclasses.asdict(parse_domain(load(name)))
    path = DATA / f"{name}.json"
    if os.environ.get("VMTUI_REGEN_GOLDEN"):
        path.write_text(json.dumps(got, indent=2) + "\n")
        pytest.skip(f"regenerated {path.name}")
    expected = json.loads(path.read_text())
    assert got == expected


def test_q35_uefi_overview():
    ov = parse_domain(load("q35-uefi-kvm"))
    assert ov.name == "win11-dev"
    assert ov.uuid == "3f1c2a9e-5b7d-4c2e-9a61-0d8e7b4f2c10"
    assert ov.domain_type == "kvm"
    assert ov.title == "Windows 11 dev box"
    assert ov.description.startswith("Build machine") and "\nDo not delete" in ov.description
    assert (ov.os_type, ov.arch, ov.machine) == ("hvm", "x86_64", "pc-q35-7.2")
    assert ov.firmware == "UEFI"
    assert ov.loader == "/usr/share/OVMF/OVMF_CODE_4M.ms.fd"
    assert ov.nvram == "/var/lib/libvirt/qemu/nvram/win11-dev_VARS.fd"
    assert ov.secure_boot is True
    assert ov.boot_devices == []  # virt-manager style: per-device <boot order>
    assert ov.kernel is ov.initrd is ov.cmdline is None
    assert ov.cpu_mode == "host-passthrough"
    assert ov.cpu_model is None
    assert ov.topology == {"sockets": 1, "dies": 1, "cores": 4, "threads": 2}
    assert (ov.vcpus, ov.max_vcpus) == (4, 8)
    assert ov.memory_kib == 8 * 1024 * 1024
    assert ov.current_memory_kib == 6 * 1024 * 1024
    assert ov.video == "qxl"
    assert ov.emulator == "/usr/bin/qemu-system-x86_64"
    assert (ov.on_poweroff, ov.on_reboot, ov.on_crash) == ("destroy", "restart", "destroy")
    assert ov.metadata_keys == [LIBOSINFO_NS]


def test_q35_uefi_devices():
    ov = parse_domain(load("q35-uefi-kvm"))
    vda, cd = ov.disks
    assert vda == DiskInfo(
        device="disk", type="file",
        source="/var/lib/libvirt/images/win11-dev.qcow2",
        path="/var/lib/libvirt/images/win11-dev.qcow2",
        pool=None, volume=None, target="vda", bus="virtio",
        driver_type="qcow2", cache="none",
        readonly=False, shareable=False, transient=False,
        boot_order=1, backing="/var/lib/libvirt/images/win11-base.qcow2",
    )
    assert not vda.is_removable_media
    assert cd.device == "cdrom" and cd.is_removable_media
    assert cd.path == cd.source == "/var/lib/libvirt/images/Win11_23H2_English_x64.iso"
    assert (cd.target, cd.bus, cd.readonly, cd.boot_order, cd.backing) == ("sda", "sata", True, 2, None)

    net, br, mv = ov.nics
    assert net == NicInfo(type="network", mac="52:54:00:6b:3c:58", source="default",
                          source_mode=None, model="virtio", target="vnet12", link_state="up")
    assert net.kind_label == "network 'default'"
    assert (br.source, br.model, br.target, br.link_state) == ("br0", "e1000e", "vnet13", "down")
    assert br.kind_label == "bridge br0"
    assert (mv.type, mv.source, mv.source_mode, mv.target) == ("direct", "enp3s0", "bridge", "macvtap0")
    assert mv.kind_label == "macvtap enp3s0 (bridge)"

    spice, vnc = ov.graphics
    assert spice == GraphicsInfo(type="spice", port=5901, autoport=True, listen="127.0.0.1",
                                 password_set=True, tls_port=None)
    assert (vnc.type, vnc.port, vnc.listen, vnc.password_set) == ("vnc", 5902, "0.0.0.0", False)

    assert [(s.kind, s.type, s.target_type, s.port, s.tty) for s in ov.serials] == [
        ("serial", "pty", "isa-serial", 0, "/dev/pts/5"),
        ("console", "pty", "serial", 0, "/dev/pts/5"),
    ]


def test_i440fx_bios():
    ov = parse_domain(load("i440fx-bios"))
    assert ov.firmware == "BIOS" and ov.loader is None and ov.nvram is None and not ov.secure_boot
    assert ov.machine == "pc-i440fx-7.2"
    assert ov.boot_devices == ["network", "hd"]
    assert ov.cpu_mode == "host-model" and ov.topology is None
    assert ov.memory_kib == 4 * 1024 * 1024  # 4 GiB
    assert ov.current_memory_kib == 2_048_000_000 // 1024  # 2048 MB (powers of 1000)
    assert ov.on_crash == "coredump-restart"
    assert ov.metadata_keys == [VMTUI_NS]

    vol, blk, cd, rbd, shared, nbd = ov.disks
    assert (vol.type, vol.source, vol.pool, vol.volume, vol.path) == (
        "volume", "default/db-01-root.qcow2", "default", "db-01-root.qcow2", None)
    assert (vol.driver_type, vol.cache) == ("qcow2", "writeback")
    assert (blk.type, blk.source, blk.path, blk.driver_type, blk.cache) == (
        "block", "/dev/vg0/db-01-data", "/dev/vg0/db-01-data", "raw", "none")
    assert (cd.device, cd.source, cd.path, cd.readonly, cd.target, cd.bus) == (
        "cdrom", "", None, True, "hda", "ide")
    assert cd.is_removable_media
    assert (rbd.type, rbd.source, rbd.path) == (
        "network", "rbd://ceph-mon1.example.org:6789/rbd-pool/db-01-wal", None)
    assert (shared.readonly, shared.shareable, shared.bus, shared.path) == (
        True, True, "scsi", "/srv/shared/cluster-quorum.img")
    assert nbd.source == "nbd:///scratch?socket=/run/nbd/scratch.sock" and nbd.transient

    (nic,) = ov.nics
    assert nic.kind_label == "network 'backend'" and nic.target is None
    (vnc,) = ov.graphics
    assert (vnc.port, vnc.autoport, vnc.listen) == (None, True, None)
    assert [s.tty for s in ov.serials] == [None, None]
    assert ov.video == "cirrus"


def test_test_driver_domain():
    ov = parse_domain(load("test-driver"))
    assert (ov.name, ov.domain_type, ov.arch, ov.machine) == ("test", "test", "i686", None)
    assert ov.firmware == "BIOS" and ov.boot_devices == ["hd"]
    assert (ov.vcpus, ov.max_vcpus) == (2, 2)
    assert (ov.memory_kib, ov.current_memory_kib) == (8388608, 2097152)
    assert ov.cpu_mode is None and ov.topology is None and ov.emulator is None
    (disk,) = ov.disks
    assert (disk.path, disk.driver_type, disk.target) == ("/guest/diskimage1", None, "vda")
    (nic,) = ov.nics
    assert (nic.source, nic.target, nic.model) == ("default", "testnet0", None)
    assert ov.graphics == [] and ov.serials == [] and ov.video is None
    assert ov.title is None and ov.description is None and ov.metadata_keys == []


def test_aarch64_direct_kernel_boot():
    ov = parse_domain(load("aarch64-kernel-boot"))
    assert ov.firmware == "UEFI"  # detected from the AAVMF loader path (type='rom')
    assert not ov.secure_boot
    assert ov.kernel == "/var/lib/libvirt/boot/vmlinuz-6.1"
    assert ov.initrd == "/var/lib/libvirt/boot/initrd.img-6.1"
    assert ov.cmdline == "console=ttyAMA0 root=/dev/vda1 rw"
    assert (ov.cpu_mode, ov.cpu_model) == ("custom", "cortex-a57")
    assert ov.memory_kib == 1536 * 1024  # unit='M' is MiB
    assert ov.current_memory_kib == 1048577  # 1073741825 bytes, rounded up
    user, hostdev = ov.nics
    assert user.kind_label == "usermode networking" and user.source is None
    assert hostdev.source == "0000:03:10.2"
    assert hostdev.kind_label == "host device 0000:03:10.2"
    (vnc,) = ov.graphics
    assert vnc.listen == "/run/libvirt/qemu/arm-kernel-test.vnc" and vnc.port is None
    assert ov.serials[0].target_type == "system-serial"


def test_disk_sources_matches_parse_domain():
    for name in GOLDEN:
        xml = load(name)
        assert disk_sources(xml) == parse_domain(xml).disks
    assert disk_sources(minimal()) == []


def test_from_xml_classmethod_and_bytes_input():
    xml = load("test-driver")
    assert DomainOverview.from_xml(xml) == parse_domain(xml.encode())


# ---------------------------------------------------------------------------
# smaller parsing cases
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("os_xml", "firmware", "secure"),
    [
        ("<os firmware='efi'><type>hvm</type></os>", "UEFI", False),
        ("<os><type>hvm</type><loader type='pflash'>/opt/fw/CODE.fd</loader></os>", "UEFI", False),
        ("<os><type>hvm</type><loader readonly='yes' type='pflash' secure='yes'>/usr/share/edk2/ovmf/OVMF_CODE.secboot.fd</loader></os>",
         "UEFI", True),
        ("<os><type>hvm</type><loader>/usr/share/qemu/edk2-x86_64-code.fd</loader></os>", "UEFI", False),
        ("<os><type>hvm</type><loader type='rom'>/usr/share/seabios/bios.bin</loader></os>", "BIOS", False),
        ("<os firmware='bios'><type>hvm</type></os>", "BIOS", False),
        ("<os firmware='efi'><type>hvm</type><firmware><feature enabled='no' name='secure-boot'/></firmware>"
         "<loader secure='yes' type='pflash'>/usr/share/OVMF/OVMF_CODE_4M.secboot.fd</loader></os>", "UEFI", False),
        ("<os firmware='efi'><type>hvm</type><firmware><feature enabled='yes' name='secure-boot'/></firmware></os>",
         "UEFI", True),
    ],
)
def test_firmware_detection(os_xml, firmware, secure):
    xml = f"<domain type='kvm'><name>fw</name><memory>1</memory>{os_xml}</domain>"
    ov = parse_domain(xml)
    assert (ov.firmware, ov.secure_boot) == (firmware, secure)


def test_nvram_source_form():
    xml = minimal().replace(
        "<os><type>hvm</type></os>",
        "<os firmware='efi'><type>hvm</type><nvram type='file'><source file='/n/VARS.fd'/></nvram></os>",
    )
    assert parse_domain(xml).nvram == "/n/VARS.fd"


def test_minimal_defaults():
    ov = parse_domain(minimal())
    assert (ov.name, ov.uuid, ov.domain_type) == ("t", None, "test")
    assert (ov.vcpus, ov.max_vcpus) == (1, 1)
    assert (ov.memory_kib, ov.current_memory_kib) == (1024, 1024)
    assert ov.disks == ov.nics == ov.graphics == ov.serials == []
    assert ov.on_poweroff is None and ov.topology is None


def test_cpu_topology_defaults_dies_and_keeps_clusters():
    ov = parse_domain(minimal("<cpu mode='host-model'><topology sockets='2' cores='3' threads='1'/></cpu>"))
    assert ov.topology == {"sockets": 2, "dies": 1, "cores": 3, "threads": 1}
    ov = parse_domain(minimal("<cpu><model>Skylake</model><topology sockets='1' dies='1' clusters='2' cores='2' threads='1'/></cpu>"))
    assert ov.cpu_mode == "custom"  # libvirt's default mode when a model is given
    assert ov.topology == {"sockets": 1, "dies": 1, "cores": 2, "threads": 1, "clusters": 2}


def test_graphics_variants():
    ov = parse_domain(minimal(
        "<devices>"
        "<graphics type='spice' port='-1' tlsPort='-1'><listen type='network' network='default'/></graphics>"
        "<graphics type='spice' port='5930' tlsPort='5931' autoport='no'><listen type='none'/></graphics>"
        "<graphics type='vnc'><listen type='socket' socket='/run/vnc.sock'/></graphics>"
        "<graphics type='egl-headless'/>"
        "</devices>"
    ))
    a, b, c, d = ov.graphics
    assert (a.port, a.tls_port, a.autoport, a.listen) == (None, None, True, "default")
    assert (b.port, b.tls_port, b.autoport, b.listen) == (5930, 5931, False, None)
    assert c.listen == "/run/vnc.sock"
    assert (d.type, d.port, d.autoport, d.listen, d.password_set) == ("egl-headless", None, False, None, False)


@pytest.mark.parametrize(
    ("nic", "label"),
    [
        (NicInfo("network", None, "default"), "network 'default'"),
        (NicInfo("bridge", None, "br0"), "bridge br0"),
        (NicInfo("direct", None, "eth0", source_mode="bridge"), "macvtap eth0 (bridge)"),
        (NicInfo("direct", None, "eth0"), "macvtap eth0"),
        (NicInfo("user", None, None), "usermode networking"),
        (NicInfo("ethernet", None, None, target="tap3"), "ethernet tap3"),
        (NicInfo("vhostuser", None, "/tmp/vhost.sock"), "vhost-user /tmp/vhost.sock"),
        (NicInfo("mcast", None, "230.0.0.1:5558"), "mcast 230.0.0.1:5558"),
    ],
)
def test_kind_label(nic, label):
    assert nic.kind_label == label


def test_nic_other_types():
    ov = parse_domain(minimal(
        "<devices>"
        "<interface type='vhostuser'><mac address='52:54:00:00:00:01'/>"
        "<source type='unix' path='/tmp/vhost1.sock' mode='client'/><model type='virtio'/></interface>"
        "<interface type='mcast'><source address='230.0.0.1' port='5558'/></interface>"
        "<interface type='ethernet'><target dev='tap3' managed='no'/></interface>"
        "</devices>"
    ))
    vu, mc, eth = ov.nics
    assert (vu.source, vu.source_mode, vu.kind_label) == ("/tmp/vhost1.sock", None, "vhost-user /tmp/vhost1.sock")
    assert (mc.source, mc.mac) == ("230.0.0.1:5558", None)
    assert eth.kind_label == "ethernet tap3"


def test_disk_dir_and_network_without_host():
    ov = parse_domain(minimal(
        "<devices>"
        "<disk type='dir' device='floppy'><source dir='/srv/floppy'/><target dev='fda' bus='fdc'/></disk>"
        "<disk type='network' device='cdrom'><source protocol='https' name='/isos/x.iso'>"
        "<host name='mirror.example.org'/></source><target dev='sdc' bus='sata'/><readonly/></disk>"
        "<disk device='lun' type='block'><source dev='/dev/sdz'/><target dev='sdd' bus='scsi'/></disk>"
        "<disk><source file='/x.img'/><target dev='hdb'/></disk>"
        "</devices>"
    ))
    fd, https, lun, bare = ov.disks
    assert (fd.device, fd.source, fd.path, fd.is_removable_media) == ("floppy", "/srv/floppy", None, True)
    assert (https.source, https.path) == ("https://mirror.example.org/isos/x.iso", None)
    assert (lun.device, lun.path) == ("lun", "/dev/sdz")
    assert (bare.device, bare.type, bare.path, bare.bus, bare.driver_type) == ("disk", "file", "/x.img", None, None)


def test_metadata_keys_dedup_and_order():
    ov = parse_domain(minimal(
        "<metadata><a:x xmlns:a='urn:a'/><b:y xmlns:b='urn:b'/><a:z xmlns:a='urn:a'/><plain/></metadata>"
    ))
    assert ov.metadata_keys == ["urn:a", "urn:b"]


# ---------------------------------------------------------------------------
# memory units
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "unit", "kib"),
    [
        ("1024", None, 1024),
        ("1024", "", 1024),
        ("2048", "b", 2),
        ("2048", "bytes", 2),
        ("1025", "bytes", 2),  # rounded up like libvirt
        ("0", "bytes", 0),
        ("1024", "KB", 1000),
        ("3", "KB", 3),  # 3000 bytes -> 2.93 KiB -> 3
        ("7", "k", 7),
        ("7", "KiB", 7),
        ("1", "MB", 977),  # 1_000_000 / 1024 = 976.56
        ("1", "M", 1024),
        ("1", "MiB", 1024),
        ("2", "GB", 1_953_125),
        ("2", "G", 2 * 1024**2),
        ("2", "GiB", 2 * 1024**2),
        ("1", "TB", 976_562_500),
        ("1", "T", 1024**3),
        ("1", "TiB", 1024**3),
        ("1", "gib", 1024**2),  # libvirt ignores case
        (" 16 ", "MiB", 16 * 1024),
    ],
)
def test_parse_memory_units(value, unit, kib):
    assert parse_memory(value, unit) == kib


@pytest.mark.parametrize("unit", ["X", "KiBB", "Mi", "kb2", "bit", "GiBs"])
def test_parse_memory_unknown_unit(unit):
    with pytest.raises(DomainXMLError, match="unknown memory unit"):
        parse_memory("1", unit)


@pytest.mark.parametrize("value", ["", "1.5", "-1", "abc", "0x10"])
def test_parse_memory_bad_value(value):
    with pytest.raises(DomainXMLError, match="invalid memory value"):
        parse_memory(value, "KiB")


# ---------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("xml", "match"),
    [
        ("<domain type='kvm'><name>x</name>", "malformed domain XML"),
        ("not xml at all", "malformed domain XML"),
        ("<domain><name>a</name></domain><extra/>", "malformed domain XML"),
        ("", "empty"),
        ("   \n", "empty"),
        ("<network><name>default</name></network>", r"root element is <network>, expected <domain>"),
        ("<domain xmlns='urn:other'><name>x</name></domain>", "expected <domain>"),
        ("<domain type='kvm'><memory>1</memory></domain>", "no <name>"),
        (minimal().replace("<memory>1024</memory>", "<memory unit='parsecs'>1</memory>"),
         r"<memory>: unknown memory unit 'parsecs'"),
        (minimal("<currentMemory unit='KiB'>lots</currentMemory>"), "<currentMemory>: invalid memory value"),
        (minimal("<vcpu>many</vcpu>"), "invalid <vcpu> count"),
    ],
)
def test_parse_errors(xml, match):
    with pytest.raises(DomainXMLError, match=match):
        parse_domain(xml)


def test_error_is_value_error_and_editors_raise_too():
    assert issubclass(DomainXMLError, ValueError)
    for call in (
        lambda: set_title("<oops", "t"),
        lambda: set_description("<pool/>", "d"),
        lambda: get_metadata("<domain>", VMTUI_NS),
        lambda: set_metadata_element("", VMTUI_NS, "vmtui", None),
        lambda: disk_sources("<<"),
    ):
        with pytest.raises(DomainXMLError):
            call()


# ---------------------------------------------------------------------------
# editing round trips
# ---------------------------------------------------------------------------


def canon(xml: str, drop_top=(), drop_ns=()) -> str:
    """C14N of ``xml`` without the given top-level tags / metadata namespaces.

    Whitespace-only text is stripped, so re-indentation does not count as a change,
    and C14N 2.0 declares namespaces where they are used, so moving an xmlns
    declaration to the root element is not a change either.
    """
    root = ET.fromstring(xml)
    for el in [c for c in root if c.tag in drop_top]:
        root.remove(el)
    meta = root.find("metadata")
    if meta is not None:
        for el in [c for c in meta if c.tag.split("}")[0].lstrip("{") in drop_ns]:
            meta.remove(el)
        if len(meta) == 0 and "metadata" in drop_top:
            root.remove(meta)
    return ET.canonicalize(ET.tostring(root, encoding="unicode"), strip_text=True)


@pytest.mark.parametrize("name", GOLDEN)
def test_set_title_roundtrip(name):
    xml = load(name)
    out = set_title(xml, "Brand new title")
    assert parse_domain(out).title == "Brand new title"
    assert canon(out, drop_top={"title"}) == canon(xml, drop_top={"title"})
    ov_before, ov_after = parse_domain(xml), parse_domain(out)
    ov_before.title = ov_after.title
    assert ov_before == ov_after
    # setting it twice doesn't duplicate it; '' removes it
    assert ET.fromstring(set_title(out, "again")).findall("title")[0].text == "again"
    assert len(ET.fromstring(set_title(out, "again")).findall("title")) == 1
    removed = set_title(out, "")
    assert parse_domain(removed).title is None
    assert canon(removed) == canon(xml, drop_top={"title"})


def test_set_title_position_and_indentation():
    out = set_title(load("test-driver"), "A & B <test>")
    lines = out.splitlines()
    assert lines[1:4] == [
        "  <name>test</name>",
        "  <uuid>6695eb01-f6a4-8304-79aa-97f2502e193f</uuid>",
        "  <title>A &amp; B &lt;test&gt;</title>",
    ]
    assert lines[4] == "  <memory unit=\"KiB\">8388608</memory>"
    assert parse_domain(out).title == "A & B <test>"


def test_set_title_rejects_newlines():
    with pytest.raises(DomainXMLError, match="newlines"):
        set_title(load("test-driver"), "two\nlines")


@pytest.mark.parametrize("name", GOLDEN)
def test_set_description_roundtrip(name):
    xml = load(name)
    text = "Line one\nLine two with <markup> & 'quotes'"
    out = set_description(xml, text)
    assert parse_domain(out).description == text
    assert canon(out, drop_top={"description"}) == canon(xml, drop_top={"description"})
    removed = set_description(out, "")
    assert ET.fromstring(removed).find("description") is None
    assert canon(removed) == canon(xml, drop_top={"description"})


def test_description_goes_after_title():
    out = set_description(load("q35-uefi-kvm"), "new")
    tags = [c.tag for c in ET.fromstring(out)][:5]
    assert tags == ["name", "uuid", "title", "description", "metadata"]


def test_edits_preserve_qemu_prefix_libosinfo_and_comments():
    xml = load("q35-uefi-kvm").replace("<devices>", "<devices>\n    <!-- managed by ansible -->", 1)
    out = set_title(xml, "x")
    assert "<qemu:commandline>" in out and "<qemu:arg value=\"-global\" />" in out
    assert 'xmlns:qemu="http://libvirt.org/schemas/domain/qemu/1.0"' in out
    assert "<libosinfo:os id=\"http://microsoft.com/win/11\" />" in out
    assert "<!-- managed by ansible -->" in out
    root = ET.fromstring(out)
    assert root.find(f"{{{QEMU_NS}}}commandline") is not None
    assert root.get("id") == "7" and root.get("type") == "kvm"


def _our_element(group: str) -> ET.Element:
    el = ET.Element("vmtui")
    ET.SubElement(el, "group").text = group
    ET.SubElement(el, "pinned", {"value": "yes"})
    return el


def test_set_metadata_adds_next_to_foreign_metadata():
    xml = load("q35-uefi-kvm")
    out = set_metadata_element(xml, VMTUI_NS, "vmtui", _our_element("dev"))
    assert parse_domain(out).metadata_keys == [LIBOSINFO_NS, VMTUI_NS]
    assert "<vmtui:vmtui>" in out and "<libosinfo:libosinfo>" in out
    got = get_metadata(out, VMTUI_NS)
    assert got.tag == f"{{{VMTUI_NS}}}vmtui"
    assert got.find(f"{{{VMTUI_NS}}}group").text == "dev"
    assert got.find(f"{{{VMTUI_NS}}}pinned").get("value") == "yes"
    # nothing else changed, including the libosinfo element
    assert canon(out, drop_ns={VMTUI_NS}) == canon(xml)
    assert ET.canonicalize(ET.tostring(get_metadata(out, LIBOSINFO_NS)), strip_text=True) == \
        ET.canonicalize(ET.tostring(get_metadata(xml, LIBOSINFO_NS)), strip_text=True)


def test_set_metadata_replaces_and_removes_only_ours():
    xml = load("i440fx-bios")
    assert get_metadata(xml, VMTUI_NS).find(f"{{{VMTUI_NS}}}group").text == "databases"
    foreign = ET.Element(f"{{{LIBOSINFO_NS}}}libosinfo")
    ET.SubElement(foreign, f"{{{LIBOSINFO_NS}}}os", {"id": "http://debian.org/debian/12"})
    with_foreign = set_metadata_element(xml, LIBOSINFO_NS, "libosinfo", foreign)

    out = set_metadata_element(with_foreign, VMTUI_NS, "vmtui", _our_element("web"))
    assert [c.text for c in get_metadata(out, VMTUI_NS)] == ["web", None]
    assert len([c for c in ET.fromstring(out).find("metadata")]) == 2
    assert canon(out, drop_ns={VMTUI_NS}) == canon(with_foreign, drop_ns={VMTUI_NS})
    assert get_metadata(out, LIBOSINFO_NS)[0].get("id") == "http://debian.org/debian/12"

    removed = set_metadata_element(out, VMTUI_NS, "vmtui", None)
    assert get_metadata(removed, VMTUI_NS) is None
    assert parse_domain(removed).metadata_keys == [LIBOSINFO_NS]
    assert canon(removed) == canon(with_foreign, drop_ns={VMTUI_NS})


def test_set_metadata_creates_and_drops_metadata_element():
    xml = load("test-driver")
    out = set_metadata_element(xml, VMTUI_NS, "vmtui", _our_element("lab"))
    root = ET.fromstring(out)
    assert [c.tag for c in root][:4] == ["name", "uuid", "metadata", "memory"]
    assert "\n  <metadata>\n    <vmtui:vmtui>" in out
    assert canon(out, drop_top={"metadata"}) == canon(xml)
    # removing our only element removes the (now empty) <metadata> too
    back = set_metadata_element(out, VMTUI_NS, "vmtui", None)
    assert ET.fromstring(back).find("metadata") is None
    assert canon(back) == canon(xml)
    # removing something that is not there is a no-op
    assert canon(set_metadata_element(xml, VMTUI_NS, "vmtui", None)) == canon(xml)


def test_set_metadata_collapses_duplicates_and_accepts_qualified_element():
    xml = minimal(
        "<metadata><v:a xmlns:v='%s'/><o:keep xmlns:o='urn:other'/><v:b xmlns:v='%s'/></metadata>"
        % (VMTUI_NS, VMTUI_NS)
    )
    new = ET.Element(f"{{{VMTUI_NS}}}vmtui", {"version": "1"})
    out = set_metadata_element(xml, VMTUI_NS, "vmtui", new)
    meta = ET.fromstring(out).find("metadata")
    assert [c.tag for c in meta] == [f"{{{VMTUI_NS}}}vmtui", "{urn:other}keep"]
    assert new.tag == f"{{{VMTUI_NS}}}vmtui" and len(new) == 0  # caller's element untouched


def test_set_metadata_does_not_mutate_callers_element():
    el = _our_element("x")
    set_metadata_element(load("test-driver"), VMTUI_NS, "vmtui", el)
    assert el.tag == "vmtui" and el[0].tag == "group"


@pytest.mark.parametrize(
    ("uri", "prefix", "element", "match"),
    [
        ("", "vmtui", None, "namespace URI"),
        (VMTUI_NS, "", None, "invalid namespace prefix"),
        (VMTUI_NS, "ns0", None, "invalid namespace prefix"),
        (VMTUI_NS, "xmlfoo", None, "invalid namespace prefix"),
        (VMTUI_NS, "has space", None, "invalid namespace prefix"),
        (VMTUI_NS, "vmtui", ET.Element("{urn:elsewhere}x"), "expected"),
    ],
)
def test_set_metadata_argument_errors(uri, prefix, element, match):
    with pytest.raises(DomainXMLError, match=match):
        set_metadata_element(load("test-driver"), uri, prefix, element)


def test_get_metadata_absent():
    assert get_metadata(load("test-driver"), VMTUI_NS) is None
    assert get_metadata(load("q35-uefi-kvm"), VMTUI_NS) is None
    assert get_metadata(load("q35-uefi-kvm"), LIBOSINFO_NS) is not None


def test_combined_edits_keep_everything_else():
    xml = load("q35-uefi-kvm")
    out = set_metadata_element(
        set_description(set_title(xml, "T2"), "D2"), VMTUI_NS, "vmtui", _our_element("g")
    )
    assert canon(out, drop_top={"title", "description"}, drop_ns={VMTUI_NS}) == \
        canon(xml, drop_top={"title", "description"})
    before, after = parse_domain(xml), parse_domain(out)
    assert (after.title, after.description) == ("T2", "D2")
    assert after.disks == before.disks and after.nics == before.nics
    assert after.graphics == before.graphics and after.serials == before.serials
