"""vmtui.core.ovf: OVF envelopes, OVA archives, manifests, mapping (no libvirt)."""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from tests.prereq import needs
from vmtui.core import ovf
from vmtui.core.ovf import OvfError

HAVE_QEMU_IMG = shutil.which("qemu-img") is not None

# A VMware-style OVF 1.0 envelope (written for these tests).
OVF1 = """<?xml version="1.0" encoding="UTF-8"?>
<Envelope vmw:buildId="build-1" xmlns="http://schemas.dmtf.org/ovf/envelope/1"
  xmlns:cim="http://schemas.dmtf.org/wbem/wscim/1/common"
  xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1"
  xmlns:rasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData"
  xmlns:vmw="http://www.vmware.com/schema/ovf"
  xmlns:vssd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData"
  xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <References>
    <File ovf:href="web-disk1.vmdk" ovf:id="file1" ovf:size="{size1}"/>
    <File ovf:href="web-disk2.vmdk" ovf:id="file2" ovf:size="{size2}"/>
  </References>
  <DiskSection>
    <Info>Virtual disk information</Info>
    <Disk ovf:capacity="{cap1}" ovf:capacityAllocationUnits="byte * 2^20" ovf:diskId="vmdisk1"
      ovf:fileRef="file1" ovf:format="http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized"/>
    <Disk ovf:capacity="{cap2}" ovf:capacityAllocationUnits="byte" ovf:diskId="vmdisk2"
      ovf:fileRef="file2" ovf:format="http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized"/>
  </DiskSection>
  <NetworkSection>
    <Info>The list of logical networks</Info>
    <Network ovf:name="VM Network"><Description>The VM Network network</Description></Network>
  </NetworkSection>
  <VirtualSystem ovf:id="web-vm">
    <Info>A virtual machine</Info>
    <Name>web server 1</Name>
    <AnnotationSection><Info>note</Info><Annotation>Front web server</Annotation></AnnotationSection>
    <OperatingSystemSection ovf:id="96" vmw:osType="debian11_64Guest">
      <Info>The kind of installed guest operating system</Info>
      <Description>Debian GNU/Linux 11 (64-bit)</Description>
    </OperatingSystemSection>
    <VirtualHardwareSection>
      <Info>Virtual hardware requirements</Info>
      <System>
        <vssd:ElementName>Virtual Hardware Family</vssd:ElementName>
        <vssd:InstanceID>0</vssd:InstanceID>
        <vssd:VirtualSystemType>vmx-13</vssd:VirtualSystemType>
      </System>
      <Item>
        <rasd:AllocationUnits>hertz * 10^6</rasd:AllocationUnits>
        <rasd:ElementName>4 virtual CPU(s)</rasd:ElementName>
        <rasd:InstanceID>1</rasd:InstanceID>
        <rasd:ResourceType>3</rasd:ResourceType>
        <rasd:VirtualQuantity>4</rasd:VirtualQuantity>
      </Item>
      <Item>
        <rasd:AllocationUnits>byte * 2^20</rasd:AllocationUnits>
        <rasd:ElementName>3072MB of memory</rasd:ElementName>
        <rasd:InstanceID>2</rasd:InstanceID>
        <rasd:ResourceType>4</rasd:ResourceType>
        <rasd:VirtualQuantity>3072</rasd:VirtualQuantity>
      </Item>
      <Item>
        <rasd:Address>0</rasd:Address>
        <rasd:ElementName>SCSI controller 0</rasd:ElementName>
        <rasd:InstanceID>3</rasd:InstanceID>
        <rasd:ResourceSubType>VirtualSCSI</rasd:ResourceSubType>
        <rasd:ResourceType>6</rasd:ResourceType>
      </Item>
      <Item>
        <rasd:AddressOnParent>0</rasd:AddressOnParent>
        <rasd:ElementName>Hard disk 1</rasd:ElementName>
        <rasd:HostResource>ovf:/disk/vmdisk1</rasd:HostResource>
        <rasd:InstanceID>4</rasd:InstanceID>
        <rasd:Parent>3</rasd:Parent>
        <rasd:ResourceType>17</rasd:ResourceType>
      </Item>
      <Item>
        <rasd:AddressOnParent>1</rasd:AddressOnParent>
        <rasd:ElementName>Hard disk 2</rasd:ElementName>
        <rasd:HostResource>ovf:/disk/vmdisk2</rasd:HostResource>
        <rasd:InstanceID>5</rasd:InstanceID>
        <rasd:Parent>3</rasd:Parent>
        <rasd:ResourceType>17</rasd:ResourceType>
      </Item>
      <Item>
        <rasd:AddressOnParent>7</rasd:AddressOnParent>
        <rasd:AutomaticAllocation>true</rasd:AutomaticAllocation>
        <rasd:Connection>VM Network</rasd:Connection>
        <rasd:ElementName>Network adapter 1</rasd:ElementName>
        <rasd:InstanceID>6</rasd:InstanceID>
        <rasd:ResourceSubType>VmxNet3</rasd:ResourceSubType>
        <rasd:ResourceType>10</rasd:ResourceType>
      </Item>
      <vmw:Config ovf:required="false" vmw:key="firmware" vmw:value="efi"/>
    </VirtualHardwareSection>
  </VirtualSystem>
</Envelope>
"""

