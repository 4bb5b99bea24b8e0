"""The libvirt domain XML as one typed model: every fact vmtui reads or writes
has one path, here (see :mod:`vmtui.core.xml.xmlmodel` for the machinery).

* :class:`Domain` is the ``<domain>`` document: name, memory, vCPUs, metadata,
  and nested :class:`OS` (firmware, boot), :class:`Features`, :class:`CPU`,
  :class:`Clock` and :class:`Devices` (disks, interfaces, graphics, serial
  ports, consoles, channels, controllers, inputs, video, rng, balloon).
* :class:`Disk`, :class:`Interface`, ... are the devices; ``Disk.new`` is the one
  place a ``<disk>`` element is made.

The same objects parse, edit and build::

    dom = Domain.parse(xml)                 # read
    dom.os.is_uefi, dom.devices.disks[0].driver_type
    dom.title = "web"                       # edit: everything else stays
    dom.to_xml()
    dom = Domain.new("kvm", "vm1")          # build

Rules that combine several elements into one answer are stated once:

* **UEFI** (:attr:`OS.is_uefi`): ``<os firmware='efi'>`` says UEFI and
  ``firmware='bios'`` says BIOS. Without it, a ``<loader type='pflash'>``, a
  loader with ``secure='yes'``, an ``<nvram>``, or a loader whose file name is an
  EFI build (OVMF, AAVMF, edk2, QEMU_EFI, ...) means UEFI; a ROM loader such as
  SeaBIOS, or no loader, means BIOS. The word "OVMF" is not needed: edk2's own
  paths (``/usr/share/edk2/x64/edk2-x86_64-code.fd``) count.
* **Secure Boot** (:attr:`OS.secure_boot`): only with UEFI. An explicit
  ``<firmware><feature name='secure-boot' enabled=.../>`` decides -- it is what
  libvirt's firmware selection goes by. Without that feature,
  ``<loader secure='yes'>`` means on. So ``enabled='no'`` with
  ``<loader secure='yes'>`` is *off*: ``secure='yes'`` only says the firmware
  needs SMM (a Secure-Boot-capable build), not that the feature is enabled.
"""

from __future__ import annotations

import copy
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, ClassVar

from .xmlmodel import (
    Child,
    Children,
    Flag,
    Int,
    OnOff,
    Size,
    Str,
    XMLError,
    XMLModel,
    YesNo,
    _parse_path,
    insert_child,
    namespace_of,
    ordered_index,
    parse_int,
    remove_child,
)

__all__ = [
    "DomainXMLError",
    "NS_VMTUI",
    "NS_LIBOSINFO",
    "BUS_PREFIX",
    "DISK_DEVICES",
    "disk_target",
    "short_id_from_uri",
    "Domain",
    "OS",
    "FirmwareFeature",
    "Boot",
    "Features",
    "CPU",
    "Clock",
    "Timer",
    "Metadata",
    "VmtuiMeta",
    "Devices",
    "Disk",
    "BackingStore",
    "GUEST_AGENT_CHANNEL",
    "Interface",
    "Graphics",
    "Listen",
    "Serial",
    "Console",
    "Channel",
    "Controller",
    "Input",
    "Video",
    "Rng",
    "Tpm",
    "MemBalloon",
    "SecLabel",
    "LIBVIRT_ORDER",
    "NIC_TYPES",
]

NS_VMTUI = "https://vmtui.dev/xmlns/vmtui/1"
NS_LIBOSINFO = "http://libosinfo.org/xmlns/libvirt/domain/1.0"
_V = f"{{{NS_VMTUI}}}"
#: the virtio-serial port name of the QEMU guest agent
GUEST_AGENT_CHANNEL = "org.qemu.guest_agent.0"
_LO = f"{{{NS_LIBOSINFO}}}"


class DomainXMLError(XMLError):
    """The domain XML is malformed, is not a <domain>, or holds an unusable value."""


