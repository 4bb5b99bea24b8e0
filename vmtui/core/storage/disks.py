"""Disks and CD-ROMs of a domain: device XML, target names, add / remove /
grow a disk, insert / eject media, persistent / non-persistent mode.

Pure XML helpers (ElementTree, never string formatting) come first; the
functions after them are blocking, take a ``libvirt.virConnect`` and run in
the service's thread pool::

    rows = await service.call(lambda conn: disks.list_disks(conn, uuid))

How changes are applied (what virt-manager does too):

* the **persistent definition** is edited as XML (every element we do not
  model is kept) and redefined with ``conn.defineXML``;
* a **running** domain gets the same change live through
  ``attachDeviceFlags`` / ``detachDeviceFlags`` / ``updateDeviceFlags`` with
  ``VIR_DOMAIN_AFFECT_LIVE`` (hot-plug), or ``blockResize`` to grow a disk
  that QEMU holds open.

Non-persistent disks use libvirt's own ``<transient/>`` (libvirt >= 6.9
with QEMU; this host: libvirt 9.0, QEMU 7.2): at each start libvirt puts a
qcow2 overlay ``<image>.TRANSIENT-<alias>`` on the disk and deletes it at
power-off, so the guest's writes are discarded and the image keeps its
saved state. libvirt allows it only on local file disks in qcow2 or raw
format that are not shareable or read-only, and not hot-plugged: the mode
can only change while the VM is shut off.
"""

from __future__ import annotations

import copy
import logging
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

import libvirt

from ..xml import domxml
from .. import storage
from ..xml.domain_model import BUS_PREFIX, Disk, Domain, disk_target
from ..errors import VmtuiError, failure as _fail, from_libvirt, is_connection_lost, lookup_domain as _lookup
from ..xml.ownmeta import NS_DISKS, overlay_elements
from ..sizes import fmt_bytes

log = logging.getLogger(__name__)

__all__ = [
    "BUSES",
    "DiskRow",
    "disk_element",
    "cdrom_element",
    "element_xml",
    "used_targets",
    "next_target",
    "default_bus",
    "add_device_xml",
    "remove_disk_xml",
    "set_transient_xml",
    "set_media_xml",
    "find_disk_element",
    "transient_support",
    "transient_problem",
    "list_disks",
    "add_disk",
    "remove_disk",
    "resize_disk",
    "change_media",
    "set_mode",
    "overlay_disks",
    "reset_nonpersistent",
    "reset_overlays",
]

#: most devices a bus takes in vmtui's default layout (IDE: 2 channels x 2 units)
_LIMIT = {"ide": 4, "fdc": 2}
BUSES = ("virtio", "scsi", "sata", "ide", "usb")

TRANSIENT_MIN_LIBVIRT = 6_009_000  # <transient/> for QEMU disks arrived in libvirt 6.9.0
TRANSIENT_FORMATS = ("qcow2", "raw")

LIVE = libvirt.VIR_DOMAIN_AFFECT_LIVE


# ---------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------


@dataclass
class DiskRow:
    """One disk of a domain as the disks screen shows it."""
    disk: domxml.DiskInfo
    volume: storage.VolumeInfo | None = None  # None: not in any pool (or empty CD-ROM)
    used_by: list[str] = field(default_factory=list)  # other domains using the same source
    live_only: bool = False  # hot-plugged, not in the persistent definition
    config_only: bool = False  # in the next-boot definition only
    overlay: "OverlayDisk | None" = None  # non-persistent through a vmtui overlay

    @property
    def capacity(self) -> int | None:
        return self.volume.capacity if self.volume else None

    @property
    def allocation(self) -> int | None:
        return self.volume.allocation if self.volume else None

    @property
    def format(self) -> str | None:
        return self.disk.driver_type or (self.volume.format if self.volume else None)

    @property
    def provisioning(self) -> str:
        if self.volume is None or not self.volume.capacity:
            return "-"
        return "thin" if self.volume.thin else "thick"

    @property
    def mode(self) -> str:
        """persistent / nonpersistent for disks (VMware's words for the
        same modes); the device kind for CD-ROMs and floppies."""
        if self.disk.device != "disk":
            return self.disk.device
        return "nonpersistent" if self.disk.transient or self.overlay else "persistent"

    @property
    def flags(self) -> list[str]:
        out = []
        if self.disk.readonly:
            out.append("read-only")
        if self.disk.shareable:
            out.append("shareable")
        if self.live_only:
            out.append("live only")
        if self.config_only:
            out.append("next boot")
        return out


