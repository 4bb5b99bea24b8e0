"""OVF / OVA import and export (what virt-convert did).

Import
    :func:`open_package` reads an ``.ova`` (a tar) or an ``.ovf`` with the
    files next to it: the tar members are checked first (no absolute paths,
    no ``..``, no links or devices: nothing is ever written outside the work
    directory), the referenced files are extracted (``gzip`` file compression
    is undone), the manifest (``.mf``, SHA1/SHA256/SHA512 lines) is checked and
    a mismatch refused naming the file, and the envelope is parsed with
    ElementTree (OVF 1.x and 2.x namespaces) into an :class:`OvfPackage`:
    name, description, vCPUs, memory, disks with their capacity, NICs with
    their network names, OS type (mapped to an osinfo short id where a clear
    one exists) and a firmware hint.

    :func:`import_disks` converts every disk to qcow2 with ``qemu-img convert
    -p`` (progress parsed) into a storage pool: on a local host straight into
    the pool's directory followed by a pool refresh; otherwise into a local
    temporary file that is uploaded with :func:`storage.upload_file`. The
    volumes made so far are deleted again on failure or cancel.

    :func:`to_vmspec` maps the package plus the imported volumes to a
    :class:`VmSpec` with an ``import`` install source, so the normal
    validation and :func:`installer.create_vm` define the domain.

Export
    :func:`export_ova` writes a shut-off domain as an OVA: every disk
    converted with ``qemu-img convert -O vmdk -o subformat=streamOptimized``
    (downloaded through libvirt first when the host is remote or the file is
    not readable here), an OVF 1.0 envelope, a SHA256 manifest, and a tar with
    the ``.ovf`` first, as the OVF specification (DSP0243) requires.

Everything here is blocking (run it in a thread: ``service.call`` for the
libvirt parts, ``asyncio.to_thread`` for the local ones). Nothing imports
Textual.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import os
import posixpath
import re
import shutil
import subprocess
import tarfile
import tempfile
import threading
import urllib.parse
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import libvirt

from .. import storage
from ..xml.domain_model import Domain
from ..xml.xmlmodel import yes
from ..errors import VmtuiError, from_libvirt, is_connection_lost
from ..create.vmspec import DiskSpec, InstallSource, NicSpec, VmSpec

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]  # (done, total)

# --- namespaces -------------------------------------------------------------

OVF1_NS = "http://schemas.dmtf.org/ovf/envelope/1"
OVF2_NS = "http://schemas.dmtf.org/ovf/envelope/2"
OVF_NAMESPACES = (OVF1_NS, OVF2_NS)
CIM_NS = "http://schemas.dmtf.org/wbem/wscim/1/common"
RASD_NS = "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData"
VSSD_NS = "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData"
SASD_NS = "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_StorageAllocationSettingData"
EPASD_NS = "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_EthernetPortAllocationSettingData"
VMW_NS = "http://www.vmware.com/schema/ovf"
VMTUI_NS = "https://vmtui.invalid/ovf/1"  # our own hints (the osinfo id) on export
SECURE_BOOT_KEY = "uefi.secureBoot.enabled"  # VMware's extra-config key, in a vmw:Config
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"

VMDK_STREAM_URI = "http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized"

# CIM ResourceType values (DSP1043 / CIM_ResourceAllocationSettingData)
RT_PROCESSOR = 3
RT_MEMORY = 4
RT_IDE = 5
RT_SCSI = 6
RT_ETHERNET = 10
RT_FLOPPY = 14
RT_CD = 15
RT_DVD = 16
RT_DISK = 17
RT_OTHER_STORAGE = 20  # VMware's SATA controller (ResourceSubType vmware.sata.ahci)
RT_SATA = 20

MAX_DESCRIPTOR = 16 * 1024 * 1024  # an OVF envelope larger than this is refused
COPY_CHUNK = 1024 * 1024


class OvfError(VmtuiError):
    """Something is wrong with an OVF package: ``what`` went wrong, ``where``."""

    def __init__(self, what: str, where: str, hint: str = "") -> None:
        self.what = what
        self.where = where
        super().__init__("import", where, what, hint)


class Cancelled(VmtuiError):
    def __init__(self, action: str, obj: str) -> None:
        super().__init__(action, obj, "cancelled")


# --- the parsed package ---------------------------------------------------


@dataclass
class OvfFile:
    id: str
    href: str
    size: int | None = None
    compression: str | None = None
    path: str | None = None  # local file after extraction (or the OVA itself, see offset)
    offset: int = 0
    length: int | None = None  # set: the file is read in place at ``offset`` of ``path``


@dataclass
class OvfDisk:
    disk_id: str
    capacity: int  # bytes
    file_ref: str | None = None
    format: str = ""  # the format URI of the envelope
    populated_size: int | None = None
    controller: str = ""  # "ide", "scsi", "sata", "" (unknown)
    path: str | None = None  # local file of the image (None: an empty disk)
    offset: int = 0  # where the image starts in ``path`` (a member read in place from the OVA)
    length: int | None = None  # its length there; None: the whole file
    file_name: str = ""  # the href of its file in the package


@dataclass
class OvfNic:
    network: str
    model: str = ""  # ResourceSubType: E1000, VmxNet3, virtio, ...
    mac: str | None = None


@dataclass
class OvfPackage:
    source: str  # the .ova or .ovf given
    version: str  # "1.x" or "2.x"
    name: str
    description: str = ""
    vcpus: int = 1
    memory_mib: int = 1024
    os_cim_id: int | None = None
    os_type: str = ""  # vmw:osType or the OS description
    osinfo: str = "generic"  # best osinfo short id
    firmware: str | None = None  # "bios", "uefi" or None (no hint)
    secure_boot: bool = False  # VMware's uefi.secureBoot.enabled
    disks: list[OvfDisk] = field(default_factory=list)
    nics: list[OvfNic] = field(default_factory=list)
    files: dict[str, OvfFile] = field(default_factory=dict)
    networks: list[str] = field(default_factory=list)
    manifest: str | None = None  # "checked (SHA256)" / None when there is none
    warnings: list[str] = field(default_factory=list)
    certificate: str | None = None  # the .cert file's name when the package is signed
    work_dir: str | None = None  # temp dir we own (removed by close())

    def close(self) -> None:
        if self.work_dir:
            shutil.rmtree(self.work_dir, ignore_errors=True)
            self.work_dir = None

    def summary_lines(self) -> list[str]:
        from ..sizes import fmt_bytes
        out = [f"Name:     {self.name}  (OVF {self.version})",
               f"CPUs:     {self.vcpus}",
               f"Memory:   {fmt_bytes(self.memory_mib * 1024 * 1024)}",
               f"OS:       {self.os_type or 'not given'} → {self.osinfo}",
               f"Firmware: {self.firmware or 'not given (BIOS)'}"
               + (" with Secure Boot" if self.firmware == "uefi" and self.secure_boot else "")]
        for i, d in enumerate(self.disks):
            name = (d.file_name or os.path.basename(d.path)) if d.path else "empty"
            out.append(f"Disk {i + 1}:   {fmt_bytes(d.capacity)}  {name}"
                       + (f"  ({d.controller})" if d.controller else ""))
        if not self.disks:
            out.append("Disks:    none")
        for i, n in enumerate(self.nics):
            out.append(f"NIC {i + 1}:    network '{n.network}'" + (f"  {n.model}" if n.model else ""))
        if not self.nics:
            out.append("NICs:     none")
        out.append(f"Manifest: {self.manifest or 'none in the package (digests not checked)'}")
        return out


# --- small helpers ----------------------------------------------------------


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _ns(tag: str) -> str:
    return tag[1:].split("}", 1)[0] if isinstance(tag, str) and tag.startswith("{") else ""


def _attr(el: ET.Element, name: str) -> str | None:
    """An attribute in the OVF namespace (1.x or 2.x) or without a namespace."""
    for ns in OVF_NAMESPACES:
        v = el.get(f"{{{ns}}}{name}")
        if v is not None:
            return v
    return el.get(name)


def _children(el: ET.Element, local: str) -> list[ET.Element]:
    return [c for c in el if _local(c.tag) == local]


def _child(el: ET.Element, local: str) -> ET.Element | None:
    for c in el:
        if _local(c.tag) == local:
            return c
    return None


def _child_text(el: ET.Element, local: str) -> str:
    c = _child(el, local)
    return (c.text or "").strip() if c is not None else ""


_UNIT_WORDS = {
    "byte": 1, "bytes": 1,
    "kilobyte": 1024, "kilobytes": 1024, "kb": 1024, "kib": 1024,
    "megabyte": 1024 ** 2, "megabytes": 1024 ** 2, "mb": 1024 ** 2, "mib": 1024 ** 2,
    "gigabyte": 1024 ** 3, "gigabytes": 1024 ** 3, "gb": 1024 ** 3, "gib": 1024 ** 3,
    "terabyte": 1024 ** 4, "terabytes": 1024 ** 4, "tb": 1024 ** 4, "tib": 1024 ** 4,
}
_UNIT_RE = re.compile(r"^bytes?\s*(?:\*\s*(\d+)\s*\^\s*(\d+))?$")


def parse_units(text: str | None, default: int = 1) -> int:
    """An OVF/CIM allocation unit ("byte * 2^20", "MegaBytes", "byte") as bytes.

    Programmatic units (DSP0004 annex C) are ``byte`` optionally times a
    power (``2^20``, ``10^6``); the unit words VMware and VirtualBox write
    (KiloBytes, MegaBytes, GigaBytes) are read as powers of 1024, as they
    mean them. Raises ValueError for anything else.
    """
    if text is None or not text.strip():
        return default
    t = " ".join(text.strip().lower().split())
    m = _UNIT_RE.match(t)
    if m:
        if m.group(1) is None:
            return 1
        base, exp = int(m.group(1)), int(m.group(2))
        if base not in (2, 10) or exp > 80:
            raise ValueError(f"unsupported allocation unit '{text.strip()}'")
        return base ** exp
    if t in _UNIT_WORDS:
        return _UNIT_WORDS[t]
    raise ValueError(f"unsupported allocation unit '{text.strip()}'")


def _int(text: str | None, what: str, where: str) -> int:
    try:
        value = int((text or "").strip())
    except ValueError:
        raise OvfError(f"{what} is not a whole number: '{(text or '').strip()}'", where) from None
    if value < 0:
        raise OvfError(f"{what} is negative: {value}", where)
    return value


# --- OS type mapping --------------------------------------------------------

# CIM_OperatingSystem.OSType values commonly written by VMware/VirtualBox.
CIM_OS: dict[int, tuple[str, list[str]]] = {
    1: ("Other", ["generic"]),
    36: ("Linux", ["linux"]),
    58: ("Windows 2000", ["win2k"]),
    67: ("Windows XP", ["winxp"]),
    69: ("Windows Server 2003", ["win2k3"]),
    73: ("Windows Vista", ["winvista"]),
    76: ("Windows Server 2008", ["win2k8"]),
    79: ("Red Hat Enterprise Linux", ["rhel-unknown", "linux"]),
    80: ("Red Hat Enterprise Linux 64-bit", ["rhel-unknown", "linux"]),
    82: ("SUSE", ["linux"]),
    83: ("SUSE 64-bit", ["linux"]),
    84: ("SLES", ["linux"]),
    85: ("SLES 64-bit", ["linux"]),
    93: ("Ubuntu", ["ubuntu-unknown", "linux"]),
    94: ("Ubuntu 64-bit", ["ubuntu-unknown", "linux"]),
    95: ("Debian", ["debian-unknown", "linux"]),
    96: ("Debian 64-bit", ["debian-unknown", "linux"]),
    97: ("Linux 2.4.x", ["linux"]),
    98: ("Linux 2.4.x 64-bit", ["linux"]),
    99: ("Linux 2.6.x", ["linux"]),
    100: ("Linux 2.6.x 64-bit", ["linux"]),
    101: ("Linux 64-bit", ["linux"]),
    102: ("Other 64-bit", ["generic"]),
    103: ("Windows Server 2008 R2", ["win2k8r2"]),
    105: ("Windows 7", ["win7"]),
    106: ("CentOS", ["centos-unknown", "linux"]),
    107: ("CentOS 64-bit", ["centos-unknown", "linux"]),
    108: ("Oracle Linux", ["linux"]),
    109: ("Oracle Linux 64-bit", ["linux"]),
    112: ("Windows Server 2012", ["win2k12"]),
    113: ("Windows 8", ["win8"]),
    114: ("Windows 8 64-bit", ["win8"]),
    115: ("Windows Server 2012 R2", ["win2k12r2"]),
    116: ("Windows Server 2016", ["win2k16"]),
    117: ("Windows 8.1", ["win8.1"]),
    118: ("Windows 8.1 64-bit", ["win8.1"]),
    119: ("Windows 10", ["win10"]),
    120: ("Windows 10 64-bit", ["win10"]),
    121: ("Windows Server 2019", ["win2k19"]),
    122: ("Windows 11 64-bit", ["win11"]),
    123: ("Windows Server 2022", ["win2k22"]),
}

# the osinfo short id → CIM id we write on export (families)
_EXPORT_CIM = [
    (re.compile(r"^debian"), 96), (re.compile(r"^ubuntu"), 94), (re.compile(r"^(rhel|almalinux|rocky)"), 80),
    (re.compile(r"^centos"), 107), (re.compile(r"^(sles|opensuse)"), 85), (re.compile(r"^ol\d"), 109),
    (re.compile(r"^win2k22"), 123), (re.compile(r"^win2k19"), 121), (re.compile(r"^win2k16"), 116),
    (re.compile(r"^win2k12r2"), 115), (re.compile(r"^win2k12"), 112), (re.compile(r"^win11"), 122),
    (re.compile(r"^win10"), 120), (re.compile(r"^win"), 1),
]


def _vmw_os_candidates(os_type: str) -> list[str]:
    """vmw:osType ("debian11_64Guest", "ubuntu64Guest", "windows2019srv_64Guest") → osinfo ids."""
    t = os_type.lower().removesuffix("guest").removesuffix("_64").removesuffix("64").rstrip("_")
    fixed = {
        "windows9": ["win10"], "windows9srv": ["win2k16"], "windows2019srv": ["win2k19"],
        "windows2019srvnext": ["win2k22"], "windows2022srvnext": ["win2k25", "win2k22"],
        "windows11": ["win11"], "windows8": ["win8"], "windows8srv": ["win2k12"], "windows7": ["win7"],
        "windows7srv": ["win2k8r2"], "winlonghorn": ["win2k8"], "winxppro": ["winxp"],
        "ubuntu": ["ubuntu-unknown", "linux"], "centos": ["centos-unknown", "linux"],
        "debian": ["debian-unknown", "linux"], "other": ["generic"], "otherlinux": ["linux"],
        "other3xlinux": ["linux"], "other4xlinux": ["linux"], "other5xlinux": ["linux"],
        "other6xlinux": ["linux"], "other26xlinux": ["linux"], "rhel": ["rhel-unknown", "linux"],
    }
    if t in fixed:
        return fixed[t]
    m = re.match(r"^(debian|centos|rhel|oracle|sles|almalinux|rockylinux)(\d+)$", t)
    if m:
        distro, ver = m.groups()
        ids = {"debian": [f"debian{ver}"], "centos": [f"centos{ver}", f"centos-stream{ver}"],
               "rhel": [f"rhel{ver}.0", f"rhel{ver}"], "oracle": [f"ol{ver}.0", f"ol{ver}"],
               "sles": [f"sles{ver}", f"sle{ver}"], "almalinux": [f"almalinux{ver}"],
               "rockylinux": [f"rocky{ver}"]}[distro]
        return ids + ["linux"]
    if t.startswith("windows") or t.startswith("win"):
        return ["windows"]
    if "linux" in t or t.startswith(("fedora", "opensuse", "sles", "coreos", "photon", "asianux")):
        return ["linux"]
    return []


def map_os(cim_id: int | None, os_type: str = "", description: str = "", *,
           known: Callable[[str], bool] | None = None) -> str:
    """The best osinfo short id for an OVF OperatingSystemSection.

    ``os_type`` (vmw:osType, or our own hint) wins over the CIM number. With
    ``known`` (e.g. ``lambda s: s in osdb``) the first candidate the host's
    osinfo-db knows is taken; without it the first candidate. "generic"
    when nothing fits.
    """
    candidates: list[str] = []
    if os_type:
        candidates += _vmw_os_candidates(os_type)
    if cim_id is not None and cim_id in CIM_OS:
        candidates += CIM_OS[cim_id][1]
    d = description.lower()
    if not candidates and d:
        if "windows" in d:
            candidates.append("windows")
        elif any(w in d for w in ("linux", "debian", "ubuntu", "centos", "fedora", "red hat", "suse")):
            candidates.append("linux")
    for c in candidates:
        if known is None or known(c):
            return c
    return "generic"


# --- reading the package -----------------------------------------------------


def _safe_member_name(name: str, where: str) -> str:
    """A tar member name, normalised; raises OvfError for absolute paths or ``..``."""
    if not name or name.startswith("/") or name.startswith("\\") or re.match(r"^[A-Za-z]:", name):
        raise OvfError(f"the archive member '{name}' has an absolute path (refused: it could write "
                       "outside the work directory)", where)
    parts = [p for p in name.replace("\\", "/").split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise OvfError(f"the archive member '{name}' points outside the archive with '..' (path "
                       "traversal refused)", where)
    return "/".join(parts)


def _safe_href(href: str, where: str) -> str:
    """A File href of the envelope: a relative path inside the package."""
    parsed = urllib.parse.urlsplit(href)
    if parsed.scheme and len(parsed.scheme) > 1:  # "C:" is a drive, not a scheme
        if parsed.scheme != "file":
            raise OvfError(f"the file reference '{href}' is a URL ({parsed.scheme}): only files inside "
                           "the package are supported", where)
        raise OvfError(f"the file reference '{href}' is an absolute file URL: only files inside the "
                       "package are supported", where)
    href = urllib.parse.unquote(href)
    if href.startswith("/") or re.match(r"^[A-Za-z]:", href):
        raise OvfError(f"the file reference '{href}' is an absolute path (refused)", where)
    parts = [p for p in href.replace("\\", "/").split("/") if p not in ("", ".")]
    if not parts or any(p == ".." for p in parts):
        raise OvfError(f"the file reference '{href}' points outside the package (path traversal refused)",
                       where)
    return "/".join(parts)


def _inside(base: str, path: str) -> bool:
    base = os.path.realpath(base)
    path = os.path.realpath(path)
    return path == base or path.startswith(base.rstrip(os.sep) + os.sep)


_MF_RE = re.compile(r"^\s*(SHA1|SHA256|SHA512|SHA384|SHA224)\s*\((.+)\)\s*=\s*([0-9A-Fa-f]+)\s*$")


def parse_manifest(text: str, where: str) -> dict[str, tuple[str, str]]:
    """``.mf`` lines ``SHA256(file)= hex`` → {file: (algorithm, hex)}."""
    out: dict[str, tuple[str, str]] = {}
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        m = _MF_RE.match(line)
        if not m:
            raise OvfError(f"line {n} of the manifest is not 'SHA256(file)= digest': {line.strip()[:80]!r}",
                           where)
        algo, name, digest = m.groups()
        out[name.strip()] = (algo.lower(), digest.lower())
    return out


Where = "str | tuple[str, int, int]"  # a file, or (file, offset, length) inside it


def _digest(loc, algo: str, cancel: threading.Event | None = None,
            tick: Callable[[int], None] | None = None) -> str:
    """The hex digest of a file, or of ``length`` bytes at ``offset`` of it."""
    path, offset, length = (loc, 0, None) if isinstance(loc, str) else loc
    h = hashlib.new(algo)
    with open(path, "rb") as fh:
        fh.seek(offset)
        left = length
        while True:
            want = COPY_CHUNK if left is None else min(COPY_CHUNK, left)
            if want == 0:
                break
            chunk = fh.read(want)
            if not chunk:
                break
            if cancel is not None and cancel.is_set():
                raise Cancelled("check the digest of", path)
            h.update(chunk)
            if left is not None:
                left -= len(chunk)
            if tick is not None:
                tick(len(chunk))
    return h.hexdigest()


def _loc_size(loc) -> int:
    if isinstance(loc, str):
        return os.path.getsize(loc)
    return loc[2]


#: magic numbers of the image formats that can be read in place inside an OVA
_MAGIC = ((0, b"KDMV", "vmdk"), (0, b"QFI\xfb", "qcow2"), (0, b"vhdxfile", "vhdx"), (0, b"conectix", "vpc"),
          (0x40, b"\x7f\x10\xda\xbe", "vdi"))


def sniff_format(path: str, offset: int = 0) -> str | None:
    """The image format by its magic number, for the binary formats only."""
    try:
        with open(path, "rb") as fh:
            fh.seek(offset)
            head = fh.read(0x48)
    except OSError:
        return None
    for at, magic, fmt in _MAGIC:
        if head[at:at + len(magic)] == magic:
            return fmt
    return None


def _check_tar_members(tf: tarfile.TarFile, where: str) -> dict[str, tarfile.TarInfo]:
    members: dict[str, tarfile.TarInfo] = {}
    for m in tf.getmembers():
        name = _safe_member_name(m.name, where)
        if m.issym() or m.islnk():
            raise OvfError(f"the archive member '{m.name}' is a link (refused: links could reach files "
                           "outside the work directory)", where)
        if m.isdir():
            continue
        if not m.isfile():
            raise OvfError(f"the archive member '{m.name}' is not a regular file (device or fifo: refused)",
                           where)
        if name in members:
            raise OvfError(f"the archive holds '{name}' twice", where)
        members[name] = m
    return members


def _copy(src, dst_path: str, work_dir: str, cancel: threading.Event | None, total: int,
          progress: Progress | None, done0: int = 0) -> int:
    if not _inside(work_dir, dst_path):
        raise OvfError(f"'{dst_path}' would be written outside the work directory", work_dir)
    os.makedirs(os.path.dirname(dst_path), exist_ok=True)
    done = 0
    with open(dst_path, "xb") as out:
        while chunk := src.read(COPY_CHUNK):
            if cancel is not None and cancel.is_set():
                raise Cancelled("read", dst_path)
            out.write(chunk)
            done += len(chunk)
            if progress is not None:
                progress(done0 + done, total)
    return done


def open_package(path: str | os.PathLike, *, work_dir: str | None = None,
                 cancel: threading.Event | None = None, progress: Progress | None = None,
                 known_os: Callable[[str], bool] | None = None) -> OvfPackage:
    """Blocking: read and check an ``.ova`` or ``.ovf``; returns the parsed package.

    An OVA is extracted into a new temporary directory (under ``work_dir``
    when given) that the package owns: call :meth:`OvfPackage.close` when
    done. ``progress(bytes_done, bytes_total)`` follows the extraction and
    the digest checks. Raises :class:`OvfError`.
    """
    src = os.path.abspath(os.fspath(path))
    where = f"'{src}'"
    if not os.path.exists(src):
        raise OvfError("no such file", where)
    if os.path.isdir(src):
        raise OvfError("this is a directory: give the .ova file or the .ovf file inside it", where)
    from ..files.userfile import file_problem

    problem = file_problem(src)
    if problem:  # a FIFO would block the reader, a device never end
        raise OvfError(f"this is {problem}", where)
    tmp = tempfile.mkdtemp(prefix="vmtui-ovf-", dir=work_dir)
    try:
        pkg = _open(src, where, tmp, cancel, progress, known_os)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return pkg


def _is_tar(path: str) -> bool:
    try:
        return tarfile.is_tarfile(path)
    except OSError:
        return False


def _open(src: str, where: str, tmp: str, cancel, progress, known_os) -> OvfPackage:
    lower = src.lower()
    if lower.endswith(".ovf"):
        base_dir = os.path.dirname(src)
        ovf_name = os.path.basename(src)
        try:
            with open(src, "rb") as fh:
                data = fh.read(MAX_DESCRIPTOR + 1)
        except OSError as err:
            raise OvfError(err.strerror or str(err), where) from None
        pkg = _parse_envelope(data, src, ovf_name, known_os)
        pkg.work_dir = tmp
        _locate_files_dir(pkg, base_dir, where)
        mf_path = os.path.join(base_dir, os.path.splitext(ovf_name)[0] + ".mf")
        cert = os.path.splitext(ovf_name)[0] + ".cert"
        if os.path.isfile(os.path.join(base_dir, cert)):
            pkg.certificate = cert
        manifest = None
        if os.path.isfile(mf_path):
            manifest = Path(mf_path).read_text(encoding="utf-8", errors="replace")
        files = {ovf_name: src}
        files.update({f.href: f.path for f in pkg.files.values() if f.path})
        if manifest is not None:  # listed files next to the .ovf that nothing references
            for rel in parse_manifest(manifest, f"manifest '{os.path.basename(mf_path)}'"):
                p = os.path.join(base_dir, rel)
                if rel not in files and _inside(base_dir, p) and os.path.isfile(p):
                    files[rel] = p
        _check_manifest(pkg, manifest, os.path.basename(mf_path), files, cancel, progress)
        for f in pkg.files.values():
            if f.compression == "gzip" and f.path:
                f.path = _gunzip(f.path, os.path.join(tmp, "files", *f.href.split("/")), tmp, cancel, where)
        _attach_disk_paths(pkg, where)
        return pkg
    if not _is_tar(src):
        if lower.endswith(".ova"):
            raise OvfError("this is not a tar archive (an OVA must be an uncompressed tar)", where)
        raise OvfError("not an .ova (tar) or .ovf file", where)
    try:
        tf = tarfile.open(src, "r:*")
    except (tarfile.TarError, OSError) as err:
        raise OvfError(f"cannot read the archive: {err}", where) from None
    plain = not isinstance(getattr(tf, "fileobj", None), (gzip.GzipFile,)) and _plain_tar(src)
    with tf:
        members = _check_tar_members(tf, where)
        ovfs = [n for n in members if n.lower().endswith(".ovf")]
        if not ovfs:
            raise OvfError("the archive holds no .ovf descriptor", where)
        if len(ovfs) > 1:
            top = [n for n in ovfs if "/" not in n]
            if len(top) != 1:
                raise OvfError("the archive holds more than one .ovf descriptor: " + ", ".join(sorted(ovfs)),
                               where)
            ovfs = top
        ovf_name = ovfs[0]
        prefix = posixpath.dirname(ovf_name)
        m = members[ovf_name]
        if m.size > MAX_DESCRIPTOR:
            raise OvfError(f"the descriptor '{ovf_name}' is too large ({m.size} bytes)", where)
        fh = tf.extractfile(m)
        data = fh.read() if fh else b""
        pkg = _parse_envelope(data, src, ovf_name, known_os)
        pkg.work_dir = tmp
        # which members we need
        wanted: dict[str, OvfFile] = {}
        for f in pkg.files.values():
            name = posixpath.join(prefix, f.href) if prefix else f.href
            if name not in members:
                disk_users = [d.disk_id for d in pkg.disks if d.file_ref == f.id]
                what = f"disk '{disk_users[0]}'" if disk_users else f"file '{f.id}'"
                raise OvfError(f"the file '{f.href}' of {what} is missing from the archive", where)
            wanted[name] = f
        mf_name = posixpath.splitext(ovf_name)[0] + ".mf"
        if posixpath.splitext(ovf_name)[0] + ".cert" in members:
            pkg.certificate = posixpath.basename(posixpath.splitext(ovf_name)[0] + ".cert")
        manifest = None
        if mf_name in members:
            mfh = tf.extractfile(members[mf_name])
            manifest = (mfh.read(MAX_DESCRIPTOR) if mfh else b"").decode("utf-8", "replace")
        ovf_local = os.path.join(tmp, "descriptor.ovf")
        with open(ovf_local, "wb") as out:
            out.write(data)
        locs: dict = {}
        if manifest is not None:  # listed members nothing references (nvram, ...) are checked too
            listed = parse_manifest(manifest, f"manifest '{posixpath.basename(mf_name)}'")
            for rel in listed:
                try:
                    rel_safe = _safe_href(rel, f"manifest '{posixpath.basename(mf_name)}'")
                except OvfError:
                    continue  # reported as "not in the package" by the check
                name = posixpath.join(prefix, rel_safe) if prefix else rel_safe
                if name in members and name not in wanted and name != ovf_name:
                    if plain:
                        locs[rel] = (src, members[name].offset_data, members[name].size)
                    else:
                        dest = os.path.join(tmp, "extra", *name.split("/"))
                        mfh = tf.extractfile(members[name])
                        if mfh is not None:
                            _copy(mfh, dest, tmp, cancel, 0, None)
                            locs[rel] = dest
        # disk images in a plain tar are read where they are (no copy); the
        # rest (compressed files, text descriptors, compressed tars) is extracted
        extract = {}
        for name, f in wanted.items():
            mem = members[name]
            if plain and f.compression is None and sniff_format(src, mem.offset_data) is not None:
                f.path, f.offset, f.length = src, mem.offset_data, mem.size
                locs[f.href] = (src, mem.offset_data, mem.size)
            else:
                extract[name] = f
        total = sum(members[n].size for n in extract)
        done = 0
        for name, f in extract.items():
            dest = os.path.join(tmp, "files", *name.split("/"))
            mfh = tf.extractfile(members[name])
            if mfh is None:
                raise OvfError(f"cannot read '{name}' from the archive", where)
            raw_dest = dest + ".gz" if f.compression == "gzip" else dest
            done += _copy(mfh, raw_dest, tmp, cancel, total, progress, done)
            locs[f.href] = raw_dest
            f.path = raw_dest
        # manifest names are relative to the descriptor's directory
        _check_manifest(pkg, manifest, posixpath.basename(mf_name),
                        {posixpath.basename(ovf_name): ovf_local, **locs}, cancel, progress)
        for f in extract.values():
            if f.compression == "gzip" and f.path:
                f.path = _gunzip(f.path, f.path[:-3], tmp, cancel, where)
    _attach_disk_paths(pkg, where)
    return pkg


def _plain_tar(path: str) -> bool:
    """An uncompressed tar (members can be read in place)."""
    try:
        with tarfile.open(path, "r:"):
            return True
    except (tarfile.TarError, OSError):
        return False


def _gunzip(path: str, dest: str, work_dir: str, cancel, where: str) -> str:
    try:
        with gzip.open(path, "rb") as src:
            _copy(src, dest, work_dir, cancel, 0, None)
    except (OSError, EOFError) as err:
        raise OvfError(f"cannot decompress '{os.path.basename(path)}': {err}", where) from None
    if _inside(work_dir, path):
        os.unlink(path)
    return dest


def _locate_files_dir(pkg: OvfPackage, base_dir: str, where: str) -> None:
    """For a bare .ovf: find every referenced file next to it."""
    for f in pkg.files.values():
        p = os.path.join(base_dir, *f.href.split("/"))
        if not _inside(base_dir, p):
            raise OvfError(f"the file reference '{f.href}' leaves the package directory (a link?)", where)
        if not os.path.isfile(p):
            disk_users = [d.disk_id for d in pkg.disks if d.file_ref == f.id]
            what = f"disk '{disk_users[0]}'" if disk_users else f"file '{f.id}'"
            raise OvfError(f"the file '{f.href}' of {what} is missing (looked in {base_dir})", where)
        f.path = p


def _attach_disk_paths(pkg: OvfPackage, where: str) -> None:
    for d in pkg.disks:
        if d.file_ref:
            f = pkg.files.get(d.file_ref)
            if f is None:
                raise OvfError(f"disk '{d.disk_id}' refers to file '{d.file_ref}' that References does not "
                               "list", where)
            d.path, d.offset, d.length, d.file_name = f.path, f.offset, f.length, f.href


def _check_manifest(pkg: OvfPackage, manifest: str | None, mf_name: str, files: dict,
                    cancel, progress: Progress | None = None) -> None:
    if manifest is not None and pkg.certificate:
        pkg.warnings.append(f"The package is signed ({pkg.certificate}); the signature was not verified, "
                            "the manifest digests were.")
    if manifest is None:
        pkg.manifest = None
        pkg.warnings.append("The package has no manifest (.mf): file digests were not checked.")
        return
    where = f"manifest '{mf_name}'"
    entries = parse_manifest(manifest, where)
    algos = set()
    for name in entries:
        local = files.get(name)
        if local is None or not os.path.isfile(local if isinstance(local, str) else local[0]):
            raise OvfError(f"the manifest lists '{name}', which the package does not hold", where)
    total = sum(_loc_size(files[n]) for n in entries)
    done = [0]

    def tick(n: int) -> None:
        done[0] += n
        if progress is not None:
            progress(done[0], total)

    for name, (algo, digest) in entries.items():
        local = files[name]
        got = _digest(local, algo, cancel, tick)
        if got != digest:
            raise OvfError(f"the {algo.upper()} digest of '{name}' does not match the manifest "
                           f"(expected {digest[:16]}…, got {got[:16]}…): the file is damaged or was changed",
                           where, "Download the package again; refusing to import it.")
        algos.add(algo.upper())
    unlisted = sorted(f.href for f in pkg.files.values() if f.href not in entries)
    if unlisted:
        pkg.warnings.append("Not in the manifest (not checked): " + ", ".join(unlisted))
    pkg.manifest = f"checked ({', '.join(sorted(algos)) or 'empty'})"


# --- the envelope ------------------------------------------------------------


def parse_envelope(data: bytes | str, source: str = "descriptor.ovf", *,
                   known_os: Callable[[str], bool] | None = None) -> OvfPackage:
    """Parse an OVF envelope (no file checks): the pure part of :func:`open_package`."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    return _parse_envelope(data, source, os.path.basename(source), known_os)


