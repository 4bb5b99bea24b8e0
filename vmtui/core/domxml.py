"""Parse libvirt domain XML into typed dataclasses, and edit it safely.

Pure standard library (``xml.etree.ElementTree``): no libvirt, no Textual.

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

import copy
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

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
    "insert_head",
    "remove_child",
    "indent_of",
]


class DomainXMLError(ValueError):
    """The domain XML is malformed, is not a <domain>, or holds an unusable value."""


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
# parsing helpers
# ---------------------------------------------------------------------------


class _Builder(ET.TreeBuilder):
    """TreeBuilder that keeps comments/PIs and records namespace declarations."""

    def __init__(self) -> None:
        super().__init__(insert_comments=True, insert_pis=True)
        self.namespaces: list[tuple[str, str]] = []

    def start_ns(self, prefix: str, uri: str) -> None:
        self.namespaces.append((prefix or "", uri))


def _parse(xml: str | bytes) -> tuple[ET.Element, list[tuple[str, str]]]:
    if not isinstance(xml, (str, bytes)):
        raise DomainXMLError(f"domain XML must be str or bytes, not {type(xml).__name__}")
    if not xml.strip():
        raise DomainXMLError("domain XML is empty")
    builder = _Builder()
    parser = ET.XMLParser(target=builder)
    try:
        parser.feed(xml)
        root = parser.close()
    except ET.ParseError as e:
        raise DomainXMLError(f"malformed domain XML: {e}") from None
    if not isinstance(root.tag, str) or root.tag != "domain":
        tag = root.tag if isinstance(root.tag, str) else "?"
        raise DomainXMLError(f"not a libvirt domain XML: root element is <{_pretty_tag(tag)}>, expected <domain>")
    return root, builder.namespaces


def parse_xml(xml: str | bytes) -> ET.Element:
    """The root <domain> of ``xml``, for reading; DomainXMLError when it is not domain XML."""
    return _parse(xml)[0]


def parse_for_edit(xml: str | bytes) -> ET.Element:
    """Like :func:`parse_xml`, and the document's namespace prefixes are
    registered so that :func:`serialize` writes them back as they were."""
    root, namespaces = _parse(xml)
    register_namespaces(namespaces)
    return root


def _pretty_tag(tag: str) -> str:
    if tag.startswith("{"):
        uri, _, local = tag[1:].partition("}")
        return f"{local} xmlns='{uri}'"
    return tag


_GENERATED_PREFIX = re.compile(r"ns\d+$")


def register_namespaces(namespaces: list[tuple[str, str]]) -> None:
    """Make ElementTree serialize the document's own prefixes (e.g. ``qemu:``).

    ElementTree's prefix map is process-global; registering a prefix only affects how
    namespaced names are spelled on output, never what they mean.
    """
    for prefix, uri in namespaces:
        if not prefix or prefix in ("xml", "xmlns") or _GENERATED_PREFIX.match(prefix):
            continue
        try:
            ET.register_namespace(prefix, uri)
        except ValueError:
            pass


def serialize(root: ET.Element) -> str:
    return ET.tostring(root, encoding="unicode")


def _text(el: ET.Element | None) -> str | None:
    if el is None:
        return None
    return el.text or ""


def _stripped(el: ET.Element | None) -> str | None:
    if el is None:
        return None
    return (el.text or "").strip()


def _int(value: str | None) -> int | None:
    """Lenient integer (decimal or 0x-hex); None when absent or unparsable."""
    if value is None:
        return None
    value = value.strip()
    try:
        return int(value, 0) if value.lower().startswith("0x") else int(value)
    except ValueError:
        return None


def _port(value: str | None) -> int | None:
    n = _int(value)
    return None if n is None or n < 0 else n


def _yes(value: str | None) -> bool:
    return (value or "").strip().lower() in ("yes", "on", "true", "1")


# libvirt's virScaleInteger: case-insensitive; "k"/"KiB" = 1024, "KB" = 1000, etc.
_UNIT_EXP = {"k": 1, "m": 2, "g": 3, "t": 4, "p": 5, "e": 6}


def parse_memory(value: str, unit: str | None = None) -> int:
    """Convert a libvirt memory value with ``unit`` to KiB (rounded up, like libvirt).

    Units follow libvirt: b/byte/bytes; KB, MB, GB, TB, PB, EB are powers of 1000;
    k/KiB, M/MiB, G/GiB, T/TiB, P/PiB, E/EiB are powers of 1024. Case is ignored.
    No unit means KiB.
    """
    raw = (value or "").strip()
    if not re.fullmatch(r"\d+", raw):
        raise DomainXMLError(f"invalid memory value {value!r}: expected a non-negative integer")
    n = int(raw)
    u = (unit or "").strip()
    if not u:
        return n
    low = u.lower()
    if low in ("b", "byte", "bytes"):
        factor = 1
    else:
        exp = _UNIT_EXP.get(low[0])
        rest = low[1:]
        if exp is None:
            raise DomainXMLError(f"unknown memory unit {unit!r}")
        if rest in ("", "ib"):
            base = 1024
        elif rest == "b":
            base = 1000
        else:
            raise DomainXMLError(f"unknown memory unit {unit!r}")
        factor = base**exp
    return -(-(n * factor) // 1024)


def _memory(el: ET.Element | None, what: str) -> int | None:
    if el is None:
        return None
    try:
        return parse_memory(el.text or "", el.get("unit"))
    except DomainXMLError as e:
        raise DomainXMLError(f"<{what}>: {e}") from None


# ---------------------------------------------------------------------------
# devices
# ---------------------------------------------------------------------------


def _network_source(src: ET.Element) -> str:
    proto = src.get("protocol") or "network"
    name = src.get("name") or ""
    host_el = src.find("host")
    host = ""
    query = ""
    if host_el is not None:
        if host_el.get("socket"):
            query = f"?socket={host_el.get('socket')}"
        else:
            host = host_el.get("name") or ""
            if host_el.get("port"):
                host = f"{host}:{host_el.get('port')}"
    uri = f"{proto}://{host}"
    if name:
        uri += "/" + name.lstrip("/")
    return uri + query


def parse_disk(el: ET.Element) -> DiskInfo:
    dtype = el.get("type") or "file"
    device = el.get("device") or "disk"
    src = el.find("source")
    source = ""
    path: str | None = None
    pool = volume = None
    if src is not None:
        if dtype == "file":
            source = src.get("file") or ""
            path = source or None
        elif dtype == "block":
            source = src.get("dev") or ""
            path = source or None
        elif dtype == "volume":
            pool, volume = src.get("pool"), src.get("volume")
            if pool or volume:
                source = f"{pool or ''}/{volume or ''}"
        elif dtype == "network":
            source = _network_source(src)
        elif dtype == "dir":
            source = src.get("dir") or ""
        else:  # nvme, vhostuser, vhostvdpa, ...
            source = src.get("path") or src.get("dev") or src.get("file") or src.get("name") or ""
    target_el = el.find("target")
    driver = el.find("driver")
    boot = el.find("boot")
    backing = None
    bs = el.find("backingStore")
    if bs is not None:
        bsrc = bs.find("source")
        if bsrc is not None:
            backing = bsrc.get("file") or bsrc.get("dev") or None
    return DiskInfo(
        device=device,
        type=dtype,
        source=source,
        path=path,
        pool=pool,
        volume=volume,
        target=(target_el.get("dev") if target_el is not None else None) or "",
        bus=target_el.get("bus") if target_el is not None else None,
        driver_type=driver.get("type") if driver is not None else None,
        cache=driver.get("cache") if driver is not None else None,
        readonly=el.find("readonly") is not None,
        shareable=el.find("shareable") is not None,
        transient=el.find("transient") is not None,
        boot_order=_int(boot.get("order")) if boot is not None else None,
        backing=backing,
    )


def _pci_address(addr: ET.Element) -> str | None:
    try:
        dom = int(addr.get("domain") or "0", 0)
        bus = int(addr.get("bus") or "0", 0)
        slot = int(addr.get("slot") or "0", 0)
        fn = int(addr.get("function") or "0", 0)
    except ValueError:
        return None
    return f"{dom:04x}:{bus:02x}:{slot:02x}.{fn:x}"


def _parse_nic(el: ET.Element) -> NicInfo:
    ntype = el.get("type") or ""
    src = el.find("source")
    source: str | None = None
    mode: str | None = None
    if src is not None:
        if ntype == "network":
            source = src.get("network")
        elif ntype == "bridge":
            source = src.get("bridge")
        elif ntype == "direct":
            source = src.get("dev")
            mode = src.get("mode")
        elif ntype == "hostdev":
            addr = src.find("address")
            if addr is not None:
                source = _pci_address(addr) if addr.get("type", "pci") == "pci" else addr.get("type")
        elif ntype in ("udp", "mcast", "server", "client"):
            if src.get("address") or src.get("port"):
                source = f"{src.get('address') or ''}:{src.get('port') or ''}"
        else:
            source = src.get("dev") or src.get("path") or src.get("network") or src.get("bridge")
    mac = el.find("mac")
    model = el.find("model")
    target = el.find("target")
    link = el.find("link")
    return NicInfo(
        type=ntype,
        mac=mac.get("address") if mac is not None else None,
        source=source,
        source_mode=mode,
        model=model.get("type") if model is not None else None,
        target=target.get("dev") if target is not None else None,
        link_state=link.get("state") if link is not None else None,
    )


def _parse_graphics(el: ET.Element) -> GraphicsInfo:
    listen = el.get("listen")
    if not listen:
        for lel in el.findall("listen"):
            listen = lel.get("address") or lel.get("network") or lel.get("socket")
            if listen:
                break
    if not listen:
        listen = el.get("socket")
    port_attr = el.get("port")
    autoport_attr = el.get("autoport")
    if autoport_attr is not None:
        autoport = _yes(autoport_attr)
    else:
        autoport = (port_attr or "").strip() == "-1"
    return GraphicsInfo(
        type=el.get("type") or "",
        port=_port(port_attr),
        autoport=autoport,
        listen=listen or None,
        password_set=el.get("passwd") is not None,
        tls_port=_port(el.get("tlsPort")),
    )


def _parse_serial(el: ET.Element) -> SerialInfo:
    stype = el.get("type") or "pty"
    target = el.find("target")
    tty = el.get("tty")
    if not tty and stype == "pty":
        src = el.find("source")
        if src is not None:
            tty = src.get("path")
    return SerialInfo(
        kind=el.tag,
        type=stype,
        target_type=target.get("type") if target is not None else None,
        port=_int(target.get("port")) if target is not None else None,
        tty=tty or None,
    )


# ---------------------------------------------------------------------------
# the domain
# ---------------------------------------------------------------------------

_EFI_LOADER = re.compile(r"ovmf|edk2|aavmf|qemu_efi|qemu_vars|uefi", re.IGNORECASE)


def _parse_os(os_el: ET.Element | None, ov: DomainOverview) -> None:
    if os_el is None:
        return
    type_el = os_el.find("type")
    if type_el is not None:
        ov.os_type = (type_el.text or "").strip() or None
        ov.arch = type_el.get("arch")
        ov.machine = type_el.get("machine")
    loader = os_el.find("loader")
    if loader is not None:
        ov.loader = (loader.text or "").strip() or None
    nvram = os_el.find("nvram")
    if nvram is not None:
        text = (nvram.text or "").strip()
        if not text:
            nsrc = nvram.find("source")
            if nsrc is not None:
                text = nsrc.get("file") or nsrc.get("dev") or ""
        ov.nvram = text or None
    uefi = (os_el.get("firmware") or "").lower() == "efi"
    if loader is not None and (
        (loader.get("type") or "").lower() == "pflash" or _EFI_LOADER.search(ov.loader or "")
    ):
        uefi = True
    ov.firmware = "UEFI" if uefi else "BIOS"
    feature_sb: bool | None = None
    for feat in os_el.findall("firmware/feature"):
        if feat.get("name") == "secure-boot":
            feature_sb = _yes(feat.get("enabled"))
    if feature_sb is not None:
        ov.secure_boot = feature_sb  # the explicit firmware feature wins
    else:
        ov.secure_boot = loader is not None and _yes(loader.get("secure"))
    ov.boot_devices = [b.get("dev") for b in os_el.findall("boot") if b.get("dev")]
    ov.kernel = _stripped(os_el.find("kernel")) or None
    ov.initrd = _stripped(os_el.find("initrd")) or None
    cmdline = os_el.find("cmdline")
    ov.cmdline = (cmdline.text or "") if cmdline is not None else None


def _parse_cpu(root: ET.Element, ov: DomainOverview) -> None:
    vcpu = root.find("vcpu")
    if vcpu is not None:
        count = _int(vcpu.text)
        if count is None:
            raise DomainXMLError(f"invalid <vcpu> count {(vcpu.text or '').strip()!r}")
        ov.max_vcpus = count
        current = _int(vcpu.get("current"))
        ov.vcpus = current if current is not None else count
    cpu = root.find("cpu")
    if cpu is None:
        return
    model = cpu.find("model")
    ov.cpu_model = ((model.text or "").strip() or None) if model is not None else None
    ov.cpu_mode = cpu.get("mode") or ("custom" if ov.cpu_model else None)
    topo = cpu.find("topology")
    if topo is not None:
        t = {k: _int(topo.get(k)) or 1 for k in ("sockets", "dies", "cores", "threads")}
        if topo.get("clusters") is not None:
            t["clusters"] = _int(topo.get("clusters")) or 1
        ov.topology = t


def parse_domain(xml: str | bytes) -> DomainOverview:
    """Parse a libvirt domain XML document into a :class:`DomainOverview`."""
    root = parse_xml(xml)
    name = _stripped(root.find("name"))
    if not name:
        raise DomainXMLError("domain XML has no <name>")
    ov = DomainOverview(
        name=name,
        uuid=_stripped(root.find("uuid")) or None,
        domain_type=root.get("type") or "",
        title=_text(root.find("title")),
        description=_text(root.find("description")),
    )
    _parse_os(root.find("os"), ov)
    _parse_cpu(root, ov)
    mem = _memory(root.find("memory"), "memory")
    cur = _memory(root.find("currentMemory"), "currentMemory")
    ov.memory_kib = mem if mem is not None else (cur or 0)
    ov.current_memory_kib = cur if cur is not None else ov.memory_kib
    for tag in ("on_poweroff", "on_reboot", "on_crash"):
        setattr(ov, tag, _stripped(root.find(tag)) or None)

    devices = root.find("devices")
    if devices is not None:
        ov.emulator = _stripped(devices.find("emulator")) or None
        for dev in devices:
            tag = dev.tag
            if tag == "disk":
                ov.disks.append(parse_disk(dev))
            elif tag == "interface":
                ov.nics.append(_parse_nic(dev))
            elif tag == "graphics":
                ov.graphics.append(_parse_graphics(dev))
            elif tag in ("serial", "console"):
                ov.serials.append(_parse_serial(dev))
            elif tag == "video" and ov.video is None:
                model = dev.find("model")
                if model is not None:
                    ov.video = model.get("type")

    meta = root.find("metadata")
    if meta is not None:
        for child in meta:
            uri = _ns_of(child)
            if uri and uri not in ov.metadata_keys:
                ov.metadata_keys.append(uri)
    return ov


def disk_sources(xml: str | bytes) -> list[DiskInfo]:
    """The domain's disks (all devices: disk, cdrom, floppy, lun), in XML order."""
    root = parse_xml(xml)
    devices = root.find("devices")
    if devices is None:
        return []
    return [parse_disk(d) for d in devices.findall("disk")]


