"""Cloning a shut-off VM or a template: what ``virt-clone`` does, over libvirt.

* new name (validated, unique), new UUID, new MAC for every NIC;
* every writable disk gets a new volume: **full** -- a copy through
  ``virStoragePoolCreateXMLFrom`` (libvirt copies, so it works on a remote
  host), with progress from the new volume's allocation -- or **linked** -- a
  qcow2 overlay whose backing file is the original (the original must not
  change afterwards; the usual way for templates);
* read-only and shareable disks, CD-ROMs and floppies are shared, not copied;
* UEFI NVRAM gets a new path (copied through libvirt when it is a volume);
* what must be unique to a VM is dropped or renewed as virt-clone does
  (security labels, fixed graphics ports, the SMBIOS UUID, the VM
  generation ID); every other element is kept (ElementTree edit).

Failure midway removes the volumes made so far and the domain, if defined.

:func:`plan_clone` and :func:`run_clone` are blocking: run them inside
``service.call``. Nothing here imports Textual.
"""

from __future__ import annotations

import logging
import posixpath
import random
import re
import uuid as uuid_mod
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Callable

import libvirt

from ..xml import domxml
from .. import storage
from ..xml.domain_model import Domain
from ..sizes import fmt_bytes
from .templates import NS_TEMPLATE, PREFIX as TEMPLATE_PREFIX
from ..errors import VmtuiError, is_connection_lost, libvirt_message
from ..names import name_problem

log = logging.getLogger(__name__)

MODES = ("full", "linked")
MAX_NAME = 200

#: progress(what, done_bytes, total_bytes)
CloneProgress = Callable[[str, int, int], None]


class CloneError(VmtuiError):
    """A clone that cannot be made as asked; ``field`` names the input at fault
    ("name", "pool", "mode", "disks" or "" for the operation itself)."""

    def __init__(self, field_: str, obj: str, cause: str, hint: str = "") -> None:
        super().__init__("clone", obj, cause, hint)
        self.field = field_


@dataclass
class DiskClone:
    """One disk of the source and what the clone does with it."""
    target: str
    device: str
    type: str
    source: str  # as the source XML names it ("" = empty drive)
    action: str  # "copy" | "link" | "share" | "empty"
    why: str = ""  # for "share"/"empty": why it is not copied
    src_path: str | None = None
    src_pool: str | None = None
    src_name: str | None = None
    src_format: str | None = None
    capacity: int = 0
    allocation: int = 0
    new_pool: str | None = None
    new_name: str | None = None
    new_format: str | None = None
    new_path: str | None = None  # known once created (dir pools: predicted)

    @property
    def copies(self) -> bool:
        return self.action in ("copy", "link")


@dataclass
class ClonePlan:
    source_uuid: str
    source_name: str
    new_name: str
    mode: str
    pool: str | None  # None: each new volume goes in its source's pool
    disks: list[DiskClone] = field(default_factory=list)
    nvram_src: str | None = None
    nvram_new: str | None = None
    warnings: list[str] = field(default_factory=list)
    source_xml: str = ""

    @property
    def bytes_to_copy(self) -> int:
        return sum(d.allocation for d in self.disks if d.action == "copy")


@dataclass
class CloneResult:
    uuid: str
    name: str
    volumes: list[str]  # paths of the new volumes
    notes: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------
# names
# ---------------------------------------------------------------------------


def validate_name(name: str) -> str | None:
    """None when ``name`` can name a libvirt domain, else the field message."""
    return name_problem(name, empty="Enter a name for the new VM", max_len=MAX_NAME)


def name_taken(conn: libvirt.virConnect, name: str) -> bool:
    try:
        conn.lookupByName(name)
        return True
    except libvirt.libvirtError as err:
        if err.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
            return False
        raise


def suggest_name(conn: libvirt.virConnect, base: str) -> str:
    """``<base>-clone``, ``<base>-clone1``, ... : the first free one (virt-clone's scheme)."""
    candidate = f"{base}-clone"
    n = 0
    while name_taken(conn, candidate):
        n += 1
        candidate = f"{base}-clone{n}"
    return candidate