#: libvirt's element order (its XML formatter's), per parent element: where an
#: element the model adds goes among the ones already there.
LIBVIRT_ORDER: dict[str, tuple[str, ...]] = {
    "domain": ("name", "uuid", "genid", "title", "description", "metadata", "maxMemory", "memory",
               "currentMemory", "blkiotune", "memtune", "memoryBacking", "vcpu", "vcpus", "iothreads",
               "iothreadids", "defaultiothread", "cputune", "numatune", "resource", "sysinfo", "bootloader",
               "bootloader_args", "os", "idmap", "features", "cpu", "clock", "on_poweroff", "on_reboot",
               "on_crash", "on_lockfailure", "pm", "perf", "devices", "seclabel", "keywrap", "launchSecurity"),
    "os": ("type", "firmware", "init", "initarg", "initenv", "initdir", "inituser", "initgroup", "loader",
           "nvram", "kernel", "initrd", "cmdline", "dtb", "acpi", "boot", "bootmenu", "smbios", "bios"),
    "features": ("acpi", "apic", "pae", "hap", "viridian", "privnet", "hyperv", "kvm", "xen", "pvspinlock",
                 "pmu", "vmport", "gic", "smm", "ioapic", "hpt", "htm", "nested-hv", "msrs", "ccf-assist",
                 "cfpc", "sbbc", "ibs", "tcg", "async-teardown", "ras", "ps2"),
    "hyperv": ("relaxed", "vapic", "spinlocks", "vpindex", "runtime", "synic", "stimer", "reset", "vendor_id",
               "frequencies", "reenlightenment", "tlbflush", "ipi", "evmcs", "avic", "emsr_bitmap", "xmm_input"),
    "cpu": ("model", "vendor", "topology", "cache", "maxphysaddr", "feature", "numa"),
    "pm": ("suspend-to-mem", "suspend-to-disk"),
    "devices": ("emulator", "disk", "controller", "lease", "filesystem", "interface", "smartcard", "serial",
                "parallel", "console", "channel", "input", "tpm", "graphics", "sound", "audio", "video",
                "hostdev", "redirdev", "redirfilter", "hub", "watchdog", "memballoon", "rng", "panic", "shmem",
                "memory", "iommu", "vsock", "crypto", "pstore"),
    "disk": ("driver", "auth", "source", "backingStore", "backenddomain", "geometry", "blockio", "mirror",
             "target", "iotune", "readonly", "shareable", "transient", "serial", "wwn", "vendor", "product",
             "encryption", "boot", "alias", "address"),
    "backingStore": ("format", "source", "backingStore"),
    "interface": ("mac", "source", "virtualport", "vlan", "ip", "route", "script", "backenddomain", "target",
                  "guest", "model", "driver", "backend", "filterref", "tune", "teaming", "link", "mtu",
                  "coalesce", "rom", "boot", "alias", "address", "acpi"),
    "graphics": ("listen", "channel", "image", "streaming", "clipboard", "mouse", "filetransfer", "gl",
                 "audio"),
    "serial": ("source", "protocol", "log", "target", "alias", "address"),
    "console": ("source", "protocol", "log", "target", "alias", "address"),
    "channel": ("source", "protocol", "log", "target", "alias", "address"),
    "rng": ("rate", "backend", "driver", "alias", "address"),
    "tpm": ("backend", "alias", "address"),
}


class _Part(XMLModel):
    ORDER: ClassVar[Mapping[str, Sequence[str]]] = LIBVIRT_ORDER
    ERROR = DomainXMLError
    WHAT = "domain XML"


# ---------------------------------------------------------------------------
# disks
# ---------------------------------------------------------------------------

#: target dev prefix per bus (libvirt / virt-manager naming)
BUS_PREFIX = {"virtio": "vd", "scsi": "sd", "sata": "sd", "usb": "sd", "ide": "hd", "fdc": "fd", "xen": "xvd"}
DISK_DEVICES = ("disk", "cdrom", "floppy", "lun")
#: the <source> attributes that say where a disk's data is (the rest, e.g.
#: startupPolicy, are kept when the source changes)
_SOURCE_LOCATION = ("file", "dev", "dir", "pool", "volume", "protocol", "name", "index", "path", "type")


def short_id_from_uri(uri: str | None) -> str | None:
    """An osinfo id URI's usual short id: ``http://debian.org/debian/12`` ->
    ``debian12``, ``http://microsoft.com/win/11`` -> ``win11`` (the last two path
    parts; one part is itself). None for something that is not such a URI."""
    m = re.match(r"https?://[^/]+/(.+)$", uri or "")
    if not m:
        return None
    parts = [p for p in m.group(1).split("/") if p]
    if len(parts) >= 2:
        return parts[-2] + parts[-1]
    return parts[0] if parts else None


def disk_target(prefix: str, index: int) -> str:
    """``vd`` + 0 -> ``vda``, 25 -> ``vdz``, 26 -> ``vdaa`` (libvirt's scheme)."""
    letters = ""
    i = index + 1
    while i > 0:
        i, rem = divmod(i - 1, 26)
        letters = chr(ord("a") + rem) + letters
    return prefix + letters


class BackingStore(_Part):
    """One layer of a disk's backing chain (``<backingStore>``), as the domain
    XML gives it to libvirt: the image's format, where it is, and whether
    libvirt's DAC driver may change its owner (``relabel``: False keeps a
    shared base image as it is; QEMU must then be able to read it). An empty
    ``<backingStore/>`` ends a chain (the layer above has no backing file).
    """

    TAG = "backingStore"
    type = Str("@type", "file / block / ...")
    format = Str("format/@type", "the image format: qcow2, raw, ...")
    source_file = Str("source/@file")
    source_dev = Str("source/@dev")
    relabel = YesNo("source/seclabel[@model='dac']/@relabel",
                    "False: libvirt leaves the file's owner alone (DAC)")

    @classmethod
    def new(cls, path: str, fmt: str | None, *, relabel: bool | None = None) -> BackingStore:
        """A layer at ``path`` (a file, or a block device under /dev)."""
        layer = cls()
        block = path.startswith("/dev/")
        layer.type = "block" if block else "file"
        layer.format = fmt or None
        if block:
            layer.source_dev = path
        else:
            layer.source_file = path
        layer.relabel = relabel
        return layer

    @property
    def path(self) -> str | None:
        return self.source_file or self.source_dev or None

    @property
    def below(self) -> BackingStore:
        """The next layer down (the ``<backingStore>`` inside this one)."""
        return BackingStore._bound(self, _parse_path(self.TAG).steps)


