"""vmtui.core.storage on the real libvirtd (qemu:///system).

Every test works in its own transient dir pool under /var/lib/libvirt/images
(``vmtui-test-pool-<pid>-<n>-<hex>``), which is emptied, stopped and removed at
teardown; leftovers of crashed sessions (dead pid) are removed first.
"""

from __future__ import annotations

import io
import itertools
import os
import shutil
import struct
import subprocess
import threading
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import libvirt
import pytest

from tests import guest
from tests.prereq import missing

from vmtui.core import storage
from vmtui.core.errors import VmtuiError

pytestmark = pytest.mark.real

GiB = 1024 ** 3
MiB = 1024 ** 2
IMAGES = Path("/var/lib/libvirt/images")
POOL_PREFIX = "vmtui-test-pool-"
_counter = itertools.count(1)


@pytest.fixture
def make_pool(system_conn):
    """Factory: ``make_pool(mount=None) -> (pool name, path)``: a new transient dir pool."""
    guest.remove_stale_pools(system_conn, POOL_PREFIX)
    made: list[tuple[str, Path]] = []

    def make(prepare=None) -> tuple[str, Path]:
        name = f"{POOL_PREFIX}{os.getpid()}-{next(_counter)}-{os.urandom(2).hex()}"
        path = IMAGES / name
        path.mkdir(mode=0o755)
        made.append((name, path))
        if prepare is not None:
            prepare(path)
        system_conn.storagePoolCreateXML(storage.dir_pool_xml(name, str(path)), 0)
        return name, path

    yield make
    conn = libvirt.open("qemu:///system")
    try:
        for name, path in made:
            try:
                pool = conn.storagePoolLookupByName(name)
            except libvirt.libvirtError:
                pool = None
            if pool is not None:
                guest.remove_pool(conn, name, path)
            else:
                for mount in guest.mounts_under(path):
                    subprocess.run(["umount", "-l", str(mount)], capture_output=True)
                shutil.rmtree(path, ignore_errors=True)
    finally:
        conn.close()


@pytest.fixture
def pool(make_pool):
    return make_pool()


def _free_bytes(path: Path) -> int:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


@pytest.fixture
def big(pool):
    """20 GiB, or less when the disk is short (thick volumes really take the space)."""
    free = _free_bytes(pool[1])
    if free >= 25 * GiB:
        return 20 * GiB
    if free >= 3 * GiB:
        return 1 * GiB
    missing(f"only {free / GiB:.1f} GiB free under {IMAGES}")


def _qcow2_version(path: str) -> int:
    with open(path, "rb") as fh:
        head = fh.read(8)
    assert head[:4] == b"QFI\xfb", head
    return struct.unpack(">I", head[4:8])[0]


# --- listing ---------------------------------------------------------------------


def test_list_pools_sees_the_test_pool(system_conn, pool):
    name, path = pool
    storage.create_volume(system_conn, name, "a.qcow2", 3 * GiB)
    storage.create_volume(system_conn, name, "b.img", 5 * MiB, fmt="raw", provisioning="thick")
    info = {p.name: p for p in storage.list_pools(system_conn, refresh=True)}[name]
    assert info.type == "dir" and info.active and not info.persistent
    assert info.path == str(path)
    assert info.capacity > 0 and 0 < info.available <= info.capacity
    assert info.volume_count == 2
    assert info.volumes_capacity == 3 * GiB + 5 * MiB
    vols = storage.list_volumes(system_conn, name)
    assert [(v.name, v.format, v.thin) for v in vols] == [("a.qcow2", "qcow2", True), ("b.img", "raw", False)]


def test_files_copied_in_appear_after_refresh(system_conn, pool):
    name, path = pool
    (path / "copied.img").write_bytes(b"\0" * 4096)
    assert storage.find_volume(system_conn, str(path / "copied.img")) is None
    storage.list_pools(system_conn, refresh=True)
    found = storage.find_volume(system_conn, str(path / "copied.img"))
    assert found is not None and found.pool == name and found.format == "raw"
    assert storage.find_volume(system_conn, f"{name}/copied.img").key == found.key


