"""From a VmSpec to libvirt domain XML (and back), and the equivalent virt-install line.

Two definitions are built for one new VM, as virt-install does:

* the **install** XML (``phase="install"``) boots the installer once:
  CD-ROM first for ``iso``/``cdrom`` sources, the network first for ``pxe``,
  the installer's kernel/initrd/cmdline (direct kernel boot, fetched from the
  tree) for ``url``. ``<on_reboot>`` is ``destroy`` -- the installer's final
  reboot ends the transient install run, and the next start uses the
  persistent definition;
* the **final** XML (``phase="final"``) is what gets defined: it boots from
  the disk. An install CD-ROM drive stays, with its media ejected
  (virt-install keeps the media of Windows installs, which reboot into the
  installer several times; so do we).

``import``, ``cloud`` and ``none`` sources have no install phase: the final
XML is also the one that is started.

UUID: the installer generates one and passes it to both phases, so the
transient install run (``createXML``) and the persistent definition
(``defineXML``) are the same domain. Without a ``uuid`` argument no
``<uuid>`` is written (libvirt generates one; used for previews).

Everything is built with ElementTree; names, titles and paths with XML
special characters or any Unicode go through it safely.
"""

from __future__ import annotations

import math
import re
import shlex
import xml.etree.ElementTree as ET
from dataclasses import dataclass, replace
from typing import Any, Literal, Sequence

from .vmspec import DiskSpec, InstallSource, NicSpec, VmSpec

NS_VMTUI = "https://vmtui.dev/xmlns/vmtui/1"
NS_LIBOSINFO = "http://libosinfo.org/xmlns/libvirt/domain/1.0"
ET.register_namespace("vmtui", NS_VMTUI)
ET.register_namespace("libosinfo", NS_LIBOSINFO)

Phase = Literal["install", "final"]

#: Source kinds that boot an installer first (install XML + final XML).
INSTALL_PHASE_KINDS = ("iso", "cdrom", "url", "pxe")
#: Free pcie-root-ports left on q35 for hot-plugging disks and NICs later.
SPARE_PCIE_PORTS = 4
#: Default pool target path, for previews that cannot ask libvirt.
DEFAULT_POOL_PATHS = {"default": "/var/lib/libvirt/images"}

_BUS_PREFIX = {"virtio": "vd", "sata": "sd", "scsi": "sd", "usb": "sd", "ide": "hd"}


class BuildError(ValueError):
    """The spec cannot be turned into domain XML (validation should have said so)."""


@dataclass
class ResolvedDisk:
    """Where one disk of the VM really is, on the host.

    One entry per disk of :func:`plan_disks` (``device="disk"``), in order,
    optionally followed by the install media (``device="cdrom"``). ``path``
    is None for an empty CD-ROM drive.
    """

    path: str | None
    format: str = "raw"  # the driver type: qcow2 / raw / iso (written as raw)
    type: str = "file"  # "file" or "block"
    device: str = "disk"  # "disk" or "cdrom"
    pool: str | None = None
    volume: str | None = None
    capacity: int | None = None
    key: str | None = None  # storage volume key
    created: bool = False  # made by the installer (removed again if creation fails)
    backing: str | None = None  # host path of the backing file (cloud overlays)


# ---------------------------------------------------------------------------
# planning
# ---------------------------------------------------------------------------


def volume_extension(fmt: str) -> str:
    return "qcow2" if fmt == "qcow2" else "img"


def is_volume_ref(text: str | None) -> bool:
    """``pool/volume`` (not an absolute host path)."""
    return bool(text) and not text.startswith("/") and "/" in text


def plan_disks(spec: VmSpec) -> list[DiskSpec]:
    """The disks the VM gets, with defaults filled in (copies; ``spec`` is untouched).

    * ``import``: the image is the boot disk; it is put first unless one of
      ``spec.disks`` already attaches it.
    * ``cloud``: the first new disk becomes a qcow2 overlay on the image
      (``backing``); with no new disk one overlay is put first, as big as
      the image.
    * New disks without a name get ``<vm>.qcow2`` / ``<vm>.img``, the next
      ``<vm>-1.qcow2`` ..., unique per pool.
    """
    disks = [replace(d) for d in spec.disks]
    src = spec.install
    if src.kind == "import" and src.image:
        if not any(d.mode == "existing" and d.path == src.image for d in disks):
            bus = disks[0].bus if disks else DiskSpec().bus
            disks.insert(0, DiskSpec(mode="existing", path=src.image, bus=bus))
    elif src.kind == "cloud" and src.image:
        target = next((d for d in disks if d.mode == "new"), None)
        if target is None:
            target = DiskSpec(mode="new", size=0, bus=disks[0].bus if disks else DiskSpec().bus)
            disks.insert(0, target)
        if target.backing is None:
            target.backing = src.image
        target.format = "qcow2"
        target.provisioning = "thin"
    taken: dict[str, set[str]] = {}
    for d in disks:
        if d.mode == "new" and d.name:
            taken.setdefault(d.pool, set()).add(d.name)
    n = 0
    for d in disks:
        if d.mode != "new" or d.name:
            continue
        ext = volume_extension(d.format)
        while True:
            candidate = f"{spec.name}.{ext}" if n == 0 else f"{spec.name}-{n}.{ext}"
            n += 1
            if candidate not in taken.setdefault(d.pool, set()):
                break
        d.name = candidate
        taken[d.pool].add(candidate)
    return disks


