"""The rules a VM spec must follow, checked against a host: what the wizard
shows under its fields on every step and ``vmtui create`` checks before
creating anything (the YAML form itself is :mod:`.vmspec_yaml`'s job).

``validate_spec(spec, host=..., existing_names=..., pools=..., networks=...,
check_path=...)`` returns :class:`FieldError`\\ s keyed by the spec's field
paths (``disks[0].size``); ``severity`` "error" blocks creation, "warning"
does not. One function per section of the spec: name, resources (memory,
CPUs), platform (CPU model, virtualization, machine, firmware), install
source (with its cloud-init seed and kickstart), disks, NICs, display.
Anything the caller leaves None is not checked.

Nothing here talks to libvirt or imports Textual.
"""

from __future__ import annotations

import ipaddress
import os
import re
import stat
import unicodedata
from dataclasses import dataclass, field
from typing import Any, Callable, Collection, Mapping
from urllib.parse import urlsplit

from ..files import userfile
from ..provision import cloudinit, kickstart
from ..sizes import format_memory, format_size
from .builder import disk_targets, is_volume_ref, plan_disks
from .vmspec import SEED_BUSES, VmSpec

MIB = 1024 ** 2
#: Longest domain name we accept, in UTF-8 bytes (libvirt stores <name>.xml
#: and its NVRAM/log files under it; file names stop at 255 bytes).
MAX_NAME_BYTES = 200
URL_SCHEMES = ("http", "https", "ftp")
CACHE_MODES = ("default", "none", "writethrough", "writeback", "directsync", "unsafe")
MAX_IDE_DEVICES = 4


@dataclass
class FieldError:
    """One problem with one field of a spec (``field`` is a path like ``disks[0].size``)."""

    field: str
    message: str
    severity: str = "error"  # "error" blocks creation, "warning" does not
    line: int | None = None  # a line inside the field's text (kickstart), 1-based

    @property
    def is_error(self) -> bool:
        return self.severity == "error"

    def __str__(self) -> str:
        tag = "" if self.is_error else "warning: "
        return f"{tag}{self.field}: {self.message}" if self.field else f"{tag}{self.message}"


@dataclass
class PoolFacts:
    """What validation needs to know about one storage pool."""

    volumes: Collection[str] = ()
    available: int | None = None  # bytes free
    active: bool = True
    path: str | None = None


@dataclass
class ImageFacts:
    """What probing an image the spec builds on found
    (:func:`vmtui.core.create.installer.probe_images`): its format and
    virtual size, or ``problem`` (it could not be probed: no format is
    guessed); ``read_problem``: QEMU cannot read this shared base image as it
    is (vmtui does not let libvirt change its owner)."""

    format: str | None = None
    capacity: int | None = None
    path: str | None = None
    problem: str | None = None
    read_problem: str | None = None
    how: str = ""


def _pool_facts(value: Any) -> PoolFacts:
    if isinstance(value, PoolFacts):
        return value
    if isinstance(value, (set, frozenset, list, tuple)):
        return PoolFacts(volumes=value)
    return PoolFacts(volumes=getattr(value, "volumes", ()) or (), available=getattr(value, "available", None),
                     active=getattr(value, "active", True), path=getattr(value, "path", None))


def clip(text: str, limit: int = 200) -> str:
    """A text for a message, cut to ``limit`` characters."""
    return text if len(text) <= limit else text[:limit - 1] + "…"


PathChecker = Callable[[str, str], "str | None"]

_SAFE_NAME = re.compile(r"^[A-Za-z0-9._+-]+$")
_MAC = re.compile(r"^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$")


