"""What the host can run: libvirt's domain capabilities, boiled down for the New-VM wizard.

``parse_domcaps(xml)`` reads one ``virConnectGetDomainCapabilities`` document
(one emulator / virt type / machine). ``host_caps(service)`` asks libvirt for
the four combinations the wizard offers (kvm and qemu × pc and q35) and merges
them into one :class:`HostCaps`. Any of those calls may fail -- no KVM, an
old libvirt, the test driver (no domain capabilities at all) -- and then sane
defaults stand in: the wizard offers KVM only when libvirt answered for kvm.

Nothing here imports Textual.
"""

from __future__ import annotations

import asyncio
import logging
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

VIRT_TYPES = ("kvm", "qemu")
MACHINES = ("pc", "q35")


class DomCapsError(ValueError):
    """The document is not domain capabilities XML."""


@dataclass(frozen=True)
class Loader:
    """A firmware binary libvirt knows (``<os><loader><value>``)."""

    path: str
    secure: bool = False  # a Secure Boot build (needs SMM, q35)


@dataclass
class DomCaps:
    """One domain capabilities document."""

    emulator: str | None = None  # <path>
    domain: str | None = None  # "kvm" / "qemu"
    machine: str | None = None  # canonical, e.g. "pc-q35-7.2"
    arch: str | None = None
    max_vcpus: int | None = None
    os_supported: bool = True
    firmware: list[str] = field(default_factory=list)  # <os><enum name='firmware'>: "efi", "bios"
    loaders: list[str] = field(default_factory=list)  # <os><loader><value>
    loader_types: list[str] = field(default_factory=list)  # "rom", "pflash"
    secure_values: list[str] = field(default_factory=list)  # <loader><enum name='secure'>
    cpu_modes: dict[str, bool] = field(default_factory=dict)  # mode name -> supported
    disk_buses: list[str] = field(default_factory=list)
    disk_devices: list[str] = field(default_factory=list)
    graphics_types: list[str] = field(default_factory=list)
    video_models: list[str] = field(default_factory=list)
    rng_models: list[str] = field(default_factory=list)
    rng_backends: list[str] = field(default_factory=list)  # <rng><enum name='backendModel'>: random, egd, builtin
    tpm_models: list[str] = field(default_factory=list)  # <tpm><enum name='model'>: tpm-tis, tpm-crb
    tpm_backends: list[str] = field(default_factory=list)  # <tpm><enum name='backendModel'>: passthrough, emulator
    tpm_versions: list[str] = field(default_factory=list)  # <tpm><enum name='backendVersion'>: 1.2, 2.0
    cpu_models: list[str] = field(default_factory=list)  # <mode name='custom'><model usable='yes'>
    features: dict[str, bool] = field(default_factory=dict)  # <features><x supported='yes'/>

    @property
    def efi_autoselect(self) -> bool:
        """``<os firmware='efi'>`` works: libvirt picks loader + NVRAM itself."""
        return "efi" in self.firmware

    @property
    def secure_boot(self) -> bool:
        return "yes" in self.secure_values

    @property
    def uefi(self) -> bool:
        return self.efi_autoselect or bool(self.uefi_loaders)

    @property
    def uefi_loaders(self) -> list[Loader]:
        return [Loader(p, is_secure_loader(p)) for p in self.loaders if is_uefi_loader(p)]

    def cpu_mode_supported(self, mode: str) -> bool:
        return self.cpu_modes.get(mode, False)


def is_uefi_loader(path: str) -> bool:
    """Domain capabilities list UEFI builds; a SeaBIOS image is the odd one out."""
    low = path.rsplit("/", 1)[-1].lower()
    return not ("bios" in low and "efi" not in low and "ovmf" not in low)


def is_secure_loader(path: str) -> bool:
    low = path.rsplit("/", 1)[-1].lower()
    return "secboot" in low or ".ms." in low or "secure" in low or "snakeoil" in low


def _enum(parent: ET.Element | None, name: str) -> list[str]:
    if parent is None:
        return []
    for en in parent.findall("enum"):
        if en.get("name") == name:
            return [(v.text or "").strip() for v in en.findall("value") if (v.text or "").strip()]
    return []


def _supported(el: ET.Element | None) -> bool:
    return el is not None and el.get("supported", "yes") == "yes"


