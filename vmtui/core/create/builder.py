"""From a VmSpec to libvirt domain XML: the disks and NICs planned (default
volume names, target devs, install media, kernel arguments), then the
domain built. The equivalent virt-install line is made by
:mod:`.virt_install`, the way back (a spec from a domain) by
:mod:`.spec_from_xml`.

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

A cloud image's overlay names its backing chain in the XML, each base layer
with ``<seclabel model='dac' relabel='no'/>``: libvirt must not change the
owner of a base image other VMs share (see
:mod:`vmtui.core.storage.images`). A spec with ``install.cloud_init`` gets
its NoCloud seed in the definition (:func:`seed_bus`: a read-only virtio disk
next to a virtio boot disk, else a CD-ROM on the boot disk's bus), with
vmtui's seed record in ``<metadata>``.

UUID: the installer generates one and passes it to both phases, so the
transient install run (``createXML``) and the persistent definition
(``defineXML``) are the same domain. Without a ``uuid`` argument no
``<uuid>`` is written (libvirt generates one; used for previews).

Everything is built with ElementTree; names, titles and paths with XML
special characters or any Unicode go through it safely.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, replace
from typing import Any, Literal, Sequence

from ..xml.domain_model import (
    BUS_PREFIX,
    NS_LIBOSINFO,
    NS_VMTUI,
    Channel,
    Console,
    Controller,
    Disk,
    Domain,
    Graphics,
    Input,
    Interface,
    MemBalloon,
    Rng,
    Serial,
    Timer,
    Video,
    disk_target,
)
from .vmspec import SEED_BUSES, DiskSpec, NicSpec, VmSpec

ET.register_namespace("vmtui", NS_VMTUI)
ET.register_namespace("libosinfo", NS_LIBOSINFO)

Phase = Literal["install", "final"]

#: Source kinds that boot an installer first (install XML + final XML).
INSTALL_PHASE_KINDS = ("iso", "cdrom", "url", "pxe")
#: Free pcie-root-ports left on q35 for hot-plugging disks and NICs later.
SPARE_PCIE_PORTS = 4
#: Default pool target path, for previews that cannot ask libvirt.
DEFAULT_POOL_PATHS = {"default": "/var/lib/libvirt/images"}


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
    #: (path, format) of each layer below the overlay, top first, as probed;
    #: written into the XML with relabel='no' (None: not probed, left to libvirt)
    backing_chain: list[tuple[str, str]] | None = None

    @property
    def backing_format(self) -> str | None:
        return self.backing_chain[0][1] if self.backing_chain else None


@dataclass
class SeedPlan:
    """Where the cloud-init seed ISO of a new VM is (or will be uploaded)."""

    path: str
    pool: str
    volume: str


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


class TargetNames:
    """Hands out target dev names per bus prefix, in device order, for a new
    domain (a disk added to an existing one: :func:`vmtui.core.storage.disks.next_target`)."""

    def __init__(self) -> None:
        self.used: dict[str, int] = {}

    def next(self, bus: str) -> str:
        prefix = BUS_PREFIX.get(bus, "sd")
        n = self.used.get(prefix, 0)
        self.used[prefix] = n + 1
        return disk_target(prefix, n)


def disk_targets(spec: VmSpec) -> list[str]:
    """The target devs (vda, sda ...) the spec's disks get, in order: the
    names a kickstart may use for them."""
    targets = TargetNames()
    return [targets.next(d.bus) for d in (plan_disks(spec) if spec.name else spec.disks)]


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
    if ks_arg and not KS_ARG_RE.search(args):
        parts.append(ks_arg)
    return " ".join(parts)


KS_ARG_RE = re.compile(r"(^|\s)(inst\.)?ks=")  # the user already gave a kickstart location


def kickstart_delivery(spec: VmSpec) -> str | None:
    """``"oemdrv"`` / ``"initrd"`` when the spec has a kickstart its source can take."""
    from ..provision.kickstart import DELIVERY_FOR_KIND

    if not spec.install.kickstart:
        return None
    return DELIVERY_FOR_KIND.get(spec.install.kind)


def kickstart_kernel_arg(spec: VmSpec) -> str | None:
    from ..provision.kickstart import INITRD, KICKSTART_INITRD_ARG

    return KICKSTART_INITRD_ARG if kickstart_delivery(spec) == INITRD else None


def default_oemdrv_path(spec: VmSpec, pool_dir: str | None = None) -> str:
    """Where the OEMDRV volume would be, for previews (the installer knows the real path)."""
    from ..provision.kickstart import oemdrv_volume_name

    base = (pool_dir or DEFAULT_POOL_PATHS["default"]).rstrip("/")
    return f"{base}/{oemdrv_volume_name(spec.name)}"


def seed_bus(spec: VmSpec) -> str:
    """Where the cloud-init seed goes: ``install.cloud_init.seed_bus`` when
    given, else next to the boot disk -- a kernel that reads its root disk
    reads a device on the same bus: a read-only virtio disk beside a virtio
    disk (cloud kernels such as Debian's have no AHCI driver, so a SATA CD-ROM
    on q35 would be invisible), a CD-ROM on SCSI, SATA or IDE otherwise; with
    no disk, a CD-ROM on ``cdrom_bus``."""
    ci = spec.install.cloud_init or {}
    chosen = ci.get("seed_bus") if isinstance(ci, dict) else None
    if chosen in SEED_BUSES:
        return chosen
    planned = plan_disks(spec) if spec.name else spec.disks
    first = planned[0].bus if planned else spec.cdrom_bus
    return first if first in SEED_BUSES else spec.cdrom_bus


def seed_device(bus: str) -> str:
    """``disk`` for a virtio seed, else ``cdrom``."""
    return "disk" if bus == "virtio" else "cdrom"


def default_seed_plan(spec: VmSpec, pool: str | None = None, pool_dir: str | None = None) -> SeedPlan:
    """Where the seed would be, for previews (the installer knows the real path)."""
    from ..provision.seed import seed_volume_name

    if pool is None:
        pool = next((d.pool for d in spec.disks if d.mode == "new" and d.pool), "default")
    base = (pool_dir or DEFAULT_POOL_PATHS.get(pool) or f"/var/lib/libvirt/images/{pool}").rstrip("/")
    volume = seed_volume_name(spec.name)
    return SeedPlan(f"{base}/{volume}", pool, volume)


# ---------------------------------------------------------------------------
# the domain XML
# ---------------------------------------------------------------------------


def _metadata(dom: Domain, spec: VmSpec, os: Any) -> None:
    os_id = _os_id(os)
    if os_id:
        dom.libosinfo_id = os_id
    ours = dom.vmtui
    ours.os_id = spec.os or "generic"
    src = spec.install
    ours.install_kind = src.kind
    for key in ("iso", "cdrom", "url", "image", "network"):
        value = getattr(src, key)
        if value:
            setattr(ours, f"install_{key}", value)
    if src.kernel_args:
        ours.install_kernel_args = src.kernel_args


def _os_block(dom: Domain, spec: VmSpec, caps: Any, kernel: str | None,
              initrd: str | None, cmdline: str | None, boot: list[str]) -> None:
    os_m = dom.os
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
        os_m.firmware = "efi"
    os_m.type = "hvm"
    os_m.arch = spec.arch
    os_m.machine = spec.machine
    if uefi and autoselect:
        # both features, always: never a Secure Boot build by accident
        os_m.enrolled_keys_feature = spec.secure_boot
        os_m.secure_boot_feature = spec.secure_boot
    elif uefi and loader is not None:
        # no <nvram>: libvirt makes the VM's own copy of the matching variable store
        os_m.loader = loader.path
        os_m.loader_readonly = True
        os_m.loader_type = "pflash"
        os_m.loader_secure = spec.secure_boot
    if kernel:
        os_m.kernel = kernel
        if initrd:
            os_m.initrd = initrd
        if cmdline:
            os_m.cmdline = cmdline
    os_m.boot_devices = boot


def _features(dom: Domain, spec: VmSpec, os: Any) -> None:
    feats = dom.features
    feats.acpi = True
    feats.apic = True
    if _is_windows(os) and spec.virt_type == "kvm":
        feats.hyperv_mode = "custom"
        feats.hyperv_relaxed = True
        feats.hyperv_vapic = True
        feats.hyperv_spinlocks = True
        feats.hyperv_spinlocks_retries = 8191
    if spec.firmware == "uefi" and spec.secure_boot:
        feats.smm = True


def _cpu(dom: Domain, spec: VmSpec) -> None:
    topo = topology(spec)
    cpu = dom.cpu
    if spec.cpu_mode == "custom":
        cpu.mode, cpu.match, cpu.check = "custom", "exact", "partial"
        cpu.model = spec.cpu_model or "qemu64"
        cpu.model_fallback = "allow"
    else:
        cpu.mode = spec.cpu_mode
        if spec.cpu_mode == "host-passthrough":
            cpu.check = "none"
            cpu.migratable = True
    if topo is not None:
        cpu.sockets, cpu.dies, cpu.cores, cpu.threads = topo[0], 1, topo[1], topo[2]


def _clock(dom: Domain, spec: VmSpec, os: Any) -> None:
    clock = dom.clock
    clock.offset = "localtime" if _is_windows(os) else "utc"
    clock.timers.add(Timer.new("rtc", tickpolicy="catchup"))
    clock.timers.add(Timer.new("pit", tickpolicy="delay"))
    clock.timers.add(Timer.new("hpet", present=False))
    if _is_windows(os) and spec.virt_type == "kvm":
        clock.timers.add(Timer.new("hypervclock", present=True))


def _disk(rd: ResolvedDisk, device: str, bus: str, target: str, *, cache: str | None = None,
          readonly: bool = False, with_media: bool = True) -> Disk:
    disk = Disk.new(rd.path if with_media else None, target, bus=bus, device=device,
                    fmt=rd.format if rd.format in ("qcow2", "raw") else "raw",
                    source_type=rd.type if rd.type in ("file", "block") else "file",
                    readonly=readonly, cache=cache)
    if with_media and rd.backing_chain:
        # libvirt leaves the base images' owner alone; QEMU reads them as they are
        disk.set_backing_chain(rd.backing_chain, relabel=False)
    return disk


def _nic(nic: NicSpec) -> Interface:
    try:
        return Interface.new(nic.kind, nic.source, mac=nic.mac, model=nic.model or "virtio", mode=nic.mode)
    except ValueError:
        raise BuildError(f"unknown NIC kind {nic.kind!r}") from None


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


def _seed_record(dom: Domain, spec: VmSpec, seed: SeedPlan) -> None:
    """vmtui's record of the seed (what removing it later goes by)."""
    from ..provision.seed import NS_PREFIX, NS_SEED, SeedRecord, seed_metadata_element

    detach = bool((spec.install.cloud_init or {}).get("detach_after_first_boot"))
    dom.set_metadata(NS_SEED, NS_PREFIX, seed_metadata_element(SeedRecord(seed.path, seed.pool, seed.volume, detach)))


