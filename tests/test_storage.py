"""vmtui.core.storage against libvirt's test driver (tests/data/host-small.xml).

Pool ``default``: 100 GiB capacity, 14 GiB allocated, 86 GiB available;
volumes (capacity/allocation): alpha.qcow2 10/2 GiB, bravo.img 4/4 GiB,
shared.img 1/1 GiB, charlie.qcow2 10/1 GiB, delta.qcow2 20/5 GiB,
echo.qcow2 8 GiB/512 MiB, install.iso 512/512 MiB.
"""

from __future__ import annotations

import threading
import time
import xml.etree.ElementTree as ET

import libvirt
import pytest

from vmtui.core import storage
from vmtui.core.errors import VmtuiError
from vmtui.core.sizes import parse_size
from vmtui.core.storage import DiskPlan, PoolInfo, VolumeInfo

from .conftest import host_uri

GiB = 1024 ** 3
MiB = 1024 ** 2
IMAGES = "/var/lib/libvirt/images"
VOLUMES_CAPACITY = (10 + 4 + 1 + 10 + 20 + 8) * GiB + 512 * MiB  # 53.5 GiB


@pytest.fixture
def conn():
    c = libvirt.open(host_uri())
    yield c
    c.close()


def make_pool(**kw) -> PoolInfo:
    values = dict(name="default", uuid="u", type="dir", active=True, autostart=False, persistent=True,
                  path=IMAGES, capacity=100 * GiB, allocation=14 * GiB, available=86 * GiB,
                  volumes_capacity=VOLUMES_CAPACITY, volume_count=7)
    values.update(kw)
    return PoolInfo(**values)


# --- listing ----------------------------------------------------------------


def test_list_pools(conn):
    pools = storage.list_pools(conn)
    assert [p.name for p in pools] == ["default"]
    p = pools[0]
    assert p.uuid == "22222222-2222-4222-8222-000000000001"
    assert p.type == "dir"
    assert p.active and p.persistent and not p.autostart
    assert p.path == IMAGES
    assert (p.capacity, p.allocation, p.available) == (100 * GiB, 14 * GiB, 86 * GiB)
    assert p.volume_count == 7
    assert p.volumes_capacity == VOLUMES_CAPACITY
    assert p.used_fraction == pytest.approx(0.14)
    assert p.overcommit_ratio == pytest.approx(0.535)
    assert not p.overcommitted and not p.nearly_full


def test_list_pools_refresh_and_pool_info(conn):
    assert storage.list_pools(conn, refresh=True)[0].volumes_capacity == VOLUMES_CAPACITY
    assert storage.pool_info(conn, "default") == storage.list_pools(conn)[0]
    with pytest.raises(libvirt.libvirtError):
        storage.pool_info(conn, "nope")


def test_inactive_pool_has_no_volume_figures(conn):
    conn.storagePoolLookupByName("default").destroy()
    p = storage.pool_info(conn, "default")
    assert not p.active
    assert p.volumes_capacity == 0 and p.volume_count == 0
    plan = storage.plan_new_disk(p, 10 * GiB, "thin", "qcow2")
    assert plan.error == "Pool 'default' is not active: start it first"


def test_pool_properties():
    full = make_pool(allocation=90 * GiB, available=10 * GiB, volumes_capacity=250 * GiB)
    assert full.nearly_full and full.overcommitted
    assert full.overcommit_ratio == pytest.approx(2.5)
    assert full.used_fraction == pytest.approx(0.9)
    assert not make_pool(allocation=85 * GiB).nearly_full  # "> 85 %"
    empty = make_pool(capacity=0, allocation=0, available=0, volumes_capacity=0)
    assert empty.used_fraction == 0.0 and empty.overcommit_ratio == 0.0
    assert not empty.overcommitted and not empty.nearly_full


