"""vmtui.core.create.osinfo: the osinfo-db catalogue, media/tree detection, resources.

Three groups: a hand-written fixture database (tests/data/osinfo, exact
values), the host's real /usr/share/osinfo (skipped when absent; values read
from that database's files), and no database at all (the built-in list).
ISOs are built with pycdlib in tmp_path.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
from pathlib import Path

import pycdlib
import pytest

from tests.prereq import missing, needs
from vmtui.core.create import osinfo
from vmtui.core.create.osinfo import (
    Detection,
    IsoIds,
    NotAnIsoError,
    OsDb,
    Resources,
    check_resources,
    default_db,
    default_paths,
    parse_treeinfo,
    read_iso_ids,
    recommended_defaults,
)

DATA = Path(__file__).resolve().parent / "data"
FIXTURE_DB = DATA / "osinfo"
REAL_DB = Path("/usr/share/osinfo")
GIB = 1024 ** 3

needs_real_db = needs((REAL_DB / "os").is_dir(), "osinfo-db is not installed")

VIRTIO_BLK = "http://pcisig.com/pci/1af4/1001"
VIRTIO_NET = "http://pcisig.com/pci/1af4/1000"
VIRTIO10_NET = "http://pcisig.com/pci/1af4/1041"
ICH6_AUDIO = "http://pcisig.com/pci/8086/2668"


def make_iso(path: Path, volume_id: str, system_id: str = "", publisher: str = "",
             application: str = "") -> Path:
    """A small real ISO 9660 image with the given primary volume descriptor ids."""
    iso = pycdlib.PyCdlib()
    iso.new(interchange_level=4, vol_ident=volume_id, sys_ident=system_id,
            pub_ident_str=publisher, app_ident_str=application)
    data = b"not really a kernel"
    iso.add_fp(io.BytesIO(data), len(data), "/VMLINUZ.;1")
    iso.write(str(path))
    iso.close()
    return path


@pytest.fixture(scope="module")
def fdb() -> OsDb:
    return OsDb.load([FIXTURE_DB])


@pytest.fixture(scope="module")
def rdb() -> OsDb:
    if not (REAL_DB / "os").is_dir():
        missing("osinfo-db is not installed")
    return OsDb.load([REAL_DB])


# --------------------------------------------------------------------------
# Fixture database: parsing


def test_fixture_db_loads(fdb):
    assert fdb.available
    assert fdb.note == ""
    assert fdb.version == "20990101"
    assert fdb.paths == [FIXTURE_DB]
    assert fdb.errors == []
    ids = {o.id for o in fdb}
    assert {"http://example.org/exampleos/1", "http://example.org/exampleos/2",
            "http://example.net/cloneos/1", "http://example.com/exwin/2030"} <= ids
    # 4 files + the 3 generic entries (the fixture has no generic Linux/win10)
    assert len(fdb) == 7


def test_parse_plain_fields(fdb):
    o = fdb.get("exampleos1")
    assert o.id == "http://example.org/exampleos/1"
    assert o.short_id == "exampleos1"
    assert o.short_ids == ("exampleos1", "exampleos-one")
    assert o.name == "ExampleOS 1"  # not the xml:lang="de" translation
    assert o.vendor == "Example Project"
    assert o.family == "linux"
    assert o.distro == "exampleos"
    assert o.version == "1"
    assert o.codename == "Alpha"
    assert o.release_date == "2015-04-01"
    assert o.eol_date == "2020-04-01"
    assert o.eol is True
    assert o.label == "ExampleOS 1 (exampleos1)"
    assert o.is_windows is False
    assert o.derives_from is None


def test_parse_resources_devices_firmware(fdb):
    o = fdb.get("exampleos1")
    assert o.minimum == Resources(ram_mib=512, vcpus=1, storage_bytes=5 * GIB)
    assert o.recommended == Resources(ram_mib=1024, vcpus=2, storage_bytes=10 * GIB)
    assert o.maximum == Resources()
    assert o.virtio and o.virtio_net and o.uefi
    assert ICH6_AUDIO in o.devices
    # The kickstart script of the x86_64 media marks it as an Anaconda installer.
    assert o.is_anaconda
    # aarch64 has its own minimum; the recommendation comes from arch="all".
    arm = o.resources_for("aarch64")
    assert arm.minimum == Resources(ram_mib=1024, vcpus=2, storage_bytes=None)
    assert arm.recommended == Resources(ram_mib=1024, vcpus=2, storage_bytes=10 * GIB)
    assert o.resources_for("ppc64le").minimum == o.minimum  # falls back to "all"


def test_parse_media_and_tree_rules(fdb):
    o = fdb.get("exampleos1")
    assert len(o.media) == 2
    m = o.media[0]
    assert (m.arch, m.volume_id, m.system_id, m.publisher_id, m.application_id) == (
        "x86_64", r"EXAMPLEOS_1\.[0-9]+_X86_64", "LINUX", None, None)
    assert (m.kernel, m.initrd, m.live, m.variant) == (
        "isolinux/vmlinuz", "isolinux/initrd.img", False, "server")
    assert m.url.endswith("ExampleOS-1.4-x86_64-dvd.iso")
    assert m.regexes[0].pattern == r"EXAMPLEOS_1\.[0-9]+_X86_64"
    assert m.regexes[2] is None
    assert [x.arch for x in o.media_for("aarch64")] == ["aarch64"]
    (t,) = o.trees
    assert (t.arch, t.family, t.version, t.treeinfo_arch, t.variant) == (
        "x86_64", "ExampleOS", r"^1(\.[0-9]+)?$", "x86_64", None)
    assert t.url == "https://example.org/exampleos/1/x86_64/os"
    assert (t.kernel, t.initrd) == ("images/pxeboot/vmlinuz", "images/pxeboot/initrd.img")


def test_derives_from_inheritance(fdb):
    parent, child = fdb.get("exampleos1"), fdb.get("exampleos2")
    assert child.derives_from == parent.id
    # <resources arch="all" inherit="true"/>: the parent's, for every arch
    assert child.minimum == parent.minimum
    assert child.recommended == parent.recommended
    assert child.resources_for("aarch64") == parent.resources_for("aarch64")
    # devices: inherited, plus its own, minus supported="false"
    assert VIRTIO_BLK in child.devices and VIRTIO_NET in child.devices
    assert VIRTIO10_NET in child.devices and VIRTIO10_NET not in parent.devices
    assert ICH6_AUDIO not in child.devices and ICH6_AUDIO in parent.devices
    assert child.virtio and child.virtio_net
    assert child.uefi  # firmware inherited
    assert child.is_anaconda  # install scripts inherited
    # media and trees identify one release: never inherited
    assert [m.volume_id for m in child.media] == ["EXAMPLEOS_2_LIVE"]
    assert len(child.trees) == 1
    assert child.eol_date is None and child.eol is False
    assert child.name == "ExampleOS 2"


def test_clones_inheritance(fdb):
    clone, source = fdb.get("cloneos1"), fdb.get("exampleos1")
    assert clone.clones == source.id and clone.derives_from is None
    assert clone.minimum == source.minimum
    assert clone.recommended == source.recommended
    assert clone.devices == source.devices
    assert clone.uefi and clone.virtio and clone.is_anaconda
    assert clone.media == [] and clone.trees == []


def test_windows_entry(fdb):
    w = fdb.get("exwin2030")
    assert w.is_windows and w.family == "winnt"
    assert w.minimum == Resources(ram_mib=4096, vcpus=2, storage_bytes=64 * GIB)
    assert w.recommended == Resources()
    assert w.maximum == Resources(ram_mib=1024 * 1024, vcpus=64, storage_bytes=None)
    assert not w.virtio and not w.virtio_net
    assert w.uefi and not w.is_anaconda
    assert w.resources_for("aarch64").minimum == Resources()  # x86_64 only
    assert w.install_scripts == ("http://example.com/windows/unattend/jeos",)
    assert w.eol is False  # eol in 2040


def test_get(fdb):
    o = fdb.get("exampleos1")
    assert fdb.get("http://example.org/exampleos/1") is o
    assert fdb.get("exampleos-one") is o
    assert fdb.get("ExampleOS1") is o  # short ids are case-insensitive
    assert fdb.get("nosuchos") is None
    assert fdb.get("") is None and fdb.get(None) is None
    assert "exampleos2" in fdb and "nosuchos" not in fdb
    assert o == fdb.get("exampleos-one") and len({o, fdb.get("exampleos1")}) == 1


def test_builtin_generic_entries_alongside_fixture(fdb):
    g = fdb.get("generic")
    assert g is fdb.generic and g.name == "Generic or unknown OS" and g.builtin
    assert fdb.get("unknown") is g
    linux = fdb.get("linux")
    assert linux.name == "Generic Linux" and linux.family == "linux"
    assert fdb.get("linux2022") is linux
    win = fdb.get("windows")
    assert win.name == "Generic Windows" and win.is_windows
    assert fdb.get("win10") is win


def test_all_order(fdb):
    ids = [o.short_id for o in fdb.all()]
    # generic entries first, then vendors alphabetically, newest version first
    assert ids == ["generic", "linux2022", "win10", "cloneos1", "exwin2030", "exampleos2", "exampleos1"]
    assert "exampleos1" not in [o.short_id for o in fdb.all(include_eol=False)]


def test_search(fdb):
    def ids(text, **kw):
        return [o.short_id for o in fdb.search(text, **kw)]

    assert ids("exampleos") == ["exampleos2", "exampleos1"]
    assert ids("exampleos 1")[0] == "exampleos1"
    assert ids("ExampleOS 1") == ids("exampleos 1")
    assert ids("EXAMPLEOS-ONE") == ["exampleos1"]
    assert ids("bravo") == ["exampleos2"]  # codename
    assert ids("example windows") == ["exwin2030"]  # every word must match
    assert ids("example project 2") == ["exampleos2"]
    assert ids("exampleos 3") == []
    assert ids("clone") == ["cloneos1"]
    assert ids("exampleos", include_eol=False) == ["exampleos2"]
    assert ids("") == [o.short_id for o in fdb.all()]
    assert ids("generic")[0] == "generic"


# --------------------------------------------------------------------------
# Fixture database: detection


def test_detect_iso_fixture(fdb, tmp_path):
    iso = make_iso(tmp_path / "ex.iso", "EXAMPLEOS_1.4_X86_64", system_id="LINUX")
    d = fdb.detect_iso(iso)
    assert isinstance(d, Detection)
    assert d.os.short_id == "exampleos1"
    assert d.media is fdb.get("exampleos1").media[0]
    assert d.tree is None
    assert (d.kernel, d.initrd) == ("isolinux/vmlinuz", "isolinux/initrd.img")
    assert d.arch == "x86_64" and d.exact_arch
    assert d.ids.volume_id == "EXAMPLEOS_1.4_X86_64"
    assert not d.live


def test_detect_iso_other_arch(fdb, tmp_path):
    iso = make_iso(tmp_path / "arm.iso", "EXAMPLEOS_1.7_AARCH64")
    d = fdb.detect_iso(iso)  # host arch x86_64: still identified, flagged
    assert d.os.short_id == "exampleos1"
    assert d.arch == "aarch64" and not d.exact_arch
    assert d.kernel == "images/pxeboot/vmlinuz"
    assert fdb.detect_iso(iso, arch="aarch64").exact_arch


def test_detect_iso_live_media(fdb, tmp_path):
    d = fdb.detect_iso(make_iso(tmp_path / "live.iso", "EXAMPLEOS_2_LIVE"))
    assert d.os.short_id == "exampleos2"
    assert d.live and d.kernel == "live/vmlinuz"


def test_detect_iso_every_field_must_match(fdb):
    # The x86_64 rule also wants system id LINUX.
    assert fdb.detect_iso_ids(IsoIds("EXAMPLEOS_1.4_X86_64")) is None
    assert fdb.detect_iso_ids(IsoIds("EXAMPLEOS_1.4_X86_64", "LINUX")).os.short_id == "exampleos1"
    # Matching is case-sensitive, like libosinfo's.
    assert fdb.detect_iso_ids(IsoIds("exampleos_1.4_x86_64", "LINUX")) is None
    assert fdb.detect_iso_ids(IsoIds("")) is None


def test_detect_iso_volume_size(fdb):
    pub = "EXAMPLE CORPORATION"
    small = fdb.detect_iso_ids(IsoIds("EXSRV_X64FRE_EN-US", publisher_id=pub, volume_size=4096000))
    big = fdb.detect_iso_ids(IsoIds("EXSRV_X64FRE_EN-US", publisher_id=pub, volume_size=8192000))
    assert small.os.short_id == big.os.short_id == "exwin2030"
    assert small.media.variant == "standard" and big.media.variant == "datacenter"
    # A size no rule has still identifies the OS (a respin), just less surely.
    assert fdb.detect_iso_ids(IsoIds("EXSRV_X64FRE_EN-US", publisher_id=pub, volume_size=1)).os.short_id == "exwin2030"
    assert fdb.detect_iso_ids(IsoIds("EXSRV_X64FRE_EN-US", publisher_id="SOMEONE ELSE")) is None


def test_detect_unknown_iso(fdb, tmp_path):
    assert fdb.detect_iso(make_iso(tmp_path / "x.iso", "MY_BACKUP_DISC", "LINUX")) is None


def test_detect_tree_fixture(fdb):
    old = "[general]\nfamily = ExampleOS\nversion = 1.4\narch = x86_64\n"
    d = fdb.detect_tree(old)
    assert d.os.short_id == "exampleos1" and d.media is None
    assert d.tree is fdb.get("exampleos1").trees[0]
    # No [images-*] in this treeinfo: the database's paths.
    assert (d.kernel, d.initrd) == ("images/pxeboot/vmlinuz", "images/pxeboot/initrd.img")

    new = (
        "[header]\ntype = productmd.treeinfo\nversion = 1.2\n\n"
        "[release]\nname = ExampleOS\nshort = ExampleOS\nversion = 2\n\n"
        "[tree]\narch = x86_64\nvariants = Server\n\n"
        "[variant-Server]\nid = Server\nuid = Server\n\n"
        "[images-x86_64]\nkernel = boot/x86_64/linux\ninitrd = boot/x86_64/initrd\n"
    )
    d = fdb.detect_tree(new)
    assert d.os.short_id == "exampleos2"
    assert d.treeinfo.variant == "Server"
    # The tree rule has no kernel: the treeinfo's own [images-x86_64] one.
    assert (d.kernel, d.initrd) == ("boot/x86_64/linux", "boot/x86_64/initrd")

    assert fdb.detect_tree(old.replace("1.4", "3")) is None
    assert fdb.detect_tree(new.replace("Server", "Workstation")) is None  # variant must match


def test_detect_tree_arch_from_argument(fdb):
    # A treeinfo without arch is matched with the arch asked for.
    text = "[general]\nfamily = ExampleOS\nversion = 1\n"
    assert fdb.detect_tree(text, arch="x86_64").os.short_id == "exampleos1"
    assert fdb.detect_tree(text, arch="s390x") is None


# --------------------------------------------------------------------------
# ISO reading and .treeinfo parsing


def test_read_iso_ids_matches_pycdlib(tmp_path):
    iso_path = make_iso(tmp_path / "ids.iso", "Fedora-S-dvd-x86_64-37", system_id="LINUX",
                        publisher="THE PUBLISHER", application="GENISOIMAGE ISO 9660 FILESYSTEM")
    ids = read_iso_ids(iso_path)
    assert ids == IsoIds("Fedora-S-dvd-x86_64-37", "LINUX", "THE PUBLISHER",
                         "GENISOIMAGE ISO 9660 FILESYSTEM", ids.volume_size)
    iso = pycdlib.PyCdlib()
    iso.open(str(iso_path))
    try:
        pvd = iso.pvd
        assert ids.volume_id == pvd.volume_identifier.decode().rstrip()
        assert ids.system_id == pvd.system_identifier.decode().rstrip()
        assert ids.publisher_id == pvd.publisher_identifier.text.decode().rstrip()
        assert ids.volume_size == pvd.space_size * pvd.log_block_size
    finally:
        iso.close()
    assert ids.volume_size == iso_path.stat().st_size


def test_read_iso_ids_blank_fields(tmp_path):
    # (pycdlib writes its own name as application id unless given one)
    ids = read_iso_ids(make_iso(tmp_path / "blank.iso", "ONLY_VOLUME", application=" "))
    assert (ids.volume_id, ids.system_id, ids.publisher_id, ids.application_id) == ("ONLY_VOLUME", "", "", "")


def test_not_an_iso(tmp_path, fdb):
    text = tmp_path / "notes.txt"
    text.write_text("hello\n" * 10000)
    with pytest.raises(NotAnIsoError, match="is not an ISO 9660 image"):
        read_iso_ids(text)
    with pytest.raises(NotAnIsoError):
        fdb.detect_iso(text)
    empty = tmp_path / "empty.iso"
    empty.write_bytes(b"")
    with pytest.raises(NotAnIsoError, match="empty.iso is not an ISO 9660 image"):
        read_iso_ids(empty)
    with pytest.raises(NotAnIsoError, match="is a directory"):
        read_iso_ids(tmp_path)
    assert issubclass(NotAnIsoError, ValueError)


def test_missing_iso(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        read_iso_ids(tmp_path / "gone.iso")


def test_parse_treeinfo_old_style():
    text = """[general]
