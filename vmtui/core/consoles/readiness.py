"""Is it ready? What a guest's serial console (and its guest agent) tell
about its boot: booting, cloud-init running, ready, or an error.

:class:`ReadinessDetector` reads the bytes of the serial console stream
vmtui already reads (:mod:`.serial`) and looks for what guests print there:

* the kernel's and the boot loaders' banners (``Linux version …``,
  ``SeaBIOS``, GRUB's ``Booting `Debian GNU/Linux'``, ``ISOLINUX``): a (new)
  boot -- *booting*;
* cloud-init's stage lines, ``Cloud-init v. 22.4.2 running 'init' at …``:
  *cloud-init*;
* cloud-init's final message, ``Cloud-init v. 22.4.2 finished at <date>.
  Datasource DataSourceNoCloud [seed=/dev/vdb][dsmode=net].  Up 14.18
  seconds`` (cc_final_message's default text): *ready*, unless cloud-init
  reported failures on the way (``Failed to run module …``, ``Running module
  … failed``, ``[ERROR]``/``[CRITICAL]`` log lines), or ran with the fallback
  datasource ``DataSourceNone`` (it found no seed: nothing was applied) --
  then *error*;
* the login prompt of a getty (``web01 login:``): *ready* for a guest where no
  cloud-init was seen (a non-cloud install);
* ``Kernel panic``, systemd's emergency mode, ``No instance datasource
  found``: *error*.

Nothing here talks to libvirt except :func:`agent_cloud_init`, which asks
the QEMU guest agent for cloud-init's own result file. The detector is
fed from any thread and is not thread-safe: feed it from one.
"""

from __future__ import annotations

import base64
import collections
import json
import re
from dataclasses import dataclass, field

from .serial import scrollback_text

BOOTING, CLOUD_INIT, READY, ERROR = "booting", "cloud-init", "ready", "error"
PHASES = (BOOTING, CLOUD_INIT, READY, ERROR)
TAIL_LINES = 40  # console lines kept for "the last lines" of a failure

_RUNNING = re.compile(r"Cloud-init v\. (?P<version>\S+) running '(?P<stage>[^']+)'")
_FINISHED = re.compile(r"Cloud-init v\. (?P<version>\S+) finished at (?P<when>.+?)\. "
                       r"Datasource (?P<ds>.+?)\.\s+Up (?P<up>[\d.]+) seconds")
_FAILED = re.compile(r"Failed to run module (?P<m>[\w-]+)|Running module (?P<m2>[\w-]+) \(.*\) failed"
                     r"|\[(?:ERROR|CRITICAL)\]: (?P<msg>.*)|No instance datasource found")
_BOOT = re.compile(r"\bLinux version \d|^SeaBIOS \(version|GNU GRUB +version|^Booting `|^Loading Linux "
                   r"|^ISOLINUX \d|^iPXE \(")
_PANIC = re.compile(r"Kernel panic - not syncing: ?(?P<why>.*)")
_EMERGENCY = re.compile(r"You are in (?:emergency|rescue) mode")
_LOGIN = re.compile(r"^(?P<host>[\w.-]+) login: ?$")


@dataclass(slots=True)
class Readiness:
    """What is known about the current boot of a guest."""

    phase: str = ""  # "" nothing seen yet, or one of PHASES
    detail: str = ""  # a short sentence for the details screen
    cloud_init: bool = False  # cloud-init ran (a stage line was seen) in this boot
    stage: str = ""  # the last stage seen: init-local, init, modules:config, modules:final
    finished: bool = False  # cloud-init's "finished at" line
    version: str = ""  # cloud-init's version
    datasource: str = ""  # "DataSourceNoCloud [seed=/dev/vdb][dsmode=net]"
    errors: list[str] = field(default_factory=list)  # what cloud-init reported as failed
    login_prompt: str = ""  # the host name of a login prompt seen ("" none)
    boots: int = 0  # boots seen (a reboot starts the story again)
    source: str = "console"  # where the last word came from: "console" or "agent"

    @property
    def no_datasource(self) -> bool:
        """cloud-init ran with the fallback datasource: it found no seed."""
        return self.finished and self.datasource.split(" ", 1)[0] == "DataSourceNone"

    @property
    def seed_read(self) -> bool:
        """cloud-init finished with a real datasource: the seed did its work
        (and may go)."""
        return self.finished and bool(self.datasource) and not self.no_datasource

    def label(self) -> str:
        """The word the domain list shows."""
        return self.phase


