"""Tiny bootable guests for tests that drive a real libvirtd + QEMU.

The guest is a Debian cloud kernel (direct kernel boot) plus a busybox
initramfs built here, so no disk image and no network access at test time
(beyond fetching one Debian package once per machine).

Main entry points:

* :func:`fetch_kernel` -- download + extract ``linux-image-*-cloud-amd64``
  once into the cache dir (``$VMTUI_TEST_CACHE`` or ``~/.cache/vmtui-tests``).
* :func:`build_initramfs` -- gzip'd newc cpio with busybox, kernel modules,
  an ACPI power-button handler and the given ``/init``.
* :func:`default_init_script` -- the stock ``/init``: prints
  :data:`READY_BANNER` on ttyS0, powers off on ACPI shutdown, runs a shell on
  ttyS0.
* :func:`cidata_init_script` -- the stock ``/init`` that first prints the
  files of every block device labelled ``cidata`` (a cloud-init NoCloud seed:
  ISO 9660 or FAT, on any bus the kernel has a driver for), as cloud-init
  would find them; :func:`parse_cidata` reads that back from the console.
* :func:`build_boot_disk` -- a BIOS-bootable *disk* image (a hybrid ISO:
  isolinux behind an MBR) holding a kernel + initrd, as qcow2 or raw: a
  stand-in for a cloud image.
* :func:`stage_boot_file` -- copy a kernel/initrd to where QEMU can read it.
* :func:`domain_xml` -- a minimal TCG domain definition (ElementTree).
* :class:`SerialConsole` -- read/write the guest's serial console through a
  libvirt stream (``dom.openConsole``).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import lzma
import os
import re
import shutil
import stat
import struct
import subprocess
import tempfile
import threading
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

READY_BANNER = "VMTUI-GUEST-READY"
#: PS1 of the console shell started by the stock init.
PROMPT = "vmtui-guest# "
KERNEL_METAPACKAGE = "linux-image-cloud-amd64"
BUSYBOX = Path("/bin/busybox")
#: Directory readable by the QEMU process (runs as libvirt-qemu).
BOOT_DIR = Path("/var/lib/libvirt/boot")

#: Modules loaded by the stock initramfs, in addition to their dependencies
#: (resolved from the modules' own ``.modinfo``).  The cloud kernel builds
#: these as modules:
#:  * button + evdev: ACPI power button -> /dev/input/event* -> acpid, so
#:    ``virsh shutdown`` (ACPI) powers the guest off;
#:  * ata_piix + sr_mod + isofs: IDE CD-ROMs on the i440fx 'pc' machine (the
#:    kernel has no AHCI driver, so no CD-ROMs on SATA/q35);
#:  * virtio_*: virtio disks / SCSI (CD-ROMs also work on virtio-scsi) /
#:    NICs; sd_mod for SCSI disks; vfat for FAT "cidata" images.
DEFAULT_MODULES: tuple[str, ...] = (
    "button",
    "evdev",
    "virtio_pci",
    "virtio_blk",
    "virtio_scsi",
    "virtio_net",
    "ata_piix",
    "sr_mod",
    "sd_mod",
    "isofs",
    "vfat",
)

#: Kernel command line used by :func:`domain_xml` unless overridden.
#: ``panic=-1``: reboot at once on panic (e.g. /init died) instead of hanging.
DEFAULT_CMDLINE = "console=ttyS0 panic=-1 quiet"


# --------------------------------------------------------------------------
# cache + kernel


def cache_dir() -> Path:
    """Per-machine cache for downloaded/extracted test artefacts."""
    env = os.environ.get("VMTUI_TEST_CACHE")
    base = Path(env) if env else Path.home() / ".cache" / "vmtui-tests"
    base.mkdir(parents=True, exist_ok=True)
    return base


@dataclass(frozen=True)
class Kernel:
    """An extracted Debian kernel package."""

    version: str  # e.g. "6.1.0-56-cloud-amd64"
    root: Path  # dpkg-deb -x target

    @property
    def vmlinuz(self) -> Path:
        return self.root / "boot" / f"vmlinuz-{self.version}"

    @property
    def modules_dir(self) -> Path:
        for base in ("lib", "usr/lib"):
            p = self.root / base / "modules" / self.version
            if p.is_dir():
                return p
        raise FileNotFoundError(f"no modules directory for {self.version} in {self.root}")


def _run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=True, capture_output=True, text=True, stdin=subprocess.DEVNULL, **kw)


def resolve_kernel_package(metapackage: str = KERNEL_METAPACKAGE) -> str:
    """Name of the real kernel package the metapackage depends on."""

    def depends() -> list[str]:
        try:
            out = _run(["apt-cache", "depends", metapackage]).stdout
        except subprocess.CalledProcessError:
            return []
        return re.findall(r"^\s*Depends:\s*(linux-image-\S+)", out, re.M)

    found = depends()
    if not found and os.geteuid() == 0:
        # Fresh machine without package lists.
        _run(["apt-get", "update", "-q"])
        found = depends()
    if not found:
        raise RuntimeError(f"cannot resolve the kernel package behind {metapackage} (apt-cache depends)")
    return found[0]


def _cached_kernels(base: Path) -> list[Kernel]:
    kernels = []
    for d in sorted((base / "kernel").glob("*/")):
        if (d / ".complete").exists():
            kernels.append(Kernel(version=d.name, root=d))
    return kernels


def fetch_kernel(cache: Path | None = None) -> Kernel:
    """Download + extract the cloud kernel once; later calls hit the cache.

    Any complete cached kernel is used without asking apt, so this works
    offline after the first run.
    """
    base = cache or cache_dir()
    cached = _cached_kernels(base)
    if cached:
        return cached[-1]
    pkg = resolve_kernel_package()
    version = pkg.removeprefix("linux-image-")
    dest = base / "kernel" / version
    work = Path(tempfile.mkdtemp(prefix="kernel-", dir=base))
    try:
        # apt-get download drops privileges to _apt when it can: let it
        # write here.
        os.chmod(work, 0o777)
        _run(["apt-get", "download", "-q", pkg], cwd=work)
        (deb,) = work.glob("*.deb")
        tree = work / "tree"
        _run(["dpkg-deb", "-x", str(deb), str(tree)])
        deb.unlink()
        os.chmod(work, 0o755)
        kernel = Kernel(version=version, root=tree)
        if not kernel.vmlinuz.exists():
            raise RuntimeError(f"{pkg} has no {kernel.vmlinuz.name}")
        (tree / ".complete").touch()
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            tree.rename(dest)
        except OSError:
            if not (dest / ".complete").exists():  # lost a race? fine if so
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return Kernel(version=version, root=dest)


# --------------------------------------------------------------------------
# kernel modules


def read_modinfo(data: bytes) -> dict[str, list[str]]:
    """Parse the ``.modinfo`` section of an ELF64 little-endian ``.ko``."""
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        raise ValueError("not an ELF64 LE object")
    (shoff,) = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)

    def section(i: int) -> tuple[int, int, int]:
        name, _type, _flags, _addr, offset, size = struct.unpack_from("<IIQQQQ", data, shoff + i * shentsize)
        return name, offset, size

    _, stroff, _ = section(shstrndx)
    info: dict[str, list[str]] = {}
    for i in range(shnum):
        name_off, offset, size = section(i)
        end = data.index(b"\0", stroff + name_off)
        if data[stroff + name_off : end] != b".modinfo":
            continue
        for entry in data[offset : offset + size].split(b"\0"):
            if b"=" in entry:
                key, _, value = entry.decode("utf-8", "replace").partition("=")
                info.setdefault(key, []).append(value)
    return info


def _module_name(path: Path) -> str:
    name = path.name
    for suffix in (".ko", ".ko.xz", ".ko.gz", ".ko.zst"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    return name.replace("-", "_")


def _read_ko(path: Path) -> bytes:
    if path.name.endswith(".xz"):
        return lzma.decompress(path.read_bytes())
    if path.name.endswith(".gz"):
        return gzip.decompress(path.read_bytes())
    if path.name.endswith(".zst"):
        raise RuntimeError(f"zstd-compressed modules are not supported: {path}")
    return path.read_bytes()


def resolve_modules(kernel: Kernel, names: Iterable[str]) -> list[tuple[str, Path]]:
    """Modules ``names`` plus dependencies, in load order (deps first).

    Names that are built into the kernel are skipped.
    """
    moddir = kernel.modules_dir
    index: dict[str, Path] = {}
    for p in (moddir / "kernel").rglob("*.ko*"):
        index[_module_name(p)] = p
    builtin = set()
    builtin_file = moddir / "modules.builtin"
    if builtin_file.exists():
        builtin = {_module_name(Path(line.strip())) for line in builtin_file.read_text().splitlines() if line.strip()}

    order: list[tuple[str, Path]] = []
    done: set[str] = set()
    visiting: set[str] = set()

    def visit(name: str) -> None:
        name = name.replace("-", "_")
        if name in done:
            return
        if name not in index:
            if name in builtin:
                done.add(name)
                return
            raise KeyError(f"kernel module {name!r} not found in {moddir}")
        if name in visiting:
            raise RuntimeError(f"module dependency cycle at {name}")
        visiting.add(name)
        info = read_modinfo(_read_ko(index[name]))
        for dep_list in info.get("depends", []):
            for dep in filter(None, dep_list.split(",")):
                visit(dep)
        visiting.discard(name)
        done.add(name)
        order.append((name, index[name]))

    for n in names:
        visit(n)
    return order


# --------------------------------------------------------------------------
# cpio (newc) writer


class CpioWriter:
    """Minimal writer for the "newc" (SVR4, no CRC) cpio format that the
    kernel unpacks as an initramfs."""

    def __init__(self) -> None:
        self._buf = io.BytesIO()
        self._ino = 1
        self._seen: set[str] = set()

    def _entry(self, name: str, mode: int, data: bytes = b"", rdev: tuple[int, int] = (0, 0), nlink: int = 1) -> None:
        name = name.strip("/") or "."
        namez = name.encode() + b"\0"
        fields = [
            self._ino,  # ino
            mode,
            0,  # uid
            0,  # gid
            nlink,
            0,  # mtime (reproducible archives)
            len(data),
            0,  # devmajor
            0,  # devminor
            rdev[0],
            rdev[1],
            len(namez),
            0,  # check
        ]
        self._ino += 1
        header = b"070701" + b"".join(b"%08X" % f for f in fields)
        self._buf.write(header + namez)
        self._pad()
        self._buf.write(data)
        self._pad()

    def _pad(self) -> None:
        self._buf.write(b"\0" * (-self._buf.tell() % 4))

    def _parents(self, name: str) -> None:
        parts = name.strip("/").split("/")[:-1]
        for i in range(1, len(parts) + 1):
            self.dir("/".join(parts[:i]))

    def dir(self, name: str, perm: int = 0o755) -> None:
        name = name.strip("/")
        if not name or name in self._seen:
            return
        self._parents(name)
        self._seen.add(name)
        self._entry(name, stat.S_IFDIR | perm, nlink=2)

    def file(self, name: str, data: bytes, perm: int = 0o644) -> None:
        self._parents(name)
        self._seen.add(name.strip("/"))
        self._entry(name, stat.S_IFREG | perm, data)

    def symlink(self, name: str, target: str) -> None:
        self._parents(name)
        self._seen.add(name.strip("/"))
        self._entry(name, stat.S_IFLNK | 0o777, target.encode())

    def chardev(self, name: str, major: int, minor: int, perm: int = 0o600) -> None:
        self._parents(name)
        self._seen.add(name.strip("/"))
        self._entry(name, stat.S_IFCHR | perm, rdev=(major, minor))

    def finish(self) -> bytes:
        self._entry("TRAILER!!!", 0, nlink=1)
        data = self._buf.getvalue()
        return data + b"\0" * (-len(data) % 512)


# --------------------------------------------------------------------------
# initramfs


def default_init_script(banner: str = READY_BANNER) -> str:
    """The stock /init: modules, acpid, banner, shell on ttyS0 (forever)."""
    return f"""#!/bin/sh
