"""Cloud images that boot (issue 12, items 1-4 and 9): the overlay's backing
chain with relabel='no', the seed where the guest's kernel sees it, the seed
and ``--cloud-init`` in what --dry-run and F2 show, unknown ``os`` ids,
growpart/resize_rootfs and the overlay's size, the guest-agent channel --
and docs/vm-spec.md's cloud example, dry-run as written.

Real boots: tests/real/test_real_cloudboot.py."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.conftest import DATA, SMALL_HOST
from tests.test_builder import CAPS, DEBIAN, UUID
from vmtui import cli
from vmtui.core.create import builder, spec_from_xml
from vmtui.core.create.builder import ResolvedDisk, SeedPlan, build_domain_xml, offline_disks, seed_bus
from vmtui.core.create.osinfo import OsDb
from vmtui.core.create.validation import ImageFacts, validate_spec
from vmtui.core.create.virt_install import virt_install_command
from vmtui.core.create.vmspec import DiskSpec, InstallSource, VmSpec
from vmtui.core.create.vmspec_yaml import SpecError, dump_spec, load_spec
from vmtui.core.provision import seed
from vmtui.core.xml.domain_model import Domain

GIB = 1024 ** 3
DOCS = Path(__file__).resolve().parent.parent / "docs" / "vm-spec.md"
IMAGE = "default/debian-12-genericcloud-amd64.qcow2"
USER = "#cloud-config\nhostname: web1\n"


def cloud(**kw) -> VmSpec:
    base = dict(name="web1", os="debian12", install=InstallSource(kind="cloud", image="/srv/cloud/debian-12.qcow2",
                                                                  cloud_init={"user_data": USER}),
                disks=[DiskSpec(size=20 * GIB)])
    base.update(kw)
    return VmSpec(**base)


def final_xml(spec: VmSpec, disks=None, **kw) -> ET.Element:
    disks = disks if disks is not None else offline_disks(spec)
    return ET.fromstring(build_domain_xml(spec, CAPS, disks, os=DEBIAN, uuid=UUID, **kw))


def seed_dev(root: ET.Element) -> ET.Element:
    (dev,) = [d for d in root.iter("disk") if (d.find("source") is not None
                                                and d.find("source").get("file", "").endswith("-cidata.iso"))]
    return dev


# --- the seed: where every cloud kernel sees it -------------------------------------


@pytest.mark.parametrize("machine", ["q35", "pc"])
def test_seed_is_a_read_only_virtio_disk_next_to_a_virtio_boot_disk(machine):
    root = final_xml(cloud(machine=machine))
    dev = seed_dev(root)
    assert dev.get("device") == "disk" and dev.find("readonly") is not None
    assert dev.find("target").attrib == {"dev": "vdb", "bus": "virtio"}
    assert dev.find("driver").get("type") == "raw"
    disks = [d.find("target").get("dev") for d in root.iter("disk")]
    assert disks == ["vda", "vdb"]  # the boot disk stays vda
    if machine == "q35":  # a root port for it: the spare ones stay spare
        def ports(root):
            return len([c for c in root.iter("controller") if c.get("model") == "pcie-root-port"])

        assert ports(root) == ports(final_xml(cloud(install=InstallSource(kind="cloud", image="/x.qcow2")))) + 1


def test_seed_bus_rules():
    assert seed_bus(cloud()) == "virtio"
    assert seed_bus(cloud(disks=[DiskSpec(size=20 * GIB, bus="sata")])) == "sata"
    assert seed_bus(cloud(disks=[DiskSpec(size=20 * GIB, bus="scsi")])) == "scsi"
    assert seed_bus(cloud(disks=[DiskSpec(size=20 * GIB, bus="ide")], machine="pc")) == "ide"
    chosen = cloud()
    chosen.install.cloud_init["seed_bus"] = "sata"
    assert seed_bus(chosen) == "sata"
    # no disk at all: a CD-ROM on the CD-ROM bus
    none = VmSpec(name="x", install=InstallSource(kind="none", cloud_init={"user_data": USER}), disks=[],
                  cdrom_bus="sata")
    assert seed_bus(none) == "sata"


@pytest.mark.parametrize("bus,dev", [("scsi", "sda"), ("sata", "sda")])
def test_chosen_seed_bus_is_a_cd_rom(bus, dev):
    spec = cloud()
    spec.install.cloud_init["seed_bus"] = bus
    root = final_xml(spec)
    cd = seed_dev(root)
    assert cd.get("device") == "cdrom" and cd.find("target").attrib == {"dev": dev, "bus": bus}
    scsi = [c for c in root.iter("controller") if c.get("type") == "scsi"]
    assert bool(scsi) == (bus == "scsi")


def test_seed_record_and_path_in_the_definition():
    spec = cloud()
    spec.install.cloud_init["detach_after_first_boot"] = True
    plan = SeedPlan("/pool/web1-cidata.iso", "images", "web1-cidata.iso")
    xml = build_domain_xml(spec, CAPS, offline_disks(spec), os=DEBIAN, seed=plan)
    rec = seed.seed_record(xml)
    assert (rec.path, rec.pool, rec.volume, rec.detach_after_first_boot) == (
        "/pool/web1-cidata.iso", "images", "web1-cidata.iso", True)
    assert len(seed.seed_disks(xml, plan.path)) == 1
    # without a plan (previews): where the seed would be uploaded
    assert seed.seed_record(build_domain_xml(spec, CAPS, offline_disks(spec))).path == \
        "/var/lib/libvirt/images/web1-cidata.iso"
    # and no cloud-init, no seed
    plain = cloud(install=InstallSource(kind="cloud", image="/srv/cloud/debian-12.qcow2"))
    assert seed.seed_record(build_domain_xml(plain, CAPS, offline_disks(plain))) is None


def test_seed_for_existing_vms_follows_the_first_disk():
    def dom(machine: str, disk_bus: str | None) -> str:
        disk = f"<disk type='file' device='disk'><target dev='x' bus='{disk_bus}'/></disk>" if disk_bus else ""
        return f"<domain><os><type machine='{machine}'>hvm</type></os><devices>{disk}</devices></domain>"

    assert seed.seed_bus_for(dom("q35", "virtio")) == "virtio"
    assert seed.seed_bus_for(dom("pc", "virtio")) == "virtio"
    assert seed.seed_bus_for(dom("q35", "sata")) == "sata"
    assert seed.seed_bus_for(dom("q35", None)) == "sata" and seed.seed_bus_for(dom("pc", None)) == "ide"
    dev = ET.fromstring(seed.seed_device_xml(dom("q35", "virtio"), "/p/a-cidata.iso"))
    assert dev.get("device") == "disk" and dev.find("readonly") is not None
    assert dev.find("target").attrib == {"dev": "vda", "bus": "virtio"}  # "x" is not a vd* name


# --- the overlay's backing chain: libvirt must not chown the base -----------------------


def test_backing_chain_with_relabel_no():
    spec = cloud()
    disks = offline_disks(spec)
    disks[0].backing_chain = [("/srv/cloud/debian-12.qcow2", "qcow2")]
    disk = Domain.parse(build_domain_xml(spec, CAPS, disks, os=DEBIAN)).devices.disks[0]
    (layer,) = disk.backing_chain
    assert (layer.path, layer.format, layer.relabel, layer.type) == ("/srv/cloud/debian-12.qcow2", "qcow2",
                                                                     False, "file")
    bs = disk.element.find("backingStore")
    assert bs.find("backingStore") is not None and len(bs.find("backingStore")) == 0  # the chain ends here
    assert bs.find("source/seclabel").attrib == {"model": "dac", "relabel": "no"}
    # not probed (previews that could not ask): no chain, libvirt reads it
    assert Domain.parse(build_domain_xml(spec, CAPS, offline_disks(spec))).devices.disks[0].backing_chain == []


# --- guest agent ---------------------------------------------------------------------------


def test_guest_agent_channel_is_a_setting():
    on = Domain.parse(build_domain_xml(cloud(), CAPS, offline_disks(cloud())))
    assert on.devices.guest_agent is not None and on.devices.guest_agent.target_type == "virtio"
    off = cloud(guest_agent=False)
    assert Domain.parse(build_domain_xml(off, CAPS, offline_disks(off))).devices.guest_agent is None
    # the way back, and YAML
    assert spec_from_xml.spec_from_domain_xml(build_domain_xml(off, CAPS, offline_disks(off))).guest_agent is False
    assert load_spec(dump_spec(off)).guest_agent is False
    assert load_spec("name: a\ninstall: {kind: none}\n").guest_agent is True


def test_export_leaves_the_seed_out():
    spec = cloud()
    back = spec_from_xml.spec_from_domain_xml(build_domain_xml(spec, CAPS, offline_disks(spec)))
    assert [d.path for d in back.disks] == ["/var/lib/libvirt/images/web1.qcow2"]
    assert back.install.kind == "cloud"


# --- what --dry-run and F2 print ---------------------------------------------------------


def test_virt_install_line_has_the_cloud_init_documents():
    argv = virt_install_command(cloud())
    assert argv[argv.index("--cloud-init") + 1] == "user-data=user-data,meta-data=meta-data"
    spec = cloud()
    spec.install.cloud_init["network_config"] = "version: 2\n"
    argv = virt_install_command(spec)
    assert argv[argv.index("--cloud-init") + 1] == \
        "user-data=user-data,meta-data=meta-data,network-config=network-config"
    assert "--cloud-init" not in virt_install_command(cloud(install=InstallSource(kind="cloud", image="/x.qcow2")))


# --- validation --------------------------------------------------------------------------------


def errors(spec: VmSpec, **kw) -> dict[str, tuple[str, str]]:
    return {e.field: (e.severity, e.message) for e in validate_spec(spec, **kw)}


def test_images_that_cannot_be_used():
    img = "/srv/cloud/debian-12.qcow2"
    found = errors(cloud(), images={img: ImageFacts(problem="Cannot tell the image's format: no such file")})
    assert found["install.image"] == ("error", "Cannot tell the image's format: no such file")
    found = errors(cloud(), images={img: ImageFacts(format="iso", capacity=GIB, how="qemu-img info")})
    assert found["install.image"][0] == "error" and "ISO 9660" in found["install.image"][1]
    found = errors(cloud(), images={img: ImageFacts(format="qcow2", capacity=GIB, read_problem="QEMU cannot")})
    assert found["install.image"] == ("error", "QEMU cannot")
    # an imported image is the VM's own disk: libvirt may relabel it
    imp = cloud(install=InstallSource(kind="import", image=img), disks=[])
    assert "install.image" not in errors(imp, images={img: ImageFacts(format="raw", capacity=GIB,
                                                                      read_problem="QEMU cannot")})
    vmdk = errors(imp, images={img: ImageFacts(format="vmdk", capacity=GIB)})["install.image"]
    assert vmdk[0] == "error" and "vmtui imports qcow2 and raw images" in vmdk[1]
    # a cloud image of another format QEMU reads is a fine base
    assert "install.image" not in errors(cloud(), images={img: ImageFacts(format="vmdk", capacity=20 * GIB)})


def test_overlay_size_against_the_image():
    img = "/srv/cloud/debian-12.qcow2"
    facts = {img: ImageFacts(format="qcow2", capacity=2 * GIB)}
    small = errors(cloud(disks=[DiskSpec(size=GIB)]), images=facts)
    assert small["disks[0].size"][0] == "error" and "smaller than the image (2G)" in small["disks[0].size"][1]
    assert "disks[0].size" not in errors(cloud(disks=[DiskSpec(size=2 * GIB)]), images=facts)
    grow = errors(cloud(), images=facts)["disks[0].size"]
    assert grow[0] == "warning" and "20G is larger than the image (2G)" in grow[1]
    assert "leaves to the image" in grow[1] and "resize_rootfs: true" in grow[1]
    asked = cloud()
    asked.install.cloud_init["user_data"] = seed.default_user_data("web1")
    grow = errors(asked, images=facts)["disks[0].size"]
    assert grow[0] == "warning" and "the user-data asks cloud-init to grow the root file system" in grow[1]
    off = cloud()
    off.install.cloud_init["user_data"] = "#cloud-config\ngrowpart: {mode: 'off'}\nresize_rootfs: false\n"
    stays = errors(off, images=facts)["disks[0].size"]
    assert stays[0] == "warning" and "turns growpart and resize_rootfs off" in stays[1] and "stays at 2G" in stays[1]


def test_seed_bus_rules_in_validation():
    bad = cloud()
    bad.install.cloud_init["seed_bus"] = "ide"
    assert errors(bad)["install.cloud_init.seed_bus"][0] == "error"  # q35 has no IDE
    bad.machine = "pc"
    assert "install.cloud_init.seed_bus" not in errors(bad)
    with pytest.raises(SpecError, match="seed_bus: must be one of: virtio, scsi, sata, ide"):
        load_spec("name: a\ninstall:\n  kind: cloud\n  image: /x.qcow2\n  cloud_init:\n    user_data: ''\n"
                  "    seed_bus: floppy\n")
    spec = load_spec("name: a\ninstall:\n  kind: cloud\n  image: /x.qcow2\n  cloud_init:\n    user_data: ''\n"
                     "    seed_bus: scsi\n")
    assert spec.install.cloud_init["seed_bus"] == "scsi"
    assert load_spec(dump_spec(spec)).install.cloud_init["seed_bus"] == "scsi"


def test_unknown_os_is_a_warning_with_the_closest_ids():
    db = OsDb.load([DATA / "osinfo"])
    found = errors(cloud(os="exampleos3"), osdb=db)
    assert found["os"][0] == "warning"
    assert "closest ids it knows: exampleos2, exampleos1" in found["os"][1] and "linux2022" in found["os"][1]
    assert "os" not in errors(cloud(os="exampleos2"), osdb=db)
    assert "os" not in errors(cloud(os="generic"), osdb=db)


def test_unknown_os_builds_with_generic_values():
    from vmtui.core.create.installer import os_for

    db = OsDb.load([DATA / "osinfo"])
    spec = cloud(os="exampleos3")
    root = ET.fromstring(build_domain_xml(spec, CAPS, offline_disks(spec), os=os_for(spec, db)))
    ns = {"lo": "http://libosinfo.org/xmlns/libvirt/domain/1.0", "v": "https://vmtui.dev/xmlns/vmtui/1"}
    assert root.find("metadata/lo:libosinfo/lo:os", ns).get("id") == "http://libosinfo.org/linux/2022"
    assert root.find("metadata/v:vmtui/v:os", ns).get("id") == "exampleos3"  # what the user asked for


# --- docs/vm-spec.md's cloud example, loaded and dry-run as written ---------------------------


def docs_cloud_example() -> str:
    (block,) = [b for b in re.findall(r"```yaml\n(.*?)```", DOCS.read_text(), re.S) if "kind: cloud" in b]
    return block


def test_docs_cloud_example_dry_run(tmp_path, monkeypatch, capsys):
    example = tmp_path / "web1.yaml"
    example.write_text(docs_cloud_example())
    # the test host, with the example's cloud image (2 GiB) in pool "default"
    host = SMALL_HOST.read_text().replace(
        "  </pool>", "    <volume type='file'>\n      <name>debian-12-genericcloud-amd64.qcow2</name>\n"
                     "      <capacity unit='GiB'>2</capacity>\n      <allocation unit='MiB'>300</allocation>\n"
                     "      <target><format type='qcow2'/></target>\n    </volume>\n  </pool>")
    (tmp_path / "host.xml").write_text(host)

    async def kvm_host(service, arch="x86_64"):
        return CAPS  # the example asks for KVM, which the test driver has not

    monkeypatch.setattr("vmtui.core.create.installer.host_caps", kvm_host)
    monkeypatch.setenv("VMTUI_CONFIG", "/nonexistent/vmtui-test-config.yaml")
    rc = cli.main(["create", "--from", str(example), "-c", f"test://{tmp_path / 'host.xml'}", "--dry-run"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    root = ET.fromstring(out[out.index("<domain"):out.index("</domain>") + len("</domain>")])
    # the overlay on the probed qcow2 image, which libvirt must not relabel
    disk = next(d for d in root.iter("disk") if d.find("source").get("file", "").endswith("/web1.qcow2"))
    bs = disk.find("backingStore")
    assert bs.find("format").get("type") == "qcow2" and bs.find("source").get("file") == \
        "/var/lib/libvirt/images/debian-12-genericcloud-amd64.qcow2"
    assert bs.find("source/seclabel").get("relabel") == "no"
    # the seed, as it will be defined
    dev = seed_dev(root)
    assert dev.find("source").get("file") == "/var/lib/libvirt/images/web1-cidata.iso"
    assert dev.find("target").attrib == {"dev": "vdb", "bus": "virtio"} and dev.find("readonly") is not None
    assert any(c.find("target").get("name") == "org.qemu.guest_agent.0" for c in root.iter("channel"))
    cmdline = out.strip().splitlines()[-1]
    assert cmdline.startswith("virt-install ") and "--cloud-init user-data=user-data,meta-data=meta-data" in cmdline
    # warnings, with the spec's lines: 20G on a 2G image; and os: debian12 when this osinfo-db lacks it
    assert re.search(rf"{re.escape(str(example))}:\d+: warning: disks\[0\]\.size: 20G is larger than the image "
                     r"\(2G\): the user-data asks cloud-init to grow", err)
    from vmtui.core.create.osinfo import default_db

    if default_db().get("debian12") is None:
        assert re.search(rf"{re.escape(str(example))}:3: warning: os: 'debian12' is not in this host's", err)