_EXT = re.compile(r"(\.(qcow2|img|raw|vmdk|vdi|qed))$", re.IGNORECASE)


def new_volume_name(src_name: str, old_domain: str, new_domain: str, target: str, fmt: str) -> str:
    """The clone's volume name: the old VM name in the file name replaced
    by the new one (``web.qcow2`` -> ``web-clone.qcow2``), else
    ``<new>-<target>.<ext>``."""
    if old_domain and old_domain in src_name:
        return src_name.replace(old_domain, new_domain, 1)
    m = _EXT.search(src_name)
    ext = m.group(1) if m else (".qcow2" if fmt == "qcow2" else ".img")
    return f"{new_domain}-{target}{ext}"


def _unique(name: str, taken: Callable[[str], bool]) -> str:
    if not taken(name):
        return name
    m = _EXT.search(name)
    stem, ext = (name[:m.start()], m.group(1)) if m else (name, "")
    n = 1
    while taken(f"{stem}-{n}{ext}"):
        n += 1
    return f"{stem}-{n}{ext}"


# ---------------------------------------------------------------------------
# planning
# ---------------------------------------------------------------------------


def _inactive_xml(dom: libvirt.virDomain) -> str:
    try:
        return dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE | libvirt.VIR_DOMAIN_XML_SECURE)
    except libvirt.libvirtError as err:
        if is_connection_lost(err):
            raise
        return dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)