export PATH=/sbin:/bin:/usr/sbin:/usr/bin HOME=/root
/sbin/vmtui-guest-setup
# Keep kernel chatter off the serial console from now on.
echo 1 > /proc/sys/kernel/printk
echo "{banner}" > /dev/ttyS0
/sbin/vmtui-shell-loop
"""


def cidata_init_script(banner: str = READY_BANNER) -> str:
    """The stock /init, printing the files of every ``cidata`` device on
    ttyS0 first (``/sbin/vmtui-show-cidata``; :func:`parse_cidata`)."""
    return f"""#!/bin/sh
export PATH=/sbin:/bin:/usr/sbin:/usr/bin HOME=/root
/sbin/vmtui-guest-setup
echo 1 > /proc/sys/kernel/printk
/sbin/vmtui-show-cidata > /dev/ttyS0 2>&1
echo "{banner}" > /dev/ttyS0
/sbin/vmtui-shell-loop
"""


@dataclass
class CidataDevice:
    """A ``cidata`` device the guest saw: its name (``vdb``, ``sr0``), file
    system, sysfs path (which names the bus) and files with their content."""

    dev: str
    fstype: str
    sysfs: str
    files: dict[str, str]


def parse_cidata(console_text: str) -> list[CidataDevice]:
    """The ``cidata`` devices :func:`cidata_init_script` printed (empty when
    the guest found none); raises ValueError when it did not finish."""
    text = console_text.replace("\r\n", "\n")
    if CIDATA_DONE not in text:
        raise ValueError(f"the guest did not finish looking for cidata devices:\n{text[-2000:]}")
    devices: dict[str, CidataDevice] = {}
    for m in re.finditer(rf"^{CIDATA_DEVICE} (\S+) (\S+) (\S+)$", text, re.M):
        devices[m.group(1)] = CidataDevice(m.group(1), m.group(2), m.group(3), {})
    for m in re.finditer(rf"^{CIDATA_FILE} (\S+) (\S+)\n(.*?){CIDATA_END}$", text, re.M | re.S):
        devices[m.group(1)].files[m.group(2)] = m.group(3)
    return list(devices.values())


#: Lines the graphics init (:func:`graphics_init_script`) writes to ttyS0.
TTY1_PREFIX = "VMTUI-TTY1:"  # + each line typed on the first virtual terminal
CAD_MARK = "VMTUI-CTRL-ALT-DEL"  # Ctrl+Alt+Del pressed on the keyboard
#: Text the graphics init draws on the VGA text screen (white on blue).
SCREEN_TITLE = "VMTUI GRAPHICS TEST"


def graphics_init_script(banner: str = READY_BANNER) -> str:
    """/init for a guest with a VGA display (``domain_xml(graphics=True)``):
    everything the stock init does, plus

    * a coloured title on tty1 (the VGA text screen), so a screenshot shows
      more than one colour;
    * each line typed on the guest's keyboard (i8042/atkbd are built into the
      cloud kernel) is echoed to ttyS0 as ``TTY1_PREFIX + line``;
    * Ctrl+Alt+Del makes the kernel send SIGINT to init (``ctrl-alt-del`` = 0)
      instead of rebooting; init then writes :data:`CAD_MARK` to ttyS0.

    tty2..tty7 are allocated, so Ctrl+Alt+F1…F7 switch between them; the
    active one is in ``/sys/class/tty/tty0/active``.
    """
    return f"""#!/bin/sh
