"""Guest OS types: the CIM ``OSType`` numbers and VMware's ``osType`` names
an envelope carries, mapped to osinfo short ids on import, and back to a
CIM number on export."""

from __future__ import annotations

import re
from typing import Callable

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


def cim_os_id(osinfo: str) -> int:
    """The CIM OSType number written on export for an osinfo short id."""
    return next((cid for rx, cid in _EXPORT_CIM if rx.match(osinfo)), 101 if osinfo.startswith("linux") else 1)