name = CentOS-7
family = CentOS
timestamp = 1587405659.3
variant =
version = 7
packagedir =
arch = x86_64

[stage2]
mainimage = LiveOS/squashfs.img

[images-x86_64]
kernel = images/pxeboot/vmlinuz
initrd = images/pxeboot/initrd.img
boot.iso = images/boot.iso

[images-xen]
kernel = images/pxeboot/vmlinuz
initrd = images/pxeboot/initrd.img
"""
    info = parse_treeinfo(text)
    assert info == osinfo.TreeInfo(family="CentOS", version="7", variant=None, arch="x86_64",
                                   kernel="images/pxeboot/vmlinuz", initrd="images/pxeboot/initrd.img")


def test_parse_treeinfo_productmd_without_general():
    text = """[header]
type = productmd.treeinfo
version = 1.2

[release]
name = Fedora
short = Fedora
version = 37

[tree]
arch = s390x
variants = Everything,Server

[images-s390x]
initrd = images/initrd.img
kernel = images/kernel.img

[checksums]
images/kernel.img = sha256:0123
"""
    info = parse_treeinfo(text)
    assert (info.family, info.version, info.arch, info.variant) == ("Fedora", "37", "s390x", "Everything")
    assert (info.kernel, info.initrd) == ("images/kernel.img", "images/initrd.img")


def test_parse_treeinfo_rejects_garbage():
    with pytest.raises(ValueError, match="not a .treeinfo"):
        parse_treeinfo("<html>404 Not Found</html>")
    with pytest.raises(ValueError, match="not a .treeinfo"):
        parse_treeinfo("[stage2]\nmainimage = x\n")


# --------------------------------------------------------------------------
# No database: the built-in list


def test_missing_db_falls_back(tmp_path):
    db = OsDb.load([tmp_path / "nothing"])
    assert not db.available
    assert db.note == f"osinfo-db not found in {tmp_path / 'nothing'}: showing a generic list"
    assert [o.short_id for o in db.all()] == ["generic", "linux2022", "win10"]
    assert [o.name for o in db.all()] == ["Generic or unknown OS", "Generic Linux", "Generic Windows"]
    linux, win = db.get("linux"), db.get("windows")
    assert linux.recommended == Resources(ram_mib=2048, vcpus=2, storage_bytes=20 * GIB)
    assert win.recommended == Resources(ram_mib=4096, vcpus=2, storage_bytes=64 * GIB)
    assert linux.virtio and not win.virtio and win.is_windows
    assert db.get("generic").recommended.ram_mib == 2048
    assert db.search("windows")[0] is win
    assert db.detect_iso_ids(IsoIds("Debian 11.5.0 amd64 n")) is None
    assert db.detect_tree("[general]\nfamily = Fedora\nversion = 37\narch = x86_64\n") is None


def test_empty_db_dir_falls_back(tmp_path):
    (tmp_path / "os").mkdir()
    db = OsDb.load([tmp_path])
    assert not db.available
    assert "no readable OS entries" in db.note and "generic list" in db.note
    assert db.get("generic") is not None


def test_broken_files_are_skipped(tmp_path):
    root = tmp_path / "db"
    shutil.copytree(FIXTURE_DB, root)
    (root / "os" / "example.org" / "broken.xml").write_text("<libosinfo><os id='x'>")
    # <os>.d/ directories (Windows driver lists) are not OS entries.
    extra = root / "os" / "example.org" / "exampleos-1.d"
    extra.mkdir()
    (extra / "drivers.xml").write_text(
        '<libosinfo><os id="http://example.org/exampleos/1"><short-id>exampleos1</short-id></os></libosinfo>')
    db = OsDb.load([root])
    assert db.available
    assert len(db.errors) == 1 and "broken.xml" in db.errors[0]
    assert db.get("exampleos1").name == "ExampleOS 1"
    assert db.get("exampleos1").recommended.ram_mib == 1024


def test_later_path_overrides(tmp_path):
    overlay = tmp_path / "overlay"
    (overlay / "os" / "example.org").mkdir(parents=True)
    text = (FIXTURE_DB / "os" / "example.org" / "exampleos-2.xml").read_text()
    (overlay / "os" / "example.org" / "exampleos-2.xml").write_text(
        text.replace("<name>ExampleOS 2</name>", "<name>ExampleOS 2 (local)</name>"))
    db = OsDb.load([FIXTURE_DB, overlay])
    assert db.get("exampleos2").name == "ExampleOS 2 (local)"
    assert db.get("exampleos2").recommended == db.get("exampleos1").recommended
    assert db.paths == [FIXTURE_DB, overlay]


def test_default_paths_and_env(monkeypatch, tmp_path):
    monkeypatch.setenv("OSINFO_SYSTEM_DIR", str(tmp_path / "sys"))
    monkeypatch.setenv("OSINFO_LOCAL_DIR", str(tmp_path / "local"))
    monkeypatch.setenv("OSINFO_USER_DIR", str(tmp_path / "user"))
    monkeypatch.setenv("VMTUI_OSINFO_PATH", str(FIXTURE_DB))
    paths = default_paths()
    assert paths[0] == tmp_path / "sys" and paths[-1] == FIXTURE_DB
    assert Path("/usr/share/osinfo-db") in paths
    db = OsDb.load()
    assert db.available and db.paths[-1] == FIXTURE_DB
    assert db.get("exampleos1").name == "ExampleOS 1"

    default_db.cache_clear()
    try:
        db = default_db()
        assert db is default_db()  # loaded once
        assert db.get("exampleos1") is not None
        monkeypatch.delenv("VMTUI_OSINFO_PATH")
        assert default_db() is db  # cached until cache_clear()
        default_db.cache_clear()
        if not any((Path(p) / "os").is_dir() for p in ("/usr/share/osinfo-db", "/etc/osinfo")):
            db = default_db()
            assert not db.available
            assert db.note == f"osinfo-db not found in {tmp_path / 'sys'}: showing a generic list"
    finally:
        default_db.cache_clear()


# --------------------------------------------------------------------------
# Resources


def test_recommended_defaults_big_host(fdb):
    o = fdb.get("exampleos1")
    assert recommended_defaults(o, host_memory_mib=16384, host_cpus=8) == Resources(1024, 2, 10 * GIB)
    # Unknown host figures: uncapped.
    assert recommended_defaults(o, host_memory_mib=0, host_cpus=None) == Resources(1024, 2, 10 * GIB)


def test_recommended_defaults_small_host(fdb):
    o = fdb.get("exampleos1")
    # Half of 1.5 GiB is 768 MiB: above the 512 MiB minimum, so capped there.
    assert recommended_defaults(o, host_memory_mib=1536, host_cpus=1) == Resources(768, 1, 10 * GIB)


def test_recommended_defaults_minimum_beats_half_host(fdb):
    w = fdb.get("exwin2030")  # no recommended: the minimum (4 GiB, 2 CPUs, 64 GiB)
    assert recommended_defaults(w, 65536, 16) == Resources(4096, 2, 64 * GIB)
    # Half of 6 GiB is below the minimum; 4 GiB still leaves 1 GiB to the host.
    assert recommended_defaults(w, 6144, 16).ram_mib == 4096
    # 4 GiB host: only half fits; check_resources then warns.
    r = recommended_defaults(w, 4096, 1)
    assert (r.ram_mib, r.vcpus) == (2048, 1)
    assert check_resources(w, r.ram_mib, r.vcpus) == [
        "Example Windows Server 2030 needs at least 4.0 GiB of memory",
        "Example Windows Server 2030 needs at least 2 CPUs",
    ]


def test_recommended_defaults_generic():
    assert recommended_defaults(None, 32768, 8) == Resources(2048, 2, 20 * GIB)
    db = OsDb.builtin()
    assert recommended_defaults(db.get("windows"), 32768, 8) == Resources(4096, 2, 64 * GIB)
    assert recommended_defaults(db.get("generic"), 32768, 8) == Resources(2048, 2, 20 * GIB)


def test_recommended_defaults_per_arch(fdb):
    o = fdb.get("exampleos1")
    assert recommended_defaults(o, 65536, 8, arch="aarch64") == Resources(1024, 2, 10 * GIB)
    # exwin has no aarch64 figures at all: Windows generic defaults.
    assert recommended_defaults(fdb.get("exwin2030"), 65536, 8, arch="aarch64") == Resources(4096, 2, 64 * GIB)


def test_check_resources(fdb):
    o = fdb.get("exampleos1")
    assert check_resources(o, 1024, 2) == []
    assert check_resources(o, 512, 1, storage_bytes=5 * GIB) == []  # exactly the minimum
    assert check_resources(o, 256, 1) == ["ExampleOS 1 needs at least 512.0 MiB of memory"]
    assert check_resources(o, 1024, 1, storage_bytes=GIB) == [
        "ExampleOS 1 needs at least 5.0 GiB of disk space"]
    w = fdb.get("exwin2030")
    assert check_resources(w, 2 * 1024 * 1024, 128) == [
        "Example Windows Server 2030 supports at most 1.0 TiB of memory",
        "Example Windows Server 2030 supports at most 64 CPUs",
    ]
    assert check_resources(None, 1, 1) == []
    assert check_resources(o, None, None) == []


# --------------------------------------------------------------------------
# The host's osinfo-db (values read from its files)


@needs_real_db
def test_real_db_loads_fast(rdb):
    assert rdb.available and rdb.note == ""
    assert len(rdb) > 500
    assert rdb.errors == []
    # ~0.25-0.4 s on a 2-CPU build box; generous bound for slow CI.
    assert rdb.load_seconds < 3.0


@needs_real_db
def test_real_debian11(rdb):
    d = rdb.get("debian11")
    if d is None:
        missing("this osinfo-db has no Debian 11")
    assert d.id == "http://debian.org/debian/11"
    assert d.name == "Debian 11" and d.vendor == "Debian Project"
    assert "debianbullseye" in d.short_ids
    assert d.family == "linux" and d.distro == "debian"
    assert d.release_date == "2021-08-14"
    # debian-11.xml: minimum 1 CPU/1 GiB/10 GiB, recommended 1 GiB/20 GiB
    assert d.minimum == Resources(ram_mib=1024, vcpus=1, storage_bytes=10 * GIB)
    assert d.recommended == Resources(ram_mib=1024, vcpus=None, storage_bytes=20 * GIB)
    # debian-11.xml lists only virtio-gpu/fs: virtio block/net and UEFI come
    # from its ancestors (derives-from debian 10 -> 9 -> 8 ...).
    assert d.derives_from == "http://debian.org/debian/10"
    assert d.virtio and d.virtio_net and d.uefi
    assert not d.is_anaconda and not d.is_windows
    assert check_resources(d, 512, 1) == ["Debian 11 needs at least 1.0 GiB of memory"]
    assert recommended_defaults(d, 16384, 8) == Resources(1024, 2, 20 * GIB)


@needs_real_db
def test_real_inherit_true_and_device_removal(rdb):
    generic, ubuntu = rdb.get("linux2022"), rdb.get("ubuntu22.04")
    if generic is None or ubuntu is None:
        missing("this osinfo-db has no linux2022/ubuntu22.04")
    # linux-2022.xml: <resources arch="all" inherit="true"/>, derives from Ubuntu 22.04
    assert generic.derives_from == ubuntu.id
    assert generic.minimum == ubuntu.minimum == Resources(2048, 1, 10 * GIB)
    assert generic.recommended == ubuntu.recommended == Resources(4096, None, 25 * GIB)
    # Ubuntu 22.04 marks virtio1.0-gpu supported="false"; linux2022 re-enables it.
    gpu = "http://pcisig.com/pci/1af4/1050"
    assert gpu not in ubuntu.devices and gpu in generic.devices
    assert gpu in rdb.get("ubuntu21.10").devices
    assert rdb.get("linux") is generic  # the newest generic Linux gets the alias


@needs_real_db
def test_real_windows_and_anaconda(rdb):
    w = rdb.get("win2k22")
    if w is None:
        missing("this osinfo-db has no Windows Server 2022")
    assert w.is_windows and w.family == "winnt"
    assert w.minimum == Resources(ram_mib=512, vcpus=1, storage_bytes=32 * GIB)
    assert w.recommended == Resources(ram_mib=2048, vcpus=None, storage_bytes=40 * GIB)
    assert w.maximum.ram_mib == 26388279066624 // 1024 ** 2
    assert not w.virtio  # needs the virtio-win drivers
    assert w.derives_from == "http://microsoft.com/win/2k19"
    f = rdb.get("fedora37")
    if f is not None:
        assert f.is_anaconda and f.recommended.ram_mib == 2048
    win11 = rdb.get("win11")
    if win11 is not None:
        # own minimum 4 GiB; the 1 GiB recommendation inherited from older
        # Windows is raised to it
        assert win11.minimum.ram_mib == 4096 and win11.recommended.ram_mib == 4096
        assert win11.uefi


@needs_real_db
def test_real_search(rdb):
    def first(text):
        found = rdb.search(text)
        return found[0].short_id if found else None

    assert first("debian 11") == "debian11"
    result = rdb.search("debian 12")
    if rdb.get("debian12") is not None:
        assert result[0].short_id == "debian12"
    else:  # an older osinfo-db: Debian 11/10 etc. do not match "12"
        assert result == []
    assert first("windows server 2022") == "win2k22"
    assert first("ubuntu 22.04") == "ubuntu22.04"
    assert first("jammy") == "ubuntu22.04"
    assert all("debian" in o.short_id for o in rdb.search("debian"))
    assert len(rdb.search("debian", include_eol=False)) <= len(rdb.search("debian"))


@needs_real_db
@pytest.mark.parametrize("volume_id, system_id, publisher, expected, kernel", [
    ("Debian 11.5.0 amd64 n", "", "", "debian11", "install.amd/vmlinuz"),
    ("Debian 11.6.0 amd64 1", "", "", "debian11", "install.amd/vmlinuz"),
    ("Fedora-S-dvd-x86_64-37", "LINUX", "", "fedora37", "isolinux/vmlinuz"),
    ("Fedora-WS-Live-37-1-7", "LINUX", "", "fedora37", "isolinux/vmlinuz"),
    ("SSS_X64FREE_EN-US_DV9", "", "MICROSOFT CORPORATION", "win2k22", None),
    ("Ubuntu-Server 22.04.1 LTS amd64", "", "", "ubuntu22.04", "casper/vmlinuz"),
    ("CentOS-Stream-9-BaseOS-x86_64", "LINUX", "", "centos-stream9", "images/pxeboot/vmlinuz"),
])
def test_real_detect_iso(rdb, tmp_path, volume_id, system_id, publisher, expected, kernel):
    if rdb.get(expected) is None:
        missing(f"this osinfo-db has no {expected}")
    d = rdb.detect_iso(make_iso(tmp_path / "media.iso", volume_id, system_id, publisher))
    assert d is not None and d.os.short_id == expected
    assert d.kernel == kernel
    assert d.exact_arch


@needs_real_db
def test_real_detect_debian12_netinst(rdb, tmp_path):
    d = rdb.detect_iso(make_iso(tmp_path / "d12.iso", "Debian 12.5.0 amd64 n"))
    if rdb.get("debian12") is not None:
        assert d.os.short_id == "debian12" and d.kernel == "install.amd/vmlinuz"
    else:  # not in this (older) database: not mistaken for Debian 11
        assert d is None


@needs_real_db
def test_real_detect_unknown_iso(rdb, tmp_path):
    assert rdb.detect_iso(make_iso(tmp_path / "u.iso", "MY_HOLIDAY_PHOTOS_2023", "WIN32")) is None


@needs_real_db
def test_real_volume_size_picks_the_rule(rdb):
    c = rdb.get("centos6.10")
    if c is None:
        missing("this osinfo-db has no CentOS 6.10")
    sizes = {m.arch: m.volume_size for m in c.media if m.volume_id == "CentOS_6.10_Final" and m.volume_size}
    for arch, size in sizes.items():
        d = rdb.detect_iso_ids(IsoIds("CentOS_6.10_Final", "LINUX", volume_size=size))
        assert d.os is c and d.media.volume_size == size and d.arch == arch


@needs_real_db
def test_real_detect_tree(rdb):
    old = """[general]