# An OVF 2.0 envelope with StorageItem / EthernetPortItem (written for these tests).
OVF2 = """<?xml version="1.0"?>
<ovf:Envelope xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/2"
  xmlns:rasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData"
  xmlns:sasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_StorageAllocationSettingData"
  xmlns:epasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_EthernetPortAllocationSettingData">
  <ovf:References><ovf:File ovf:id="f1" ovf:href="disk.vmdk"/></ovf:References>
  <ovf:DiskSection><ovf:Info>disks</ovf:Info>
    <ovf:Disk ovf:diskId="d1" ovf:fileRef="f1" ovf:capacity="2" ovf:capacityAllocationUnits="byte * 2^30"/>
  </ovf:DiskSection>
  <ovf:VirtualSystem ovf:id="alpha">
    <ovf:Info>vm</ovf:Info>
    <ovf:OperatingSystemSection ovf:id="94"><ovf:Info>os</ovf:Info></ovf:OperatingSystemSection>
    <ovf:VirtualHardwareSection><ovf:Info>hw</ovf:Info>
      <ovf:Item><rasd:InstanceID>1</rasd:InstanceID><rasd:ResourceType>3</rasd:ResourceType>
        <rasd:VirtualQuantity>2</rasd:VirtualQuantity></ovf:Item>
      <ovf:Item><rasd:AllocationUnits>byte * 2^30</rasd:AllocationUnits><rasd:InstanceID>2</rasd:InstanceID>
        <rasd:ResourceType>4</rasd:ResourceType><rasd:VirtualQuantity>2</rasd:VirtualQuantity></ovf:Item>
      <ovf:Item><rasd:InstanceID>3</rasd:InstanceID><rasd:ResourceType>5</rasd:ResourceType></ovf:Item>
      <ovf:StorageItem><sasd:HostResource>ovf:/disk/d1</sasd:HostResource><sasd:InstanceID>4</sasd:InstanceID>
        <sasd:Parent>3</sasd:Parent><sasd:ResourceType>17</sasd:ResourceType></ovf:StorageItem>
      <ovf:EthernetPortItem><epasd:Connection>lan</epasd:Connection><epasd:InstanceID>5</epasd:InstanceID>
        <epasd:ResourceSubType>E1000</epasd:ResourceSubType><epasd:ResourceType>10</epasd:ResourceType>
      </ovf:EthernetPortItem>
    </ovf:VirtualHardwareSection>
  </ovf:VirtualSystem>
</ovf:Envelope>
"""


def ovf1(size1=100, size2=100, cap1=64, cap2=1024 * 1024 * 32) -> str:
    return OVF1.format(size1=size1, size2=size2, cap1=cap1, cap2=cap2)


# --- units --------------------------------------------------------------------


@pytest.mark.parametrize("text,value", [
    ("byte", 1), ("bytes", 1), ("byte * 2^20", 1024 ** 2), ("byte*2^30", 1024 ** 3), ("byte * 10^6", 10 ** 6),
    ("MegaBytes", 1024 ** 2), ("KiloBytes", 1024), ("GigaBytes", 1024 ** 3), ("MB", 1024 ** 2), (None, 1),
])
def test_units(text, value):
    assert ovf.parse_units(text) == value


@pytest.mark.parametrize("text", ["furlongs", "byte * 3^2", "byte * 2^x"])
def test_bad_units(text):
    with pytest.raises(ValueError, match="unsupported allocation unit"):
        ovf.parse_units(text)


