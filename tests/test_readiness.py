"""The readiness detector on console logs of cloud-init runs (tests/data/console,
see tests/data/README.md for where they come from), fed in chunks of every
size as the console stream delivers them; and cloud-init's state read by the
guest agent."""

from __future__ import annotations

import base64
import json
import random
from pathlib import Path

import pytest

from vmtui.core.consoles import readiness as R

CONSOLE = Path(__file__).resolve().parent / "data" / "console"


def log(name: str) -> bytes:
    return (CONSOLE / name).read_bytes()


def feed(data: bytes, seed: int = 0, det: R.ReadinessDetector | None = None) -> R.ReadinessDetector:
    """Feed ``data`` in random chunks (1..200 bytes): lines, escape sequences
    and CR LF pairs are cut anywhere, as a stream cuts them."""
    det = det or R.ReadinessDetector()
    rnd = random.Random(seed)
    i = 0
    while i < len(data):
        n = rnd.randint(1, 200)
        det.feed(data[i:i + n])
        i += n
    return det


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_cloud_init_finished(seed):
    st = feed(log("cloud-init-finished.log"), seed).state
    assert st.phase == R.READY
    assert st.finished and st.cloud_init and st.version == "22.4.2"
    assert st.datasource == "DataSourceNoCloud [seed=/dev/vdb][dsmode=net]"
    assert st.detail == "cloud-init finished (DataSourceNoCloud [seed=/dev/vdb][dsmode=net])"
    assert st.errors == [] and st.seed_read and not st.no_datasource
    assert st.login_prompt == "web01" and st.boots == 1


def test_the_phases_in_order_and_a_login_prompt_before_the_final_stage_is_not_ready():
    data = log("cloud-init-finished.log")
    det = R.ReadinessDetector()
    phases = []
    for i in range(0, len(data), 64):
        det.feed(data[i:i + 64])
        if det.state.phase and (not phases or phases[-1] != det.state.phase):
            phases.append(det.state.phase)
    assert phases == [R.BOOTING, R.CLOUD_INIT, R.READY]
    # the getty's prompt shows while cloud-init's final stage still runs
    cut = data.index(b"web01 login: ") + len(b"web01 login: ")
    det = R.ReadinessDetector()
    det.feed(data[:cut])
    assert det.state.login_prompt == "web01"
    assert det.state.phase == R.CLOUD_INIT and det.state.stage == "modules:config"


@pytest.mark.parametrize("seed", [0, 3])
def test_cloud_init_finished_with_errors(seed):
    st = feed(log("cloud-init-errors.log"), seed).state
    assert st.phase == R.ERROR and st.finished
    assert st.errors == ["module package-update-upgrade-install failed", "module scripts-user failed"]
    assert st.detail == "cloud-init finished with errors: module package-update-upgrade-install failed (and 1 more)"
    assert st.seed_read  # the seed was read: it may go, the errors are the user-data's


def test_errors_are_told_while_cloud_init_still_runs():
    data = log("cloud-init-errors.log")
    det = R.ReadinessDetector()
    det.feed(data[:data.index(b"runcmd: 3:")])
    assert det.state.phase == R.CLOUD_INIT
    assert det.state.detail == ("cloud-init 22.4.2 running 'modules:final'; "
                                "module package-update-upgrade-install failed")


def test_datasource_not_found_falls_back_to_none():
    st = feed(log("cloud-init-no-datasource.log")).state
    assert st.phase == R.ERROR and st.finished and st.no_datasource and not st.seed_read
    assert st.datasource == "DataSourceNone"
    assert st.detail == "cloud-init found no seed: it ran with DataSourceNone and applied nothing"


def test_no_datasource_at_all():
    st = feed(log("cloud-init-not-found.log")).state
    assert st.phase == R.ERROR and not st.finished
    assert st.detail == "cloud-init: no instance datasource found (no seed)"
    assert st.login_prompt == "localhost"  # a prompt after a failure does not make it ready


def test_a_guest_without_cloud_init_is_ready_at_its_login_prompt():
    data = log("installed-login.log")
    det = R.ReadinessDetector()
    det.feed(data[:-len(b"db01 login: ")])
    assert det.state.phase == R.BOOTING
    det.feed(data[-len(b"db01 login: "):])
    st = det.state
    assert st.phase == R.READY and st.detail == "login prompt (db01 login:)" and not st.cloud_init


def test_a_shell_prompt_is_no_login_prompt():
    st = feed(log("boot.log")).state
    assert st.phase == R.BOOTING and not st.login_prompt


def test_a_reboot_starts_again():
    det = feed(log("cloud-init-no-datasource.log"))
    assert det.state.phase == R.ERROR
    feed(log("installed-login.log"), det=det)
    st = det.state
    assert st.boots == 2 and st.phase == R.READY and not st.cloud_init and st.errors == []
    assert st.detail == "login prompt (db01 login:)"