def _parse_envelope(data: bytes, source: str, ovf_name: str, known_os) -> OvfPackage:
    where = f"'{ovf_name}'"
    if len(data) > MAX_DESCRIPTOR:
        raise OvfError("the descriptor is too large", where)
    if b"<!DOCTYPE" in data[:4096] or b"<!ENTITY" in data:
        raise OvfError("the descriptor declares a DTD or entities (refused)", where)
    try:
        root = ET.fromstring(data)
    except ET.ParseError as err:
        line, col = getattr(err, "position", (0, 0))
        raise OvfError(f"malformed XML at line {line}, column {col}: {err.msg if hasattr(err, 'msg') else err}",
                       where) from None
    if _local(root.tag) != "Envelope" or _ns(root.tag) not in OVF_NAMESPACES:
        raise OvfError(f"the root element is <{_local(root.tag)}> in namespace '{_ns(root.tag) or 'none'}', "
                       "not an OVF 1.x/2.x <Envelope>", where)
    version = "2.x" if _ns(root.tag) == OVF2_NS else "1.x"

    files: dict[str, OvfFile] = {}
    refs = _child(root, "References")
    if refs is not None:
        for f in _children(refs, "File"):
            fid, href = _attr(f, "id"), _attr(f, "href")
            if not fid or not href:
                raise OvfError("a <File> in References lacks ovf:id or ovf:href", where)
            comp = (_attr(f, "compression") or "").strip().lower() or None
            if comp not in (None, "identity", "gzip"):
                raise OvfError(f"file '{href}' uses compression '{comp}': only gzip is supported", where)
            if _attr(f, "chunkSize"):
                raise OvfError(f"file '{href}' is split into chunks (ovf:chunkSize): not supported", where)
            size = _attr(f, "size")
            files[fid] = OvfFile(fid, _safe_href(href, where),
                                 _int(size, f"the size of file '{href}'", where) if size else None,
                                 None if comp == "identity" else comp)

    disks: dict[str, OvfDisk] = {}
    networks: list[str] = []
    vs = None
    for sec in root:
        loc = _local(sec.tag)
        if loc == "DiskSection":
            for d in _children(sec, "Disk"):
                did = _attr(d, "diskId")
                if not did:
                    raise OvfError("a <Disk> lacks ovf:diskId", where)
                cap_text = _attr(d, "capacity")
                if cap_text is None:
                    raise OvfError(f"disk '{did}' has no ovf:capacity", where)
                if cap_text.strip().startswith("${"):
                    raise OvfError(f"disk '{did}' takes its capacity from a property ({cap_text}): not supported",
                                   where)
                try:
                    unit = parse_units(_attr(d, "capacityAllocationUnits"))
                except ValueError as err:
                    raise OvfError(f"disk '{did}': {err}", where) from None
                cap = _int(cap_text, f"the capacity of disk '{did}'", where) * unit
                ref = _attr(d, "fileRef")
                if ref and ref not in files:
                    raise OvfError(f"disk '{did}' refers to file '{ref}' that References does not list", where)
                pop = _attr(d, "populatedSize")
                disks[did] = OvfDisk(did, cap, ref, _attr(d, "format") or "",
                                     _int(pop, "ovf:populatedSize", where) if pop else None)
        elif loc == "NetworkSection":
            for n in _children(sec, "Network"):
                if _attr(n, "name"):
                    networks.append(_attr(n, "name") or "")
        elif loc == "VirtualSystem":
            vs = sec
        elif loc == "VirtualSystemCollection":
            systems = [c for c in sec.iter() if _local(c.tag) == "VirtualSystem"]
            if len(systems) != 1:
                raise OvfError(f"the package holds {len(systems)} virtual systems (a vApp): import them "
                               "one at a time is not supported", where)
            vs = systems[0]
    if vs is None:
        raise OvfError("the envelope has no <VirtualSystem>", where)

    name = _child_text(vs, "Name") or (_attr(vs, "id") or "").strip()
    pkg = OvfPackage(source=source, version=version, name=name or "imported-vm", files=files,
                     networks=networks)
    ann = _child(vs, "AnnotationSection")
    if ann is not None:
        pkg.description = _child_text(ann, "Annotation")

    oss = _child(vs, "OperatingSystemSection")
    hint = ""
    if oss is not None:
        cim = _attr(oss, "id")
        if cim and cim.strip().isdigit():
            pkg.os_cim_id = int(cim)
        hint = oss.get(f"{{{VMTUI_NS}}}osinfo") or ""
        vmw_type = oss.get(f"{{{VMW_NS}}}osType") or ""
        desc = _child_text(oss, "Description")
        pkg.os_type = vmw_type or desc or (CIM_OS[pkg.os_cim_id][0] if pkg.os_cim_id in CIM_OS else "")
        if hint and (known_os is None or known_os(hint)):
            pkg.osinfo = hint
        else:
            pkg.osinfo = map_os(pkg.os_cim_id, vmw_type, desc, known=known_os)

    hw = _child(vs, "VirtualHardwareSection")
    if hw is None:
        raise OvfError(f"virtual system '{pkg.name}' has no <VirtualHardwareSection>", where)
    _parse_hardware(pkg, hw, disks, where)
    return pkg