# --- envelopes ----------------------------------------------------------------


def test_parse_ovf1_vmware_style():
    pkg = ovf.parse_envelope(ovf1(), known_os=lambda s: s in ("debian11", "linux"))
    assert pkg.version == "1.x"
    assert pkg.name == "web server 1"
    assert pkg.description == "Front web server"
    assert pkg.vcpus == 4
    assert pkg.memory_mib == 3072
    assert [d.disk_id for d in pkg.disks] == ["vmdisk1", "vmdisk2"]
    assert pkg.disks[0].capacity == 64 * 1024 ** 2  # byte * 2^20
    assert pkg.disks[1].capacity == 32 * 1024 ** 2  # bytes
    assert pkg.disks[0].controller == "scsi"
    assert [(n.network, n.model) for n in pkg.nics] == [("VM Network", "VmxNet3")]
    assert pkg.networks == ["VM Network"]
    assert pkg.os_cim_id == 96 and pkg.os_type == "debian11_64Guest"
    assert pkg.osinfo == "debian11"
    assert pkg.firmware == "uefi"
    assert set(pkg.files) == {"file1", "file2"}


def test_parse_ovf2_storage_and_ethernet_items():
    pkg = ovf.parse_envelope(OVF2)
    assert pkg.version == "2.x"
    assert pkg.name == "alpha"  # no <Name>: the VirtualSystem id
    assert pkg.vcpus == 2
    assert pkg.memory_mib == 2048
    assert len(pkg.disks) == 1 and pkg.disks[0].capacity == 2 * 1024 ** 3
    assert pkg.disks[0].controller == "ide"
    assert [(n.network, n.model) for n in pkg.nics] == [("lan", "E1000")]
    assert pkg.osinfo == "ubuntu-unknown"  # CIM 94, no osinfo-db filter
    assert ovf.parse_envelope(OVF2, known_os=lambda s: s == "linux").osinfo == "linux"
    assert pkg.firmware is None


def test_os_mapping():
    assert ovf.map_os(None, "windows2019srv_64Guest") == "win2k19"
    assert ovf.map_os(None, "ubuntu64Guest", known=lambda s: s == "linux") == "linux"
    assert ovf.map_os(107, "") == "centos-unknown"
    assert ovf.map_os(1, "") == "generic"
    assert ovf.map_os(None, "", "Some Linux thing") == "linux"
    assert ovf.map_os(None, "rhel9_64Guest", known=lambda s: s == "rhel9.0") == "rhel9.0"
    assert ovf.map_os(None, "zzz") == "generic"


@pytest.mark.parametrize("text,match", [
    ("<Envelope", "malformed XML at line 1"),
    ("<foo/>", "not an OVF 1.x/2.x <Envelope>"),
    ('<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1"/>', "no <VirtualSystem>"),
    ('<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1"><VirtualSystem/></Envelope>',
     "no <VirtualHardwareSection>"),
    ('<!DOCTYPE x [<!ENTITY a "b">]><Envelope/>', "DTD or entities"),
])
def test_malformed_envelopes(text, match):
    with pytest.raises(OvfError, match=match) as info:
        ovf.parse_envelope(text, "bad.ovf")
    assert "bad.ovf" in str(info.value)  # the error names where


def test_envelope_errors_name_the_element():
    bad_cap = ovf1().replace('ovf:capacity="64"', 'ovf:capacity="lots"')
    with pytest.raises(OvfError, match="capacity of disk 'vmdisk1' is not a whole number"):
        ovf.parse_envelope(bad_cap)
    bad_ref = ovf1().replace("ovf:/disk/vmdisk2", "ovf:/disk/nope")
    with pytest.raises(OvfError, match="refers to disk 'nope'"):
        ovf.parse_envelope(bad_ref)
    bad_mem = ovf1().replace("<rasd:AllocationUnits>byte * 2^20</rasd:AllocationUnits>",
                             "<rasd:AllocationUnits>parsecs</rasd:AllocationUnits>")
    with pytest.raises(OvfError, match="memory: unsupported allocation unit 'parsecs'"):
        ovf.parse_envelope(bad_mem)
    comp = ovf1().replace('ovf:id="file1"', 'ovf:id="file1" ovf:compression="bzip2"')
    with pytest.raises(OvfError, match="compression 'bzip2': only gzip is supported"):
        ovf.parse_envelope(comp)
    for href, match in (("../../etc/passwd", "outside the package"), ("/etc/passwd", "absolute path"),
                        ("http://x/y.vmdk", "is a URL")):
        with pytest.raises(OvfError, match=match):
            ovf.parse_envelope(ovf1().replace("web-disk1.vmdk", href))