def parse_domcaps(xml: str | bytes) -> DomCaps:
    """Parse ``virConnectGetDomainCapabilities`` output."""
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as err:
        raise DomCapsError(f"malformed domain capabilities XML: {err}") from None
    if root.tag != "domainCapabilities":
        raise DomCapsError(f"not domain capabilities XML: root element is <{root.tag}>")
    caps = DomCaps()
    caps.emulator = (root.findtext("path") or "").strip() or None
    caps.domain = (root.findtext("domain") or "").strip() or None
    caps.machine = (root.findtext("machine") or "").strip() or None
    caps.arch = (root.findtext("arch") or "").strip() or None
    vcpu = root.find("vcpu")
    if vcpu is not None and (vcpu.get("max") or "").isdigit():
        caps.max_vcpus = int(vcpu.get("max"))

    os_el = root.find("os")
    if os_el is not None:
        caps.os_supported = _supported(os_el)
        caps.firmware = _enum(os_el, "firmware")
        loader = os_el.find("loader")
        if _supported(loader):
            caps.loaders = [(v.text or "").strip() for v in loader.findall("value") if (v.text or "").strip()]
            caps.loader_types = _enum(loader, "type")
            caps.secure_values = _enum(loader, "secure")

    cpu = root.find("cpu")
    if cpu is not None:
        for mode in cpu.findall("mode"):
            if mode.get("name"):
                caps.cpu_modes[mode.get("name")] = _supported(mode)
            if mode.get("name") == "custom" and _supported(mode):
                caps.cpu_models = [(m.text or "").strip() for m in mode.findall("model")
                                   if (m.text or "").strip() and m.get("usable", "yes") != "no"]

    devices = root.find("devices")
    if devices is not None:
        disk = devices.find("disk")
        if _supported(disk):
            caps.disk_buses = _enum(disk, "bus")
            caps.disk_devices = _enum(disk, "diskDevice")
        graphics = devices.find("graphics")
        if _supported(graphics):
            caps.graphics_types = _enum(graphics, "type")
        video = devices.find("video")
        if _supported(video):
            caps.video_models = _enum(video, "modelType")
        rng = devices.find("rng")
        if _supported(rng):
            caps.rng_models = _enum(rng, "model")
            caps.rng_backends = _enum(rng, "backendModel")
        tpm = devices.find("tpm")
        if _supported(tpm):
            caps.tpm_models = _enum(tpm, "model")
            caps.tpm_backends = _enum(tpm, "backendModel")
            caps.tpm_versions = _enum(tpm, "backendVersion")

    features = root.find("features")
    if features is not None:
        for feat in features:
            if isinstance(feat.tag, str):
                caps.features[feat.tag] = _supported(feat)
    return caps


@dataclass
class HostCaps:
    """What the wizard and the builder need to know about a host.

    ``cpus`` and ``memory_total_kib`` have the names of
    :class:`vmtui.core.connection.rows.HostInfo`, so validation takes either.
    """

    arch: str = "x86_64"
    kvm_available: bool = False
    virt_types: list[str] = field(default_factory=lambda: ["qemu"])  # those libvirt answered for (or the fallback)
    emulator: str | None = None
    machines: list[str] = field(default_factory=lambda: list(MACHINES))  # offered aliases: "pc", "q35"
    canonical_machines: dict[str, str] = field(default_factory=dict)  # "q35" -> "pc-q35-7.2"
    uefi_loaders: list[Loader] = field(default_factory=list)
    efi_autoselect: bool = True
    secure_boot: bool = True
    max_vcpus: int | None = None
    cpu_modes: dict[str, dict[str, bool]] = field(default_factory=dict)  # virt type -> mode -> supported
    disk_buses: list[str] = field(default_factory=list)  # empty: unknown
    cpus: int | None = None  # host CPUs
    memory_total_kib: int | None = None
    from_libvirt: bool = False  # False: every domcaps call failed, these are defaults
    domcaps: dict[tuple[str, str], DomCaps] = field(default_factory=dict)  # (virt type, machine) -> caps

    @property
    def default_virt_type(self) -> str:
        return "kvm" if self.kvm_available else "qemu"

    @property
    def uefi(self) -> bool:
        return self.efi_autoselect or bool(self.uefi_loaders)

    @property
    def memory_mib(self) -> int | None:
        return None if self.memory_total_kib is None else self.memory_total_kib // 1024

    def cpu_mode_supported(self, virt_type: str, mode: str) -> bool | None:
        """True/False from libvirt; None when unknown."""
        modes = self.cpu_modes.get(virt_type)
        if not modes or mode not in modes:
            return None
        return modes[mode]

    def for_machine(self, virt_type: str, machine: str) -> DomCaps | None:
        return self.domcaps.get((virt_type, machine))

    def uefi_loaders_for(self, virt_type: str, machine: str, secure: bool | None = None) -> list[Loader]:
        dc = self.for_machine(virt_type, machine)
        loaders = dc.uefi_loaders if dc is not None else self.uefi_loaders
        if secure is None:
            return list(loaders)
        return [lo for lo in loaders if lo.secure == secure]

    def efi_autoselect_for(self, virt_type: str, machine: str) -> bool:
        dc = self.for_machine(virt_type, machine)
        return dc.efi_autoselect if dc is not None else self.efi_autoselect

    def emulator_for(self, virt_type: str, machine: str) -> str | None:
        dc = self.for_machine(virt_type, machine)
        return (dc.emulator if dc is not None else None) or self.emulator