# ---------------------------------------------------------------------------
# editing
# ---------------------------------------------------------------------------

# libvirt's (mostly interleaved) order for the first top-level elements
_HEAD_ORDER = ("name", "uuid", "genid", "title", "description", "metadata")


def _ns_of(el: ET.Element) -> str | None:
    tag = el.tag
    if isinstance(tag, str) and tag.startswith("{"):
        return tag[1:].partition("}")[0]
    return None


def insert_head(root: ET.Element, new: ET.Element) -> None:
    """Insert a top-level element at libvirt's usual place, matching indentation."""
    wanted = _HEAD_ORDER.index(new.tag)
    children = list(root)
    pos = -1
    for i, child in enumerate(children):
        if isinstance(child.tag, str) and child.tag in _HEAD_ORDER[:wanted]:
            pos = i
    if pos >= 0:
        prev = children[pos]
        new.tail = prev.tail
        root.insert(pos + 1, new)
    else:
        new.tail = root.text
        root.insert(0, new)
        if root.text is None:
            new.tail = None


def remove_child(parent: ET.Element, child: ET.Element) -> None:
    """Remove ``child`` keeping the surrounding indentation tidy."""
    children = list(parent)
    i = children.index(child)
    if i > 0:
        children[i - 1].tail = child.tail
    elif len(children) == 1:
        parent.text = None if not (parent.text or "").strip() else parent.text
    parent.remove(child)