export PATH=/sbin:/bin:/usr/sbin:/usr/bin HOME=/root
/sbin/vmtui-guest-setup
echo 1 > /proc/sys/kernel/printk
echo 0 > /proc/sys/kernel/ctrl-alt-del
trap 'echo {CAD_MARK} > /dev/ttyS0' INT
printf '\033[2J\033[H\033[1;37;44m  {SCREEN_TITLE}  \033[0m\n\n\033[30;42m green \033[30;41m red \033[0m\n\n' > /dev/tty1
# the kernel switches only to allocated VTs (Ctrl+Alt+F2..F7): opening one allocates it
for n in 2 3 4 5 6 7; do echo "vmtui-guest tty$n" > /dev/tty$n; done
(
    while true; do
        if read -r line < /dev/tty1; then echo "{TTY1_PREFIX}$line" > /dev/ttyS0; else sleep 0.2; fi
    done
) &
echo "{banner}" > /dev/ttyS0
/sbin/vmtui-shell-loop &
# pid 1 must never exit; the trap runs between the sleeps
while true; do sleep 1; done
"""


# Mounts, module loading and acpid: shared by every init that wants them.
_GUEST_SETUP = """#!/bin/sh
export PATH=/sbin:/bin:/usr/sbin:/usr/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run
/sbin/vmtui-load-modules
# The ACPI power button (button.ko) shows up as an evdev input device;
# busybox acpid maps KEY_POWER to the action PWRF/00000080, i.e. it runs
# /etc/acpi/PWRF/00000080, which powers off.  acpid opens
# /dev/input/event0.. at start, so start it after the modules.
acpid -c /etc/acpi -l /run/acpid.log
"""

_LOAD_MODULES = """#!/bin/sh
# insmod the modules listed (deps first) in /etc/vmtui-modules.
while read -r mod; do
    [ -n "$mod" ] && insmod "/lib/modules/$(uname -r)/$mod" 2>/dev/null
done < /etc/vmtui-modules
true
"""

_SHELL_LOOP = """#!/bin/sh
# Interactive shell on the serial console, respawned when it exits.
export PATH=/sbin:/bin:/usr/sbin:/usr/bin HOME=/root PS1='{prompt}'
cd /root
while true; do
    setsid cttyhack sh
    sleep 0.2
