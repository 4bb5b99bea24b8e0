"""CI cannot pass by skipping: a missing prerequisite fails a test in CI
(CI=1, which .ci/run exports) and skips it elsewhere; the run tells how many
real-hypervisor tests ran."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from tests import conftest, prereq

ROOT = Path(__file__).resolve().parent.parent


def test_missing_fails_in_ci_and_skips_elsewhere(monkeypatch):
    monkeypatch.setenv("CI", "1")
    with pytest.raises(pytest.fail.Exception) as info:
        prereq.missing("qemu-img not installed")
    assert "qemu-img not installed" in str(info.value) and "CI" in str(info.value)
    monkeypatch.setenv("CI", "true")  # what CI runners set
    with pytest.raises(pytest.fail.Exception):
        prereq.missing("x")
    for value in ("", "0", "false"):
        monkeypatch.setenv("CI", value)
        with pytest.raises(pytest.skip.Exception) as info:
            prereq.missing("qemu-img not installed")
        assert str(info.value) == "qemu-img not installed"
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception):
        prereq.missing("x")


class FakeItem:
    def __init__(self, *marks):
        self.marks = marks

    def iter_markers(self, name):
        return (m for m in self.marks if m.name == name)


def test_needs_mark(monkeypatch):
    monkeypatch.setenv("CI", "1")
    conftest.pytest_runtest_setup(FakeItem(prereq.needs(True, "cpio").mark))  # present: nothing happens
    with pytest.raises(pytest.fail.Exception) as info:
        conftest.pytest_runtest_setup(FakeItem(prereq.needs(True, "a").mark, prereq.needs(False, "no cpio").mark))
    assert "no cpio" in str(info.value)
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception):
        conftest.pytest_runtest_setup(FakeItem(prereq.needs(False, "no cpio").mark))


def test_ci_run_sets_ci():
    text = (ROOT / ".ci" / "run").read_text()
    assert "export CI=1" in text
    assert text.index("export CI=1") < text.index("exec make test")


def test_real_tests_are_counted(monkeypatch):
    counts = {"passed": 0, "failed": 0, "skipped": 0, "errors": 0}
    monkeypatch.setattr(conftest, "_REAL", counts)

    def report(when, outcome, real=True):
        return SimpleNamespace(when=when, keywords={"real": 1} if real else {}, passed=outcome == "passed",
                               failed=outcome == "failed", skipped=outcome == "skipped")

    for r in (report("setup", "passed"), report("call", "passed"), report("teardown", "passed"),
              report("setup", "passed"), report("call", "failed"),
              report("setup", "skipped"),
              report("setup", "failed"),
              report("call", "passed", real=False)):
        conftest.pytest_runtest_logreport(r)
    assert counts == {"passed": 1, "failed": 1, "skipped": 1, "errors": 1}

    lines = []
    reporter = SimpleNamespace(write_sep=lambda *a, **k: None, write_line=lines.append)
    monkeypatch.delenv("CI", raising=False)
    conftest.pytest_terminal_summary(reporter)
    assert lines == ["Real-hypervisor tests (qemu:///system) that ran: 2 (1 passed, 1 failed); "
                     "1 skipped, 1 errors in setup/teardown"]

    # none seen: silent outside CI, said in CI
    counts.update(passed=0, failed=0, skipped=0, errors=0)
    lines.clear()
    conftest.pytest_terminal_summary(reporter)
    assert lines == []
    monkeypatch.setenv("CI", "1")
    conftest.pytest_terminal_summary(reporter)
    assert lines == ["Real-hypervisor tests (qemu:///system) that ran: 0 (0 passed, 0 failed); "
                     "0 skipped, 0 errors in setup/teardown"]
