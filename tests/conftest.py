"""Shared fixtures: test-driver hosts (a fresh connection per test) and the app."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from vmtui.core.service import LibvirtService

DATA = Path(__file__).resolve().parent / "data"
SMALL_HOST = DATA / "host-small.xml"

ALPHA = "11111111-1111-4111-8111-000000000001"
BRAVO = "11111111-1111-4111-8111-000000000002"
CHARLIE = "11111111-1111-4111-8111-000000000003"
DELTA = "11111111-1111-4111-8111-000000000004"
ECHO = "11111111-1111-4111-8111-000000000005"


def host_uri(path: Path = SMALL_HOST) -> str:
    return "test://" + str(path.resolve())


@pytest.fixture
def small_uri() -> str:
    return host_uri(SMALL_HOST)


@pytest.fixture
async def service(small_uri):
    svc = LibvirtService(small_uri, stats_interval=3600, reconnect=False)
    await svc.connect()
    yield svc
    await svc.close()


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