# ---------------------------------------------------------------------------
# XML: device elements
# ---------------------------------------------------------------------------


def disk_element(source: str | None, target: str, *, bus: str = "virtio", device: str = "disk",
                 fmt: str | None = None, source_type: str = "file", readonly: bool = False,
                 shareable: bool = False, transient: bool = False, cache: str | None = None,
                 pool: str | None = None, volume: str | None = None) -> ET.Element:
    """A ``<disk>`` device element (:meth:`Disk.new <vmtui.core.xml.domain_model.Disk.new>`).

    ``source_type`` "file" or "block" take ``source`` (a path); "volume"
    takes ``pool`` and ``volume``. ``source=None`` (file) makes an empty
    drive (a CD-ROM without media).
    """
    return Disk.new(source, target, bus=bus, device=device, fmt=fmt, source_type=source_type, readonly=readonly,
                    shareable=shareable, transient=transient, cache=cache, pool=pool, volume=volume).element


def cdrom_element(target: str, bus: str = "ide", source: str | None = None) -> ET.Element:
    """A read-only CD-ROM drive, empty when ``source`` is None."""
    return disk_element(source, target, bus=bus, device="cdrom", fmt="raw")


def element_xml(el: ET.Element) -> str:
    el = copy.deepcopy(el)
    ET.indent(el, "  ")
    el.tail = None
    return ET.tostring(el, encoding="unicode")


# ---------------------------------------------------------------------------
# XML: target names
# ---------------------------------------------------------------------------


def _domain(xml: str | bytes | ET.Element, edit: bool = False) -> Domain:
    if isinstance(xml, ET.Element):
        return Domain(xml)
    return Domain.parse(xml, register=edit)


def _root(xml: str | bytes | ET.Element) -> ET.Element:
    return _domain(xml).element


def used_targets(*xmls: str | bytes | ET.Element) -> set[str]:
    """Every ``<target dev>`` of every disk in the given domain XMLs (live
    and persistent definitions may differ: pass both)."""
    out = set()
    for xml in xmls:
        if xml is None:
            continue
        out |= {d.target_dev for d in _domain(xml).devices.disks if d.target_dev}
    return out


def target_names(bus: str) -> list[str]:
    """Every target dev name ``bus`` can take, in order (hda..hdd on IDE,
    vda..vdzz on virtio). ValueError for an unknown bus."""
    if bus not in BUS_PREFIX:
        raise ValueError(f"unknown disk bus {bus!r}")
    return [disk_target(BUS_PREFIX[bus], i) for i in range(_LIMIT.get(bus, 26 * 27))]


def next_target(bus: str, used: set[str] | str | bytes) -> str:
    """The first free target dev name for ``bus`` (vdX, sdX, hdX...).

    ``used`` is a set of names or a domain XML. Raises ValueError when the
    bus is full (IDE takes 4 devices).
    """
    names = target_names(bus)
    if not isinstance(used, set):
        used = used_targets(used)
    for name in names:
        if name not in used:
            return name
    raise ValueError(f"no free {bus} slot: the bus takes {len(names)} devices")


def default_bus(xml: str | bytes | ET.Element, device: str = "disk") -> str:
    """The bus this domain's existing devices of that kind use, else virtio
    for disks and the machine's CD-ROM bus (sata on q35, ide on i440fx)."""
    dom = _domain(xml)
    for d in dom.devices.disks:
        if d.device_kind == device and d.target_bus:
            return d.target_bus
    if device == "cdrom":
        return "sata" if "q35" in (dom.os.machine or "") else "ide"
    return "virtio"


# ---------------------------------------------------------------------------
# XML: editing a domain's devices
# ---------------------------------------------------------------------------


def find_disk_element(root: ET.Element, target: str) -> ET.Element | None:
    disk = Domain(root).devices.find_disk(target)
    return disk.element if disk is not None else None


def _find_disk(dom: Domain, target: str) -> Disk:
    disk = dom.devices.find_disk(target)
    if disk is None:
        raise domxml.DomainXMLError(f"the domain has no disk {target}")
    return disk