def test_list_volumes(conn):
    vols = {v.name: v for v in storage.list_volumes(conn, "default")}
    assert list(vols) == sorted(vols)
    assert set(vols) == {"alpha.qcow2", "bravo.img", "shared.img", "charlie.qcow2", "delta.qcow2",
                         "echo.qcow2", "install.iso"}
    alpha = vols["alpha.qcow2"]
    assert alpha == VolumeInfo(name="alpha.qcow2", key=f"{IMAGES}/alpha.qcow2", path=f"{IMAGES}/alpha.qcow2",
                               pool="default", format="qcow2", capacity=10 * GiB, allocation=2 * GiB,
                               backing=None, type="file", physical=None)
    assert {n: v.format for n, v in vols.items()} == {
        "alpha.qcow2": "qcow2", "bravo.img": "raw", "shared.img": "raw", "charlie.qcow2": "qcow2",
        "delta.qcow2": "qcow2", "echo.qcow2": "qcow2", "install.iso": "iso"}
    assert {n for n, v in vols.items() if v.thin} == {"alpha.qcow2", "charlie.qcow2", "delta.qcow2",
                                                      "echo.qcow2"}
    assert vols["echo.qcow2"].allocation == 512 * MiB
    assert not vols["bravo.img"].thin and not vols["install.iso"].thin


def test_list_volumes_accepts_pool_object(conn):
    pool = conn.storagePoolLookupByName("default")
    assert len(storage.list_volumes(conn, pool)) == 7


def test_volume_thin_threshold():
    v = VolumeInfo("x", "k", "/p", "default", "raw", capacity=100, allocation=96)
    assert not v.thin
    v.allocation = 94
    assert v.thin
    assert not VolumeInfo("x", "k", "/p", "default", "raw", 0, 0).thin
    # real thick raw volumes report one block more than their capacity
    assert not VolumeInfo("x", "k", "/p", "default", "raw", 20 * GiB, 20 * GiB + 4096).thin


def test_find_volume(conn):
    by_path = storage.find_volume(conn, f"{IMAGES}/delta.qcow2")
    assert by_path is not None and by_path.name == "delta.qcow2" and by_path.pool == "default"
    assert by_path.capacity == 20 * GiB and by_path.allocation == 5 * GiB
    by_name = storage.find_volume(conn, "default/install.iso")
    assert by_name is not None and by_name.path == f"{IMAGES}/install.iso" and by_name.format == "iso"
    assert storage.find_volume(conn, f"  {IMAGES}/bravo.img ").name == "bravo.img"
    for missing in (f"{IMAGES}/nope.qcow2", "default/nope.qcow2", "nopool/alpha.qcow2", "nokey", "", "   "):
        assert storage.find_volume(conn, missing) is None, missing


def test_find_volume_in_inactive_pool_is_none(conn):
    conn.storagePoolLookupByName("default").destroy()
    assert storage.find_volume(conn, "default/alpha.qcow2") is None


def test_volume_exists(conn):
    assert storage.volume_exists(conn, "default", "alpha.qcow2")
    assert not storage.volume_exists(conn, "default", "zulu.qcow2")
    with pytest.raises(libvirt.libvirtError):
        storage.volume_exists(conn, "nopool", "alpha.qcow2")


# --- volume users -------------------------------------------------------------


def test_volume_users(conn):
    users = storage.volume_users(conn)
    assert users[f"{IMAGES}/shared.img"] == ["alpha", "bravo"]
    assert users[f"{IMAGES}/alpha.qcow2"] == ["alpha"]
    assert users[f"{IMAGES}/install.iso"] == ["echo"]
    assert users[f"{IMAGES}/delta.qcow2"] == ["delta"]
    assert f"{IMAGES}/nope" not in users
    without_alpha = storage.volume_users(conn, exclude_uuid="11111111-1111-4111-8111-000000000001")
    assert without_alpha[f"{IMAGES}/shared.img"] == ["bravo"]
    assert f"{IMAGES}/alpha.qcow2" not in without_alpha


def test_disk_volume(conn):
    from vmtui.core.xml import domxml
    disks = domxml.disk_sources(conn.lookupByName("echo").XMLDesc(0))
    vols = [storage.disk_volume(conn, d) for d in disks]
    assert [v.name for v in vols] == ["echo.qcow2", "install.iso"]
    assert storage.source_keys(disks[0]) == {f"{IMAGES}/echo.qcow2"}