def test_manifest_parse():
    m = ovf.parse_manifest("SHA256(a.ovf)= AB12\nSHA1 (b.vmdk) = cd34\n\n", "x.mf")
    assert m == {"a.ovf": ("sha256", "ab12"), "b.vmdk": ("sha1", "cd34")}
    with pytest.raises(OvfError, match="line 1 of the manifest"):
        ovf.parse_manifest("MD5(a)= 00\n", "x.mf")


# --- packages on disk -------------------------------------------------------------


def _vmdk(path: Path, size: str = "64M", fill: bytes = b"") -> None:
    raw = path.with_suffix(".raw")
    subprocess.run(["qemu-img", "create", "-q", "-f", "raw", str(raw), size], check=True)
    if fill:
        with open(raw, "r+b") as fh:
            fh.write(fill)
    subprocess.run(["qemu-img", "convert", "-q", "-f", "raw", "-O", "vmdk", "-o", "subformat=streamOptimized",
                    str(raw), str(path)], check=True)
    raw.unlink()


def _package_dir(tmp: Path, *, manifest: bool = True, algo: str = "sha256") -> Path:
    d = tmp / "pkg"
    d.mkdir()
    _vmdk(d / "web-disk1.vmdk", "64M", b"BOOT" * 100)
    _vmdk(d / "web-disk2.vmdk", "32M")
    text = ovf1((d / "web-disk1.vmdk").stat().st_size, (d / "web-disk2.vmdk").stat().st_size)
    (d / "web.ovf").write_text(text)
    if manifest:
        lines = []
        for name in ("web.ovf", "web-disk1.vmdk", "web-disk2.vmdk"):
            h = hashlib.new(algo, (d / name).read_bytes()).hexdigest()
            lines.append(f"{algo.upper()}({name})= {h}")
        (d / "web.mf").write_text("\n".join(lines) + "\n")
    return d


def _ova(d: Path, out: Path, extra: list[tarfile.TarInfo] | None = None) -> Path:
    with tarfile.open(out, "w", format=tarfile.USTAR_FORMAT) as tf:
        for name in ("web.ovf", "web.mf", "web-disk1.vmdk", "web-disk2.vmdk"):
            if (d / name).exists():
                tf.add(d / name, arcname=name)
        for ti in extra or []:
            tf.addfile(ti, io.BytesIO(b"x" * ti.size) if ti.isfile() else None)
    return out


needs_qemu_img = needs(HAVE_QEMU_IMG, "qemu-img not installed")


@needs_qemu_img
def test_open_ovf_dir_with_manifest(tmp_path):
    d = _package_dir(tmp_path, algo="sha1")
    pkg = ovf.open_package(d / "web.ovf", work_dir=str(tmp_path))
    try:
        assert pkg.manifest == "checked (SHA1)"
        assert [os.path.basename(x.path) for x in pkg.disks] == ["web-disk1.vmdk", "web-disk2.vmdk"]
        fmt, vsize = ovf.check_source_image(pkg.disks[0].path, "vmdk")
        assert fmt == "vmdk" and vsize == 64 * 1024 ** 2
    finally:
        pkg.close()


