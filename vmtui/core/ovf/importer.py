"""Importing a package's disks into a storage pool: each converted to a
qcow2 volume with ``qemu-img convert`` -- on a local host straight into the
pool's directory followed by a pool refresh, otherwise into a local
temporary file uploaded through libvirt. The volumes made so far are
deleted again on failure or cancel."""

from __future__ import annotations

import logging
import os
import tempfile
import threading
from dataclasses import dataclass
from typing import Callable, Iterable

import libvirt

from .. import storage
from ..errors import VmtuiError, from_libvirt, is_connection_lost
from .envelope import OvfDisk, OvfPackage
from .errors import Cancelled
from .images import check_source_image, format_of, run_qemu_img, source_args

log = logging.getLogger(__name__)


@dataclass
class ImportedVolume:
    disk_id: str
    pool: str
    name: str
    path: str
    key: str

    @property
    def ref(self) -> str:
        return f"{self.pool}/{self.name}"


ImportProgress = Callable[[str, float], None]  # (message, fraction of the whole import)


def volume_names(pkg: OvfPackage, vm_name: str, taken: Iterable[str] = ()) -> list[str]:
    """``<vm>.qcow2``, ``<vm>-1.qcow2``, ... one per disk, avoiding ``taken``."""
    taken = set(taken)
    out = []
    n = 0
    for _ in pkg.disks:
        while True:
            cand = f"{vm_name}.qcow2" if n == 0 else f"{vm_name}-{n}.qcow2"
            n += 1
            if cand not in taken:
                break
        taken.add(cand)
        out.append(cand)
    return out


def import_disks(conn: libvirt.virConnect, pkg: OvfPackage, pool: str, names: list[str], *,
                 local: bool, progress: ImportProgress | None = None,
                 cancel: threading.Event | None = None, tmp_dir: str | None = None) -> list[ImportedVolume]:
    """Blocking: convert every disk of ``pkg`` to a qcow2 volume ``names[i]`` in ``pool``.

    ``local``: the libvirt host is this machine; a directory pool is then
    written in place (and refreshed), else each disk is converted to a
    temporary file here and uploaded through libvirt. On any failure (or
    cancel) the volumes made so far are deleted and the error raised.
    """
    if len(names) != len(pkg.disks):
        raise ValueError("one volume name per disk")
    made: list[ImportedVolume] = []
    report = progress or (lambda m, f: None)
    try:
        pool_obj = conn.storagePoolLookupByName(pool)
        if not pool_obj.isActive():
            raise VmtuiError("import into", f"pool '{pool}'", "the pool is not active: start it first")
        info = storage.pool_info(conn, pool)
        for name in names:
            problem = storage.validate_volume_name(name)
            if problem:
                raise VmtuiError("import into", f"pool '{pool}'", f"volume '{name}': {problem}")
            if storage.volume_exists(conn, pool_obj, name):
                raise VmtuiError("import into", f"pool '{pool}'", f"a volume named '{name}' already exists")
    except libvirt.libvirtError as err:
        if is_connection_lost(err):
            raise
        raise from_libvirt("import into", f"pool '{pool}'", err) from None
    direct = local and info.type in ("dir", "fs", "netfs") and bool(info.path) and os.path.isdir(info.path or "")
    count = max(1, len(pkg.disks))
    try:
        for i, (disk, name) in enumerate(zip(pkg.disks, names)):
            base, span = i / count, 1.0 / count
            label = f"disk {i + 1} of {len(pkg.disks)} ({disk.disk_id})"
            where = f"{label} → {pool}/{name}"
            if cancel is not None and cancel.is_set():
                raise Cancelled("import", where)
            vol = _import_one(conn, pool_obj, info, disk, name, direct=direct, tmp_dir=tmp_dir or pkg.work_dir,
                              report=lambda msg, frac, b=base, s=span: report(msg, b + s * frac),
                              label=label, cancel=cancel, where=where)
            made.append(vol)
        report("Disks imported", 1.0)
        return made
    except BaseException:
        remove_volumes(conn, made)
        raise


def _import_one(conn, pool_obj, info: storage.PoolInfo, disk: OvfDisk, name: str, *, direct: bool,
                tmp_dir: str | None, report, label: str, cancel, where: str) -> ImportedVolume:
    if disk.path is None:  # an empty disk of the given capacity
        report(f"Creating empty {label}", 0.0)
        v = storage.create_volume(conn, info.name, name, max(disk.capacity, 1024 * 1024), "qcow2", "thin")
        return ImportedVolume(disk.disk_id, info.name, v.name, v.path, v.key)
    declared = format_of(disk)
    if declared == "qcow2":
        declared = None  # probe: qcow2 vs raw is told by the header
    src_fmt, vsize = check_source_image(disk.path, declared, offset=disk.offset, length=disk.length,
                                        label=disk.file_name or None)
    if direct:
        dest = os.path.join(info.path or "", name)
        if os.path.exists(dest):
            raise VmtuiError("import", where, f"'{dest}' already exists")
    else:
        fd, dest = tempfile.mkstemp(prefix="vmtui-import-", suffix=".qcow2", dir=tmp_dir)
        os.close(fd)
    try:
        report(f"Converting {label} ({src_fmt} → qcow2)", 0.0)
        span = 1.0 if direct else 0.6
        run_qemu_img(["convert", *source_args(disk, src_fmt), "-O", "qcow2", "-o", "compat=1.1", dest],
                     progress=lambda f: report(f"Converting {label} ({src_fmt} → qcow2)", f * span),
                     cancel=cancel, where=where)
        if disk.capacity > vsize:  # the envelope's capacity is the guest's disk size
            run_qemu_img(["resize", "-f", "qcow2", dest, str(disk.capacity)], where=where)
        if direct:
            try:
                os.chmod(dest, 0o600)
            except OSError:
                pass
            try:
                _refresh(pool_obj)
                vol = pool_obj.storageVolLookupByName(name)
                path = vol.path()
                key = vol.key()
            except libvirt.libvirtError as err:
                raise from_libvirt("import", where, err) from None
            return ImportedVolume(disk.disk_id, info.name, name, path, key)
        report(f"Uploading {label}", 0.6)
        v = storage.upload_file(conn, info.name, name, dest, "qcow2",
                                lambda done, total: report(f"Uploading {label}",
                                                           0.6 + 0.4 * (done / total if total else 1)))
        return ImportedVolume(disk.disk_id, info.name, v.name, v.path, v.key)
    except BaseException:
        if direct:
            try:
                os.unlink(dest)
                _refresh(pool_obj)
            except (OSError, libvirt.libvirtError):
                pass
        raise
    finally:
        if not direct:
            try:
                os.unlink(dest)
            except OSError:
                pass


def _refresh(pool_obj) -> None:
    import time
    for _ in range(50):
        try:
            pool_obj.refresh(0)
            return
        except libvirt.libvirtError as err:
            if err.get_error_code() != libvirt.VIR_ERR_OPERATION_INVALID:
                raise
            time.sleep(0.1)
    pool_obj.refresh(0)


def remove_volumes(conn: libvirt.virConnect, vols: Iterable[ImportedVolume]) -> list[str]:
    """Delete imported volumes (rollback); returns what could not be deleted."""
    left = []
    for v in reversed(list(vols)):
        try:
            storage.delete_volume(conn, v.key, force=True)
        except VmtuiError as err:
            log.warning("cannot remove imported volume %s: %s", v.ref, err)
            left.append(f"{v.ref} ({err.cause})")
        except libvirt.libvirtError as err:
            left.append(f"{v.ref} ({err})")
    return left