def add_device_xml(domain_xml: str | bytes, device: ET.Element) -> str:
    """The domain XML with ``device`` added after the last device of its kind
    (else at libvirt's place for it in ``<devices>``), indented like its
    neighbours; everything else is kept."""
    dom = _domain(domain_xml, edit=True)
    dom.devices.add(Disk(copy.deepcopy(device)))
    return dom.to_xml()


def remove_disk_xml(domain_xml: str | bytes, target: str) -> tuple[str, ET.Element]:
    """The domain XML without the disk at ``target``, and the removed element."""
    dom = _domain(domain_xml, edit=True)
    disk = _find_disk(dom, target)
    dom.devices.disks.remove(disk)
    return dom.to_xml(), disk.element


def set_transient_xml(domain_xml: str | bytes, target: str, transient: bool) -> str:
    """Add or remove ``<transient/>`` on the disk at ``target``."""
    dom = _domain(domain_xml, edit=True)
    _find_disk(dom, target).transient = transient
    return dom.to_xml()


def _set_media(disk: Disk, source: str | None) -> None:
    """Point a CD-ROM at ``source`` (a path) or empty it."""
    disk.set_source("file", source)
    # the tray closes with new media; an empty drive has no tray state to keep
    disk.target_tray = None


def set_media_xml(domain_xml: str | bytes, target: str, source: str | None) -> str:
    """Insert (``source`` = ISO path) or eject (None) the media of a CD-ROM."""
    dom = _domain(domain_xml, edit=True)
    disk = _find_disk(dom, target)
    if disk.device_kind not in ("cdrom", "floppy"):
        raise domxml.DomainXMLError(f"{target} is a {disk.device_kind}, not a CD-ROM")
    _set_media(disk, source)
    return dom.to_xml()


# ---------------------------------------------------------------------------
# non-persistent mode: what libvirt allows
# ---------------------------------------------------------------------------


def transient_support(conn: libvirt.virConnect) -> tuple[bool, str]:
    """Whether this host's libvirt handles ``<transient/>`` disks itself, and
    how vmtui describes the mechanism."""
    try:
        kind = conn.getType().lower()
        version = conn.getLibVersion()
    except libvirt.libvirtError as err:
        if is_connection_lost(err):
            raise
        return False, str(err)
    if kind == "test":
        return True, "libvirt <transient/> (test driver: stored, not run)"
    if kind != "qemu":
        return False, f"the {kind} driver has no transient disks"
    if version < TRANSIENT_MIN_LIBVIRT:
        return False, f"libvirt {_version(version)} is older than 6.9, which added transient disks"
    return True, (f"libvirt <transient/> (libvirt {_version(version)}): a qcow2 overlay libvirt "
                  "creates at each start and deletes at power-off")


def _version(v: int) -> str:
    return f"{v // 1_000_000}.{v // 1000 % 1000}.{v % 1000}"


def transient_problem(disk: domxml.DiskInfo) -> str | None:
    """Why this disk cannot be non-persistent (None when it can)."""
    if disk.device != "disk":
        return f"{disk.target} is a {disk.device}: only disks have a mode"
    if disk.type not in ("file", "volume"):
        return f"{disk.target} is a {disk.type} disk: libvirt makes only local file disks non-persistent"
    if (disk.driver_type or "raw") not in TRANSIENT_FORMATS:
        return f"{disk.target} is {disk.driver_type}: libvirt makes only qcow2 and raw disks non-persistent"
    if disk.readonly:
        return f"{disk.target} is read-only: nothing to discard"
    if disk.shareable:
        return f"{disk.target} is shareable: a shared disk cannot be non-persistent"
    return None


# ---------------------------------------------------------------------------
# blocking operations
# ---------------------------------------------------------------------------


#: the persistent definition as read to be defined again: with its secrets
#: (a VNC/SPICE password), which libvirt leaves out otherwise and a define
#: without them would drop
TO_DEFINE = libvirt.VIR_DOMAIN_XML_INACTIVE | libvirt.VIR_DOMAIN_XML_SECURE


