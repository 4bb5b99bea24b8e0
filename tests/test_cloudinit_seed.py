"""cloud-init seed on a VM (pure parts) and the saved-configs library."""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest
import yaml

from vmtui.core.errors import VmtuiError
from vmtui.core.provision import seed
from vmtui.core.provision.library import Library, LibraryError, strip_per_vm, validate_name
from vmtui.core.provision.seed import CloudInitDocs

PC = """<domain type='qemu'><name>a</name><os><type arch='x86_64' machine='pc-i440fx-7.2'>hvm</type></os>
<devices><disk type='file' device='disk'><source file='/x.qcow2'/><target dev='vda' bus='virtio'/></disk>
<disk type='file' device='cdrom'><target dev='hda' bus='ide'/><readonly/></disk></devices></domain>"""
Q35 = PC.replace("pc-i440fx-7.2", "pc-q35-7.2").replace("dev='hda' bus='ide'", "dev='sda' bus='sata'")
SCSI = Q35.replace("</devices>", "<controller type='scsi' index='0' model='virtio-scsi'/></devices>")


def test_bus_matches_machine():
    assert seed.cdrom_bus_for(PC) == "ide"
    assert seed.cdrom_bus_for(Q35) == "sata"
    assert seed.cdrom_bus_for(SCSI) == "scsi"


def test_device_xml_next_free_target_readonly():
    dev = ET.fromstring(seed.cdrom_device_xml(PC, "/pool/a-cidata.iso"))
    assert dev.get("device") == "cdrom" and dev.get("type") == "file"
    assert dev.find("source").get("file") == "/pool/a-cidata.iso"
    assert dev.find("target").attrib == {"dev": "hdb", "bus": "ide"}
    assert dev.find("readonly") is not None
    assert dev.find("driver").get("type") == "raw"
    dev = ET.fromstring(seed.cdrom_device_xml(Q35, "/p/s.iso"))
    assert dev.find("target").attrib == {"dev": "sdb", "bus": "sata"}
    # a target used only by the running config counts too
    live = PC.replace("dev='hda'", "dev='hdb'")
    dev = ET.fromstring(seed.cdrom_device_xml(PC, "/p/s.iso", live))
    assert dev.find("target").attrib == {"dev": "hdc", "bus": "ide"}


def test_ide_slots_run_out():
    full = PC.replace("</devices>", "".join(f"<disk type='file' device='cdrom'><target dev='hd{c}' bus='ide'/></disk>"
                                            for c in "bcd") + "</devices>")
    with pytest.raises(VmtuiError, match="no free IDE slot"):
        seed.cdrom_device_xml(full, "/p/s.iso")
    sata = Q35.replace("</devices>", "".join(f"<disk type='file' device='cdrom'><target dev='sd{c}' bus='sata'/></disk>"
                                             for c in "bcdefghijklmnopqrstuvwxyz") + "</devices>")
    assert ET.fromstring(seed.cdrom_device_xml(sata, "/p/s.iso")).find("target").get("dev") == "sdaa"


def test_seed_metadata_round_trip_keeps_other_metadata():
    xml = PC.replace("<os>", "<metadata><other:x xmlns:other='urn:o'/></metadata><os>")
    rec = seed.SeedRecord("/p/a-cidata.iso", "default", "a-cidata.iso", True)
    new = seed.set_seed_metadata(xml, rec)
    assert seed.seed_record(new) == rec
    assert seed.first_boot_cleanup_due(new)
    assert "urn:o" in new
    gone = seed.set_seed_metadata(new, None)
    assert seed.seed_record(gone) is None and "urn:o" in gone


def test_seed_disk_elements_found_by_path_or_name():
    xml = PC.replace("<target dev='hda'", "<source file='/p/a-cidata.iso'/><target dev='hda'")
    assert len(seed.seed_disk_elements(xml, "/p/a-cidata.iso")) == 1
    assert len(seed.seed_disk_elements(xml, None, "a-cidata.iso")) == 1
    assert seed.seed_disk_elements(xml, "/other.iso") == []