class Disk(_Part):
    """A ``<disk>`` device (disk, cdrom, floppy or lun)."""

    TAG = "disk"
    type = Str("@type", "file / block / volume / network / dir / ... (libvirt's default: file)")
    device = Str("@device", "disk / cdrom / floppy / lun (libvirt's default: disk)")
    driver_name = Str("driver/@name")
    driver_type = Str("driver/@type", "the image format: qcow2, raw, ...")
    driver_cache = Str("driver/@cache")
    source_file = Str("source/@file")
    source_dev = Str("source/@dev")
    source_dir = Str("source/@dir")
    source_pool = Str("source/@pool")
    source_volume = Str("source/@volume")
    source_protocol = Str("source/@protocol")
    source_name = Str("source/@name")
    source_host_name = Str("source/host/@name")
    source_host_port = Str("source/host/@port")
    source_host_socket = Str("source/host/@socket")
    source_path = Str("source/@path", "nvme, vhost-user, ... sources")
    backing_file = Str("backingStore/source/@file")
    backing_dev = Str("backingStore/source/@dev")
    target_dev = Str("target/@dev")
    target_bus = Str("target/@bus")
    target_tray = Str("target/@tray")
    readonly = Flag("readonly")
    shareable = Flag("shareable")
    transient = Flag("transient")
    boot_order = Int("boot/@order")
    backing_store = Child(BackingStore)

    @classmethod
    def new(cls, path: str | None, target: str, *, bus: str = "virtio", device: str = "disk",
            fmt: str | None = None, source_type: str = "file", readonly: bool = False, shareable: bool = False,
            transient: bool = False, cache: str | None = None, pool: str | None = None,
            volume: str | None = None) -> Disk:
        """A new ``<disk>``: ``source_type`` "file" or "block" take ``path``;
        "volume" takes ``pool`` and ``volume``; ``path=None`` (file) is an empty
        drive (a CD-ROM without media). CD-ROMs are read-only. ValueError for an
        unknown device or bus."""
        if device not in DISK_DEVICES:
            raise ValueError(f"unknown disk device {device!r}")
        if bus not in BUS_PREFIX:
            raise ValueError(f"unknown disk bus {bus!r}")
        disk = cls()
        disk.type = source_type
        disk.device = device
        disk.set_format(fmt)
        disk.driver_cache = cache or None
        if source_type == "volume":
            if not pool or not volume:
                raise ValueError("a volume disk needs a pool and a volume")
            disk.set_source("volume", pool=pool, volume=volume)
        elif path:
            disk.set_source(source_type, path)
        disk.target_dev = target
        disk.target_bus = bus
        disk.readonly = readonly or device == "cdrom"
        disk.shareable = shareable
        disk.transient = transient
        return disk

    # facts built from several attributes ------------------------------------

    @property
    def kind(self) -> str:
        """The source type with libvirt's default ("file")."""
        return self.type or "file"

    @property
    def device_kind(self) -> str:
        """The device with libvirt's default ("disk")."""
        return self.device or "disk"

    @property
    def path(self) -> str | None:
        """The local file or block device (None for volume/network/dir/empty)."""
        if self.kind == "file":
            return self.source_file or None
        if self.kind == "block":
            return self.source_dev or None
        return None

    @property
    def volume_ref(self) -> str | None:
        """``pool/volume`` of a volume disk."""
        if self.source_pool and self.source_volume:
            return f"{self.source_pool}/{self.source_volume}"
        return None

    @property
    def location(self) -> str | None:
        """Where the data is, for matching: the file or device path, else ``pool/volume``."""
        return self.source_file or self.source_dev or self.volume_ref

    @property
    def source(self) -> str:
        """A path, ``pool/volume``, ``proto://host/name``, or "" when empty."""
        if self._source_el() is None:
            return ""
        kind = self.kind
        if kind == "file":
            return self.source_file or ""
        if kind == "block":
            return self.source_dev or ""
        if kind == "volume":
            pool, volume = self.source_pool, self.source_volume
            return f"{pool or ''}/{volume or ''}" if (pool or volume) else ""
        if kind == "network":
            return self._network_source()
        if kind == "dir":
            return self.source_dir or ""
        return self.source_path or self.source_dev or self.source_file or self.source_name or ""

    @property
    def backing(self) -> str | None:
        """The first ``<backingStore>``'s file or device."""
        return self.backing_file or self.backing_dev or None

    def _source_el(self) -> ET.Element | None:
        el = self._node()
        return el.find("source") if el is not None else None

    def _network_source(self) -> str:
        """``proto://host:port/name`` (``?socket=`` for a unix socket), for the first host."""
        host, query = "", ""
        if self.source_host_socket:
            query = f"?socket={self.source_host_socket}"
        else:
            host = self.source_host_name or ""
            if self.source_host_port:
                host = f"{host}:{self.source_host_port}"
        uri = f"{self.source_protocol or 'network'}://{host}"
        if self.source_name:
            uri += "/" + self.source_name.lstrip("/")
        return uri + query

    # edits ---------------------------------------------------------------------

    def set_format(self, fmt: str | None) -> None:
        """The image format (``<driver name='qemu' type=...>``); None leaves the
        type out (libvirt probes nothing and takes raw)."""
        if self.driver_name is None:
            self.driver_name = "qemu"
        self.driver_type = fmt or None

    def set_source(self, kind: str, path: str | None = None, *, pool: str | None = None,
                   volume: str | None = None) -> None:
        """Point the disk at a file / block device (``path``) or a pool volume;
        ``path=None`` for file/block empties the drive. The disk's ``type`` follows;
        other ``<source>`` attributes (startupPolicy, ...) stay; the old backing
        chain goes (libvirt reads it from the new image)."""
        if kind not in ("file", "block", "volume"):
            raise ValueError(f"unknown disk source type {kind!r}")
        self.drop_backing_store()
        src = self._source_el()
        if kind != "volume" and not path:  # an empty drive keeps its type
            if src is not None:
                remove_child(self.element, src)
            return
        self.type = kind
        if src is not None:
            for key in _SOURCE_LOCATION:
                src.attrib.pop(key, None)
            for host in src.findall("host"):
                remove_child(src, host)
        if kind == "volume":
            if not pool or not volume:
                raise ValueError("a volume source needs a pool and a volume")
            self.source_pool, self.source_volume = pool, volume
        elif kind == "block":
            self.source_dev = path
        else:
            self.source_file = path
        src = self._source_el()
        if src is not None and len(src.attrib) > 2 and kind != "volume":
            # the location first, as libvirt writes it
            attrs = dict(src.attrib)
            key = "dev" if kind == "block" else "file"
            src.attrib.clear()
            src.set(key, attrs.pop(key))
            src.attrib.update(attrs)

    def drop_backing_store(self) -> None:
        el = self._node()
        if el is not None:
            for bs in el.findall("backingStore"):
                remove_child(el, bs)

    def set_backing_chain(self, layers: Sequence[tuple[str, str | None]], *, relabel: bool | None = None) -> None:
        """Give libvirt the disk's backing chain, top layer first: each
        ``(path, format)``; an empty ``<backingStore/>`` below the last says
        the chain ends there. ``relabel=False`` keeps libvirt from changing
        the owner of any layer (its DAC driver would otherwise chown a
        shared base image to the QEMU user at each start, and never give it
        back). No layers: no chain in the XML (libvirt reads it from the image)."""
        self.drop_backing_store()
        if not layers:
            return
        doc = self._document()
        parent = self.element
        for path, fmt in layers:
            layer = BackingStore.new(path, fmt, relabel=relabel)
            insert_child(parent, ordered_index(parent, BackingStore.TAG, self.ORDER.get(parent.tag)),
                         layer.element, doc)
            parent = layer.element
        insert_child(parent, len(parent), ET.Element(BackingStore.TAG), doc)

    @property
    def backing_chain(self) -> list[BackingStore]:
        """The layers of ``<backingStore>`` given in the XML, top first (the
        empty end marker left out)."""
        out = []
        layer = self.backing_store
        while layer.exists and layer.path:
            out.append(layer)
            layer = layer.below
        return out