def plan_clone(conn: libvirt.virConnect, source_uuid: str, new_name: str, mode: str = "full",
               pool: str | None = None, *, check_space: bool = True) -> ClonePlan:
    """Blocking: what cloning ``source_uuid`` as ``new_name`` will do.

    Raises :class:`CloneError` (with the field at fault) when it cannot be done."""
    try:
        dom = conn.lookupByUUIDString(source_uuid)
        src_name = dom.name()
    except libvirt.libvirtError as err:
        if is_connection_lost(err):
            raise
        raise CloneError("", f"domain {source_uuid}", libvirt_message(err)) from None
    obj = f"domain '{src_name}'"
    if mode not in MODES:
        raise CloneError("mode", obj, f"mode must be full or linked, not {mode!r}")
    if dom.isActive():
        raise CloneError("", obj, "it is running: shut it off first (its disks change while it runs)")
    problem = validate_name(new_name)
    if problem:
        raise CloneError("name", obj, problem)
    if name_taken(conn, new_name):
        raise CloneError("name", obj, f"a VM named '{new_name}' already exists")
    pool_obj = None
    if pool:
        try:
            pool_obj = conn.storagePoolLookupByName(pool)
        except libvirt.libvirtError as err:
            if is_connection_lost(err):
                raise
            raise CloneError("pool", obj, f"no storage pool '{pool}'") from None
        if not pool_obj.isActive():
            raise CloneError("pool", obj, f"pool '{pool}' is not active: start it first")

    xml = _inactive_xml(dom)
    model = Domain.parse(xml, register=False)
    plan = ClonePlan(source_uuid=source_uuid, source_name=src_name, new_name=new_name, mode=mode,
                     pool=pool or None, source_xml=xml)
    chosen: dict[str, set[str]] = {}  # pool -> names planned

    for disk in model.devices.disks:
        info = domxml.disk_info(disk)
        d = DiskClone(target=info.target, device=info.device, type=info.type, source=info.source,
                      action="copy" if mode == "full" else "link", src_format=info.driver_type)
        plan.disks.append(d)
        if not info.source:
            d.action, d.why = "empty", "no medium"
            continue
        if info.device in ("cdrom", "floppy"):
            d.action, d.why = "share", f"{info.device}: shared, not copied"
            continue
        if info.readonly:
            d.action, d.why = "share", "read-only: shared, not copied"
            continue
        if info.shareable:
            d.action, d.why = "share", "shareable: shared, not copied"
            continue
        vol = storage.disk_volume(conn, info)
        if vol is None:
            raise CloneError("disks", obj, f"disk {info.target} ({info.source}) is not a volume of any "
                             "storage pool, so libvirt cannot copy it: put it in a pool (or make it "
                             "read-only to share it)")
        d.src_path, d.src_pool, d.src_name = vol.path, vol.pool, vol.name
        d.src_format = vol.format or info.driver_type or "raw"
        d.capacity, d.allocation = vol.capacity, vol.allocation
        d.new_pool = pool or vol.pool
        d.new_format = "qcow2" if d.action == "link" else d.src_format
        if d.action == "link" and d.src_format not in ("qcow2", "raw"):
            raise CloneError("mode", obj, f"disk {info.target} is {d.src_format}: a linked clone needs a "
                             "qcow2 or raw original; use a full clone")
        try:
            tgt_pool = pool_obj or conn.storagePoolLookupByName(d.new_pool)
        except libvirt.libvirtError as err:
            if is_connection_lost(err):
                raise
            raise CloneError("pool", obj, f"no storage pool '{d.new_pool}'") from None
        planned = chosen.setdefault(d.new_pool, set())
        base = new_volume_name(vol.name, src_name, new_name, info.target, d.new_format)
        if d.action == "link" and d.new_format == "qcow2" and base == vol.name:
            base = f"{new_name}-{info.target}.qcow2"
        name = _unique(base, lambda n: n in planned or storage.volume_exists(conn, tgt_pool, n))
        planned.add(name)
        d.new_name = name
        target_dir = _pool_path(tgt_pool)
        d.new_path = posixpath.join(target_dir, name) if target_dir else None

    if check_space:
        need: dict[str, int] = {}
        for d in plan.disks:
            if d.action == "copy":
                need[d.new_pool] = need.get(d.new_pool, 0) + d.allocation
        for pname, nbytes in need.items():
            try:
                available = conn.storagePoolLookupByName(pname).info()[3]
            except libvirt.libvirtError:
                continue
            if nbytes > available:
                raise CloneError("pool", obj, f"the copies need {fmt_bytes(nbytes)} but pool "
                                 f"'{pname}' has {fmt_bytes(available)} free")

    nvram = model.os.nvram_path
    if nvram:
        plan.nvram_src = nvram
        directory = posixpath.dirname(plan.nvram_src)
        plan.nvram_new = posixpath.join(directory, f"{new_name}_VARS.fd")
        if plan.nvram_new == plan.nvram_src:
            plan.nvram_new = posixpath.join(directory, f"{new_name}-{uuid_mod.uuid4().hex[:8]}_VARS.fd")
    if mode == "linked" and any(d.action == "link" for d in plan.disks):
        plan.warnings.append(f"Linked clone: the disks of '{src_name}' become backing files. They must "
                             "not change any more (do not start it, or the clones break).")
    if model.seclabels.find(type="static") is not None:
        plan.warnings.append("The static security label is not copied (it must be unique to one VM).")
    return plan


def _pool_path(pool: libvirt.virStoragePool) -> str | None:
    try:
        return ET.fromstring(pool.XMLDesc(0)).findtext("target/path")
    except (libvirt.libvirtError, ET.ParseError):
        return None


# ---------------------------------------------------------------------------
# the new XML
# ---------------------------------------------------------------------------


def random_mac(rng: random.Random | None = None) -> str:
    """A MAC in QEMU's locally administered range 52:54:00 (what libvirt and virt-clone use)."""
    r = rng or random.SystemRandom()
    return "52:54:00:" + ":".join(f"{r.randrange(256):02x}" for _ in range(3))


def host_macs(conn: libvirt.virConnect) -> set[str]:
    """Blocking: the MACs of every NIC of every domain on the host."""
    macs: set[str] = set()
    for dom in conn.listAllDomains(0):
        try:
            xml = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE if dom.isPersistent() else 0)
        except libvirt.libvirtError as err:
            if is_connection_lost(err):
                raise
            continue
        try:
            nics = Domain.parse(xml, register=False).devices.interfaces
        except domxml.DomainXMLError:
            continue
        macs |= {nic.mac.lower() for nic in nics if nic.mac}
    return macs