def _set_simple(xml: str | bytes, tag: str, text: str) -> str:
    root = parse_for_edit(xml)
    existing = root.findall(tag)
    if not text:
        for el in existing:
            remove_child(root, el)
    elif existing:
        el = existing[0]
        el.text = text
        for sub in list(el):
            el.remove(sub)
        for extra in existing[1:]:
            remove_child(root, extra)
    else:
        el = ET.Element(tag)
        el.text = text
        insert_head(root, el)
    return serialize(root)


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
    root = parse_xml(xml)
    meta = root.find("metadata")
    if meta is None:
        return None
    for child in meta:
        if _ns_of(child) == namespace_uri:
            return child
    return None


def _qualify(el: ET.Element, uri: str) -> None:
    """Put ``el`` and its un-namespaced descendants into namespace ``uri``."""
    for node in el.iter():
        if isinstance(node.tag, str) and not node.tag.startswith("{"):
            node.tag = f"{{{uri}}}{node.tag}"


_NCNAME = re.compile(r"[A-Za-z_][A-Za-z0-9._-]*$")


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
    if not namespace_uri:
        raise DomainXMLError("metadata needs a namespace URI")
    if not _NCNAME.match(prefix or "") or prefix.lower().startswith("xml") or _GENERATED_PREFIX.match(prefix):
        raise DomainXMLError(f"invalid namespace prefix {prefix!r}")
    new: ET.Element | None = None
    if element is not None:
        if not isinstance(element.tag, str):
            raise DomainXMLError("metadata must be an element, not a comment or processing instruction")
        ns = _ns_of(element)
        if ns is not None and ns != namespace_uri:
            raise DomainXMLError(f"metadata element is in namespace {ns!r}, expected {namespace_uri!r}")
        new = copy.deepcopy(element)
        _qualify(new, namespace_uri)

    root, namespaces = _parse(xml)
    register_namespaces([(p, u) for p, u in namespaces if u != namespace_uri])
    ET.register_namespace(prefix, namespace_uri)

    meta = root.find("metadata")
    ours = [c for c in meta if _ns_of(c) == namespace_uri] if meta is not None else []
    if new is None:
        for el in ours:
            remove_child(meta, el)
        if meta is not None and len(meta) == 0 and not (meta.text or "").strip():
            remove_child(root, meta)
        return serialize(root)

    if meta is None:
        meta = ET.Element("metadata")
        insert_head(root, meta)
    if ours:
        first = ours[0]
        idx = list(meta).index(first)
        new.tail = first.tail
        meta.remove(first)
        meta.insert(idx, new)
        for extra in ours[1:]:
            remove_child(meta, extra)
    else:
        kids = list(meta)
        if kids:
            last = kids[-1]
            new.tail = last.tail
            last.tail = meta.text
        else:
            # indent one level deeper than <metadata> itself
            indent = indent_of(root, meta)
            if indent is not None:
                meta.text = indent + "  "
                new.tail = indent
        meta.append(new)
    return serialize(root)


def indent_of(parent: ET.Element, child: ET.Element) -> str | None:
    """The newline+indent preceding ``child`` inside ``parent`` (None if unformatted)."""
    children = list(parent)
    i = children.index(child)
    before = parent.text if i == 0 else children[i - 1].tail
    if before and before.strip() == "" and "\n" in before:
        return before
    return None
