"""Where is my VM, is it ready (issue 12, items 5-8): the addresses of a
guest with their sources, the guest watch of the UI, the wait of
``vmtui create --wait``, the ssh user, and the terminal console. Test
driver and fakes; the real run is tests/real/test_real_reach.py."""

from __future__ import annotations

import asyncio
import os
import sys
import termios
from pathlib import Path

import libvirt
import pytest

from tests.console_fakes import FakeManager, FakeSession
from vmtui.core.consoles import guests as G
from vmtui.core.consoles import readiness as R
from vmtui.core.consoles.serial import ConsoleInUse, ScrollBack
from vmtui.core.host import addresses as A
from vmtui.core.provision import seed

from .conftest import ALPHA, BRAVO, DELTA, wait_for

CONSOLE = Path(__file__).resolve().parent / "data" / "console"


def log(name: str) -> bytes:
    return (CONSOLE / name).read_bytes()


# --- addresses -----------------------------------------------------------------------


AGENT_XML = """<domain type='kvm'><name>g</name><devices>
  <interface type='network'><mac address='52:54:00:00:00:01'/><source network='default'/></interface>
  <interface type='bridge'><mac address='52:54:00:00:00:02'/><source bridge='br0'/></interface>
  <channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0' state='{state}'/></channel>
</devices></domain>"""


class FakeDom:
    """interfaceAddresses() per source, as libvirt answers."""

    def __init__(self, xml: str, answers: dict[int, object], active: bool = True) -> None:
        self.xml, self.answers, self.active, self.asked = xml, answers, active, []

    def name(self) -> str:
        return "g"

    def isActive(self) -> bool:  # noqa: N802 - libvirt's name
        return self.active

    def XMLDesc(self, flags: int = 0) -> str:  # noqa: N802
        return self.xml

    def interfaceAddresses(self, source: int, flags: int = 0):  # noqa: N802
        self.asked.append(source)
        answer = self.answers.get(source, {})
        if isinstance(answer, Exception):
            raise answer
        return answer


LEASES = {"vnet0": {"hwaddr": "52:54:00:00:00:01", "addrs": [{"addr": "192.168.122.50", "prefix": 24, "type": 0}]}}
AGENT = {
    "lo": {"hwaddr": "00:00:00:00:00:00", "addrs": [{"addr": "127.0.0.1", "prefix": 8, "type": 0},
                                                     {"addr": "::1", "prefix": 128, "type": 1}]},
    "eth1": {"hwaddr": "52:54:00:00:00:02", "addrs": [{"addr": "fe80::5054:ff:fe00:2", "prefix": 64, "type": 1},
                                                       {"addr": "2001:db8::2", "prefix": 64, "type": 1},
                                                       {"addr": "10.0.0.2", "prefix": 16, "type": 0}]},
    "eth0": {"hwaddr": "52:54:00:00:00:01", "addrs": [{"addr": "192.168.122.50", "prefix": 24, "type": 0}]},
}


def test_lease_then_agent_in_nic_order_without_loopback_or_link_local():
    dom = FakeDom(AGENT_XML.format(state="connected"), {
        libvirt.VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_LEASE: LEASES,
        libvirt.VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_AGENT: AGENT})
    report = A.domain_addresses(dom)
    assert [(a.address, a.source, a.interface) for a in report.addresses] == [
        ("192.168.122.50/24", "lease", "vnet0"),  # the first NIC; the lease told it first
        ("10.0.0.2/16", "agent", "eth1"),  # then the second NIC, IPv4 first
        ("2001:db8::2/64", "agent", "eth1"),
    ]
    assert report.sources == ["lease", "agent"]
    # every NIC has an address: the ARP table is not asked
    assert libvirt.VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_ARP not in dom.asked
    assert report.explain() == "lease: 1 address; agent: 2 addresses; arp: not asked (every NIC has an address)"


def test_the_agent_is_asked_only_when_connected_and_arp_fills_the_gaps():
    arp = {"vnet1": {"hwaddr": "52:54:00:00:00:02", "addrs": [{"addr": "10.0.0.2", "prefix": 0, "type": 0}]},
           "vnet0": {"hwaddr": "52:54:00:00:00:01", "addrs": [{"addr": "192.168.122.50", "prefix": 0, "type": 0}]}}
    dom = FakeDom(AGENT_XML.format(state="disconnected"), {
        libvirt.VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_LEASE: LEASES,
        libvirt.VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_ARP: arp})
    report = A.domain_addresses(dom)
    assert libvirt.VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_AGENT not in dom.asked
    assert [(a.ip, a.source) for a in report.addresses] == [("192.168.122.50", "lease"), ("10.0.0.2", "arp")]
    assert report.notes["agent"] == "the guest agent is not running in the guest"
    no_channel = FakeDom(AGENT_XML.replace("<channel", "<!--").replace("</channel>", "-->"), {})
    report = A.domain_addresses(no_channel)
    assert report.addresses == []
    assert report.explain() == ("lease: no lease (yet); agent: no guest agent channel; "
                                "arp: not in the host's ARP table")