def new_macs(count: int, taken: set[str], rng: random.Random | None = None) -> list[str]:
    out: list[str] = []
    while len(out) < count:
        mac = random_mac(rng)
        if mac not in taken and mac not in out:
            out.append(mac)
    return out


def clone_xml(xml: str, new_name: str, new_uuid: str, disks: list[DiskClone], macs: list[str],
              nvram: str | None = None, *, keep_template: bool = False) -> str:
    """The source's (inactive) domain XML made into the clone's.

    ``disks`` are in the order of the ``<disk>`` elements; those that copy
    get their new volume as source (the backing chain is dropped: libvirt
    reads it from the image). ``macs`` go to the ``<interface>`` elements in
    order. The template marker is dropped unless ``keep_template`` (a clone
    of a template is a VM). Everything else is kept.
    """
    if not keep_template:
        xml = domxml.set_metadata_element(xml, NS_TEMPLATE, TEMPLATE_PREFIX, None)
    dom = Domain.parse(xml)
    dom.name = new_name
    dom.uuid = new_uuid
    if dom.genid is not None:
        dom.genid = ""  # empty: libvirt makes a new VM generation ID
    if dom.sysinfo_uuid is not None:
        dom.sysinfo_uuid = new_uuid

    # security labels: generated ones go (libvirt makes new), static ones go entirely
    for sec in list(dom.seclabels):
        if sec.type == "static":
            dom.seclabels.remove(sec)
        else:
            sec.label = sec.imagelabel = None

    # disks
    devices = dom.devices
    elements = list(devices.disks)
    if len(elements) != len(disks):
        raise ValueError(f"the plan has {len(disks)} disks, the XML {len(elements)}")
    for disk, d in zip(elements, disks):
        if not d.copies:
            continue
        if not d.new_path and not (d.new_pool and d.new_name):
            raise ValueError(f"disk {d.target}: no new volume")
        if d.type == "volume":
            disk.set_source("volume", pool=d.new_pool or "", volume=d.new_name or "")
        elif d.type == "block":
            disk.set_source("block", d.new_path or "")
        else:
            disk.set_source("file", d.new_path or "")
        if d.new_format:
            disk.set_format(d.new_format)

    # NICs
    nics = list(devices.interfaces)
    if len(macs) < len(nics):
        raise ValueError(f"{len(nics)} NICs but {len(macs)} new MACs")
    for nic, mac in zip(nics, macs):
        nic.mac = mac
        if nic.target_managed is not False:
            nic.target_dev = None  # host-side device name (vnetN): libvirt picks one
            nic.target_managed = None

    # fixed graphics ports would collide with the original's
    for g in devices.graphics:
        if g.port_number is not None or g.tls_port_number is not None:
            g.port = g.tls_port = g.websocket = None
            g.autoport = True

    if dom.os.nvram is not None or dom.os.nvram_path:
        dom.os.set_nvram_path(nvram)  # None: libvirt makes a fresh one from the template
    return dom.to_xml()


# ---------------------------------------------------------------------------
# doing it
# ---------------------------------------------------------------------------


def _vol_xml(name: str, capacity: int, fmt: str) -> str:
    root = ET.Element("volume")
    ET.SubElement(root, "name").text = name
    ET.SubElement(root, "capacity", unit="bytes").text = str(int(capacity))
    ET.SubElement(root, "allocation", unit="bytes").text = "0"
    target = ET.SubElement(root, "target")
    ET.SubElement(target, "format", type=fmt)
    return ET.tostring(root, encoding="unicode")


def _call(progress: CloneProgress | None, what: str, done: int, total: int) -> None:
    if progress is None:
        return
    try:
        progress(what, done, total)
    except Exception:
        log.exception("clone progress callback failed")