def _item_fields(item: ET.Element) -> dict[str, str]:
    return {_local(c.tag): (c.text or "").strip() for c in item}


def _parse_hardware(pkg: OvfPackage, hw: ET.Element, disks: dict[str, OvfDisk], where: str) -> None:
    items = [c for c in hw if _local(c.tag) in ("Item", "StorageItem", "EthernetPortItem")]
    controllers: dict[str, str] = {}
    for it in items:
        f = _item_fields(it)
        rt = f.get("ResourceType", "")
        if rt == str(RT_IDE):
            controllers[f.get("InstanceID", "")] = "ide"
        elif rt == str(RT_SCSI):
            controllers[f.get("InstanceID", "")] = "scsi"
        elif rt == str(RT_SATA) and ("sata" in f.get("ResourceSubType", "").lower()
                                     or "ahci" in f.get("ResourceSubType", "").lower()):
            controllers[f.get("InstanceID", "")] = "sata"
    used: list[OvfDisk] = []
    cpu_seen = mem_seen = False
    for it in items:
        f = _item_fields(it)
        rt_text = f.get("ResourceType", "")
        if not rt_text.isdigit():
            continue
        rt = int(rt_text)
        label = f.get("ElementName") or f.get("InstanceID") or f"item of type {rt}"
        if rt == RT_PROCESSOR:
            n = _int(f.get("VirtualQuantity"), f"the CPU count ({label})", where)
            if n < 1:
                raise OvfError("the CPU count is 0", where)
            pkg.vcpus, cpu_seen = n, True
        elif rt == RT_MEMORY:
            try:
                unit = parse_units(f.get("AllocationUnits"), default=1024 * 1024)
            except ValueError as err:
                raise OvfError(f"memory: {err}", where) from None
            n = _int(f.get("VirtualQuantity"), f"the memory size ({label})", where) * unit
            if n < 1024 * 1024:
                raise OvfError(f"the memory size is {n} bytes: less than 1 MiB", where)
            pkg.memory_mib, mem_seen = max(1, n // (1024 * 1024)), True
        elif rt == RT_DISK:
            hr = f.get("HostResource", "")
            m = re.match(r"^(?:ovf:)?/(disk|file)/(.+)$", hr)
            if not m:
                raise OvfError(f"disk item '{label}' has HostResource '{hr}': expected ovf:/disk/<id>", where)
            kind, ident = m.groups()
            if kind == "disk":
                d = disks.get(ident)
                if d is None:
                    raise OvfError(f"disk item '{label}' refers to disk '{ident}' that DiskSection does not "
                                   "list", where)
            else:
                if ident not in pkg.files:
                    raise OvfError(f"disk item '{label}' refers to file '{ident}' that References does not "
                                   "list", where)
                d = OvfDisk(ident, pkg.files[ident].size or 0, ident)
            d.controller = controllers.get(f.get("Parent", ""), "")
            if d not in used:
                used.append(d)
        elif rt == RT_ETHERNET:
            net = f.get("Connection", "")
            pkg.nics.append(OvfNic(net, f.get("ResourceSubType", ""), f.get("Address") or None))
        elif rt in (RT_CD, RT_DVD) and f.get("HostResource"):
            pkg.warnings.append(f"CD/DVD '{label}' with media '{f.get('HostResource')}' is not imported.")
    if not cpu_seen:
        pkg.warnings.append("No CPU item: 1 vCPU assumed.")
    if not mem_seen:
        pkg.warnings.append("No memory item: 1024 MiB assumed.")
    for d in disks.values():  # listed but not attached: still import them, after the others
        if d not in used:
            used.append(d)
    pkg.disks = used
    # firmware hint: VMware's <vmw:Config vmw:key="firmware" vmw:value="efi"/>, VirtualBox's Firmware
    for el in hw.iter():
        loc = _local(el.tag)
        key = el.get(f"{{{VMW_NS}}}key") or el.get("key")
        value = (el.get(f"{{{VMW_NS}}}value") or el.get("value") or "").lower()
        if loc == "Config" and key == "firmware":
            pkg.firmware = "uefi" if value == "efi" else "bios" if value == "bios" else pkg.firmware
        elif loc == "Config" and key == SECURE_BOOT_KEY:
            pkg.secure_boot = yes(value)
    if pkg.firmware is None:
        for el in hw.iter():
            if _local(el.tag) == "Firmware" and (el.get("type") or "").upper() in ("EFI", "EFI64", "UEFI"):
                pkg.firmware = "uefi"


# --- qemu-img --------------------------------------------------------------

_PROGRESS_RE = re.compile(rb"\((\d+(?:\.\d+)?)/100%\)")


def _format_of(disk: OvfDisk) -> str | None:
    f = disk.format.lower()
    if "vmdk" in f:
        return "vmdk"
    if "qcow" in f:
        return "qcow2"
    if "vhdx" in f:
        return "vhdx"
    if "vhd" in f:
        return "vpc"
    if "vdi" in f or "virtualbox" in f:
        return "vdi"
    return None


ALLOWED_SOURCE_FORMATS = ("vmdk", "qcow2", "raw", "vdi", "vhdx", "vpc")


def image_info(path: str, fmt: str | None = None, *, label: str | None = None) -> dict:
    cmd = ["qemu-img", "info", "--output=json"] + (["-f", fmt] if fmt else []) + [path]
    where = f"'{label or path}'"
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise OvfError(f"qemu-img info failed: {err}", where) from None
    if out.returncode != 0:
        raise OvfError(f"qemu-img cannot read the image: {_last_line(out.stderr)}", where)
    return json.loads(out.stdout)


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in (text or "").splitlines() if ln.strip()]
    return lines[-1] if lines else "unknown error"


