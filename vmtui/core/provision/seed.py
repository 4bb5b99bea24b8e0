"""A cloud-init NoCloud seed on a VM: build the ``cidata`` ISO, upload it into
a storage pool, attach it read-only, and take it away again.

Every function taking a ``conn`` is blocking; the app runs it through
``service.call``. Device XML is built with ElementTree.

Where the seed goes (:func:`seed_bus_for`): cloud-init's NoCloud finds any
block device labelled ``cidata``, but the guest's kernel must have a driver
for it. Minimal cloud kernels (Debian's ``cloud-amd64``, like many) have no
AHCI driver, so a SATA CD-ROM -- q35's default -- is invisible to them and
cloud-init silently falls back to no datasource. A kernel always reads its
own boot disk, so the seed goes on the boot disk's bus: a read-only **virtio
disk** next to a virtio boot disk (virtio_blk is in every cloud kernel; it
hot-plugs on i440fx and q35 alike), else a CD-ROM on SCSI, SATA or IDE like
the boot disk; with no disk at all, a CD-ROM on the machine's bus (``scsi``
with a virtio-scsi controller, else ``sata`` on q35 and ``ide`` on i440fx).
New VMs get the same rule from :func:`vmtui.core.create.builder.seed_bus`,
and a spec may choose (``install.cloud_init.seed_bus``).

* :func:`attach_seed` -- ISO built in memory, written to a temporary file,
  uploaded as volume ``<domain>-cidata.iso`` with libvirt's stream upload
  (works on remote hosts, :func:`upload_seed`), attached read-only to the
  persistent definition (and to the running VM when the bus allows
  hot-plug). On failure the volume is deleted again and nothing stays
  attached.
* :func:`detach_seed` -- the reverse (optionally keeping the volume).
* "Remove after the first boot": :func:`attach_seed` records the wish in the
  domain's ``<metadata>`` (namespace :data:`NS_SEED`). The seed goes once
  cloud-init reported that it finished with the seed (its "finished" line,
  :mod:`vmtui.core.consoles.readiness`), and only by the vmtui that waits for
  it: ``vmtui create --wait``, or the UI that created the VM (or attached the
  seed). :func:`remove_seed` then takes it out of the definition and out of
  the running VM -- unplugged, or, for a CD-ROM that cannot be hot-unplugged
  (IDE, SATA), its medium ejected so an empty drive stays until the VM next
  stops -- and deletes the volume. With nothing waiting, the seed stays (the
  details screen says so), and nothing removes it behind the user's back.
"""

from __future__ import annotations

import logging
import os
import tempfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any, Callable

import libvirt
import yaml

from .. import storage
from ..storage import disks
from ..xml import domxml
from ..files import safeyaml
from ..xml.domain_model import Disk, Domain
from ..errors import VmtuiError, from_libvirt, is_connection_lost
from ..xml.ownmeta import NS_SEED, seed_cleanup_due  # our namespace in the domain's <metadata>
from .cloudinit import CLOUD_CONFIG_HEADER, build_seed_iso, default_meta_data, new_instance_id
from .cloudinit_form import GROWPART_ON

log = logging.getLogger(__name__)

NS_PREFIX = "vmtuici"
SEED_SUFFIX = "-cidata.iso"


@dataclass
class CloudInitDocs:
    """The three NoCloud documents (``network_config`` None = none)."""

    user_data: str
    meta_data: str
    network_config: str | None = None

    def to_spec(self, detach_after_first_boot: bool = False) -> dict:
        """The ``InstallSource.cloud_init`` dict form."""
        return {"user_data": self.user_data, "meta_data": self.meta_data,
                "network_config": self.network_config, "detach_after_first_boot": bool(detach_after_first_boot)}

    @classmethod
    def from_spec(cls, data: dict | None) -> "CloudInitDocs | None":
        if not data:
            return None
        return cls(user_data=data.get("user_data") or "", meta_data=data.get("meta_data") or "",
                   network_config=data.get("network_config") or None)


def default_user_data(hostname: str) -> str:
    """A starter ``#cloud-config``: the hostname, and the root partition and
    file system grown to the disk (growpart, resize_rootfs: a VM's overlay
    is usually larger than its cloud image)."""
    data: dict = {"hostname": hostname} if hostname else {}
    data.update(growpart=dict(GROWPART_ON), resize_rootfs=True)
    body = yaml.safe_dump(data, sort_keys=False, default_flow_style=False)
    return f"{CLOUD_CONFIG_HEADER}\n{body}"


