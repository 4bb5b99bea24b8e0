"""Names inside a package: tar members and file references are checked so
that nothing is ever read or written outside the package or the work
directory (no absolute paths, no ``..``, no URLs)."""

from __future__ import annotations

import os
import re
import urllib.parse

from .errors import OvfError


def safe_member_name(name: str, where: str) -> str:
    """A tar member name, normalised; raises OvfError for absolute paths or ``..``."""
    if not name or name.startswith("/") or name.startswith("\\") or re.match(r"^[A-Za-z]:", name):
        raise OvfError(f"the archive member '{name}' has an absolute path (refused: it could write "
                       "outside the work directory)", where)
    parts = [p for p in name.replace("\\", "/").split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise OvfError(f"the archive member '{name}' points outside the archive with '..' (path "
                       "traversal refused)", where)
    return "/".join(parts)


def safe_href(href: str, where: str) -> str:
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


def inside(base: str, path: str) -> bool:
    base = os.path.realpath(base)
    path = os.path.realpath(path)
    return path == base or path.startswith(base.rstrip(os.sep) + os.sep)
