"""Files the user names: read them safely, write the private ones privately.

Every file a person types the name of (a VM spec, the config file, a
kickstart, a saved cloud-init config, an SSH public key, an ISO ...) is read
through here, so that a wrong name gives a message instead of a hang or a
crash:

* only regular files are read (block devices too where the caller allows,
  for CD-ROM drives): a FIFO would block forever, ``/dev/zero`` never ends,
  a directory is not a file -- each is refused with a message naming the path
  and what it is. Files are opened with ``O_NONBLOCK`` and checked with
  ``fstat`` on the open descriptor, so opening a FIFO never waits;
* every kind of file has a size cap (read at most cap + 1 bytes);
* text must be UTF-8 without NUL bytes; otherwise the message says where the
  binary data starts (byte offset and line).

:func:`write_private_text` writes files that may hold secrets (password
hashes): mode 0600, through a temporary file and a rename, and never over
something that is not a regular file.

Problems are :class:`UserFileError` (a ValueError): ``path``, ``reason`` (a
short noun phrase: "a FIFO (named pipe), not a regular file") and ``line``
(where binary data starts, else None); ``str()`` is ``"PATH: reason"``.

Pure standard library.
"""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from typing import BinaryIO

KIB = 1024
MIB = 1024 * KIB

#: Size caps per kind of file (far above any real one of its kind).
MAX_SPEC = 1 * MIB  # a VM spec (YAML), with its inline user-data and kickstart
MAX_CONFIG = 256 * KIB  # vmtui's config file
MAX_KICKSTART = 1 * MIB
MAX_CLOUD_INIT = 1 * MIB  # a saved cloud-init config or a user-data file
MAX_SSH_KEYS = 256 * KIB  # a .pub / authorized_keys file
MAX_TEXT = 1 * MIB  # anything else read as text

__all__ = [
    "UserFileError", "describe_mode", "file_problem", "open_regular", "read_bytes", "read_text",
    "read_stream_text", "decode_text", "write_private_text", "format_bytes",
    "MAX_SPEC", "MAX_CONFIG", "MAX_KICKSTART", "MAX_CLOUD_INIT", "MAX_SSH_KEYS", "MAX_TEXT",
]


class UserFileError(ValueError):
    """A file the user named cannot be used; ``str()`` is ``"PATH: reason"``."""

    def __init__(self, path: str | os.PathLike, reason: str, line: int | None = None,
                 errno: int | None = None) -> None:
        self.path = os.fspath(path)
        self.reason = reason
        self.line = line
        self.errno = errno  # when the system refused (no such file, permission denied ...)
        super().__init__(f"{self.path}: {reason}")


def format_bytes(n: int) -> str:
    for unit, factor in (("GiB", 1024 ** 3), ("MiB", MIB), ("KiB", KIB)):
        if n >= factor:
            return f"{n / factor:.1f}".removesuffix(".0") + f" {unit}"
    return f"{n} bytes"


_KINDS = ((stat.S_ISREG, "a regular file"), (stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def describe_mode(mode: int) -> str:
    """What a file is, from its ``st_mode``: "a directory", "a FIFO (named pipe)" ..."""
    return next((what for test, what in _KINDS if test(mode)), "not a regular file")


def _kind_problem(mode: int, allow_block: bool) -> str | None:
    if stat.S_ISREG(mode) or (allow_block and stat.S_ISBLK(mode)):
        return None
    what = describe_mode(mode)
    if stat.S_ISDIR(mode):
        return f"{what}, not a file"
    return f"{what}, not a regular file"


def _os_reason(err: OSError) -> str:
    if err.errno == errno.ENOENT:
        return "no such file"
    if err.errno == errno.EISDIR:
        return "a directory, not a file"
    if err.errno == errno.ENXIO:
        return "a device or socket that is not there"
    return f"cannot read it ({err.strerror or err})"


def file_problem(path: str | os.PathLike, *, allow_block: bool = False) -> str | None:
    """Why ``path`` cannot be read as a file (a reason as in :class:`UserFileError`), or None.
    Only ``stat``: nothing is opened."""
    try:
        st = os.stat(path)
    except OSError as err:
        return _os_reason(err)
    except ValueError:  # a NUL byte in the name
        return "not a valid file name"
    return _kind_problem(st.st_mode, allow_block)


def open_regular(path: str | os.PathLike, *, allow_block: bool = False) -> BinaryIO:
    """Open ``path`` for reading (binary), refusing anything but a regular
    file (or a block device with ``allow_block``). Never blocks on a FIFO."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0))
    except OSError as err:
        raise UserFileError(path, _os_reason(err), errno=err.errno) from None
    except ValueError:
        raise UserFileError(path, "not a valid file name") from None
    try:
        st = os.fstat(fd)
        problem = _kind_problem(st.st_mode, allow_block)
        if problem:
            raise UserFileError(path, problem)
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _read_capped(fh: BinaryIO, limit: int) -> bytes:
    chunks, total = [], 0
    while total <= limit:
        chunk = fh.read(min(limit + 1 - total, MIB))
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
    return b"".join(chunks)


def read_bytes(path: str | os.PathLike, limit: int = MAX_TEXT, *, allow_block: bool = False) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes."""
    fh = open_regular(path, allow_block=allow_block)
    with fh:
        try:
            size = os.fstat(fh.fileno()).st_size
            if size > limit:
                raise UserFileError(path, f"too large: {format_bytes(size)} (at most {format_bytes(limit)})")
            data = _read_capped(fh, limit)
        except OSError as err:
            raise UserFileError(path, _os_reason(err), errno=err.errno) from None
    if len(data) > limit:
        raise UserFileError(path, f"too large: more than {format_bytes(limit)}")
    return data


def decode_text(data: bytes, path: str | os.PathLike) -> str:
    """``data`` as UTF-8 text (a leading BOM dropped); NUL bytes or invalid
    UTF-8 raise :class:`UserFileError` naming the byte offset and its line."""
    nul = data.find(b"\0")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        bad = err.start
    else:
        bad = -1
    if nul >= 0 and (bad < 0 or nul <= bad):
        line = data.count(b"\n", 0, nul) + 1
        raise UserFileError(path, f"not a text file (binary data at byte offset {nul})", line)
    if bad >= 0:
        line = data.count(b"\n", 0, bad) + 1
        raise UserFileError(path, f"not UTF-8 text (invalid byte 0x{data[bad]:02X} at byte offset {bad})", line)
    return text.removeprefix("\ufeff")


def read_text(path: str | os.PathLike, limit: int = MAX_TEXT) -> str:
    """The UTF-8 text of a regular file of at most ``limit`` bytes."""
    return decode_text(read_bytes(path, limit), path)


def read_stream_text(stream: BinaryIO, name: str = "<stdin>", limit: int = MAX_TEXT) -> str:
    """At most ``limit`` bytes of text from an open binary stream (standard input)."""
    try:
        data = _read_capped(stream, limit)
    except OSError as err:
        raise UserFileError(name, f"cannot read it ({err.strerror or err})") from None
    if len(data) > limit:
        raise UserFileError(name, f"too large: more than {format_bytes(limit)}")
    return decode_text(data, name)


def write_private_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` readable by its owner only (0600), whole or
    not at all (a temporary file next to it, then a rename). Refuses to
    replace anything that is not a regular file. Raises OSError (the
    temporary file is removed) or UserFileError."""
    path = os.fspath(path)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        pass
    else:
        problem = _kind_problem(st.st_mode, False)
        if problem:
            raise UserFileError(path, problem)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:  # mkstemp: mode 0600
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