family = CentOS
timestamp = 1587405659.3
variant =
version = 7
arch = x86_64

[images-x86_64]
kernel = images/pxeboot/vmlinuz
initrd = images/pxeboot/initrd.img
"""
    d = rdb.detect_tree(old)
    assert d is not None and d.os.distro == "centos" and d.os.version.startswith("7")
    assert d.os.is_anaconda
    assert (d.kernel, d.initrd) == ("images/pxeboot/vmlinuz", "images/pxeboot/initrd.img")

    new = """[header]
type = productmd.treeinfo
version = 1.2

[release]
name = Fedora
short = Fedora
version = 37

[tree]
arch = x86_64
platforms = x86_64,xen
variants = Everything

[variant-Everything]
id = Everything
uid = Everything

[images-x86_64]
initrd = images/pxeboot/initrd.img
kernel = images/pxeboot/vmlinuz
"""
    if rdb.get("fedora37") is not None:
        d = rdb.detect_tree(new)
        assert d.os.short_id == "fedora37" and d.tree.variant == "Everything"
        assert d.kernel == "images/pxeboot/vmlinuz"

    stream = "[general]\nfamily = CentOS Stream\nversion = 9\narch = x86_64\nvariant = BaseOS\n"
    if rdb.get("centos-stream9") is not None:
        d = rdb.detect_tree(stream)
        assert d.os.short_id == "centos-stream9"
        # the database has no paths for it: Anaconda's standard ones
        assert (d.kernel, d.initrd) == ("images/pxeboot/vmlinuz", "images/pxeboot/initrd.img")

    assert rdb.detect_tree("[general]\nfamily = NoSuchLinux\nversion = 1\narch = x86_64\n") is None


# --------------------------------------------------------------------------


def test_osinfo_imports_no_textual():
    code = (
        "import sys, vmtui.core.create.osinfo\n"
        "bad = sorted({m.split('.')[0] for m in sys.modules if m.split('.')[0] in ('textual', 'rich')})\n"
        "print(bad)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# --- ids the database does not know ---------------------------------------------------


def test_unknown_ids_get_the_closest_known_ones_and_generic_values():
    db = OsDb.load([FIXTURE_DB])
    # newer than the database: the same OS's nearest releases
    assert [o.short_id for o in db.suggest("exampleos3")] == ["exampleos2", "exampleos1"]
    assert db.fallback_for("exampleos3").short_id == "linux2022"  # as virt-install's linux2022
    # a typo
    assert db.suggest("exampelos2")[0].short_id == "exampleos2"
    # Windows falls back to the generic Windows, the unrecognisable to generic
    assert [o.short_id for o in db.suggest("exwin2031")] == ["exwin2030"]
    assert db.fallback_for("exwin2031").short_id == "win10"
    assert db.suggest("nosuchos99") == [] and db.fallback_for("nosuchos99").short_id == "generic"
    msg = db.unknown_id_message("exampleos3")
    assert "'exampleos3' is not in this host's osinfo-db 20990101" in msg
    assert "closest ids it knows: exampleos2, exampleos1" in msg and "Generic Linux (linux2022)" in msg
    assert "no similar id" in db.unknown_id_message("nosuchos99")


@needs_real_db
def test_unknown_ids_on_the_host_database():
    db = OsDb.load([REAL_DB])
    if db.get("debian12") is None:  # osinfo-db older than Debian 12 (this machine's is 2022-12)
        assert [o.short_id for o in db.suggest("debian12")][:2] == ["debian11", "debian10"]
        assert db.fallback_for("debian12").short_id.startswith("linux")
    assert db.suggest("ubunut22.04")[0].short_id == "ubuntu22.04"
    assert db.suggest("nosuchos99") == [] and db.fallback_for("nosuchos99").short_id == "generic"