def _summary(errors: list[str]) -> str:
    first = errors[0] if errors else ""
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return first + more


class ReadinessDetector:
    """Feed it console bytes; :attr:`state` says what they showed."""

    def __init__(self, tail_lines: int = TAIL_LINES) -> None:
        self.state = Readiness()
        self._partial = b""
        self._tail: collections.deque[str] = collections.deque(maxlen=tail_lines)
        self.changes = 0  # bumped at each change of the state

    # -- input ---------------------------------------------------------------

    def feed(self, data: bytes) -> bool:
        """Read more console output; True when the state changed."""
        if not data:
            return False
        before = self.changes
        buf = self._partial + data
        *lines, self._partial = buf.split(b"\n")
        if len(self._partial) > 4096:  # a line without end (a progress bar): judge it anyway
            lines.append(self._partial)
            self._partial = b""
        for raw in lines:
            line = scrollback_text(raw)
            if line.strip():
                self._tail.append(line)
            self._line(line.strip())
        # a login prompt waits for input: it has no newline after it
        pending = scrollback_text(self._partial).strip() if self._partial else ""
        if pending:
            self._prompt(pending)
        return self.changes != before

    def tail(self, n: int = 15) -> list[str]:
        """The last ``n`` non-empty console lines (the unfinished one too)."""
        lines = list(self._tail)
        if self._partial:
            pending = scrollback_text(self._partial).rstrip()
            if pending.strip():
                lines.append(pending)
        return lines[-n:]

    # -- what a line means -------------------------------------------------

    def _set(self, phase: str, detail: str) -> None:
        st = self.state
        if (st.phase, st.detail) != (phase, detail):
            st.phase, st.detail = phase, detail
            self.changes += 1

    def _line(self, line: str) -> None:
        if not line:
            return
        st = self.state
        if _BOOT.search(line):
            if (st.phase and st.phase != BOOTING) or st.cloud_init or st.login_prompt:
                self.state = st = Readiness(boots=st.boots)  # a new boot: the story starts again
            if st.phase != BOOTING:
                st.boots += 1
                self._set(BOOTING, "booting" if st.boots == 1 else f"booting (boot {st.boots})")
            return
        m = _FINISHED.search(line)
        if m:
            st.cloud_init = st.finished = True
            st.version, st.datasource = m.group("version"), m.group("ds").strip()
            st.source = "console"
            self._judge_finished()
            return
        m = _RUNNING.search(line)
        if m:
            st.cloud_init = True
            st.version, st.stage = m.group("version"), m.group("stage")
            if not st.finished and st.phase != ERROR:
                self._set(CLOUD_INIT, f"cloud-init {st.version} running '{st.stage}'")
            return
        m = _FAILED.search(line)
        no_source = m is not None and "No instance datasource" in line
        if m and (st.cloud_init or no_source):
            module = m.group("m") or m.group("m2")
            what = (f"module {module} failed" if module
                    else "no instance datasource found (no seed)" if no_source
                    else m.group("msg") or line)
            if what not in st.errors:
                st.errors.append(what)
                st.cloud_init = True
                if st.finished:
                    self._judge_finished()
                elif "datasource" in what:
                    self._set(ERROR, f"cloud-init: {what}")
                else:
                    self._set(CLOUD_INIT, f"cloud-init {st.version} running '{st.stage}'; {what}")
            return
        m = _PANIC.search(line)
        if m:
            self._set(ERROR, f"kernel panic: {m.group('why').strip() or 'not syncing'}")
            return
        if _EMERGENCY.search(line):
            self._set(ERROR, "the guest is in emergency mode")
            return
        self._prompt(line)

    def _prompt(self, line: str) -> None:
        m = _LOGIN.match(line)
        if not m:
            return
        st = self.state
        if st.login_prompt == m.group("host"):
            return
        st.login_prompt = m.group("host")
        if not st.cloud_init and st.phase != ERROR:
            self._set(READY, f"login prompt ({st.login_prompt} login:)")
        else:
            self.changes += 1

    def _judge_finished(self) -> None:
        st = self.state
        if st.no_datasource:
            self._set(ERROR, "cloud-init found no seed: it ran with DataSourceNone and applied nothing")
        elif st.errors:
            self._set(ERROR, f"cloud-init finished with errors: {_summary(st.errors)}")
        else:
            self._set(READY, f"cloud-init finished ({st.datasource})")

    # -- the guest agent's word ----------------------------------------------

    def merge_agent(self, result: "AgentResult") -> bool:
        """What the guest agent read from cloud-init's own files; True when
        the state changed. The console's detail stays when it said the same."""
        st = self.state
        before = self.changes
        if result.finished and not st.finished:
            st.cloud_init = st.finished = True
            st.datasource = result.datasource or st.datasource
            for e in result.errors:
                if e not in st.errors:
                    st.errors.append(e)
            st.source = "agent"
            self._judge_finished()
        elif result.stage and not st.finished and st.phase in ("", BOOTING):
            st.cloud_init, st.stage, st.source = True, result.stage, "agent"
            self._set(CLOUD_INIT, f"cloud-init running '{result.stage}' (guest agent)")
        return self.changes != before