def test_a_failing_source_is_a_note():
    err = libvirt.libvirtError("internal error: wrong nlmsg len")
    dom = FakeDom(AGENT_XML.format(state="connected"), {
        libvirt.VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_AGENT: err,
        libvirt.VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_ARP: err})
    report = A.domain_addresses(dom, sources=("agent", "arp"))
    assert report.addresses == [] and "lease" not in report.notes
    assert report.notes == {"agent": "internal error: wrong nlmsg len", "arp": "internal error: wrong nlmsg len"}
    assert A.domain_addresses(FakeDom(AGENT_XML, {}, active=False)).explain() == "not running"


def test_agent_state_of_the_live_xml():
    assert A.agent_state(AGENT_XML.format(state="connected")) == "connected"
    assert A.agent_state("<domain><devices/></domain>") is None


async def test_addresses_on_the_test_driver(service):
    report = await service.call(lambda c: A.guest_addresses(c, ALPHA))
    assert report.running and report.nics == 1
    (a,) = report.addresses
    assert (a.family, a.source, a.prefix) == ("ipv4", "lease", 24) and a.ip.startswith("192.168.122.")
    assert report.notes["agent"] == "no guest agent channel"
    off = await service.call(lambda c: A.guest_addresses(c, BRAVO))
    assert not off.running and off.addresses == []
    every = await service.call(A.running_addresses)
    assert set(every) == {u for u, d in service.domains.items() if d.is_active}


# --- the wait of vmtui create --wait ---------------------------------------------------------


def fake_session(uuid: str) -> FakeSession:
    return FakeSession(uuid, "x", ScrollBack())


def fake_removal(monkeypatch) -> list[str]:
    calls: list[str] = []

    def remove(conn, uuid, *, only_if_due=True):
        calls.append(uuid)
        return seed.SeedRemoval("alpha", "/var/lib/libvirt/images/alpha-cidata.iso", live=seed.EJECTED,
                                volume_deleted=True)
    monkeypatch.setattr(seed, "remove_seed", remove)
    return calls


async def _wait(service, data: bytes | None, *, sessions=None, chunk: int = 500, **kw) -> G.WaitOutcome:
    """wait_until_ready on ALPHA with a fake console that plays ``data``."""
    sessions = sessions if sessions is not None else []

    async def open_console():
        s = fake_session(ALPHA)
        sessions.append(s)
        return s

    kw.setdefault("timeout", 20)
    task = asyncio.ensure_future(G.wait_until_ready(service, ALPHA, open_console=open_console,
                                                    poll=(0.05,), **kw))
    await wait_for(lambda: sessions, what="console opened")
    if data:
        for i in range(0, len(data), chunk):
            sessions[-1].emit(data[i:i + chunk])
            await asyncio.sleep(0)
    return await task


async def test_ready_when_cloud_init_finished_and_an_address_is_known(service, monkeypatch):
    removed = fake_removal(monkeypatch)
    said: list[str] = []
    out = await _wait(service, log("cloud-init-finished.log"), cloud_init=True, remove_seed=True,
                      progress=said.append)
    assert out.ready and out.why == "cloud-init finished (DataSourceNoCloud [seed=/dev/vdb][dsmode=net])"
    assert out.addresses.addresses[0].source == "lease"
    assert removed == [ALPHA] and out.seed.volume_deleted
    assert said[0] == "booting" and said[-1] == out.why
    assert any(s.startswith("cloud-init 22.4.2 running '") for s in said)  # (states in between may merge)


async def test_cloud_init_errors_fail_with_the_last_lines_and_the_seed_goes(service, monkeypatch):
    removed = fake_removal(monkeypatch)
    out = await _wait(service, log("cloud-init-errors.log"), cloud_init=True, remove_seed=True)
    assert not out.ready
    assert out.why == "cloud-init finished with errors: module package-update-upgrade-install failed (and 1 more)"
    assert len(out.tail) == 20 and out.tail[-1] == "web02 login:"
    assert any("Failed to start cloud-final.service" in t for t in out.tail)
    assert removed == [ALPHA]  # the seed was read: its job is done


async def test_no_datasource_fails_and_the_seed_stays(service, monkeypatch):
    removed = fake_removal(monkeypatch)
    out = await _wait(service, log("cloud-init-no-datasource.log"), cloud_init=True, remove_seed=True)
    assert not out.ready and "DataSourceNone" in out.why
    assert removed == [] and out.seed is None


