"""The VM spec as YAML: schema, load/dump round trip, errors with line numbers,
and validate_spec (shared by the wizard and `vmtui create`)."""

from __future__ import annotations

import io
import re
from dataclasses import replace
from pathlib import Path

import jsonschema
import pycdlib
import pytest

from vmtui.core.host.domcaps import HostCaps
from vmtui.core.connection.rows import HostInfo
from vmtui.core.create.osinfo import OsInfo, Resources
from vmtui.core.create.vmspec import DiskSpec, InstallSource, NicSpec, VmSpec
from vmtui.core.create.validation import (
    FieldError,
    PoolFacts,
    local_path_checker,
    name_problems,
    validate_mac,
    validate_spec,
    validate_url,
)
from vmtui.core.create.vmspec_yaml import SPEC_SCHEMA, SpecError, dump_spec, load_spec, parse_spec
from vmtui.core.sizes import format_size

from tests.test_builder import CASES

GIB = 1024 ** 3
DOCS = Path(__file__).resolve().parent.parent / "docs" / "vm-spec.md"


def errors_of(found):
    return {(e.field, e.message) for e in found if e.is_error}


def fields(found, severity="error"):
    return sorted({e.field for e in found if e.severity == severity})


def test_schema_is_a_valid_json_schema():
    jsonschema.Draft202012Validator.check_schema(SPEC_SCHEMA)


def test_minimal_spec_gets_the_defaults():
    s = load_spec("name: web-01\ninstall: {kind: iso, iso: /srv/debian.iso}\n")
    assert s == VmSpec(name="web-01", install=InstallSource(kind="iso", iso="/srv/debian.iso"))


@pytest.mark.parametrize("name", list(CASES))
def test_round_trip(name):
    s = CASES[name][0]
    text = dump_spec(s)
    assert load_spec(text) == s
    assert dump_spec(load_spec(text)) == text


def test_round_trip_of_odd_values():
    s = VmSpec(name="ünï-vm", title="a: b # c", description="line 1\nline 2\n",
               install=InstallSource(kind="url", url="http://m/t", kernel_args="a=1 b='2'"),
               disks=[DiskSpec(size=GIB + 512 * 1024), DiskSpec(size=123456789), DiskSpec(size=3 * 1024 ** 4)],
               nics=[NicSpec(mac="52:54:00:00:00:01"), NicSpec(kind="macvtap", source="eno1", mode="passthrough")],
               memory_mib=1536, max_memory_mib=4096, sockets=1, cores=1, threads=2)
    text = dump_spec(s)
    assert "memory: 1536M" in text and "max_memory: 4G" in text and "size: 3T" in text
    assert load_spec(text) == s


def test_sizes_and_memory_forms():
    base = "name: x\ninstall: {kind: none}\n"
    for text, mib in (("2G", 2048), ("2048M", 2048), ("2048", 2048), ("1.5G", 1536), ("2GiB", 2048)):
        assert load_spec(base + f"memory: {text}\n").memory_mib == mib
    assert load_spec(base + "memory: 512\n").memory_mib == 512
    for text, n in (("20G", 20 * GIB), ("21474836480", 20 * GIB), ("1.5T", int(1.5 * 1024 ** 4)),
                    ("512M", 512 * 1024 ** 2), ("10GB", 10 * 1000 ** 3)):
        assert load_spec(base + f"disks: [{{size: {text}}}]\n").disks[0].size == n
    assert format_size(20 * GIB) == "20G" and format_size(1536 * 1024 ** 2) == "1536M"
    assert format_size(1000) == 1000


def test_cpu_mode_defaults_to_host_model_for_qemu():
    assert load_spec("name: x\nvirt_type: qemu\ninstall: {kind: none}\n").cpu_mode == "host-model"
    assert load_spec("name: x\ninstall: {kind: none}\n").cpu_mode == "host-passthrough"
    with pytest.raises(SpecError) as ei:
        load_spec("name: x\nvirt_type: qemu\ncpu_mode: host-passthrough\ninstall: {kind: none}\n")
    assert ei.value.path == "cpu_mode" and ei.value.line == 3


def test_mac_without_quotes_stays_a_string():
    s = load_spec("name: x\ninstall: {kind: none}\nnics:\n  - mac: 52:54:00:12:34:56\n")
    assert s.nics[0].mac == "52:54:00:12:34:56"


BAD = """\
name: web-01
memory: 2G
vcpuz: 2
install:
  kind: floppy
disks:
  - size: 20G
    bus: usb
  - size: lots
nics:
  - mac: 52:54:00:12:34:56
    model: 7
"""