# ---------------------------------------------------------------------------
# network interfaces
# ---------------------------------------------------------------------------

#: vmtui's NIC kinds and libvirt's interface types
NIC_TYPES = {"network": "network", "bridge": "bridge", "macvtap": "direct"}


class Interface(_Part):
    TAG = "interface"
    type = Str("@type")
    mac = Str("mac/@address")
    source_network = Str("source/@network")
    source_bridge = Str("source/@bridge")
    source_dev = Str("source/@dev")
    source_mode = Str("source/@mode")
    source_path = Str("source/@path")
    source_address = Str("source/@address")
    source_port = Str("source/@port")
    source_portid = Str("source/@portid", "the network port libvirt made for it (live XML)")
    hostdev_address_type = Str("source/address/@type", "pci (the default), usb, ...")
    hostdev_domain = Int("source/address/@domain")
    hostdev_bus = Int("source/address/@bus")
    hostdev_slot = Int("source/address/@slot")
    hostdev_function = Int("source/address/@function")
    model = Str("model/@type")
    target_dev = Str("target/@dev")
    target_managed = YesNo("target/@managed")
    link_state = Str("link/@state")
    boot_order = Int("boot/@order")

    @classmethod
    def new(cls, kind: str, source: str | None, *, mac: str | None = None, model: str | None = "virtio",
            mode: str | None = None) -> Interface:
        """A NIC of vmtui's ``kind`` (network / bridge / macvtap) on ``source``."""
        if kind not in NIC_TYPES:
            raise ValueError(f"unknown NIC kind {kind!r}")
        nic = cls()
        nic.type = NIC_TYPES[kind]
        nic.mac = mac.lower() if mac else None
        if kind == "network":
            nic.source_network = source
        elif kind == "bridge":
            nic.source_bridge = source
        else:
            nic.source_dev = source
            nic.source_mode = mode
        nic.model = model
        return nic

    @property
    def kind(self) -> str | None:
        """vmtui's NIC kind (network / bridge / macvtap), None for other types."""
        return {v: k for k, v in NIC_TYPES.items()}.get(self.type or "")

    @property
    def hostdev_pci_address(self) -> str | None:
        """``0000:03:10.2`` for a PCI host device (else the address type)."""
        kind = self.hostdev_address_type or "pci"
        if kind != "pci":
            return kind
        props = (Interface.hostdev_domain, Interface.hostdev_bus, Interface.hostdev_slot, Interface.hostdev_function)
        raw = [p.raw(self) for p in props]
        dom, bus, slot, fn = (parse_int(r) if r is not None else 0 for r in raw)
        if None in (dom, bus, slot, fn):
            return None  # unparsable
        return f"{dom:04x}:{bus:02x}:{slot:02x}.{fn:x}"

    @property
    def source(self) -> str | None:
        """Where the NIC is plugged in: network name, bridge, host device, PCI address, ..."""
        el = self._node()
        src = el.find("source") if el is not None else None
        if src is None:
            return None
        ntype = self.type or ""
        if ntype == "network":
            return self.source_network
        if ntype == "bridge":
            return self.source_bridge
        if ntype == "direct":
            return self.source_dev
        if ntype == "hostdev":
            return self.hostdev_pci_address if src.find("address") is not None else None
        if ntype in ("udp", "mcast", "server", "client"):
            if self.source_address or self.source_port:
                return f"{self.source_address or ''}:{self.source_port or ''}"
            return None
        return self.source_dev or self.source_path or self.source_network or self.source_bridge


