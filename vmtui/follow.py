"""``vmtui create --wait`` / ``--console``: following a new VM from the
command line.

The VM is created paused; its serial console is opened, then it runs, so
nothing the guest prints is missed. ``--console`` shows that console in this
terminal (raw mode: every key goes to the guest, Ctrl+] leaves, as in
``virsh console``); ``--wait`` reads the same stream for the readiness
detector (:func:`vmtui.core.consoles.guests.wait_until_ready`) and prints
the addresses and the ``ssh`` line once the VM is ready -- or, with exit code
3, why not and the console's last lines.
"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any

LEAVE = b"\x1d"  # Ctrl+]


def _err(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


class TerminalConsole:
    """A console session in this terminal: what the guest sends goes to
    standard output, what is typed (raw, when standard input is a terminal)
    to the guest; Ctrl+] leaves."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.session: Any = None
        self.active = False
        self.left = asyncio.Event()  # Ctrl+] or the console closed
        self.close_reason = ""
        self._fd = None
        self._saved = None
        try:
            if sys.stdin is not None and sys.stdin.isatty():
                self._fd = sys.stdin.fileno()
        except (ValueError, OSError):
            self._fd = None
        self._out = sys.stdout.buffer

    def start(self) -> None:
        """Raw mode and the key reader."""
        self.active = True
        if self._fd is None:
            return
        import termios
        import tty
        self._saved = termios.tcgetattr(self._fd)
        tty.setraw(self._fd)
        self.loop.add_reader(self._fd, self._read)

    def attach(self, session: Any) -> None:
        """Show ``session`` (what it holds already, then what comes)."""
        self.session = session
        history = session.attach(self._on_data, self._on_closed)
        if history:
            self._write(history)

    def _on_data(self, data: bytes) -> None:  # the libvirt-events thread
        try:
            self.loop.call_soon_threadsafe(self._write, data)
        except RuntimeError:
            pass

    def _on_closed(self, reason: str) -> None:  # the libvirt-events thread
        try:
            self.loop.call_soon_threadsafe(self._closed, reason)
        except RuntimeError:
            pass

    def _closed(self, reason: str) -> None:
        self.close_reason = reason
        self.left.set()

    def _write(self, data: bytes) -> None:
        if not self.active:
            return
        try:
            self._out.write(data)
            self._out.flush()
        except (OSError, ValueError):
            pass

    def _read(self) -> None:
        try:
            data = os.read(self._fd, 4096)
        except OSError:
            data = b""
        if not data:
            self.loop.remove_reader(self._fd)
            return
        if LEAVE in data:
            before = data.split(LEAVE, 1)[0]
            if before and self.session is not None:
                self.session.send(before)
            self.leave()
            return
        if self.session is not None:
            self.session.send(data)

    def leave(self) -> None:
        """Back to the terminal as it was; the session keeps reading."""
        if not self.active:
            return
        self.stop()
        if self.session is not None:
            self.session.detach()
        self.left.set()

    def stop(self) -> None:
        if self._fd is not None and self._saved is not None:
            import termios
            try:
                self.loop.remove_reader(self._fd)
            except (ValueError, OSError):
                pass
            termios.tcsetattr(self._fd, termios.TCSADRAIN, self._saved)
            self._saved = None
        if self.active:
            self.active = False
            try:
                self._out.write(b"\r\n")
                self._out.flush()
            except (OSError, ValueError):
                pass