# --- planning -----------------------------------------------------------------


def test_plan_thin_qcow2_fits():
    plan = storage.plan_new_disk(make_pool(), 20 * GiB, "thin", "qcow2")
    assert plan.error is None and plan.warning is None
    assert 0 < plan.now < 1 * MiB  # a qcow2 header
    assert plan.at_most == 20 * GiB


def test_plan_thin_raw_holds_nothing_now():
    plan = storage.plan_new_disk(make_pool(), 20 * GiB, "thin", "raw")
    assert plan == DiskPlan(now=0, at_most=20 * GiB, error=None, warning=None)


def test_plan_thick():
    raw = storage.plan_new_disk(make_pool(), 20 * GiB, "thick", "raw")
    assert raw == DiskPlan(now=20 * GiB, at_most=20 * GiB)
    qcow = storage.plan_new_disk(make_pool(), 20 * GiB, "thick", "qcow2")
    assert qcow.error is None
    assert 20 * GiB < qcow.now < 20 * GiB + 8 * MiB  # plus L2 tables and refcounts
    assert qcow.at_most == qcow.now


@pytest.mark.parametrize("size", [0, -1, -20 * GiB])
@pytest.mark.parametrize("provisioning", ["thin", "thick"])
def test_plan_refuses_zero_and_negative(size, provisioning):
    plan = storage.plan_new_disk(make_pool(), size, provisioning, "qcow2")
    assert plan.error == "Size must be larger than zero"


def test_plan_thick_larger_than_free_space():
    plan = storage.plan_new_disk(make_pool(), 87 * GiB, "thick", "raw")
    assert plan.error == "87.0 GiB is larger than the 86.0 GiB free in pool 'default'"
    assert plan.now == 87 * GiB and plan.at_most == 87 * GiB
    assert storage.plan_new_disk(make_pool(), 86 * GiB, "thick", "raw").error is None
    # qcow2 metadata counts too: 86 GiB / 8192 + 86 GiB / 32768 + 256 KiB
    assert storage.plan_new_disk(make_pool(), 86 * GiB, "thick", "qcow2").error == (
        "86.0 GiB (plus 13.7 MiB of qcow2 metadata) is larger than the 86.0 GiB free in pool 'default'")
    # the size typed in the wizard
    plan = storage.plan_new_disk(make_pool(), parse_size("1.5T"), "thick", "raw")
    assert plan.error == "1.5 TiB is larger than the 86.0 GiB free in pool 'default'"


def test_plan_thin_overcommit_warning():
    # 53.5 GiB of volumes + 50 GiB > 100 GiB
    plan = storage.plan_new_disk(make_pool(), 50 * GiB, "thin", "qcow2")
    assert plan.error is None
    assert plan.warning == (
        "Thin disks would overcommit pool 'default': its volumes could grow to 103.5 GiB on "
        "100.0 GiB of storage (1.03x). The VM can fail when the pool fills up.")
    assert storage.plan_new_disk(make_pool(), 46 * GiB, "thin", "qcow2").warning is None
    # thick never overcommits: its space is taken now
    assert storage.plan_new_disk(make_pool(), 50 * GiB, "thick", "raw").warning is None


def test_plan_thin_larger_than_free_now():
    pool = make_pool(allocation=90 * GiB, available=10 * GiB, volumes_capacity=40 * GiB)
    plan = storage.plan_new_disk(pool, 20 * GiB, "thin", "raw")
    assert plan.error is None
    assert plan.warning == ("Only 10.0 GiB is free in pool 'default' now: the VM can fail when the "
                            "pool fills up before the disk reaches 20.0 GiB.")


def test_plan_thin_both_warnings_and_larger_than_pool():
    plan = storage.plan_new_disk(make_pool(), 200 * GiB, "thin", "qcow2")
    assert plan.error is None
    assert plan.warning == (
        "Thin disks would overcommit pool 'default': its volumes could grow to 253.5 GiB on "
        "100.0 GiB of storage (2.54x). The VM can fail when the pool fills up. "
        "Only 86.0 GiB is free in pool 'default' now: the VM can fail when the pool fills up "
        "before the disk reaches 200.0 GiB.")