def region_spec(fmt: str, path: str, offset: int, length: int) -> str:
    """A qemu ``json:`` filename for an image stored at ``offset`` inside ``path``."""
    return "json:" + json.dumps({"driver": fmt, "file": {"driver": "raw", "offset": offset, "size": length,
                                                          "file": {"driver": "file", "filename": path}}})


def source_args(disk: OvfDisk, fmt: str) -> list[str]:
    """qemu-img arguments naming the image of ``disk``."""
    if disk.length is None:
        return ["-f", fmt, disk.path or ""]
    return [region_spec(fmt, disk.path or "", disk.offset, disk.length)]


def check_source_image(path: str, declared: str | None, *, offset: int = 0, length: int | None = None,
                       label: str | None = None) -> tuple[str, int]:
    """(qemu-img format, virtual size) of an image from a package; refuses
    backing files, external data files and extents outside the image's
    directory (a crafted image could otherwise read host files). With
    ``length`` the image is the ``length`` bytes at ``offset`` of ``path``
    (a member of an OVA read in place): only binary formats are allowed there."""
    where = f"'{label or os.path.basename(path)}'"
    if length is not None:
        fmt0 = sniff_format(path, offset)
        if fmt0 is None:
            raise OvfError("not a disk image qemu-img can read in place", where)
        info = image_info(region_spec(fmt0, path, offset, length), None, label=label)
    else:
        info = image_info(path, declared, label=label)
    fmt = info.get("format", "")
    if fmt not in ALLOWED_SOURCE_FORMATS:
        raise OvfError(f"unsupported disk image format '{fmt}'", where)
    if info.get("backing-filename") or info.get("full-backing-filename"):
        raise OvfError("the disk image has a backing file (refused: it could name any file on this host)",
                       where)
    base = os.path.dirname(os.path.realpath(path))
    specific = (info.get("format-specific") or {}).get("data") or {}
    if specific.get("data-file"):
        raise OvfError(f"the qcow2 image keeps its data in an external file '{specific.get('data-file')}' "
                       "(refused: it could name any file on this host)", where)
    if length is None:  # a sparse VMDK read in place is its own single extent
        for ext in specific.get("extents") or []:
            fn = ext.get("filename")
            if fn and not os.path.isabs(fn):
                fn = os.path.join(base, fn)
            if fn and not _inside(base, fn):
                raise OvfError(f"the VMDK has an extent outside the package: '{fn}' (refused)", where)
    return fmt, int(info.get("virtual-size") or 0)