def default_docs(hostname: str) -> CloudInitDocs:
    """Starter documents; without a hostname, meta-data holds the instance-id
    only (:func:`complete_docs` adds ``local-hostname`` later)."""
    if not hostname:
        return CloudInitDocs(default_user_data(""), yaml.safe_dump({"instance-id": new_instance_id()}))
    return CloudInitDocs(default_user_data(hostname), default_meta_data(hostname))


def complete_docs(docs: CloudInitDocs | None, hostname: str) -> CloudInitDocs:
    """Fill what a seed must have: user-data (hostname only) when empty, and a
    meta-data with an ``instance-id`` (a new unique one when missing) and
    ``local-hostname`` (the VM name when missing). Other meta-data keys stay."""
    if docs is None:
        return default_docs(hostname)
    user_data = docs.user_data if docs.user_data.strip() else default_user_data(hostname)
    meta_text = docs.meta_data or ""
    try:
        meta = safeyaml.load(meta_text) if meta_text.strip() else {}
    except yaml.YAMLError:
        meta = None  # invalid: left for validation to report
    if isinstance(meta, dict) and (not meta.get("instance-id") or (hostname and not meta.get("local-hostname"))):
        meta = dict(meta)
        if not meta.get("instance-id"):
            meta["instance-id"] = new_instance_id()
        if hostname and not meta.get("local-hostname"):
            meta["local-hostname"] = hostname
        meta_text = yaml.safe_dump(meta, sort_keys=False, default_flow_style=False)
    net = docs.network_config if docs.network_config and docs.network_config.strip() else None
    return CloudInitDocs(user_data, meta_text, net)


def seed_volume_name(domain_name: str) -> str:
    return f"{domain_name}{SEED_SUFFIX}"


# --------------------------------------------------------------------------
# pure XML helpers


def _domain(xml: str | bytes) -> Domain:
    return Domain.parse(xml, register=False)


def cdrom_bus_for(xml: str | bytes) -> str:
    """The CD-ROM bus that works on this machine: ``scsi`` if the VM has a
    virtio-scsi controller, ``sata`` on q35, ``ide`` on i440fx ('pc')."""
    dom = _domain(xml)
    if any(c.type == "scsi" and c.model == "virtio-scsi" for c in dom.devices.controllers):
        return "scsi"
    return "sata" if "q35" in (dom.os.machine or "") else "ide"


SEED_BUSES = ("virtio", "scsi", "sata", "ide")


def seed_bus_for(xml: str | bytes) -> str:
    """Where a seed goes on this domain: the bus of its first disk (a virtio
    disk on ``virtio``, a CD-ROM on the others), else :func:`cdrom_bus_for`."""
    for disk in _domain(xml).devices.disks:
        if disk.device_kind == "disk" and disk.target_bus in SEED_BUSES:
            return disk.target_bus
    return cdrom_bus_for(xml)


def seed_device_xml(domain_xml: str | bytes, path: str, live_xml: str | bytes | None = None,
                    bus: str | None = None) -> str:
    """The device XML of a read-only seed for this domain: a virtio disk on
    ``virtio``, else a CD-ROM (bus: :func:`seed_bus_for` unless given; free
    target chosen from its XML, and ``live_xml`` too when it runs); a
    VmtuiError when the bus is full."""
    bus = bus or seed_bus_for(domain_xml)
    used = disks.used_targets(domain_xml, *([live_xml] if live_xml else []))
    try:
        target = disks.next_target(bus, used)
    except ValueError:
        names = disks.target_names(bus)
        raise VmtuiError("attach the cloud-init seed", "",
                         f"no free {bus.upper()} slot ({names[0]}..{names[-1]} are all taken)") from None
    device = "disk" if bus == "virtio" else "cdrom"
    return Disk.new(path, target, bus=bus, device=device, fmt="raw", readonly=True).to_xml()


