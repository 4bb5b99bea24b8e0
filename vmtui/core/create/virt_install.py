"""The ``virt-install`` command line equivalent to a VmSpec (shown by the
wizard's preview and ``vmtui create --dry-run``): the same disks, NICs,
firmware and install source the builder puts into the domain XML."""

from __future__ import annotations

import shlex
from decimal import Decimal, localcontext
from typing import Any, Sequence

from .builder import (
    KS_ARG_RE,
    ResolvedDisk,
    default_oemdrv_path,
    define_only,
    install_kernel_args,
    is_volume_ref,
    kernel_url_arg,
    kickstart_delivery,
    kickstart_kernel_arg,
    offline_disks,
    plan_disks,
    plan_nics,
    topology,
)
from .vmspec import VmSpec


def _gib(n: int) -> str:
    """Bytes as GiB, exactly: virt-install multiplies ``size=`` (a float, in
    GiB) by 1024³, and ``n / 2**30`` has a finite decimal expansion that a
    float holds exactly (64 MiB is ``0.0625``, never a rounded ``0.062``)."""
    with localcontext() as ctx:
        ctx.prec = 80
        text = format((Decimal(n) / (1 << 30)).normalize(), "f")
    return text


#: Characters virt-install's sub-option parser (posix shlex, split on commas)
#: treats specially: a value holding one is quoted as a whole.
_OPT_SPECIAL = frozenset(',"\'\\')


def _opt_value(value: str) -> str:
    """A virt-install sub-option value, as one value for virt-install's
    parser: double-quoted (``\\`` and ``"`` escaped) when it holds a comma,
    a quote or a backslash; newlines need nothing."""
    if _OPT_SPECIAL.intersection(value):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return value


def _kv(key: str, value: str) -> str:
    return f"{key}={_opt_value(value)}"


def osinfo_name(spec: VmSpec, os: Any = None) -> str:
    """What ``--osinfo`` gets: the spec's OS when ``os`` (its entry in the
    osinfo-db virt-install reads too) knows it, else ``generic`` -- the
    defaults vmtui's own XML falls back to for an OS it does not know; an
    unknown name would make virt-install refuse the whole line."""
    wanted = spec.os or "generic"
    if os is None:
        return "generic"
    known = set(getattr(os, "short_ids", ()) or ()) | {getattr(os, "short_id", None)}
    return wanted if wanted in known else "generic"


def virt_install_command(spec: VmSpec, disks: Sequence[ResolvedDisk] | None = None, *, os: Any = None,
                         uri: str | None = None, oemdrv: str | None = None) -> list[str]:
    """The equivalent ``virt-install`` command as an argument list.

    A kickstart shows as ``--initrd-inject ks.cfg`` plus ``inst.ks=file:/ks.cfg``
    in ``--extra-args`` (url installs; the kickstart saved as ks.cfg), or as a
    second CD-ROM ``--disk <oemdrv>,device=cdrom`` (iso/cdrom installs;
    ``oemdrv`` is its path). A cloud-init seed shows as ``--cloud-init
    user-data=user-data,meta-data=meta-data`` (the documents saved under
    those names)."""
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
    argv += ["--osinfo", osinfo_name(spec, os)]
    argv += ["--virt-type", spec.virt_type]
    if spec.arch != "x86_64":
        argv += ["--arch", spec.arch]
    argv += ["--machine", spec.machine]
    # one --boot: the firmware, then (define only) the boot order
    boot: list[str] = []
    if spec.firmware == "uefi":
        boot.append("uefi")
        if spec.secure_boot:
            boot += ["firmware.feature0.name=secure-boot", "firmware.feature0.enabled=yes",
                     "firmware.feature1.name=enrolled-keys", "firmware.feature1.enabled=yes"]
        else:  # as in the XML: never a Secure Boot build by accident
            boot += ["firmware.feature0.name=secure-boot", "firmware.feature0.enabled=no"]

    # install source
    media = next((d for d in (disks or []) if d.device == "cdrom"), None) \
        or next((d for d in offline_disks(spec) if d.device == "cdrom"), None)
    later = define_only(spec)
    if later:
        # virt-install always boots an installer; define-only is an import with
        # the install media left in the drive, the disk first in the boot order.
        if src.kind in ("iso", "cdrom") and media is not None:
            boot += ["hd", "cdrom"]
        elif src.kind == "pxe":
            boot += ["hd", "network"]
    if boot:
        argv += ["--boot", ",".join(boot)]
    if spec.secure_boot and spec.firmware == "uefi":
        argv += ["--features", "smm.state=on"]
    if later:
        argv += ["--install", "no_install=yes"]
    elif src.kind in ("iso", "cdrom"):
        argv += ["--cdrom", (media.path if media is not None else None) or src.iso or src.cdrom or ""]
    elif src.kind == "url":
        argv += ["--location", src.url or ""]
        extra = install_kernel_args(spec, os)
        user = src.kernel_args.strip()
        ks_arg = kickstart_kernel_arg(spec)
        if ks_arg:
            argv += ["--initrd-inject", "ks.cfg"]
            if not KS_ARG_RE.search(user):
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
    if src.cloud_init:
        # the documents saved under these names next to the command
        docs = ["user-data=user-data", "meta-data=meta-data"]
        if src.cloud_init.get("network_config"):
            docs.append("network-config=network-config")
        argv += ["--cloud-init", ",".join(docs)]

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
    elif spec.graphics != "none":
        # virt-install adds a USB tablet to any VM with a display and no input
        # device; the PS/2 mouse libvirt gives every x86 VM anyway says "none"
        argv += ["--input", "mouse,bus=ps2"]
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
