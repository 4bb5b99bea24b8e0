"""Reading an ``.ova`` (a tar) or an ``.ovf`` with the files next to it.

The tar members are checked first (no absolute paths, no ``..``, no links
or devices: nothing is ever written outside the work directory); disk
images of an uncompressed tar are read in place, the other referenced files
extracted (``gzip`` file compression undone); the manifest is checked and
the envelope parsed into an :class:`~.envelope.OvfPackage`."""

from __future__ import annotations

import gzip
import os
import posixpath
import shutil
import tarfile
import tempfile
import threading
from pathlib import Path
from typing import Callable

from .envelope import MAX_DESCRIPTOR, OvfFile, OvfPackage, parse_descriptor
from .errors import Cancelled, OvfError
from .images import sniff_format
from .manifest import COPY_CHUNK, Progress, check_manifest, parse_manifest
from .paths import inside, safe_href, safe_member_name


def _check_tar_members(tf: tarfile.TarFile, where: str) -> dict[str, tarfile.TarInfo]:
    members: dict[str, tarfile.TarInfo] = {}
    for m in tf.getmembers():
        name = safe_member_name(m.name, where)
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
    if not inside(work_dir, dst_path):
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
        pkg = parse_descriptor(data, src, ovf_name, known_os)
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
                if rel not in files and inside(base_dir, p) and os.path.isfile(p):
                    files[rel] = p
        check_manifest(pkg, manifest, os.path.basename(mf_path), files, cancel, progress)
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
        pkg = parse_descriptor(data, src, ovf_name, known_os)
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
                    rel_safe = safe_href(rel, f"manifest '{posixpath.basename(mf_name)}'")
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
        check_manifest(pkg, manifest, posixpath.basename(mf_name),
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
    if inside(work_dir, path):
        os.unlink(path)
    return dest


def _locate_files_dir(pkg: OvfPackage, base_dir: str, where: str) -> None:
    """For a bare .ovf: find every referenced file next to it."""
    for f in pkg.files.values():
        p = os.path.join(base_dir, *f.href.split("/"))
        if not inside(base_dir, p):
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