done
"""

#: What :data:`_SHOW_CIDATA` prints on ttyS0 (see :func:`parse_cidata`).
CIDATA_DEVICE = "VMTUI-CIDATA-DEVICE"  # + " <dev> <fs type> <sysfs path>"
CIDATA_FILE = "VMTUI-CIDATA-FILE"  # + " <dev> <file>", then its content, then CIDATA_END
CIDATA_END = "VMTUI-CIDATA-END"
CIDATA_NONE = "VMTUI-CIDATA-NONE"  # + " <the block devices the kernel has>"
CIDATA_DONE = "VMTUI-CIDATA-DONE"

# Every block device whose file system is labelled "cidata" (case does not
# matter, as for cloud-init's NoCloud): ISO 9660 (the label at byte 32808,
# after "CD001" at 32769) or FAT (the boot sector's label, FAT12/16 at 43,
# FAT32 at 71), mounted read-only and its files printed. Devices appear while
# their drivers probe: up to ~10 s of looking before giving up.
_SHOW_CIDATA = r"""#!/bin/sh
at() { dd if="$1" bs=1 skip="$2" count="$3" 2>/dev/null | tr -d '\000' | sed 's/ *$//'; }
lower() { tr 'A-Z' 'a-z'; }
label_of() {
    if [ "$(at "$1" 32769 5)" = CD001 ]; then echo "iso9660 $(at "$1" 32808 32 | lower)"; return; fi
    case "$(at "$1" 82 5)" in FAT32) echo "vfat $(at "$1" 71 11 | lower)"; return;; esac
    case "$(at "$1" 54 3)" in FAT) echo "vfat $(at "$1" 43 11 | lower)"; return;; esac
}
found=0
tries=0
while [ $found = 0 ] && [ $tries -lt 50 ]; do
    for sys in /sys/class/block/*; do
        dev=${sys##*/}
        [ -b "/dev/$dev" ] || continue
        set -- $(label_of "/dev/$dev")
        [ "$2" = cidata ] || continue
        found=1
        echo "VMTUI-CIDATA-DEVICE $dev $1 $(readlink -f "$sys")"
        mkdir -p "/mnt/cidata-$dev"
        if mount -t "$1" -o ro "/dev/$dev" "/mnt/cidata-$dev" 2>/dev/null; then
            for f in /mnt/cidata-$dev/*; do
                [ -f "$f" ] || continue
                echo "VMTUI-CIDATA-FILE $dev ${f##*/}"
                cat "$f"
                echo "VMTUI-CIDATA-END"
            done
            umount "/mnt/cidata-$dev"
        fi
    done
    [ $found = 1 ] && break
    tries=$((tries + 1))
    sleep 0.2