def cdrom_device_xml(domain_xml: str | bytes, path: str, live_xml: str | bytes | None = None) -> str:
    """The device XML of a seed CD-ROM for this domain (bus and free target
    chosen from its XML; ``live_xml`` too when it runs); a VmtuiError when
    the bus is full."""
    return seed_device_xml(domain_xml, path, live_xml, cdrom_bus_for(domain_xml))


def seed_disks(xml: str | bytes, path: str | None = None, volume_name: str | None = None) -> list[Disk]:
    """The seed devices (CD-ROMs, read-only virtio disks) whose source is
    ``path`` (or whose file name is ``volume_name``)."""
    out = []
    for disk in _domain(xml).devices.disks:
        if disk.device_kind not in ("cdrom", "disk") or (disk.device_kind == "disk" and not disk.readonly):
            continue
        f, vol = disk.source_file, disk.source_volume
        if (path and f == path) or (volume_name and (vol == volume_name or (f and os.path.basename(f) == volume_name))):
            out.append(disk)
    return out


def seed_disk_elements(xml: str | bytes, path: str | None = None, volume_name: str | None = None) -> list[ET.Element]:
    """The CD-ROM ``<disk>`` elements whose source is ``path`` (or whose file
    name is ``volume_name``)."""
    return [d.element for d in seed_disks(xml, path, volume_name)]


@dataclass
class SeedRecord:
    """What our <metadata> element says about a VM's seed."""

    path: str
    pool: str
    volume: str
    detach_after_first_boot: bool


def seed_metadata_element(rec: SeedRecord) -> ET.Element:
    el = ET.Element("seed", path=rec.path, pool=rec.pool, volume=rec.volume,
                    detach_after_first_boot="yes" if rec.detach_after_first_boot else "no")
    return el


def seed_record(xml: str | bytes) -> SeedRecord | None:
    el = domxml.get_metadata(xml, NS_SEED)
    if el is None:
        return None
    get = el.get
    return SeedRecord(get("path") or "", get("pool") or "", get("volume") or "", seed_cleanup_due(el))


def set_seed_metadata(xml: str | bytes, rec: SeedRecord | None) -> str:
    """The domain XML with our seed record set (None: removed)."""
    return domxml.set_metadata_element(xml, NS_SEED, NS_PREFIX, None if rec is None else seed_metadata_element(rec))


# --------------------------------------------------------------------------
# libvirt


def _flags(dom: libvirt.virDomain, live: bool) -> int:
    flags = libvirt.VIR_DOMAIN_AFFECT_CONFIG
    if live:
        flags |= libvirt.VIR_DOMAIN_AFFECT_LIVE
    return flags


def _write_metadata(dom: libvirt.virDomain, rec: SeedRecord | None) -> None:
    if rec is None:
        xml_text = None
    else:
        xml_text = ET.tostring(seed_metadata_element(rec), encoding="unicode")
    for live in ((True, False) if dom.isActive() else (False,)):
        try:
            dom.setMetadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, xml_text, NS_PREFIX if rec else None,
                            NS_SEED, _flags(dom, live))
            return
        except libvirt.libvirtError as err:
            if is_connection_lost(err) or not live:
                raise


def _detach_elements(dom: libvirt.virDomain, elements: list[ET.Element], live: bool) -> None:
    for el in elements:
        dev = ET.tostring(el, encoding="unicode")
        if live:
            dom.detachDeviceFlags(dev, libvirt.VIR_DOMAIN_AFFECT_LIVE)
        else:
            dom.detachDeviceFlags(dev, libvirt.VIR_DOMAIN_AFFECT_CONFIG)


UNPLUGGED, EJECTED, STILL_ATTACHED = "unplugged", "ejected", "still attached"


def _eject_element(el: ET.Element) -> str:
    """The device XML of CD-ROM ``el`` with its medium taken out."""
    empty = ET.fromstring(ET.tostring(el))
    for child in empty.findall("source") + empty.findall("backingStore"):
        empty.remove(child)
    if empty.get("type") == "volume":
        empty.set("type", "file")
    return ET.tostring(empty, encoding="unicode")


