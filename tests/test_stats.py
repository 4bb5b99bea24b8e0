"""The stats tick's work on the worker thread (core/connection/stats.py):
only domains whose facts changed reach the loop."""

from __future__ import annotations

from vmtui.core.connection.stats import StatsState

from .conftest import ALPHA, BRAVO


class FakeDom:
    calls = 0

    def __init__(self, uuid: str, dom_id: int = 1) -> None:
        self.uuid, self.dom_id = uuid, dom_id

    def UUID(self) -> bytes:
        return self.uuid.encode()

    def UUIDString(self) -> str:
        FakeDom.calls += 1
        return self.uuid

    def ID(self) -> int:
        FakeDom.calls += 1
        return self.dom_id


RUNNING = {"state.state": 1, "state.reason": 1, "vcpu.current": 2, "balloon.maximum": 2048, "balloon.current": 1024}


def test_a_quiet_domain_is_told_once_then_skipped_without_reading_it():
    state = StatsState()
    a, b = FakeDom(ALPHA), FakeDom(BRAVO, -1)
    off = {"state.state": 5, "state.reason": 1}
    first = state.run([(a, dict(RUNNING)), (b, dict(off))], 10.0, True)
    assert {u for u, _ in first.changed} == {ALPHA, BRAVO} and first.seen == {ALPHA, BRAVO}
    facts = dict(first.changed)
    assert (facts[ALPHA].state, facts[ALPHA].vcpus, facts[ALPHA].memory_kib, facts[ALPHA].id) == (1, 2, 1024, 1)
    assert facts[BRAVO].id is None
    FakeDom.calls = 0
    again = state.run([(a, dict(RUNNING)), (b, dict(off))], 12.0, True)
    assert again.changed == [] and again.seen is None  # the same domains as before
    assert FakeDom.calls == 0  # not even its UUID string or ID was asked again


def test_rates_that_stop_moving_are_told_once_more():
    state = StatsState()
    a = FakeDom(ALPHA)
    state.run([(a, {**RUNNING, "cpu.time": 0})], 10.0, False)
    busy = state.run([(a, {**RUNNING, "cpu.time": 1_000_000_000})], 12.0, False)
    assert dict(busy.changed)[ALPHA].stats.cpu_percent == 25.0  # 1 s over 2 s on 2 vCPUs
    idle = state.run([(a, {**RUNNING, "cpu.time": 1_000_000_000})], 14.0, False)  # the same record
    assert dict(idle.changed)[ALPHA].stats.cpu_percent == 0.0
    assert state.run([(a, {**RUNNING, "cpu.time": 1_000_000_000})], 16.0, False).changed == []


def test_domains_that_come_and_go_change_what_was_seen():
    state = StatsState()
    a, b = FakeDom(ALPHA), FakeDom(BRAVO)
    state.run([(a, dict(RUNNING)), (b, dict(RUNNING))], 10.0, False)
    gone = state.run([(a, dict(RUNNING))], 12.0, False)
    assert gone.seen == {ALPHA} and gone.changed == []
    back = state.run([(a, dict(RUNNING)), (b, dict(RUNNING))], 14.0, False)
    assert back.seen == {ALPHA, BRAVO} and [u for u, _ in back.changed] == [BRAVO]  # compared with nothing
    state.forget(ALPHA)  # read anew after an event: the next record is told
    assert [u for u, _ in state.run([(a, dict(RUNNING)), (b, dict(RUNNING))], 16.0, False).changed] == [ALPHA]


# --- close ticks: between sweeps, only the domains the UI shows ----------------------------


async def _ticks_service(small_uri):
    from .statsfeed import Feed, quiet_service

    feed = Feed()
    svc = quiet_service(small_uri, feed)
    await svc.connect()
    await svc.wait_loaded()
    feed.conn.counts.clear()  # the load's own calls
    return feed, svc


async def test_between_sweeps_a_tick_reads_only_the_running_domains_shown(small_uri, monkeypatch):
    from vmtui.core.connection.stats import FULL_EVERY, SWEEP_EVERY

    from .conftest import DELTA

    assert FULL_EVERY % SWEEP_EVERY == 0
    feed, svc = await _ticks_service(small_uri)
    try:
        asked: list[list[str]] = []
        real = feed.conn._conn.domainListGetStats

        def spy(doms, stats=0, flags=0):
            asked.append(sorted(d.UUIDString() for d in doms))
            return real(doms, stats, flags)

        monkeypatch.setattr(feed.conn._conn, "domainListGetStats", spy, raising=False)
        svc.shown = lambda: [ALPHA, BRAVO]  # bravo is shut off: nothing to read of it
        for i in range(SWEEP_EVERY + 1):  # tick 0 reads every domain, tick SWEEP_EVERY every running one
            feed.set(ALPHA, cpu_ns=i * 10**9)
            feed.set(DELTA, cpu_ns=i * 10**9)
            await feed.tick(svc, at=10.0 + 2 * i, monkeypatch=monkeypatch)
            if i == 1:
                # alpha (shown) has its rate; delta (not shown) is not read until the sweep
                assert svc.domains[ALPHA].stats.cpu_percent is not None
                assert svc.domains[DELTA].stats.cpu_percent is None
        assert asked == [[ALPHA]] * (SWEEP_EVERY - 1)
        assert feed.conn.counts["getAllDomainStats"] == 2
        assert feed.conn.counts["domainListGetStats"] == SWEEP_EVERY - 1
        # the sweep gave delta its rate, over the whole time since tick 0
        assert svc.domains[DELTA].stats.cpu_percent is not None
    finally:
        await svc.close()


async def test_a_shown_domain_not_seen_by_a_pass_yet_makes_the_tick_a_sweep(small_uri, monkeypatch):
    feed, svc = await _ticks_service(small_uri)
    try:
        await feed.tick(svc, at=10.0, monkeypatch=monkeypatch)  # tick 0: every domain
        # a domain the passes never saw, running: its virDomain is not known
        svc.domains[ALPHA].id = 1
        svc._stats.by_uuid.pop(ALPHA)
        svc._stats.entries = {k: e for k, e in svc._stats.entries.items() if e.uuid != ALPHA}
        svc.shown = lambda: [ALPHA]
        await feed.tick(svc, at=12.0, monkeypatch=monkeypatch)
        assert feed.conn.counts["getAllDomainStats"] == 2 and feed.conn.counts["domainListGetStats"] == 0
        await feed.tick(svc, at=14.0, monkeypatch=monkeypatch)  # now known: a close tick
        assert feed.conn.counts["domainListGetStats"] == 1
    finally:
        await svc.close()


async def test_a_ui_that_cannot_say_what_it_shows_never_stops_the_ticks(small_uri, monkeypatch):
    feed, svc = await _ticks_service(small_uri)
    try:
        def broken():
            raise RuntimeError("no screen")

        svc.shown = broken
        for i in range(3):
            await feed.tick(svc, at=10.0 + 2 * i, monkeypatch=monkeypatch)
        assert feed.conn.counts["getAllDomainStats"] == 3  # every tick read every running domain
        svc.shown = lambda: []  # nothing shown: a close tick calls nothing
        before = feed.conn.total
        await feed.tick(svc, at=20.0, monkeypatch=monkeypatch)
        assert feed.conn.counts["domainListGetStats"] == 0 and feed.conn.total - before <= 1
    finally:
        await svc.close()