done
[ $found = 1 ] || echo "VMTUI-CIDATA-NONE $(ls /sys/class/block | tr '
' ' ')"
echo "VMTUI-CIDATA-DONE"
"""

_POWEROFF = """#!/bin/sh
echo "vmtui-guest: ACPI power button, powering off" > /dev/ttyS0
sync
poweroff -f
"""


def _busybox_applets(busybox: Path) -> list[str]:
    out = subprocess.run([str(busybox), "--list-full"], check=True, capture_output=True, text=True).stdout
    return [line.strip() for line in out.splitlines() if line.strip()]


def build_initramfs(
    path: str | os.PathLike,
    init_script: str | None = None,
    extra_files: dict[str, bytes] | None = None,
    *,
    modules: Iterable[str] | None = DEFAULT_MODULES,
    kernel: Kernel | None = None,
    busybox: Path = BUSYBOX,
) -> Path:
    """Write a gzip'd newc cpio initramfs to ``path`` and return it.

    ``init_script`` becomes ``/init`` (default: :func:`default_init_script`).
    A custom init can reuse the helpers the archive always contains:

    * ``/sbin/vmtui-guest-setup`` -- mount proc/sys/devtmpfs/devpts/tmpfs,
      load the modules, start acpid (ACPI power button -> poweroff);
    * ``/sbin/vmtui-load-modules`` -- only the module loading part;
    * ``/sbin/vmtui-shell-loop`` -- endless ``setsid cttyhack sh`` on the
      serial console (never returns: /init must not exit, or the kernel
      panics).

    ``extra_files`` maps absolute guest paths to contents (mode 0755 if the
    content starts with ``#!``, else 0644).  ``modules`` (plus dependencies)
    are copied from ``kernel`` (default: :func:`fetch_kernel`) to
    ``/lib/modules/<ver>/`` and listed in load order in
    ``/etc/vmtui-modules``; busybox ``modprobe`` works for them too.
    """
    path = Path(path)
    cpio = CpioWriter()
    for d in ("bin", "sbin", "usr/bin", "usr/sbin", "dev", "proc", "sys", "tmp", "run", "root", "mnt", "etc", "var/log"):
        cpio.dir(d)
    cpio.chardev("dev/console", 5, 1)
    cpio.chardev("dev/null", 1, 3, 0o666)
    cpio.chardev("dev/ttyS0", 4, 64)

    cpio.file("bin/busybox", busybox.read_bytes(), 0o755)
    for applet in _busybox_applets(busybox):
        applet = applet.strip("/")
        if applet in ("bin/busybox",):
            continue
        cpio.symlink(applet, "/bin/busybox")

    cpio.file("sbin/vmtui-guest-setup", _GUEST_SETUP.encode(), 0o755)
    cpio.file("sbin/vmtui-load-modules", _LOAD_MODULES.encode(), 0o755)
    cpio.file("sbin/vmtui-shell-loop", _SHELL_LOOP.replace("{prompt}", PROMPT).encode(), 0o755)
    cpio.file("etc/acpi/PWRF/00000080", _POWEROFF.encode(), 0o755)
    cpio.file("sbin/vmtui-show-cidata", _SHOW_CIDATA.encode(), 0o755)
    cpio.file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n")
    cpio.file("etc/group", b"root:x:0:\n")

    mods = list(modules or ())
    load_order: list[str] = []
    dep_lines: list[str] = []
    if mods:
        kernel = kernel or fetch_kernel()
        resolved = resolve_modules(kernel, mods)
        base = f"lib/modules/{kernel.version}"
        paths = {}
        for name, src in resolved:
            data = _read_ko(src)
            rel = str(src.relative_to(kernel.modules_dir))
            for suffix in (".xz", ".gz"):
                rel = rel.removesuffix(suffix)
            paths[name] = rel
            cpio.file(f"{base}/{rel}", data)
            load_order.append(rel)
            deps = []
            for dep_list in read_modinfo(data).get("depends", []):
                deps += [paths[d.replace("-", "_")] for d in dep_list.split(",") if d and d.replace("-", "_") in paths]
            dep_lines.append(f"{rel}: {' '.join(deps)}".rstrip())
        cpio.file(f"{base}/modules.dep", ("\n".join(dep_lines) + "\n").encode())
        for extra in ("modules.builtin", "modules.order"):
            src = kernel.modules_dir / extra
            if src.exists():
                cpio.file(f"{base}/{extra}", src.read_bytes())
    cpio.file("etc/vmtui-modules", ("\n".join(load_order) + "\n").encode())

    for guest_path, content in (extra_files or {}).items():
        cpio.file(guest_path, content, 0o755 if content.startswith(b"#!") else 0o644)

    script = init_script if init_script is not None else default_init_script()
    cpio.file("init", script.encode(), 0o755)

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        # mtime=0: identical inputs give identical bytes.
        with gzip.GzipFile(filename="", fileobj=f, mode="wb", compresslevel=6, mtime=0) as gz:
            gz.write(cpio.finish())
    os.replace(tmp, path)
    return path


# --------------------------------------------------------------------------
# staging for QEMU


def stage_boot_file(src: str | os.PathLike, prefix: str = "vmtui-test-") -> Path:
    """Copy ``src`` into :data:`BOOT_DIR` (readable by the QEMU process).

    The name contains a content hash, so concurrent test sessions never
    clobber each other and repeated calls are cheap.  Falls back to the
    cache dir when BOOT_DIR is not writable (e.g. non-root, session URI).
    """
    src = Path(src)
    digest = hashlib.sha256(src.read_bytes()).hexdigest()[:16]
    target_dir = BOOT_DIR
    try:
        target_dir.mkdir(parents=True, exist_ok=True)
        if not os.access(target_dir, os.W_OK):
            raise PermissionError
    except OSError:
        target_dir = cache_dir() / "boot"
        target_dir.mkdir(parents=True, exist_ok=True)
    dest = target_dir / f"{prefix}{digest}-{src.name}"
    if not dest.exists():
        tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
        shutil.copyfile(src, tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, dest)
    return dest


@dataclass(frozen=True)
class GuestFiles:
    """Kernel + initrd staged for QEMU, plus the kernel they came from."""

    kernel: Path
    initrd: Path
    kernel_tree: Kernel


def tiny_guest_files(init_script: str | None = None, extra_files: dict[str, bytes] | None = None, **kw) -> GuestFiles:
    """Fetch the kernel, build an initramfs and stage both for QEMU."""
    kernel = fetch_kernel()
    with tempfile.TemporaryDirectory(prefix="vmtui-initrd-") as tmp:
        initrd = build_initramfs(Path(tmp) / "initrd.img", init_script, extra_files, kernel=kernel, **kw)
        staged_initrd = stage_boot_file(initrd)
    return GuestFiles(kernel=stage_boot_file(kernel.vmlinuz), initrd=staged_initrd, kernel_tree=kernel)


# --------------------------------------------------------------------------
# a bootable disk image (a stand-in for a cloud image)

ISOLINUX_BIN = Path("/usr/lib/ISOLINUX/isolinux.bin")
LDLINUX = Path("/usr/lib/syslinux/modules/bios/ldlinux.c32")


def build_boot_disk(dest: str | os.PathLike, kernel: str | os.PathLike, initrd: str | os.PathLike, *,
                    cmdline: str = DEFAULT_CMDLINE, fmt: str = "qcow2") -> Path:
    """A disk image SeaBIOS boots from any disk bus: a hybrid ISO (isolinux
    behind an MBR, packages ``isolinux`` and ``syslinux-common``) loading
    ``kernel`` + ``initrd`` with ``cmdline``, converted to ``fmt`` with
    qemu-img. Raises FileNotFoundError when isolinux is missing."""
    dest = Path(dest)
    with tempfile.TemporaryDirectory(prefix="vmtui-disk-") as tmp:
        raw = hybrid_disk_image(Path(tmp) / "disk.img", kernel, initrd, cmdline)
        tmp_dest = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
        _run(["qemu-img", "convert", "-f", "raw", "-O", fmt, str(raw), str(tmp_dest)])
        os.replace(tmp_dest, dest)
    return dest


# --------------------------------------------------------------------------
# domain XML


def domain_xml(
    name: str,
    kernel: str | os.PathLike,
    initrd: str | os.PathLike,
    memory_mib: int = 128,
    extra_devices_xml: str | ET.Element | Iterable[ET.Element] | None = None,
    graphics: bool = False,
    *,
    cmdline: str = DEFAULT_CMDLINE,
    vcpus: int = 1,
    on_reboot: str = "restart",
    description: str | None = None,
    vcpus_current: int | None = None,
    memballoon: str = "none",
) -> str:
    """A minimal TCG domain: direct kernel boot, serial console, no NIC.

    ``vcpus`` is the maximum; ``vcpus_current`` (when given) the vCPUs online
    at boot, so more can be hot-plugged. ``memballoon="virtio"`` gives the
    guest a balloon (its initramfs needs the virtio_balloon module).

    ``extra_devices_xml`` is either an XML string holding one or more device
    elements (e.g. ``"<disk .../><disk .../>"``) or Element(s); they are
    appended to ``<devices>``.  ``graphics=True`` adds a VNC server on
    127.0.0.1 (autoport) and a VGA card.
    """
    dom = ET.Element("domain", type="qemu")
    ET.SubElement(dom, "name").text = name
    if description:
        ET.SubElement(dom, "description").text = description
    ET.SubElement(dom, "memory", unit="MiB").text = str(memory_mib)
    ET.SubElement(dom, "currentMemory", unit="MiB").text = str(memory_mib)
    vcpu = ET.SubElement(dom, "vcpu", placement="static")
    vcpu.text = str(vcpus)
    if vcpus_current is not None:
        vcpu.set("current", str(vcpus_current))
    os_el = ET.SubElement(dom, "os")
    ET.SubElement(os_el, "type", arch="x86_64", machine="pc").text = "hvm"
    ET.SubElement(os_el, "kernel").text = str(kernel)
    ET.SubElement(os_el, "initrd").text = str(initrd)
    ET.SubElement(os_el, "cmdline").text = cmdline
    features = ET.SubElement(dom, "features")
    ET.SubElement(features, "acpi")  # needed for ACPI shutdown (virsh shutdown)
    ET.SubElement(dom, "clock", offset="utc")
    ET.SubElement(dom, "on_poweroff").text = "destroy"
    ET.SubElement(dom, "on_reboot").text = on_reboot
    ET.SubElement(dom, "on_crash").text = "destroy"

    devices = ET.SubElement(dom, "devices")
    serial = ET.SubElement(devices, "serial", type="pty")
    ET.SubElement(serial, "target", port="0")
    console = ET.SubElement(devices, "console", type="pty")
    ET.SubElement(console, "target", type="serial", port="0")
    if graphics:
        gfx = ET.SubElement(devices, "graphics", type="vnc", port="-1", autoport="yes", listen="127.0.0.1")
        ET.SubElement(gfx, "listen", type="address", address="127.0.0.1")
        video = ET.SubElement(devices, "video")
        ET.SubElement(video, "model", type="vga", vram="16384", heads="1")
    ET.SubElement(devices, "memballoon", model=memballoon)

    if extra_devices_xml is not None:
        if isinstance(extra_devices_xml, str):
            wrapper = ET.fromstring(f"<devices>{extra_devices_xml}</devices>")
            extra = list(wrapper)
        elif isinstance(extra_devices_xml, ET.Element):
            extra = [extra_devices_xml]
        else:
            extra = list(extra_devices_xml)
        devices.extend(extra)

    ET.indent(dom)
    return ET.tostring(dom, encoding="unicode")


# --------------------------------------------------------------------------
# serial console


#: seconds without console output before read_until sends an XON, and
#: before it opens the console again (see SerialConsole._nudge, _reopen)
NUDGE_AFTER = 5.0
REOPEN_AFTER = 20.0

_EV_READ = 1  # libvirt.VIR_STREAM_EVENT_READABLE
_EV_WRITE = 2  # VIR_STREAM_EVENT_WRITABLE
_EV_ERR = 4  # VIR_STREAM_EVENT_ERROR
_EV_HUP = 8  # VIR_STREAM_EVENT_HANGUP


class SerialConsole:
    """The guest's serial console over a libvirt stream (``dom.openConsole``).

    The stream is non-blocking and driven by libvirt's event loop (vmtui's
    libvirtaio thread, :func:`vmtui.core.connection.eventloop.ensure_event_impl`),
    as the app's own console is: the event thread receives into
    :attr:`buffer` and sends what :meth:`send` queued. No thread ever sits in
    a blocking ``recv`` while another sends: with libvirt 9's client the two
    can deadlock (the sender waits for the socket forever; seen in 4 of 4
    consoles within minutes under load). Only one console connection per
    domain can be open at a time unless ``force=True``, which kicks the other
    one off.
    """

    def __init__(self, dom, *, force: bool = False, dev_name: str | None = None) -> None:
        import libvirt

        from vmtui.core.connection.eventloop import ensure_event_impl

        self._libvirt = libvirt
        self._impl = ensure_event_impl()
        self.dom = dom
        # A connection of its own: the test's connection stays free.
        self.conn = libvirt.open(dom.connect().getURI())
        self._dev_name = dev_name
        self.buffer = bytearray()  # everything received so far
        self.pos = 0  # read_until() consumed buffer[:pos]
        self.eof = False
        self.error: Exception | None = None
        self._cond = threading.Condition()
        self._out = bytearray()  # queued for the guest, sent on the event thread
        self._writing = False  # the stream's callback also watches WRITABLE
        self._closing = False
        self.reopened = 0  # times read_until opened the console again (see _reopen)
        try:
            self._open(libvirt.VIR_DOMAIN_CONSOLE_FORCE if force else 0)
        except BaseException:
            self.conn.close()
            raise

    # -- the event thread

    def _on_loop(self, fn, timeout: float = 30.0):
        """Run ``fn()`` on the libvirt event thread; return its result."""
        if threading.get_ident() == self._impl.thread_id:
            return fn()
        done = threading.Event()
        box: dict = {}

        def run() -> None:
            try:
                box["value"] = fn()
            except BaseException as exc:  # handed to the caller
                box["error"] = exc
            finally:
                done.set()

        self._impl.loop.call_soon_threadsafe(run)
        if not done.wait(timeout):
            raise TimeoutError(f"libvirt's event thread did not run a console step within {timeout}s")
        if "error" in box:
            raise box["error"]
        return box.get("value")

    def _open(self, flags: int) -> None:
        """Open a new non-blocking console stream and make it :attr:`stream`,
        with its callback. It becomes the stream before the open, on the
        event thread: from then on the events of a stream it replaces (which
        a FORCE open ends) are ignored, and none of its own is missed."""
        stream = self.conn.newStream(self._libvirt.VIR_STREAM_NONBLOCK)

        def adopt() -> None:
            self.stream = stream
            self._writing = False

        try:
            self._on_loop(adopt)
            self.conn.lookupByUUID(self.dom.UUID()).openConsole(self._dev_name, stream, flags)
            self._on_loop(lambda: stream.eventAddCallback(_EV_READ | _EV_ERR | _EV_HUP, self._event, None))
        except BaseException:
            try:
                stream.abort()
            except Exception:
                pass
            raise

    def _event(self, stream, events: int, _opaque) -> None:
        try:
            if stream is not self.stream:
                return  # one _reopen replaced
            if events & (_EV_READ | _EV_HUP | _EV_ERR):
                self._drain(stream)
            if events & _EV_WRITE:
                self._flush()
            if events & (_EV_HUP | _EV_ERR) and not self.eof:
                self._ended(stream, None)
        except Exception as exc:  # never into libvirt's loop
            self._ended(stream, exc)

    def _drain(self, stream) -> None:
        while not self.eof:
            try:
                data = stream.recv(65536)
            except self._libvirt.libvirtError as exc:  # abort, daemon restart
                self._ended(stream, exc)
                return
            if data == -2:  # nothing more for now
                return
            if not data:  # EOF: the guest went away
                self._ended(stream, None)
                return
            with self._cond:
                self.buffer += data
                self._cond.notify_all()

    def _flush(self) -> None:
        stream = self.stream
        while self._out and not self.eof:
            try:
                n = stream.send(bytes(self._out[:65536]))
            except self._libvirt.libvirtError as exc:
                self._ended(stream, exc)
                return
            if n == -2 or n is None or n <= 0:
                break
            del self._out[:n]
        want = bool(self._out) and not self.eof
        if want != self._writing:
            try:
                stream.eventUpdateCallback(_EV_READ | _EV_ERR | _EV_HUP | (_EV_WRITE if want else 0))
                self._writing = want
            except self._libvirt.libvirtError:
                pass

    def _ended(self, stream, exc: Exception | None) -> None:
        if stream is not self.stream:
            return
        with self._cond:
            if exc is not None and not self._closing and self.error is None:
                self.error = exc
            self.eof = True
            self._cond.notify_all()
        self._drop(stream)

    @staticmethod
    def _drop(stream) -> None:
        for step in (stream.eventRemoveCallback, stream.abort):
            try:
                step()
            except Exception:
                pass

    # -- any thread

    def send(self, text: str | bytes) -> None:
        """Queue bytes for the guest; the event thread sends them."""
        data = text.encode() if isinstance(text, str) else text
        if not data:
            return

        def queue() -> None:
            self._out += data
            self._flush()

        self._on_loop(queue)

    def text(self) -> str:
        """All console output so far, decoded."""
        with self._cond:
            return self.buffer.decode("utf-8", "replace")

    # -- high level
    def read_until(self, pattern: str | bytes | re.Pattern, timeout: float = 60.0) -> re.Match:
        """Wait until ``pattern`` (literal str/bytes or compiled bytes regex)
        appears after the previous match; return the match."""
        if isinstance(pattern, str):
            pattern = pattern.encode()
        if isinstance(pattern, bytes):
            pattern = re.compile(re.escape(pattern))
        deadline = time.monotonic() + timeout
        seen, quiet_since, nudged = -1, time.monotonic(), False
        while True:
            with self._cond:
                m = pattern.search(self.buffer, self.pos)
                if m:
                    self.pos = m.end()
                    return m
                if self.eof:
                    raise EOFError(f"console closed before {pattern.pattern!r} ({self.error}); output:\n{self.tail()}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no {pattern.pattern!r} on console within {timeout}s (console opened again "
                                       f"{self.reopened} times); output:\n{self.tail()}")
                if len(self.buffer) != seen:
                    seen, quiet_since, nudged = len(self.buffer), time.monotonic(), False
                self._cond.wait(min(left, 0.5))
                quiet = time.monotonic() - quiet_since
            if quiet > REOPEN_AFTER and not self.reopened:
                self._reopen()
                quiet_since = time.monotonic()
            elif NUDGE_AFTER < quiet and not nudged:
                self._nudge()
                nudged = True

    def _nudge(self) -> None:
        """The console has been quiet mid-output: send the guest an XON
        (Ctrl+Q), in case its tty took a stray XOFF; the tty's IXON handling
        takes the XON in, so the shell never sees it."""
        try:
            self.send(b"\x11")
        except Exception:  # the console is going: the stream says so
            pass

    def _reopen(self) -> None:
        """Still quiet after the XON: open the console again (FORCE takes it
        over from our own stream). Once per console."""
        old = self.stream
        try:
            self._open(self._libvirt.VIR_DOMAIN_CONSOLE_FORCE)
        except Exception as exc:  # the guest or the connection is going
            with self._cond:
                self.error, self.eof = exc, True
                self._cond.notify_all()
            return
        finally:
            self._on_loop(lambda: self._drop(old))
        self.reopened += 1
        self._on_loop(self._flush)

    def wait_ready(self, timeout: float = 120.0, banner: str = READY_BANNER) -> None:
        """Wait for the stock init's banner and then the shell prompt."""
        self.read_until(banner, timeout)
        self.read_until(PROMPT, timeout)

    def run(self, command: str, timeout: float = 120.0) -> str:
        """Run a shell command in the guest's console shell; return its output.

        Output is framed by markers whose text never appears in the echoed
        command line itself (they are produced by shell arithmetic).
        """
        tag = os.urandom(4).hex()
        start = f"BEGIN-{tag}-$((6*7))"
        end = f"END-{tag}-$((6*7))"
        self.send(f"echo {start}; {command}; echo {end}\n")
        self.read_until(f"BEGIN-{tag}-42".encode(), timeout)
        m = self.read_until(re.compile(rb"(.*?)END-" + tag.encode() + rb"-42", re.S), timeout)
        return m.group(1).decode("utf-8", "replace").replace("\r\n", "\n").strip("\n")

    def tail(self, n: int = 2000) -> str:
        return self.buffer[-n:].decode("utf-8", "replace")

    def close(self, timeout: float = 5.0) -> None:
        """Remove the stream's callback and abort it (on the event thread),
        then close the connection."""
        self._closing = True

        def stop() -> None:
            with self._cond:
                self.eof = True
                self._cond.notify_all()
            self._drop(self.stream)

        try:
            self._on_loop(stop, timeout)
        except Exception:
            pass
        try:
            self.conn.close()
        except self._libvirt.libvirtError:
            pass

    def __enter__(self) -> "SerialConsole":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# --------------------------------------------------------------------------