# --- creating ----------------------------------------------------------------------


def test_thin_qcow2_is_sparse(system_conn, pool, big):
    name, path = pool
    t = time.perf_counter()
    info = storage.create_volume(system_conn, name, "thin.qcow2", big)
    took = time.perf_counter() - t
    assert took < 2
    vol = system_conn.storageVolLookupByPath(info.path)
    _, capacity, allocation = vol.info()
    assert capacity == big
    assert allocation < 1 * MiB
    st = os.stat(info.path)
    assert st.st_blocks * 512 < 1 * MiB
    assert info.thin and info.format == "qcow2"
    assert _qcow2_version(info.path) == 3  # compat 1.1, not libvirt's default 0.10
    plan = storage.plan_new_disk(storage.pool_info(system_conn, name), big, "thin", "qcow2")
    assert plan.now >= allocation


def test_thin_raw_is_sparse(system_conn, pool, big):
    name, _ = pool
    info = storage.create_volume(system_conn, name, "thin.img", big, fmt="raw")
    st = os.stat(info.path)
    assert st.st_size == big and st.st_blocks == 0
    assert info.allocation == 0 and info.thin


def test_thick_raw_is_fallocated(system_conn, pool, big):
    name, _ = pool
    calls = []
    t = time.perf_counter()
    info = storage.create_volume(system_conn, name, "thick.img", big, fmt="raw", provisioning="thick",
                                 progress=lambda a, b: calls.append((a, b)))
    took = time.perf_counter() - t
    # fallocate takes ~0.05 s for 20 GiB; writing zeros would take minutes
    assert took < 2, f"thick raw took {took:.2f} s: zeros written?"
    _, capacity, allocation = system_conn.storageVolLookupByPath(info.path).info()
    assert capacity == big and allocation >= capacity
    st = os.stat(info.path)
    assert st.st_size == big and st.st_blocks * 512 >= big
    assert not info.thin
    assert calls[-1][0] == calls[-1][1] >= big


def test_thick_qcow2_is_fallocated(system_conn, pool, big):
    """libvirt 9.0 runs qemu-img with preallocation=falloc (not full) for
    qcow2 with allocation = capacity and PREALLOC_METADATA."""
    name, _ = pool
    t = time.perf_counter()
    info = storage.create_volume(system_conn, name, "thick.qcow2", big, provisioning="thick")
    took = time.perf_counter() - t
    assert took < 2, f"thick qcow2 took {took:.2f} s: zeros written?"
    _, capacity, allocation = system_conn.storageVolLookupByPath(info.path).info()
    assert capacity == big and allocation >= big
    st = os.stat(info.path)
    assert st.st_blocks * 512 >= big
    assert _qcow2_version(info.path) == 3
    plan = storage.plan_new_disk(storage.pool_info(system_conn, name), big, "thick", "qcow2")
    assert abs(plan.now - allocation) < 2 * MiB  # the metadata estimate is close


def test_thick_larger_than_pool_is_refused(system_conn, pool):
    name, path = pool
    available = storage.pool_info(system_conn, name).available
    with pytest.raises(VmtuiError) as exc:
        storage.create_volume(system_conn, name, "huge.img", available + GiB, fmt="raw", provisioning="thick")
    assert f"free in pool '{name}'" in exc.value.cause
    assert list(path.iterdir()) == []


def test_duplicate_name_is_refused(system_conn, pool):
    name, _ = pool
    storage.create_volume(system_conn, name, "dup.qcow2", GiB)
    with pytest.raises(VmtuiError) as exc:
        storage.create_volume(system_conn, name, "dup.qcow2", GiB)
    assert exc.value.cause == f"a volume named 'dup.qcow2' already exists in pool '{name}'"


