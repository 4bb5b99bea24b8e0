"""The package's manifest (``.mf``: ``SHA256(file)= digest`` lines):
parsed, every listed file's digest checked (a mismatch is refused, naming
the file), and digests computed for an export's manifest."""

from __future__ import annotations

import hashlib
import os
import re
import threading
from typing import Callable

from .envelope import OvfPackage
from .errors import Cancelled, OvfError

Progress = Callable[[int, int], None]  # (done, total)

COPY_CHUNK = 1024 * 1024


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


def file_digest(loc, algo: str, cancel: threading.Event | None = None,
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


def check_manifest(pkg: OvfPackage, manifest: str | None, mf_name: str, files: dict,
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
        got = file_digest(local, algo, cancel, tick)
        if got != digest:
            raise OvfError(f"the {algo.upper()} digest of '{name}' does not match the manifest "
                           f"(expected {digest[:16]}…, got {got[:16]}…): the file is damaged or was changed",
                           where, "Download the package again; refusing to import it.")
        algos.add(algo.upper())
    unlisted = sorted(f.href for f in pkg.files.values() if f.href not in entries)
    if unlisted:
        pkg.warnings.append("Not in the manifest (not checked): " + ", ".join(unlisted))
    pkg.manifest = f"checked ({', '.join(sorted(algos)) or 'empty'})"
