"""A connection is never closed while a call is in flight on it (issue 10.1).

Unit tests of vmtui.core.connection.link with a fake connection, and of the service's
use of it on the test driver: a lost connection tells waiting callers at
once, closes only after their calls returned, and a hung daemon is found by
the probe without libvirt's keepalive.
"""

from __future__ import annotations

import asyncio
import threading

import pytest

from tests.conftest import wait_for
from vmtui.core.errors import Disconnected
from vmtui.core.connection.link import DaemonPool, Link, Opener, RetiredLink
from vmtui.core.connection.service import ConnectionChanged, ConnState, LibvirtService


class FakeConn:
    def __init__(self) -> None:
        self.closed = 0
        self.deregistered: list[int] = []
        self.in_call = threading.Event()
        self.release = threading.Event()

    def block(self, *_):
        self.in_call.set()
        assert self.release.wait(20), "the test never released the call"
        assert not self.closed, "closed while a call was in flight"
        return "answer"

    def domainEventDeregisterAny(self, cid: int) -> None:
        self.deregistered.append(cid)

    def close(self) -> int:
        self.closed += 1
        return 0


def test_retired_link_closes_only_after_the_last_call_returned():
    conn = FakeConn()
    link = Link(conn, gen=1, readonly=False)
    link.callback_ids = [("domain", 7)]
    fut = link.submit(conn.block)
    assert conn.in_call.wait(10)
    assert link.inflight == 1
    link.retire("daemon hung")
    assert link.retired and conn.closed == 0 and not link.done.is_set()
    with pytest.raises(RetiredLink):
        link.submit(conn.block)
    conn.release.set()
    assert fut.result(10) == "answer"
    assert link.done.wait(10)
    assert conn.closed == 1 and conn.deregistered == [7]
    assert link.inflight == 0


def test_retiring_an_idle_link_closes_it_at_once():
    conn = FakeConn()
    link = Link(conn, gen=1, readonly=False)
    link.retire("closed")
    assert link.done.wait(10)
    assert conn.closed == 1


def test_queued_calls_are_cancelled_and_released_at_retire():
    conn = FakeConn()
    link = Link(conn, gen=1, readonly=False, executor=DaemonPool(1))
    running = link.submit(conn.block)
    assert conn.in_call.wait(10)
    queued = [link.submit(lambda: "never") for _ in range(3)]
    assert link.inflight == 4
    link.retire("lost")
    assert all(f.cancelled() for f in queued)
    assert link.inflight == 1 and conn.closed == 0
    conn.release.set()
    running.result(10)
    assert link.done.wait(10) and conn.closed == 1


async def test_waiters_hear_of_the_loss_at_once():
    conn = FakeConn()
    link = Link(conn, gen=1, readonly=False)
    lost = link.lost_future(asyncio.get_running_loop())
    link.submit(conn.block)
    assert await asyncio.to_thread(conn.in_call.wait, 10)
    link.retire("keepalive", asyncio.get_running_loop())
    assert await asyncio.wait_for(lost, 5) == "keepalive"
    conn.release.set()
    assert await asyncio.to_thread(link.done.wait, 10)


def test_daemon_pool_threads_never_hold_up_exit():
    pool = DaemonPool(2)
    gate = threading.Event()
    futs = [pool.submit(gate.wait, 10) for _ in range(3)]
    names = {t.name: t.daemon for t in threading.enumerate() if t.name.startswith("libvirt-worker")}
    assert names and all(names.values())
    pool.shutdown(cancel_futures=True)
    assert futs[2].cancelled()  # not started: 2 workers
    gate.set()
    assert futs[0].result(10) is True and futs[1].result(10) is True
    with pytest.raises(RuntimeError):
        pool.submit(print)


def test_opener_keeps_one_attempt_and_closes_an_abandoned_one():
    opener = Opener()
    gate = threading.Event()
    conn = FakeConn()

    def open_():
        gate.wait(10)
        return conn, False

    first = opener.start(open_)
    assert opener.start(lambda: pytest.fail("a second open started")) is first
    opener.abandon()
    gate.set()
    first.result(10)
    assert conn.closed == 1  # nobody wanted it


# --- the service ----------------------------------------------------------------


async def test_a_call_pending_on_a_lost_connection_fails_at_once(small_uri):
    svc = LibvirtService(small_uri, stats_interval=3600, reconnect=False)
    await svc.connect()
    link = svc._link
    gate = threading.Event()
    try:
        call = asyncio.ensure_future(svc.call(lambda c: gate.wait(60), action="start", obj="domain 'alpha'",
                                              timeout=120))
        await wait_for(lambda: link.inflight >= 1, what="call in flight")
        svc._connection_lost("end of file from libvirtd")
        with pytest.raises(Disconnected) as info:
            await asyncio.wait_for(call, 10)
        assert info.value.message == (f"Cannot start domain 'alpha': connection to {small_uri} lost "
                                      "(end of file from libvirtd)")
        assert svc.state is ConnState.CLOSED  # the status line tells the same story
        assert not gate.is_set() and not link.done.is_set()  # the thread is still inside its call
    finally:
        gate.set()
    assert await asyncio.to_thread(link.done.wait, 10)  # closed once it returned
    await svc.close()


class HangingProbe:
    """A test-driver connection whose getLibVersion stops answering once
    armed (a SIGSTOPped daemon, as far as the probe can tell)."""

    armed = False

    def __init__(self, conn, gate: threading.Event) -> None:
        self._conn, self._gate = conn, gate

    def getLibVersion(self):
        if self.armed:
            self._gate.wait(60)
        return self._conn.getLibVersion()

    def __getattr__(self, name):
        return getattr(self._conn, name)


async def test_a_hung_daemon_is_found_by_the_probe(small_uri):
    import libvirt

    gate = threading.Event()
    opened = []

    def open_(uri: str, readonly: bool):
        conn = libvirt.open(uri)
        opened.append(conn)
        return HangingProbe(conn, gate) if len(opened) == 1 else conn

    svc = LibvirtService(small_uri, stats_interval=3600, reconnect=True, open_func=open_,
                         probe_interval=0.2, hang_limit=0.5)
    heard: list[ConnectionChanged] = []
    svc.subscribe(lambda m: heard.append(m) if isinstance(m, ConnectionChanged) else None)
    await svc.connect()
    first = svc._link
    first.conn.armed = True
    try:
        await wait_for(lambda: any(m.state is ConnState.DISCONNECTED for m in heard), timeout=20,
                       what="hang noticed")
        lost = next(m for m in heard if m.state is ConnState.DISCONNECTED)
        assert lost.message == "connection lost: libvirtd did not answer for 0.5 s"
        await wait_for(lambda: svc.state is ConnState.CONNECTED and svc._link is not first, timeout=20,
                       what="reconnected")
        assert len(svc.domains) == 5
        assert not first.done.is_set()  # the probe is still waiting: the old connection stays open
        gate.set()
        assert await asyncio.to_thread(first.done.wait, 10)
    finally:
        gate.set()
        await svc.close()