def define_only(spec: VmSpec) -> bool:
    """The VM is defined, not installed now: its definition must install on first start."""
    return not spec.start_install and has_install_phase(spec)


def build_domain_xml(spec: VmSpec, caps: Any, disks: Sequence[ResolvedDisk], *, phase: Phase = "final",
                     os: Any = None, install_kernel: str | None = None, install_initrd: str | None = None,
                     install_cmdline: str | None = None, uuid: str | None = None,
                     pretty: bool = True, install_oemdrv: str | None = None,
                     seed: SeedPlan | None = None) -> str:
    """The domain XML of ``spec`` for one phase.

    ``caps`` is a :class:`vmtui.core.host.domcaps.HostCaps` (or None: emulator
    left to libvirt, UEFI through ``<os firmware='efi'>``). ``disks`` come
    from the installer (or :func:`offline_disks`). ``os`` is the
    :class:`vmtui.core.create.osinfo.OsInfo` of ``spec.os`` (None: generic).
    ``install_kernel``/``install_initrd`` are the host paths of the
    installer's kernel and initrd (``url`` installs); ``install_cmdline``
    overrides :func:`install_kernel_args`. ``install_oemdrv`` is the host
    path of the OEMDRV ISO holding the kickstart (iso/cdrom installs with
    ``spec.install.kickstart``): a second read-only CD-ROM in the install
    XML only -- or in the definition when it is defined only, to install on
    its first start. Without it a preview path is used. ``seed`` is where
    the cloud-init seed ISO is (specs with ``install.cloud_init``; without
    it a preview path is used): attached on :func:`seed_bus` after the other
    disks, and recorded in vmtui's seed metadata.
    """
    if phase not in ("install", "final"):
        raise BuildError(f"phase must be 'install' or 'final', not {phase!r}")
    planned, hard, media = _split_disks(spec, disks)
    src = spec.install
    installing = phase == "install" and has_install_phase(spec)

    dom = Domain.new(spec.virt_type, spec.name)
    dom.uuid = uuid or None
    dom.title = spec.title or None
    dom.description = spec.description or None
    _metadata(dom, spec, os)
    dom.memory_kib = spec.max_memory * 1024
    dom.current_memory_kib = spec.memory_mib * 1024
    dom.vcpus = spec.vcpus
    dom.vcpu_placement = "static"

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
    _os_block(dom, spec, caps, kernel, initrd, cmdline, boot)
    _features(dom, spec, os)
    _cpu(dom, spec)
    _clock(dom, spec, os)
    dom.on_poweroff = "destroy"
    dom.on_reboot = "destroy" if installing else "restart"
    dom.on_crash = "destroy"
    dom.pm_suspend_to_mem = False
    dom.pm_suspend_to_disk = False

    devices = dom.devices
    emulator = caps.emulator_for(spec.virt_type, spec.machine) if caps is not None else None
    devices.emulator = emulator or None
    q35 = spec.machine == "q35"
    pcie_devices = 0
    targets = TargetNames()
    scsi = False
    for d, rd in zip(planned, hard):
        devices.append(_disk(rd, "disk", d.bus, targets.next(d.bus), cache=d.cache, readonly=d.readonly))
        scsi = scsi or d.bus == "scsi"
        pcie_devices += d.bus == "virtio"
    if media is not None:
        keep_media = installing or later or _is_windows(os)
        devices.append(_disk(media, "cdrom", spec.cdrom_bus, targets.next(spec.cdrom_bus),
                             with_media=keep_media))
        scsi = scsi or spec.cdrom_bus == "scsi"
        if kickstart_delivery(spec) == "oemdrv" and (installing or later):
            oemdrv = ResolvedDisk(install_oemdrv or default_oemdrv_path(spec), "raw", device="cdrom")
            devices.append(_disk(oemdrv, "cdrom", spec.cdrom_bus, targets.next(spec.cdrom_bus)))
    if src.cloud_init:
        seed = seed or default_seed_plan(spec)
        bus = seed_bus(spec)
        devices.append(_disk(ResolvedDisk(seed.path, "raw", device=seed_device(bus)), seed_device(bus), bus,
                             targets.next(bus), readonly=True))
        scsi = scsi or bus == "scsi"
        pcie_devices += bus == "virtio"
        _seed_record(dom, spec, seed)
    if scsi:
        devices.append(Controller.new("scsi", 0, "virtio-scsi"))
        pcie_devices += 1
    if q35:
        devices.append(Controller.new("usb", 0, "qemu-xhci", ports=15))
        pcie_devices += 1
    for nic in plan_nics(spec):
        devices.append(_nic(nic))
        pcie_devices += 1
    if spec.serial_console:
        devices.append(Serial.new("pty", port=0))
        devices.append(Console.new("pty", target_type="serial", port=0))
    if spec.guest_agent:
        devices.append(Channel.guest_agent())
        pcie_devices += 1  # the virtio-serial controller libvirt adds for the channel
    if spec.graphics == "spice":
        devices.append(Channel.new("spicevmc", target_type="virtio", name="com.redhat.spice.0"))
    if spec.tablet:
        tablet = Input()
        tablet.type, tablet.bus = "tablet", "usb"
        devices.append(tablet)
    if spec.graphics in ("vnc", "spice"):
        devices.append(Graphics.new(spec.graphics, spec.graphics_listen or "127.0.0.1"))
        video = Video()
        if spec.graphics == "spice":
            model = "qxl"
        elif _virtio_ok(os):
            model = "virtio"
        else:
            model = "vga"
        video.model, video.heads, video.primary = model, 1, True
        devices.append(video)
    balloon = MemBalloon()
    if _virtio_ok(os):
        rng = Rng()
        rng.model, rng.backend, rng.backend_model = "virtio", "/dev/urandom", "random"
        devices.append(rng)
        balloon.model = "virtio"
        pcie_devices += 2
    else:
        balloon.model = "none"
    devices.append(balloon)
    if q35:
        # Root ports for the PCIe devices above plus spares for hot-plugging later.
        first = 0
        for _ in range(pcie_devices + SPARE_PCIE_PORTS):
            first += 1
            devices.append(Controller.new("pci", first, "pcie-root-port"))
    root = dom.element
    if pretty:
        ET.indent(root, "  ")
    # ElementTree's prefix table is global: make sure ours is still "vmtui"
    ET.register_namespace("vmtui", NS_VMTUI)
    return ET.tostring(root, encoding="unicode") + ("\n" if pretty else "")
