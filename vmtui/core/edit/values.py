"""What the settings editor shows and changes, section by section, read from a
domain's XML through the domain model (no libvirt here).

Each section is a small dataclass of the values its form edits
(:class:`OverviewValues`, :class:`CpuValues`, ...). :func:`read_settings`
fills them from the persistent definition -- what the next boot uses, and
what an edit changes -- and, for a running VM, notes what the running VM has
where the two can differ (its maximum vCPUs and memory, whether it has a
balloon). :class:`Offers` is what the host offers for the choices (from the
domain capabilities of this VM's emulator and machine, and the host's
networks and interfaces).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..xml.domain_model import Domain, Interface

__all__ = [
    "AGENT_CHANNEL",
    "FIRMWARES",
    "CPU_MODES",
    "NIC_KINDS",
    "NIC_MODELS",
    "MACVTAP_MODES",
    "GRAPHICS_TYPES",
    "VIDEO_MODELS",
    "BOOT_DEVICES",
    "TPM_MODELS",
    "TPM_BACKENDS",
    "OverviewValues",
    "CpuValues",
    "MemoryValues",
    "BootEntry",
    "BootValues",
    "NicValues",
    "NicInfo",
    "DisplayValues",
    "SerialInfo",
    "TpmValues",
    "RngValues",
    "Settings",
    "Offers",
    "read_settings",
    "nic_values",
    "firmware_of",
    "boot_entries",
]

#: the guest agent's virtio channel (virt-manager's and virt-install's name)
AGENT_CHANNEL = "org.qemu.guest_agent.0"
#: bios, UEFI with Secure Boot off, UEFI with Secure Boot (libvirt's firmware autoselection)
FIRMWARES = {"bios": "BIOS", "efi": "UEFI", "efi-secure": "UEFI with Secure Boot"}
#: "" is the hypervisor's default CPU (no <cpu mode>)
CPU_MODES = {"": "hypervisor default", "host-passthrough": "host-passthrough", "host-model": "host-model",
             "maximum": "maximum", "custom": "named model"}
NIC_KINDS = {"network": "virtual network", "bridge": "bridge", "macvtap": "macvtap (host interface)"}
NIC_MODELS = ("virtio", "e1000e", "e1000", "rtl8139")
MACVTAP_MODES = ("bridge", "vepa", "private", "passthrough")
GRAPHICS_TYPES = {"vnc": "VNC", "spice": "SPICE", "none": "none"}
VIDEO_MODELS = ("virtio", "qxl", "vga", "bochs", "cirrus", "ramfb", "none")
#: the <os><boot dev> kinds, in virt-manager's words
BOOT_DEVICES = {"hd": "Hard disk", "cdrom": "CD-ROM", "network": "Network (PXE)", "fd": "Floppy"}
TPM_MODELS = ("tpm-crb", "tpm-tis")
TPM_BACKENDS = {"emulator": "emulated (swtpm)", "passthrough": "host TPM (passthrough)"}


# ---------------------------------------------------------------------------
# the sections
# ---------------------------------------------------------------------------


@dataclass
class OverviewValues:
    title: str = ""
    description: str = ""
    autostart: bool = False
    firmware: str = "bios"  # a key of FIRMWARES


@dataclass
class CpuValues:
    current: int = 1  # vCPUs online at boot (and now, when hot-plugged)
    maximum: int = 1  # the most the VM can have (hot-plug limit)
    mode: str = ""  # a key of CPU_MODES
    model: str = ""  # the named model (mode "custom")
    sockets: int | None = None  # None: no topology
    cores: int | None = None
    threads: int | None = None
    dies: int | None = None  # kept as they are (the form does not show them)
    clusters: int | None = None

    @property
    def has_topology(self) -> bool:
        return any(v is not None for v in (self.sockets, self.cores, self.threads))


@dataclass
class MemoryValues:
    current_mib: int = 0  # what the guest has (the balloon's target)
    maximum_mib: int = 0  # <memory>: what it can have without a reboot


@dataclass
class BootEntry:
    key: str  # "hd" / "cdrom" / ... or, per device, "disk:vda" / "nic:52:54:00:..."
    label: str
    enabled: bool


@dataclass
class BootValues:
    entries: list[BootEntry] = field(default_factory=list)  # in boot order; the enabled ones boot
    per_device: bool = False  # the devices carry <boot order> (else <os><boot dev>)
    menu: bool = False
    menu_timeout_ms: int | None = None
    kernel: str = ""
    initrd: str = ""
    cmdline: str = ""

    @property
    def order(self) -> list[str]:
        return [e.key for e in self.entries if e.enabled]


@dataclass
class NicValues:
    kind: str = "network"  # a key of NIC_KINDS
    source: str = ""  # network name, bridge, or host interface (macvtap)
    model: str = "virtio"
    mac: str = ""  # "" for a new NIC: one is made up
    link_up: bool = True
    mode: str = "bridge"  # macvtap mode


@dataclass
class NicInfo:
    """One NIC as the NICs section lists it."""

    values: NicValues
    type: str  # libvirt's interface type
    label: str  # where it is plugged in, in words
    editable: bool  # a kind vmtui edits (network / bridge / macvtap)
    live_only: bool = False  # hot-plugged, not in the persistent definition
    next_boot_only: bool = False  # in the persistent definition only (added while running)


@dataclass
class DisplayValues:
    graphics: str = "none"  # a key of GRAPHICS_TYPES (or another type libvirt has)
    listen: str = "127.0.0.1"
    port: int | None = None  # None: chosen at start (autoport)
    video: str = ""  # "" : no video device


@dataclass
class SerialInfo:
    port: int
    type: str  # pty, file, tcp, ...
    label: str


@dataclass
class TpmValues:
    model: str = ""  # "": no TPM
    backend: str = "emulator"
    version: str = "2.0"
    path: str = "/dev/tpm0"  # passthrough


@dataclass
class RngValues:
    present: bool = False
    source: str = "/dev/urandom"


# ---------------------------------------------------------------------------
# the whole VM and what the host offers
# ---------------------------------------------------------------------------


@dataclass
class Settings:
    """A VM's settings as the editor shows them: the persistent definition,
    plus what the running VM has where that limits live changes."""

    name: str
    uuid: str
    running: bool
    persistent: bool
    virt_type: str
    machine: str
    arch: str
    overview: OverviewValues
    cpus: CpuValues
    memory: MemoryValues
    boot: BootValues
    nics: list[NicInfo]
    display: DisplayValues
    serials: list[SerialInfo]
    agent: bool
    agent_state: str | None  # connected / disconnected (running VM), else None
    tpm: TpmValues
    rng: RngValues
    balloon: bool  # a balloon device (the running VM's, else the definition's)
    numa: bool  # NUMA cells set the memory size
    live_max_vcpus: int | None = None  # the running VM's hot-plug limit
    live_max_memory_mib: int | None = None  # the running VM's maximum memory
    live_vcpus: int | None = None
    live_memory_mib: int | None = None
    other_graphics: list[str] = field(default_factory=list)  # displays after the first (kept as they are)

    @property
    def q35(self) -> bool:
        return "q35" in (self.machine or "")


@dataclass
class Offers:
    """The choices the host offers this VM. ``known`` is False when libvirt
    had no domain capabilities (the test driver): then the lists are vmtui's
    defaults and libvirt checks when the change is saved."""

    known: bool = False
    max_vcpus: int | None = None
    host_cpus: int | None = None
    host_memory_mib: int | None = None
    firmware: list[str] = field(default_factory=lambda: list(FIRMWARES))
    cpu_modes: list[str] = field(default_factory=lambda: list(CPU_MODES))
    cpu_models: list[str] = field(default_factory=list)
    graphics: list[str] = field(default_factory=lambda: list(GRAPHICS_TYPES))
    video: list[str] = field(default_factory=lambda: list(VIDEO_MODELS))
    tpm_models: list[str] = field(default_factory=lambda: list(TPM_MODELS))
    tpm_backends: list[str] = field(default_factory=lambda: list(TPM_BACKENDS))
    rng: bool = True
    networks: list[str] = field(default_factory=list)
    network_labels: dict[str, str] = field(default_factory=dict)
    bridges: list[str] = field(default_factory=list)
    interfaces: list[str] = field(default_factory=list)

    @property
    def tpm(self) -> bool:
        return bool(self.tpm_models and self.tpm_backends)


# ---------------------------------------------------------------------------
# reading
# ---------------------------------------------------------------------------


def firmware_of(dom: Domain) -> str:
    """bios / efi / efi-secure (a key of FIRMWARES)."""
    if not dom.os.is_uefi:
        return "bios"
    return "efi-secure" if dom.os.secure_boot else "efi"


def nic_values(nic: Interface) -> NicValues:
    kind = nic.kind or nic.type or ""
    return NicValues(kind=kind, source=nic.source or "", model=nic.model or "", mac=(nic.mac or "").lower(),
                     link_up=(nic.link_state or "up") != "down",
                     mode=nic.source_mode or ("vepa" if kind == "macvtap" else "bridge"))


def _nic_label(nic: Interface) -> str:
    kind, src = nic.kind, nic.source or ""
    if kind == "network":
        return f"network '{src}'"
    if kind == "bridge":
        return f"bridge {src}".strip()
    if kind == "macvtap":
        return f"macvtap {src} ({nic.source_mode or 'vepa'})".strip()
    return f"{nic.type or '?'} {src}".strip()


def _disk_label(d) -> str:
    what = {"cdrom": "CD-ROM", "floppy": "floppy"}.get(d.device_kind, "disk")
    return f"{what} {d.target_dev or '?'}" + (f" ({d.source.rsplit('/', 1)[-1]})" if d.source else "")


def boot_entries(dom: Domain) -> tuple[list[BootEntry], bool]:
    """The boot list and whether it is per device: the devices' own
    ``<boot order>`` when any has one (libvirt allows no ``<os><boot>`` then),
    else the ``<os><boot dev>`` kinds."""
    devices = dom.devices
    disks = list(devices.disks)
    nics = list(devices.interfaces)
    per_device = any(d.boot_order is not None for d in disks) or any(n.boot_order is not None for n in nics)
    if per_device:
        items = [(d.boot_order, f"disk:{d.target_dev}", _disk_label(d)) for d in disks if d.target_dev]
        items += [(n.boot_order, f"nic:{(n.mac or '').lower()}", f"NIC {n.mac} ({_nic_label(n)})")
                  for n in nics if n.mac]
        on = sorted((i for i in items if i[0] is not None), key=lambda i: i[0])
        off = [i for i in items if i[0] is None]
        return [BootEntry(k, label, True) for _o, k, label in on] + \
               [BootEntry(k, label, False) for _o, k, label in off], True
    order = dom.os.boot_devices
    entries = [BootEntry(dev, BOOT_DEVICES.get(dev, dev), True) for dev in order]
    entries += [BootEntry(dev, label, False) for dev, label in BOOT_DEVICES.items() if dev not in order]
    return entries, False


def _cpu_values(dom: Domain) -> CpuValues:
    cpu = dom.cpu
    maximum = dom.vcpus or 1
    v = CpuValues(current=dom.vcpus_online, maximum=maximum)
    if cpu.exists:
        v.mode = cpu.effective_mode or ""
        v.model = cpu.model or ""
        if cpu.has_topology:
            v.sockets, v.cores, v.threads = cpu.sockets or 1, cpu.cores or 1, cpu.threads or 1
            v.dies, v.clusters = cpu.dies, cpu.clusters
    return v


def _display_values(dom: Domain) -> tuple[DisplayValues, list[str]]:
    graphics = list(dom.devices.graphics)
    video = next(iter(dom.devices.videos), None)
    v = DisplayValues(video=(video.model or "") if video is not None else "")
    if graphics:
        g = graphics[0]
        v.graphics = g.type or "none"
        v.listen = g.listen or ""  # an address, or a network name or socket path (kept unless changed)
        v.port = None if g.autoport_on else g.port_number
    return v, [(g.type or "?") for g in graphics[1:]]


def _serials(dom: Domain) -> list[SerialInfo]:
    out = []
    for i, s in enumerate(dom.devices.serials):
        port = s.target_port if s.target_port is not None else i
        kind = s.type or "pty"
        label = f"serial {port}: {kind}" + (f" {s.source_path}" if s.source_path and kind != "pty" else "")
        if s.target_type:
            label += f" ({s.target_type})"
        out.append(SerialInfo(port=port, type=kind, label=label))
    return out


def _tpm_values(dom: Domain) -> TpmValues:
    tpm = next(iter(dom.devices.tpms), None)
    if tpm is None:
        return TpmValues()
    return TpmValues(model=tpm.model or "tpm-tis", backend=tpm.backend_type or "emulator",
                     version=tpm.backend_version or ("2.0" if tpm.backend_type != "passthrough" else ""),
                     path=tpm.backend_path or "/dev/tpm0")


def _rng_values(dom: Domain) -> RngValues:
    rng = next((r for r in dom.devices.rngs if (r.backend_model or "random") == "random"), None)
    if rng is None:
        return RngValues()
    return RngValues(present=True, source=rng.backend or "/dev/urandom")


def _agent(dom: Domain):
    return next((c for c in dom.devices.channels if c.target_name == AGENT_CHANNEL), None)


def read_settings(config_xml: str, live_xml: str | None, *, uuid: str = "", autostart: bool = False,
                  persistent: bool = True) -> Settings:
    """The settings of a VM: ``config_xml`` is the persistent definition (the
    live XML of a transient VM), ``live_xml`` the running VM's (None when it
    is shut off)."""
    dom = Domain.parse(config_xml, register=False)
    live = Domain.parse(live_xml, register=False) if live_xml else None
    ov = OverviewValues(title=dom.title or "", description=dom.description or "", autostart=autostart,
                        firmware=firmware_of(dom))
    cur = dom.current_memory_kib
    mx = dom.memory_kib
    memory = MemoryValues(current_mib=(cur if cur is not None else (mx or 0)) // 1024,
                          maximum_mib=(mx if mx is not None else (cur or 0)) // 1024)
    entries, per_device = boot_entries(dom)
    os_ = dom.os
    boot = BootValues(entries=entries, per_device=per_device, menu=bool(os_.bootmenu_enable),
                      menu_timeout_ms=os_.bootmenu_timeout, kernel=os_.kernel or "", initrd=os_.initrd or "",
                      cmdline=os_.cmdline or "")
    config_macs = {(n.mac or "").lower() for n in dom.devices.interfaces}
    live_macs = {(n.mac or "").lower() for n in live.devices.interfaces} if live is not None else config_macs
    nics = [NicInfo(values=nic_values(n), type=n.type or "", label=_nic_label(n), editable=n.kind is not None,
                    next_boot_only=live is not None and (n.mac or "").lower() not in live_macs)
            for n in dom.devices.interfaces]
    if live is not None:
        nics += [NicInfo(values=nic_values(n), type=n.type or "", label=_nic_label(n), editable=False,
                         live_only=True)
                 for n in live.devices.interfaces if (n.mac or "").lower() not in config_macs]
    display, others = _display_values(dom)
    agent = _agent(dom)
    live_agent = _agent(live) if live is not None else None
    balloon_dom = live if live is not None else dom
    mb = balloon_dom.devices.memballoon
    return Settings(
        name=dom.name or "", uuid=uuid or dom.uuid or "", running=live is not None, persistent=persistent,
        virt_type=dom.type or "", machine=os_.machine or "", arch=os_.arch or "",
        overview=ov, cpus=_cpu_values(dom), memory=memory, boot=boot, nics=nics, display=display,
        serials=_serials(dom), agent=agent is not None,
        agent_state=live_agent.target_state if live_agent is not None else None,
        tpm=_tpm_values(dom), rng=_rng_values(dom),
        balloon=mb.exists and (mb.model or "virtio") != "none",
        numa=dom.cpu.has_numa,
        live_max_vcpus=live.vcpus if live is not None else None,
        live_max_memory_mib=(live.memory_kib or 0) // 1024 if live is not None else None,
        live_vcpus=live.vcpus_online if live is not None else None,
        live_memory_mib=(live.current_memory_kib or live.memory_kib or 0) // 1024 if live is not None else None,
        other_graphics=others,
    )