@needs_qemu_img
def test_open_ova_reads_disks_in_place(tmp_path):
    """Binary disk images of a plain tar are not copied: qemu-img reads them
    at their offset inside the OVA."""
    d = _package_dir(tmp_path)
    ova = _ova(d, tmp_path / "web.ova")
    seen = []
    pkg = ovf.open_package(ova, work_dir=str(tmp_path), progress=lambda done, total: seen.append((done, total)))
    try:
        assert pkg.manifest == "checked (SHA256)"
        assert all(x.path == str(ova) and x.length for x in pkg.disks)
        assert [x.file_name for x in pkg.disks] == ["web-disk1.vmdk", "web-disk2.vmdk"]
        assert seen and seen[-1][0] == seen[-1][1]  # digest progress
        with open(ova, "rb") as fh:  # the region is exactly the member
            fh.seek(pkg.disks[0].offset)
            assert fh.read(pkg.disks[0].length) == (d / "web-disk1.vmdk").read_bytes()
        fmt, vsize = ovf.check_source_image(pkg.disks[0].path, None, offset=pkg.disks[0].offset,
                                            length=pkg.disks[0].length, label="web-disk1.vmdk")
        assert (fmt, vsize) == ("vmdk", 64 * 1024 ** 2)
        out = tmp_path / "conv.qcow2"
        ovf.run_qemu_img(["convert", *ovf.source_args(pkg.disks[0], fmt), "-O", "qcow2", str(out)])
        raw = subprocess.run(["qemu-img", "compare", "-f", "vmdk", "-F", "qcow2", str(d / "web-disk1.vmdk"),
                              str(out)], capture_output=True, text=True)
        assert raw.returncode == 0, raw.stdout + raw.stderr
        work = pkg.work_dir
        assert "web-disk1.vmdk" not in [p.name for p in Path(work).rglob("*")]
    finally:
        pkg.close()
    assert not os.path.exists(work)


@needs_qemu_img
def test_compressed_ova_is_extracted_into_the_work_dir(tmp_path):
    d = _package_dir(tmp_path)
    ova = tmp_path / "web.ova"
    with tarfile.open(ova, "w:gz") as tf:
        for name in ("web.ovf", "web.mf", "web-disk1.vmdk", "web-disk2.vmdk"):
            tf.add(d / name, arcname=name)
    pkg = ovf.open_package(ova, work_dir=str(tmp_path))
    try:
        assert all(x.path.startswith(pkg.work_dir) and x.length is None for x in pkg.disks)
        assert Path(pkg.disks[1].path).read_bytes() == (d / "web-disk2.vmdk").read_bytes()
    finally:
        pkg.close()


@needs_qemu_img
def test_bad_digest_is_refused_naming_the_file(tmp_path):
    d = _package_dir(tmp_path)
    with open(d / "web-disk2.vmdk", "ab") as fh:
        fh.write(b"tampered")
    with pytest.raises(OvfError, match=r"SHA256 digest of 'web-disk2.vmdk' does not match"):
        ovf.open_package(_ova(d, tmp_path / "web.ova"), work_dir=str(tmp_path))
    with pytest.raises(OvfError, match=r"SHA256 digest of 'web-disk2.vmdk' does not match"):
        ovf.open_package(d / "web.ovf", work_dir=str(tmp_path))
    # nothing left in the work dir
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("vmtui-ovf-")] == []


@needs_qemu_img
def test_missing_disk_file(tmp_path):
    d = _package_dir(tmp_path, manifest=False)
    (d / "web-disk2.vmdk").unlink()
    with pytest.raises(OvfError, match="the file 'web-disk2.vmdk' of disk 'vmdisk2' is missing"):
        ovf.open_package(d / "web.ovf")
    with pytest.raises(OvfError, match="the file 'web-disk2.vmdk' of disk 'vmdisk2' is missing from the archive"):
        ovf.open_package(_ova(d, tmp_path / "web.ova"))


@needs_qemu_img
def test_no_manifest_is_a_warning(tmp_path):
    d = _package_dir(tmp_path, manifest=False)
    pkg = ovf.open_package(d / "web.ovf")
    try:
        assert pkg.manifest is None
        assert any("no manifest" in w for w in pkg.warnings)
    finally:
        pkg.close()


@needs_qemu_img
@pytest.mark.parametrize("member,match", [
    ("../evil", "path traversal refused"),
    ("a/../../evil", "path traversal refused"),
    ("/etc/evil", "absolute path"),
])
def test_tar_traversal_refused(tmp_path, member, match):
    d = _package_dir(tmp_path)
    ti = tarfile.TarInfo(member)
    ti.size = 3
    with pytest.raises(OvfError, match=match):
        ovf.open_package(_ova(d, tmp_path / "bad.ova", [ti]), work_dir=str(tmp_path))
    assert not (tmp_path / "evil").exists() and not Path("/etc/evil").exists()


@needs_qemu_img
def test_tar_links_refused(tmp_path):
    d = _package_dir(tmp_path)
    ti = tarfile.TarInfo("link.vmdk")
    ti.type = tarfile.SYMTYPE
    ti.linkname = "/etc/shadow"
    with pytest.raises(OvfError, match="is a link"):
        ovf.open_package(_ova(d, tmp_path / "bad.ova", [ti]))