def run_qemu_img(args: list[str], *, progress: Callable[[float], None] | None = None,
                 cancel: threading.Event | None = None, what: str = "convert", where: str = "") -> None:
    """``qemu-img <args>`` (``-p`` is added for convert); ``progress(0..1)``
    from the ``(n/100%)`` lines; the process is killed when ``cancel`` is set."""
    cmd = ["qemu-img"] + args
    if args and args[0] == "convert" and "-p" not in args:
        cmd.insert(2, "-p")
    try:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    except OSError as err:
        raise VmtuiError(what, where, f"cannot run qemu-img: {err.strerror or err}",
                         "Install qemu-utils (qemu-img).") from None
    err_chunks: list[bytes] = []

    def read_err() -> None:
        assert proc.stderr is not None
        err_chunks.append(proc.stderr.read())

    t = threading.Thread(target=read_err, daemon=True)
    t.start()
    stopper = None
    if cancel is not None:
        def watch() -> None:
            while proc.poll() is None:
                if cancel.wait(0.2):
                    proc.kill()
                    return
        stopper = threading.Thread(target=watch, daemon=True)
        stopper.start()
    buf = b""
    assert proc.stdout is not None
    while True:
        chunk = proc.stdout.read1(4096) if hasattr(proc.stdout, "read1") else proc.stdout.read(64)
        if not chunk:
            break
        buf += chunk
        matches = list(_PROGRESS_RE.finditer(buf))
        if matches and progress is not None:
            try:
                progress(min(1.0, float(matches[-1].group(1)) / 100.0))
            except Exception:  # a broken display must not break the work
                log.exception("progress callback failed")
        buf = buf[-64:]
    rc = proc.wait()
    t.join(timeout=5)
    if cancel is not None and cancel.is_set():
        raise Cancelled(what, where)
    if rc != 0:
        raise VmtuiError(what, where, f"qemu-img failed: {_last_line(b''.join(err_chunks).decode('utf-8', 'replace'))}")
    if progress is not None:
        progress(1.0)


