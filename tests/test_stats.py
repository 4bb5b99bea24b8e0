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
