"""Exporting a shut-off domain as an OVA: every disk converted with
``qemu-img convert -O vmdk -o subformat=streamOptimized`` (downloaded
through libvirt first when the host is remote or the file is not readable
here), an OVF 1.0 envelope, a SHA256 manifest, and a tar with the ``.ovf``
first, as the OVF specification (DSP0243) requires."""

from __future__ import annotations

import os
import re
import shutil
import tarfile
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import libvirt

from .. import storage
from ..errors import VmtuiError, from_libvirt, is_connection_lost
from ..xml.domain_model import Domain
from .envelope import build_envelope
from .errors import Cancelled
from .images import ALLOWED_SOURCE_FORMATS, image_info, run_qemu_img
from .manifest import file_digest

ExportProgress = Callable[[str, float], None]  # (message, fraction of the whole export)


@dataclass
class ExportDisk:
    target: str
    source: str  # host path
    format: str  # qemu-img format of the source
    bus: str
    capacity: int = 0


@dataclass
class ExportPlan:
    name: str
    description: str
    vcpus: int
    memory_mib: int
    osinfo: str
    firmware: str  # bios / uefi
    disks: list[ExportDisk]
    nics: list[tuple[str, str, str | None]]  # (network or bridge name, model, mac)
    secure_boot: bool = False