def test_overlay_with_backing_file(system_conn, pool):
    name, _ = pool
    base = storage.create_volume(system_conn, name, "base.qcow2", 2 * GiB)
    overlay = storage.create_volume(system_conn, name, "web-01.qcow2", None, backing=base.path)
    assert overlay.backing == base.path
    assert overlay.capacity == 2 * GiB  # taken from the backing file
    xml = ET.fromstring(system_conn.storageVolLookupByPath(overlay.path).XMLDesc(0))
    assert xml.findtext("backingStore/path") == base.path
    assert xml.find("backingStore/format").get("type") == "qcow2"
    bigger = storage.create_volume(system_conn, name, "web-02.qcow2", 4 * GiB, backing=base.path)
    assert bigger.capacity == 4 * GiB and bigger.backing == base.path
    with pytest.raises(VmtuiError) as exc:
        storage.delete_volume(system_conn, base.path)
    assert exc.value.cause == f"it is the backing file of {name}/web-01.qcow2, {name}/web-02.qcow2"


def test_failed_create_leaves_nothing(system_conn, pool):
    name, path = pool
    with pytest.raises(VmtuiError) as exc:
        storage.create_volume(system_conn, name, "orphan.qcow2", GiB, backing="/nonexistent/base.qcow2",
                              backing_format="qcow2")
    assert "/nonexistent/base.qcow2" in exc.value.cause
    assert str(exc.value).startswith(f"Cannot create volume 'orphan.qcow2' in pool '{name}': ")
    assert not storage.volume_exists(system_conn, name, "orphan.qcow2")
    assert list(path.iterdir()) == []


def test_progress_while_libvirt_writes_zeros(system_conn, make_pool, tmp_path, monkeypatch):
    """On a file system without fallocate (ext2) libvirt writes the space
    out; the poller then reports the growing allocation. Mounted ``sync``,
    each block reaches the disk before the next: the write takes seconds
    whatever the page cache, so there is something to watch."""
    monkeypatch.setattr(storage, "POLL_INTERVAL", 0.01)
    image = tmp_path / "ext2.img"

    def mount_ext2(path: Path) -> None:
        subprocess.run(["truncate", "-s", "1G", str(image)], check=True)
        mkfs = subprocess.run(["mkfs.ext2", "-q", "-F", str(image)], capture_output=True, text=True)
        if mkfs.returncode != 0:
            missing(f"mkfs.ext2: {mkfs.stderr.strip()}")
        mount = subprocess.run(["mount", "-o", "loop,sync", str(image), str(path)], capture_output=True,
                               text=True)
        if mount.returncode != 0:
            missing(f"cannot loop-mount an ext2 image: {mount.stderr.strip()}")

    name, _ = make_pool(prepare=mount_ext2)
    calls = []
    size = 32 * MiB
    storage.create_volume(system_conn, name, "slow.img", size, fmt="raw", provisioning="thick",
                          progress=lambda a, b: calls.append((a, b)))
    middle = [a for a, b in calls[:-1] if b == size and 0 < a < size]
    assert len(set(middle)) >= 2, calls
    assert middle == sorted(middle)
    # the samples went on through the second half of the write: they were
    # not held back behind the create (on the create's own connection,
    # libvirt 9's client stalled them for seconds, up to the create's end)
    assert max(middle) >= size // 2, calls
    assert calls[-1][0] == calls[-1][1] >= size


def test_progress_is_read_over_a_connection_of_its_own(system_conn, pool, monkeypatch):
    """The poller samples over another connection to the same daemon (not
    the one the long call holds), and its thread closes it at the end."""
    name, _ = pool
    opened = []

    def second(conn):
        c = real(conn)
        opened.append((c, c.getURI()))
        return c

    real = storage._second_connection
    monkeypatch.setattr(storage, "_second_connection", second)
    monkeypatch.setattr(storage, "POLL_INTERVAL", 0.01)
    calls = []
    storage.create_volume(system_conn, name, "watched.img", 4 * MiB, fmt="raw", provisioning="thick",
                          progress=lambda a, b: calls.append((a, b)))
    assert len(opened) == 1
    side, uri = opened[0]
    assert side is not system_conn and uri == system_conn.getURI()

    deadline = time.monotonic() + 30  # the poller's thread closes it as it ends
    while any(t.name == "vmtui-progress" for t in threading.enumerate()) and time.monotonic() < deadline:
        time.sleep(0.05)
    with pytest.raises(libvirt.libvirtError):
        side.getLibVersion()
    assert system_conn.isAlive()
    assert calls[-1][0] == calls[-1][1] >= 4 * MiB