# domain helpers


def wait_for_state(dom, state: int, timeout: float = 60.0, interval: float = 0.2) -> float:
    """Poll until ``dom.state()[0] == state``; return seconds waited."""
    import libvirt

    start = time.monotonic()
    while True:
        try:
            current = dom.state()[0]
        except libvirt.libvirtError:
            current = None
        if current == state:
            return time.monotonic() - start
        if time.monotonic() - start > timeout:
            raise TimeoutError(f"domain {dom.name()} in state {current}, wanted {state} after {timeout}s")
        time.sleep(interval)


def pid_alive(pid: int) -> bool:
    """True while process ``pid`` exists (leftovers of crashed test runs are
    recognised by the pid in their names)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def destroy_and_undefine(conn, name: str) -> None:
    """Remove domain ``name`` whatever its state; no error if it is gone."""
    import libvirt

    # Look the name up in a listing first: a failed lookupByName() makes
    # libvirt-python's default error handler print to stderr.
    matches = [d for d in conn.listAllDomains() if d.name() == name]
    if not matches:
        return
    dom = matches[0]
    try:
        if dom.isActive():
            dom.destroy()
    except libvirt.libvirtError:
        pass
    flags = 0
    for flag in (
        "VIR_DOMAIN_UNDEFINE_MANAGED_SAVE",
        "VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA",
        "VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA",
        "VIR_DOMAIN_UNDEFINE_NVRAM",
    ):
        flags |= getattr(libvirt, flag, 0)
    try:
        dom.undefineFlags(flags)
    except libvirt.libvirtError:
        try:
            dom.undefine()
        except libvirt.libvirtError:
            pass



def remove_domains(uri: str, names: Iterable[str]) -> None:
    """Destroy and undefine ``names`` over a fresh connection to ``uri`` (a
    test may have closed its own or restarted libvirtd); nothing if it is down."""
    import libvirt

    names = list(names)
    if not names:
        return
    try:
        conn = libvirt.open(uri)
    except libvirt.libvirtError:
        return
    try:
        for name in names:
            destroy_and_undefine(conn, name)
    finally:
        conn.close()


# --------------------------------------------------------------------------
# storage pools of tests

IMAGES = Path("/var/lib/libvirt/images")


def mounts_under(path: Path) -> list[Path]:
    """Mount points at or below ``path``, deepest first."""
    out = []
    try:
        for line in Path("/proc/mounts").read_text().splitlines():
            target = Path(line.split()[1].replace("\\040", " "))
            if target == path or path in target.parents:
                out.append(target)
    except OSError:
        pass
    return sorted(out, reverse=True)


def remove_pool(conn, name: str, path: Path | None = None) -> None:
    """Stop and undefine a test's pool, its volumes deleted; its directory
    (``path``, default under IMAGES) unmounted and removed when it is a
    test's (``vmtui-test-...``)."""
    import libvirt

    try:
        pool = conn.storagePoolLookupByName(name)
        persistent = pool.isPersistent()
        if pool.isActive():
            for vol in pool.listAllVolumes(0):
                try:
                    vol.delete(0)
                except libvirt.libvirtError:
                    pass
            pool.destroy()  # a transient pool is gone after this
        if persistent:
            pool.undefine()
    except libvirt.libvirtError:
        pass
    path = IMAGES / name if path is None else Path(path)
    if path.name.startswith("vmtui-test-"):
        for mount in mounts_under(path):
            subprocess.run(["umount", "-l", str(mount)], capture_output=True)
        shutil.rmtree(path, ignore_errors=True)