def plan_export(domain_xml: str, osinfo: str | None = None, *, keep_macs: bool = False) -> ExportPlan:
    """What an export writes, from the (inactive) domain XML, read through
    :class:`vmtui.core.xml.domain_model.Domain` (so firmware and Secure Boot are what
    the details screen and ``vmtui export`` say too).

    MAC addresses are left out unless ``keep_macs``: an appliance imported
    next to the VM it came from must not clash with it on the network."""
    dom = Domain.parse(domain_xml, register=False)
    name = dom.name or "vm"
    vcpus = dom.vcpus or 1
    mem_kib = dom.current_memory_kib
    if mem_kib is None:
        mem_kib = dom.memory_kib
    if mem_kib is None:
        mem_kib = 1024 * 1024
    short = osinfo or dom.os_short_id() or "generic"
    os_m = dom.os
    firmware = "uefi" if os_m.is_uefi else "bios"
    disks = []
    for d in dom.devices.disks:
        if d.device_kind != "disk":
            continue
        path = d.volume_ref or d.source_file or d.source_dev
        if not path:
            continue
        disks.append(ExportDisk(d.target_dev or "", path, d.driver_type or "raw", d.target_bus or "virtio"))
    nics = []
    for i in dom.devices.interfaces:
        net = i.source_network or i.source_bridge or i.source_dev or ""
        nics.append((net or "default", i.model or "", i.mac if keep_macs else None))
    return ExportPlan(name, dom.description or "", vcpus, max(1, mem_kib // 1024), short, firmware, disks, nics,
                      secure_boot=os_m.secure_boot)


def export_ova(conn: libvirt.virConnect, domain_name: str, dest: str | os.PathLike, *, local: bool,
               progress: ExportProgress | None = None, cancel: threading.Event | None = None,
               tmp_dir: str | None = None, overwrite: bool = False, uuid: str | None = None) -> str:
    """Blocking: write the shut-off domain ``domain_name`` (the one with
    ``uuid`` when given: the VM chosen, even if renamed since) as an OVA at ``dest``.

    ``local``: the host is this machine, so disk files readable here are
    converted in place; otherwise (or when not readable) each volume is
    downloaded through libvirt first. Returns the OVA path. Nothing is left
    behind on failure.
    """
    dest = os.path.abspath(os.fspath(dest))
    obj = f"domain '{domain_name}'"
    report = progress or (lambda m, f: None)
    if os.path.isdir(dest):
        raise VmtuiError("export", obj, f"'{dest}' is a directory: give a file name ending in .ova")
    if os.path.exists(dest) and not overwrite:
        raise VmtuiError("export", obj, f"'{dest}' already exists")
    if not os.path.isdir(os.path.dirname(dest)):
        raise VmtuiError("export", obj, f"the directory '{os.path.dirname(dest)}' does not exist")
    try:
        dom = conn.lookupByUUIDString(uuid) if uuid else conn.lookupByName(domain_name)
        if dom.isActive():
            raise VmtuiError("export", obj, "it is running: shut it off first (disks change while it runs)")
        xml = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
    except libvirt.libvirtError as err:
        if is_connection_lost(err):
            raise
        raise from_libvirt("export", obj, err) from None
    plan = plan_export(xml)
    work = tempfile.mkdtemp(prefix="vmtui-export-", dir=tmp_dir or os.path.dirname(dest))
    partial = dest + ".partial"
    try:
        base = re.sub(r"[^A-Za-z0-9_.+-]+", "-", plan.name)[:60] or "vm"  # ustar names: 100 bytes
        files: list[tuple[str, int, int, int | None]] = []
        vmdks: list[str] = []
        n = max(1, len(plan.disks))
        for i, d in enumerate(plan.disks):
            lo, span = 0.9 * i / n, 0.9 / n
            where = f"disk {d.target or i} of {obj}"
            src = d.source
            vol = None
            try:
                vol = storage.find_volume(conn, src)
            except libvirt.libvirtError:
                vol = None
            if vol is not None:
                src = vol.path
                d.format = d.format or vol.format or "raw"
            readable = local and os.path.isfile(src) and os.access(src, os.R_OK)
            if not readable:
                if vol is None:
                    raise VmtuiError("export", where, f"'{d.source}' is not a storage volume and not readable here")
                local_copy = os.path.join(work, f"download-{i}")
                report(f"Downloading disk {i + 1} of {len(plan.disks)}", lo)
                storage.download_volume(conn, vol.key, local_copy,
                                        lambda done, total, lo=lo, span=span: report(
                                            f"Downloading disk {i + 1} of {len(plan.disks)}",
                                            lo + span * 0.5 * (done / total if total else 1)))
                src = local_copy
                lo, span = lo + span * 0.5, span * 0.5
            if cancel is not None and cancel.is_set():
                raise Cancelled("export", obj)
            fmt = d.format if d.format in ALLOWED_SOURCE_FORMATS else None
            info = image_info(src, fmt)
            capacity = int(info.get("virtual-size") or 0)
            out_name = f"{base}-disk{i + 1}.vmdk"
            out = os.path.join(work, out_name)
            label = f"Converting disk {i + 1} of {len(plan.disks)} to stream-optimized VMDK"
            report(label, lo)
            run_qemu_img(["convert", "-f", info.get("format", "raw"), "-O", "vmdk", "-o", "subformat=streamOptimized",
                          src, out], progress=lambda f, lo=lo, span=span, label=label: report(label, lo + span * f),
                         cancel=cancel, what="export", where=where)
            if src.startswith(work):
                os.unlink(src)
            files.append((out_name, os.path.getsize(out), capacity, None))
            vmdks.append(out)
        report("Writing the OVF descriptor and manifest", 0.9)
        ovf_name = f"{base}.ovf"
        envelope = build_envelope(plan, files)
        ovf_path = os.path.join(work, ovf_name)
        Path(ovf_path).write_bytes(envelope)
        mf_lines = [f"SHA256({ovf_name})= {file_digest(ovf_path, 'sha256', cancel)}"]
        for name, path in zip([f[0] for f in files], vmdks):
            mf_lines.append(f"SHA256({name})= {file_digest(path, 'sha256', cancel)}")
        mf_name = f"{base}.mf"
        mf_path = os.path.join(work, mf_name)
        Path(mf_path).write_text("\n".join(mf_lines) + "\n", encoding="utf-8")
        members = [(ovf_name, ovf_path), (mf_name, mf_path)] + [(f[0], p) for f, p in zip(files, vmdks)]
        big = any(os.path.getsize(p) >= 8 * 1024 ** 3 for _n, p in members)
        report("Writing the OVA", 0.95)
        with tarfile.open(partial, "w", format=tarfile.PAX_FORMAT if big else tarfile.USTAR_FORMAT) as tf:
            for name, path in members:
                ti = tf.gettarinfo(path, arcname=name)
                ti.uid = ti.gid = 0
                ti.uname = ti.gname = ""
                ti.mode = 0o644
                with open(path, "rb") as fh:
                    tf.addfile(ti, fh)
        os.replace(partial, dest)
        report("Exported", 1.0)
        return dest
    except BaseException as err:
        try:
            os.unlink(partial)
        except OSError:
            pass
        if isinstance(err, libvirt.libvirtError) and not is_connection_lost(err):
            raise from_libvirt("export", obj, err) from None
        if isinstance(err, OSError):
            raise VmtuiError("export", obj, err.strerror or str(err)) from None
        raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