# --- delete, users -------------------------------------------------------------------


def test_delete_volume(system_conn, pool):
    name, path = pool
    info = storage.create_volume(system_conn, name, "gone.qcow2", GiB)
    storage.delete_volume(system_conn, info.key)
    assert not Path(info.path).exists()
    assert not storage.volume_exists(system_conn, name, "gone.qcow2")


def test_running_guest_uses_overlay_and_base(system_conn, pool, tiny_guest):
    name, _ = pool
    base = storage.create_volume(system_conn, name, "base.qcow2", 64 * MiB)
    top = storage.create_volume(system_conn, name, "top.qcow2", None, backing=base.path)
    disk = ET.Element("disk", type="file", device="disk")
    ET.SubElement(disk, "driver", name="qemu", type="qcow2")
    ET.SubElement(disk, "source", file=top.path)
    ET.SubElement(disk, "target", dev="vda", bus="virtio")
    dom = tiny_guest(extra_devices_xml=disk)
    users = storage.volume_users(system_conn)
    assert dom.name() in users[top.path]
    assert dom.name() in users[base.path]  # the live XML shows the backing chain
    assert dom.name() not in storage.volume_users(system_conn, exclude_uuid=dom.UUIDString()).get(top.path, [])
    with pytest.raises(VmtuiError) as exc:
        storage.delete_volume(system_conn, top.path)
    assert exc.value.cause == f"it is in use by {dom.name()}"


# --- streams -------------------------------------------------------------------------


def test_upload_and_download_round_trip(system_conn, pool, tmp_path):
    name, _ = pool
    data = os.urandom(3 * MiB + 12345)
    src = tmp_path / "blob.bin"
    src.write_bytes(data)
    up = []
    info = storage.upload_file(system_conn, name, "blob.img", src, progress=lambda a, b: up.append((a, b)))
    assert info.capacity == len(data) and info.format == "raw"
    assert up[-1] == (len(data), len(data))
    assert Path(info.path).read_bytes() == data
    down = []
    out = tmp_path / "back.bin"
    got = storage.download_volume(system_conn, info.key, out, progress=lambda a, b: down.append((a, b)))
    assert got == len(data)
    assert out.read_bytes() == data
    assert down[-1] == (len(data), len(data))


def test_upload_iso_is_listed_as_iso(system_conn, pool, tmp_path):
    import pycdlib
    iso = pycdlib.PyCdlib()
    iso.new(joliet=3, vol_ident="CIDATA")
    body = b"instance-id: vmtui-test\n"
    iso.add_fp(io.BytesIO(body), len(body), "/META_DAT.;1", joliet_path="/meta-data")
    src = tmp_path / "seed.iso"
    iso.write(str(src))
    iso.close()
    name, _ = pool
    storage.upload_file(system_conn, name, "seed.iso", src, fmt="iso")
    found = storage.find_volume(system_conn, f"{name}/seed.iso")
    assert found is not None and found.format == "iso"
    out = tmp_path / "seed-back.iso"
    storage.download_volume(system_conn, f"{name}/seed.iso", out)
    assert out.read_bytes() == src.read_bytes()


def test_download_qcow2_gets_the_file(system_conn, pool, tmp_path):
    name, _ = pool
    info = storage.create_volume(system_conn, name, "small.qcow2", 10 * GiB)
    out = tmp_path / "small.qcow2"
    got = storage.download_volume(system_conn, info.key, out)
    assert got == out.stat().st_size == os.stat(info.path).st_size  # the file, not 10 GiB
    assert out.read_bytes() == Path(info.path).read_bytes()


def test_upload_to_missing_pool_leaves_nothing(system_conn, tmp_path):
    src = tmp_path / "x.bin"
    src.write_bytes(b"x")
    with pytest.raises(VmtuiError) as exc:
        storage.upload_file(system_conn, f"{POOL_PREFIX}{os.getpid()}-missing", "x.img", src)
    assert "no storage pool" in exc.value.cause