def _xmls(dom: libvirt.virDomain, *, to_define: bool = False) -> tuple[str, str | None]:
    """(live or only XML, persistent definition or None for a transient
    domain). ``to_define``: the definition is to be changed and defined again
    (see TO_DEFINE; needs a read-write connection)."""
    live = dom.XMLDesc(0)
    flags = TO_DEFINE if to_define else libvirt.VIR_DOMAIN_XML_INACTIVE
    config = dom.XMLDesc(flags) if dom.isPersistent() else None
    return live, config


def list_disks(conn: libvirt.virConnect, uuid: str) -> list[DiskRow]:
    """Every disk and CD-ROM of the domain, with its volume and users.

    A running domain lists its live devices first, then those only in the
    next-boot definition (marked)."""
    dom = conn.lookupByUUIDString(uuid)
    live_xml, config_xml = _xmls(dom)
    active = dom.isActive()
    live = domxml.disk_sources(live_xml)
    config = domxml.disk_sources(config_xml) if config_xml else live
    rows: list[DiskRow] = []
    overlays = overlay_disks(config_xml or live_xml)
    users = storage.volume_users(conn, exclude_uuid=uuid)
    config_targets = {d.target for d in config}
    live_targets = {d.target for d in live}
    disks = [(d, active and config_xml is not None and d.target not in config_targets, False) for d in live]
    if active and config_xml is not None:
        disks += [(d, False, True) for d in config if d.target not in live_targets]
    for disk, live_only, config_only in disks:
        names: set[str] = set()
        for key in storage.source_keys(disk):
            names |= set(users.get(key, ()))
        try:
            vol = storage.disk_volume(conn, disk)
        except libvirt.libvirtError as err:
            if is_connection_lost(err):
                raise
            vol = None
        rows.append(DiskRow(disk=disk, volume=vol, used_by=sorted(names), live_only=live_only,
                            config_only=config_only, overlay=overlays.get(disk.target)))
    return rows


def _volume_source(vol: storage.VolumeInfo) -> tuple[str, str]:
    """(source_type, path) for a volume: block devices are type='block'."""
    return ("block" if vol.type == "block" else "file"), vol.path


def add_disk(conn: libvirt.virConnect, uuid: str, *, bus: str | None = None, device: str = "disk",
             pool: str | None = None, name: str | None = None, size: int | None = None,
             fmt: str = "qcow2", provisioning: str = "thin", existing: str | None = None,
             readonly: bool = False, shareable: bool = False, progress=None) -> str:
    """Add a disk to the domain: a new volume (``pool``, ``name``, ``size``,
    ``fmt``, ``provisioning``) or an ``existing`` volume / path; a CD-ROM
    without ``existing`` is an empty drive. ``bus`` None picks the bus the
    domain's devices of that kind use (or virtio / the machine's CD-ROM bus).
    It goes into
    the persistent definition and, when the domain runs, is hot-plugged.
    Returns the target dev. On failure nothing is left behind (a new volume
    is deleted again)."""
    action = "add a disk to" if device == "disk" else f"add a {device} to"
    dom, obj = _lookup(conn, uuid, action)
    readonly = readonly or device in ("cdrom", "floppy")
    created: storage.VolumeInfo | None = None
    try:
        live_xml, config_xml = _xmls(dom, to_define=True)
        active = bool(dom.isActive())
        bus = bus or default_bus(config_xml or live_xml, device)
        try:
            target = next_target(bus, used_targets(live_xml, config_xml))
        except ValueError as err:
            raise VmtuiError(action, obj, str(err)) from None
        if device in ("cdrom", "floppy") and not existing:
            src_type, path, vol_fmt = "file", None, "raw"  # an empty drive
        elif existing:
            existing = existing.strip()
            vol = storage.find_volume(conn, existing)
            if vol is not None:
                src_type, path = _volume_source(vol)
                vol_fmt = vol.format if vol.format in ("qcow2", "raw", "vmdk", "qed", "vdi", "vpc") else "raw"
            elif existing.startswith("/"):
                src_type, path, vol_fmt = "file", existing, "raw"
            else:
                raise VmtuiError(action, obj, f"no storage pool has a volume '{existing}' "
                                 "(give a path, pool/volume or a volume key)")
            others = storage.volume_users(conn, exclude_uuid=uuid)
            names = sorted(set(others.get(path, [])) | (set(others.get(f"{vol.pool}/{vol.name}", []))
                                                        if vol else set()))
            if names and not (shareable or readonly):
                raise VmtuiError(action, obj, f"'{path}' is in use by {', '.join(names)}",
                                 "Add it read-only or shareable, or use another volume.")
        else:
            if not pool or not name or size is None:
                raise VmtuiError(action, obj, "a new disk needs a pool, a name and a size")
            created = storage.create_volume(conn, pool, name, size, fmt, provisioning, progress=progress)
            src_type, path, vol_fmt = *_volume_source(created), fmt
        el = disk_element(path, target, bus=bus, device=device, fmt=vol_fmt, source_type=src_type,
                          readonly=readonly, shareable=shareable)
        if active:
            dom.attachDeviceFlags(element_xml(el), LIVE)
        if config_xml is not None:
            try:
                conn.defineXML(add_device_xml(config_xml, el))
            except libvirt.libvirtError:
                if active:
                    _quiet(lambda: dom.detachDeviceFlags(element_xml(el), LIVE))
                raise
        return target
    except BaseException as err:
        if created is not None:
            _quiet(lambda: conn.storageVolLookupByKey(created.key).delete(0))
        if isinstance(err, (libvirt.libvirtError, domxml.DomainXMLError)):
            raise _fail(action, obj, err) from None
        raise