def name_problems(name: str) -> list[FieldError]:
    """libvirt's rules for domain names, plus virt-install's "not only digits".

    libvirt refuses '/' and newlines; '.'/'..' break its state directories;
    control characters, outer spaces and all-digit names (virsh takes them
    for domain IDs) are refused here too. Other characters -- spaces,
    Unicode, XML specials -- are allowed (ElementTree escapes them) but get a
    warning, since shells and virsh need them quoted.
    """
    out: list[FieldError] = []
    if not name or not name.strip():
        return [FieldError("name", "Enter a name for the VM")]
    if "/" in name:
        out.append(FieldError("name", "The name must not contain '/'"))
    if any(unicodedata.category(c) == "Cc" for c in name):
        out.append(FieldError("name", "The name must not contain control characters (newlines, tabs)"))
    if name in (".", ".."):
        out.append(FieldError("name", "The name must not be '.' or '..'"))
    if name != name.strip():
        out.append(FieldError("name", "The name must not start or end with a space"))
    if name.isdigit():
        out.append(FieldError("name", "The name must not be only digits (virsh would take it for an ID)"))
    if len(name.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
        out.append(FieldError("name", f"The name is too long (at most {MAX_NAME_BYTES} bytes)"))
    if not out and not _SAFE_NAME.match(name):
        out.append(FieldError("name", "Allowed, but spaces and special characters need quoting in shells "
                                      "and virsh: letters, digits, '.', '-', '_' are easiest", "warning"))
    return out


def validate_mac(mac: str) -> str | None:
    if not _MAC.match(mac or ""):
        return "Enter a MAC address like 52:54:00:12:34:56"
    if int(mac[:2], 16) & 1:
        return "This is a multicast address: the first byte must be even (e.g. 52:54:00:...)"
    if mac.replace(":", "") == "0" * 12:
        return "00:00:00:00:00:00 is not a usable MAC address"
    return None


def validate_url(url: str) -> str | None:
    if not url or not url.strip():
        return "Enter the URL of the install tree"
    if url != url.strip() or any(c.isspace() for c in url):
        return "The URL must not contain spaces"
    try:
        parts = urlsplit(url)
    except ValueError as err:
        if "[" in url and "]" not in url.split("//", 1)[-1].split("/", 1)[0]:
            return "The URL's host has a '[' without its ']' (an IPv6 address is written http://[::1]/)"
        return f"The URL is not valid: {err}"
    if parts.scheme.lower() not in URL_SCHEMES:
        shown = parts.scheme or "no scheme"
        return f"Unsupported URL ({shown}): use http://, https:// or ftp://"
    try:
        hostname, port = parts.hostname, parts.port
    except ValueError:
        shown = parts.netloc.rsplit(":", 1)[-1] if ":" in parts.netloc else parts.netloc
        return f"The port must be a number from 1 to 65535, not '{clip(shown, 20)}'"
    if not hostname:
        return "The URL has no host name"
    if port == 0:
        return "The port must be a number from 1 to 65535, not 0"
    if "[" in parts.netloc:
        try:
            ipaddress.IPv6Address(hostname.split("%", 1)[0])
        except ValueError:
            return f"'[{clip(hostname, 40)}]' is not an IPv6 address"
    return None


def local_path_checker(path: str, kind: str) -> str | None:
    """A ``check_path`` for local hosts: the file must exist (ISOs must be ISO 9660
    images, CD-ROMs block devices)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return f"No such file: {path}"
    except OSError as err:
        return f"Cannot read {path}: {err.strerror or err}"
    if kind == "iso":
        if stat.S_ISDIR(st.st_mode):
            return f"{path} is a directory, not an ISO image"
        if not (stat.S_ISREG(st.st_mode) or stat.S_ISBLK(st.st_mode)):
            return f"{path} is {userfile.describe_mode(st.st_mode)}, not an ISO image"
        from .osinfo import NotAnIsoError, read_iso_ids

        try:
            read_iso_ids(path)
        except NotAnIsoError:
            return f"{path} is not an ISO image (no ISO 9660 volume descriptor)"
        except OSError as err:
            return f"Cannot read {path}: {err.strerror or err}"
    elif kind == "cdrom":
        if not stat.S_ISBLK(st.st_mode):
            return f"{path} is not a CD-ROM device ({userfile.describe_mode(st.st_mode)}, not a block device)"
    else:
        if not (stat.S_ISREG(st.st_mode) or stat.S_ISBLK(st.st_mode)):
            return (f"{path} is not a disk image ({userfile.describe_mode(st.st_mode)}, "
                    "not a file or block device)")
    return None


# ---------------------------------------------------------------------------
# the spec, section by section
# ---------------------------------------------------------------------------


@dataclass
class _Findings:
    """The FieldErrors found so far, and what the host facts let us check."""

    pools: dict[str, PoolFacts] | None = None
    networks: Collection[str] | None = None
    interfaces: dict[str, str] | None = None  # host interface name -> kind ("bridge", "ethernet", "" unknown)
    check_path: PathChecker | None = None
    images: Mapping[str, ImageFacts] | None = None
    found: list[FieldError] = field(default_factory=list)

    def err(self, fld: str, msg: str, line: int | None = None) -> None:
        self.found.append(FieldError(fld, msg, line=line))

    def warn(self, fld: str, msg: str) -> None:
        self.found.append(FieldError(fld, msg, "warning"))

    def check_ref(self, fld: str, ref: str, kind: str) -> None:
        """A host path or ``pool/volume`` the spec names."""
        if is_volume_ref(ref):
            pool, vol = ref.split("/", 1)
            if self.pools is not None:
                facts = self.pools.get(pool)
                if facts is None:
                    self.err(fld, f"No storage pool named '{pool}'")
                elif vol not in facts.volumes:
                    self.err(fld, f"Pool '{pool}' has no volume named '{vol}'")
        elif not ref.startswith("/"):
            self.err(fld, "Give an absolute path on the host, or pool/volume")
        elif self.check_path is not None:
            problem = self.check_path(ref, kind)
            if problem:
                self.err(fld, problem)


def _interface_kinds(interfaces: Any) -> dict[str, str] | None:
    """Host interfaces as ``{name: kind}``: from a mapping, names, or
    objects with ``name`` and ``kind`` (:class:`vmtui.core.host.networks.HostInterface`).
    None or empty (the host's interfaces are not known): no check."""
    if not interfaces:
        return None
    if isinstance(interfaces, Mapping):
        return {str(k): str(v or "") for k, v in interfaces.items()}
    return {(i if isinstance(i, str) else i.name): ("" if isinstance(i, str) else (i.kind or ""))
            for i in interfaces}


def validate_spec(spec: VmSpec, *, host: Any = None, existing_names: Collection[str] = (),
                  pools: Mapping[str, Any] | None = None, networks: Collection[str] | None = None,
                  check_path: PathChecker | None = None, osinfo: Any = None, osdb: Any = None,
                  images: Mapping[str, ImageFacts] | None = None, interfaces: Any = None) -> list[FieldError]:
    """Every problem with ``spec``, as FieldErrors keyed by YAML field path.

    ``host``: a :class:`vmtui.core.host.domcaps.HostCaps` or
    :class:`vmtui.core.connection.rows.HostInfo` (``cpus``, ``memory_total_kib``;
    HostCaps adds KVM/UEFI/machine facts). ``existing_names``: domains on the
    host. ``pools``: pool name -> :class:`PoolFacts` (or the volume names).
    ``networks``: virtual network names. ``check_path(path, kind)`` returns
    a message for a bad host path (kind: iso, cdrom, image, disk, backing);
    pass :func:`local_path_checker` when the host is this machine.
    ``osinfo``: the OsInfo of ``spec.os`` for its minimum-resource warnings.
    ``osdb``: the OS catalogue; an ``os`` it does not know is a warning naming
    the closest ids it has. ``images``: reference -> :class:`ImageFacts` of
    the images the spec builds on (cloud image, imported image, backing
    files). ``interfaces``: the host's interfaces (names, ``{name: kind}`` or
    HostInterfaces) a bridge or macvtap NIC must name.
    Anything left None is not checked.
    """
    out = _Findings(pools={k: _pool_facts(v) for k, v in pools.items()} if pools is not None else None,
                    networks=networks, interfaces=_interface_kinds(interfaces), check_path=check_path,
                    images=images)
    _check_name(spec, existing_names, out)
    _check_os(spec, osdb, out)
    _check_resources(spec, host, osinfo, out)
    _check_platform(spec, host, out)
    _check_install(spec, out)
    _check_disks(spec, out)
    _check_nics(spec, out)
    _check_display(spec, out)
    return out.found


def _check_name(spec: VmSpec, existing_names: Collection[str], out: _Findings) -> None:
    out.found.extend(name_problems(spec.name))
    if spec.name and spec.name in set(existing_names):
        out.err("name", f"A VM named '{spec.name}' already exists on this host")
    if "\n" in spec.title or "\r" in spec.title:
        out.err("title", "The title must be a single line (use the description for more)")


def _check_os(spec: VmSpec, osdb: Any, out: _Findings) -> None:
    """An ``os`` id the host's osinfo-db does not know (too new for it, or a
    typo): a warning with the closest known ids; the VM gets generic values."""
    if osdb is None or not (spec.os or "").strip() or osdb.get(spec.os) is not None:
        return
    out.warn("os", osdb.unknown_id_message(spec.os))


def _check_resources(spec: VmSpec, host: Any, osinfo: Any, out: _Findings) -> None:
    """Memory and CPUs, against the host and the OS's minimums."""
    host_cpus = getattr(host, "cpus", None) if host is not None else None
    host_kib = getattr(host, "memory_total_kib", None) if host is not None else None
    if spec.memory_mib is None or spec.memory_mib < 1:
        out.err("memory", "Memory must be at least 1 MiB")
    elif host_kib and spec.memory_mib * 1024 > host_kib:
        out.err("memory", f"{format_memory(spec.memory_mib)} is more than the host's "
                          f"{format_memory(host_kib // 1024)} of memory")
    if spec.max_memory_mib is not None:
        if spec.max_memory_mib < (spec.memory_mib or 0):
            out.err("max_memory", "The maximum memory must not be less than the memory")
        elif host_kib and spec.max_memory_mib * 1024 > host_kib:
            out.err("max_memory", f"{format_memory(spec.max_memory_mib)} is more than the host's "
                                  f"{format_memory(host_kib // 1024)} of memory")
    if spec.vcpus is None or spec.vcpus < 1:
        out.err("vcpus", "At least 1 CPU")
    else:
        max_vcpus = getattr(host, "max_vcpus", None) if host is not None else None
        if max_vcpus and spec.vcpus > max_vcpus:
            out.err("vcpus", f"At most {max_vcpus} CPUs on this hypervisor")
        elif host_cpus and spec.vcpus > host_cpus:
            out.warn("vcpus", f"More virtual CPUs than the host has ({host_cpus}): slower, not faster")
        counts = [spec.sockets, spec.cores, spec.threads]
        if any(c is not None for c in counts):
            if any(c is not None and c < 1 for c in counts):
                out.err("sockets", "Sockets, cores and threads must be at least 1")
            elif all(c is not None for c in counts) and spec.sockets * spec.cores * spec.threads != spec.vcpus:
                out.err("sockets", f"{spec.sockets} sockets × {spec.cores} cores × {spec.threads} threads is "
                                   f"{spec.sockets * spec.cores * spec.threads}, not {spec.vcpus} CPUs")
            else:
                known = 1
                for c in counts:
                    known *= c or 1
                if spec.vcpus % known:
                    out.err("sockets", f"{spec.vcpus} CPUs cannot be split into this topology")
    if osinfo is not None:
        from .osinfo import check_resources

        for msg in check_resources(osinfo, spec.memory_mib, spec.vcpus, arch=spec.arch):
            out.warn("memory" if "memory" in msg else "vcpus", msg)


def _check_platform(spec: VmSpec, host: Any, out: _Findings) -> None:
    """CPU model, virtualization type, machine and firmware, against the host's capabilities."""
    if spec.cpu_mode == "custom" and not (spec.cpu_model or "").strip():
        out.err("cpu_model", "Choose a CPU model for the custom CPU mode")
    if spec.cpu_mode == "host-passthrough" and spec.virt_type == "qemu":
        out.err("cpu_mode", "QEMU (TCG) cannot pass the host CPU through: use host-model or a custom model")
    elif host is not None and hasattr(host, "cpu_mode_supported") and spec.cpu_mode != "custom":
        if host.cpu_mode_supported(spec.virt_type, spec.cpu_mode) is False:
            out.err("cpu_mode", f"{spec.cpu_mode} is not supported by {spec.virt_type} on this host")
    if host is not None and hasattr(host, "kvm_available"):
        if spec.virt_type == "kvm" and not host.kvm_available:
            out.err("virt_type", "KVM is not available on this host: use qemu (slower, but it runs anywhere)")
        if host.arch and spec.arch != host.arch:
            out.err("arch", f"This host runs {host.arch} guests, not {spec.arch}")
        if getattr(host, "machines", None) and spec.machine not in host.machines:
            out.err("machine", f"This host does not offer the {spec.machine} machine type")
    if spec.firmware == "uefi" and host is not None and hasattr(host, "uefi") and not host.uefi:
        out.err("firmware", "This host has no UEFI firmware (install OVMF / edk2-ovmf)")
    if spec.secure_boot:
        if spec.firmware != "uefi":
            out.err("secure_boot", "Secure Boot needs UEFI firmware")
        elif spec.machine != "q35":
            out.err("secure_boot", "Secure Boot needs the q35 machine type (it uses SMM)")
        elif host is not None and getattr(host, "secure_boot", True) is False:
            out.err("secure_boot", "This host has no Secure Boot firmware")


def _check_install(spec: VmSpec, out: _Findings) -> None:
    """The install source, its cloud-init seed and its kickstart."""
    src = spec.install
    kind = src.kind
    if kind == "iso":
        if not (src.iso or "").strip():
            out.err("install.iso", "Choose the ISO image to install from")
        else:
            out.check_ref("install.iso", src.iso, "iso")
    elif kind == "cdrom":
        if not (src.cdrom or "").strip():
            out.err("install.cdrom", "Choose the host's CD-ROM device (e.g. /dev/sr0)")
        elif not src.cdrom.startswith("/"):
            out.err("install.cdrom", "Give the device path, e.g. /dev/sr0")
        elif out.check_path is not None:
            problem = out.check_path(src.cdrom, "cdrom")
            if problem:
                out.err("install.cdrom", problem)
    elif kind == "url":
        problem = validate_url(src.url or "")
        if problem:
            out.err("install.url", problem)
    elif kind in ("import", "cloud"):
        if not (src.image or "").strip():
            out.err("install.image", "Choose the disk image" if kind == "import" else "Choose the cloud image")
        else:
            out.check_ref("install.image", src.image, "image")
            _check_image(out, "install.image", src.image, base=kind == "cloud")
    if src.cloud_init is not None:
        _check_cloud_init(src.cloud_init, kind, out)
    if src.kernel_args and kind != "url":
        out.warn("install.kernel_args", "Kernel arguments are only used by URL (install tree) installs")
    if kind == "url" and not spec.start_install:
        out.warn("start_install", "A URL install boots the installer only when it starts now; "
                                  "defined only, the VM boots from its (empty) disk")
    if src.kickstart is not None:
        out.found.extend(kickstart_problems(spec))
    nic_sources = [n.source for n in spec.nics if n.kind == "network"]
    if kind == "pxe":
        if not spec.nics and not src.network:
            out.err("install.network", "A PXE install needs a network: add a NIC or choose the network")
        elif src.network and spec.nics and src.network not in nic_sources:
            out.err("install.network", f"No NIC is on network '{src.network}'")
        if src.network and out.networks is not None and src.network not in out.networks:
            out.err("install.network", f"No virtual network named '{src.network}'")


def _check_disks(spec: VmSpec, out: _Findings) -> None:
    """Each disk (new volumes against their pools), the volume names once
    defaults are filled in, the IDE bus's four places."""
    kind = spec.install.kind
    q35 = spec.machine == "q35"
    ide_count = 0
    seen_vols: dict[tuple[str, str], int] = {}
    first_new = next((i for i, d in enumerate(spec.disks) if d.mode == "new"), None)
    for i, d in enumerate(spec.disks):
        p = f"disks[{i}]"
        if d.bus == "ide":
            ide_count += 1
            if q35:
                out.err(f"{p}.bus", "The q35 machine has no IDE bus: use sata, scsi or virtio")
        if d.cache is not None and d.cache not in CACHE_MODES:
            out.err(f"{p}.cache", f"Cache must be one of: {', '.join(CACHE_MODES)}")
        if d.mode == "new":
            overlay = bool(d.backing) or (kind == "cloud" and i == first_new)
            if d.size is None or d.size < 0 or (d.size == 0 and not overlay):
                out.err(f"{p}.size", "The size must be larger than zero")
            elif 0 < d.size < MIB:
                out.err(f"{p}.size", f"{d.size} bytes is too small (a plain number is bytes: write 20G for 20 GiB)")
            if not (d.pool or "").strip():
                out.err(f"{p}.pool", "Choose a storage pool")
            if d.name is not None:
                from ..storage import validate_volume_name

                problem = validate_volume_name(d.name)
                if problem:
                    out.err(f"{p}.name", problem)
            if d.backing and d.format != "qcow2":
                out.err(f"{p}.format", "A disk on a backing image must be qcow2")
            if overlay and d.provisioning == "thick":
                out.err(f"{p}.provisioning", "A disk on a backing image cannot be thick")
            if d.backing:
                out.check_ref(f"{p}.backing", d.backing, "backing")
                if d.backing != spec.install.image:
                    _check_image(out, f"{p}.backing", d.backing, base=True)
            if overlay:
                _check_overlay_size(spec, out, p, d, d.backing or spec.install.image)
            if out.pools is not None and d.pool:
                facts = out.pools.get(d.pool)
                if facts is None:
                    out.err(f"{p}.pool", f"No storage pool named '{d.pool}'")
                elif not facts.active:
                    out.err(f"{p}.pool", f"Pool '{d.pool}' is not active: start it first")
                elif d.provisioning == "thick" and facts.available is not None and d.size > facts.available:
                    out.err(f"{p}.size", f"{format_size(d.size)} is more than the "
                                         f"{format_size(facts.available)} free in pool '{d.pool}'")
        else:
            if not (d.path or "").strip():
                out.err(f"{p}.path", "Choose the disk (a path on the host, or pool/volume)")
            else:
                out.check_ref(f"{p}.path", d.path, "disk")
    # volume names, once defaults are filled in
    planned = plan_disks(spec) if spec.name else []
    offset = len(planned) - len(spec.disks)
    for j, d in enumerate(planned):
        if d.mode != "new" or not d.name:
            continue
        i = j - offset
        fld = f"disks[{i}].name" if i >= 0 else "install.image"
        key = (d.pool, d.name)
        if key in seen_vols:
            out.err(fld, f"Two disks would both be volume '{d.name}' in pool '{d.pool}'")
        seen_vols[key] = i
        facts = out.pools.get(d.pool) if out.pools is not None else None
        if facts is not None and d.name in facts.volumes:
            out.err(fld, f"Pool '{d.pool}' already has a volume named '{d.name}'")
    if spec.install.cloud_init and isinstance(spec.install.cloud_init, dict) and spec.name:
        from .builder import seed_bus

        if seed_bus(spec) == "ide":
            ide_count += 1
            if q35 and spec.install.cloud_init.get("seed_bus") == "ide":
                out.err("install.cloud_init.seed_bus", "The q35 machine has no IDE bus: use virtio, scsi or sata")
    has_cdrom = kind in ("iso", "cdrom")
    if has_cdrom and spec.cdrom_bus == "ide":
        ide_count += 1
        if spec.install.kickstart is not None:
            ide_count += 1  # the OEMDRV CD-ROM
        if q35:
            out.err("cdrom_bus", "The q35 machine has no IDE bus: use sata or scsi for the CD-ROM")
    if ide_count > MAX_IDE_DEVICES:
        out.err("disks", f"At most {MAX_IDE_DEVICES} IDE devices (disks and CD-ROM)")
    if not planned and kind not in ("iso", "cdrom", "pxe", "url"):
        out.warn("disks", "The VM has no disk to boot from")


def _image_facts(out: _Findings, ref: str | None) -> ImageFacts | None:
    if out.images is None or not ref:
        return None
    return out.images.get(ref.strip())


def _check_image(out: _Findings, fld: str, ref: str, *, base: bool) -> None:
    """The probed image: its format must be known (never guessed), it must be
    a disk image, and QEMU must read a shared base as it is."""
    if any(f.field == fld and f.is_error for f in out.found):
        return  # already wrong (no such volume ...)
    facts = _image_facts(out, ref)
    if facts is None:
        return
    if facts.problem:
        out.err(fld, facts.problem)
    elif facts.format in ("iso", "dir"):
        what = "an ISO 9660 image" if facts.format == "iso" else "a directory"
        out.err(fld, f"{ref} is {what}, not a disk image ({facts.how})")
    elif not base and facts.format not in ("qcow2", "raw"):
        out.err(fld, f"{ref} is a {facts.format} image: vmtui imports qcow2 and raw images "
                     f"(qemu-img convert -O qcow2 makes one)")
    elif base and facts.read_problem:
        out.err(fld, facts.read_problem)


def _check_overlay_size(spec: VmSpec, out: _Findings, p: str, d: Any, ref: str | None) -> None:
    """An overlay smaller than its image cuts the guest's disk; a larger one
    leaves the root file system at the image's size unless cloud-init grows
    it (growpart and resize_rootfs)."""
    facts = _image_facts(out, ref)
    if facts is None or not facts.capacity or not d.size or d.size < 0:
        return
    if d.size < facts.capacity:
        out.err(f"{p}.size", f"{format_size(d.size)} is smaller than the image ({format_size(facts.capacity)}): "
                             "give at least its size (or no size: the image's)")
        return
    if d.size == facts.capacity or spec.install.kind != "cloud" or d.backing not in (None, spec.install.image):
        return
    growpart, resize = _growth(spec.install.cloud_init)
    sizes = f"{format_size(d.size)} is larger than the image ({format_size(facts.capacity)})"
    if growpart is False or resize is False:
        off = " and ".join(k for k, v in (("growpart", growpart), ("resize_rootfs", resize)) if v is False)
        out.warn(f"{p}.size", f"{sizes}, but the cloud-init user-data turns {off} off: the root file system "
                              f"stays at {format_size(facts.capacity)} and the rest of the disk is unused")
    elif growpart and resize:
        out.warn(f"{p}.size", f"{sizes}: the user-data asks cloud-init to grow the root file system to it "
                              "(growpart, resize_rootfs); images without the growpart tool stay at "
                              f"{format_size(facts.capacity)}")
    else:
        out.warn(f"{p}.size", f"{sizes}: the root file system grows to it only if the image's cloud-init runs "
                              "growpart and resize_rootfs, which the user-data leaves to the image (add "
                              "growpart: {mode: auto} and resize_rootfs: true, or set them in the cloud-init "
                              "form, to be sure)")


def _growth(ci: Any) -> tuple[bool | None, bool | None]:
    """(growpart, resize_rootfs) as the seed's user-data sets them (None: not set)."""
    if not isinstance(ci, dict) or not isinstance(ci.get("user_data"), str):
        return None, None
    from ..provision.cloudinit_form import form_from_yaml

    try:
        form = form_from_yaml(ci["user_data"])
    except ValueError:
        return None, None
    return form.growpart, form.resize_rootfs


def _check_nics(spec: VmSpec, out: _Findings) -> None:
    macs: set[str] = set()
    for i, n in enumerate(spec.nics):
        p = f"nics[{i}]"
        if not (n.source or "").strip():
            what = {"network": "virtual network", "bridge": "bridge", "macvtap": "host interface"}[n.kind] \
                if n.kind in ("network", "bridge", "macvtap") else "source"
            out.err(f"{p}.source", f"Choose the {what}")
        elif n.kind == "network" and out.networks is not None and n.source not in out.networks:
            out.err(f"{p}.source", f"No virtual network named '{n.source}'")
        elif n.kind in ("bridge", "macvtap") and out.interfaces is not None:
            _check_host_interface(f"{p}.source", n.kind, n.source, out.interfaces, out)
        if n.mac:
            problem = validate_mac(n.mac)
            if problem:
                out.err(f"{p}.mac", problem)
            elif n.mac.lower() in macs:
                out.err(f"{p}.mac", "Two NICs have the same MAC address")
            macs.add(n.mac.lower())


def listen_problem(address: str | None) -> FieldError | None:
    """What is wrong with a display's listen address (field ``graphics_listen``):
    not an IP address (an error), or every address of the host (a warning)."""
    try:
        addr = ipaddress.ip_address((address or "").strip("[]"))
    except ValueError:
        return FieldError("graphics_listen", "Enter an IP address to listen on, e.g. 127.0.0.1")
    if addr.is_unspecified:
        return FieldError("graphics_listen", "The console is reachable from the network, without a password",
                          "warning")
    return None


def _check_host_interface(fld: str, kind: str, name: str, interfaces: dict[str, str], out: _Findings) -> None:
    """A bridge or macvtap NIC's source must be an interface of the host (a
    missing one only fails when the VM starts: "Cannot get interface MTU");
    a bridge NIC's must be a bridge."""
    bridges = sorted(n for n, k in interfaces.items() if k == "bridge")
    if name not in interfaces:
        if kind == "bridge":
            have = f"its bridges: {', '.join(bridges[:8])}" if bridges else "no bridge is listed"
            out.err(fld, f"The host has no bridge named '{clip(name, 40)}' ({have})")
        else:
            have = ", ".join(sorted(interfaces)[:8])
            out.err(fld, f"The host has no interface named '{clip(name, 40)}' (its interfaces: {have})")
    elif kind == "bridge" and interfaces[name] not in ("", "bridge"):
        out.err(fld, f"'{name}' is not a bridge but {'an' if interfaces[name][0] in 'aeiou' else 'a'} "
                     f"{interfaces[name]} interface: choose a bridge, or macvtap on '{name}'")


def cpu_mode_for(virt_type: str, cpu_mode: str, cpu_model: str | None = None,
                 host: Any = None) -> tuple[str, str | None]:
    """The CPU mode (and named model) to use under ``virt_type``, from the
    one asked for: QEMU (TCG) cannot pass the host CPU through, so
    host-passthrough becomes host-model -- or the named model ``qemu64``
    when the host does not offer host-model under TCG either (``host``: a
    HostCaps). Other combinations stay as they are."""
    if virt_type != "qemu" or cpu_mode == "custom":
        return cpu_mode, cpu_model
    supported = getattr(host, "cpu_mode_supported", None)
    host_model = supported("qemu", "host-model") if supported is not None else None
    if cpu_mode == "host-passthrough" or (cpu_mode == "host-model" and host_model is False):
        if host_model is False:
            return "custom", cpu_model or "qemu64"
        return "host-model", cpu_model
    return cpu_mode, cpu_model


def _check_display(spec: VmSpec, out: _Findings) -> None:
    if spec.graphics != "none":
        problem = listen_problem(spec.graphics_listen)
        if problem is not None:
            out.found.append(problem)


def _check_cloud_init(ci: Any, kind: str, out: _Findings) -> None:
    """install.cloud_init: the documents of the NoCloud seed (user-data,
    meta-data, network-config), checked as the cloud-init editor checks them
    (:func:`cloudinit.check_document`). The first problem of a document is
    its field's error, with its line in the document (FieldError.line) and
    "(and N more)"."""
    base = "install.cloud_init"
    if not isinstance(ci, dict):
        out.err(base, "cloud_init must be a mapping with user_data (and meta_data, network_config)")
        return
    if kind in ("iso", "cdrom", "url", "pxe"):
        out.warn(base, "A cloud-init seed is for cloud images (install kind 'cloud' or 'import'); "
                       "an installer ignores it")
    for label in cloudinit.DOCUMENTS:
        key = label.replace("-", "_")
        text = ci.get(key)
        if text is None or not str(text).strip():
            continue  # filled in when empty: user-data with the hostname, meta-data's instance-id
        if not isinstance(text, str):
            out.err(f"{base}.{key}", f"{label} must be text")
            continue
        problems = cloudinit.check_document(label, text)
        if problems:
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            out.err(f"{base}.{key}", f"{label} {problems[0]}{more}", problems[0].line or None)
    detach = ci.get("detach_after_first_boot", False)
    if not isinstance(detach, bool):
        out.err(f"{base}.detach_after_first_boot", "detach_after_first_boot must be true or false")
    bus = ci.get("seed_bus")
    if bus is not None and bus not in SEED_BUSES:
        out.err(f"{base}.seed_bus", f"seed_bus must be one of: {', '.join(SEED_BUSES)} (or left out: next to "
                                    "the boot disk)")


def kickstart_problems(spec: VmSpec) -> list[FieldError]:
    """``install.kickstart``: it must fit the install source, name a known
    syntax version, and pass :func:`kickstart.check_kickstart` (as in the
    kickstart editor) -- errors and warnings with their line in the
    kickstart text (FieldError.line)."""
    out: list[FieldError] = []
    ks = spec.install.kickstart
    if not isinstance(ks, dict):
        return [FieldError("install.kickstart", "The kickstart must be a mapping with text, version, delivery")]
    method, why = kickstart.delivery_for(spec.install.kind)
    if method is None:
        out.append(FieldError("install.kickstart", f"No kickstart here: {why}"))
    elif ks.get("delivery") not in (None, method):
        out.append(FieldError("install.kickstart.delivery",
                              f"A '{spec.install.kind}' install gets its kickstart by {method}, "
                              f"not {ks.get('delivery')}"))
    version = ks.get("version") or ""
    text = ks.get("text") or ""
    if version not in kickstart.available_versions():
        from pykickstart.version import versionMap

        if version not in versionMap:
            out.append(FieldError("install.kickstart.version",
                                  f"Unknown kickstart syntax version '{version}' (e.g. RHEL9, F40)"))
            return out
    if not text.strip():
        out.append(FieldError("install.kickstart", "The kickstart is empty"))
        return out
    findings = kickstart.check_kickstart(text, version, disk_targets(spec))
    foreign = _not_a_kickstart(text, findings)
    if foreign is not None:
        out.append(foreign)
        return out
    for p in findings:
        where = f"line {p.line}: " if p.line else ""
        out.append(FieldError("install.kickstart", f"{where}{p.message}",
                              "error" if p.severity == "error" else "warning", line=p.line or None))
    return out


def _not_a_kickstart(text: str, findings: list[kickstart.Problem]) -> FieldError | None:
    """One error for a text none of whose lines is a kickstart command (a
    kickstart_file that names /etc/passwd, a script ...), quoting its first
    line only -- instead of an error per line that would echo the whole file."""
    content = [n for n, line in enumerate(text.splitlines(), 1)
               if line.strip() and not line.lstrip().startswith("#")]
    unknown = {p.line for p in findings if p.severity == "error"
               and p.message.startswith(("Unknown command", "cannot split the line"))}
    if len(content) < 2 or any(n not in unknown for n in content):
        return None
    first = content[0]
    quoted = clip(text.splitlines()[first - 1].strip(), 80)
    return FieldError("install.kickstart", f"line {first}: not a kickstart: none of its {len(content)} lines is a "
                                           f"kickstart command (the first: {quoted!r})", line=first)