# ---------------------------------------------------------------------------
# graphics, character devices, the rest
# ---------------------------------------------------------------------------


class Listen(_Part):
    TAG = "listen"
    type = Str("@type")
    address = Str("@address")
    network = Str("@network")
    socket = Str("@socket")


def _port(n: int | None) -> int | None:
    return None if n is None or n < 0 else n


class Graphics(_Part):
    TAG = "graphics"
    type = Str("@type")
    port = Int("@port", "-1: allocated when the VM starts")
    tls_port = Int("@tlsPort")
    websocket = Int("@websocket")
    autoport = YesNo("@autoport")
    listen_attr = Str("@listen", "the old single listen address")
    socket_attr = Str("@socket")
    passwd = Str("@passwd")
    passwd_valid_to = Str("@passwdValidTo")
    keymap = Str("@keymap")
    listens = Children(Listen, "listen")

    @classmethod
    def new(cls, type_: str, listen: str | None = "127.0.0.1") -> Graphics:
        """A display with its port chosen when the VM starts."""
        g = cls()
        g.type = type_
        g.port = -1
        g.autoport = True
        if listen:
            lis = g.listens.add()
            lis.type = "address"
            lis.address = listen
        return g

    @property
    def port_number(self) -> int | None:
        """The port; None when absent or -1 (not allocated yet)."""
        return _port(self.port)

    @property
    def tls_port_number(self) -> int | None:
        return _port(self.tls_port)

    @property
    def websocket_port(self) -> int | None:
        return _port(self.websocket)

    @property
    def autoport_on(self) -> bool:
        """autoport='yes', or no autoport attribute and port='-1'."""
        if self.autoport is not None:
            return self.autoport
        return (self.port_attr or "").strip() == "-1"

    @property
    def port_attr(self) -> str | None:
        return type(self).port.raw(self)

    @property
    def first_listen(self) -> Listen | None:
        return next(iter(self.listens), None)

    def set_listen_address(self, address: str) -> None:
        """Listen on ``address``: the first ``<listen>`` becomes type='address'
        with it (the others stay) and the old ``listen`` attribute follows when
        it is there (libvirt wants the two equal)."""
        first = self.first_listen
        if first is None:
            first = self.listens.add()
        if first.type != "address":
            first.network = None
            first.socket = None
            first.type = "address"
        first.address = address
        if self.listen_attr is not None:
            self.listen_attr = address
        self.socket_attr = None

    def set_port(self, port: int | None) -> None:
        """A fixed ``port``, or None: chosen when the VM starts (autoport)."""
        if port is None:
            self.port, self.autoport = -1, True
        else:
            self.port, self.autoport = port, False

    @property
    def listen(self) -> str | None:
        """Address, network name or socket path the display listens on."""
        listen = self.listen_attr
        if not listen:
            for lis in self.listens:
                listen = lis.address or lis.network or lis.socket
                if listen:
                    break
        return listen or self.socket_attr or None


class _CharDevice(_Part):
    type = Str("@type")
    tty = Str("@tty")
    source_path = Str("source/@path")
    target_type = Str("target/@type")
    target_port = Int("target/@port")
    target_name = Str("target/@name")

    @classmethod
    def new(cls, type_: str = "pty", *, target_type: str | None = None, port: int | None = None,
            name: str | None = None) -> Any:
        dev = cls()
        dev.type = type_
        dev.target_type = target_type
        dev.target_port = port
        dev.target_name = name
        return dev

    @property
    def host_tty(self) -> str | None:
        """The host pty of a type='pty' device."""
        tty = self.tty
        if not tty and (self.type or "pty") == "pty":
            tty = self.source_path
        return tty or None


class Serial(_CharDevice):
    TAG = "serial"


class Console(_CharDevice):
    TAG = "console"


class Channel(_CharDevice):
    TAG = "channel"
    target_state = Str("target/@state", "a guest agent channel's live state: connected / disconnected")

    @classmethod
    def guest_agent(cls) -> Channel:
        """The QEMU guest agent's channel (virt-install adds it for OSes that have the agent)."""
        return cls.new("unix", target_type="virtio", name=GUEST_AGENT_CHANNEL)


class Controller(_Part):
    TAG = "controller"
    type = Str("@type")
    index = Int("@index")
    model = Str("@model")
    ports = Int("@ports")

    @classmethod
    def new(cls, type_: str, index: int, model: str | None = None, ports: int | None = None) -> Controller:
        c = cls()
        c.type, c.index, c.model, c.ports = type_, index, model, ports
        return c


class Input(_Part):
    TAG = "input"
    type = Str("@type")
    bus = Str("@bus")


class Video(_Part):
    TAG = "video"

    @classmethod
    def new(cls, model: str) -> Video:
        v = cls()
        v.model = model
        return v

    def set_model(self, model: str) -> None:
        """Another card: its sizes go with the old model (libvirt picks the new one's)."""
        if model != self.model:
            self.vram = self.ram = self.vgamem = None
            self.model = model

    model = Str("model/@type")
    heads = Int("model/@heads")
    primary = YesNo("model/@primary")
    vram = Int("model/@vram", "KiB; each model has its own sizes")
    ram = Int("model/@ram", "KiB (qxl)")
    vgamem = Int("model/@vgamem", "KiB (qxl)")