def test_plan_rejects_unknown_provisioning():
    with pytest.raises(ValueError):
        storage.plan_new_disk(make_pool(), GiB, "fat", "qcow2")


@pytest.mark.parametrize("text", ["", "abc", "-5G", "20X", "G"])
def test_non_numeric_sizes_are_parse_errors(text):
    # the wizard parses with parse_size before planning; its message goes to the field
    with pytest.raises(ValueError):
        parse_size(text)


def test_plan_with_listed_pool(conn):
    pool = storage.pool_info(conn, "default")
    assert storage.plan_new_disk(pool, parse_size("20G"), "thin", "qcow2").warning is None
    assert storage.plan_new_disk(pool, parse_size("512M"), "thick", "raw").now == 512 * MiB


# --- names --------------------------------------------------------------------


@pytest.mark.parametrize("name, message", [
    ("", "Enter a name for the volume"),
    ("   ", "Enter a name for the volume"),
    ("a/b", "The name must not contain '/'"),
    ("/abs", "The name must not contain '/'"),
    (".", "The name must not be '.' or '..'"),
    ("..", "The name must not be '.' or '..'"),
    ("a\0b", "The name must not contain NUL characters"),
    ("a\nb", "The name must not contain control characters"),
    (" lead.qcow2", "The name must not start or end with a space"),
    ("trail.qcow2 ", "The name must not start or end with a space"),
    ("x" * 256, "The name is too long (at most 255 bytes)"),
    ("ü" * 128, "The name is too long (at most 255 bytes)"),  # 256 bytes in UTF-8
])
def test_invalid_volume_names(name, message):
    assert storage.validate_volume_name(name) == message


@pytest.mark.parametrize("name", ["web.qcow2", "my disk.img", "données-ü.qcow2", "x" * 255, "...", ".hidden",
                                  "a-b_c+d@e"])
def test_valid_volume_names(name):
    assert storage.validate_volume_name(name) is None


# --- XML ------------------------------------------------------------------------


def test_volume_xml_thin_qcow2():
    assert storage.volume_xml("web.qcow2", 20 * GiB) == (
        "<volume>\n"
        "  <name>web.qcow2</name>\n"
        '  <capacity unit="bytes">21474836480</capacity>\n'
        '  <allocation unit="bytes">0</allocation>\n'
        "  <target>\n"
        '    <format type="qcow2" />\n'
        "    <compat>1.1</compat>\n"
        "  </target>\n"
        "</volume>\n")


def test_volume_xml_thick_raw():
    assert storage.volume_xml("db.img", 4 * GiB, fmt="raw", provisioning="thick") == (
        "<volume>\n"
        "  <name>db.img</name>\n"
        '  <capacity unit="bytes">4294967296</capacity>\n'
        '  <allocation unit="bytes">4294967296</allocation>\n'
        "  <target>\n"
        '    <format type="raw" />\n'
        "  </target>\n"
        "</volume>\n")


def test_volume_xml_thick_qcow2_and_flags(conn):
    root = ET.fromstring(storage.volume_xml("t.qcow2", GiB, provisioning="thick"))
    assert root.findtext("allocation") == str(GiB)
    assert storage.create_flags(None, "qcow2", "thick") == libvirt.VIR_STORAGE_VOL_CREATE_PREALLOC_METADATA
    assert storage.create_flags(None, "qcow2", "thin") == 0
    assert storage.create_flags(None, "raw", "thick") == 0  # raw: allocation alone -> fallocate
    assert storage.create_flags(conn, "qcow2", "thick") == 0  # the test driver takes no flags