def _remove_live(dom: libvirt.virDomain, path: str | None, volume_name: str | None) -> str:
    """Take the seed out of the running VM: unplug it, or eject the medium of
    a CD-ROM that cannot be hot-unplugged (the empty drive stays until the VM
    stops). "" when the running VM does not have it; else UNPLUGGED, EJECTED
    or STILL_ATTACHED (a disk the guest did not let go of)."""
    live = seed_disks(dom.XMLDesc(0), path, volume_name)
    if not live:
        return ""
    outcome = UNPLUGGED
    for disk in live:
        dev = ET.tostring(disk.element, encoding="unicode")
        try:
            dom.detachDeviceFlags(dev, libvirt.VIR_DOMAIN_AFFECT_LIVE)
            continue
        except libvirt.libvirtError as err:
            if is_connection_lost(err):
                raise
            log.info("cannot unplug the seed from running %s: %s", dom.name(), err)
        if disk.device != "cdrom":
            outcome = STILL_ATTACHED
            continue
        try:
            dom.updateDeviceFlags(_eject_element(disk.element), libvirt.VIR_DOMAIN_AFFECT_LIVE)
            outcome = EJECTED if outcome == UNPLUGGED else outcome
        except libvirt.libvirtError as err:
            if is_connection_lost(err):
                raise
            log.info("cannot eject the seed from running %s: %s", dom.name(), err)
            outcome = STILL_ATTACHED
    # an unplug the guest has not acknowledged yet leaves the device in place
    if outcome != STILL_ATTACHED and seed_disks(dom.XMLDesc(0), path, volume_name):
        outcome = STILL_ATTACHED
    return outcome


def _remove_from_domain(dom: libvirt.virDomain, path: str | None, volume_name: str | None) -> bool:
    """Detach matching seed CD-ROMs from the definition and from the running
    VM (unplugged, or the medium ejected: see :func:`_remove_live`). True
    when the running VM still holds the seed."""
    inactive = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
    config = seed_disk_elements(inactive, path, volume_name)
    if config:
        _detach_elements(dom, config, live=False)
    return dom.isActive() and _remove_live(dom, path, volume_name) == STILL_ATTACHED


def _volume_path(conn: libvirt.virConnect, pool: str, name: str) -> str | None:
    try:
        return conn.storagePoolLookupByName(pool).storageVolLookupByName(name).path()
    except libvirt.libvirtError as err:
        if is_connection_lost(err):
            raise
        return None


def _users_besides(conn: libvirt.virConnect, path: str, dom_uuid: str) -> list[str]:
    users = storage.volume_users(conn, exclude_uuid=dom_uuid)
    return users.get(path, [])


def upload_seed(conn: libvirt.virConnect, pool: str, volume_name: str, docs: CloudInitDocs,
                progress: Callable[[int, int], None] | None = None) -> storage.VolumeInfo:
    """Build the NoCloud ISO of ``docs`` and upload it as ``volume_name``
    into ``pool`` (libvirt stream upload: remote hosts too)."""
    data = build_seed_iso(docs.user_data, docs.meta_data, docs.network_config)
    fd, tmp = tempfile.mkstemp(prefix="vmtui-seed-", suffix=".iso")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        return storage.upload_file(conn, pool, volume_name, tmp, "raw", progress)
    finally:
        try:
            os.unlink(tmp)
        except OSError:
            pass