def remove_stale_pools(conn, prefix: str) -> None:
    """Pools (and directories under IMAGES) ``<prefix><pid>-...`` of
    earlier, crashed test sessions: their pid is gone."""
    pattern = re.compile(re.escape(prefix) + r"(\d+)-")

    def stale(name: str) -> bool:
        m = pattern.match(name)
        return bool(m) and int(m.group(1)) != os.getpid() and not pid_alive(int(m.group(1)))

    for pool in conn.listAllStoragePools(0):
        if stale(pool.name()):
            path = ET.fromstring(pool.XMLDesc(0)).findtext("target/path") or ""
            remove_pool(conn, pool.name(), Path(path) if path else None)
    for entry in IMAGES.glob(prefix + "*"):
        if stale(entry.name):
            remove_pool(conn, entry.name, entry)


# --------------------------------------------------------------------------
# a bootable disk image


def hybrid_disk_image(dest: str | os.PathLike, kernel: str | os.PathLike, initrd: str | os.PathLike,
                      cmdline: str = DEFAULT_CMDLINE) -> Path:
    """The guest as a raw disk image a BIOS boots (an isohybrid ISO: isolinux
    behind an MBR, as on a USB stick), for tests that need a disk image --
    a "cloud image" to put an overlay on. Needs the Debian packages
    ``isolinux`` and ``syslinux-common``; written 0644."""
    import pycdlib

    if not (ISOLINUX_BIN.exists() and LDLINUX.exists()):
        raise FileNotFoundError("isolinux/syslinux-common are not installed (make host)")
    cfg = (f"SERIAL 0 115200\nDEFAULT linux\nPROMPT 0\nTIMEOUT 1\nLABEL linux\n"
           f"  KERNEL /VMLINUZ\n  APPEND initrd=/INITRD.IMG {cmdline}\n").encode()
    iso = pycdlib.PyCdlib()
    iso.new(interchange_level=1, vol_ident="VMTUI_DISK")
    iso.add_directory("/ISOLINUX")
    iso.add_file(str(ISOLINUX_BIN), "/ISOLINUX/ISOLINUX.BIN;1")
    iso.add_file(str(LDLINUX), "/ISOLINUX/LDLINUX.C32;1")
    iso.add_fp(io.BytesIO(cfg), len(cfg), "/ISOLINUX/ISOLINUX.CFG;1")
    iso.add_file(str(kernel), "/VMLINUZ.;1")
    iso.add_file(str(initrd), "/INITRD.IMG;1")
    iso.add_eltorito("/ISOLINUX/ISOLINUX.BIN;1", "/ISOLINUX/BOOT.CAT;1", boot_load_size=4, boot_info_table=True)
    iso.add_isohybrid()
    dest = Path(dest)
    iso.write(str(dest))
    iso.close()
    os.chmod(dest, 0o644)
    return dest