def _quiet(fn) -> None:
    try:
        fn()
    except libvirt.libvirtError as err:
        log.warning("clean-up failed: %s", err)


def remove_disk(conn: libvirt.virConnect, uuid: str, target: str, *, delete_volume: bool = False,
                wait: float = 10.0) -> str | None:
    """Remove the disk at ``target`` from the domain (live and next boot).

    With ``delete_volume`` the volume behind it is deleted too, but never
    one another domain uses or that is another volume's backing file.
    Returns the deleted volume's path, or None."""
    import time

    action = f"remove disk {target} from"
    dom, obj = _lookup(conn, uuid, action)
    try:
        live_xml, config_xml = _xmls(dom, to_define=True)
        active = bool(dom.isActive())
        live_el = find_disk_element(_root(live_xml), target) if active else None
        config_el = find_disk_element(_root(config_xml), target) if config_xml else None
        if live_el is None and config_el is None:
            raise VmtuiError(action, obj, f"it has no disk {target}")
        info = domxml.parse_disk(config_el if config_el is not None else live_el)
        overlay = overlay_disks(config_xml).get(target) if config_xml else None
        if overlay is not None:  # the real disk is the overlay's base
            info = domxml.DiskInfo(**{**info.__dict__, "type": "file", "source": overlay.base,
                                      "path": overlay.base, "driver_type": overlay.base_format})
        vol = None
        if delete_volume:
            if info.device in ("cdrom", "floppy"):
                raise VmtuiError(action, obj, f"{target} is removable media: eject it instead of deleting the ISO")
            vol = storage.disk_volume(conn, info)
            if vol is None:
                raise VmtuiError(action, obj, f"'{info.source or '(empty)'}' is not a storage volume",
                                 "Remove the disk and keep the file, or delete it on the host.")
            users = storage.volume_users(conn, exclude_uuid=uuid)
            names = storage.users_of_volume(users, vol)
            if names:
                raise VmtuiError(action, obj, f"its volume '{vol.path}' is in use by {', '.join(names)}",
                                 "Remove the disk and keep the volume.")
            dependents = storage.overlays_of(conn, vol.path)
            if dependents:
                raise VmtuiError(action, obj, f"its volume '{vol.path}' is the backing file of "
                                 + ", ".join(dependents), "Remove the disk and keep the volume.")
        if live_el is not None:
            dom.detachDeviceFlags(element_xml(live_el), LIVE)
        if config_el is not None:
            xml = remove_disk_xml(config_xml, target)[0]
            if overlay is not None:
                entries = overlay_disks(config_xml)
                entries.pop(target, None)
                xml = set_overlay_meta(xml, entries)
            conn.defineXML(xml)
            if overlay is not None:
                over = storage.find_volume(conn, overlay.overlay)
                if over is not None:
                    _quiet(lambda: conn.storageVolLookupByKey(over.key).delete(0))
        if live_el is not None:
            # QEMU unplugs asynchronously; the guest has to let go of the device
            deadline = time.monotonic() + wait
            while find_disk_element(_root(dom.XMLDesc(0)), target) is not None:
                if time.monotonic() > deadline:
                    raise VmtuiError(action, obj, f"the guest has not released {target} yet",
                                     "It is removed from the next boot; the running guest may let go "
                                     "of it later. The volume was kept.")
                time.sleep(0.2)
        if vol is not None:
            conn.storageVolLookupByKey(vol.key).delete(0)
            return vol.path
        return None
    except (libvirt.libvirtError, domxml.DomainXMLError) as err:
        raise _fail(action, obj, err) from None