def _copy_volume(conn: libvirt.virConnect, d: DiskClone, base: int, total: int,
                 progress: CloneProgress | None) -> libvirt.virStorageVol:
    """Blocking: full copy of one disk through libvirt (works remotely)."""
    src_vol = conn.storagePoolLookupByName(d.src_pool).storageVolLookupByName(d.src_name)
    pool_obj = conn.storagePoolLookupByName(d.new_pool)
    what = f"copying {d.target} → {d.new_pool}/{d.new_name}"
    _call(progress, what, base, total)

    high = [0]

    def sub(done: int, _tot: int) -> None:
        high[0] = max(high[0], min(done, d.allocation))  # never backwards
        _call(progress, what, base + high[0], total)

    with storage._Poller(conn, d.new_pool, d.new_name, max(1, d.allocation), sub if progress else None):
        vol = pool_obj.createXMLFrom(_vol_xml(d.new_name, d.capacity, d.new_format or "raw"), src_vol, 0)
    _call(progress, what, base + d.allocation, total)
    return vol


def _link_volume(conn: libvirt.virConnect, d: DiskClone) -> libvirt.virStorageVol:
    """Blocking: a qcow2 overlay on the original."""
    info = storage.create_volume(conn, d.new_pool, d.new_name, d.capacity, "qcow2", "thin",
                                 backing=d.src_path, backing_format=d.src_format)
    return conn.storageVolLookupByKey(info.key)


def _copy_nvram(conn: libvirt.virConnect, src: str, new: str,
                temp_pools: list[libvirt.virStoragePool]) -> libvirt.virStorageVol | None:
    """Copy the NVRAM (UEFI variables) through libvirt, so it works remotely.

    When its directory is not a storage pool (``/var/lib/libvirt/qemu/nvram``
    usually is not), a transient dir pool is started on it for the copy, as
    virt-manager does for unmanaged paths; it goes in ``temp_pools`` for the
    caller to stop at the end (stopping a dir pool removes no file).
    Returns None when the file is not there (libvirt then makes fresh
    variables from the firmware's template at first start)."""
    directory = posixpath.dirname(src)
    if posixpath.dirname(new) != directory:
        return None
    try:
        vol = conn.storageVolLookupByPath(src)
    except libvirt.libvirtError as err:
        if is_connection_lost(err):
            raise
        vol = None
    if vol is None:
        pool = conn.storagePoolCreateXML(storage.dir_pool_xml(f"vmtui-nvram-{uuid_mod.uuid4().hex[:12]}", directory), 0)
        temp_pools.append(pool)
        try:
            vol = pool.storageVolLookupByName(posixpath.basename(src))
        except libvirt.libvirtError as err:
            if is_connection_lost(err) or err.get_error_code() != libvirt.VIR_ERR_NO_STORAGE_VOL:
                raise
            return None
    else:
        pool = vol.storagePoolLookupByVolume()
        if _pool_path(pool) != directory:
            return None
    info = vol.info()
    fmt = ET.fromstring(vol.XMLDesc(0)).find("target/format")
    return pool.createXMLFrom(_vol_xml(posixpath.basename(new), info[1],
                                       fmt.get("type") if fmt is not None else "raw"), vol, 0)


def _exists_error(err: libvirt.libvirtError) -> bool:
    """Creating failed because a volume of that name exists (someone else's:
    never remove it). libvirt says so with VIR_ERR_STORAGE_VOL_EXIST or,
    for createXMLFrom, an internal error "... already in use"."""
    msg = err.get_error_message() or ""
    return storage._exists_error(err) or "already in use" in msg


def _delete_quietly(vol: libvirt.virStorageVol) -> None:
    try:
        vol.delete(0)
    except libvirt.libvirtError as err:
        log.warning("could not remove partial clone volume: %s", libvirt_message(err))