def test_volume_xml_overlay():
    xml = storage.volume_xml("web-01.qcow2", 20 * GiB, backing=f"{IMAGES}/base.qcow2", backing_format="qcow2")
    assert xml == (
        "<volume>\n"
        "  <name>web-01.qcow2</name>\n"
        '  <capacity unit="bytes">21474836480</capacity>\n'
        '  <allocation unit="bytes">0</allocation>\n'
        "  <target>\n"
        '    <format type="qcow2" />\n'
        "    <compat>1.1</compat>\n"
        "  </target>\n"
        "  <backingStore>\n"
        f"    <path>{IMAGES}/base.qcow2</path>\n"
        '    <format type="qcow2" />\n'
        "  </backingStore>\n"
        "</volume>\n")
    # no capacity: libvirt takes the backing file's
    root = ET.fromstring(storage.volume_xml("c.qcow2", None, backing="/b.qcow2"))
    assert root.find("capacity") is None and root.find("allocation") is None
    assert root.find("backingStore/format") is None
    assert root.findtext("backingStore/path") == "/b.qcow2"


def test_volume_xml_escapes_names():
    xml = storage.volume_xml("a<b>&'\"c.img", GiB, fmt="raw")
    assert ET.fromstring(xml).findtext("name") == "a<b>&'\"c.img"


@pytest.mark.parametrize("kw", [
    dict(capacity=None),
    dict(capacity=0),
    dict(capacity=-1),
    dict(provisioning="fat"),
    dict(backing="/b.qcow2", fmt="raw"),
    dict(backing="/b.qcow2", provisioning="thick"),
])
def test_volume_xml_refuses(kw):
    args = dict(name="x", capacity=GiB)
    args.update(kw)
    with pytest.raises(ValueError):
        storage.volume_xml(**args)


# --- create / delete ------------------------------------------------------------


def test_create_volume_thin_qcow2(conn):
    calls = []
    info = storage.create_volume(conn, "default", "web.qcow2", 20 * GiB, progress=lambda a, t: calls.append((a, t)))
    assert info.name == "web.qcow2" and info.pool == "default" and info.format == "qcow2"
    assert info.path == f"{IMAGES}/web.qcow2"
    assert info.capacity == 20 * GiB and info.allocation == 0 and info.thin
    assert calls[-1] == (storage.QCOW2_HEADER, storage.QCOW2_HEADER)
    assert storage.volume_exists(conn, "default", "web.qcow2")
    assert storage.pool_info(conn, "default").volumes_capacity == VOLUMES_CAPACITY + 20 * GiB
    xml = conn.storagePoolLookupByName("default").storageVolLookupByName("web.qcow2").XMLDesc(0)
    assert ET.fromstring(xml).findtext("target/compat") == "1.1"


def test_create_volume_thick(conn):
    raw = storage.create_volume(conn, "default", "db.img", 4 * GiB, fmt="raw", provisioning="thick")
    assert raw.format == "raw" and raw.allocation == raw.capacity == 4 * GiB and not raw.thin
    q = storage.create_volume(conn, "default", "db.qcow2", 4 * GiB, provisioning="thick")
    assert q.allocation == 4 * GiB and not q.thin


def test_create_overlay_takes_backing_format(conn):
    info = storage.create_volume(conn, "default", "alpha-clone.qcow2", 10 * GiB, backing=f"{IMAGES}/alpha.qcow2")
    assert info.backing == f"{IMAGES}/alpha.qcow2"
    xml = conn.storagePoolLookupByName("default").storageVolLookupByName("alpha-clone.qcow2").XMLDesc(0)
    assert ET.fromstring(xml).find("backingStore/format").get("type") == "qcow2"


def test_create_volume_duplicate_name(conn):
    with pytest.raises(VmtuiError) as exc:
        storage.create_volume(conn, "default", "alpha.qcow2", GiB)
    err = exc.value
    assert err.action == "create volume" and err.obj == "'alpha.qcow2' in pool 'default'"
    assert str(err) == ("Cannot create volume 'alpha.qcow2' in pool 'default': "
                        "a volume named 'alpha.qcow2' already exists in pool 'default'")
    assert len(storage.list_volumes(conn, "default")) == 7