class Rng(_Part):
    TAG = "rng"
    model = Str("@model")
    backend_model = Str("backend/@model")
    backend = Str("backend")

    @classmethod
    def new(cls, source: str = "/dev/urandom", model: str = "virtio") -> Rng:
        """A random number generator fed from the host's ``source`` device."""
        r = cls()
        r.model = model
        r.backend_model = "random"
        r.backend = source
        return r


class Tpm(_Part):
    TAG = "tpm"
    model = Str("@model", "tpm-tis / tpm-crb / ...")
    backend_type = Str("backend/@type", "emulator (swtpm) / passthrough")
    backend_version = Str("backend/@version", "1.2 / 2.0 (emulator)")
    backend_path = Str("backend/device/@path", "the host's TPM (passthrough)")

    @classmethod
    def new(cls, model: str, backend: str, *, version: str | None = None, path: str | None = None) -> Tpm:
        t = cls()
        t.model = model
        t.set_backend(backend, version=version, path=path)
        return t

    def set_backend(self, backend: str, *, version: str | None = None, path: str | None = None) -> None:
        """An emulated TPM (swtpm, ``version`` 1.2 / 2.0) or the host's own
        (passthrough of device ``path``). A backend of another type is
        replaced; one of the same type keeps what the model does not know."""
        if self.backend_type != backend:
            el = self.element.find("backend")
            if el is not None:
                remove_child(self.element, el)
        self.backend_type = backend
        self.backend_version = version if backend == "emulator" else None
        self.backend_path = path if backend == "passthrough" else None


class MemBalloon(_Part):
    TAG = "memballoon"
    model = Str("@model")


class SecLabel(_Part):
    TAG = "seclabel"
    type = Str("@type")
    model = Str("@model")
    relabel = YesNo("@relabel")
    label = Str("label")
    imagelabel = Str("imagelabel")


class Devices(_Part):
    TAG = "devices"
    emulator = Str("emulator")
    disks = Children(Disk)
    interfaces = Children(Interface)
    graphics = Children(Graphics)
    serials = Children(Serial)
    consoles = Children(Console)
    channels = Children(Channel)
    controllers = Children(Controller)
    inputs = Children(Input)
    videos = Children(Video)
    rngs = Children(Rng)
    tpms = Children(Tpm)
    memballoon = Child(MemBalloon)

    def find_disk(self, target: str) -> Disk | None:
        return self.disks.find(target_dev=target)

    @property
    def guest_agent(self) -> Channel | None:
        """The QEMU guest agent's channel, if the VM has one."""
        return next((c for c in self.channels if c.target_name == GUEST_AGENT_CHANNEL), None)

    def char_devices(self) -> Iterator[Serial | Console]:
        """Serial ports and consoles, in document order."""
        el = self._node()
        doc = self._document()
        for dev in (el if el is not None else ()):
            if dev.tag == "serial":
                yield Serial(dev, doc=doc)
            elif dev.tag == "console":
                yield Console(dev, doc=doc)

    def append(self, dev: XMLModel) -> XMLModel:
        """Add a device at the end of ``<devices>`` (building a domain in order)."""
        el = self.element
        insert_child(el, len(el), dev.element, self._document())
        dev._doc = self._document()
        return dev

    def add(self, dev: XMLModel) -> XMLModel:
        """Add a device after the last of its kind, else at libvirt's place for it."""
        el = self.element
        insert_child(el, ordered_index(el, dev.element.tag, self.ORDER.get("devices")), dev.element,
                     self._document())
        dev._doc = self._document()
        return dev


# ---------------------------------------------------------------------------
# os: firmware and boot
# ---------------------------------------------------------------------------

#: file names of EFI firmware builds (OVMF, AAVMF, edk2, QEMU_EFI, RISC-V's
#: RISCV_VIRT_CODE, ...): a loader named like this is UEFI even as a ROM
_EFI_LOADER = re.compile(r"ovmf|aavmf|edk2|qemu_efi|qemu_vars|uefi|efi[-_.]|[-_.]efi|riscv_virt", re.IGNORECASE)


class FirmwareFeature(_Part):
    TAG = "feature"
    name = Str("@name")
    enabled = YesNo("@enabled")


class Boot(_Part):
    TAG = "boot"
    dev = Str("@dev")