def run_clone(conn: libvirt.virConnect, plan: ClonePlan, progress: CloneProgress | None = None,
              *, new_uuid: str | None = None) -> CloneResult:
    """Blocking: make the volumes, then define the clone. On any failure the
    volumes made so far and the defined domain are removed, and the error
    is raised (as a VmtuiError naming the disk)."""
    obj = f"domain '{plan.source_name}'"
    new_uuid = new_uuid or str(uuid_mod.uuid4())
    created: list[libvirt.virStorageVol] = []
    temp_pools: list[libvirt.virStoragePool] = []
    dom = None
    total = max(1, plan.bytes_to_copy)
    done = 0
    notes: list[str] = []
    try:
        if name_taken(conn, plan.new_name):
            raise CloneError("name", obj, f"a VM named '{plan.new_name}' already exists")
        for d in plan.disks:
            if not d.copies:
                continue
            try:
                if storage.volume_exists(conn, d.new_pool, d.new_name):
                    raise CloneError("disks", f"volume '{d.new_name}' in pool '{d.new_pool}'",
                                     f"disk {d.target}: a volume named '{d.new_name}' already exists "
                                     f"in pool '{d.new_pool}'")
                if d.action == "copy":
                    vol = _copy_volume(conn, d, done, total, progress)
                    done += d.allocation
                else:
                    _call(progress, f"overlay {d.target} → {d.new_pool}/{d.new_name}", done, total)
                    vol = _link_volume(conn, d)
            except libvirt.libvirtError as err:
                if is_connection_lost(err):
                    raise
                if not _exists_error(err):
                    storage._remove_partial(conn.storagePoolLookupByName(d.new_pool), d.new_name)
                raise CloneError("disks", f"volume '{d.new_name}' in pool '{d.new_pool}'",
                                 f"disk {d.target}: {libvirt_message(err)}") from None
            except CloneError:
                raise
            except VmtuiError as err:
                raise CloneError("disks", err.obj, f"disk {d.target}: {err.cause}", err.hint) from None
            created.append(vol)
            d.new_path = vol.path()
        nvram = plan.nvram_new
        if plan.nvram_src and plan.nvram_new:
            try:
                nv = _copy_nvram(conn, plan.nvram_src, plan.nvram_new, temp_pools)
            except libvirt.libvirtError as err:
                if is_connection_lost(err):
                    raise
                nv = None
                log.info("NVRAM not copied: %s", libvirt_message(err))
            if nv is not None:
                created.append(nv)
                nvram = nv.path()
                notes.append("UEFI variables copied")
            else:
                notes.append("UEFI variables start fresh (the original NVRAM file could not be copied)")
        macs = new_macs(len(Domain.parse(plan.source_xml, register=False).devices.interfaces), host_macs(conn))
        xml = clone_xml(plan.source_xml, plan.new_name, new_uuid, plan.disks, macs, nvram)
        _call(progress, f"defining '{plan.new_name}'", total, total)
        dom = conn.defineXML(xml)
        return CloneResult(uuid=dom.UUIDString(), name=plan.new_name,
                           volumes=[d.new_path for d in plan.disks if d.copies and d.new_path], notes=notes)
    except BaseException:
        if dom is not None:
            try:
                dom.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_NVRAM)
            except libvirt.libvirtError:
                try:
                    dom.undefine()
                except libvirt.libvirtError:
                    pass
        for vol in reversed(created):
            _delete_quietly(vol)
        raise
    finally:
        for pool in temp_pools:
            try:
                pool.destroy()  # transient: gone; the files stay
            except libvirt.libvirtError as err:
                log.warning("could not stop the temporary NVRAM pool: %s", libvirt_message(err))


def linked_clones_of(conn: libvirt.virConnect, uuid: str, target: str | None = None) -> list[str]:
    """Blocking: ``pool/volume`` of the overlays (linked clones' disks)
    whose backing file is a writable disk of domain ``uuid`` (only disk
    ``target`` if given). Starting that VM, reverting it to a snapshot or
    growing such a disk changes what those overlays read: they break."""
    dom = conn.lookupByUUIDString(uuid)
    xml = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE if dom.isPersistent() else 0)
    paths = []
    for d in domxml.disk_sources(xml):
        if d.device != "disk" or d.readonly or d.shareable or (target and d.target != target):
            continue
        path = d.path
        if path is None and d.pool and d.volume:  # <source pool= volume=>
            vol = storage.disk_volume(conn, d)
            path = vol.path if vol else None
        if path:
            paths.append(path)
    return storage.overlays_of(conn, *paths) if paths else []


__all__ = ["CloneError", "ClonePlan", "CloneResult", "DiskClone", "MODES", "clone_xml", "host_macs",
           "linked_clones_of", "new_macs", "new_volume_name", "plan_clone", "random_mac",
           "run_clone", "suggest_name", "validate_name", "name_taken"]