def plan_nics(spec: VmSpec) -> list[NicSpec]:
    """The NICs the VM gets: a PXE install on a network with no NIC given gets one there."""
    nics = [replace(n) for n in spec.nics]
    if spec.install.kind == "pxe" and spec.install.network and not nics:
        nics.append(NicSpec(kind="network", source=spec.install.network))
    return nics


def has_install_phase(spec: VmSpec) -> bool:
    return spec.install.kind in INSTALL_PHASE_KINDS


def offline_disks(spec: VmSpec, pool_paths: dict[str, str] | None = None) -> list[ResolvedDisk]:
    """ResolvedDisks guessed without asking libvirt (previews, tests):
    ``pool/volume`` becomes ``<pool path>/<volume>``."""
    paths = dict(DEFAULT_POOL_PATHS)
    paths.update(pool_paths or {})

    def where(pool: str, name: str) -> str:
        return f"{paths.get(pool, '/var/lib/libvirt/images/' + pool).rstrip('/')}/{name}"

    def ref(text: str) -> str:
        if is_volume_ref(text):
            pool, vol = text.split("/", 1)
            return where(pool, vol)
        return text

    out = []
    for d in plan_disks(spec):
        if d.mode == "new":
            out.append(ResolvedDisk(where(d.pool, d.name), d.format, pool=d.pool, volume=d.name,
                                    capacity=d.size or None, backing=ref(d.backing) if d.backing else None))
        else:
            path = ref(d.path or "")
            out.append(ResolvedDisk(path, d.format, type="block" if path.startswith("/dev/") else "file"))
    src = spec.install
    if src.kind == "iso" and src.iso:
        out.append(ResolvedDisk(ref(src.iso), "raw", device="cdrom"))
    elif src.kind == "cdrom" and src.cdrom:
        out.append(ResolvedDisk(src.cdrom, "raw", type="block", device="cdrom"))
    return out


# ---------------------------------------------------------------------------
# small helpers
# ---------------------------------------------------------------------------


def disk_target(prefix: str, index: int) -> str:
    """``vd`` + 0 -> ``vda``, 25 -> ``vdz``, 26 -> ``vdaa`` (libvirt's scheme)."""
    letters = ""
    i = index + 1
    while i > 0:
        i, rem = divmod(i - 1, 26)
        letters = chr(ord("a") + rem) + letters
    return prefix + letters


class _Targets:
    """Hands out target dev names per bus prefix, in device order."""

    def __init__(self) -> None:
        self.used: dict[str, int] = {}

    def next(self, bus: str) -> str:
        prefix = _BUS_PREFIX.get(bus, "sd")
        n = self.used.get(prefix, 0)
        self.used[prefix] = n + 1
        return disk_target(prefix, n)