async def follow_new_vm(service: Any, uuid: str, spec: Any, *, wait: bool, console: bool, timeout: float,
                        quiet: bool = False) -> int:
    """The VM ``uuid`` was just created from ``spec``, paused: open its
    console, let it run, then show the console and/or wait until it is
    ready. Returns the exit code."""
    from .core.consoles.guests import login_user, wait_until_ready
    from .core.consoles.serial import ConsoleSession
    from .core.create import builder
    from .core.errors import VmtuiError

    loop = asyncio.get_running_loop()
    name = spec.name
    first: list = []
    note = ""
    try:
        first.append(await ConsoleSession.open(service, uuid))
    except VmtuiError as err:
        note = getattr(err, "state", "") or err.cause
        _err(f"vmtui: cannot read the serial console of '{name}': {err.cause}"
             + ("" if not wait else "; waiting on what the guest agent and the addresses tell"))
    term = TerminalConsole(loop) if console and first else None
    sessions = list(first)
    try:
        if term is not None:
            _err(f"Connected to the serial console of '{name}' (Ctrl+] leaves it)")
            term.start()
            term.attach(first[0])
        try:
            d = service.domains.get(uuid)
            if d is not None and d.is_paused:
                await service.resume(uuid)
        except VmtuiError as err:
            if term is not None:
                term.stop()
            _err(str(err))
            return 1
        if not wait:
            if term is None:
                return 1 if console else 0
            await term.left.wait()
            term.stop()
            if term.close_reason:
                _err(f"The console of '{name}' closed: {term.close_reason}")
            return 0

        async def open_console():
            if first:
                return first.pop()
            s = await ConsoleSession.open(service, uuid)
            sessions.append(s)
            if term is not None and term.active:
                term.attach(s)
            return s

        def progress(text: str) -> None:
            if not quiet and (term is None or not term.active):
                _err(f"'{name}': {text}")

        ci = spec.install.cloud_init if spec.install.kind in ("cloud", "import") else None
        remove = bool(ci and ci.get("detach_after_first_boot"))
        restarts = 1 if builder.has_install_phase(spec) else 0
        waiting = asyncio.ensure_future(wait_until_ready(
            service, uuid, cloud_init=bool(ci), timeout=timeout, open_console=open_console, remove_seed=remove,
            restarts=restarts, progress=progress))
        if term is not None:
            # Ctrl+] leaves the console; the wait goes on
            left = asyncio.ensure_future(term.left.wait())
            done, _ = await asyncio.wait({waiting, left}, return_when=asyncio.FIRST_COMPLETED)
            if waiting not in done:
                term.stop()
                _err(f"Left the console of '{name}'; still waiting for it to be ready (Ctrl+C stops waiting)")
            left.cancel()
        outcome = await waiting
    finally:
        if term is not None:
            term.stop()
        for s in sessions:
            s.close()
    outcome.console_note = outcome.console_note or note
    return _report(name, outcome, ci, spec, login_user)


def _report(name: str, outcome: Any, ci: dict | None, spec: Any, login_user) -> int:
    report = outcome.addresses
    if outcome.seed is not None:
        print(outcome.seed.describe())
    elif outcome.seed_error:
        _err(f"vmtui: {outcome.seed_error}")
    elif ci and ci.get("detach_after_first_boot"):
        _err(f"The cloud-init seed of '{name}' stays attached: cloud-init did not report that it finished with it.")
    if not outcome.ready:
        _err(f"vmtui: VM '{name}' is not ready: {outcome.why}")
        if report is not None and report.addresses:
            _err("Addresses: " + ", ".join(f"{a.address} ({a.source})" for a in report.addresses))
        if outcome.tail:
            _err("The last lines of its console:")
            for line in outcome.tail:
                _err(f"  {line}")
        elif outcome.console_note and outcome.console_note not in outcome.why:
            _err(f"Its console could not be read: {outcome.console_note}")
        return 3
    print(f"VM '{name}' is ready: {outcome.why}")
    if report is not None and report.addresses:
        print("Addresses: " + ", ".join(f"{a.address} ({a.source})" for a in report.addresses))
        ip = next((a.ip for a in report.addresses if a.family == "ipv4"), report.addresses[0].ip)
        if ci:
            user = login_user(ci.get("user_data"), spec.os or "")
            print(f"ssh {user}@{ip}" if user else f"ssh USER@{ip}   # USER: the image's default user")
    elif report is not None:
        print(f"No address known: {report.explain()}")
    return 0