def test_not_an_archive(tmp_path):
    p = tmp_path / "x.ova"
    p.write_bytes(b"\x00" * 10)
    with pytest.raises(OvfError, match="not a tar archive"):
        ovf.open_package(p)
    with pytest.raises(OvfError, match="no such file"):
        ovf.open_package(tmp_path / "none.ova")


@needs_qemu_img
def test_gzip_compressed_file(tmp_path):
    import gzip as gz
    d = _package_dir(tmp_path, manifest=False)
    data = (d / "web-disk2.vmdk").read_bytes()
    (d / "web-disk2.vmdk").write_bytes(gz.compress(data))
    text = (d / "web.ovf").read_text().replace('ovf:id="file2"', 'ovf:id="file2" ovf:compression="gzip"')
    (d / "web.ovf").write_text(text)
    for src in (d / "web.ovf", _ova(d, tmp_path / "gz.ova")):
        pkg = ovf.open_package(src, work_dir=str(tmp_path))
        try:
            assert Path(pkg.disks[1].path).read_bytes() == data
            assert pkg.disks[1].path.startswith(pkg.work_dir)
        finally:
            pkg.close()


@needs_qemu_img
def test_backing_file_in_image_refused(tmp_path):
    base = tmp_path / "base.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(base), "1M"], check=True)
    top = tmp_path / "top.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(base), "-F", "qcow2", str(top)], check=True)
    with pytest.raises(OvfError, match="backing file"):
        ovf.check_source_image(str(top), None)


def test_to_vmspec_maps_networks_and_buses():
    pkg = ovf.parse_envelope(ovf1(), known_os=lambda s: s == "debian11")
    vols = [ovf.ImportedVolume("vmdisk1", "p", "web.qcow2", "/p/web.qcow2", "k1"),
            ovf.ImportedVolume("vmdisk2", "p", "web-1.qcow2", "/p/web-1.qcow2", "k2")]
    spec = ovf.to_vmspec(pkg, vols, host_networks=["default", "lan"])
    assert spec.name == "web-server-1"
    assert spec.install.kind == "import" and spec.install.image == "p/web.qcow2"
    assert [d.path for d in spec.disks] == ["p/web.qcow2", "p/web-1.qcow2"]
    assert {d.bus for d in spec.disks} == {"virtio"}
    assert [(n.source, n.model) for n in spec.nics] == [("default", "virtio")]
    assert spec.vcpus == 4 and spec.memory_mib == 3072 and spec.firmware == "uefi" and spec.os == "debian11"
    win = ovf.parse_envelope(ovf1().replace("debian11_64Guest", "windows2019srv_64Guest"))
    spec = ovf.to_vmspec(win, vols, host_networks=["VM Network"])
    assert {d.bus for d in spec.disks} == {"sata"}
    assert [(n.source, n.model) for n in spec.nics] == [("VM Network", "e1000e")]
    assert ovf.to_vmspec(pkg, vols, host_networks=[]).nics == []


def test_volume_names():
    pkg = ovf.parse_envelope(ovf1())
    assert ovf.volume_names(pkg, "web", taken={"web.qcow2"}) == ["web-1.qcow2", "web-2.qcow2"]


def test_export_envelope_reads_back():
    plan = ovf.ExportPlan("db 1", "the database", 3, 1536, "debian12", "uefi",
                          [ovf.ExportDisk("vda", "/x.qcow2", "qcow2", "virtio")],
                          [("default", "virtio", "52:54:00:aa:bb:cc")])
    data = ovf.build_envelope(plan, [("db-1-disk1.vmdk", 1234, 10 * 1024 ** 3, None)])
    assert data.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    pkg = ovf.parse_envelope(data)
    assert (pkg.name, pkg.description, pkg.vcpus, pkg.memory_mib) == ("db 1", "the database", 3, 1536)
    assert pkg.osinfo == "debian12" and pkg.os_cim_id == 96 and pkg.firmware == "uefi"
    assert [d.capacity for d in pkg.disks] == [10 * 1024 ** 3] and pkg.disks[0].controller == "scsi"
    assert [(n.network, n.mac) for n in pkg.nics] == [("default", "52:54:00:aa:bb:cc")]
    assert pkg.files["file1"].href == "db-1-disk1.vmdk" and pkg.files["file1"].size == 1234