def resize_disk(conn: libvirt.virConnect, uuid: str, target: str, new_size: int) -> int:
    """Grow the disk at ``target`` to ``new_size`` bytes (never shrink).

    A running domain's disk is grown by QEMU (``blockResize``; the guest
    sees the new size at once), a shut-off one through the storage pool
    (``vol.resize``). Returns the new capacity."""
    action = f"resize disk {target} of"
    dom, obj = _lookup(conn, uuid, action)
    try:
        live_xml, config_xml = _xmls(dom, to_define=True)
        active = bool(dom.isActive())
        el = find_disk_element(_root(live_xml), target)
        if el is None and config_xml:
            el = find_disk_element(_root(config_xml), target)
        if el is None:
            raise VmtuiError(action, obj, f"it has no disk {target}")
        info = domxml.parse_disk(el)
        if info.device != "disk":
            raise VmtuiError(action, obj, f"{target} is a {info.device}: only disks can grow")
        vol = storage.disk_volume(conn, info)
        current = vol.capacity if vol else None
        if current is not None and new_size <= current:
            raise VmtuiError(action, obj, f"the new size {fmt_bytes(new_size)} is not larger than "
                             f"{fmt_bytes(current)}: disks only grow (shrinking loses data)")
        if active and find_disk_element(_root(live_xml), target) is not None:
            dom.blockResize(target, new_size, libvirt.VIR_DOMAIN_BLOCK_RESIZE_BYTES)
        else:
            if vol is None:
                raise VmtuiError(action, obj, f"'{info.source}' is not a storage volume")
            # a thick raw volume stays thick: allocate the new part too
            flags = libvirt.VIR_STORAGE_VOL_RESIZE_ALLOCATE if (vol.format == "raw" and not vol.thin) else 0
            conn.storageVolLookupByKey(vol.key).resize(new_size, flags)
        return new_size
    except (libvirt.libvirtError, domxml.DomainXMLError) as err:
        raise _fail(action, obj, err) from None


def change_media(conn: libvirt.virConnect, uuid: str, target: str, source: str | None) -> None:
    """Insert an ISO (``source``: path, ``pool/volume`` or key) into the
    CD-ROM at ``target``, or eject it (None). Live on a running domain
    (``updateDeviceFlags``) and in the next-boot definition."""
    action = f"{'insert media into' if source else 'eject'} {target} of"
    dom, obj = _lookup(conn, uuid, action)
    try:
        path = None
        if source:
            vol = storage.find_volume(conn, source)
            if vol is not None:
                path = vol.path
            elif source.strip().startswith("/"):
                path = source.strip()
            else:
                raise VmtuiError(action, obj, f"no storage pool has a volume '{source}'")
        live_xml, config_xml = _xmls(dom, to_define=True)
        active = bool(dom.isActive())
        live_el = find_disk_element(_root(live_xml), target) if active else None
        config_el = find_disk_element(_root(config_xml), target) if config_xml else None
        el = live_el if live_el is not None else config_el
        if el is None:
            raise VmtuiError(action, obj, f"it has no drive {target}")
        if Disk(el).device_kind not in ("cdrom", "floppy"):
            raise VmtuiError(action, obj, f"{target} is a disk, not a CD-ROM")
        if live_el is not None:
            new = Disk(copy.deepcopy(live_el))
            _set_media(new, path)
            dom.updateDeviceFlags(element_xml(new.element), LIVE | libvirt.VIR_DOMAIN_DEVICE_MODIFY_FORCE)
        if config_el is not None:
            conn.defineXML(set_media_xml(config_xml, target, path))
    except (libvirt.libvirtError, domxml.DomainXMLError) as err:
        raise _fail(action, obj, err) from None