def topology(spec: VmSpec) -> tuple[int, int, int] | None:
    """(sockets, cores, threads), missing values filled; None when none is set."""
    if spec.sockets is None and spec.cores is None and spec.threads is None:
        return None
    threads = spec.threads or 1
    cores = spec.cores or 1
    if spec.sockets is not None:
        sockets = spec.sockets
        if spec.cores is None:
            cores = max(1, spec.vcpus // max(1, sockets * threads))
    else:
        sockets = max(1, spec.vcpus // max(1, cores * threads))
    return sockets, cores, threads


def _os_id(os: Any) -> str | None:
    return getattr(os, "id", None) if os is not None else None


def _is_windows(os: Any) -> bool:
    return bool(getattr(os, "is_windows", False)) if os is not None else False


def _virtio_ok(os: Any) -> bool:
    """Extra virtio devices (rng, balloon, virtio video): yes unless the OS says no."""
    return bool(getattr(os, "virtio", True)) if os is not None else True


_ANACONDA = ("fedora", "rhel", "centos", "almalinux", "rocky", "ol", "oel", "scientificlinux",
             "circle", "miraclelinux", "eurolinux", "navy")
_SUSE = ("opensuse", "sle", "sles", "sled", "caasp")


def _split_short_id(short_id: str) -> tuple[str, float | None]:
    m = re.match(r"([a-z][a-z-]*?)-?(\d+(?:\.\d+)?)", short_id or "")
    if not m:
        return (short_id or "").rstrip("-"), None
    return m.group(1).rstrip("-"), float(m.group(2))


def kernel_url_arg(spec: VmSpec, os: Any = None) -> str | None:
    """Name of the kernel argument that points the installer at its tree:
    ``inst.repo`` for Anaconda (Fedora, RHEL and rebuilds), ``method`` for
    their old releases, ``install`` for SUSE; None otherwise (Debian and
    Ubuntu installers find their mirror themselves)."""
    distro = (getattr(os, "distro", None) or "") if os is not None else ""
    name, version = _split_short_id(getattr(os, "short_id", None) or spec.os)
    if name.startswith("centos-stream"):
        name = "centos"
    distro = distro or name
    anaconda = bool(getattr(os, "is_anaconda", False)) or distro in _ANACONDA or name in _ANACONDA
    if distro in _SUSE or name in _SUSE or name.startswith("opensuse"):
        return "install"
    if not anaconda:
        return None
    if version is not None:
        if (distro in ("rhel", "centos", "scientificlinux", "ol") and version < 7) or \
                (distro == "fedora" and version < 19):
            return "method"
    return "inst.repo"


def install_kernel_args(spec: VmSpec, os: Any = None) -> str:
    """The installer's kernel command line for a ``url`` install: the tree
    argument (unless the user gave one), then ``spec.install.kernel_args``,
    then ``inst.ks=file:/ks.cfg`` when a kickstart is injected into the
    initrd (unless the user gave an ``inst.ks``)."""
    args = spec.install.kernel_args.strip()
    parts = []
    name = kernel_url_arg(spec, os)
    if name and spec.install.url and not re.search(rf"(^|\s){re.escape(name)}=", args):
        parts.append(f"{name}={spec.install.url}")
    if args:
        parts.append(args)
    ks_arg = kickstart_kernel_arg(spec)
    if ks_arg and not _KS_ARG_RE.search(args):
        parts.append(ks_arg)
    return " ".join(parts)


_KS_ARG_RE = re.compile(r"(^|\s)(inst\.)?ks=")  # the user already gave a kickstart location


def kickstart_delivery(spec: VmSpec) -> str | None:
    """``"oemdrv"`` / ``"initrd"`` when the spec has a kickstart its source can take."""
    from .provision.kickstart import DELIVERY_FOR_KIND

    if not spec.install.kickstart:
        return None
    return DELIVERY_FOR_KIND.get(spec.install.kind)


def kickstart_kernel_arg(spec: VmSpec) -> str | None:
    from .provision.kickstart import INITRD, KICKSTART_INITRD_ARG

    return KICKSTART_INITRD_ARG if kickstart_delivery(spec) == INITRD else None


def default_oemdrv_path(spec: VmSpec, pool_dir: str | None = None) -> str:
    """Where the OEMDRV volume would be, for previews (the installer knows the real path)."""
    from .provision.kickstart import oemdrv_volume_name

    base = (pool_dir or DEFAULT_POOL_PATHS["default"]).rstrip("/")
    return f"{base}/{oemdrv_volume_name(spec.name)}"


# ---------------------------------------------------------------------------
# the domain XML
# ---------------------------------------------------------------------------


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    el = ET.SubElement(parent, tag, {k: v for k, v in attrs.items() if v is not None})
    if text is not None:
        el.text = text
    return el


def _metadata(root: ET.Element, spec: VmSpec, os: Any) -> None:
    meta = _sub(root, "metadata")
    os_id = _os_id(os)
    if os_id:
        lo = _sub(meta, f"{{{NS_LIBOSINFO}}}libosinfo")
        _sub(lo, f"{{{NS_LIBOSINFO}}}os", id=os_id)
    ours = _sub(meta, f"{{{NS_VMTUI}}}vmtui")
    _sub(ours, f"{{{NS_VMTUI}}}os", id=spec.os or "generic")
    src = spec.install
    attrs = {"kind": src.kind}
    for key in ("iso", "cdrom", "url", "image", "network"):
        value = getattr(src, key)
        if value:
            attrs[key] = value
    if src.kernel_args:
        attrs["kernel_args"] = src.kernel_args
    _sub(ours, f"{{{NS_VMTUI}}}install", **attrs)


def _os_block(root: ET.Element, spec: VmSpec, caps: Any, kernel: str | None,
              initrd: str | None, cmdline: str | None, boot: list[str]) -> None:
    os_el = _sub(root, "os")
    uefi = spec.firmware == "uefi"
    autoselect = True
    loader = None
    if uefi and caps is not None:
        autoselect = caps.efi_autoselect_for(spec.virt_type, spec.machine)
        if not autoselect:
            loaders = caps.uefi_loaders_for(spec.virt_type, spec.machine, secure=spec.secure_boot) \
                or caps.uefi_loaders_for(spec.virt_type, spec.machine)
            if not loaders:
                raise BuildError(f"this host has no UEFI firmware for {spec.virt_type}/{spec.machine}")
            loader = loaders[0]
    if uefi and autoselect:
        os_el.set("firmware", "efi")
    _sub(os_el, "type", "hvm", arch=spec.arch, machine=spec.machine)
    if uefi and autoselect:
        fw = _sub(os_el, "firmware")
        _sub(fw, "feature", enabled="yes" if spec.secure_boot else "no", name="enrolled-keys")
        _sub(fw, "feature", enabled="yes" if spec.secure_boot else "no", name="secure-boot")
    elif uefi and loader is not None:
        # no <nvram>: libvirt makes the VM's own copy of the matching variable store
        _sub(os_el, "loader", loader.path, readonly="yes", type="pflash",
             secure="yes" if spec.secure_boot else "no")
    if kernel:
        _sub(os_el, "kernel", kernel)
        if initrd:
            _sub(os_el, "initrd", initrd)
        if cmdline:
            _sub(os_el, "cmdline", cmdline)
    for dev in boot:
        _sub(os_el, "boot", dev=dev)


def _features(root: ET.Element, spec: VmSpec, os: Any) -> None:
    feats = _sub(root, "features")
    _sub(feats, "acpi")
    _sub(feats, "apic")
    if _is_windows(os) and spec.virt_type == "kvm":
        hv = _sub(feats, "hyperv", mode="custom")
        _sub(hv, "relaxed", state="on")
        _sub(hv, "vapic", state="on")
        _sub(hv, "spinlocks", state="on", retries="8191")
    if spec.firmware == "uefi" and spec.secure_boot:
        _sub(feats, "smm", state="on")


def _cpu(root: ET.Element, spec: VmSpec) -> None:
    topo = topology(spec)
    if spec.cpu_mode == "custom":
        cpu = _sub(root, "cpu", mode="custom", match="exact", check="partial")
        _sub(cpu, "model", spec.cpu_model or "qemu64", fallback="allow")
    else:
        cpu = _sub(root, "cpu", mode=spec.cpu_mode)
        if spec.cpu_mode == "host-passthrough":
            cpu.set("check", "none")
            cpu.set("migratable", "on")
    if topo is not None:
        sockets, cores, threads = topo
        _sub(cpu, "topology", sockets=str(sockets), dies="1", cores=str(cores), threads=str(threads))


def _clock(root: ET.Element, spec: VmSpec, os: Any) -> None:
    clock = _sub(root, "clock", offset="localtime" if _is_windows(os) else "utc")
    _sub(clock, "timer", name="rtc", tickpolicy="catchup")
    _sub(clock, "timer", name="pit", tickpolicy="delay")
    _sub(clock, "timer", name="hpet", present="no")
    if _is_windows(os) and spec.virt_type == "kvm":
        _sub(clock, "timer", name="hypervclock", present="yes")


def _disk_el(devices: ET.Element, rd: ResolvedDisk, device: str, bus: str, target: str, *,
             cache: str | None = None, readonly: bool = False, with_media: bool = True) -> ET.Element:
    dtype = rd.type if rd.type in ("file", "block") else "file"
    disk = _sub(devices, "disk", type=dtype, device=device)
    fmt = rd.format if rd.format in ("qcow2", "raw") else "raw"
    _sub(disk, "driver", name="qemu", type=fmt, cache=cache or None)
    if with_media and rd.path:
        if dtype == "block":
            _sub(disk, "source", dev=rd.path)
        else:
            _sub(disk, "source", file=rd.path)
    _sub(disk, "target", dev=target, bus=bus)
    if readonly or device == "cdrom":
        _sub(disk, "readonly")
    return disk


def _nic_el(devices: ET.Element, nic: NicSpec) -> ET.Element:
    if nic.kind == "network":
        iface = _sub(devices, "interface", type="network")
        if nic.mac:
            _sub(iface, "mac", address=nic.mac.lower())
        _sub(iface, "source", network=nic.source)
    elif nic.kind == "bridge":
        iface = _sub(devices, "interface", type="bridge")
        if nic.mac:
            _sub(iface, "mac", address=nic.mac.lower())
        _sub(iface, "source", bridge=nic.source)
    elif nic.kind == "macvtap":
        iface = _sub(devices, "interface", type="direct")
        if nic.mac:
            _sub(iface, "mac", address=nic.mac.lower())
        _sub(iface, "source", dev=nic.source, mode=nic.mode)
    else:
        raise BuildError(f"unknown NIC kind {nic.kind!r}")
    _sub(iface, "model", type=nic.model or "virtio")
    return iface


def _split_disks(spec: VmSpec, disks: Sequence[ResolvedDisk]) -> tuple[list[DiskSpec], list[ResolvedDisk],
                                                                         ResolvedDisk | None]:
    planned = plan_disks(spec)
    hard = [d for d in disks if d.device != "cdrom"]
    cdroms = [d for d in disks if d.device == "cdrom"]
    if len(hard) != len(planned):
        raise BuildError(f"{len(planned)} disk(s) planned but {len(hard)} resolved")
    media = cdroms[0] if cdroms else None
    if media is None and spec.install.kind in ("iso", "cdrom"):
        media = next((d for d in offline_disks(spec) if d.device == "cdrom"), None)
    return planned, hard, media


def define_only(spec: VmSpec) -> bool:
    """The VM is defined, not installed now: its definition must install on first start."""
    return not spec.start_install and has_install_phase(spec)


def build_domain_xml(spec: VmSpec, caps: Any, disks: Sequence[ResolvedDisk], *, phase: Phase = "final",
                     os: Any = None, install_kernel: str | None = None, install_initrd: str | None = None,
                     install_cmdline: str | None = None, uuid: str | None = None,
                     pretty: bool = True, install_oemdrv: str | None = None) -> str:
    """The domain XML of ``spec`` for one phase.

    ``caps`` is a :class:`vmtui.core.domcaps.HostCaps` (or None: emulator
    left to libvirt, UEFI through ``<os firmware='efi'>``). ``disks`` come
    from the installer (or :func:`offline_disks`). ``os`` is the
    :class:`vmtui.core.osinfo.OsInfo` of ``spec.os`` (None: generic).
    ``install_kernel``/``install_initrd`` are the host paths of the
    installer's kernel and initrd (``url`` installs); ``install_cmdline``
    overrides :func:`install_kernel_args`. ``install_oemdrv`` is the host
    path of the OEMDRV ISO holding the kickstart (iso/cdrom installs with
    ``spec.install.kickstart``): a second read-only CD-ROM in the install
    XML only -- or in the definition when it is defined only, to install on
    its first start. Without it a preview path is used.
    """
    if phase not in ("install", "final"):
        raise BuildError(f"phase must be 'install' or 'final', not {phase!r}")
    planned, hard, media = _split_disks(spec, disks)
    src = spec.install
    installing = phase == "install" and has_install_phase(spec)

    root = ET.Element("domain", type=spec.virt_type)
    _sub(root, "name", spec.name)
    if uuid:
        _sub(root, "uuid", uuid)
    if spec.title:
        _sub(root, "title", spec.title)
    if spec.description:
        _sub(root, "description", spec.description)
    _metadata(root, spec, os)
    _sub(root, "memory", str(spec.max_memory), unit="MiB")
    _sub(root, "currentMemory", str(spec.memory_mib), unit="MiB")
    _sub(root, "vcpu", str(spec.vcpus), placement="static")

    kernel = initrd = cmdline = None
    if installing and src.kind == "url":
        if not install_kernel:
            raise BuildError("a URL install needs the installer's kernel and initrd")
        kernel, initrd = install_kernel, install_initrd
        cmdline = install_cmdline if install_cmdline is not None else install_kernel_args(spec, os)
    has_disk = bool(planned)
    later = phase == "final" and define_only(spec)
    hd = ["hd"] if has_disk else []
    if installing and src.kind in ("iso", "cdrom"):
        boot = ["cdrom"] + hd
    elif installing and src.kind == "pxe":
        boot = ["network"] + hd
    elif installing and src.kind == "url":
        boot = []
    elif later and src.kind in ("iso", "cdrom"):
        # An empty disk is not bootable, so firmware falls through to the
        # CD-ROM until the OS is installed; afterwards the disk boots.
        boot = hd + ["cdrom"]
    elif later and src.kind == "pxe":
        boot = hd + ["network"]
    elif not has_disk and media is not None:
        boot = ["cdrom"]
    elif not has_disk and src.kind == "pxe":
        boot = ["network"]
    else:
        boot = ["hd"]
    _os_block(root, spec, caps, kernel, initrd, cmdline, boot)
    _features(root, spec, os)
    _cpu(root, spec)
    _clock(root, spec, os)
    _sub(root, "on_poweroff", "destroy")
    _sub(root, "on_reboot", "destroy" if installing else "restart")
    _sub(root, "on_crash", "destroy")
    pm = _sub(root, "pm")
    _sub(pm, "suspend-to-mem", enabled="no")
    _sub(pm, "suspend-to-disk", enabled="no")

    devices = _sub(root, "devices")
    emulator = caps.emulator_for(spec.virt_type, spec.machine) if caps is not None else None
    if emulator:
        _sub(devices, "emulator", emulator)
    q35 = spec.machine == "q35"
    pcie_devices = 0
    targets = _Targets()
    scsi = False
    for d, rd in zip(planned, hard):
        _disk_el(devices, rd, "disk", d.bus, targets.next(d.bus), cache=d.cache, readonly=d.readonly)
        scsi = scsi or d.bus == "scsi"
        pcie_devices += d.bus == "virtio"
    if media is not None:
        keep_media = installing or later or _is_windows(os)
        _disk_el(devices, media, "cdrom", spec.cdrom_bus, targets.next(spec.cdrom_bus),
                 with_media=keep_media)
        scsi = scsi or spec.cdrom_bus == "scsi"
        if kickstart_delivery(spec) == "oemdrv" and (installing or later):
            oemdrv = ResolvedDisk(install_oemdrv or default_oemdrv_path(spec), "raw", device="cdrom")
            _disk_el(devices, oemdrv, "cdrom", spec.cdrom_bus, targets.next(spec.cdrom_bus))
    if scsi:
        _sub(devices, "controller", type="scsi", index="0", model="virtio-scsi")
        pcie_devices += 1
    if q35:
        _sub(devices, "controller", type="usb", index="0", model="qemu-xhci", ports="15")
        pcie_devices += 1
    for nic in plan_nics(spec):
        _nic_el(devices, nic)
        pcie_devices += 1
    if spec.serial_console:
        serial = _sub(devices, "serial", type="pty")
        _sub(serial, "target", port="0")
        console = _sub(devices, "console", type="pty")
        _sub(console, "target", type="serial", port="0")
    chan = _sub(devices, "channel", type="unix")
    _sub(chan, "target", type="virtio", name="org.qemu.guest_agent.0")
    pcie_devices += 1  # the virtio-serial controller libvirt adds for the channel
    if spec.graphics == "spice":
        chan = _sub(devices, "channel", type="spicevmc")
        _sub(chan, "target", type="virtio", name="com.redhat.spice.0")
    if spec.tablet:
        _sub(devices, "input", type="tablet", bus="usb")
    if spec.graphics in ("vnc", "spice"):
        gfx = _sub(devices, "graphics", type=spec.graphics, port="-1", autoport="yes")
        listen = spec.graphics_listen or "127.0.0.1"
        _sub(gfx, "listen", type="address", address=listen)
        video = _sub(devices, "video")
        if spec.graphics == "spice":
            model = "qxl"
        elif _virtio_ok(os):
            model = "virtio"
        else:
            model = "vga"
        _sub(video, "model", type=model, heads="1", primary="yes")
    if _virtio_ok(os):
        rng = _sub(devices, "rng", model="virtio")
        _sub(rng, "backend", "/dev/urandom", model="random")
        _sub(devices, "memballoon", model="virtio")
        pcie_devices += 2
    else:
        _sub(devices, "memballoon", model="none")
    if q35:
        # Root ports for the PCIe devices above plus spares for hot-plugging later.
        first = 0
        for _ in range(pcie_devices + SPARE_PCIE_PORTS):
            first += 1
            _sub(devices, "controller", type="pci", index=str(first), model="pcie-root-port")
    if pretty:
        ET.indent(root, "  ")
    # ElementTree's prefix table is global: make sure ours is still "vmtui"
    ET.register_namespace("vmtui", NS_VMTUI)
    return ET.tostring(root, encoding="unicode") + ("\n" if pretty else "")


# ---------------------------------------------------------------------------
# the virt-install line
# ---------------------------------------------------------------------------


def _gib(n: int) -> str:
    value = n / 1024 ** 3
    text = f"{value:.3f}".rstrip("0").rstrip(".")
    return text if text != "0" else f"{value:.6f}".rstrip("0").rstrip(".")


def _opt_value(value: str) -> str:
    """A virt-install sub-option value: quote it when it holds a comma."""
    if "," in value:
        return '"' + value.replace('"', '\\"') + '"'
    return value


def _kv(key: str, value: str) -> str:
    return f"{key}={_opt_value(value)}"


def virt_install_command(spec: VmSpec, disks: Sequence[ResolvedDisk] | None = None, *, os: Any = None,
                         uri: str | None = None, oemdrv: str | None = None) -> list[str]:
    """The equivalent ``virt-install`` command as an argument list.

    A kickstart shows as ``--initrd-inject ks.cfg`` plus ``inst.ks=file:/ks.cfg``
    in ``--extra-args`` (url installs; the kickstart saved as ks.cfg), or as a
    second CD-ROM ``--disk <oemdrv>,device=cdrom`` (iso/cdrom installs;
    ``oemdrv`` is its path)."""
    src = spec.install
    argv = ["virt-install"]
    if uri:
        argv += ["--connect", uri]
    argv += ["--name", spec.name]
    meta = []
    if spec.title:
        meta.append(_kv("title", spec.title))
    if spec.description:
        meta.append(_kv("description", spec.description))
    if meta:
        argv += ["--metadata", ",".join(meta)]
    mem = f"memory={spec.memory_mib}"
    if spec.max_memory != spec.memory_mib:
        mem += f",maxmemory={spec.max_memory}"
    argv += ["--memory", mem]
    vcpus = str(spec.vcpus)
    topo = topology(spec)
    if topo is not None:
        vcpus += f",sockets={topo[0]},cores={topo[1]},threads={topo[2]}"
    argv += ["--vcpus", vcpus]
    if spec.cpu_mode == "custom":
        argv += ["--cpu", spec.cpu_model or "qemu64"]
    else:
        argv += ["--cpu", spec.cpu_mode]
    argv += ["--osinfo", spec.os or "generic"]
    argv += ["--virt-type", spec.virt_type]
    if spec.arch != "x86_64":
        argv += ["--arch", spec.arch]
    argv += ["--machine", spec.machine]
    if spec.firmware == "uefi":
        boot = "uefi"
        if spec.secure_boot:
            boot += (",firmware.feature0.name=secure-boot,firmware.feature0.enabled=yes"
                     ",firmware.feature1.name=enrolled-keys,firmware.feature1.enabled=yes")
        else:  # as in the XML: never a Secure Boot build by accident
            boot += ",firmware.feature0.name=secure-boot,firmware.feature0.enabled=no"
        argv += ["--boot", boot]
        if spec.secure_boot:
            argv += ["--features", "smm.state=on"]

    # install source
    media = next((d for d in (disks or []) if d.device == "cdrom"), None) \
        or next((d for d in offline_disks(spec) if d.device == "cdrom"), None)
    later = define_only(spec)
    if later:
        # virt-install always boots an installer; define-only is an import with
        # the install media left in the drive, the disk first in the boot order.
        argv += ["--install", "no_install=yes"]
        if src.kind in ("iso", "cdrom") and media is not None:
            argv += ["--boot", "hd,cdrom"]
        elif src.kind == "pxe":
            argv += ["--boot", "hd,network"]
    elif src.kind in ("iso", "cdrom"):
        argv += ["--cdrom", (media.path if media is not None else None) or src.iso or src.cdrom or ""]
    elif src.kind == "url":
        argv += ["--location", src.url or ""]
        extra = install_kernel_args(spec, os)
        user = src.kernel_args.strip()
        ks_arg = kickstart_kernel_arg(spec)
        if ks_arg:
            argv += ["--initrd-inject", "ks.cfg"]
            if not _KS_ARG_RE.search(user):
                user = f"{user} {ks_arg}".strip()
        if user:
            argv += ["--extra-args", user]
        elif extra and kernel_url_arg(spec, os) is None:
            argv += ["--extra-args", extra]
    elif src.kind == "pxe":
        argv += ["--pxe"]
    elif src.kind in ("import", "cloud"):
        argv += ["--import"]
    else:
        argv += ["--install", "no_install=yes"]

    # disks
    planned = plan_disks(spec)
    hard = [d for d in (disks or []) if d.device != "cdrom"]
    if len(hard) != len(planned):
        hard = [d for d in offline_disks(spec) if d.device != "cdrom"]
    for d, rd in zip(planned, hard):
        opts = []
        if d.mode == "new":
            opts.append(_kv("path", rd.path) if rd.path else _kv("pool", d.pool))
            if d.size:
                opts.append(f"size={_gib(d.size)}")
            opts.append(f"format={d.format}")
            if d.backing:
                opts.append(_kv("backing_store", rd.backing or d.backing))
            else:
                opts.append(f"sparse={'no' if d.provisioning == 'thick' else 'yes'}")
        elif is_volume_ref(d.path):
            opts.append(_kv("vol", d.path))
        else:
            opts.append(_kv("path", rd.path or d.path or ""))
        opts.append(f"bus={d.bus}")
        if d.cache:
            opts.append(f"cache={d.cache}")
        if d.readonly:
            opts.append("readonly=on")
        argv += ["--disk", ",".join(opts)]
    if later and src.kind in ("iso", "cdrom") and media is not None and media.path:
        argv += ["--disk", f"{_kv('path', media.path)},device=cdrom,bus={spec.cdrom_bus}"]
    if kickstart_delivery(spec) == "oemdrv":
        argv += ["--disk", f"{_kv('path', oemdrv or default_oemdrv_path(spec))},device=cdrom,"
                           f"bus={spec.cdrom_bus},readonly=on"]
    if not planned and not later:
        argv += ["--disk", "none"]

    # network
    nics = plan_nics(spec)
    for nic in nics:
        if nic.kind == "network":
            opt = _kv("network", nic.source)
        elif nic.kind == "bridge":
            opt = _kv("bridge", nic.source)
        else:
            opt = f"type=direct,{_kv('source', nic.source)},source_mode={nic.mode}"
        opt += f",model={nic.model or 'virtio'}"
        if nic.mac:
            opt += f",mac={nic.mac.lower()}"
        argv += ["--network", opt]
    if not nics:
        argv += ["--network", "none"]

    if spec.graphics == "none":
        argv += ["--graphics", "none"]
    else:
        argv += ["--graphics", f"{spec.graphics},listen={spec.graphics_listen or '127.0.0.1'}"]
    if spec.serial_console:
        argv += ["--console", "pty,target.type=serial"]
    else:
        argv += ["--serial", "none", "--console", "none"]
    if spec.tablet:
        argv += ["--input", "tablet,bus=usb"]
    if spec.autostart:
        argv += ["--autostart"]
    if not spec.start_install:
        argv += ["--noreboot"]  # with no install phase: define, do not start
    argv += ["--noautoconsole"]
    return argv


def virt_install_cmdline(spec: VmSpec, disks: Sequence[ResolvedDisk] | None = None, *, os: Any = None,
                         uri: str | None = None, oemdrv: str | None = None) -> str:
    """The same, shell-quoted on one line."""
    return shlex.join(virt_install_command(spec, disks, os=os, uri=uri, oemdrv=oemdrv))


# ---------------------------------------------------------------------------
# back from XML: vmtui export
# ---------------------------------------------------------------------------


def _short_id_from_uri(uri: str) -> str | None:
    """``http://debian.org/debian/12`` -> ``debian12`` (osinfo's usual pattern)."""
    m = re.match(r"https?://[^/]+/(.+)$", uri or "")
    if not m:
        return None
    parts = [p for p in m.group(1).split("/") if p]
    if len(parts) >= 2:
        return parts[-2] + parts[-1]
    return parts[0] if parts else None


def _mib(el: ET.Element | None) -> int | None:
    if el is None or not (el.text or "").strip():
        return None
    from .domxml import parse_memory

    kib = parse_memory(el.text, el.get("unit"))
    return max(1, math.ceil(kib / 1024))


def _yes(value: str | None) -> bool:
    return (value or "").lower() in ("yes", "on", "true", "1")


def spec_from_domain_xml(xml: str, *, osdb: Any = None, keep_macs: bool = False) -> VmSpec:
    """A VmSpec describing an existing domain (for ``vmtui export``).

    Disks come back as ``mode: existing`` with their paths;
    :func:`vmtui.core.installer.export_spec` turns managed volumes into
    ``mode: new`` disks of the same size, format and provisioning. MAC
    addresses are dropped unless ``keep_macs`` (a copy must not reuse them).
    The install source comes from vmtui's metadata when vmtui created the
    domain; otherwise a CD-ROM with media becomes an ``iso`` source and
    anything else ``none``. CD-ROMs other than the install one are not kept.
    """
    from .domxml import DomainXMLError

    try:
        root = ET.fromstring(xml)
    except ET.ParseError as err:
        raise DomainXMLError(f"malformed domain XML: {err}") from None
    if root.tag != "domain":
        raise DomainXMLError(f"not a libvirt domain XML: root element is <{root.tag}>")
    spec = VmSpec(name=(root.findtext("name") or "").strip())
    spec.title = root.findtext("title") or ""
    spec.description = root.findtext("description") or ""
    spec.virt_type = "kvm" if root.get("type") == "kvm" else "qemu"

    # metadata
    os_short = None
    install: InstallSource | None = None
    meta = root.find("metadata")
    if meta is not None:
        ours = meta.find(f"{{{NS_VMTUI}}}vmtui")
        if ours is not None:
            os_el = ours.find(f"{{{NS_VMTUI}}}os")
            if os_el is not None and os_el.get("id"):
                os_short = os_el.get("id")
            inst = ours.find(f"{{{NS_VMTUI}}}install")
            if inst is not None and inst.get("kind"):
                install = InstallSource(kind=inst.get("kind"))
                for key in ("iso", "cdrom", "url", "image", "network"):
                    if inst.get(key):
                        setattr(install, key, inst.get(key))
                install.kernel_args = inst.get("kernel_args") or ""
        lo = meta.find(f"{{{NS_LIBOSINFO}}}libosinfo/{{{NS_LIBOSINFO}}}os")
        if os_short is None and lo is not None and lo.get("id"):
            found = osdb.get(lo.get("id")) if osdb is not None else None
            os_short = getattr(found, "short_id", None) or _short_id_from_uri(lo.get("id"))
    spec.os = os_short or "generic"

    # memory, CPUs
    maximum = _mib(root.find("memory"))
    current = _mib(root.find("currentMemory")) or maximum
    if current:
        spec.memory_mib = current
    if maximum and maximum != current:
        spec.max_memory_mib = maximum
    vcpu = root.find("vcpu")
    if vcpu is not None:
        text = vcpu.get("current") or vcpu.text or "1"
        spec.vcpus = int(text.strip()) if text.strip().isdigit() else 1
    cpu = root.find("cpu")
    if cpu is not None:
        mode = cpu.get("mode") or ("custom" if cpu.find("model") is not None else None)
        if mode in ("host-passthrough", "host-model", "custom"):
            spec.cpu_mode = mode
        elif mode == "maximum":
            spec.cpu_mode = "host-model"
        if spec.cpu_mode == "custom":
            spec.cpu_model = (cpu.findtext("model") or "").strip() or None
        topo = cpu.find("topology")
        if topo is not None:
            for key in ("sockets", "cores", "threads"):
                value = topo.get(key)
                if value and value.isdigit():
                    setattr(spec, key, int(value))
    elif spec.virt_type == "qemu":
        spec.cpu_mode = "host-model"

    # os / firmware
    os_el = root.find("os")
    if os_el is not None:
        type_el = os_el.find("type")
        if type_el is not None:
            spec.arch = type_el.get("arch") or spec.arch
            machine = type_el.get("machine") or ""
            spec.machine = "q35" if "q35" in machine else "pc"
        loader = os_el.find("loader")
        if os_el.get("firmware") == "efi" or (loader is not None and (loader.get("type") == "pflash"
                                                                       or "efi" in (loader.text or "").lower()
                                                                       or "ovmf" in (loader.text or "").lower())):
            spec.firmware = "uefi"
        secure = False
        fw = os_el.find("firmware")
        if fw is not None:
            for feat in fw.findall("feature"):
                if feat.get("name") == "secure-boot" and _yes(feat.get("enabled")):
                    secure = True
        if loader is not None and _yes(loader.get("secure")):
            secure = True
        spec.secure_boot = spec.firmware == "uefi" and secure

    # devices
    devices = root.find("devices")
    disks: list[DiskSpec] = []
    nics: list[NicSpec] = []
    cdrom_media: tuple[str, str] | None = None
    cdrom_bus = None
    graphics = "none"
    listen = "127.0.0.1"
    tablet = False
    serial = False
    if devices is not None:
        for el in devices.findall("disk"):
            device = el.get("device") or "disk"
            target = el.find("target")
            bus = target.get("bus") if target is not None else None
            src = el.find("source")
            path = None
            if src is not None:
                path = src.get("file") or src.get("dev")
                if path is None and src.get("pool") and src.get("volume"):
                    path = f"{src.get('pool')}/{src.get('volume')}"
            if device == "cdrom":
                if cdrom_bus is None and bus in ("sata", "ide", "scsi"):
                    cdrom_bus = bus
                if path and cdrom_media is None:
                    cdrom_media = (path, el.get("type") or "file")
                continue
            if device != "disk" or not path:
                continue
            driver = el.find("driver")
            fmt = driver.get("type") if driver is not None else None
            d = DiskSpec(mode="existing", path=path,
                         bus=bus if bus in ("virtio", "sata", "scsi", "ide") else "virtio",
                         format=fmt if fmt in ("qcow2", "raw") else "raw",
                         cache=driver.get("cache") if driver is not None else None,
                         readonly=el.find("readonly") is not None)
            disks.append(d)
        for el in devices.findall("interface"):
            kind = {"network": "network", "bridge": "bridge", "direct": "macvtap"}.get(el.get("type") or "")
            if kind is None:
                continue
            src = el.find("source")
            nic = NicSpec(kind=kind)
            if src is not None:
                nic.source = (src.get("network") if kind == "network" else
                              src.get("bridge") if kind == "bridge" else src.get("dev")) or nic.source
                if kind == "macvtap" and src.get("mode") in ("bridge", "vepa", "private", "passthrough"):
                    nic.mode = src.get("mode")
            model = el.find("model")
            if model is not None and model.get("type"):
                nic.model = model.get("type")
            mac = el.find("mac")
            if keep_macs and mac is not None:
                nic.mac = mac.get("address")
            nics.append(nic)
        for el in devices.findall("graphics"):
            if el.get("type") in ("vnc", "spice"):
                graphics = el.get("type")
                lis = el.find("listen")
                addr = (lis.get("address") if lis is not None else None) or el.get("listen")
                if addr:
                    listen = addr
                break
        tablet = any(el.get("type") == "tablet" for el in devices.findall("input"))
        serial = devices.find("serial") is not None or devices.find("console") is not None
    spec.disks = disks
    spec.nics = nics
    spec.cdrom_bus = cdrom_bus or ("sata" if spec.machine == "q35" else "ide")
    spec.graphics = graphics
    spec.graphics_listen = listen
    spec.tablet = tablet
    spec.serial_console = serial

    if install is None:
        if cdrom_media is not None:
            path, dtype = cdrom_media
            install = InstallSource(kind="cdrom", cdrom=path) if dtype == "block" else \
                InstallSource(kind="iso", iso=path)
        else:
            install = InstallSource(kind="none")
    spec.install = install
    if install.kind == "import" and install.image:
        spec.disks = [d for d in spec.disks if d.path != install.image]
    return spec