@pytest.mark.parametrize("name, size, kw, cause", [
    ("", GiB, {}, "Enter a name for the volume"),
    ("a/b", GiB, {}, "The name must not contain '/'"),
    ("x.qcow2", 0, {}, "Size must be larger than zero"),
    ("x.qcow2", -GiB, {}, "Size must be larger than zero"),
    ("x.qcow2", None, {}, "Size must be larger than zero"),
    ("x.img", 87 * GiB, dict(fmt="raw", provisioning="thick"),
     "87.0 GiB is larger than the 86.0 GiB free in pool 'default'"),
    ("x.qcow2", 86 * GiB, dict(provisioning="thick"),
     "86.0 GiB (plus 13.7 MiB of qcow2 metadata) is larger than the 86.0 GiB free in pool 'default'"),
    ("x.qcow2", GiB, dict(backing="/b", provisioning="thick"),
     "an overlay on a backing file cannot be thick (libvirt cannot preallocate an image with a backing file)"),
    ("x.img", GiB, dict(fmt="raw", backing="/b"), "an overlay on a backing file must be qcow2"),
])
def test_create_volume_refuses(conn, name, size, kw, cause):
    with pytest.raises(VmtuiError) as exc:
        storage.create_volume(conn, "default", name, size, **kw)
    assert exc.value.cause == cause
    assert exc.value.action == "create volume"
    assert len(storage.list_volumes(conn, "default")) == 7


def test_create_volume_in_missing_or_inactive_pool(conn):
    with pytest.raises(VmtuiError) as exc:
        storage.create_volume(conn, "nopool", "x.qcow2", GiB)
    assert "no storage pool with matching name 'nopool'" in exc.value.cause
    conn.storagePoolLookupByName("default").destroy()
    with pytest.raises(VmtuiError) as exc:
        storage.create_volume(conn, "default", "x.qcow2", GiB)
    assert exc.value.cause == "pool 'default' is not active: start it first"


class _SlowPool:
    """A test-driver pool whose create call takes a while after the volume appears."""

    def __init__(self, pool, delay):
        self._pool, self._delay = pool, delay
        self.threads = set()

    def __getattr__(self, name):
        return getattr(self._pool, name)

    def createXML(self, xml, flags):
        vol = self._pool.createXML(xml, flags)
        time.sleep(self._delay)
        return vol

    def storageVolLookupByName(self, name):
        self.threads.add(threading.current_thread().name)
        return self._pool.storageVolLookupByName(name)


class _Conn:
    def __init__(self, conn, pool):
        self._conn, self._pool = conn, pool

    def __getattr__(self, name):
        return getattr(self._conn, name)

    def storagePoolLookupByName(self, name):
        return self._pool


def test_create_volume_progress_polls_while_libvirt_works(conn):
    slow = _SlowPool(conn.storagePoolLookupByName("default"), 0.75)
    calls = []
    info = storage.create_volume(_Conn(conn, slow), "default", "big.img", 8 * GiB, fmt="raw",
                                 provisioning="thick", progress=lambda a, t: calls.append((a, t)))
    assert info.allocation == 8 * GiB
    assert len(calls) >= 3  # ~every 0.2 s, plus the final call
    assert all(t == 8 * GiB for _, t in calls)
    assert calls[-1] == (8 * GiB, 8 * GiB)
    assert "vmtui-progress" in slow.threads


def test_create_volume_progress_callback_errors_are_ignored(conn):
    def broken(done, total):
        raise RuntimeError("display gone")
    info = storage.create_volume(conn, "default", "x.img", GiB, fmt="raw", progress=broken)
    assert info.name == "x.img"


def test_create_failure_removes_partial_volume(conn):
    class FailingPool(_SlowPool):
        def createXML(self, xml, flags):
            self._pool.createXML(xml, flags)  # the file appeared, then libvirt failed
            raise libvirt.libvirtError("cannot fill file: No space left on device")

    pool = FailingPool(conn.storagePoolLookupByName("default"), 0)
    with pytest.raises(VmtuiError) as exc:
        storage.create_volume(_Conn(conn, pool), "default", "broken.img", GiB, fmt="raw")
    assert str(exc.value).startswith("Cannot create volume 'broken.img' in pool 'default': ")
    assert not storage.volume_exists(conn, "default", "broken.img")


