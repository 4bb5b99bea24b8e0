"""Snapshot tests of the live figures (issue 13, part 3): the details
screen at 80x24 and 120x40, the list with its CPU graph column.

Update on purpose with: pytest tests/test_snapshots_live.py --snapshot-update
"""

from __future__ import annotations

from vmtui.core.config import Config
from vmtui.ui.app import VmtuiApp
from vmtui.ui.screens import DetailsScreen

from .conftest import ALPHA, DELTA, SMALL_HOST, host_uri, wait_for
from .statsfeed import Feed, quiet_service

GIB_KIB = 1024 * 1024
# alpha over eight ticks: CPU % of its vCPU, disk and network bytes per tick
CPU = (0, 5, 12, 30, 55, 80, 42, 20)


def _fed_app(feed: Feed, **config) -> VmtuiApp:
    return VmtuiApp(quiet_service(host_uri(SMALL_HOST), feed), Config(**config))


async def _fed_ticks(pilot, feed: Feed, monkeypatch) -> None:
    app = pilot.app
    await wait_for(lambda: app.ready and app.table.row_count == 5, what="list")
    await app.service.wait_loaded()
    await wait_for(lambda: app.table.domains[DELTA].title == "Delta database", what="titles")
    ns = 0
    for i, pct in enumerate(CPU):
        ns += pct * 2 * 10**7  # pct % of 1 vCPU over 2 s
        feed.set(ALPHA, cpu_ns=ns, rd=i * i * 40960, wr=i * 8192, rx=i * 3000, tx=i * i * 500,
                 available_kib=GIB_KIB, unused_kib=GIB_KIB // 2 - i * 8192)
        await feed.tick(app.service, 10.0 + 2 * i, monkeypatch)
    await pilot.pause()


def _details(feed: Feed, monkeypatch):
    async def run_before(pilot):
        await _fed_ticks(pilot, feed, monkeypatch)
        app = pilot.app
        app.service.display_uri = "test:///data/host-small.xml"  # not where this checkout is
        app.table.select(ALPHA)
        await pilot.press("enter")
        await wait_for(lambda: isinstance(app.screen, DetailsScreen) and app.screen.is_mounted, what="details")
        await wait_for(lambda: str(app.screen.query_one("#details").content) != "Loading…", what="loaded")
        await pilot.pause()

    return run_before


def test_details_live_figures_80x24(snap_compare, monkeypatch):
    feed = Feed()
    assert snap_compare(_fed_app(feed), terminal_size=(80, 24), run_before=_details(feed, monkeypatch))


def test_details_live_figures_120x40(snap_compare, monkeypatch):
    feed = Feed()
    assert snap_compare(_fed_app(feed), terminal_size=(120, 40), run_before=_details(feed, monkeypatch))


def _list(feed: Feed, monkeypatch):
    async def run_before(pilot):
        await _fed_ticks(pilot, feed, monkeypatch)
        pilot.app.table.select(ALPHA)
        await pilot.pause()

    return run_before


def test_list_with_cpu_graph_column_80x24(snap_compare, monkeypatch):
    feed = Feed()
    assert snap_compare(_fed_app(feed, cpu_graph_column=True), terminal_size=(80, 24),
                        run_before=_list(feed, monkeypatch))


def test_list_with_cpu_graph_column_120x40(snap_compare, monkeypatch):
    feed = Feed()
    assert snap_compare(_fed_app(feed, cpu_graph_column=True), terminal_size=(120, 40),
                        run_before=_list(feed, monkeypatch))