def test_kernel_panic_and_emergency_mode():
    det = R.ReadinessDetector()
    det.feed(b"[    0.000000] Linux version 6.1.0\r\n[    1.2] Kernel panic - not syncing: VFS: Unable to mount root fs"
             b" on unknown-block(0,0)\r\n")
    assert det.state.phase == R.ERROR
    assert det.state.detail == "kernel panic: VFS: Unable to mount root fs on unknown-block(0,0)"
    det = R.ReadinessDetector()
    det.feed(b"You are in emergency mode. After logging in, type \"journalctl -xb\" to view\r\n")
    assert (det.state.phase, det.state.detail) == (R.ERROR, "the guest is in emergency mode")


def test_feed_reports_changes_and_tail_is_plain_text():
    det = R.ReadinessDetector()
    assert det.feed(b"[    0.000000] Linux version 6.1.0-21-cloud-amd64 (x)\r\n") is True
    assert det.feed(b"[    0.1] nothing to see\r\n") is False
    det = feed(log("cloud-init-errors.log"))
    tail = det.tail(4)
    assert tail[-1] == "web02 login:"
    assert "\x1b" not in "".join(tail) and "\r" not in "".join(tail)
    assert any("Failed to start cloud-final.service" in line for line in det.tail(10))


# --- the guest agent -------------------------------------------------------------------


RESULT = {"v1": {"datasource": "DataSourceNoCloud [seed=/dev/vdb][dsmode=net]", "errors": []}}
RESULT_ERR = {"v1": {"datasource": "DataSourceNoCloud [seed=/dev/sr0][dsmode=net]",
                     "errors": ["('scripts-user', RuntimeError('Runparts: 1 failures (runcmd) in 1 attempted "
                                "commands'))"]}}
STATUS = {"v1": {"datasource": None, "stage": "modules-final",
                 "init": {"errors": [], "finished": 1715677944.9, "start": 1715677944.1},
                 "modules-final": {"errors": [], "finished": None, "start": 1715677948.4}}}


class FakeAgent:
    """Answers guest-file-* like qemu-ga, for the files it has."""

    def __init__(self, files: dict[str, dict]) -> None:
        self.files = {k: json.dumps(v).encode() for k, v in files.items()}
        self.handles: dict[int, str] = {}
        self.closed: list[int] = []
        self.sent: list[dict] = []

    def __call__(self, dom, text: str, timeout: int) -> str:
        import libvirt
        cmd = json.loads(text)
        self.sent.append(cmd)
        args = cmd.get("arguments", {})
        if cmd["execute"] == "guest-file-open":
            if args["path"] not in self.files:
                raise libvirt.libvirtError("internal error: unable to execute QEMU agent command "
                                           "'guest-file-open': failed to open file: No such file or directory")
            handle = 1000 + len(self.handles)
            self.handles[handle] = args["path"]
            return json.dumps({"return": handle})
        if cmd["execute"] == "guest-file-read":
            data = self.files[self.handles[args["handle"]]]
            return json.dumps({"return": {"count": len(data), "buf-b64": base64.b64encode(data).decode(),
                                          "eof": True}})
        if cmd["execute"] == "guest-file-close":
            self.closed.append(args["handle"])
            return json.dumps({"return": {}})
        raise AssertionError(cmd)


def test_agent_result_json():
    agent = FakeAgent({R.RESULT_JSON: RESULT, R.STATUS_JSON: STATUS})
    res = R.agent_cloud_init(object(), command=agent)
    assert res.finished and res.datasource.startswith("DataSourceNoCloud") and res.errors == []
    assert agent.closed == list(agent.handles)  # every file closed again
    assert all(c["execute"] != "guest-file-write" for c in agent.sent)


def test_agent_status_while_running_then_nothing_without_cloud_init():
    res = R.agent_cloud_init(object(), command=FakeAgent({R.STATUS_JSON: STATUS}))
    assert not res.finished and res.stage == "modules-final"
    assert R.agent_cloud_init(object(), command=FakeAgent({})) is None


def test_agent_word_merges_into_the_detector():
    det = R.ReadinessDetector()
    det.feed(b"[    0.000000] Linux version 6.1.0-21-cloud-amd64 (x)\r\n")
    assert det.merge_agent(R.AgentResult(stage="modules-config")) is True
    assert det.state.phase == R.CLOUD_INIT and det.state.source == "agent"
    assert det.merge_agent(R.parse_result_json(json.dumps(RESULT_ERR))) is True
    st = det.state
    assert st.phase == R.ERROR and st.finished and st.seed_read
    assert st.detail.startswith("cloud-init finished with errors: ('scripts-user'")
    assert det.merge_agent(R.parse_result_json(json.dumps(RESULT))) is False  # already finished