def test_delete_volume(conn):
    info = storage.create_volume(conn, "default", "tmp.qcow2", GiB)
    storage.delete_volume(conn, info.key)
    assert not storage.volume_exists(conn, "default", "tmp.qcow2")
    storage.create_volume(conn, "default", "tmp2.qcow2", GiB)
    storage.delete_volume(conn, "default/tmp2.qcow2")
    assert not storage.volume_exists(conn, "default", "tmp2.qcow2")


def test_delete_volume_refuses_used_volumes(conn):
    with pytest.raises(VmtuiError) as exc:
        storage.delete_volume(conn, f"{IMAGES}/shared.img")
    assert str(exc.value) == "Cannot delete volume 'shared.img' in pool 'default': it is in use by alpha, bravo"
    storage.create_volume(conn, "default", "base.qcow2", GiB)
    storage.create_volume(conn, "default", "child.qcow2", GiB, backing=f"{IMAGES}/base.qcow2")
    with pytest.raises(VmtuiError) as exc:
        storage.delete_volume(conn, f"{IMAGES}/base.qcow2")
    assert exc.value.cause == "it is the backing file of default/child.qcow2"
    storage.delete_volume(conn, f"{IMAGES}/shared.img", force=True)
    assert not storage.volume_exists(conn, "default", "shared.img")


def test_delete_missing_volume(conn):
    with pytest.raises(VmtuiError) as exc:
        storage.delete_volume(conn, f"{IMAGES}/nope.img")
    assert str(exc.value) == f"Cannot delete volume '{IMAGES}/nope.img': no storage pool has this volume"


def test_upload_not_supported_by_test_driver_cleans_up(conn, tmp_path):
    f = tmp_path / "seed.iso"
    f.write_bytes(b"x" * 1000)
    with pytest.raises(VmtuiError) as exc:
        storage.upload_file(conn, "default", "seed.iso", f)
    assert exc.value.action == "upload"
    assert "not supported" in exc.value.cause
    assert not storage.volume_exists(conn, "default", "seed.iso")


def test_upload_refuses_bad_input(conn, tmp_path):
    with pytest.raises(VmtuiError) as exc:
        storage.upload_file(conn, "default", "x.iso", tmp_path / "missing.iso")
    assert exc.value.cause == "No such file or directory"
    f = tmp_path / "a.iso"
    f.write_bytes(b"a")
    with pytest.raises(VmtuiError) as exc:
        storage.upload_file(conn, "default", "install.iso", f)
    assert exc.value.cause == "a volume named 'install.iso' already exists in pool 'default'"
    with pytest.raises(VmtuiError) as exc:
        storage.upload_file(conn, "default", "../x.iso", f)
    assert exc.value.cause == "The name must not contain '/'"
    empty = tmp_path / "empty.iso"
    empty.write_bytes(b"")
    with pytest.raises(VmtuiError) as exc:
        storage.upload_file(conn, "default", "empty.iso", empty)
    assert exc.value.cause == "the file is empty"
    assert len(storage.list_volumes(conn, "default")) == 7


def test_download_missing_volume(conn, tmp_path):
    with pytest.raises(VmtuiError) as exc:
        storage.download_volume(conn, "default/nope.img", tmp_path / "out")
    assert exc.value.cause == "no storage pool has this volume"
    assert not (tmp_path / "out").exists()


def test_core_storage_imports_no_textual():
    import subprocess
    import sys
    code = ("import sys, vmtui.core.storage\n"
            "print(sorted({m.split('.')[0] for m in sys.modules if m.split('.')[0] in ('textual', 'rich')}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_create_race_keeps_the_other_volume(conn):
    class RacingPool(_SlowPool):
        def createXML(self, xml, flags):
            # another client creates the same name between our check and our create
            self._pool.createXML(storage.volume_xml("race.img", GiB, fmt="raw"), 0)
            return self._pool.createXML(xml, flags)

    pool = RacingPool(conn.storagePoolLookupByName("default"), 0)
    with pytest.raises(VmtuiError) as exc:
        storage.create_volume(_Conn(conn, pool), "default", "race.img", 2 * GiB, fmt="raw")
    assert "already exists" in exc.value.cause
    assert storage.find_volume(conn, "default/race.img").capacity == GiB
