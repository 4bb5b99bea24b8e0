"""Private libvirt daemons for tests: a non-root user's session libvirtd.

Fault tests stop (SIGSTOP), kill and restart a daemon; they must never do
that to the system daemon (qemu:///system) that other tests and other
people use. A :class:`SessionDaemon` is a separate, independent libvirt
host on the same machine: a system user of ours (``vmtui-h1``...), its own
runtime directory, its own ``host_uuid`` and ``LIBVIRT_AUTOSTART=0`` so
that a client can never respawn it behind the test's back. Root reaches it
as ``qemu+unix:///session?socket=<runtime>/libvirt/libvirt-sock``.

Needs root (creates users, runs ``su``). Used by tests/real and bench/.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import time
import uuid as uuidlib
from pathlib import Path


class SessionDaemonError(RuntimeError):
    pass


def _run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


class SessionDaemon:
    """``libvirtd`` of user ``user`` with runtime dir ``/run/vmtui-test/<user>``."""

    def __init__(self, user: str = "vmtui-h1") -> None:
        self.user = user
        self.runtime = Path("/run/vmtui-test") / user
        self.socket = self.runtime / "libvirt" / "libvirt-sock"
        self.uri = f"qemu+unix:///session?socket={self.socket}"

    # --- the account -----------------------------------------------------------

    def ensure_user(self) -> pwd.struct_passwd:
        if os.geteuid() != 0:
            raise SessionDaemonError("session daemons for tests need root (to create their users)")
        try:
            return pwd.getpwnam(self.user)
        except KeyError:
            pass
        out = _run(["useradd", "-m", "-s", "/bin/sh", self.user])
        if out.returncode != 0:
            raise SessionDaemonError(f"useradd {self.user}: {out.stderr.strip()}")
        return pwd.getpwnam(self.user)

    def _prepare(self) -> pwd.struct_passwd:
        pw = self.ensure_user()
        self.runtime.mkdir(parents=True, exist_ok=True)
        os.chown(self.runtime, pw.pw_uid, pw.pw_gid)
        os.chmod(self.runtime, 0o700)
        conf_dir = Path(pw.pw_dir) / ".config" / "libvirt"
        conf = conf_dir / "libvirtd.conf"
        if not conf.exists() or "host_uuid" not in conf.read_text():
            conf_dir.mkdir(parents=True, exist_ok=True)
            conf.write_text(f'host_uuid = "{uuidlib.uuid4()}"\n')
            for path in (conf_dir.parent, conf_dir, conf):
                os.chown(path, pw.pw_uid, pw.pw_gid)
        return pw

    # --- the daemon ----------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        try:
            pid = int((self.runtime / "libvirt" / "libvirtd.pid").read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if _alive(pid) else None

    def running(self) -> bool:
        return self.pid is not None

    def start(self, timeout: float = 60) -> "SessionDaemon":
        """Start the daemon unless it runs; return once it answers."""
        if shutil.which("libvirtd") is None:
            raise SessionDaemonError("libvirtd is not installed")
        self._prepare()
        if not self.running():
            env = f"XDG_RUNTIME_DIR={self.runtime} LIBVIRT_AUTOSTART=0"
            out = _run(["su", "-s", "/bin/sh", self.user, "-c", f"{env} libvirtd --daemon"], timeout=60)
            if out.returncode != 0:
                raise SessionDaemonError(f"libvirtd of {self.user} did not start: {out.stderr.strip()}")
        self.wait_answers(timeout)
        return self

    def wait_answers(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            out = _run(["virsh", "-q", "-c", self.uri, "uri"], timeout=30)
            if out.returncode == 0:
                return
            last = out.stderr.strip()
            time.sleep(0.2)
        raise SessionDaemonError(f"libvirtd of {self.user} does not answer on {self.uri}: {last}")

    def signal(self, sig: int) -> None:
        pid = self.pid
        if pid is None:
            raise SessionDaemonError(f"libvirtd of {self.user} is not running")
        os.kill(pid, sig)

    def stop(self, timeout: float = 30) -> None:
        """Kill the daemon (SIGCONT first, in case a test left it stopped)."""
        pid = self.pid
        if pid is None:
            return
        for sig in (signal.SIGCONT, signal.SIGTERM):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                return
        deadline = time.monotonic() + timeout
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
            while _alive(pid) and time.monotonic() < deadline + 10:
                time.sleep(0.1)

    def restart(self, timeout: float = 60) -> None:
        self.stop()
        self.start(timeout)

    def virsh(self, *args: str, check: bool = True) -> str:
        out = _run(["virsh", "-q", "-c", self.uri, *args], timeout=120)
        if check and out.returncode != 0:
            raise SessionDaemonError(f"virsh {' '.join(args)}: {out.stderr.strip()}")
        return out.stdout
