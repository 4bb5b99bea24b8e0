"""The connection service against libvirt's test driver (fresh connection per test)."""

from __future__ import annotations

import asyncio
import time

import libvirt
import pytest

from vmtui.core.connection.counting import counting_opener
from vmtui.core.errors import CallTimeout, ConnectError, Disconnected, VmtuiError
from vmtui.core.connection.service import (
    ConnState,
    DomainRemoved,
    DomainsChanged,
    LibvirtService,
    normalize_uri,
)

from .conftest import ALPHA, BRAVO, CHARLIE, DELTA, ECHO, wait_for


async def test_lists_domains_with_states(service):
    doms = service.domains
    assert {d.name for d in doms.values()} == {"alpha", "bravo", "charlie", "delta", "echo"}
    assert doms[ALPHA].state == "running"
    assert doms[BRAVO].state == "shut off"
    assert doms[CHARLIE].state == "paused"
    assert doms[ALPHA].id is not None and doms[BRAVO].id is None
    assert all(d.persistent for d in doms.values())
    # titles arrive in a second pass, after the list is shown; with them the
    # sizes the test driver's bulk stats lack (a call per domain otherwise)
    await wait_for(lambda: doms[DELTA].title == "Delta database", what="titles")
    await service.wait_loaded()
    assert doms[ALPHA].vcpus == 1 and doms[ALPHA].max_memory_kib == 1024 * 1024
    assert doms[DELTA].vcpus == 4 and doms[BRAVO].memory_kib == 2 * 1024 * 1024
    assert doms[ECHO].title == ""


async def test_host_info(service):
    h = service.host
    assert h.cpus == 8
    assert h.memory_total_kib == 16 * 1024 * 1024
    assert h.libvirt_version.count(".") == 2
    assert h.driver.lower() == "test"


async def test_actions_change_state_through_events(service):
    seen = []
    service.subscribe(seen.append)
    await service.pause(ALPHA)
    await wait_for(lambda: service.domains[ALPHA].state == "paused", what="alpha paused")
    assert service.domains[ALPHA].reason == "user"
    await service.resume(ALPHA)
    await wait_for(lambda: service.domains[ALPHA].state == "running", what="alpha resumed")
    await service.force_off(ALPHA)
    await wait_for(lambda: service.domains[ALPHA].state == "shut off", what="alpha off")
    assert service.domains[ALPHA].reason == "destroyed"
    assert service.domains[ALPHA].id is None
    await service.start(BRAVO)
    await wait_for(lambda: service.domains[BRAVO].state == "running", what="bravo running")
    await service.shutdown(DELTA)
    await wait_for(lambda: service.domains[DELTA].is_shut_off, what="delta shut down")
    assert any(isinstance(m, DomainsChanged) for m in seen)


async def test_event_from_another_connection_updates_table(service, small_uri):
    """A change made by someone else on the same connection's host arrives as an event.

    The test driver keeps each connection's host private, so use the service's
    own connection from a thread, as another client of that host would."""
    conn = service.conn
    await asyncio.to_thread(lambda: conn.lookupByName("echo").create())
    await wait_for(lambda: service.domains[ECHO].state == "running", what="event for echo")


async def test_autostart_toggle(service):
    await service.set_autostart(BRAVO, True)
    await wait_for(lambda: service.domains[BRAVO].autostart, what="autostart on")
    assert await asyncio.to_thread(lambda: service.conn.lookupByUUIDString(BRAVO).autostart()) == 1
    await service.set_autostart(BRAVO, False)
    await wait_for(lambda: not service.domains[BRAVO].autostart, what="autostart off")


async def test_error_names_domain_and_cause(service):
    with pytest.raises(VmtuiError) as info:
        await service.start(ALPHA)  # already running
    msg = str(info.value)
    assert msg.startswith("Cannot start domain 'alpha': ")
    assert "already running" in msg or "active" in msg


async def test_hung_call_times_out(service):
    with pytest.raises(CallTimeout) as info:
        await service.call(lambda c: time.sleep(1.0), timeout=0.1, action="test", obj="x")
    assert "did not answer within 0.1 s" in str(info.value)
    # the service still works afterwards
    assert (await service.call(lambda c: c.getHostname())) != ""


