"""Domain XML for the screens: a :class:`DomainOverview` (typed dataclasses), and
small edits that keep everything else.

Every fact is read and written through the domain model
(:mod:`vmtui.core.xml.domain_model`, one path per fact); this module turns the model
into what the UI shows and keeps the helpers other modules have called so far.
No libvirt, no Textual.

* :func:`parse_domain` turns the XML returned by ``virDomainGetXMLDesc`` into a
  :class:`DomainOverview` (disks, NICs, graphics, consoles, firmware, CPU, memory...)
  for the details screen and the delete dialog.
* :func:`set_title`, :func:`set_description`, :func:`set_metadata_element` change one
  thing and keep every other element, attribute, comment and namespace prefix intact.
  XML is never built by string formatting.

Values that libvirt leaves out are ``None`` (not guessed), except where libvirt's own
default is unambiguous (disk ``type`` defaults to "file", ``device`` to "disk", the
vCPU count to 1).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

from .domain_model import (
    CPU,
    LIBVIRT_ORDER,
    Console,
    Disk,
    Domain,
    DomainXMLError,
    Graphics,
    Interface,
    Serial,
)
from .xmlmodel import (
    XMLError,
    indent_of,
    insert_child,
    ordered_index,
    register_namespaces,
    remove_child,
    serialize,
    to_bytes,
)

__all__ = [
    "DomainXMLError",
    "DiskInfo",
    "NicInfo",
    "GraphicsInfo",
    "SerialInfo",
    "DomainOverview",
    "parse_domain",
    "disk_sources",
    "parse_memory",
    "set_title",
    "set_description",
    "get_metadata",
    "set_metadata_element",
    # for the modules that edit domain XML (disks, console, clone, ...)
    "parse_xml",
    "parse_for_edit",
    "register_namespaces",
    "serialize",
    "parse_disk",
    "disk_info",
    "overview",
    "insert_head",
    "remove_child",
    "indent_of",
]


# ---------------------------------------------------------------------------
# dataclasses
# ---------------------------------------------------------------------------


@dataclass
class DiskInfo:
    device: str  # "disk" / "cdrom" / "floppy" / "lun"
    type: str  # "file" / "block" / "volume" / "network" / "dir" / ...
    source: str  # path, "pool/volume", "proto://host/name", or "" when empty
    path: str | None  # local file or block-device path (None for volume/network/dir/empty)
    pool: str | None
    volume: str | None
    target: str  # "vda"
    bus: str | None  # "virtio", "sata", "scsi", "ide", "usb", ...
    driver_type: str | None  # "qcow2", "raw", ...
    cache: str | None
    readonly: bool = False
    shareable: bool = False
    transient: bool = False
    boot_order: int | None = None
    backing: str | None = None  # first <backingStore>'s source file/dev

    @property
    def is_removable_media(self) -> bool:
        return self.device in ("cdrom", "floppy")


@dataclass
class NicInfo:
    type: str  # "network", "bridge", "direct", "user", ...
    mac: str | None
    source: str | None  # network name, bridge name, host dev (direct), ...
    source_mode: str | None = None  # macvtap mode (direct only)
    model: str | None = None  # "virtio", "e1000e", ...
    target: str | None = None  # host-side dev, e.g. "vnet0"
    link_state: str | None = None  # None / "up" / "down"

    @property
    def kind_label(self) -> str:
        """A short user-facing description of where this NIC is plugged in."""
        src = self.source or ""
        t = self.type
        if t == "network":
            return f"network '{src}'" if src else "network"
        if t == "bridge":
            return f"bridge {src}".rstrip()
        if t == "direct":
            label = f"macvtap {src}".rstrip()
            return f"{label} ({self.source_mode})" if self.source_mode else label
        if t == "user":
            return "usermode networking"
        if t == "ethernet":
            return f"ethernet {self.target}" if self.target else "ethernet"
        if t == "hostdev":
            return f"host device {src}".rstrip()
        if t == "vhostuser":
            return f"vhost-user {src}".rstrip()
        if t == "vdpa":
            return f"vDPA {src}".rstrip()
        return f"{t} {src}".strip() or "unknown"


@dataclass
class GraphicsInfo:
    type: str  # "vnc", "spice", "sdl", "rdp", "egl-headless", "dbus", ...
    port: int | None  # None when absent or -1 (not allocated yet)
    autoport: bool
    listen: str | None  # address, network name, or socket path
    password_set: bool  # passwd attribute present (only shown with the SECURE flag)
    tls_port: int | None = None


@dataclass
class SerialInfo:
    kind: str  # "serial" / "console"
    type: str  # "pty", "file", "unix", "tcp", ...
    target_type: str | None  # "isa-serial", "serial", "virtio", ...
    port: int | None
    tty: str | None  # host pty path for type="pty"


@dataclass
class DomainOverview:
    name: str
    uuid: str | None
    domain_type: str  # "kvm", "qemu", "test", ...
    title: str | None = None
    description: str | None = None
    os_type: str | None = None  # "hvm"
    arch: str | None = None
    machine: str | None = None
    firmware: str = "BIOS"  # "UEFI" or "BIOS"
    loader: str | None = None
    nvram: str | None = None
    secure_boot: bool = False
    boot_devices: list[str] = field(default_factory=list)
    kernel: str | None = None
    initrd: str | None = None
    cmdline: str | None = None
    cpu_mode: str | None = None  # "host-passthrough" / "host-model" / "custom" / None
    cpu_model: str | None = None
    topology: dict[str, int] | None = None  # sockets/dies/cores/threads (+clusters)
    vcpus: int = 1  # current
    max_vcpus: int = 1
    memory_kib: int = 0  # <memory>, the maximum balloon size
    current_memory_kib: int = 0
    disks: list[DiskInfo] = field(default_factory=list)
    nics: list[NicInfo] = field(default_factory=list)
    graphics: list[GraphicsInfo] = field(default_factory=list)
    serials: list[SerialInfo] = field(default_factory=list)
    video: str | None = None
    emulator: str | None = None
    on_poweroff: str | None = None
    on_reboot: str | None = None
    on_crash: str | None = None
    metadata_keys: list[str] = field(default_factory=list)

    @classmethod
    def from_xml(cls, xml: str | bytes) -> DomainOverview:
        return parse_domain(xml)


# ---------------------------------------------------------------------------
# parsing
# ---------------------------------------------------------------------------


def parse_xml(xml: str | bytes) -> ET.Element:
    """The root <domain> of ``xml``, for reading; DomainXMLError when it is not domain XML."""
    return Domain.parse(xml, register=False).element


def parse_for_edit(xml: str | bytes) -> ET.Element:
    """Like :func:`parse_xml`, and the document's namespace prefixes are
    registered so that :func:`serialize` writes them back as they were."""
    return Domain.parse(xml).element


def parse_memory(value: str, unit: str | None = None) -> int:
    """Convert a libvirt memory value with ``unit`` to KiB (rounded up, like libvirt).

    Units follow libvirt: b/byte/bytes; KB, MB, GB, TB, PB, EB are powers of 1000;
    k/KiB, M/MiB, G/GiB, T/TiB, P/PiB, E/EiB are powers of 1024. Case is ignored.
    No unit means KiB.
    """
    try:
        n = to_bytes(value, unit, default_unit="KiB", what="memory")
    except XMLError as e:
        raise DomainXMLError(str(e)) from None
    return -(-n // 1024)


# ---------------------------------------------------------------------------
# from the model to the overview
# ---------------------------------------------------------------------------


def disk_info(disk: Disk) -> DiskInfo:
    """What the details screen and the delete dialog show of one disk."""
    source = disk.source
    return DiskInfo(
        device=disk.device_kind,
        type=disk.kind,
        source=source,
        path=disk.path,
        pool=disk.source_pool if disk.kind == "volume" else None,
        volume=disk.source_volume if disk.kind == "volume" else None,
        target=disk.target_dev or "",
        bus=disk.target_bus,
        driver_type=disk.driver_type,
        cache=disk.driver_cache,
        readonly=disk.readonly,
        shareable=disk.shareable,
        transient=disk.transient,
        boot_order=disk.boot_order,
        backing=disk.backing,
    )


def parse_disk(el: ET.Element) -> DiskInfo:
    """The :class:`DiskInfo` of one ``<disk>`` element."""
    return disk_info(Disk(el))


def _nic_info(nic: Interface) -> NicInfo:
    return NicInfo(
        type=nic.type or "",
        mac=nic.mac,
        source=nic.source,
        source_mode=nic.source_mode if nic.type == "direct" else None,
        model=nic.model,
        target=nic.target_dev,
        link_state=nic.link_state,
    )


def _graphics_info(g: Graphics) -> GraphicsInfo:
    return GraphicsInfo(
        type=g.type or "",
        port=g.port_number,
        autoport=g.autoport_on,
        listen=g.listen,
        password_set=g.passwd is not None,
        tls_port=g.tls_port_number,
    )


def _serial_info(dev: Serial | Console) -> SerialInfo:
    return SerialInfo(
        kind=dev.TAG,
        type=dev.type or "pty",
        target_type=dev.target_type,
        port=dev.target_port,
        tty=dev.host_tty,
    )


def overview(dom: Domain) -> DomainOverview:
    """The :class:`DomainOverview` of a parsed domain."""
    name = dom.name
    if not name:
        raise DomainXMLError("domain XML has no <name>")
    ov = DomainOverview(
        name=name,
        uuid=dom.uuid or None,
        domain_type=dom.type or "",
        title=dom.title,
        description=dom.description,
    )
    os_ = dom.os
    if os_.exists:
        ov.os_type = os_.type or None
        ov.arch = os_.arch
        ov.machine = os_.machine
        ov.loader = os_.loader_path
        ov.nvram = os_.nvram_path
        ov.firmware = "UEFI" if os_.is_uefi else "BIOS"
        ov.secure_boot = os_.secure_boot
        ov.boot_devices = os_.boot_devices
        ov.kernel = os_.kernel or None
        ov.initrd = os_.initrd or None
        ov.cmdline = os_.cmdline

    maximum = dom.vcpus
    if maximum is not None:
        ov.max_vcpus = maximum
        ov.vcpus = dom.vcpus_online
    cpu = dom.cpu
    if cpu.exists:
        ov.cpu_model = cpu.model or None
        ov.cpu_mode = cpu.effective_mode
        if cpu.has_topology:
            t = {k: getattr(cpu, k) or 1 for k in ("sockets", "dies", "cores", "threads")}
            if CPU.clusters.raw(cpu) is not None:
                t["clusters"] = cpu.clusters or 1
            ov.topology = t

    mem = dom.memory_kib
    cur = dom.current_memory_kib
    ov.memory_kib = mem if mem is not None else (cur or 0)
    ov.current_memory_kib = cur if cur is not None else ov.memory_kib
    ov.on_poweroff = dom.on_poweroff or None
    ov.on_reboot = dom.on_reboot or None
    ov.on_crash = dom.on_crash or None

    devices = dom.devices
    if devices.exists:
        ov.emulator = devices.emulator or None
        ov.disks = [disk_info(d) for d in devices.disks]
        ov.nics = [_nic_info(n) for n in devices.interfaces]
        ov.graphics = [_graphics_info(g) for g in devices.graphics]
        ov.serials = [_serial_info(s) for s in devices.char_devices()]
        ov.video = next((v.model for v in devices.videos if v.model is not None), None)
    ov.metadata_keys = dom.metadata.namespaces()
    return ov


def parse_domain(xml: str | bytes) -> DomainOverview:
    """Parse a libvirt domain XML document into a :class:`DomainOverview`."""
    return overview(Domain.parse(xml, register=False))


def disk_sources(xml: str | bytes) -> list[DiskInfo]:
    """The domain's disks (all devices: disk, cdrom, floppy, lun), in XML order."""
    return [disk_info(d) for d in Domain.parse(xml, register=False).devices.disks]