def test_complete_docs_fills_instance_id_and_hostname():
    docs = seed.complete_docs(CloudInitDocs("", "dsmode: local\n"), "web1")
    meta = yaml.safe_load(docs.meta_data)
    assert meta["dsmode"] == "local" and meta["local-hostname"] == "web1"
    assert meta["instance-id"].startswith("iid-vmtui-")
    assert docs.user_data.startswith("#cloud-config\n") and yaml.safe_load(docs.user_data) == {
        "hostname": "web1", "growpart": {"mode": "auto", "devices": ["/"]}, "resize_rootfs": True}
    other = seed.complete_docs(None, "web1")
    assert yaml.safe_load(other.meta_data)["instance-id"] != meta["instance-id"]
    kept = seed.complete_docs(CloudInitDocs("#cloud-config\n", "instance-id: fixed\nlocal-hostname: h\n"), "x")
    assert kept.meta_data == "instance-id: fixed\nlocal-hostname: h\n"


def test_spec_dict_round_trip():
    docs = CloudInitDocs("#cloud-config\n", "instance-id: i\n", "version: 2\n")
    d = docs.to_spec(True)
    assert d["detach_after_first_boot"] is True
    assert CloudInitDocs.from_spec(d) == docs
    assert CloudInitDocs.from_spec(None) is None


def test_core_provision_modules_do_not_import_textual():
    code = ("import sys, vmtui.core.provision.seed, vmtui.core.provision.library\n"
            "print(sorted({m.split('.')[0] for m in sys.modules if m.split('.')[0] in ('textual','rich')}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# --- library -----------------------------------------------------------------

USER = "#cloud-config\n# keep me\nhostname: web\nusers:\n  - name: admin\n"


def test_library_save_load_list_round_trip(tmp_path):
    lib = Library(tmp_path)
    docs = CloudInitDocs(USER, "instance-id: iid-1\nlocal-hostname: web\ndsmode: local\n", "version: 2\n")
    lib.save("web server", docs, "nginx box")
    got = lib.load("web server")
    assert got.docs.user_data == USER  # byte for byte, comments too
    assert got.docs.network_config == "version: 2\n"
    assert got.description == "nginx box"
    # per-VM keys are never saved
    assert yaml.safe_load(got.docs.meta_data) == {"dsmode": "local"}
    assert lib.names() == ["web server"]


def test_library_rename_duplicate_delete(tmp_path):
    lib = Library(tmp_path)
    lib.save("a", CloudInitDocs(USER, ""))
    lib.rename("a", "b")
    assert lib.names() == ["b"]
    copy = lib.duplicate("b")
    assert copy.name == "b (copy)" and lib.duplicate("b").name == "b (copy 2)"
    lib.delete("b")
    assert "b" not in lib.names()
    with pytest.raises(LibraryError, match="no saved config"):
        lib.delete("b")
    with pytest.raises(LibraryError, match="already exists"):
        lib.rename("b (copy)", "b (copy 2)")


def test_library_import_export(tmp_path):
    lib = Library(tmp_path / "lib")
    lib.save("x", CloudInitDocs(USER, "", None), "d")
    out = lib.export_file("x", tmp_path / "x-export.yaml")
    with pytest.raises(LibraryError, match="already exists"):
        lib.export_file("x", out)
    other = Library(tmp_path / "other")
    cfg = other.import_file(out)
    assert cfg.name == "x" and cfg.docs.user_data == USER and cfg.description == "d"
    bare = tmp_path / "plain-user-data.txt"
    bare.write_text(USER)
    assert other.import_file(bare).name == "plain-user-data"
    with pytest.raises(LibraryError, match="already exists"):
        other.import_file(out)
    bad = tmp_path / "bad.yaml"
    bad.write_text("user_data: [unclosed\n")
    with pytest.raises(LibraryError, match="not valid YAML \\(line 2"):
        other.import_file(bad)
    (tmp_path / "notours.yaml").write_text("foo: 1\n")
    with pytest.raises(LibraryError, match="not a saved cloud-init config"):
        other.import_file(tmp_path / "notours.yaml")
    with pytest.raises(LibraryError, match="no such file"):
        other.import_file(tmp_path / "missing.yaml")


def test_library_names_and_broken_files(tmp_path):
    assert validate_name("") and validate_name("a/b") and validate_name(".x") and validate_name(" x")
    assert validate_name("web server 1") is None
    lib = Library(tmp_path)
    with pytest.raises(LibraryError, match="must not contain"):
        lib.save("a/b", CloudInitDocs(USER, ""))
    (tmp_path / "broken.yaml").write_text(": : :\n  - [")
    lib.save("ok", CloudInitDocs(USER, ""))
    assert lib.names() == ["ok"]
    assert any("broken.yaml" in p for p in lib.problems())
    assert strip_per_vm("instance-id: a\n") == ""