# ---------------------------------------------------------------------------
# non-persistent mode, second mechanism: a vmtui-managed overlay
# ---------------------------------------------------------------------------

NS_DISKS_PREFIX = "vmtuidisks"
MECHANISMS = ("transient", "overlay")


@dataclass
class OverlayDisk:
    """A disk made non-persistent by vmtui: the domain runs on ``overlay``
    (qcow2, backing file ``base``), which vmtui recreates empty at each
    power-off."""
    target: str
    base: str
    base_format: str
    overlay: str


def overlay_disks(domain_xml: str | bytes) -> dict[str, OverlayDisk]:
    """The overlay-mode disks recorded in the domain's metadata, by target."""
    out: dict[str, OverlayDisk] = {}
    for d in overlay_elements(domxml.get_metadata(domain_xml, NS_DISKS)):
        out[d.get("target")] = OverlayDisk(d.get("target"), d.get("base"), d.get("base-format") or "raw",
                                           d.get("overlay"))
    return out


def set_overlay_meta(domain_xml: str | bytes, entries: dict[str, OverlayDisk]) -> str:
    """The domain XML with our metadata holding exactly ``entries``."""
    if not entries:
        return domxml.set_metadata_element(domain_xml, NS_DISKS, NS_DISKS_PREFIX, None)
    root = ET.Element("nonpersistent")
    for e in entries.values():
        ET.SubElement(root, "overlay", {"target": e.target, "base": e.base, "base-format": e.base_format,
                                        "overlay": e.overlay})
    return domxml.set_metadata_element(domain_xml, NS_DISKS, NS_DISKS_PREFIX, root)


def point_disk_xml(domain_xml: str | bytes, target: str, path: str, fmt: str) -> str:
    """The disk at ``target`` reading ``path`` (a file) in format ``fmt``."""
    dom = _domain(domain_xml, edit=True)
    disk = _find_disk(dom, target)
    disk.set_source("file", path)
    disk.set_format(fmt)
    return dom.to_xml()


def _overlay_name(vol: storage.VolumeInfo, target: str) -> str:
    stem = vol.name.rsplit(".", 1)[0] if "." in vol.name else vol.name
    return f"{stem}.{target}.nonpersistent.qcow2"


def _recreate_overlay(conn: libvirt.virConnect, e: OverlayDisk) -> None:
    """Delete the overlay (the guest's writes) and make it empty again."""
    base = storage.find_volume(conn, e.base)
    if base is None:
        raise VmtuiError("reset non-persistent disk", e.target, f"'{e.base}' is not in any storage pool")
    vol = storage.find_volume(conn, e.overlay)
    if vol is not None:
        conn.storageVolLookupByKey(vol.key).delete(0)
        pool, name = vol.pool, vol.name
    else:  # lost: make it again next to where it was
        pool, name = base.pool, e.overlay.rsplit("/", 1)[-1]
    storage.create_volume(conn, pool, name, base.capacity or None, "qcow2", "thin", backing=e.base,
                          backing_format=e.base_format)


def reset_nonpersistent(conn: libvirt.virConnect, uuid: str) -> list[str]:
    """After a power-off: discard what the guest wrote to its overlay-mode
    non-persistent disks (each overlay recreated empty). Returns the targets
    reset; nothing happens while the domain runs."""
    dom = conn.lookupByUUIDString(uuid)
    if dom.isActive() or not dom.isPersistent():
        return []
    return reset_overlays(conn, dom, dom.XMLDesc(TO_DEFINE))


def reset_overlays(conn: libvirt.virConnect, dom: libvirt.virDomain, xml: str) -> list[str]:
    """:func:`reset_nonpersistent` for a shut-off persistent ``dom`` whose
    inactive XML the caller already has."""
    entries = overlay_disks(xml)
    if not entries:
        return []
    current = {d.target: d.path for d in domxml.disk_sources(xml)}
    done = []
    for e in entries.values():
        if current.get(e.target) != e.overlay:
            continue  # changed by hand meanwhile: not ours to reset
        if not _still_defined(dom):
            break  # deleted meanwhile (its volumes too): nothing to make again
        try:
            _recreate_overlay(conn, e)
            done.append(e.target)
        except (libvirt.libvirtError, VmtuiError) as err:
            if isinstance(err, libvirt.libvirtError) and is_connection_lost(err):
                raise
            raise from_libvirt(f"discard the writes to non-persistent disk {e.target} of",
                               f"domain '{dom.name()}'", err) from None
    return done