# ---------------------------------------------------------------------------
# editing
# ---------------------------------------------------------------------------


def insert_head(root: ET.Element, new: ET.Element) -> None:
    """Insert a top-level element at libvirt's usual place, matching indentation."""
    insert_child(root, ordered_index(root, new.tag, LIBVIRT_ORDER["domain"]), new, root)


def _set_simple(xml: str | bytes, prop: str, text: str) -> str:
    dom = Domain.parse(xml)
    setattr(dom, prop, text or None)
    return dom.to_xml()


def set_title(xml: str | bytes, title: str) -> str:
    """Set the domain's <title>; an empty title removes the element.

    libvirt rejects titles containing newlines, so this does too.
    """
    if "\n" in title or "\r" in title:
        raise DomainXMLError("a domain title cannot contain newlines")
    return _set_simple(xml, "title", title)


def set_description(xml: str | bytes, text: str) -> str:
    """Set the domain's <description>; an empty string removes the element."""
    return _set_simple(xml, "description", text)


def get_metadata(xml: str | bytes, namespace_uri: str) -> ET.Element | None:
    """The first element under <metadata> in ``namespace_uri``, or None."""
    return Domain.parse(xml, register=False).metadata.get(namespace_uri)


def set_metadata_element(
    xml: str | bytes,
    namespace_uri: str,
    prefix: str,
    element: ET.Element | None,
) -> str:
    """Replace (or with ``element=None`` remove) our element under <metadata>.

    ``element`` may be un-namespaced (it and its un-namespaced descendants are put into
    ``namespace_uri``) or already in ``namespace_uri``. Elements of other namespaces
    under <metadata> are left untouched; an emptied <metadata> is removed.
    """
    dom = Domain.parse(xml, skip_namespaces=(namespace_uri,))
    dom.set_metadata(namespace_uri, prefix, element)
    return dom.to_xml()