def attach_seed(conn: libvirt.virConnect, domain_name: str, pool: str, docs: CloudInitDocs, *,
                detach_after_first_boot: bool = False,
                progress: Callable[[int, int], None] | None = None, uuid: str | None = None) -> str:
    """Build the NoCloud ISO from ``docs``, upload it as ``<domain>-cidata.iso``
    into ``pool`` and attach it read-only to the domain (the one with
    ``uuid`` when given: the VM chosen, whatever its name is now;
    definition, and the running VM when possible). An earlier seed of this
    VM is replaced. Returns the volume's path. On failure nothing is left behind."""
    action = "attach the cloud-init seed to"
    obj = f"domain '{domain_name}'"
    vol_name = seed_volume_name(domain_name)
    try:
        dom = conn.lookupByUUIDString(uuid) if uuid else conn.lookupByName(domain_name)
        dom_uuid = dom.UUIDString()
        if not dom.isPersistent():
            raise VmtuiError(action, obj, "it is transient (a seed must stay attached to the definition)")
        old = _volume_path(conn, pool, vol_name)
        if old is not None:
            others = _users_besides(conn, old, dom_uuid)
            if others:
                raise VmtuiError(action, obj, f"volume {pool}/{vol_name} already exists and is used by "
                                 + ", ".join(others))
            _remove_from_domain(dom, old, None)
            storage.delete_volume(conn, old, force=True)
    except libvirt.libvirtError as err:
        raise from_libvirt(action, obj, err) from None

    path = upload_seed(conn, pool, vol_name, docs, progress).path
    attached = False
    try:
        inactive = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
        active = dom.isActive()
        live_xml = dom.XMLDesc(0) if active else None
        device = seed_device_xml(inactive, path, live_xml)
        if active:
            try:
                dom.attachDeviceFlags(device, _flags(dom, True))
            except libvirt.libvirtError as err:
                if is_connection_lost(err):
                    raise
                # e.g. IDE/SATA cannot be hot-plugged: the CD-ROM appears at the next boot
                log.info("seed not hot-plugged into running %s: %s", domain_name, err)
                dom.attachDeviceFlags(device, _flags(dom, False))
        else:
            dom.attachDeviceFlags(device, _flags(dom, False))
        attached = True
        _write_metadata(dom, SeedRecord(path, pool, vol_name, detach_after_first_boot))
    except BaseException as err:
        try:
            if attached:
                _remove_from_domain(dom, path, None)
        except libvirt.libvirtError as err2:
            log.warning("rollback: cannot detach %s from %s: %s", path, domain_name, err2)
        try:
            storage.delete_volume(conn, path, force=True)
        except VmtuiError as err2:
            log.warning("rollback: %s", err2)
        if isinstance(err, libvirt.libvirtError):
            raise from_libvirt(action, obj, err) from None
        if isinstance(err, domxml.DomainXMLError):
            raise VmtuiError(action, obj, str(err)) from None
        raise
    return path


def detach_seed(conn: libvirt.virConnect, domain_name: str, delete_volume: bool = True) -> str | None:
    """Detach the VM's seed CD-ROM (definition and, when possible, the
    running VM), forget our metadata, and delete the volume unless another VM
    uses it, the running VM could not let go of it (IDE/SATA: it is gone
    from the definition, the volume stays), or ``delete_volume`` is False.
    Returns the seed's path, or None when the VM has no seed."""
    action = "remove the cloud-init seed of"
    obj = f"domain '{domain_name}'"
    try:
        dom = conn.lookupByName(domain_name)
        inactive = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
        rec = seed_record(inactive)
        path = rec.path if rec else None
        vol_name = rec.volume if rec else seed_volume_name(domain_name)
        if path is None:
            found = seed_disks(inactive, None, vol_name)
            path = found[0].source_file if found else None
        if path is None and rec is None:
            return None
        still_live = _remove_from_domain(dom, path, vol_name)
        if rec is not None:
            _write_metadata(dom, None)
        if delete_volume and path:
            others = _users_besides(conn, path, dom.UUIDString())
            if others:
                log.info("keeping %s: used by %s", path, ", ".join(others))
            elif still_live:
                log.info("keeping %s: the running %s still has it until it shuts down", path, domain_name)
            elif storage.find_volume(conn, path) is not None:
                storage.delete_volume(conn, path, force=True)
        return path
    except libvirt.libvirtError as err:
        raise from_libvirt(action, obj, err) from None


def first_boot_cleanup_due(xml: str | bytes) -> bool:
    return seed_cleanup_due(domxml.get_metadata(xml, NS_SEED))


@dataclass
class SeedRemoval:
    """What :func:`remove_seed` did."""

    name: str  # the VM
    path: str  # the seed's volume
    live: str = ""  # the running VM's drive: "" (not running, or never had it), UNPLUGGED, EJECTED, STILL_ATTACHED
    volume_deleted: bool = False
    kept: str = ""  # why the volume was kept ("" deleted, or already gone)

    def describe(self) -> str:
        """One sentence for the user."""
        what = f"the cloud-init seed of '{self.name}' ({self.path})"
        if self.volume_deleted:
            text = f"Removed {what}"
        elif self.kept:
            text = f"Detached {what} from its definition; the volume is kept: {self.kept}"
        else:
            text = f"Detached {what} (its volume was already gone)"
        if self.live == EJECTED:
            text += "; the running VM keeps an empty CD-ROM drive until it stops (IDE/SATA cannot be unplugged)"
        return text + "."