# --- import: disks into a pool ----------------------------------------------


@dataclass
class ImportedVolume:
    disk_id: str
    pool: str
    name: str
    path: str
    key: str

    @property
    def ref(self) -> str:
        return f"{self.pool}/{self.name}"


ImportProgress = Callable[[str, float], None]  # (message, fraction of the whole import)


def volume_names(pkg: OvfPackage, vm_name: str, taken: Iterable[str] = ()) -> list[str]:
    """``<vm>.qcow2``, ``<vm>-1.qcow2``, ... one per disk, avoiding ``taken``."""
    taken = set(taken)
    out = []
    n = 0
    for _ in pkg.disks:
        while True:
            cand = f"{vm_name}.qcow2" if n == 0 else f"{vm_name}-{n}.qcow2"
            n += 1
            if cand not in taken:
                break
        taken.add(cand)
        out.append(cand)
    return out


def import_disks(conn: libvirt.virConnect, pkg: OvfPackage, pool: str, names: list[str], *,
                 local: bool, progress: ImportProgress | None = None,
                 cancel: threading.Event | None = None, tmp_dir: str | None = None) -> list[ImportedVolume]:
    """Blocking: convert every disk of ``pkg`` to a qcow2 volume ``names[i]`` in ``pool``.

    ``local``: the libvirt host is this machine; a directory pool is then
    written in place (and refreshed), else each disk is converted to a
    temporary file here and uploaded through libvirt. On any failure (or
    cancel) the volumes made so far are deleted and the error raised.
    """
    if len(names) != len(pkg.disks):
        raise ValueError("one volume name per disk")
    made: list[ImportedVolume] = []
    report = progress or (lambda m, f: None)
    try:
        pool_obj = conn.storagePoolLookupByName(pool)
        if not pool_obj.isActive():
            raise VmtuiError("import into", f"pool '{pool}'", "the pool is not active: start it first")
        info = storage.pool_info(conn, pool)
        for name in names:
            problem = storage.validate_volume_name(name)
            if problem:
                raise VmtuiError("import into", f"pool '{pool}'", f"volume '{name}': {problem}")
            if storage.volume_exists(conn, pool_obj, name):
                raise VmtuiError("import into", f"pool '{pool}'", f"a volume named '{name}' already exists")
    except libvirt.libvirtError as err:
        if is_connection_lost(err):
            raise
        raise from_libvirt("import into", f"pool '{pool}'", err) from None
    direct = local and info.type in ("dir", "fs", "netfs") and bool(info.path) and os.path.isdir(info.path or "")
    count = max(1, len(pkg.disks))
    try:
        for i, (disk, name) in enumerate(zip(pkg.disks, names)):
            base, span = i / count, 1.0 / count
            label = f"disk {i + 1} of {len(pkg.disks)} ({disk.disk_id})"
            where = f"{label} → {pool}/{name}"
            if cancel is not None and cancel.is_set():
                raise Cancelled("import", where)
            vol = _import_one(conn, pool_obj, info, disk, name, direct=direct, tmp_dir=tmp_dir or pkg.work_dir,
                              report=lambda msg, frac, b=base, s=span: report(msg, b + s * frac),
                              label=label, cancel=cancel, where=where)
            made.append(vol)
        report("Disks imported", 1.0)
        return made
    except BaseException:
        remove_volumes(conn, made)
        raise


def _import_one(conn, pool_obj, info: storage.PoolInfo, disk: OvfDisk, name: str, *, direct: bool,
                tmp_dir: str | None, report, label: str, cancel, where: str) -> ImportedVolume:
    if disk.path is None:  # an empty disk of the given capacity
        report(f"Creating empty {label}", 0.0)
        v = storage.create_volume(conn, info.name, name, max(disk.capacity, 1024 * 1024), "qcow2", "thin")
        return ImportedVolume(disk.disk_id, info.name, v.name, v.path, v.key)
    declared = _format_of(disk)
    if declared == "qcow2":
        declared = None  # probe: qcow2 vs raw is told by the header
    src_fmt, vsize = check_source_image(disk.path, declared, offset=disk.offset, length=disk.length,
                                        label=disk.file_name or None)
    if direct:
        dest = os.path.join(info.path or "", name)
        if os.path.exists(dest):
            raise VmtuiError("import", where, f"'{dest}' already exists")
    else:
        fd, dest = tempfile.mkstemp(prefix="vmtui-import-", suffix=".qcow2", dir=tmp_dir)
        os.close(fd)
    try:
        report(f"Converting {label} ({src_fmt} → qcow2)", 0.0)
        span = 1.0 if direct else 0.6
        run_qemu_img(["convert", *source_args(disk, src_fmt), "-O", "qcow2", "-o", "compat=1.1", dest],
                     progress=lambda f: report(f"Converting {label} ({src_fmt} → qcow2)", f * span),
                     cancel=cancel, where=where)
        if disk.capacity > vsize:  # the envelope's capacity is the guest's disk size
            run_qemu_img(["resize", "-f", "qcow2", dest, str(disk.capacity)], where=where)
        if direct:
            try:
                os.chmod(dest, 0o600)
            except OSError:
                pass
            try:
                _refresh(pool_obj)
                vol = pool_obj.storageVolLookupByName(name)
                path = vol.path()
                key = vol.key()
            except libvirt.libvirtError as err:
                raise from_libvirt("import", where, err) from None
            return ImportedVolume(disk.disk_id, info.name, name, path, key)
        report(f"Uploading {label}", 0.6)
        v = storage.upload_file(conn, info.name, name, dest, "qcow2",
                                lambda done, total: report(f"Uploading {label}",
                                                           0.6 + 0.4 * (done / total if total else 1)))
        return ImportedVolume(disk.disk_id, info.name, v.name, v.path, v.key)
    except BaseException:
        if direct:
            try:
                os.unlink(dest)
                _refresh(pool_obj)
            except (OSError, libvirt.libvirtError):
                pass
        raise
    finally:
        if not direct:
            try:
                os.unlink(dest)
            except OSError:
                pass


