"""The disk images of a package and ``qemu-img``: the format by its magic
number or the envelope's format URI, ``qemu-img info`` with the checks that
keep a crafted image from reading host files (no backing files, no external
data files, no extents outside the package), and ``qemu-img convert`` with
its progress parsed and a cancel that kills it."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import threading
from typing import Callable

from ..errors import VmtuiError
from .envelope import OvfDisk
from .errors import Cancelled, OvfError
from .paths import inside

log = logging.getLogger(__name__)

_PROGRESS_RE = re.compile(rb"\((\d+(?:\.\d+)?)/100%\)")


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


def format_of(disk: OvfDisk) -> str | None:
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
            if fn and not inside(base, fn):
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