class OS(_Part):
    TAG = "os"
    firmware = Str("@firmware", "efi / bios: libvirt picks the firmware (autoselection)")
    type = Str("type")
    arch = Str("type/@arch")
    machine = Str("type/@machine")
    firmware_features = Children(FirmwareFeature, "firmware/feature")
    secure_boot_feature = YesNo("firmware/feature[@name='secure-boot']/@enabled")
    enrolled_keys_feature = YesNo("firmware/feature[@name='enrolled-keys']/@enabled")
    loader = Str("loader", "the firmware image path")
    loader_readonly = YesNo("loader/@readonly")
    loader_type = Str("loader/@type", "pflash / rom")
    loader_secure = YesNo("loader/@secure")
    nvram = Str("nvram", "the VM's UEFI variable store (path as text)")
    nvram_template = Str("nvram/@template")
    nvram_source_file = Str("nvram/source/@file")
    nvram_source_dev = Str("nvram/source/@dev")
    kernel = Str("kernel")
    initrd = Str("initrd")
    cmdline = Str("cmdline", strip=False)
    boots = Children(Boot, "boot")
    bootmenu_enable = YesNo("bootmenu/@enable")
    bootmenu_timeout = Int("bootmenu/@timeout", "milliseconds")

    @property
    def is_uefi(self) -> bool:
        """UEFI or BIOS, by the rule in the module docstring."""
        fw = (self.firmware or "").strip().lower()
        if fw == "efi":
            return True
        if fw == "bios":
            return False
        if OS.loader.raw(self) is not None:
            if (self.loader_type or "").lower() == "pflash" or self.loader_secure:
                return True
            if _EFI_LOADER.search(self.loader or ""):
                return True
        return OS.nvram.raw(self) is not None

    @property
    def secure_boot(self) -> bool:
        """Secure Boot, by the rule in the module docstring."""
        if not self.is_uefi:
            return False
        feature = self.secure_boot_feature
        if feature is not None:
            return feature
        return bool(self.loader_secure)

    @property
    def loader_path(self) -> str | None:
        return self.loader or None

    @property
    def nvram_path(self) -> str | None:
        """The variable store: ``<nvram>PATH</nvram>`` or ``<nvram><source file=.../>``."""
        return self.nvram or self.nvram_source_file or self.nvram_source_dev or None

    def set_nvram_path(self, path: str | None) -> None:
        """Change the variable store path of an existing ``<nvram>`` (in the form it
        has); None or "" leaves the element empty: libvirt makes a fresh store from
        the template."""
        el = self._node()
        nv = el.find("nvram") if el is not None else None
        if nv is None:
            if path:
                self.nvram = path
            return
        src = nv.find("source")
        if src is not None and (src.get("file") or src.get("dev")):
            if path:
                src.attrib.pop("dev", None)
                src.set("file", path)
            else:
                remove_child(nv, src)
            return
        nv.text = path or None

    def set_firmware(self, kind: str) -> None:
        """``bios``, ``efi`` (UEFI, Secure Boot off) or ``efi-secure`` (UEFI
        with Secure Boot and Microsoft's keys enrolled), through libvirt's
        firmware autoselection: the explicit loader, variable store and
        firmware features go and libvirt picks them again (the old NVRAM file
        stays on the host)."""
        if kind not in ("bios", "efi", "efi-secure"):
            raise ValueError(f"unknown firmware {kind!r}")
        self.loader = None
        self.nvram = None
        self.firmware_features.clear()
        el = self._node()
        fw = el.find("firmware") if el is not None else None
        if fw is not None and len(fw) == 0:
            remove_child(el, fw)
        if kind == "bios":
            self.firmware = None
            return
        self.firmware = "efi"
        secure = kind == "efi-secure"
        self.secure_boot_feature = secure
        self.enrolled_keys_feature = True if secure else None

    @property
    def boot_devices(self) -> list[str]:
        return [b.dev for b in self.boots if b.dev]

    @boot_devices.setter
    def boot_devices(self, devs: Sequence[str]) -> None:
        self.boots.clear()
        for dev in devs:
            self.boots.add().dev = dev


# ---------------------------------------------------------------------------
# features, cpu, clock
# ---------------------------------------------------------------------------


class Features(_Part):
    TAG = "features"
    acpi = Flag("acpi")
    apic = Flag("apic")
    smm = OnOff("smm/@state")
    hyperv_mode = Str("hyperv/@mode")
    hyperv_relaxed = OnOff("hyperv/relaxed/@state")
    hyperv_vapic = OnOff("hyperv/vapic/@state")
    hyperv_spinlocks = OnOff("hyperv/spinlocks/@state")
    hyperv_spinlocks_retries = Int("hyperv/spinlocks/@retries")


class CPU(_Part):
    TAG = "cpu"
    mode = Str("@mode", "host-passthrough / host-model / custom / maximum")
    match = Str("@match")
    check = Str("@check")
    migratable = OnOff("@migratable")
    model = Str("model")
    model_fallback = Str("model/@fallback")
    sockets = Int("topology/@sockets")
    dies = Int("topology/@dies")
    clusters = Int("topology/@clusters")
    cores = Int("topology/@cores")
    threads = Int("topology/@threads")
    has_numa = Flag("numa", "NUMA cells: they, not <memory>, set the memory size")

    @property
    def effective_mode(self) -> str | None:
        """The mode, or "custom" when only a model is given (libvirt's default)."""
        return self.mode or ("custom" if self.model else None)

    @property
    def has_topology(self) -> bool:
        el = self._node()
        return el is not None and el.find("topology") is not None


class Timer(_Part):
    TAG = "timer"
    name = Str("@name")
    tickpolicy = Str("@tickpolicy")
    present = YesNo("@present")

    @classmethod
    def new(cls, name: str, *, tickpolicy: str | None = None, present: bool | None = None) -> Timer:
        t = cls()
        t.name, t.tickpolicy, t.present = name, tickpolicy, present
        return t


class Clock(_Part):
    TAG = "clock"
    offset = Str("@offset")
    timers = Children(Timer)


# ---------------------------------------------------------------------------
# metadata
# ---------------------------------------------------------------------------

_NCNAME = re.compile(r"[A-Za-z_][A-Za-z0-9._-]*$")
_GENERATED_PREFIX = re.compile(r"ns\d+$")


def _qualify(el: ET.Element, uri: str) -> None:
    """Put ``el`` and its un-namespaced descendants into namespace ``uri``."""
    for node in el.iter():
        if isinstance(node.tag, str) and not node.tag.startswith("{"):
            node.tag = f"{{{uri}}}{node.tag}"