async def test_a_guest_without_cloud_init_is_ready_at_its_login_prompt(service):
    out = await _wait(service, log("installed-login.log"), cloud_init=False)
    assert out.ready and out.why == "login prompt (db01 login:)"


async def test_timeout_says_how_far_it_got(service):
    out = await _wait(service, None, cloud_init=True, timeout=0.3)
    assert not out.ready and out.why == "not ready within 0.3 s: nothing on its console"
    data = log("cloud-init-finished.log")
    out = await _wait(service, data[:data.index(b"\n", data.index(b"running 'init'")) + 1], cloud_init=True,
                      timeout=0.5)
    assert out.why.startswith("not ready within 0.5 s: cloud-init 22.4.2 running 'init'")


async def test_the_vm_stopping_ends_the_wait(service):
    sessions: list = []
    task = asyncio.ensure_future(_wait(service, b"[    0.0] Linux version 6.1 (x)\r\n", sessions=sessions,
                                       cloud_init=True))
    await wait_for(lambda: sessions, what="console")
    await service.force_off(ALPHA)
    out = await task
    assert not out.ready and out.why == "the VM stopped (shut off, destroyed)"


async def test_after_an_install_the_vm_is_started_again_and_read_again(service):
    sessions: list = []
    said: list[str] = []
    task = asyncio.ensure_future(_wait(service, None, sessions=sessions, cloud_init=False, restarts=1,
                                       progress=said.append))
    await wait_for(lambda: sessions, what="console")
    await service.force_off(ALPHA)  # the installer's reboot ends the install run
    await wait_for(lambda: len(sessions) == 2, what="console opened again")
    assert service.domains[ALPHA].is_running
    sessions[1].emit(log("installed-login.log"))
    out = await task
    assert out.ready and any("stopped after its installation" in s for s in said)


async def test_without_a_console_the_guest_agent_tells(service, monkeypatch):
    async def no_console():
        raise ConsoleInUse("domain 'alpha'", "held by virsh")

    monkeypatch.setattr(A, "agent_state", lambda xml: "connected")
    asked: list = []

    def agent(dom):
        asked.append(dom.name())
        return R.AgentResult(finished=True, datasource="DataSourceNoCloud [seed=/dev/sr0][dsmode=net]")
    monkeypatch.setattr(R, "agent_cloud_init", agent)
    out = await G.wait_until_ready(service, ALPHA, cloud_init=True, timeout=10, open_console=no_console,
                                   poll=(0.05,))
    assert out.ready and out.readiness.source == "agent" and asked == ["alpha"]
    assert out.console_note == "console in use by another client"


# --- the guest watch of the UI ------------------------------------------------------------