def test_plan_export_from_domain_xml():
    xml = """<domain type='kvm'><name>app</name><description>d</description>
      <metadata><libosinfo:libosinfo xmlns:libosinfo="http://libosinfo.org/xmlns/libvirt/domain/1.0">
      <libosinfo:os id="http://ubuntu.com/ubuntu/22.04"/></libosinfo:libosinfo></metadata>
      <memory unit='KiB'>2097152</memory><currentMemory unit='MiB'>1024</currentMemory><vcpu>2</vcpu>
      <os firmware='efi'><type>hvm</type></os>
      <devices>
        <disk type='file' device='disk'><driver type='qcow2'/><source file='/a.qcow2'/><target dev='vda' bus='virtio'/></disk>
        <disk type='file' device='cdrom'><source file='/b.iso'/><target dev='sda' bus='sata'/></disk>
        <interface type='network'><source network='lan'/><model type='e1000e'/></interface>
      </devices></domain>"""
    plan = ovf.plan_export(xml)
    assert (plan.name, plan.vcpus, plan.memory_mib, plan.osinfo, plan.firmware) == ("app", 2, 1024, "ubuntu22.04",
                                                                                     "uefi")
    assert [(d.source, d.format) for d in plan.disks] == [("/a.qcow2", "qcow2")]
    assert plan.nics == [("lan", "e1000e", None)]


@needs_qemu_img
@pytest.mark.parametrize("extent", ["/etc/hostname", "../outside.bin"])
def test_vmdk_extent_outside_the_package_refused(tmp_path, extent):
    d = tmp_path / "pkg"
    d.mkdir()
    (tmp_path / "outside.bin").write_bytes(b"\0" * 1024 * 1024)
    (d / "flat.vmdk").write_text(
        '# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\ncreateType="monolithicFlat"\n\n'
        f'RW 2048 FLAT "{extent}" 0\n\nddb.adapterType = "lsilogic"\n')
    with pytest.raises(OvfError, match="extent outside the package"):
        ovf.check_source_image(str(d / "flat.vmdk"), "vmdk")


@needs_qemu_img
def test_manifest_covers_unreferenced_members(tmp_path):
    d = _package_dir(tmp_path, manifest=False)
    (d / "web.nvram").write_bytes(b"NVRAM" * 10)
    names = ("web.ovf", "web-disk1.vmdk", "web-disk2.vmdk", "web.nvram")

    def write_mf(nvram_digest=None):
        lines = [f"SHA256({n})= {hashlib.sha256((d / n).read_bytes()).hexdigest()}" for n in names]
        if nvram_digest:
            lines[-1] = f"SHA256(web.nvram)= {nvram_digest}"
        (d / "web.mf").write_text("\n".join(lines) + "\n")

    def ova():
        out = tmp_path / "n.ova"
        with tarfile.open(out, "w") as tf:
            for n in ("web.ovf", "web.mf") + names[1:]:
                tf.add(d / n, arcname=n)
        return out

    write_mf()
    for src in (d / "web.ovf", ova()):
        ovf.open_package(src, work_dir=str(tmp_path)).close()
    write_mf("00" * 32)
    for src in (d / "web.ovf", ova()):
        with pytest.raises(OvfError, match="digest of 'web.nvram' does not match"):
            ovf.open_package(src, work_dir=str(tmp_path))
    (d / "web.mf").write_text((d / "web.mf").read_text() + "SHA256(ghost.bin)= 00\n")
    (d / "web.nvram").unlink()
    with pytest.raises(OvfError, match="lists 'web.nvram', which the package does not hold"):
        ovf.open_package(d / "web.ovf", work_dir=str(tmp_path))


@needs_qemu_img
def test_signed_package_is_noted(tmp_path):
    d = _package_dir(tmp_path)
    (d / "web.cert").write_text("-----BEGIN CERTIFICATE-----\n")
    pkg = ovf.open_package(d / "web.ovf", work_dir=str(tmp_path))
    try:
        assert pkg.certificate == "web.cert"
        assert any("signature was not verified" in w for w in pkg.warnings)
    finally:
        pkg.close()


@needs_qemu_img
def test_qcow2_external_data_file_refused(tmp_path):
    img = tmp_path / "d.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-o", f"data_file={tmp_path / 'data.raw'}",
                    str(img), "1M"], check=True)
    with pytest.raises(OvfError, match="external file"):
        ovf.check_source_image(str(img), None)