class Metadata(_Part):
    """``<metadata>``: one element per application, each in its own namespace."""

    TAG = "metadata"

    def namespaces(self) -> list[str]:
        """The namespaces of the elements in it, in order, once each."""
        out: list[str] = []
        el = self._node()
        for child in (el if el is not None else ()):
            uri = namespace_of(child)
            if uri and uri not in out:
                out.append(uri)
        return out

    def get(self, namespace_uri: str) -> ET.Element | None:
        """The first element in ``namespace_uri``, or None."""
        el = self._node()
        for child in (el if el is not None else ()):
            if namespace_of(child) == namespace_uri:
                return child
        return None


class VmtuiMeta(_Part):
    """vmtui's notes on a VM it created: the OS it was made for and the install source."""

    TAG = f"{_V}vmtui"
    os_id = Str(f"{_V}os/@id", "the osinfo short id")
    install_kind = Str(f"{_V}install/@kind")
    install_iso = Str(f"{_V}install/@iso")
    install_cdrom = Str(f"{_V}install/@cdrom")
    install_url = Str(f"{_V}install/@url")
    install_image = Str(f"{_V}install/@image")
    install_network = Str(f"{_V}install/@network")
    install_kernel_args = Str(f"{_V}install/@kernel_args")


# ---------------------------------------------------------------------------
# the domain
# ---------------------------------------------------------------------------


class Domain(_Part):
    """A ``<domain>`` document."""

    TAG = "domain"
    type = Str("@type", "kvm / qemu / test / ...")
    name = Str("name")
    uuid = Str("uuid")
    genid = Str("genid")
    title = Str("title", strip=False)
    description = Str("description", strip=False)
    metadata = Child(Metadata)
    libosinfo_id = Str(f"metadata/{_LO}libosinfo/{_LO}os/@id", "the libosinfo OS id (a URI)")
    vmtui = Child(VmtuiMeta, f"metadata/{_V}vmtui")
    memory_kib = Size("memory", "the maximum (balloon) memory, KiB", base="KiB", units=("MiB", "KiB"),
                      what="memory")
    current_memory_kib = Size("currentMemory", "the memory at boot, KiB", base="KiB", units=("MiB", "KiB"),
                              what="memory")
    vcpus = Int("vcpu", "the maximum vCPU count", strict="invalid <vcpu> count {raw!r}")
    vcpus_current = Int("vcpu/@current", "vCPUs online at boot (None: all)")
    vcpu_placement = Str("vcpu/@placement")
    sysinfo_uuid = Str("sysinfo/system/entry[@name='uuid']")
    os = Child(OS)
    features = Child(Features)
    cpu = Child(CPU)
    clock = Child(Clock)
    on_poweroff = Str("on_poweroff")
    on_reboot = Str("on_reboot")
    on_crash = Str("on_crash")
    pm_suspend_to_mem = YesNo("pm/suspend-to-mem/@enabled")
    pm_suspend_to_disk = YesNo("pm/suspend-to-disk/@enabled")
    devices = Child(Devices)
    seclabels = Children(SecLabel)

    @classmethod
    def new(cls, virt_type: str, name: str) -> Domain:
        dom = cls()
        dom.type = virt_type
        dom.name = name
        return dom

    @property
    def vcpus_online(self) -> int:
        """vCPUs at boot: ``current``, else the maximum, else 1."""
        current, maximum = self.vcpus_current, self.vcpus
        return current if current is not None else (maximum if maximum is not None else 1)

    def os_short_id(self, osdb: Any = None) -> str | None:
        """The OS's osinfo short id: vmtui's own note, else libosinfo's id (looked
        up in ``osdb`` when given, else guessed from the URI)."""
        own = self.vmtui.os_id
        if own:
            return own
        uri = self.libosinfo_id
        if not uri:
            return None
        found = osdb.get(uri) if osdb is not None else None
        return getattr(found, "short_id", None) or short_id_from_uri(uri)

    # metadata edits -------------------------------------------------------------

    def set_metadata(self, namespace_uri: str, prefix: str, element: ET.Element | None) -> None:
        """Replace (or with ``element=None`` remove) the element of ``namespace_uri``
        under ``<metadata>``, written with ``prefix``.

        ``element`` may be un-namespaced (it and its un-namespaced descendants are
        put into ``namespace_uri``; the caller's element is not changed) or already
        in ``namespace_uri``. Elements of other namespaces stay; an emptied
        ``<metadata>`` goes."""
        if not namespace_uri:
            raise DomainXMLError("metadata needs a namespace URI")
        if not _NCNAME.match(prefix or "") or prefix.lower().startswith("xml") or _GENERATED_PREFIX.match(prefix):
            raise DomainXMLError(f"invalid namespace prefix {prefix!r}")
        new: ET.Element | None = None
        if element is not None:
            if not isinstance(element.tag, str):
                raise DomainXMLError("metadata must be an element, not a comment or processing instruction")
            ns = namespace_of(element)
            if ns is not None and ns != namespace_uri:
                raise DomainXMLError(f"metadata element is in namespace {ns!r}, expected {namespace_uri!r}")
            new = copy.deepcopy(element)
            new.tail = None
            _qualify(new, namespace_uri)
        ET.register_namespace(prefix, namespace_uri)

        meta = self.metadata._node()
        ours = [c for c in meta if namespace_of(c) == namespace_uri] if meta is not None else []
        if new is None:
            for el in ours:
                remove_child(meta, el)
            if meta is not None and len(meta) == 0 and not (meta.text or "").strip():
                remove_child(self.element, meta)
            return
        meta = self.metadata.element
        if ours:
            idx = list(meta).index(ours[0])
            for old in ours:
                remove_child(meta, old)
            insert_child(meta, idx, new, self._document())
        else:
            insert_child(meta, len(meta), new, self._document())