def test_schema_errors_have_paths_and_lines():
    with pytest.raises(SpecError) as ei:
        load_spec(BAD)
    got = {(e.path, e.line) for e in ei.value.errors}
    assert ("vcpuz", 3) in got
    assert ("install.kind", 5) in got
    assert ("disks[0].bus", 8) in got
    assert ("nics[0].model", 12) in got
    messages = {e.path: e.message for e in ei.value.errors}
    assert "did you mean 'vcpus'" in messages["vcpuz"]
    assert "must be one of: iso, cdrom, url" in messages["install.kind"]
    assert "must be a string" in messages["nics[0].model"]
    text = str(ei.value)
    assert "<spec>:3: vcpuz: unknown key 'vcpuz'" in text


def test_conversion_and_semantic_errors_have_lines():
    text = ("name: web-01\nmemory: 2.3M\ninstall:\n  kind: url\n  url: file:///srv/tree\n"
            "disks:\n  - size: 20\n  - size: lots\nnics:\n  - mac: '01:00:5e:00:00:01'\n")
    with pytest.raises(SpecError) as ei:
        load_spec(text)
    got = {(e.path, e.line) for e in ei.value.errors}
    assert ("memory", 2) in got
    assert ("disks[1].size", 8) in got
    # conversion errors come first; fix them and the semantic ones show
    with pytest.raises(SpecError) as ei:
        load_spec(text.replace("2.3M", "2G").replace("lots", "1G"))
    got = {e.path: (e.line, e.message) for e in ei.value.errors}
    assert got["install.url"][0] == 5 and "http://, https:// or ftp://" in got["install.url"][1]
    assert got["disks[0].size"][0] == 7 and "write 20G" in got["disks[0].size"][1]
    assert got["nics[0].mac"][0] == 10 and "multicast" in got["nics[0].mac"][1]


@pytest.mark.parametrize("text,line,fragment", [
    ("name: x\nmemory: [1\n", 3, "not valid YAML"),
    ("name: x\n\tmemory: 2G\n", 2, "not valid YAML"),
    ("", 1, "empty"),
    ("- a\n- b\n", 1, "must be a mapping"),
    ("name: x\nname: y\n", 2, "duplicate key"),
    ("memory: 2G\n", 1, "missing"),
    ("name: x\ninstall: {kind: iso}\n", 2, "Choose the ISO"),
    ("name: 12345\n", 1, "must be a string"),
    ("name: '12345'\ninstall: {kind: none}\n", 1, "only digits"),
    ("name: a/b\ninstall: {kind: none}\n", 1, "'/'"),
    ("name: \"a\\nb\"\ninstall: {kind: none}\n", 1, "control characters"),
    ("name: x\nversion: 2\n", 2, "must be one of: 1"),
    ("name: x\ninstall: {kind: none}\nsockets: 2\ncores: 2\nthreads: 1\n", 3, "not 2 CPUs"),
    ("name: x\nmachine: q35\ncdrom_bus: ide\ninstall: {kind: iso, iso: /a.iso}\n", 3, "no IDE"),
    ("name: x\nfirmware: bios\nsecure_boot: true\ninstall: {kind: none}\n", 3, "needs UEFI"),
    ("name: x\ngraphics_listen: everywhere\ninstall: {kind: none}\n", 2, "IP address"),
    ("name: x\ntitle: \"two\\nlines\"\ninstall: {kind: none}\n", 2, "single line"),
    ("name: x\ninstall: {kind: pxe}\nnics: []\n", 2, "needs a network"),
    ("name: x\ninstall: {kind: cloud}\n", 2, "cloud image"),
    ("name: x\ninstall: {kind: none}\ndisks:\n  - {mode: existing}\n", 4, "Choose the disk"),
    ("name: x\ninstall: {kind: none}\ndisks:\n  - {size: 1G, format: raw, backing: /b.qcow2}\n", 4, "qcow2"),
])
def test_error_cases(text, line, fragment):
    with pytest.raises(SpecError) as ei:
        load_spec(text)
    assert any(fragment in e.message and e.line == line for e in ei.value.errors), str(ei.value)


def test_load_from_path(tmp_path):
    p = tmp_path / "vm.yaml"
    p.write_text("name: from-file\ninstall: {kind: none}\n")
    assert load_spec(p).name == "from-file"
    assert load_spec(str(p)).name == "from-file"
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nbogus: 1\n")
    with pytest.raises(SpecError) as ei:
        load_spec(bad)
    assert str(ei.value).startswith(f"{bad}:2: bogus: unknown key")
    with pytest.raises(SpecError) as ei:
        load_spec(tmp_path / "missing.yaml")
    assert "cannot read" in str(ei.value)


def test_parse_spec_keeps_lines_for_host_errors():
    doc = parse_spec("name: alpha\ninstall: {kind: none}\ndisks:\n  - size: 5G\n    pool: default\n")
    issues = doc.issues(validate_spec(doc.spec, existing_names={"alpha"}, pools={"default": {"alpha.qcow2"}}))
    assert {(i.path, i.line) for i in issues} == {("name", 1), ("disks[0].name", 4)}


