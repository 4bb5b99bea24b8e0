"""Where vmtui's log goes, and keeping C libraries off the screen.

libvirt, GLib and the programs libvirt runs (ssh for ``qemu+ssh://``) write
warnings straight to file descriptor 2 -- the terminal a full-screen UI
draws on. :func:`divert_stderr` points fd 2 at the log file for the life of
the UI, while Python's ``sys.stderr`` (and Textual, which draws through
``sys.__stderr__``) keep a private descriptor of the real terminal.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import TextIO

import platformdirs

LOG_NAME = "vmtui.log"
ROTATE_AT = 8 << 20  # bytes: the default log is renamed to vmtui.log.1 beyond this
FORMAT = "%(asctime)s %(threadName)s %(name)s %(levelname)s %(message)s"

_log_path: Path | None = None


def default_log_path() -> Path:
    return Path(platformdirs.user_state_dir("vmtui")) / LOG_NAME


def log_path() -> Path | None:
    """The log file in use (set by :func:`setup_logging`), if any."""
    return _log_path


def setup_logging(stream: TextIO | None, *, debug: bool, path: str | os.PathLike | None = None) -> Path:
    """Send Python logging to ``stream`` (the ``--log`` file, opened by the
    CLI, named ``path``) or else to the default log in the user's state dir: everything
    with ``debug``, warnings and errors otherwise. Returns the log's path.
    Raises OSError when the default log cannot be opened."""
    global _log_path
    if stream is not None:
        handler: logging.Handler = logging.StreamHandler(stream)
        target = Path(path if path is not None else stream.name)
    else:
        target = default_log_path()
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            if target.stat().st_size > ROTATE_AT:
                target.replace(target.with_name(LOG_NAME + ".1"))
        except FileNotFoundError:
            pass
        handler = logging.FileHandler(target, encoding="utf-8")
        try:
            os.chmod(target, 0o600)
        except OSError:
            pass
    handler.setFormatter(logging.Formatter(FORMAT))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if debug else logging.WARNING)
    _log_path = target
    return target


class StderrDiversion:
    """fd 2 goes to a log file for the rest of the process (libvirt's threads
    may still write as the process ends); ``terminal`` is a text stream on
    the old fd 2, which Python's ``sys.stderr`` and Textual use."""

    def __init__(self, log: Path) -> None:
        self.log = log
        sys.stderr.flush()
        saved = os.dup(2)
        os.set_inheritable(saved, False)
        fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            os.dup2(fd, 2)
        finally:
            os.close(fd)
        encoding = getattr(sys.__stderr__, "encoding", None) or "utf-8"
        self.terminal: TextIO = os.fdopen(saved, "w", buffering=1, encoding=encoding, errors="replace")
        # Textual's driver writes the screen to sys.__stderr__: keep it on the terminal.
        sys.stderr = sys.__stderr__ = self.terminal


def divert_stderr(log: Path) -> StderrDiversion | None:
    """Divert fd 2 to ``log`` when it is a terminal (a pipe or file is left alone)."""
    try:
        if not os.isatty(2):
            return None
        return StderrDiversion(log)
    except OSError:
        return None