def _still_defined(dom: libvirt.virDomain) -> bool:
    """The domain still has a persistent definition (False once undefined)."""
    try:
        return bool(dom.isPersistent())
    except libvirt.libvirtError as err:
        if err.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
            return False
        raise


def _make_overlay(conn, dom, config_xml: str, target: str, info: domxml.DiskInfo, action: str, obj: str) -> None:
    base = storage.disk_volume(conn, info)
    if base is None:
        raise VmtuiError(action, obj, f"'{info.source}' is not in a storage pool: vmtui keeps the overlay "
                         "of a non-persistent disk in the disk's own pool")
    base_fmt = info.driver_type or base.format or "raw"
    over = storage.create_volume(conn, base.pool, _overlay_name(base, target), base.capacity or None,
                                 "qcow2", "thin", backing=base.path, backing_format=base_fmt)
    try:
        entries = overlay_disks(config_xml)
        entries[target] = OverlayDisk(target, base.path, base_fmt, over.path)
        xml = point_disk_xml(config_xml, target, over.path, "qcow2")
        conn.defineXML(set_overlay_meta(xml, entries))
    except BaseException:
        _quiet(lambda: conn.storageVolLookupByKey(over.key).delete(0))
        raise


def _drop_overlay(conn, config_xml: str, e: OverlayDisk) -> None:
    entries = overlay_disks(config_xml)
    entries.pop(e.target, None)
    xml = point_disk_xml(config_xml, e.target, e.base, e.base_format)
    conn.defineXML(set_overlay_meta(xml, entries))
    vol = storage.find_volume(conn, e.overlay)
    if vol is not None:
        _quiet(lambda: conn.storageVolLookupByKey(vol.key).delete(0))


def set_mode(conn: libvirt.virConnect, uuid: str, target: str, persistent: bool,
             mechanism: str | None = None) -> str:
    """Make the disk at ``target`` persistent or non-persistent. The domain
    must be shut off. Returns the mechanism used for non-persistent
    ("transient" or "overlay"; "" for persistent).

    ``mechanism`` None picks libvirt's ``<transient/>`` when the host has it
    (see :func:`transient_support`), else "overlay": vmtui puts a qcow2
    overlay (in the disk's pool, backing file = the disk) in front of the
    disk and recreates it empty at each power-off it sees (the service
    listens for the stopped event; vmtui's start does it too)."""
    if mechanism not in (None, *MECHANISMS):
        raise ValueError(f"mechanism must be one of {MECHANISMS}, not {mechanism!r}")
    action = f"make disk {target} {'persistent' if persistent else 'non-persistent'} on"
    dom, obj = _lookup(conn, uuid, action)
    try:
        if dom.isActive():
            raise VmtuiError(action, obj, "it is running",
                             "Shut the VM off first: a disk's mode changes only while the VM is off.")
        if not dom.isPersistent():
            raise VmtuiError(action, obj, "it is a transient domain (no persistent definition)")
        config_xml = dom.XMLDesc(TO_DEFINE)
        el = find_disk_element(_root(config_xml), target)
        if el is None:
            raise VmtuiError(action, obj, f"it has no disk {target}")
        info = domxml.parse_disk(el)
        overlays = overlay_disks(config_xml)
        if persistent:
            if target in overlays:
                _drop_overlay(conn, config_xml, overlays[target])
            else:
                conn.defineXML(set_transient_xml(config_xml, target, False))
            return ""
        if info.transient or target in overlays:
            return "overlay" if target in overlays else "transient"
        problem = transient_problem(info)
        if problem:
            raise VmtuiError(action, obj, problem)
        if mechanism is None:
            mechanism = "transient" if transient_support(conn)[0] else "overlay"
        if mechanism == "transient":
            ok, why = transient_support(conn)
            if not ok:
                raise VmtuiError(action, obj, why)
            conn.defineXML(set_transient_xml(config_xml, target, True))
        else:
            _make_overlay(conn, dom, config_xml, target, info, action, obj)
        return mechanism
    except (libvirt.libvirtError, domxml.DomainXMLError) as err:
        raise _fail(action, obj, err) from None