async def test_details_disks_and_usage(service):
    ov, disks = await service.details(ALPHA)
    assert ov.name == "alpha"
    by_target = {u.disk.target: u for u in disks}
    main = next(u for u in disks if u.disk.source.endswith("alpha.qcow2"))
    assert main.capacity == 10 * 1024 ** 3 and main.allocation == 2 * 1024 ** 3
    assert main.deletable and main.volume_key
    shared = next(u for u in disks if u.disk.source.endswith("shared.img"))
    assert shared.used_by == ["bravo"]
    assert not shared.deletable
    assert len(by_target) == len(disks)
    _, echo_disks = await service.details(ECHO)
    cd = next(u for u in echo_disks if u.disk.device == "cdrom")
    assert not cd.deletable and cd.why_not_deletable == "removable media"


async def test_delete_with_storage_keeps_shared(service):
    removed = []
    service.subscribe(lambda m: removed.append(m) if isinstance(m, DomainRemoved) else None)
    _, disks = await service.details(ALPHA)
    keys = [u.volume_key for u in disks if u.volume_key]  # ask for all, even the shared one
    result = await service.delete(ALPHA, keys)
    assert result.name == "alpha"
    assert any(s.endswith("alpha.qcow2") for s in result.deleted)
    assert any("shared.img" in e and "used by bravo" in e for e in result.errors)
    await wait_for(lambda: ALPHA not in service.domains, what="alpha removed")
    assert removed and removed[0].name == "alpha"
    names = await asyncio.to_thread(lambda: [v.name() for v in service.conn.storagePoolLookupByName("default").listAllVolumes()])
    assert "alpha.qcow2" not in names
    assert "shared.img" in names
    with pytest.raises(libvirt.libvirtError):
        await asyncio.to_thread(service.conn.lookupByName, "alpha")


async def test_delete_without_storage_keeps_volumes(service):
    await service.delete(BRAVO, [])
    await wait_for(lambda: BRAVO not in service.domains, what="bravo removed")
    names = await asyncio.to_thread(lambda: [v.name() for v in service.conn.storagePoolLookupByName("default").listAllVolumes()])
    assert "bravo.img" in names


async def test_stats_tick_makes_at_most_two_calls(small_uri):
    holder = []
    svc = LibvirtService(small_uri, stats_interval=3600, reconnect=False, open_func=counting_opener(holder))
    await svc.connect()
    try:
        conn = holder[0]
        await svc.wait_loaded()
        for _ in range(4):
            before = conn.total
            await svc.stats_tick()
            assert conn.total - before <= 2, dict(conn.counts)
        assert conn.counts["getAllDomainStats"] >= 4
    finally:
        await svc.close()


async def test_stats_rates_from_deltas(service):
    from vmtui.core.connection.rows import DomainInfo
    info = DomainInfo(uuid="u", name="n", id=1, state_code=1, vcpus=2)
    rec1 = {"state.state": 1, "cpu.time": 0, "block.count": 1, "block.0.rd.bytes": 0, "block.0.wr.bytes": 0,
            "net.count": 1, "net.0.rx.bytes": 0, "net.0.tx.bytes": 0, "balloon.rss": 1000}
    rec2 = {"state.state": 1, "cpu.time": 1_000_000_000, "block.count": 1, "block.0.rd.bytes": 4096,
            "block.0.wr.bytes": 8192, "net.count": 1, "net.0.rx.bytes": 100, "net.0.tx.bytes": 300,
            "balloon.rss": 2000}
    s1 = service._compute_stats("u", info, rec1, 10.0)
    assert s1.cpu_percent is None and s1.mem_used_kib == 1000
    s2 = service._compute_stats("u", info, rec2, 12.0)
    assert s2.cpu_percent == 25.0  # 1 s of CPU over 2 s on 2 vCPUs
    assert s2.disk_read_bps == 2048 and s2.disk_write_bps == 4096
    assert s2.net_rx_bps == 50 and s2.net_tx_bps == 150
    assert s2.mem_used_kib == 2000


async def test_connect_failure_is_readable():
    svc = LibvirtService("test:///no/such/host.xml", reconnect=False)
    with pytest.raises(ConnectError) as info:
        await svc.connect()
    msg = str(info.value)
    assert msg.startswith("Cannot connect to test:///no/such/host.xml: ")
    assert "--demo" in msg
    assert svc.state is ConnState.CLOSED