def merge_domcaps(found: dict[tuple[str, str], DomCaps], arch: str = "x86_64") -> HostCaps:
    """Fold per-(virt type, machine) answers into one HostCaps; defaults if empty."""
    hc = HostCaps(arch=arch, domcaps=dict(found))
    if not found:
        return hc
    hc.from_libvirt = True
    hc.virt_types = [vt for vt in VIRT_TYPES if any(k[0] == vt for k in found)]
    hc.kvm_available = "kvm" in hc.virt_types
    machines = [m for m in MACHINES if any(k[1] == m for k in found)]
    hc.machines = machines or list(MACHINES)
    loaders: list[Loader] = []
    autoselect = secure = False
    buses: list[str] = []
    for (vt, machine), dc in found.items():
        hc.emulator = hc.emulator or dc.emulator
        if dc.machine:
            hc.canonical_machines.setdefault(machine, dc.machine)
        if dc.max_vcpus is not None:
            hc.max_vcpus = dc.max_vcpus if hc.max_vcpus is None else max(hc.max_vcpus, dc.max_vcpus)
        hc.cpu_modes.setdefault(vt, {}).update(dc.cpu_modes)
        for lo in dc.uefi_loaders:
            if lo not in loaders:
                loaders.append(lo)
        autoselect = autoselect or dc.efi_autoselect
        secure = secure or dc.secure_boot
        for b in dc.disk_buses:
            if b not in buses:
                buses.append(b)
    hc.uefi_loaders = loaders
    hc.efi_autoselect = autoselect
    hc.secure_boot = secure
    hc.disk_buses = buses
    return hc


def fetch_domcaps(conn: Any, arch: str = "x86_64", virt_types=VIRT_TYPES,
                  machines=MACHINES) -> dict[tuple[str, str], DomCaps]:
    """Blocking: ask libvirt for each (virt type, machine); failures are skipped."""
    import libvirt

    found: dict[tuple[str, str], DomCaps] = {}
    for vt in virt_types:
        for machine in machines:
            try:
                xml = conn.getDomainCapabilities(None, arch, machine, vt, 0)
                found[(vt, machine)] = parse_domcaps(xml)
            except libvirt.libvirtError as err:
                log.info("no domain capabilities for %s/%s/%s: %s", vt, arch, machine, err.get_error_message())
                if err.get_error_code() == libvirt.VIR_ERR_NO_SUPPORT:
                    return found  # the driver has none at all (test driver)
            except DomCapsError as err:
                log.info("bad domain capabilities for %s/%s/%s: %s", vt, arch, machine, err)
    return found


def domain_caps(conn: Any, *, emulator: str | None, arch: str | None, machine: str | None,
                virt_type: str | None) -> DomCaps | None:
    """Blocking: the domain capabilities for one existing domain's emulator,
    architecture, machine and virtualization type; None when libvirt has none
    (the test driver, an old libvirt) or cannot answer for this combination."""
    import libvirt

    try:
        xml = conn.getDomainCapabilities(emulator, arch, machine, virt_type, 0)
    except libvirt.libvirtError as err:
        from ..errors import is_connection_lost

        if is_connection_lost(err):
            raise
        log.info("no domain capabilities for %s/%s/%s: %s", virt_type, arch, machine, err.get_error_message())
        return None
    try:
        return parse_domcaps(xml)
    except DomCapsError as err:
        log.info("bad domain capabilities for %s/%s/%s: %s", virt_type, arch, machine, err)
        return None


async def host_caps(service: Any, arch: str = "x86_64") -> HostCaps:
    """Ask the host behind ``service`` what it can run (never raises for
    missing domain capabilities: defaults stand in)."""
    from ..errors import VmtuiError

    try:
        found = await service.call(lambda conn: fetch_domcaps(conn, arch), action="read the capabilities of",
                                   obj=getattr(service, "display_uri", ""), timeout=120)
    except VmtuiError as err:
        log.info("domain capabilities unavailable: %s", err)
        found = {}
    except asyncio.CancelledError:
        raise
    hc = merge_domcaps(found, arch)
    host = getattr(service, "host", None)
    if host is not None:
        hc.cpus = getattr(host, "cpus", None) or None
        hc.memory_total_kib = getattr(host, "memory_total_kib", None) or None
    return hc
