"""Kickstart on a VM spec: YAML (inline / file, FILE:LINE errors), validation,
the builder (OEMDRV CD-ROM, inst.ks, virt-install line) and the installer on
the test driver (OEMDRV volume uploaded / initrd injected, rollback)."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
from pathlib import Path

import libvirt
import pycdlib
import pytest

from tests.test_installer import POOL_VOLUMES, disks_of, iso_spec, make_tree, tree_server, volumes  # noqa: F401
from vmtui.core.create import builder, installer, virt_install
from vmtui.core import storage
from vmtui.core.errors import VmtuiError
from vmtui.core.create.installer import create_vm, preview
from vmtui.core.provision import kickstart
from vmtui.core.provision.kickstart import delivery_for, starter_kickstart, version_for_os
from vmtui.core.create.vmspec import InstallSource
from vmtui.core.create.validation import validate_spec
from vmtui.core.create.vmspec_yaml import SpecError, dump_spec, load_spec

KS = starter_kickstart("en_US.UTF-8", "us", "UTC", "$6$salt$hash", "admin")


def ks(text: str = KS, version: str = "RHEL9", delivery: str = "oemdrv") -> dict:
    return {"text": text, "version": version, "delivery": delivery}


def read_oemdrv(data: bytes) -> tuple[str, bytes]:
    iso = pycdlib.PyCdlib()
    iso.open_fp(io.BytesIO(data))
    try:
        label = iso.pvd.volume_identifier.decode().strip()
        out = io.BytesIO()
        iso.get_file_from_iso_fp(out, rr_path="/ks.cfg")
        return label, out.getvalue()
    finally:
        iso.close()


def cpio_names(data: bytes) -> dict[str, bytes]:
    """Files of every uncompressed newc archive in ``data`` (concatenated, zero padded)."""
    out, pos = {}, 0
    while pos < len(data):
        if data[pos:pos + 6] != b"070701":
            pos += 1
            continue
        fields = [int(data[pos + 6 + 8 * i: pos + 14 + 8 * i], 16) for i in range(13)]
        size, namesize = fields[6], fields[11]
        name_start = pos + 110
        name = data[name_start:name_start + namesize - 1].decode()
        body = name_start + namesize
        body += -body % 4
        out[name] = data[body:body + size]
        pos = body + size
        pos += -pos % 4
    out.pop("TRAILER!!!", None)
    return out


# --- versions and delivery ---------------------------------------------------------


def test_version_for_os():
    assert version_for_os(short_id="fedora39") == "F39"
    assert version_for_os(short_id="fedora99") == max((v for v in kickstart.available_versions()
                                                       if v.startswith("F")), key=lambda v: int(v[1:]))
    assert version_for_os(short_id="rhel9.4") == "RHEL9"
    assert version_for_os(short_id="rocky8") == "RHEL8"
    assert version_for_os(short_id="centos-stream9") == "RHEL9"
    assert version_for_os(short_id="debian12") == kickstart.DEFAULT_VERSION
    assert version_for_os(None) == kickstart.DEFAULT_VERSION


def test_delivery_for_kind():
    assert delivery_for("iso")[0] == delivery_for("cdrom")[0] == "oemdrv"
    assert delivery_for("url")[0] == "initrd" and "inst.ks=file:/ks.cfg" in delivery_for("url")[1]
    method, why = delivery_for("cloud")
    assert method is None and "cloud" in why


# --- YAML spec ---------------------------------------------------------------------


def test_yaml_inline_kickstart_round_trip_and_lines(tmp_path):
    text = ("name: ksvm\nos: fedora39\ninstall:\n  kind: iso\n  iso: /x.iso\n  kickstart:\n"
            "    text: |\n      text\n      bogus --x\n      auth --useshadow\n")
    with pytest.raises(SpecError) as ei:
        load_spec(text)
    msgs = ei.value.text().splitlines()
    # kickstart line 2 is YAML line 9; the syntax version came from the OS (F39)
    assert msgs == ["<spec>:9: install.kickstart: Unknown command: bogus",
                    "<spec>:10: install.kickstart: auth has been removed."]
    good = text.replace("      text\n      bogus --x\n      auth --useshadow\n", "".join(f"      {l}\n" for l in KS.splitlines()))
    spec = load_spec(good)
    assert spec.install.kickstart == {"text": KS, "version": "F39", "delivery": "oemdrv"}
    again = load_spec(dump_spec(spec))
    assert again.install.kickstart == spec.install.kickstart


def test_yaml_kickstart_file_errors_name_the_file(tmp_path):
    (tmp_path / "my.ks").write_text("text\nlang en_US\nfoo bar\n")
    spec_file = tmp_path / "vm.yaml"
    spec_file.write_text("name: ksvm\nos: rhel9.2\ninstall:\n  kind: url\n  url: http://h/tree/\n"
                         "  kickstart_file: my.ks\n")
    with pytest.raises(SpecError) as ei:
        load_spec(spec_file)
    assert ei.value.text() == f"{tmp_path / 'my.ks'}:3: install.kickstart: Unknown command: foo"
    (tmp_path / "my.ks").write_text(KS)
    spec = load_spec(spec_file)
    assert spec.install.kickstart == {"text": KS, "version": "RHEL9", "delivery": "initrd"}
    spec_file.write_text(spec_file.read_text().replace("my.ks", "missing.ks"))
    with pytest.raises(SpecError) as ei:
        load_spec(spec_file)
    assert f"{spec_file}:6: install.kickstart_file: cannot read the kickstart file" in ei.value.text()


def test_yaml_kickstart_mapping_with_file_and_version(tmp_path):
    (tmp_path / "a.ks").write_text(KS)
    spec_file = tmp_path / "vm.yaml"
    spec_file.write_text("name: k\ninstall:\n  kind: cdrom\n  cdrom: /dev/sr0\n  kickstart:\n"
                         "    file: a.ks\n    version: F40\n")
    assert load_spec(spec_file).install.kickstart == {"text": KS, "version": "F40", "delivery": "oemdrv"}


@pytest.mark.parametrize("yaml_ks,expect", [
    ("    version: RHEL99\n    text: text\n", "install.kickstart.version: Unknown kickstart syntax version"),
    ("    delivery: initrd\n    text: text\n", "install.kickstart.delivery: A 'iso' install gets its kickstart by oemdrv"),
    ("    unknown: 1\n", "install.kickstart: must be the kickstart text, or a mapping"),
])
def test_yaml_kickstart_bad_fields(yaml_ks, expect):
    with pytest.raises(SpecError) as ei:
        load_spec("name: k\ninstall:\n  kind: iso\n  iso: /x.iso\n  kickstart:\n" + yaml_ks)
    assert expect in ei.value.text()


def test_kickstart_on_a_cloud_source_is_refused():
    spec = iso_spec(install=InstallSource(kind="import", image="/x.img", kickstart=ks()))
    msgs = [str(e) for e in validate_spec(spec) if e.field.startswith("install.kickstart")]
    assert msgs == ["install.kickstart: No kickstart here: a 'import' source runs no Anaconda installer: a "
                    "kickstart is only used by ISO, CD-ROM and network (install tree) installs"]


def test_deprecated_commands_are_warnings():
    spec = iso_spec(install=InstallSource(kind="iso", iso="/x.iso", kickstart=ks(KS + "autostep\n")))
    found = [e for e in validate_spec(spec) if e.field == "install.kickstart"]
    assert found and all(not e.is_error for e in found)
    assert found[0].line == KS.count("\n") + 1 and "deprecated" in found[0].message


# --- builder ------------------------------------------------------------------------


def test_commands_pykickstart_cannot_parse_are_errors_not_crashes():
    # pykickstart's RHEL8 handler maps 'method' to a command without a parser (TypeError)
    found = kickstart.validate_kickstart("text\nmethod\n", "RHEL8")
    assert [(p.line, p.severity, p.message) for p in found] == [
        (2, "error", "method is not supported in RHEL8 (it was removed)")]


def test_builder_oemdrv_cdrom_only_in_the_install_xml():
    spec = iso_spec(install=InstallSource(kind="iso", iso="/x.iso", kickstart=ks()))
    disks = builder.offline_disks(spec)
    install = builder.build_domain_xml(spec, None, disks, phase="install", install_oemdrv="/p/oem.iso")
    final = builder.build_domain_xml(spec, None, disks, phase="final", install_oemdrv="/p/oem.iso")
    cds = [d for d in disks_of(install) if d.get("device") == "cdrom"]
    assert [c.find("source").get("file") for c in cds] == ["/x.iso", "/p/oem.iso"]
    assert [c.find("target").get("dev") for c in cds] == ["sda", "sdb"]
    assert all(c.find("readonly") is not None for c in cds)
    assert len([d for d in disks_of(final) if d.get("device") == "cdrom"]) == 1
    # defined only: the definition installs on first start, so it keeps the OEMDRV CD-ROM
    spec.start_install = False
    later = builder.build_domain_xml(spec, None, disks, phase="final", install_oemdrv="/p/oem.iso")
    assert [d.find("source").get("file") for d in disks_of(later) if d.get("device") == "cdrom"] == \
        ["/x.iso", "/p/oem.iso"]


def test_builder_initrd_kickstart_kernel_args_and_virt_install_line():
    spec = iso_spec(os="fedora39", install=InstallSource(kind="url", url="http://h/t/", kernel_args="console=ttyS0",
                                                          kickstart=ks(delivery="initrd")))
    assert builder.install_kernel_args(spec) == "inst.repo=http://h/t/ console=ttyS0 inst.ks=file:/ks.cfg"
    cmd = virt_install.virt_install_cmdline(spec)
    assert "--initrd-inject ks.cfg --extra-args 'console=ttyS0 inst.ks=file:/ks.cfg'" in cmd
    spec.install.kernel_args = "inst.ks=hd:LABEL=X:/my.ks"  # the user's own inst.ks wins
    assert builder.install_kernel_args(spec) == "inst.repo=http://h/t/ inst.ks=hd:LABEL=X:/my.ks"
    iso = iso_spec(install=InstallSource(kind="iso", iso="/x.iso", kickstart=ks()))
    assert "--disk path=/var/lib/libvirt/images/vmtui-newvm-ks-oemdrv.iso,device=cdrom,bus=sata,readonly=on" \
        in virt_install.virt_install_cmdline(iso)


def test_ide_count_includes_the_oemdrv_cdrom():
    spec = iso_spec(machine="pc", cdrom_bus="ide", install=InstallSource(kind="iso", iso="/x.iso", kickstart=ks()))
    from vmtui.core.create.vmspec import DiskSpec
    spec.disks = [DiskSpec(bus="ide", size=2 ** 30) for _ in range(3)]
    assert any(e.field == "disks" and "IDE" in e.message for e in validate_spec(spec))


# --- installer on the test driver ---------------------------------------------------------


@pytest.fixture
def uploads(monkeypatch):
    """The test driver has no volume upload: record the bytes, make an empty volume."""
    got: dict[str, bytes] = {}

    def fake_upload(conn, pool, name, path, progress):
        data = Path(path).read_bytes()
        got[name] = data
        return storage.create_volume(conn, pool, name, len(data), "raw", "thin")

    monkeypatch.setattr(installer, "_upload", fake_upload)
    return got


async def test_iso_install_uploads_and_attaches_an_oemdrv_iso(service, uploads):
    spec = iso_spec(install=InstallSource(kind="iso", iso="default/install.iso", kickstart=ks()))
    uuid = await create_vm(service, spec)
    (name, data), = uploads.items()
    assert name.startswith("vmtui-newvm-") and name.endswith("-ks-oemdrv.iso")
    assert read_oemdrv(data) == ("OEMDRV", KS.encode())
    live = await service.domain_xml(uuid)
    cds = [d.find("source").get("file") for d in disks_of(live) if d.get("device") == "cdrom"]
    assert cds == ["/var/lib/libvirt/images/install.iso", f"/var/lib/libvirt/images/{name}"]
    final = await service.domain_xml(uuid, inactive=True)
    assert name not in final  # only the install run has it
    assert name not in await volumes(service)  # deleted once QEMU opened it


async def test_define_only_keeps_the_oemdrv_cdrom_and_volume(service, uploads):
    spec = iso_spec(start_install=False, install=InstallSource(kind="iso", iso="default/install.iso",
                                                                kickstart=ks()))
    uuid = await create_vm(service, spec)
    (name, _), = uploads.items()
    final = await service.domain_xml(uuid, inactive=True)
    assert f"/var/lib/libvirt/images/{name}" in [d.find("source").get("file") for d in disks_of(final)
                                                 if d.find("source") is not None]
    assert name in await volumes(service)


async def test_url_install_injects_the_kickstart_into_the_initrd(service, uploads, tree_server):
    url, root = tree_server
    make_tree(root, "treeinfo")
    spec = iso_spec(name="netks", os="fedora39", install=InstallSource(kind="url", url=url, kickstart=ks(
        delivery="initrd")))
    uuid = await create_vm(service, spec)
    initrd = next(v for k, v in uploads.items() if k.endswith("-initrd"))
    assert initrd.startswith(b"INITRD" * 100)  # the original, untouched
    assert cpio_names(initrd[600:]) == {"ks.cfg": KS.encode()}
    live = ET.fromstring(await service.domain_xml(uuid))
    assert live.findtext("os/cmdline") == f"inst.repo={url} inst.ks=file:/ks.cfg"


async def test_failure_after_the_oemdrv_upload_removes_it(service, uploads, monkeypatch):
    monkeypatch.setattr(installer, "_start_install", lambda c, x: (_ for _ in ()).throw(
        libvirt.libvirtError("boom")))
    spec = iso_spec(install=InstallSource(kind="iso", iso="default/install.iso", kickstart=ks()))
    with pytest.raises(VmtuiError) as ei:
        await create_vm(service, spec)
    assert "Everything created so far was removed" in str(ei.value)
    assert uploads and set(await volumes(service)) == POOL_VOLUMES
    assert "newvm" not in {d.name for d in service.domains.values()}


async def test_preview_shows_the_kickstart(service):
    spec = iso_spec(install=InstallSource(kind="iso", iso="default/install.iso", kickstart=ks()))
    final, install, cmd = await preview(service, spec)
    assert "vmtui-newvm-ks-oemdrv.iso" in install and "vmtui-newvm-ks-oemdrv.iso" not in final
    assert "device=cdrom,bus=sata,readonly=on" in cmd
    assert set(await volumes(service)) == POOL_VOLUMES


def test_cli_reports_kickstart_errors_as_file_line_and_dry_run_shows_it(small_uri, tmp_path):
    from tests.test_installer import _cli

    (tmp_path / "web.ks").write_text("text\nbogus\nautostep\n")
    spec = tmp_path / "vm.yaml"
    spec.write_text("name: cli-ks\nvirt_type: qemu\nos: rocky9\nmemory: 2G\n"
                    "install: {kind: iso, iso: default/install.iso, kickstart_file: web.ks}\ndisks: [{size: 2G}]\n")
    out = _cli("create", "--from", str(spec), "-c", small_uri)
    assert out.returncode == 2
    assert out.stderr.splitlines() == [
        f"{tmp_path / 'web.ks'}:2: install.kickstart: Unknown command: bogus",
        f"{tmp_path / 'web.ks'}:3: warning: install.kickstart: deprecated command autostep: it has no effect and "
        "may become an error later; remove it"]
    (tmp_path / "web.ks").write_text(KS)
    out = _cli("create", "--from", str(spec), "-c", small_uri, "--dry-run")
    assert out.returncode == 0, out.stderr
    assert "vmtui-cli-ks-ks-oemdrv.iso" in out.stdout and "device=cdrom,bus=sata,readonly=on" in out.stdout


def test_concurrent_validations_keep_their_warnings():
    """The editor validates in worker threads; two at once must both see their warnings."""
    from concurrent.futures import ThreadPoolExecutor

    text = "text\nautostep\nselinux --permissve\n" + "network --bootproto=dhcp\n" * 300
    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(lambda _: kickstart.validate_kickstart(text, "RHEL9"), range(18)))
    alone = kickstart.validate_kickstart(text, "RHEL9")
    assert [(p.line, p.severity) for p in alone[:2]] == [(2, "warning"), (3, "error")]
    assert all(r == alone for r in results)


def test_kickstart_disk_names_must_match_the_vm():
    from vmtui.core.create.vmspec import DiskSpec

    spec = iso_spec(install=InstallSource(kind="iso", iso="/x.iso", kickstart=ks()))  # KS uses vda
    assert not [e for e in validate_spec(spec) if "no disk" in e.message]
    spec.disks = [DiskSpec(bus="sata", size=2 ** 30)]
    found = [e for e in validate_spec(spec) if "no disk" in e.message]
    assert {e.message.split(":", 1)[0] for e in found} == {"line 9", "line 11", "line 13"}
    assert found[0].message.endswith("the VM has no disk 'vda' (its disks: sda)") and not found[0].is_error


def test_plaintext_passwords_are_warned_about():
    text = ("rootpw secret\nrootpw --plaintext secret\nrootpw --iscrypted $6$a$b\nrootpw --lock\n"
            "user --name=a --password=x\nuser --name=b --iscrypted --password=$6$a$b\nuser --name=c\n")
    assert [p.line for p in kickstart.plaintext_password_warnings(text)] == [1, 2, 5]
    spec = iso_spec(install=InstallSource(kind="iso", iso="/x.iso", kickstart=ks(KS.replace(
        "rootpw --iscrypted '$6$salt$hash'", "rootpw hunter2"))))
    found = [e for e in validate_spec(spec) if "plain text" in e.message]
    assert len(found) == 1 and not found[0].is_error and found[0].line == 7
