"""Storage pools and volumes: list them, plan a new disk, create, delete,
upload and download volumes. (What VMs do with volumes is in the
submodules: :mod:`.disks`, the disks and CD-ROMs of a domain, and
:mod:`.snapshots`.)

Every function here is blocking and takes a ``libvirt.virConnect``; the app
runs them in the service's thread pool::

    pools = await service.call(lambda conn: storage.list_pools(conn))

Everything goes through libvirt's storage API (``pool.createXML``,
``vol.upload``/``vol.download`` streams, ...), never through local files, so
it works the same on a remote host.

Read-only functions let ``libvirt.libvirtError`` through, so the service can
tell a lost connection from other failures. Functions that change things
(create, delete, upload, download) raise :class:`VmtuiError` with the action
and the object named, except for a lost connection, which stays a
``libvirtError``.

Facts this module relies on (libvirt 9.0, QEMU 7.2, ext4 dir pool, measured
with ``bench/bench_volumes.py``):

* **raw, thick** (allocation = capacity): the dir backend ``fallocate()``\\s
  the file; 20 GiB in about 0.05 s. Nothing is written.
* **qcow2, thick**: libvirt ignores ``<allocation>`` for qcow2 unless the
  create call has ``VIR_STORAGE_VOL_CREATE_PREALLOC_METADATA``. With the flag
  *and* allocation = capacity it runs ``qemu-img create -o
  preallocation=falloc`` (not ``full``: no zeros are written); 20 GiB in
  about 0.15 s. With the flag and allocation < capacity it runs
  ``preallocation=metadata`` instead, which is not what "thick" means.
  libvirt refuses the flag together with a backing file.
* **qcow2 compat**: without ``<compat>`` in the volume XML libvirt passes
  ``compat=0.10`` (the old qcow2 v2 format) to qemu-img, so
  :func:`volume_xml` always asks for ``1.1``.
* An overlay may leave out ``<capacity>``: libvirt then takes the backing
  file's size. A missing backing file fails up front, with nothing created.
* An overlay's ``<backingStore>`` without ``<format>`` is taken as **raw**:
  :func:`create_volume` always names the backing format, probed
  (:func:`vmtui.core.storage.images.probe_image`) when the caller does not
  know it.
* After an upload libvirt re-probes the volume, so an uploaded ISO is listed
  with format ``iso``.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Callable

import libvirt

from ..xml import domxml
from ..errors import VmtuiError, failure as _fail, is_connection_lost
from ..names import name_problem
from ..sizes import fmt_bytes
from ..xml.xmlmodel import to_bytes

log = logging.getLogger(__name__)

__all__ = [
    "PoolInfo",
    "VolumeInfo",
    "DiskPlan",
    "PROVISIONING",
    "DISK_FORMATS",
    "list_pools",
    "pool_info",
    "list_volumes",
    "find_volume",
    "volume_xml",
    "create_flags",
    "plan_new_disk",
    "validate_volume_name",
    "volume_exists",
    "create_volume",
    "delete_volume",
    "volume_users",
    "users_of_volume",
    "overlays_of",
    "backing_map",
    "source_keys",
    "disk_volume",
    "upload_file",
    "download_volume",
    "dir_pool_xml",
    "parse_pool_xml",
    "validate_pool_name",
    "define_dir_pool",
    "start_pool",
    "stop_pool",
    "refresh_pool",
    "set_pool_autostart",
    "delete_pool",
    "pool_warnings",
]

Progress = Callable[[int, int], None]

PROVISIONING = ("thin", "thick")
DISK_FORMATS = ("qcow2", "raw")  # what the wizard offers for a new disk
NEARLY_FULL = 0.85  # PoolInfo.nearly_full above this allocated fraction
THIN_BELOW = 0.95  # VolumeInfo.thin when allocation < this fraction of capacity
POLL_INTERVAL = 0.2  # seconds between progress calls
STREAM_CHUNK = 256 * 1024  # libvirt's stream packet payload limit
MAX_NAME_BYTES = 255  # NAME_MAX of the file systems dir pools live on
QCOW2_HEADER = 256 * 1024  # a fresh qcow2 holds ~196 KiB (header, refcounts, L1)


# ---------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------


@dataclass
class PoolInfo:
    name: str
    uuid: str
    type: str  # "dir", "logical", "netfs", "disk", "rbd", ...
    active: bool
    autostart: bool
    persistent: bool
    path: str | None  # target path (None for pools without one, e.g. rbd)
    capacity: int  # bytes
    allocation: int
    available: int
    volumes_capacity: int = 0  # sum of the volumes' capacities; 0 when inactive
    volume_count: int = 0

    @property
    def used_fraction(self) -> float:
        return self.allocation / self.capacity if self.capacity > 0 else 0.0

    @property
    def overcommit_ratio(self) -> float:
        return self.volumes_capacity / self.capacity if self.capacity > 0 else 0.0

    @property
    def overcommitted(self) -> bool:
        return self.capacity > 0 and self.volumes_capacity > self.capacity

    @property
    def nearly_full(self) -> bool:
        return self.used_fraction > NEARLY_FULL


@dataclass
class VolumeInfo:
    name: str
    key: str
    path: str
    pool: str
    format: str | None  # "qcow2", "raw", "iso", ... (None when libvirt gives none)
    capacity: int
    allocation: int
    backing: str | None = None  # backing file path (overlays)
    type: str = "file"  # "file", "block", "dir", "network", ...
    physical: int | None = None  # bytes the file takes (what a download moves)

    @property
    def thin(self) -> bool:
        """Allocated noticeably less than its capacity (sparse or growing)."""
        return self.capacity > 0 and self.allocation < self.capacity * THIN_BELOW


@dataclass
class DiskPlan:
    """What a new disk costs the host; ``error`` blocks creation, ``warning`` does not."""
    now: int  # bytes the host holds right after creation
    at_most: int  # bytes it can grow to
    error: str | None = None
    warning: str | None = None


# ---------------------------------------------------------------------------
# XML helpers
# ---------------------------------------------------------------------------


def _scaled(el: ET.Element | None) -> int:
    """A libvirt size element (``<capacity unit='GiB'>10</capacity>``) in bytes."""
    if el is None or not (el.text or "").strip():
        return 0
    return to_bytes(el.text, el.get("unit"), default_unit="bytes", what="size")


def _text(root: ET.Element, path: str) -> str | None:
    value = root.findtext(path)
    value = value.strip() if value else None
    return value or None


def _parse_volume(xml: str, pool: str) -> VolumeInfo:
    root = ET.fromstring(xml)
    fmt_el = root.find("target/format")
    physical_el = root.find("physical")
    return VolumeInfo(
        name=_text(root, "name") or "",
        key=_text(root, "key") or "",
        path=_text(root, "target/path") or "",
        pool=pool,
        format=fmt_el.get("type") if fmt_el is not None else None,
        capacity=_scaled(root.find("capacity")),
        allocation=_scaled(root.find("allocation")),
        backing=_text(root, "backingStore/path"),
        type=root.get("type") or "file",
        physical=_scaled(physical_el) if physical_el is not None else None,
    )


def _volume_info(vol: libvirt.virStorageVol, pool: str | None = None) -> VolumeInfo:
    if pool is None:
        pool = vol.storagePoolLookupByVolume().name()
    return _parse_volume(vol.XMLDesc(0), pool)


# ---------------------------------------------------------------------------
# listing
# ---------------------------------------------------------------------------


def _pool_obj(conn: libvirt.virConnect, pool: str | libvirt.virStoragePool) -> libvirt.virStoragePool:
    if isinstance(pool, str):
        return conn.storagePoolLookupByName(pool)
    return pool


def _pool_info(pool: libvirt.virStoragePool) -> PoolInfo:
    root = ET.fromstring(pool.XMLDesc(0))
    active = bool(pool.isActive())
    info = PoolInfo(
        name=_text(root, "name") or pool.name(),
        uuid=_text(root, "uuid") or pool.UUIDString(),
        type=root.get("type") or "",
        active=active,
        autostart=bool(pool.autostart()),
        persistent=bool(pool.isPersistent()),
        path=_text(root, "target/path"),
        capacity=_scaled(root.find("capacity")),
        allocation=_scaled(root.find("allocation")),
        available=_scaled(root.find("available")),
    )
    if active:
        vols = pool.listAllVolumes(0)
        info.volume_count = len(vols)
        total = 0
        for vol in vols:
            try:
                total += vol.info()[1]
            except libvirt.libvirtError as err:
                if is_connection_lost(err):
                    raise
                # deleted meanwhile, or unreadable: count what we can
        info.volumes_capacity = total
    return info


def list_pools(conn: libvirt.virConnect, refresh: bool = False) -> list[PoolInfo]:
    """Every storage pool (active and inactive), by name.

    ``refresh`` asks libvirt to rescan active pools first (files copied in
    by hand appear, sizes are current); a pool that cannot refresh right now
    (e.g. an upload is running) is listed as libvirt last saw it.
    """
    out = []
    for pool in conn.listAllStoragePools(0):
        if refresh:
            try:
                if pool.isActive():
                    pool.refresh(0)
            except libvirt.libvirtError as err:
                if is_connection_lost(err):
                    raise
                log.info("cannot refresh pool %s: %s", pool.name(), err)
        try:
            out.append(_pool_info(pool))
        except libvirt.libvirtError as err:
            if is_connection_lost(err) or err.get_error_code() != libvirt.VIR_ERR_NO_STORAGE_POOL:
                raise
            # undefined between listing and reading: skip it
    out.sort(key=lambda p: p.name)
    return out


def pool_info(conn: libvirt.virConnect, name: str) -> PoolInfo:
    return _pool_info(conn.storagePoolLookupByName(name))


def list_volumes(conn: libvirt.virConnect, pool: str | libvirt.virStoragePool) -> list[VolumeInfo]:
    """The volumes of an active pool, by name (an inactive pool raises)."""
    p = _pool_obj(conn, pool)
    name = p.name()
    out = []
    for vol in p.listAllVolumes(0):
        try:
            out.append(_parse_volume(vol.XMLDesc(0), name))
        except libvirt.libvirtError as err:
            if is_connection_lost(err) or err.get_error_code() != libvirt.VIR_ERR_NO_STORAGE_VOL:
                raise
    out.sort(key=lambda v: v.name)
    return out


_NOT_FOUND = (libvirt.VIR_ERR_NO_STORAGE_VOL, libvirt.VIR_ERR_NO_STORAGE_POOL, libvirt.VIR_ERR_OPERATION_INVALID)


def _lookup(conn: libvirt.virConnect, text: str) -> libvirt.virStorageVol | None:
    text = (text or "").strip()
    if not text:
        return None
    try:
        if text.startswith("/"):
            return conn.storageVolLookupByPath(text)
        if "/" in text:
            pool, name = text.split("/", 1)
            return conn.storagePoolLookupByName(pool).storageVolLookupByName(name)
        return conn.storageVolLookupByKey(text)
    except libvirt.libvirtError as err:
        if err.get_error_code() in _NOT_FOUND and not is_connection_lost(err):
            return None
        raise


def _lookup_or_fail(conn: libvirt.virConnect, text: str, action: str) -> tuple[libvirt.virStorageVol, VolumeInfo]:
    """The volume ``text`` names (see :func:`find_volume`) and its info, or a
    VmtuiError for ``action`` naming ``text``."""
    obj = f"'{text}'"
    try:
        vol = _lookup(conn, text)
        if vol is None:
            raise VmtuiError(action, obj, "no storage pool has this volume")
        return vol, _volume_info(vol)
    except libvirt.libvirtError as err:
        raise _fail(action, obj, err) from None


def find_volume(conn: libvirt.virConnect, text: str) -> VolumeInfo | None:
    """The volume at a path (``/var/lib/libvirt/images/x.qcow2``), named
    ``pool/volume``, or with that key; None when no pool has it."""
    vol = _lookup(conn, text)
    return _volume_info(vol) if vol is not None else None


def volume_exists(conn: libvirt.virConnect, pool: str | libvirt.virStoragePool, name: str) -> bool:
    try:
        _pool_obj(conn, pool).storageVolLookupByName(name)
        return True
    except libvirt.libvirtError as err:
        if err.get_error_code() == libvirt.VIR_ERR_NO_STORAGE_VOL:
            return False
        raise


# ---------------------------------------------------------------------------
# which domains use which volumes
# ---------------------------------------------------------------------------


def source_keys(disk: domxml.DiskInfo) -> set[str]:
    """The ways a disk names its storage: its path and/or ``pool/volume``."""
    keys = set()
    if disk.path:
        keys.add(disk.path)
    if disk.pool and disk.volume:
        keys.add(f"{disk.pool}/{disk.volume}")
    return keys


def volume_users(conn: libvirt.virConnect, exclude_uuid: str | None = None) -> dict[str, list[str]]:
    """``{path or "pool/volume": [domain names]}`` for every disk of every
    domain (running config and, for running persistent domains, the next-boot
    config too), CD-ROMs included. A running domain's backing files count as
    used by it as well. ``exclude_uuid`` leaves one domain out (the one being
    deleted)."""
    users: dict[str, set[str]] = {}
    for dom in conn.listAllDomains(0):
        try:
            if exclude_uuid is not None and dom.UUIDString() == exclude_uuid:
                continue
            name = dom.name()
            xmls = [dom.XMLDesc(0)]
            if dom.isActive() and dom.isPersistent():
                xmls.append(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
        except libvirt.libvirtError as err:
            if is_connection_lost(err):
                raise
            continue  # undefined meanwhile
        for xml in xmls:
            try:
                disks = domxml.disk_sources(xml)
            except domxml.DomainXMLError:
                continue
            for disk in disks:
                keys = source_keys(disk)
                if disk.backing:
                    keys.add(disk.backing)
                for key in keys:
                    users.setdefault(key, set()).add(name)
    return {key: sorted(names) for key, names in users.items()}


def users_of_volume(users: dict[str, list[str]], vol: VolumeInfo) -> list[str]:
    """The domains in ``users`` (from :func:`volume_users`) that use ``vol``
    by its path or as ``pool/volume``."""
    return sorted(set(users.get(vol.path, [])) | set(users.get(f"{vol.pool}/{vol.name}", [])))


def disk_volume(conn: libvirt.virConnect, disk: domxml.DiskInfo) -> VolumeInfo | None:
    """The storage volume behind a domain disk, or None (not in any pool)."""
    if disk.pool and disk.volume:
        return find_volume(conn, f"{disk.pool}/{disk.volume}")
    if disk.path:
        return find_volume(conn, disk.path)
    return None


# ---------------------------------------------------------------------------
# planning a new disk
# ---------------------------------------------------------------------------


def _check_provisioning(provisioning: str) -> None:
    if provisioning not in PROVISIONING:
        raise ValueError(f"provisioning must be one of {', '.join(PROVISIONING)}, not {provisioning!r}")


def _qcow2_metadata(size: int) -> int:
    """Bytes of qcow2 metadata for a fully allocated image (64 KiB clusters):
    8-byte L2 entries and 2-byte refcounts per cluster, plus the header."""
    return size // 8192 + size // 32768 + QCOW2_HEADER


def _now_bytes(size: int, fmt: str, provisioning: str) -> int:
    """What the host holds right after creating the volume."""
    if provisioning == "thick":
        return size + (_qcow2_metadata(size) if fmt == "qcow2" else 0)
    return QCOW2_HEADER if fmt == "qcow2" else 0


def _too_big(size: int, now: int, available: int, pool: str) -> str:
    extra = f" (plus {fmt_bytes(now - size)} of qcow2 metadata)" if now > size else ""
    return f"{fmt_bytes(size)}{extra} is larger than the {fmt_bytes(available)} free in pool '{pool}'"


def plan_new_disk(pool: PoolInfo, size: int, provisioning: str = "thin", fmt: str = "qcow2") -> DiskPlan:
    """What the host holds now and at most for a new disk, and whether it fits.

    Pure: uses only ``pool`` (as :func:`pool_info` returned it).
    """
    _check_provisioning(provisioning)
    if size <= 0:
        return DiskPlan(0, 0, error="Size must be larger than zero")
    now = _now_bytes(size, fmt, provisioning)
    at_most = max(size, now)
    plan = DiskPlan(now=now, at_most=at_most)
    if not pool.active:
        plan.error = f"Pool '{pool.name}' is not active: start it first"
        return plan
    if provisioning == "thick":
        if now > pool.available:
            plan.error = _too_big(size, now, pool.available, pool.name)
        return plan
    warnings = []
    total = pool.volumes_capacity + size
    if pool.capacity > 0 and total > pool.capacity:
        ratio = total / pool.capacity
        warnings.append(
            f"Thin disks would overcommit pool '{pool.name}': its volumes could grow to "
            f"{fmt_bytes(total)} on {fmt_bytes(pool.capacity)} of storage ({ratio:.2f}x). "
            f"The VM can fail when the pool fills up.")
    if size > pool.available:
        warnings.append(
            f"Only {fmt_bytes(pool.available)} is free in pool '{pool.name}' now: "
            f"the VM can fail when the pool fills up before the disk reaches {fmt_bytes(size)}.")
    if warnings:
        plan.warning = " ".join(warnings)
    return plan


def validate_volume_name(name: str) -> str | None:
    """None when ``name`` is a usable volume (file) name, else the message for the field."""
    if name is None or not name.strip():
        return "Enter a name for the volume"
    if "/" in name:
        return "The name must not contain '/'"
    if "\0" in name:
        return "The name must not contain NUL characters"
    if name in (".", ".."):
        return "The name must not be '.' or '..'"
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        return "The name must not contain control characters"
    if name != name.strip():
        return "The name must not start or end with a space"
    if len(name.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
        return f"The name is too long (at most {MAX_NAME_BYTES} bytes)"
    return None


# ---------------------------------------------------------------------------
# volume XML
# ---------------------------------------------------------------------------


def volume_xml(name: str, capacity: int | None, fmt: str = "qcow2", provisioning: str = "thin",
               backing: str | None = None, backing_format: str | None = None) -> str:
    """The ``<volume>`` XML for ``pool.createXML``.

    thin: allocation 0 (sparse). thick: allocation = capacity; for qcow2 also
    pass :func:`create_flags` to the create call, or libvirt ignores it.
    ``backing`` makes a qcow2 overlay; its capacity may be None (= the
    backing file's).
    """
    _check_provisioning(provisioning)
    if backing is not None:
        if fmt != "qcow2":
            raise ValueError("an overlay on a backing file must be qcow2")
        if provisioning == "thick":
            raise ValueError("an overlay on a backing file cannot be thick")
    if capacity is None and backing is None:
        raise ValueError("a volume without a backing file needs a capacity")
    if capacity is not None and capacity <= 0:
        raise ValueError("capacity must be larger than zero")
    root = ET.Element("volume")
    ET.SubElement(root, "name").text = name
    if capacity is not None:
        ET.SubElement(root, "capacity", unit="bytes").text = str(int(capacity))
        alloc = int(capacity) if provisioning == "thick" else 0
        ET.SubElement(root, "allocation", unit="bytes").text = str(alloc)
    target = ET.SubElement(root, "target")
    ET.SubElement(target, "format", type=fmt)
    if fmt == "qcow2":
        ET.SubElement(target, "compat").text = "1.1"  # libvirt's default is 0.10
    if backing is not None:
        bs = ET.SubElement(root, "backingStore")
        ET.SubElement(bs, "path").text = backing
        if backing_format:
            ET.SubElement(bs, "format", type=backing_format)
    ET.indent(root, "  ")
    return ET.tostring(root, encoding="unicode") + "\n"


def create_flags(conn: libvirt.virConnect | None, fmt: str, provisioning: str) -> int:
    """Flags for ``pool.createXML``: thick qcow2 needs PREALLOC_METADATA
    (with allocation = capacity libvirt then runs qemu-img with
    ``preallocation=falloc``). The test driver takes no flags (and allocates
    nothing anyway)."""
    if fmt == "qcow2" and provisioning == "thick":
        if conn is not None and _is_test_driver(conn):
            return 0
        return libvirt.VIR_STORAGE_VOL_CREATE_PREALLOC_METADATA
    return 0


def _is_test_driver(conn: libvirt.virConnect) -> bool:
    try:
        return conn.getType().lower() == "test"
    except libvirt.libvirtError:
        return False


# ---------------------------------------------------------------------------
# changing things
# ---------------------------------------------------------------------------


def _call_progress(progress: Progress | None, done: int, total: int) -> None:
    if progress is None:
        return
    try:
        progress(done, total)
    except Exception:  # a broken progress display must not break the work
        log.exception("progress callback failed")


class _Poller:
    """Calls ``progress(allocation, total)`` every POLL_INTERVAL from a thread,
    ``allocation`` being that of volume ``name`` of ``pool``, while a long
    call (a thick create, a copy) makes it on ``conn``.

    The volume is read over a connection of the poller's own to ``conn``'s
    URI, opened and closed by its thread: libvirt 9's client can hold back
    a call made on a connection while another thread's long call is in
    flight on it (measured: a volume's ``info()`` sampled every 0.2 s during a thick
    create stalled for 1–4 s, at times until the create ended; over a second
    connection, never). The test driver keeps its state per connection, so
    it (and a URI that cannot be opened again, e.g. ssh asking for a
    password) is sampled on ``conn`` itself.

    A sample can stall (libvirtd re-reads the file while the kernel is
    busy writing it back); leaving the ``with`` block never waits long for
    it, and no progress call happens after the block.
    """

    def __init__(self, conn: libvirt.virConnect, pool: str, name: str, total: int,
                 progress: Progress | None, interval: float | None = None) -> None:
        self._conn = conn
        self._pool = pool
        self._name = name
        self._total = total
        self._progress = progress
        self._interval = POLL_INTERVAL if interval is None else interval  # read now, not at import
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> _Poller:
        if self._progress is not None:
            self._thread = threading.Thread(target=self._run, name="vmtui-progress", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        with self._lock:  # waits for a progress call under way
            self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=1.0)

    def _run(self) -> None:
        own = _second_connection(self._conn)
        try:
            self._loop(own or self._conn)
        finally:
            if own is not None:  # by this thread, after its last call on it
                try:
                    own.close()
                except libvirt.libvirtError:
                    pass

    def _loop(self, conn: libvirt.virConnect) -> None:
        pool = None
        while not self._stop.wait(self._interval):
            try:
                if pool is None:
                    pool = conn.storagePoolLookupByName(self._pool)
                done = pool.storageVolLookupByName(self._name).info()[2]
            except libvirt.libvirtError:
                continue  # not there yet, or being built
            except Exception:
                log.exception("progress sample failed")
                continue
            with self._lock:
                if self._stop.is_set():
                    return
                _call_progress(self._progress, min(done, self._total), self._total)


def _second_connection(conn: libvirt.virConnect) -> libvirt.virConnect | None:
    """Another connection to ``conn``'s URI, or None (the test driver, or it
    cannot be opened again)."""
    try:
        uri = conn.getURI()
        if uri and not uri.startswith("test:"):
            return libvirt.open(uri)
    except libvirt.libvirtError as err:
        log.info("progress is read on the connection of the work: %s", err)
    return None


def _vol_obj(pool: str, name: str) -> str:
    return f"'{name}' in pool '{pool}'"


def create_volume(conn: libvirt.virConnect, pool: str, name: str, size: int | None,
                  fmt: str = "qcow2", provisioning: str = "thin", backing: str | None = None,
                  progress: Progress | None = None, *, backing_format: str | None = None) -> VolumeInfo:
    """Create a volume through ``pool.createXML`` and return it.

    ``size`` may be None only with ``backing`` (the overlay takes the backing
    file's size). For thick volumes ``progress(allocated, total)`` is called
    from a poller thread every ~0.2 s while libvirt allocates (``total`` is
    what the host will hold right after creation, see :func:`plan_new_disk`);
    for every volume it is called once more at the end with ``(n, n)``, n
    being the final allocation (0 for thin raw). On failure nothing is left
    behind.
    """
    _check_provisioning(provisioning)
    action = "create volume"
    obj = _vol_obj(pool, name)
    problem = validate_volume_name(name)
    if problem:
        raise VmtuiError(action, obj, problem)
    if size is None and backing is None:
        raise VmtuiError(action, obj, "Size must be larger than zero")
    if size is not None and size <= 0:
        raise VmtuiError(action, obj, "Size must be larger than zero")
    if backing is not None and fmt != "qcow2":
        raise VmtuiError(action, obj, "an overlay on a backing file must be qcow2")
    if backing is not None and provisioning == "thick":
        raise VmtuiError(action, obj, "an overlay on a backing file cannot be thick "
                                      "(libvirt cannot preallocate an image with a backing file)")
    try:
        pool_obj = conn.storagePoolLookupByName(pool)
        if not pool_obj.isActive():
            raise VmtuiError(action, obj, f"pool '{pool}' is not active: start it first")
        if volume_exists(conn, pool_obj, name):
            raise VmtuiError(action, obj, f"a volume named '{name}' already exists in pool '{pool}'")
        if provisioning == "thick" and size is not None:
            available = pool_obj.info()[3]
            now = _now_bytes(size, fmt, provisioning)
            if now > available:
                raise VmtuiError(action, obj, _too_big(size, now, available, pool))
    except libvirt.libvirtError as err:
        raise _fail(action, obj, err) from None
    if backing is not None and backing_format is None:
        # never libvirt's default (raw): a qcow2 base read as raw boots nothing
        from .images import probe_image

        try:
            backing_format = probe_image(conn, backing).format
        except VmtuiError as err:
            raise VmtuiError(action, obj, f"the backing image {backing}: {err.cause}", err.hint) from None

    xml = volume_xml(name, size, fmt, provisioning, backing, backing_format)
    flags = create_flags(conn, fmt, provisioning)
    total = QCOW2_HEADER if size is None else _now_bytes(size, fmt, provisioning)

    try:  # only allocating takes long enough to watch
        with _Poller(conn, pool, name, total, progress if provisioning == "thick" else None):
            vol = pool_obj.createXML(xml, flags)
    except libvirt.libvirtError as err:
        if not _exists_error(err):  # someone else's volume of that name appeared meanwhile
            _remove_partial(pool_obj, name)
        raise _fail(action, obj, err) from None
    try:
        info = _parse_volume(vol.XMLDesc(0), pool)
    except libvirt.libvirtError as err:
        raise _fail(action, obj, err) from None
    done = max(total, info.allocation)
    _call_progress(progress, done, done)
    return info


def _exists_error(err: libvirt.libvirtError) -> bool:
    return (err.get_error_code() == libvirt.VIR_ERR_STORAGE_VOL_EXIST
            or "already exists" in (err.get_error_message() or ""))


def _remove_partial(pool_obj: libvirt.virStoragePool, name: str) -> None:
    """Delete a volume a failed create left behind (libvirt usually cleans up itself)."""
    try:
        vol = pool_obj.storageVolLookupByName(name)
    except libvirt.libvirtError:
        return
    try:
        vol.delete(0)
        log.info("removed partial volume %s", name)
    except libvirt.libvirtError as err:
        log.warning("cannot remove partial volume %s: %s", name, err)


def delete_volume(conn: libvirt.virConnect, key_or_path: str, *, force: bool = False) -> None:
    """Delete a volume given by key, path or ``pool/volume``.

    Unless ``force``, a volume that a domain uses, or that another volume in
    any pool has as its backing file, is kept and a VmtuiError says why.
    """
    action = "delete volume"
    vol, info = _lookup_or_fail(conn, key_or_path, action)
    obj = _vol_obj(info.pool, info.name)
    try:
        if not force:
            names = users_of_volume(volume_users(conn), info)
            if names:
                raise VmtuiError(action, obj, "it is in use by " + ", ".join(names))
            dependents = overlays_of(conn, info.path)
            if dependents:
                raise VmtuiError(action, obj, "it is the backing file of " + ", ".join(dependents))
        vol.delete(0)
    except libvirt.libvirtError as err:
        raise _fail(action, obj, err) from None


def overlays_of(conn: libvirt.virConnect, *paths: str) -> list[str]:
    """``pool/volume`` of every volume in an active pool whose backing file is
    one of ``paths``: the linked clones that break when those files change
    (a template's disks, a disk that is to be deleted or grown). One pass
    over the pools, however many paths."""
    backed = backing_map(conn)
    return sorted({o for p in paths for o in backed.get(p, [])})


def backing_map(conn: libvirt.virConnect) -> dict[str, list[str]]:
    """``{backing file path: ["pool/volume" of each overlay on it]}`` over the
    active pools: what :func:`overlays_of` reads, for a caller that asks
    about many disks at once (the service's disk usage)."""
    out: dict[str, list[str]] = {}
    for pool in conn.listAllStoragePools(libvirt.VIR_CONNECT_LIST_STORAGE_POOLS_ACTIVE):
        try:
            vols = list_volumes(conn, pool)
        except libvirt.libvirtError as err:
            if is_connection_lost(err):
                raise
            continue
        for v in vols:
            if v.backing:
                out.setdefault(v.backing, []).append(f"{v.pool}/{v.name}")
    return {k: sorted(v) for k, v in out.items()}


# ---------------------------------------------------------------------------
# streams
# ---------------------------------------------------------------------------


class _Throttle:
    """Calls progress at most every POLL_INTERVAL (and always at the end)."""

    def __init__(self, progress: Progress | None, total: int) -> None:
        self.progress = progress
        self.total = total
        self._last = 0.0

    def __call__(self, done: int, final: bool = False) -> None:
        if self.progress is None:
            return
        now = time.monotonic()
        if final or now - self._last >= POLL_INTERVAL:
            self._last = now
            _call_progress(self.progress, done, self.total)


def _abort(stream: libvirt.virStream) -> None:
    try:
        stream.abort()
    except libvirt.libvirtError:
        pass


def upload_file(conn: libvirt.virConnect, pool: str, name: str, local_path: str | os.PathLike,
                fmt: str = "raw", progress: Progress | None = None,
                cancel: threading.Event | None = None) -> VolumeInfo:
    """Upload a local file into a new volume of ``pool`` (over the libvirt
    connection, so it works on remote hosts).

    The volume is always created as a sparse raw file of the file's size and
    overwritten byte for byte by the upload; libvirt then probes what it
    holds, so an ISO is listed as ``iso`` and a qcow2 image as ``qcow2``.
    ``fmt`` is the format the caller expects the file to be; a mismatch is
    only logged. ``progress(sent, total)`` is called at most every 0.2 s and
    at the end. On failure, or when ``cancel`` is set, the new volume is
    deleted (a cancelled upload raises VmtuiError "cancelled").
    """
    action = "upload"
    obj = f"'{os.fspath(local_path)}' to {_vol_obj(pool, name)}"
    problem = validate_volume_name(name)
    if problem:
        raise VmtuiError(action, obj, problem)
    from ..files.userfile import UserFileError, open_regular

    try:
        fh = open_regular(local_path)  # a FIFO or a device: refused, never waited on
        size = os.fstat(fh.fileno()).st_size
    except UserFileError as err:
        raise VmtuiError(action, obj, os.strerror(err.errno) if err.errno else err.reason) from None
    except OSError as err:
        raise VmtuiError(action, obj, err.strerror or str(err)) from None
    if size == 0:
        fh.close()
        raise VmtuiError(action, obj, "the file is empty")
    with fh:
        try:
            pool_obj = conn.storagePoolLookupByName(pool)
            if volume_exists(conn, pool_obj, name):
                raise VmtuiError(action, obj, f"a volume named '{name}' already exists in pool '{pool}'")
            vol = pool_obj.createXML(volume_xml(name, size, "raw", "thin"), 0)
        except libvirt.libvirtError as err:
            raise _fail(action, obj, err) from None
        throttle = _Throttle(progress, size)
        stream = None
        try:
            stream = conn.newStream(0)
            vol.upload(stream, 0, size, 0)
            sent = 0
            while True:
                if cancel is not None and cancel.is_set():
                    raise VmtuiError(action, obj, "cancelled")
                chunk = fh.read(STREAM_CHUNK)
                if not chunk:
                    break
                view = memoryview(chunk)
                while view:
                    n = stream.send(view.tobytes())
                    if n < 0:
                        raise VmtuiError(action, obj, "the stream would block")
                    view = view[n:]
                    sent += n
                throttle(sent)
            stream.finish()
            stream = None
            throttle(sent, final=True)
            _refresh_after_upload(pool_obj)
            info = _volume_info(pool_obj.storageVolLookupByName(name), pool)
        except BaseException as err:
            if stream is not None:
                _abort(stream)
            _remove_partial(pool_obj, name)
            if isinstance(err, (libvirt.libvirtError, OSError)):
                raise _fail(action, obj, err) from None
            raise
    if fmt not in ("raw", None) and info.format not in (fmt, None):
        log.info("uploaded %s: expected format %s, libvirt says %s", name, fmt, info.format)
    return info


def _refresh_after_upload(pool_obj: libvirt.virStoragePool, timeout: float = 5.0) -> None:
    """Make libvirt re-probe the pool so the uploaded volume shows its real
    format. libvirt starts such a refresh itself when the upload ends, but in
    the background: until it has run the volume is still listed as raw. A
    pool with a job still running refuses to refresh, so retry briefly."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            pool_obj.refresh(0)
            return
        except libvirt.libvirtError as err:
            if is_connection_lost(err):
                raise
            if err.get_error_code() != libvirt.VIR_ERR_OPERATION_INVALID or time.monotonic() > deadline:
                log.info("cannot refresh pool %s after upload: %s", pool_obj.name(), err)
                return
        time.sleep(0.05)


def download_volume(conn: libvirt.virConnect, key: str, local_path: str | os.PathLike,
                    progress: Progress | None = None, cancel: threading.Event | None = None) -> int:
    """Download a volume (key, path or ``pool/volume``) into a local file.

    Returns the number of bytes written. ``progress(received, total)`` is
    called at most every 0.2 s and at the end (``total`` is the volume's
    file size). A partial local file is removed on failure or when
    ``cancel`` is set (which raises VmtuiError "cancelled").
    """
    action = "download volume"
    vol, info = _lookup_or_fail(conn, key, action)
    obj = f"{_vol_obj(info.pool, info.name)} to '{os.fspath(local_path)}'"
    total = info.physical if info.physical is not None else info.capacity
    throttle = _Throttle(progress, total)
    stream = None
    got = 0
    try:
        with open(local_path, "wb") as fh:
            stream = conn.newStream(0)
            vol.download(stream, 0, 0, 0)
            while True:
                if cancel is not None and cancel.is_set():
                    raise VmtuiError(action, obj, "cancelled")
                data = stream.recv(STREAM_CHUNK)
                if isinstance(data, int):  # -2: would block (non-blocking streams only)
                    if data == -2:
                        continue
                    raise VmtuiError(action, obj, "the stream failed")
                if not data:
                    break
                fh.write(data)
                got += len(data)
                throttle(got)
            stream.finish()
            stream = None
        throttle.total = max(total, got)
        throttle(got, final=True)
        return got
    except BaseException as err:
        if stream is not None:
            _abort(stream)
        try:
            os.unlink(local_path)
        except OSError:
            pass
        if isinstance(err, (libvirt.libvirtError, OSError)):
            raise _fail(action, obj, err) from None
        raise


# ---------------------------------------------------------------------------
# pools: define, start, stop, refresh, autostart, delete
# ---------------------------------------------------------------------------


def dir_pool_xml(name: str, path: str) -> str:
    """``<pool type='dir'>`` XML for ``storagePoolDefineXML`` (virsh pool-define-as NAME dir --target PATH)."""
    root = ET.Element("pool", type="dir")
    ET.SubElement(root, "name").text = name
    target = ET.SubElement(root, "target")
    ET.SubElement(target, "path").text = path
    ET.indent(root, "  ")
    return ET.tostring(root, encoding="unicode") + "\n"


def parse_pool_xml(xml: str) -> tuple[str, str, str | None]:
    """(name, type, target path) of a pool's XML."""
    root = ET.fromstring(xml)
    return _text(root, "name") or "", root.get("type") or "", _text(root, "target/path")


def validate_pool_name(name: str) -> str | None:
    """None when ``name`` is a usable pool name, else the message for the field."""
    return name_problem(name, empty="Enter a name for the pool")


def validate_pool_path(path: str) -> str | None:
    if not path or not path.strip():
        return "Enter the directory for the pool, e.g. /var/lib/libvirt/images/isos"
    if not path.startswith("/"):
        return "The path must be absolute (start with /)"
    if "\0" in path or any(ord(c) < 32 for c in path):
        return "The path must not contain control characters"
    if os.path.normpath(path) == "/":
        return "The pool cannot be the root directory"
    return None


def define_dir_pool(conn: libvirt.virConnect, name: str, path: str, *, start: bool = True,
                    autostart: bool = True) -> PoolInfo:
    """Define a directory pool, build it (libvirt creates the directory),
    start it and mark it autostart (virsh pool-define-as, pool-build,
    pool-start, pool-autostart). Nothing is left defined on failure."""
    action = "define pool"
    obj = f"'{name}'"
    for problem in (validate_pool_name(name), validate_pool_path(path)):
        if problem:
            raise VmtuiError(action, obj, problem)
    path = os.path.normpath(path)
    try:
        for other in conn.listAllStoragePools(0):
            o_name, _type, o_path = parse_pool_xml(other.XMLDesc(0))
            if o_name == name:
                raise VmtuiError(action, obj, f"a pool named '{name}' already exists")
            if o_path and os.path.normpath(o_path) == path:
                raise VmtuiError(action, obj, f"pool '{o_name}' already uses {path}")
        pool = conn.storagePoolDefineXML(dir_pool_xml(name, path), 0)
    except libvirt.libvirtError as err:
        raise _fail(action, obj, err) from None
    try:
        pool.build(0)
        if start:
            pool.create(0)
        if autostart:
            pool.setAutostart(1)
        return _pool_info(pool)
    except libvirt.libvirtError as err:
        try:
            if pool.isActive():
                pool.destroy()
            pool.undefine()
        except libvirt.libvirtError as err2:
            log.warning("cannot undefine half-made pool %s: %s", name, err2)
        raise _fail(action, obj, err) from None


def _pool_op(conn: libvirt.virConnect, name: str, action: str, op: Callable[[libvirt.virStoragePool], object]) -> None:
    try:
        op(conn.storagePoolLookupByName(name))
    except libvirt.libvirtError as err:
        raise _fail(action, f"'{name}'", err) from None


def start_pool(conn: libvirt.virConnect, name: str) -> None:
    """virsh pool-start."""
    _pool_op(conn, name, "start pool", lambda p: p.create(0))


def stop_pool(conn: libvirt.virConnect, name: str) -> None:
    """virsh pool-destroy: stops the pool; its volumes stay on disk."""
    _pool_op(conn, name, "stop pool", lambda p: p.destroy())


def refresh_pool(conn: libvirt.virConnect, name: str) -> None:
    """virsh pool-refresh."""
    _pool_op(conn, name, "refresh pool", lambda p: p.refresh(0))


def set_pool_autostart(conn: libvirt.virConnect, name: str, on: bool) -> None:
    """virsh pool-autostart [--disable]."""
    _pool_op(conn, name, "set autostart of pool", lambda p: p.setAutostart(1 if on else 0))


def delete_pool(conn: libvirt.virConnect, name: str) -> str:
    """Delete an empty pool: stop it, remove its directory (dir pools only,
    virsh pool-delete) and its definition (virsh pool-undefine).

    A pool holding volumes is refused, naming them. Returns what was done,
    for the notification.
    """
    action = "delete pool"
    obj = f"'{name}'"
    try:
        pool = conn.storagePoolLookupByName(name)
        _name, ptype, path = parse_pool_xml(pool.XMLDesc(0))
        started_here = False
        if not pool.isActive():
            try:  # volumes can only be listed on an active pool
                pool.create(0)
                started_here = True
            except libvirt.libvirtError as err:
                if is_connection_lost(err):
                    raise
                log.info("cannot start pool %s to list its volumes: %s", name, err)
        if pool.isActive():
            pool.refresh(0)
            vols = sorted(v.name() for v in pool.listAllVolumes(0))
            if vols:
                if started_here:
                    pool.destroy()
                shown = ", ".join(vols[:5]) + (f" and {len(vols) - 5} more" if len(vols) > 5 else "")
                raise VmtuiError(action, obj, f"it is not empty: it holds {len(vols)} volume"
                                 f"{'s' if len(vols) != 1 else ''} ({shown}); delete them first")
            pool.destroy()
        persistent = pool.isPersistent()
        done = []
        if ptype == "dir" and persistent:
            try:
                pool.delete(0)  # rmdir: fails, harmlessly, when something is left in it
                done.append(f"removed {path}")
            except libvirt.libvirtError as err:
                if is_connection_lost(err) or "No such file" not in (err.get_error_message() or ""):
                    raise
                done.append(f"{path} was already gone")
        if persistent:
            pool.undefine()
        done.insert(0, f"deleted pool '{name}'")
        return ", ".join(done)
    except libvirt.libvirtError as err:
        raise _fail(action, obj, err) from None


# ---------------------------------------------------------------------------
# warnings
# ---------------------------------------------------------------------------


def pool_warnings(pools: list[PoolInfo], short: bool = False) -> list[str]:
    """One line per problem: a pool over 85 % allocated, thin overcommit.
    ``short``: one compact line per pool, for the status line.

    Pure; inactive pools are skipped (libvirt reports no sizes for them)."""
    out = []
    for p in pools:
        if not p.active or p.capacity <= 0:
            continue
        if short:
            bits = []
            if p.nearly_full:
                bits.append(f"{p.used_fraction * 100:.0f}% full")
            if p.overcommitted:
                bits.append(f"{p.overcommit_ratio:.1f}x overcommitted")
            if bits:
                out.append(f"pool {p.name} " + ", ".join(bits))
            continue
        if p.nearly_full:
            out.append(f"pool '{p.name}' is {p.used_fraction * 100:.0f}% full "
                       f"({fmt_bytes(p.allocation)} of {fmt_bytes(p.capacity)}, "
                       f"{fmt_bytes(p.available)} free)")
        if p.overcommitted:
            out.append(f"pool '{p.name}' is overcommitted {p.overcommit_ratio:.2f}x: its volumes can "
                       f"grow to {fmt_bytes(p.volumes_capacity)} on {fmt_bytes(p.capacity)}")
    return out