def _refresh(pool_obj) -> None:
    import time
    for _ in range(50):
        try:
            pool_obj.refresh(0)
            return
        except libvirt.libvirtError as err:
            if err.get_error_code() != libvirt.VIR_ERR_OPERATION_INVALID:
                raise
            time.sleep(0.1)
    pool_obj.refresh(0)


def remove_volumes(conn: libvirt.virConnect, vols: Iterable[ImportedVolume]) -> list[str]:
    """Delete imported volumes (rollback); returns what could not be deleted."""
    left = []
    for v in reversed(list(vols)):
        try:
            storage.delete_volume(conn, v.key, force=True)
        except VmtuiError as err:
            log.warning("cannot remove imported volume %s: %s", v.ref, err)
            left.append(f"{v.ref} ({err.cause})")
        except libvirt.libvirtError as err:
            left.append(f"{v.ref} ({err})")
    return left


# --- mapping to a VmSpec ----------------------------------------------------

_NIC_MODELS = {"e1000": "e1000", "e1000e": "e1000e", "vmxnet3": "virtio", "vmxnet": "virtio",
               "vmxnet2": "virtio", "pcnet32": "e1000", "virtio": "virtio", "rtl8139": "rtl8139"}


def _safe_vm_name(name: str) -> str:
    name = re.sub(r"[^A-Za-z0-9_.+-]+", "-", name.strip()).strip("-.")
    return name[:60] or "imported-vm"


def to_vmspec(pkg: OvfPackage, volumes: list[ImportedVolume], *, name: str | None = None,
              host_networks: Iterable[str] = (), virtio: bool | None = None,
              virt_type: str = "kvm", start: bool = False) -> VmSpec:
    """A VmSpec defining the imported VM: the first volume is the ``import``
    image (boot disk), the others are attached as existing disks.

    ``virtio``: paravirtual disk/NIC; default: yes for a Linux or unknown
    guest type that osinfo calls virtio-capable, i.e. anything not Windows.
    NICs go to the host network of the same name, else ``default``, else
    the first network; without networks on the host the VM gets none.
    """
    os_id = pkg.osinfo or "generic"
    windows = os_id.startswith("win")
    if virtio is None:
        virtio = not windows and os_id != "generic" or any("virtio" in n.model.lower() for n in pkg.nics)
    bus = "virtio" if virtio else "sata"
    disks = [DiskSpec(mode="existing", path=v.ref, format="qcow2", bus=bus) for v in volumes]
    nets = list(host_networks)
    nics = []
    for n in pkg.nics:
        if n.network in nets:
            src = n.network
        elif "default" in nets:
            src = "default"
        elif nets:
            src = nets[0]
        else:
            continue
        model = "virtio" if virtio else _NIC_MODELS.get(n.model.lower(), "e1000e")
        if model == "virtio" and not virtio:
            model = "e1000e"
        nics.append(NicSpec(kind="network", source=src, model=model, mac=n.mac))
    spec = VmSpec(
        name=name or _safe_vm_name(pkg.name),
        description=pkg.description,
        os=os_id,
        firmware="uefi" if pkg.firmware == "uefi" else "bios",
        secure_boot=pkg.firmware == "uefi" and pkg.secure_boot,
        memory_mib=pkg.memory_mib,
        vcpus=pkg.vcpus,
        virt_type="qemu" if virt_type == "qemu" else "kvm",
        cpu_mode="host-model" if virt_type == "qemu" else "host-passthrough",  # TCG refuses passthrough
        install=InstallSource(kind="import", image=volumes[0].ref if volumes else None),
        disks=disks,
        nics=nics,
        start_install=start,
    )
    if not volumes:
        spec.install = InstallSource(kind="none")
    return spec


# --- export -----------------------------------------------------------------


@dataclass
class ExportDisk:
    target: str
    source: str  # host path
    format: str  # qemu-img format of the source
    bus: str
    capacity: int = 0


@dataclass
class ExportPlan:
    name: str
    description: str
    vcpus: int
    memory_mib: int
    osinfo: str
    firmware: str  # bios / uefi
    disks: list[ExportDisk]
    nics: list[tuple[str, str, str | None]]  # (network or bridge name, model, mac)
    secure_boot: bool = False