async def test_calls_when_disconnected_fail_cleanly():
    svc = LibvirtService("test:///default", reconnect=False)
    with pytest.raises(Disconnected):
        await svc.start("nope")


async def test_readonly_refuses_changes(small_uri):
    svc = LibvirtService(small_uri, readonly=True, reconnect=False, stats_interval=3600)
    await svc.connect()
    try:
        assert svc.readonly
        with pytest.raises(VmtuiError) as info:
            await svc.pause(ALPHA)
        assert "alpha" in str(info.value)
    finally:
        await svc.close()


async def test_reconnect_after_connection_loss(small_uri):
    svc = LibvirtService(small_uri, stats_interval=3600, reconnect=True)
    states = []
    svc.subscribe(lambda m: states.append(m.state) if hasattr(m, "state") and isinstance(m.state, ConnState) else None)
    await svc.connect()
    try:
        svc._connection_lost("simulated")
        assert svc.state is ConnState.DISCONNECTED
        await wait_for(lambda: svc.state is ConnState.CONNECTED, timeout=10, what="reconnect")
        assert ConnState.DISCONNECTED in states
        assert len(svc.domains) == 5
    finally:
        await svc.close()


def test_ssh_uris_never_prompt():
    assert normalize_uri("qemu+ssh://root@h/system") == "qemu+ssh://root@h/system?no_tty=1"
    assert normalize_uri("qemu+ssh://h/system?keyfile=/k") == "qemu+ssh://h/system?keyfile=/k&no_tty=1"
    assert normalize_uri("qemu:///system") == "qemu:///system"


async def test_undefine_running_vm_leaves_it_transient(service):
    await service.undefine(ALPHA)
    await wait_for(lambda: not service.domains[ALPHA].persistent, what="alpha transient")
    assert service.domains[ALPHA].state == "running"
    await service.force_off(ALPHA)
    await wait_for(lambda: ALPHA not in service.domains, what="transient alpha gone after stop")


async def test_unexpected_error_in_a_call_is_still_a_message(service):
    with pytest.raises(VmtuiError) as info:
        await service.call(lambda c: 1 / 0, action="compute", obj="domain 'x'")
    assert str(info.value) == "Cannot compute domain 'x': ZeroDivisionError: division by zero"


async def test_titles_and_flags_take_one_call_per_domain_and_the_rows_on_screen_come_first(small_uri, monkeypatch):
    """One XMLDesc per domain (no metadata() calls) after the list is shown;
    the domains prioritize_titles names are read before the others."""
    import libvirt

    from vmtui.core.connection.service import LibvirtService as Service

    # (connection, what) pairs: a thread of an earlier test's service may
    # still be finishing a read of these same fixture domains; only the
    # calls on this service's connection count
    seen: list[tuple[object, str]] = []
    real_xmldesc, real_metadata = libvirt.virDomain.XMLDesc, libvirt.virDomain.metadata

    def xmldesc(self, flags=0):
        seen.append((self.connect(), self.UUIDString()))
        return real_xmldesc(self, flags)

    def metadata(self, *args, **kwargs):
        seen.append((self.connect(), "metadata"))
        return real_metadata(self, *args, **kwargs)

    monkeypatch.setattr(libvirt.virDomain, "XMLDesc", xmldesc)
    monkeypatch.setattr(libvirt.virDomain, "metadata", metadata)
    svc = Service(small_uri, stats_interval=3600, reconnect=False)
    await svc.connect()
    mine = svc._link.conn

    def calls() -> list[str]:
        return [what for conn, what in seen if conn is mine]

    try:
        await svc.wait_loaded()
        assert sorted(calls()) == sorted(svc.domains) and svc.domains[DELTA].title == "Delta database"
        seen.clear()
        by_name = sorted(svc.domains, key=lambda u: svc.domains[u].name)  # the list's first order
        task = asyncio.ensure_future(svc._load_titles(by_name, chunk=1, workers=1))
        while not svc._title_todo or ALPHA in svc._title_todo:  # the first chunk is taken: alpha, first by name
            await asyncio.sleep(0)
        svc.prioritize_titles([ECHO, DELTA])
        await task
        assert calls() == [ALPHA, ECHO, DELTA, BRAVO, CHARLIE]
    finally:
        await svc.close()