# --- validate_spec -----------------------------------------------------------

HOST = HostCaps(kvm_available=False, virt_types=["qemu"], cpus=4, memory_total_kib=8 * 1024 * 1024,
                efi_autoselect=False, uefi_loaders=[], secure_boot=False, max_vcpus=255,
                cpu_modes={"qemu": {"host-passthrough": False, "host-model": True}}, from_libvirt=True)


def ok_spec(**kw) -> VmSpec:
    base = dict(name="vm", virt_type="qemu", cpu_mode="host-model", install=InstallSource(kind="none"))
    base.update(kw)
    return VmSpec(**base)


def test_valid_spec_has_no_errors():
    assert validate_spec(ok_spec(), host=HOST, existing_names={"other"}, pools={"default": set()},
                         networks={"default"}) == []


def test_host_limits():
    found = validate_spec(ok_spec(memory_mib=16 * 1024, vcpus=6, virt_type="kvm", firmware="uefi",
                                  cpu_mode="host-passthrough"), host=HOST)
    assert fields(found) == ["firmware", "memory", "virt_type"]
    assert fields(found, "warning") == ["vcpus"]
    assert any("16G is more than the host's 8G" in e.message for e in found)
    # HostInfo works too (memory and CPUs only)
    info = HostInfo(uri="x", cpus=2, memory_total_kib=1024 * 1024)
    assert fields(validate_spec(ok_spec(memory_mib=2048), host=info)) == ["memory"]
    assert fields(validate_spec(ok_spec(vcpus=300), host=HOST)) == ["vcpus"]
    caps = replace(HOST, machines=["pc"], arch="aarch64")
    assert fields(validate_spec(ok_spec(machine="q35"), host=caps)) == ["arch", "machine"]


def test_cpu_mode_support_from_caps():
    found = validate_spec(ok_spec(virt_type="qemu", cpu_mode="host-passthrough"), host=HOST)
    assert fields(found) == ["cpu_mode"] and "host-model" in found[0].message
    kvm = replace(HOST, kvm_available=True, cpu_modes={"kvm": {"host-model": False}})
    assert fields(validate_spec(ok_spec(virt_type="kvm", cpu_mode="host-model"), host=kvm)) == ["cpu_mode"]
    assert fields(validate_spec(ok_spec(cpu_mode="custom"))) == ["cpu_model"]


def test_secure_boot_rules():
    assert fields(validate_spec(ok_spec(firmware="uefi", secure_boot=True, machine="pc"))) == ["secure_boot"]
    uefi_host = replace(HOST, efi_autoselect=True)
    assert fields(validate_spec(ok_spec(firmware="uefi", secure_boot=True), host=uefi_host)) == ["secure_boot"]
    assert validate_spec(ok_spec(firmware="uefi", secure_boot=True), host=replace(uefi_host, secure_boot=True)) == []


def test_names():
    assert name_problems("web-01") == []
    for bad in ("", " ", "a/b", "123", ".", "..", " lead", "tab\there", "x" * 201):
        assert any(e.is_error for e in name_problems(bad)), bad
    for warn in ("my vm", "ünïcode", "<&>"):
        found = name_problems(warn)
        assert found and all(e.severity == "warning" for e in found), warn
    found = validate_spec(ok_spec(name="alpha"), existing_names={"alpha", "bravo"})
    assert errors_of(found) == {("name", "A VM named 'alpha' already exists on this host")}


def test_pools_volumes_and_networks():
    pools = {"default": PoolFacts(volumes={"vm.qcow2", "debian.iso"}, available=10 * GIB),
             "off": PoolFacts(active=False)}
    s = ok_spec(install=InstallSource(kind="iso", iso="default/nope.iso"),
                disks=[DiskSpec(size=20 * GIB), DiskSpec(size=20 * GIB, pool="default", provisioning="thick",
                                                          format="raw"),
                       DiskSpec(size=GIB, pool="off"), DiskSpec(size=GIB, pool="gone"),
                       DiskSpec(mode="existing", path="default/missing.img")],
                nics=[NicSpec(source="nat"), NicSpec(kind="bridge", source="br0")])
    found = validate_spec(s, pools=pools, networks={"default"})
    assert fields(found) == ["disks[0].name", "disks[1].size", "disks[2].pool", "disks[3].pool",
                             "disks[4].path", "install.iso", "nics[0].source"]
    # two disks that would get the same volume name
    s2 = ok_spec(disks=[DiskSpec(size=GIB, name="same.img"), DiskSpec(size=GIB, name="same.img")])
    assert fields(validate_spec(s2)) == ["disks[1].name"]
    assert fields(validate_spec(ok_spec(disks=[DiskSpec(size=GIB, name="bad/name")]))) == ["disks[0].name"]


