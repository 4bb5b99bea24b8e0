"""Shared fixtures: test-driver hosts (a fresh connection per test) and the app."""

from __future__ import annotations

import asyncio
import contextlib
import os
from pathlib import Path

import pytest

# Before vmtui is imported: an unexpected error in a worker ends the app
# (and fails the test), where a user would get a notification (ui/app.py).
os.environ["VMTUI_STRICT"] = "1"

from tests import prereq  # noqa: E402
from vmtui.core.connection.service import LibvirtService  # noqa: E402

DATA = Path(__file__).resolve().parent / "data"
SMALL_HOST = DATA / "host-small.xml"

ALPHA = "11111111-1111-4111-8111-000000000001"
BRAVO = "11111111-1111-4111-8111-000000000002"
CHARLIE = "11111111-1111-4111-8111-000000000003"
DELTA = "11111111-1111-4111-8111-000000000004"
ECHO = "11111111-1111-4111-8111-000000000005"


# --- prerequisites and the count of real-hypervisor tests ---------------------

def pytest_runtest_setup(item):
    """``@needs(present, reason)`` (tests/prereq.py): fail in CI, skip elsewhere."""
    for mark in item.iter_markers("needs"):
        if not mark.kwargs.get("present", True):
            prereq.missing(mark.kwargs.get("reason", "a prerequisite is missing"))


_REAL = {"passed": 0, "failed": 0, "skipped": 0, "errors": 0}


def pytest_runtest_logreport(report):
    if "real" not in report.keywords:
        return
    if report.when == "call":
        _REAL["passed" if report.passed else "failed" if report.failed else "skipped"] += 1
    elif report.when == "setup" and not report.passed:
        _REAL["skipped" if report.skipped else "errors"] += 1
    elif report.when == "teardown" and report.failed:
        _REAL["errors"] += 1


def pytest_terminal_summary(terminalreporter):
    """How many tests against the real libvirtd + QEMU ran: a run that
    skipped them all says so."""
    if not (prereq.in_ci() or any(_REAL.values())):
        return
    ran = _REAL["passed"] + _REAL["failed"]
    terminalreporter.write_sep("-", "real hypervisor")
    terminalreporter.write_line(
        f"Real-hypervisor tests (qemu:///system) that ran: {ran} ({_REAL['passed']} passed, "
        f"{_REAL['failed']} failed); {_REAL['skipped']} skipped, {_REAL['errors']} errors in setup/teardown")


def host_uri(path: Path = SMALL_HOST) -> str:
    return "test://" + str(path.resolve())


@pytest.fixture
def small_uri() -> str:
    return host_uri(SMALL_HOST)


@contextlib.asynccontextmanager
async def connected(uri: str):
    """A connected service (no stats ticks, no reconnect), closed after."""
    svc = LibvirtService(uri, stats_interval=3600, reconnect=False)
    await svc.connect()
    try:
        yield svc
    finally:
        await svc.close()


@pytest.fixture
async def service(small_uri):
    async with connected(small_uri) as svc:
        yield svc


async def press_button(pilot, selector: str) -> None:
    """Press a button of the active screen the way Enter/click does, without
    aiming the mouse at it: a notification toast may cover the button's cell
    and swallow a simulated click."""
    pilot.app.screen.query_one(selector).press()
    await pilot.pause()


async def wait_for(predicate, timeout: float = 5.0, interval: float = 0.02, what: str = "condition"):
    """Poll ``predicate`` on the loop (events arrive meanwhile) until it is true."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(interval)