def remove_seed(conn: libvirt.virConnect, uuid: str, *, only_if_due: bool = True) -> SeedRemoval | None:
    """Blocking: take the cloud-init seed of domain ``uuid`` away, once
    cloud-init reported that it finished with it: out of the persistent
    definition, out of the running VM (unplugged, or the medium ejected from
    a CD-ROM that cannot be hot-unplugged), our metadata record dropped, and
    the volume deleted unless another VM uses it or the running VM still holds
    it. ``only_if_due``: only when the seed was asked to go after the first
    boot. None when there is nothing to do (no seed, no such wish, the VM is
    gone)."""
    action = "remove the cloud-init seed of"
    try:
        dom = conn.lookupByUUIDString(uuid)
        name = dom.name()
        if not dom.isPersistent():
            return None
        inactive = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
        rec = seed_record(inactive)
        if rec is None or (only_if_due and not rec.detach_after_first_boot):
            return None
        path = rec.path
        if not path:
            found = seed_disks(inactive, None, rec.volume or seed_volume_name(name))
            path = (found[0].source_file or "") if found else ""
        volume_name = rec.volume or None
        config = seed_disk_elements(inactive, path or None, volume_name)
        if config:
            _detach_elements(dom, config, live=False)
        result = SeedRemoval(name, path)
        if dom.isActive():
            result.live = _remove_live(dom, path or None, volume_name)
        _write_metadata(dom, None)
        if not path:
            return result
        others = _users_besides(conn, path, dom.UUIDString())
        if others:
            result.kept = "used by " + ", ".join(others)
        elif result.live == STILL_ATTACHED:
            result.kept = "the running VM still holds it; delete it once the VM stopped"
        elif storage.find_volume(conn, path) is not None:
            storage.delete_volume(conn, path, force=True)
            result.volume_deleted = True
        return result
    except libvirt.libvirtError as err:
        if err.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
            return None  # deleted meanwhile: nothing left to clean
        raise from_libvirt(action, f"domain {uuid}", err) from None


@dataclass(frozen=True)
class SeedStatus:
    """A VM's seed as the details screen tells it."""

    path: str
    attached: bool  # the definition has the CD-ROM
    remove_after_first_boot: bool


def seed_status(xml: str | bytes) -> SeedStatus | None:
    """The seed of a domain (its persistent XML), or None when vmtui gave it none."""
    rec = seed_record(xml)
    if rec is None:
        return None
    attached = bool(seed_disks(xml, rec.path or None, rec.volume or None))
    return SeedStatus(rec.path, attached, rec.detach_after_first_boot)


@dataclass(frozen=True)
class SeedPools:
    """Where a domain's seed ISO may go: the active pools, and the one to
    offer first (the pool of the VM's first disk volume, else "default")."""
    pools: list[str]
    default: str | None


def seed_pools(conn: libvirt.virConnect, domain_name: str, uuid: str | None = None) -> SeedPools:
    """Blocking: the active pools, and the pool of the VM's first disk volume
    (the domain is looked up by ``uuid`` when given, else by name)."""
    pools = sorted(p.name for p in storage.list_pools(conn) if p.active)
    first = None
    dom = conn.lookupByUUIDString(uuid) if uuid else conn.lookupByName(domain_name)
    xml = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
    for disk in domxml.disk_sources(xml):
        if disk.device == "disk":
            vol = storage.disk_volume(conn, disk)
            if vol is not None:
                first = vol.pool
                break
    return SeedPools(pools, first or ("default" if "default" in pools else None))


__all__: list[Any] = [
    "CloudInitDocs", "EJECTED", "NS_SEED", "SEED_BUSES", "STILL_ATTACHED", "SeedPools", "SeedRecord", "SeedRemoval",
    "SeedStatus", "UNPLUGGED", "attach_seed", "cdrom_bus_for", "cdrom_device_xml", "complete_docs", "default_docs",
    "default_user_data", "detach_seed", "first_boot_cleanup_due", "remove_seed", "seed_bus_for", "seed_device_xml",
    "seed_pools", "seed_record", "seed_status", "seed_volume_name", "set_seed_metadata", "upload_seed",
]