def test_nic_checks():
    s = ok_spec(nics=[NicSpec(mac="52:54:00:00:00:01"), NicSpec(mac="52:54:00:00:00:01"),
                      NicSpec(mac="zz"), NicSpec(kind="macvtap", source="")])
    assert fields(validate_spec(s)) == ["nics[1].mac", "nics[2].mac", "nics[3].source"]
    assert validate_mac("52:54:00:ab:cd:ef") is None
    assert "multicast" in validate_mac("01:00:5e:00:00:01")
    assert validate_mac("52-54-00-ab-cd-ef")


def test_urls():
    assert validate_url("http://deb.debian.org/debian/dists/stable/main/installer-amd64/") is None
    assert validate_url("ftp://mirror/tree") is None
    assert validate_url("https://h:8443/x") is None
    for bad in ("file:///srv/tree", "/srv/tree", "nfs://h/x", "http://", "http://h/a b", ""):
        assert validate_url(bad), bad


def test_pxe_network_checks():
    s = ok_spec(install=InstallSource(kind="pxe", network="prov"), nics=[NicSpec(source="default")])
    assert fields(validate_spec(s)) == ["install.network"]
    s = ok_spec(install=InstallSource(kind="pxe", network="prov"), nics=[])
    assert fields(validate_spec(s, networks={"default"})) == ["install.network"]
    assert validate_spec(s, networks={"prov"}) == []


def test_ide_limits():
    s = ok_spec(machine="pc", cdrom_bus="ide", install=InstallSource(kind="iso", iso="/a.iso"),
                disks=[DiskSpec(size=GIB, bus="ide") for _ in range(4)])
    assert fields(validate_spec(s)) == ["disks"]
    s = ok_spec(machine="q35", disks=[DiskSpec(size=GIB, bus="ide")])
    assert fields(validate_spec(s)) == ["disks[0].bus"]


def test_os_minimum_is_a_warning():
    os_ = OsInfo(id="http://x/os/1", short_id="x1", short_ids=("x1",), name="X 1",
                 minimum=Resources(1024, 2, None),
                 resources_by_arch={})
    from vmtui.core.create.osinfo import ResourceSet
    os_.resources_by_arch = {"all": ResourceSet(minimum=Resources(1024, 2, None))}
    found = validate_spec(ok_spec(memory_mib=512, vcpus=1), osinfo=os_)
    assert fields(found) == [] and fields(found, "warning") == ["memory", "vcpus"]


def _iso(path: Path) -> Path:
    iso = pycdlib.PyCdlib()
    iso.new(vol_ident="TESTISO")
    iso.add_fp(io.BytesIO(b"hello"), 5, "/HELLO.TXT;1")
    iso.write(str(path))
    iso.close()
    return path


def test_local_files(tmp_path):
    good = _iso(tmp_path / "good.iso")
    text = tmp_path / "notes.txt"
    text.write_text("not an iso" * 1000)
    img = tmp_path / "disk.img"
    img.write_bytes(b"\0" * 4096)

    def check(**kw):
        return validate_spec(ok_spec(**kw), check_path=local_path_checker)

    assert check(install=InstallSource(kind="iso", iso=str(good))) == []
    found = check(install=InstallSource(kind="iso", iso=str(text)))
    assert errors_of(found) == {("install.iso", f"{text} is not an ISO image (no ISO 9660 volume descriptor)")}
    found = check(install=InstallSource(kind="iso", iso=str(tmp_path / "gone.iso")))
    assert "No such file" in found[0].message
    assert fields(check(install=InstallSource(kind="iso", iso=str(tmp_path)))) == ["install.iso"]
    assert fields(check(install=InstallSource(kind="iso", iso="relative/x.iso/y"))) == []  # pool/volume form
    assert fields(check(install=InstallSource(kind="cdrom", cdrom=str(img)))) == ["install.cdrom"]
    assert check(install=InstallSource(kind="import", image=str(img)), disks=[]) == []
    assert fields(check(install=InstallSource(kind="import", image=str(tmp_path / "x.img")))) == ["install.image"]
    assert fields(check(disks=[DiskSpec(mode="existing", path=str(tmp_path))])) == ["disks[0].path"]


def test_field_error_text():
    assert str(FieldError("name", "bad")) == "name: bad"
    assert str(FieldError("vcpus", "many", "warning")) == "warning: vcpus: many"


def test_docs_example_loads():
    text = DOCS.read_text()
    blocks = re.findall(r"```yaml\n(.*?)```", text, re.S)
    assert blocks, "docs/vm-spec.md has no yaml example"
    for block in blocks:
        load_spec(block)
    # every top-level key of the schema is documented
    for key in SPEC_SCHEMA["properties"]:
        assert f"`{key}`" in text, key