def mark_seed(conn, uuid: str, due: bool = True) -> str:
    """Give domain ``uuid`` a seed CD-ROM and vmtui's record of it."""
    import xml.etree.ElementTree as ET
    dom = conn.lookupByUUIDString(uuid)
    path = f"/var/lib/libvirt/images/{dom.name()}-cidata.iso"
    root = ET.fromstring(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
    root.find("devices").append(ET.fromstring(
        f"<disk type='file' device='cdrom'><source file='{path}'/><target dev='hdc' bus='ide'/><readonly/></disk>"))
    xml = seed.set_seed_metadata(ET.tostring(root, encoding="unicode"),
                                 seed.SeedRecord(path, "default", f"{dom.name()}-cidata.iso", due))
    conn.defineXML(xml)
    return path


async def test_the_watch_removes_the_seed_of_a_vm_it_adopted_once_cloud_init_finished(service, monkeypatch):
    removed = fake_removal(monkeypatch)
    await service.call(lambda c: mark_seed(c, ALPHA))
    await service.call(lambda c: mark_seed(c, DELTA))
    consoles = FakeManager(service)
    watch = G.GuestWatch(service, consoles)
    news: list = []
    watch.subscribe(news.append)
    await watch.adopt(ALPHA)
    assert consoles.opens == [(ALPHA, False)] and watch.view(ALPHA).remove_seed
    await watch.watch(DELTA)  # watched (started here), not adopted: its seed is not ours to remove
    consoles.sessions[ALPHA].emit(log("cloud-init-finished.log"))
    consoles.sessions[DELTA].emit(log("cloud-init-finished.log"))
    await wait_for(lambda: news, what="seed removed")
    assert removed == [ALPHA]
    (n,) = news
    assert (n.uuid, n.error) == (ALPHA, "") and n.removal.volume_deleted
    assert service.domains[ALPHA].guest.readiness == "ready"
    assert service.domains[DELTA].guest.readiness == "ready"
    watch.stopped(ALPHA)
    assert service.domains[ALPHA].guest == service.domains[BRAVO].guest  # nothing known
    watch.close()


async def test_a_console_in_use_is_never_taken(service):
    consoles = FakeManager(service)
    consoles.fail[ALPHA] = [ConsoleInUse("domain 'alpha'", "virsh console")]
    watch = G.GuestWatch(service, consoles)
    await watch.watch(ALPHA)
    assert consoles.opens == [(ALPHA, False)]  # no force
    assert watch.view(ALPHA).console_note == "console in use by another client"
    watch.close()


async def test_a_followed_boot_without_its_console_hears_the_guest_agent(service, monkeypatch):
    removed = fake_removal(monkeypatch)
    await service.call(lambda c: mark_seed(c, ALPHA))
    monkeypatch.setattr(A, "agent_state", lambda xml: "connected")
    monkeypatch.setattr(R, "agent_cloud_init", lambda dom: R.AgentResult(
        finished=True, datasource="DataSourceNoCloud [seed=/dev/sr0][dsmode=net]"))
    consoles = FakeManager(service)
    consoles.fail[ALPHA] = [ConsoleInUse("domain 'alpha'", "virsh console")]
    watch = G.GuestWatch(service, consoles)
    watch.after_start = (0.05,)
    await watch.adopt(ALPHA)
    await wait_for(lambda: removed == [ALPHA], what="seed removed on the agent's word")
    assert service.domains[ALPHA].guest.readiness == "ready"
    assert watch.view(ALPHA).readiness.source == "agent"
    watch.close()


async def test_addresses_on_the_slow_cadence_and_cached(service):
    watch = G.GuestWatch(service, None)
    before = service.calls
    await watch.refresh_addresses()
    assert service.calls == before + 1  # one call for every running VM
    running = {u for u, d in service.domains.items() if d.is_active}
    assert {u for u, d in service.domains.items() if d.guest.addresses} == running
    assert service.domains[ALPHA].guest.address_source == "lease"
    cached = await watch.addresses(ALPHA, max_age=60)
    assert service.calls == before + 1 and cached.addresses
    await watch.addresses(ALPHA)
    assert service.calls == before + 2
    watch.close()


# --- the ssh user ----------------------------------------------------------------------------


@pytest.mark.parametrize("user_data,os_id,user", [
    ("#cloud-config\nusers:\n  - name: admin\n", "debian12", "admin"),
    ("#cloud-config\nusers:\n  - default\n  - name: ops\n", "debian12", "ops"),
    ("#cloud-config\nusers: [default]\n", "ubuntu24.04", "ubuntu"),
    ("#cloud-config\npackages: [git]\n", "fedora40", "fedora"),
    ("#cloud-config\nsystem_info:\n  default_user:\n    name: deploy\n", "debian12", "deploy"),
    ("#cloud-config\nhostname: x\n", "generic", None),
    ("#!/bin/sh\necho hi\n", "rocky9", "rocky"),
    (None, "", None),
])
def test_login_user(user_data, os_id, user):
    assert G.login_user(user_data, os_id) == user


# --- the console in the terminal ------------------------------------------------------------


class RecordingSession:
    def __init__(self) -> None:
        self.sent: list[bytes] = []
        self.detached = False
        self.scrollback = ScrollBack()

    def attach(self, on_data, on_closed=None) -> bytes:
        self.on_data = on_data
        return b"history\r\n"

    def send(self, data: bytes) -> None:
        self.sent.append(data)

    def detach(self) -> None:
        self.detached = True


async def test_terminal_console_raw_keys_to_the_guest_and_ctrl_bracket_leaves(monkeypatch):
    import io

    from vmtui.follow import TerminalConsole

    master, slave = os.openpty()
    stdin = os.fdopen(slave, "r", closefd=False)
    out = io.BytesIO()

    class Out:
        buffer = out
    monkeypatch.setattr(sys, "stdin", stdin)
    monkeypatch.setattr(sys, "stdout", Out)
    cooked = termios.tcgetattr(slave)
    term = TerminalConsole(asyncio.get_running_loop())
    session = RecordingSession()
    try:
        term.start()
        assert termios.tcgetattr(slave)[3] & termios.ICANON == 0  # raw
        term.attach(session)
        session.on_data(b"guest says hi\r\n")
        await wait_for(lambda: b"guest says hi" in out.getvalue(), what="guest output shown")
        assert out.getvalue().startswith(b"history\r\n")
        os.write(master, b"ls\r")
        await wait_for(lambda: session.sent == [b"ls\r"], what="keys to the guest")
        os.write(master, b"x\x1d")
        await wait_for(lambda: term.left.is_set(), what="left")
        assert session.sent == [b"ls\r", b"x"] and session.detached
        assert termios.tcgetattr(slave) == cooked  # the terminal as it was
        session.on_data(b"after leaving\r\n")
        await asyncio.sleep(0)
        assert b"after leaving" not in out.getvalue()
    finally:
        term.stop()
        os.close(master)
        os.close(slave)
