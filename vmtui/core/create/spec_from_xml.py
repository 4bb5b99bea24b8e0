"""A VmSpec read back from an existing domain's XML (``vmtui export``), through
the domain model, so firmware, Secure Boot and the OS are what the details
screen says too."""

from __future__ import annotations

import math
from typing import Any

from ..xml.domain_model import Domain
from .vmspec import DiskSpec, InstallSource, NicSpec, VmSpec


def spec_from_domain_xml(xml: str, *, osdb: Any = None, keep_macs: bool = False) -> VmSpec:
    """A VmSpec describing an existing domain (for ``vmtui export``).

    Disks come back as ``mode: existing`` with their paths;
    :func:`vmtui.core.create.installer.export_spec` turns managed volumes into
    ``mode: new`` disks of the same size, format and provisioning. MAC
    addresses are dropped unless ``keep_macs`` (a copy must not reuse them).
    The install source comes from vmtui's metadata when vmtui created the
    domain; otherwise a CD-ROM with media becomes an ``iso`` source and
    anything else ``none``. CD-ROMs other than the install one are not kept.
    Firmware and Secure Boot follow :class:`vmtui.core.xml.domain_model.OS`'s rules.
    """
    dom = Domain.parse(xml, register=False)
    spec = VmSpec(name=dom.name or "")
    spec.title = dom.title or ""
    spec.description = dom.description or ""
    spec.virt_type = "kvm" if dom.type == "kvm" else "qemu"

    # metadata
    install: InstallSource | None = None
    ours = dom.vmtui
    if ours.install_kind:
        install = InstallSource(kind=ours.install_kind)
        for key in ("iso", "cdrom", "url", "image", "network"):
            value = getattr(ours, f"install_{key}")
            if value:
                setattr(install, key, value)
        install.kernel_args = ours.install_kernel_args or ""
    spec.os = dom.os_short_id(osdb) or "generic"

    # memory, CPUs
    maximum = _mib(dom.memory_kib)
    current = _mib(dom.current_memory_kib) or maximum
    if current:
        spec.memory_mib = current
    if maximum and maximum != current:
        spec.max_memory_mib = maximum
    if dom.vcpus is not None or dom.vcpus_current is not None:
        spec.vcpus = max(1, dom.vcpus_online)
    cpu = dom.cpu
    if cpu.exists:
        mode = cpu.effective_mode
        if mode in ("host-passthrough", "host-model", "custom"):
            spec.cpu_mode = mode
        elif mode == "maximum":
            spec.cpu_mode = "host-model"
        if spec.cpu_mode == "custom":
            spec.cpu_model = cpu.model or None
        for key in ("sockets", "cores", "threads"):
            value = getattr(cpu, key)
            if value is not None and value > 0:
                setattr(spec, key, value)
    elif spec.virt_type == "qemu":
        spec.cpu_mode = "host-model"

    # os / firmware
    os_m = dom.os
    if os_m.exists:
        spec.arch = os_m.arch or spec.arch
        if os_m.type is not None:
            spec.machine = "q35" if "q35" in (os_m.machine or "") else "pc"
        if os_m.is_uefi:
            spec.firmware = "uefi"
        spec.secure_boot = os_m.secure_boot

    # devices
    devices = dom.devices
    disks: list[DiskSpec] = []
    nics: list[NicSpec] = []
    cdrom_media: tuple[str, str] | None = None
    cdrom_bus = None
    graphics = "none"
    listen = "127.0.0.1"
    seed_paths = _seed_paths(dom)
    for disk in devices.disks:
        bus = disk.target_bus
        path = disk.location
        if path and path in seed_paths:
            continue  # the cloud-init seed (its documents are not in the XML)
        if disk.device_kind == "cdrom":
            if cdrom_bus is None and bus in ("sata", "ide", "scsi"):
                cdrom_bus = bus
            if path and cdrom_media is None:
                cdrom_media = (path, disk.kind)
            continue
        if disk.device_kind != "disk" or not path:
            continue
        fmt = disk.driver_type
        disks.append(DiskSpec(mode="existing", path=path,
                              bus=bus if bus in ("virtio", "sata", "scsi", "ide") else "virtio",
                              format=fmt if fmt in ("qcow2", "raw") else "raw",
                              cache=disk.driver_cache, readonly=disk.readonly))
    for iface in devices.interfaces:
        kind = iface.kind
        if kind is None:
            continue
        nic = NicSpec(kind=kind)
        nic.source = iface.source or nic.source
        if kind == "macvtap" and iface.source_mode in ("bridge", "vepa", "private", "passthrough"):
            nic.mode = iface.source_mode
        if iface.model:
            nic.model = iface.model
        if keep_macs and iface.mac:
            nic.mac = iface.mac
        nics.append(nic)
    for g in devices.graphics:
        if g.type in ("vnc", "spice"):
            graphics = g.type
            lis = g.first_listen
            addr = (lis.address if lis is not None else None) or g.listen_attr
            if addr:
                listen = addr
            break
    spec.disks = disks
    spec.nics = nics
    spec.cdrom_bus = cdrom_bus or ("sata" if spec.machine == "q35" else "ide")
    spec.graphics = graphics
    spec.graphics_listen = listen
    spec.tablet = any(i.type == "tablet" for i in devices.inputs)
    spec.serial_console = bool(devices.serials) or bool(devices.consoles)
    spec.guest_agent = devices.guest_agent is not None

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


def _seed_paths(dom: Domain) -> set[str]:
    """Where the domain's cloud-init seed is: vmtui's seed record, and
    read-only devices of a ``<name>-cidata.iso`` volume."""
    from ..xml.ownmeta import NS_SEED

    out = set()
    rec = dom.metadata.get(NS_SEED)
    if rec is not None and rec.get("path"):
        out.add(rec.get("path"))
    for disk in dom.devices.disks:
        where = disk.location or ""
        if disk.readonly and where.endswith("-cidata.iso"):
            out.add(where)
    return out


def _mib(kib: int | None) -> int | None:
    return None if kib is None else max(1, math.ceil(kib / 1024))