def plan_export(domain_xml: str, osinfo: str | None = None, *, keep_macs: bool = False) -> ExportPlan:
    """What an export writes, from the (inactive) domain XML, read through
    :class:`vmtui.core.xml.domain_model.Domain` (so firmware and Secure Boot are what
    the details screen and ``vmtui export`` say too).

    MAC addresses are left out unless ``keep_macs``: an appliance imported
    next to the VM it came from must not clash with it on the network."""
    dom = Domain.parse(domain_xml, register=False)
    name = dom.name or "vm"
    vcpus = dom.vcpus or 1
    mem_kib = dom.current_memory_kib
    if mem_kib is None:
        mem_kib = dom.memory_kib
    if mem_kib is None:
        mem_kib = 1024 * 1024
    short = osinfo or dom.os_short_id() or "generic"
    os_m = dom.os
    firmware = "uefi" if os_m.is_uefi else "bios"
    disks = []
    for d in dom.devices.disks:
        if d.device_kind != "disk":
            continue
        path = d.volume_ref or d.source_file or d.source_dev
        if not path:
            continue
        disks.append(ExportDisk(d.target_dev or "", path, d.driver_type or "raw", d.target_bus or "virtio"))
    nics = []
    for i in dom.devices.interfaces:
        net = i.source_network or i.source_bridge or i.source_dev or ""
        nics.append((net or "default", i.model or "", i.mac if keep_macs else None))
    return ExportPlan(name, dom.description or "", vcpus, max(1, mem_kib // 1024), short, firmware, disks, nics,
                      secure_boot=os_m.secure_boot)


def build_envelope(plan: ExportPlan, files: list[tuple[str, int, int, int | None]]) -> bytes:
    """An OVF 1.0 envelope. ``files``: (href, file size, capacity, populated size) per disk."""
    ET.register_namespace("ovf", OVF1_NS)
    ET.register_namespace("rasd", RASD_NS)
    ET.register_namespace("vssd", VSSD_NS)
    ET.register_namespace("vmw", VMW_NS)
    ET.register_namespace("vmtuiovf", VMTUI_NS)  # not "vmtui": that prefix is the domain metadata's
    ET.register_namespace("xsi", XSI_NS)
    ET.register_namespace("cim", CIM_NS)
    O = f"{{{OVF1_NS}}}"

    def sub(parent, tag, text=None, **attrs):
        el = ET.SubElement(parent, tag, {k: v for k, v in attrs.items()})
        if text is not None:
            el.text = str(text)
        return el

    env = ET.Element(f"{O}Envelope", {f"{O}version": "1.0", "{http://www.w3.org/XML/1998/namespace}lang": "en-US"})
    refs = sub(env, f"{O}References")
    for i, (href, size, _cap, _pop) in enumerate(files):
        sub(refs, f"{O}File", **{f"{O}id": f"file{i + 1}", f"{O}href": href, f"{O}size": str(size)})
    ds = sub(env, f"{O}DiskSection")
    sub(ds, f"{O}Info", "Virtual disk information")
    for i, (_href, _size, cap, pop) in enumerate(files):
        attrs = {f"{O}diskId": f"vmdisk{i + 1}", f"{O}fileRef": f"file{i + 1}", f"{O}capacity": str(cap),
                 f"{O}capacityAllocationUnits": "byte", f"{O}format": VMDK_STREAM_URI}
        if pop is not None:
            attrs[f"{O}populatedSize"] = str(pop)
        sub(ds, f"{O}Disk", **attrs)
    ns = sub(env, f"{O}NetworkSection")
    sub(ns, f"{O}Info", "The list of logical networks")
    for net in sorted({n for n, _m, _mac in plan.nics}):
        n_el = sub(ns, f"{O}Network", **{f"{O}name": net})
        sub(n_el, f"{O}Description", f"The {net} network")
    vs = sub(env, f"{O}VirtualSystem", **{f"{O}id": plan.name})
    sub(vs, f"{O}Info", "A virtual machine")
    sub(vs, f"{O}Name", plan.name)
    if plan.description:
        ann = sub(vs, f"{O}AnnotationSection")
        sub(ann, f"{O}Info", "A human-readable annotation")
        sub(ann, f"{O}Annotation", plan.description)
    cim_id = next((cid for rx, cid in _EXPORT_CIM if rx.match(plan.osinfo)),
                  101 if plan.osinfo.startswith("linux") else 1)
    oss = sub(vs, f"{O}OperatingSystemSection", **{f"{O}id": str(cim_id), f"{{{VMTUI_NS}}}osinfo": plan.osinfo})
    sub(oss, f"{O}Info", "The kind of installed guest operating system")
    sub(oss, f"{O}Description", CIM_OS.get(cim_id, ("Other", []))[0])
    hw = sub(vs, f"{O}VirtualHardwareSection")
    sub(hw, f"{O}Info", "Virtual hardware requirements")
    system = sub(hw, f"{O}System")
    for tag, text in (("ElementName", "Virtual Hardware Family"), ("InstanceID", "0"),
                      ("VirtualSystemIdentifier", plan.name), ("VirtualSystemType", "vmx-07")):
        sub(system, f"{{{VSSD_NS}}}{tag}", text)
    iid = iter(range(1, 10_000))

    def item(fields: dict[str, str]) -> str:
        it = sub(hw, f"{O}Item")
        inst = str(next(iid))
        fields = {**fields, "InstanceID": inst}
        for k in sorted(fields):  # the CIM schema wants rasd elements in alphabetical order
            sub(it, f"{{{RASD_NS}}}{k}", fields[k])
        return inst

    item({"AllocationUnits": "hertz * 10^6", "Description": "Number of virtual CPUs",
          "ElementName": f"{plan.vcpus} virtual CPU(s)", "ResourceType": str(RT_PROCESSOR),
          "VirtualQuantity": str(plan.vcpus)})
    item({"AllocationUnits": "byte * 2^20", "Description": "Memory size",
          "ElementName": f"{plan.memory_mib}MB of memory", "ResourceType": str(RT_MEMORY),
          "VirtualQuantity": str(plan.memory_mib)})
    ide = any(d.bus == "ide" for d in plan.disks)
    if ide:
        ctrl = item({"Address": "0", "Description": "IDE Controller", "ElementName": "ideController0",
                     "ResourceType": str(RT_IDE)})
    elif any(d.bus == "sata" for d in plan.disks):
        ctrl = item({"Address": "0", "Description": "SATA Controller", "ElementName": "sataController0",
                     "ResourceSubType": "vmware.sata.ahci", "ResourceType": str(RT_SATA)})
    else:
        ctrl = item({"Address": "0", "Description": "SCSI Controller", "ElementName": "scsiController0",
                     "ResourceSubType": "lsilogic", "ResourceType": str(RT_SCSI)})
    for i in range(len(files)):
        item({"AddressOnParent": str(i), "ElementName": f"disk{i}", "HostResource": f"ovf:/disk/vmdisk{i + 1}",
              "Parent": ctrl, "ResourceType": str(RT_DISK)})
    for i, (net, model, mac) in enumerate(plan.nics):
        subtype = {"virtio": "VmxNet3", "e1000": "E1000", "e1000e": "E1000e"}.get(model, "E1000")
        fields = {"AutomaticAllocation": "true", "Connection": net,
                  "Description": f"{model or 'virtio'} ethernet adapter on '{net}'",
                  "ElementName": f"ethernet{i}", "ResourceSubType": subtype, "ResourceType": str(RT_ETHERNET)}
        if mac:
            fields["Address"] = mac
        item(fields)
    if plan.firmware == "uefi":
        sub(hw, f"{{{VMW_NS}}}Config", **{f"{O}required": "false", f"{{{VMW_NS}}}key": "firmware",
                                           f"{{{VMW_NS}}}value": "efi"})
        if plan.secure_boot:
            sub(hw, f"{{{VMW_NS}}}Config", **{f"{O}required": "false", f"{{{VMW_NS}}}key": SECURE_BOOT_KEY,
                                               f"{{{VMW_NS}}}value": "true"})
    ET.indent(env)
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(env, encoding="utf-8", xml_declaration=False)


def export_ova(conn: libvirt.virConnect, domain_name: str, dest: str | os.PathLike, *, local: bool,
               progress: ImportProgress | None = None, cancel: threading.Event | None = None,
               tmp_dir: str | None = None, overwrite: bool = False, uuid: str | None = None) -> str:
    """Blocking: write the shut-off domain ``domain_name`` (the one with
    ``uuid`` when given: the VM chosen, even if renamed since) as an OVA at ``dest``.

    ``local``: the host is this machine, so disk files readable here are
    converted in place; otherwise (or when not readable) each volume is
    downloaded through libvirt first. Returns the OVA path. Nothing is left
    behind on failure.
    """
    dest = os.path.abspath(os.fspath(dest))
    obj = f"domain '{domain_name}'"
    report = progress or (lambda m, f: None)
    if os.path.isdir(dest):
        raise VmtuiError("export", obj, f"'{dest}' is a directory: give a file name ending in .ova")
    if os.path.exists(dest) and not overwrite:
        raise VmtuiError("export", obj, f"'{dest}' already exists")
    if not os.path.isdir(os.path.dirname(dest)):
        raise VmtuiError("export", obj, f"the directory '{os.path.dirname(dest)}' does not exist")
    try:
        dom = conn.lookupByUUIDString(uuid) if uuid else conn.lookupByName(domain_name)
        if dom.isActive():
            raise VmtuiError("export", obj, "it is running: shut it off first (disks change while it runs)")
        xml = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
    except libvirt.libvirtError as err:
        if is_connection_lost(err):
            raise
        raise from_libvirt("export", obj, err) from None
    plan = plan_export(xml)
    work = tempfile.mkdtemp(prefix="vmtui-export-", dir=tmp_dir or os.path.dirname(dest))
    partial = dest + ".partial"
    try:
        base = re.sub(r"[^A-Za-z0-9_.+-]+", "-", plan.name)[:60] or "vm"  # ustar names: 100 bytes
        files: list[tuple[str, int, int, int | None]] = []
        vmdks: list[str] = []
        n = max(1, len(plan.disks))
        for i, d in enumerate(plan.disks):
            lo, span = 0.9 * i / n, 0.9 / n
            where = f"disk {d.target or i} of {obj}"
            src = d.source
            vol = None
            try:
                vol = storage.find_volume(conn, src)
            except libvirt.libvirtError:
                vol = None
            if vol is not None:
                src = vol.path
                d.format = d.format or vol.format or "raw"
            readable = local and os.path.isfile(src) and os.access(src, os.R_OK)
            if not readable:
                if vol is None:
                    raise VmtuiError("export", where, f"'{d.source}' is not a storage volume and not readable here")
                local_copy = os.path.join(work, f"download-{i}")
                report(f"Downloading disk {i + 1} of {len(plan.disks)}", lo)
                storage.download_volume(conn, vol.key, local_copy,
                                        lambda done, total, lo=lo, span=span: report(
                                            f"Downloading disk {i + 1} of {len(plan.disks)}",
                                            lo + span * 0.5 * (done / total if total else 1)))
                src = local_copy
                lo, span = lo + span * 0.5, span * 0.5
            if cancel is not None and cancel.is_set():
                raise Cancelled("export", obj)
            fmt = d.format if d.format in ALLOWED_SOURCE_FORMATS else None
            info = image_info(src, fmt)
            capacity = int(info.get("virtual-size") or 0)
            out_name = f"{base}-disk{i + 1}.vmdk"
            out = os.path.join(work, out_name)
            label = f"Converting disk {i + 1} of {len(plan.disks)} to stream-optimized VMDK"
            report(label, lo)
            run_qemu_img(["convert", "-f", info.get("format", "raw"), "-O", "vmdk", "-o", "subformat=streamOptimized",
                          src, out], progress=lambda f, lo=lo, span=span, label=label: report(label, lo + span * f),
                         cancel=cancel, what="export", where=where)
            if src.startswith(work):
                os.unlink(src)
            files.append((out_name, os.path.getsize(out), capacity, None))
            vmdks.append(out)
        report("Writing the OVF descriptor and manifest", 0.9)
        ovf_name = f"{base}.ovf"
        envelope = build_envelope(plan, files)
        ovf_path = os.path.join(work, ovf_name)
        Path(ovf_path).write_bytes(envelope)
        mf_lines = [f"SHA256({ovf_name})= {_digest(ovf_path, 'sha256', cancel)}"]
        for name, path in zip([f[0] for f in files], vmdks):
            mf_lines.append(f"SHA256({name})= {_digest(path, 'sha256', cancel)}")
        mf_name = f"{base}.mf"
        mf_path = os.path.join(work, mf_name)
        Path(mf_path).write_text("\n".join(mf_lines) + "\n", encoding="utf-8")
        members = [(ovf_name, ovf_path), (mf_name, mf_path)] + [(f[0], p) for f, p in zip(files, vmdks)]
        big = any(os.path.getsize(p) >= 8 * 1024 ** 3 for _n, p in members)
        report("Writing the OVA", 0.95)
        with tarfile.open(partial, "w", format=tarfile.PAX_FORMAT if big else tarfile.USTAR_FORMAT) as tf:
            for name, path in members:
                ti = tf.gettarinfo(path, arcname=name)
                ti.uid = ti.gid = 0
                ti.uname = ti.gname = ""
                ti.mode = 0o644
                with open(path, "rb") as fh:
                    tf.addfile(ti, fh)
        os.replace(partial, dest)
        report("Exported", 1.0)
        return dest
    except BaseException as err:
        try:
            os.unlink(partial)
        except OSError:
            pass
        if isinstance(err, libvirt.libvirtError) and not is_connection_lost(err):
            raise from_libvirt("export", obj, err) from None
        if isinstance(err, OSError):
            raise VmtuiError("export", obj, err.strerror or str(err)) from None
        raise
    finally:
        shutil.rmtree(work, ignore_errors=True)


__all__ = [
    "OvfError", "OvfPackage", "OvfDisk", "OvfNic", "OvfFile", "ImportedVolume", "Cancelled",
    "open_package", "parse_envelope", "parse_manifest", "parse_units", "map_os", "import_disks",
    "remove_volumes", "to_vmspec", "volume_names", "plan_export", "build_envelope", "export_ova",
    "check_source_image", "run_qemu_img",
]
