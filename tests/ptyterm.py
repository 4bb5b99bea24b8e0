"""Run a full-screen program in a real pseudo-terminal and read its screen.

What a user sees is what reaches the terminal: tests and bench scripts use
:class:`PtyTerminal` to start ``vmtui`` (or anything else) in a pty of a
given size, feed its output to a ``pyte`` screen on a reader thread, type
keys, and wait until the screen shows something.
"""

from __future__ import annotations

import os
import pty
import select
import signal
import struct
import termios
import fcntl
import threading
import time
from typing import Callable

import pyte


class PtyTerminal:
    def __init__(self, argv: list[str], *, cols: int = 100, rows: int = 30, env: dict | None = None,
                 cwd: str | None = None) -> None:
        self.cols, self.rows = cols, rows
        self.screen = pyte.Screen(cols, rows)
        self.stream = pyte.ByteStream(self.screen)
        self.lock = threading.Lock()
        self.raw = bytearray()  # everything the program wrote (bounded)
        self.updates = 0  # chunks of output processed
        full_env = dict(os.environ)
        full_env.update({"TERM": "xterm-256color", "COLUMNS": str(cols), "LINES": str(rows)})
        if env:
            full_env.update(env)
        pid, fd = pty.fork()
        if pid == 0:  # child
            try:
                if cwd:
                    os.chdir(cwd)
                os.execvpe(argv[0], argv, full_env)
            finally:
                os._exit(127)
        self.pid, self.fd = pid, fd
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        self._stop = False
        self.exit_status: int | None = None
        self._reader = threading.Thread(target=self._read, name="pty-reader", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while not self._stop:
            try:
                ready, _, _ = select.select([self.fd], [], [], 0.1)
            except (OSError, ValueError):
                return
            if not ready:
                continue
            try:
                data = os.read(self.fd, 65536)
            except OSError:
                return
            if not data:
                return
            with self.lock:
                self.stream.feed(data)
                self.raw += data
                if len(self.raw) > 4 << 20:
                    del self.raw[: len(self.raw) - (2 << 20)]
                self.updates += 1

    # --- reading the screen ------------------------------------------------------

    def text(self) -> str:
        with self.lock:
            return "\n".join(self.screen.display)

    def wait_for(self, pred: Callable[[str], bool] | str, timeout: float = 30.0, poll: float = 0.005) -> float:
        """Wait until ``pred(screen text)`` holds (or the text appears);
        return the seconds it took. Raises TimeoutError with the screen."""
        check = (lambda t: pred in t) if isinstance(pred, str) else pred
        start = time.monotonic()
        while True:
            if check(self.text()):
                return time.monotonic() - start
            if time.monotonic() - start > timeout:
                raise TimeoutError(f"screen never matched within {timeout:g} s:\n{self.text()}")
            if not self.alive():
                raise RuntimeError(f"the program ended (status {self.exit_status}):\n{self.text()}")
            time.sleep(poll)

    # --- typing ------------------------------------------------------------------

    def send(self, data: str | bytes) -> None:
        os.write(self.fd, data.encode() if isinstance(data, str) else data)

    # --- the process ---------------------------------------------------------------

    def alive(self) -> bool:
        if self.exit_status is not None:
            return False
        pid, status = os.waitpid(self.pid, os.WNOHANG)
        if pid == 0:
            return True
        self.exit_status = status
        return False

    def rss_kib(self) -> int:
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def close(self, timeout: float = 10.0) -> int | None:
        """Ask politely (Ctrl+Q), then SIGTERM, then SIGKILL."""
        if self.alive():
            try:
                self.send("\x11")
            except OSError:
                pass
            deadline = time.monotonic() + timeout
            while self.alive() and time.monotonic() < deadline:
                time.sleep(0.05)
            for sig in (signal.SIGTERM, signal.SIGKILL):
                if not self.alive():
                    break
                os.kill(self.pid, sig)
                deadline = time.monotonic() + 5
                while self.alive() and time.monotonic() < deadline:
                    time.sleep(0.05)
        self._stop = True
        self._reader.join(timeout=2)
        try:
            os.close(self.fd)
        except OSError:
            pass
        return self.exit_status

    def __enter__(self) -> "PtyTerminal":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