# --------------------------------------------------------------------------
# the guest agent


@dataclass(slots=True)
class AgentResult:
    """cloud-init's state as its files in the guest tell it."""

    finished: bool = False
    datasource: str = ""
    errors: list[str] = field(default_factory=list)
    stage: str = ""  # the stage running now (status.json), "" none


RESULT_JSON = "/run/cloud-init/result.json"
STATUS_JSON = "/run/cloud-init/status.json"


def parse_result_json(text: str) -> AgentResult:
    """``/run/cloud-init/result.json``: written when cloud-init's last stage
    is done: ``{"v1": {"datasource": "...", "errors": [...]}}``."""
    data = json.loads(text)
    v1 = data.get("v1") if isinstance(data, dict) else None
    if not isinstance(v1, dict):
        raise ValueError("no v1 object")
    errors = [str(e) for e in v1.get("errors") or ()]
    return AgentResult(finished=True, datasource=str(v1.get("datasource") or ""), errors=errors)


def parse_status_json(text: str) -> AgentResult:
    """``/run/cloud-init/status.json``: the stage running now (``"stage"``)."""
    data = json.loads(text)
    v1 = data.get("v1") if isinstance(data, dict) else None
    if not isinstance(v1, dict):
        raise ValueError("no v1 object")
    stage = v1.get("stage")
    return AgentResult(stage=str(stage) if stage else "", datasource=str(v1.get("datasource") or ""))


def agent_cloud_init(dom, command=None, timeout: int = 5) -> AgentResult | None:
    """Blocking: cloud-init's state read by the QEMU guest agent
    (``guest-file-open``/``-read``/``-close`` of :data:`RESULT_JSON`, else
    :data:`STATUS_JSON`). None when the guest has no cloud-init files (or
    the agent may not read them). ``command(dom, json_text, timeout)`` sends
    one agent command (default: ``libvirt_qemu.qemuAgentCommand``; libvirt
    then marks the domain "custom-ga-command" in its log). Raises
    ``libvirt.libvirtError`` when the agent cannot be reached."""
    if command is None:
        import libvirt_qemu

        def command(d, text, t):  # noqa: E306 - the default sender
            return libvirt_qemu.qemuAgentCommand(d, text, t, 0)

    def ask(execute: str, **arguments) -> object:
        reply = json.loads(command(dom, json.dumps({"execute": execute, "arguments": arguments}), timeout))
        return reply.get("return") if isinstance(reply, dict) else None

    def read(path: str) -> str | None:
        import libvirt
        try:
            handle = ask("guest-file-open", path=path, mode="r")
        except libvirt.libvirtError as err:
            text = str(err).lower()
            if "no such file" in text or "not found" in text or "disabled" in text or "not allowed" in text:
                return None
            raise
        try:
            got = ask("guest-file-read", handle=handle, count=65536)
            data = base64.b64decode(got.get("buf-b64", "")) if isinstance(got, dict) else b""
        finally:
            ask("guest-file-close", handle=handle)
        return data.decode("utf-8", "replace")

    for path, parse in ((RESULT_JSON, parse_result_json), (STATUS_JSON, parse_status_json)):
        text = read(path)
        if text is None:
            continue
        try:
            return parse(text)
        except (ValueError, AttributeError):
            continue
    return None


__all__ = ["AgentResult", "BOOTING", "CLOUD_INIT", "ERROR", "PHASES", "READY", "Readiness", "ReadinessDetector",
           "agent_cloud_init", "parse_result_json", "parse_status_json"]
