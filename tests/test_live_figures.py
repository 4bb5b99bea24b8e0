"""Live figures and graphs (issue 13, part 3): the stats history the tick
keeps, the details screen's figures and sparklines, the list's CPU graph
column -- and no libvirt call more per tick."""

from __future__ import annotations

import math

import pytest
from textual.widgets import Sparkline, Static

from vmtui.core.config import Config, load_config
from vmtui.core.connection.history import CPU, MAX_SAMPLES, MEM, NET_TX, Ring, StatsHistory, capacity_for
from vmtui.core.connection.rows import DomainStats
from vmtui.core.connection.service import LibvirtService
from vmtui.ui.app import VmtuiApp
from vmtui.ui.domain_table import GRAPH_WIDTH
from vmtui.ui.live_figures import LiveFigures, graph_data
from vmtui.ui.screens import DetailsScreen

from .conftest import ALPHA, BRAVO, DELTA, wait_for
from .statsfeed import Feed, quiet_service

GIB_KIB = 1024 * 1024


# --- the history itself ----------------------------------------------------------


def stats(cpu=None, mem=None, rx=None) -> DomainStats:
    return DomainStats(cpu_percent=cpu, mem_used_kib=mem, net_rx_bps=rx)


def test_capacity_covers_five_minutes_within_bounds():
    assert capacity_for(2.0) == 150
    assert capacity_for(10.0) == 30
    assert capacity_for(0.5) == MAX_SAMPLES  # a short tick covers less time, never more memory
    assert capacity_for(3600.0) == 2


def test_ring_keeps_the_last_samples_oldest_first():
    h = StatsHistory(capacity=4)
    for i in range(6):
        h.advance()
        h.record("u", stats(cpu=float(i), mem=100 + i))
    ring = h.get("u")
    assert ring.series(CPU) == [2.0, 3.0, 4.0, 5.0]
    assert ring.series(MEM) == [102.0, 103.0, 104.0, 105.0]
    assert ring.series(CPU, 2) == [4.0, 5.0]
    assert ring.series(NET_TX) == [None] * 4  # unknown stays unknown


def test_ticks_without_a_change_repeat_the_last_sample():
    """Only changed domains are written; the others are filled in."""
    h = StatsHistory(capacity=5)
    h.advance()
    h.record("u", stats(cpu=10.0))
    h.advance()
    h.record("u", stats(cpu=20.0))
    for _ in range(2):
        h.advance()  # u unchanged: not written
    ring = h.get("u")
    assert ring.series(CPU) == [10.0, 20.0, 20.0, 20.0]  # read as its last sample
    h.advance()
    h.record("u", stats(cpu=50.0))
    assert ring.series(CPU) == [10.0, 20.0, 20.0, 20.0, 50.0]  # filled in on the write
    for _ in range(10):  # quiet for longer than the window
        h.advance()
    h.record("u", stats(cpu=1.0))
    assert ring.series(CPU) == [50.0, 50.0, 50.0, 50.0, 1.0]


def test_memory_of_a_ring_is_small_and_fixed():
    ring = Ring(StatsHistory().clock, MAX_SAMPLES)
    assert ring.data.itemsize * len(ring.data) == MAX_SAMPLES * 6 * 4  # 3.6 KB a running domain
    assert not hasattr(ring, "__dict__")


def test_graph_data_fills_the_window_from_zero():
    assert graph_data([5.0, None, 7.0], 5) == [0.0, 0.0, 0.0, 5.0, 0.0, 7.0]
    assert graph_data([1.0] * 3, 3) == [0.0, 1.0, 1.0, 1.0]


# --- the service: fed ticks --------------------------------------------------------------


@pytest.fixture
async def fed(small_uri):
    feed = Feed()
    svc = quiet_service(small_uri, feed)
    await svc.connect()
    await svc.wait_loaded()
    yield feed, svc
    await svc.close()


async def test_ticks_fill_the_figures_and_the_history(fed, monkeypatch):
    feed, svc = fed
    feed.set(ALPHA, cpu_ns=0, rd=0, wr=0, rx=0, tx=0, available_kib=GIB_KIB, unused_kib=GIB_KIB // 2)
    await feed.tick(svc, 10.0, monkeypatch)
    # 1 s of CPU over 2 s on alpha's 1 vCPU: 50 %; 4 KiB read, 8 KiB written, 1 KiB in, 3 KiB out over 2 s
    feed.set(ALPHA, cpu_ns=1_000_000_000, rd=4096, wr=8192, rx=1024, tx=3072,
             available_kib=GIB_KIB, unused_kib=GIB_KIB // 4)
    await feed.tick(svc, 12.0, monkeypatch)
    a = svc.domains[ALPHA]
    assert a.stats.cpu_percent == 50.0
    assert a.stats.disk_read_bps == 2048 and a.stats.disk_write_bps == 4096
    assert a.stats.net_rx_bps == 512 and a.stats.net_tx_bps == 1536
    assert a.stats.mem_used_kib == GIB_KIB * 3 // 4
    ring = svc.history.get(ALPHA)
    assert a.history is ring
    assert ring.series(CPU) == [None, 50.0]  # no rate on the first tick
    assert ring.series(MEM) == [GIB_KIB / 2, GIB_KIB * 3 / 4]
    # a running domain without figures (delta: the test driver gives none) costs nothing
    assert svc.history.get(DELTA) is None and svc.domains[DELTA].history is None
    assert len(svc.history) == 1


async def test_history_goes_when_the_domain_stops_or_goes(fed, monkeypatch):
    feed, svc = fed
    feed.set(ALPHA, cpu_ns=0)
    await feed.tick(svc, 10.0, monkeypatch)
    feed.set(ALPHA, cpu_ns=10**9)
    await feed.tick(svc, 12.0, monkeypatch)
    assert svc.history.get(ALPHA) is not None
    await svc.force_off(ALPHA)
    await wait_for(lambda: not svc.domains[ALPHA].is_active, what="alpha off")
    await feed.tick(svc, 14.0, monkeypatch)
    assert svc.history.get(ALPHA) is None and svc.domains[ALPHA].history is None
    # started again: a fresh history; undefined: gone
    await svc.start(ALPHA)
    await wait_for(lambda: svc.domains[ALPHA].is_active, what="alpha on")
    feed.set(ALPHA, cpu_ns=0)
    await feed.tick(svc, 16.0, monkeypatch)
    feed.set(ALPHA, cpu_ns=5 * 10**8)
    await feed.tick(svc, 18.0, monkeypatch)
    assert svc.history.get(ALPHA).series(CPU) == [25.0]  # a ring from the first figure on
    await svc.delete(ALPHA, [])
    await wait_for(lambda: ALPHA not in svc.domains, what="alpha gone")
    assert svc.history.get(ALPHA) is None


async def test_history_survives_a_refresh_of_the_row(fed, monkeypatch):
    """Events re-read a domain's row: its history and figures stay with it."""
    feed, svc = fed
    feed.set(ALPHA, cpu_ns=0)
    await feed.tick(svc, 10.0, monkeypatch)
    feed.set(ALPHA, cpu_ns=10**9)
    await feed.tick(svc, 12.0, monkeypatch)
    ring = svc.history.get(ALPHA)
    await svc.set_autostart(ALPHA, True)  # re-reads the row
    await wait_for(lambda: svc.domains[ALPHA].autostart, what="row re-read")
    assert svc.domains[ALPHA].history is ring and svc.domains[ALPHA].stats.cpu_percent == 50.0


async def test_the_tick_makes_no_more_calls_with_figures_and_graphs(small_uri, monkeypatch):
    """The history and an open details screen read what the tick computed:
    still one bulk stats call (+ one host call) per tick; between sweeps
    that call is of the domains shown (the rows on screen, the details)."""
    feed = Feed()
    app = VmtuiApp(quiet_service(small_uri, feed),
                   Config(cpu_graph_column=True))
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(lambda: app.ready, what="list")
        svc = app.service
        await svc.wait_loaded()
        app.table.select(ALPHA)
        await pilot.press("enter")
        await wait_for(lambda: isinstance(app.screen, DetailsScreen) and app.screen.is_mounted, what="details")
        await wait_for(lambda: str(app.screen.query_one("#details").content) != "Loading…", what="loaded")
        await pilot.pause()
        conn = feed.conn
        for i in range(6):
            feed.set(ALPHA, cpu_ns=i * 10**8, rd=i * 4096, rx=i * 100, available_kib=GIB_KIB, unused_kib=1000 * i)
            before = conn.total
            await feed.tick(svc, 10.0 + 2 * i, monkeypatch)
            await pilot.pause()
            assert conn.total - before <= 2, dict(conn.counts)
        # one bulk call a tick: of every running domain, or of those shown
        assert conn.counts["getAllDomainStats"] + conn.counts["domainListGetStats"] >= 6
        assert conn.counts["domainListGetStats"] >= 1
        live = await live_figures(app)
        await wait_for(lambda: "5.0%" in str(live.query_one("#fig-cpu", Static).content), what="figures shown")


# --- the details screen ------------------------------------------------------------------


async def live_figures(app) -> LiveFigures:
    """The details screen's live section, once mounted with its rows."""
    def mounted():
        found = list(app.screen.query(LiveFigures))
        return found[0] if found and found[0].is_mounted and found[0].query("#live-net") else None
    return await wait_for(mounted, what="live figures mounted")


def _text(widget) -> str:
    return str(widget.content)


async def test_details_show_figures_and_sparklines_of_the_vm(small_uri, monkeypatch):
    feed = Feed()
    app = VmtuiApp(quiet_service(small_uri, feed), Config())
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(lambda: app.ready, what="list")
        svc = app.service
        app.table.select(ALPHA)
        await pilot.press("enter")
        await wait_for(lambda: isinstance(app.screen, DetailsScreen) and app.screen.is_mounted, what="details")
        screen = app.screen
        live = await live_figures(app)
        await pilot.pause()
        assert not live.query_one("#live-cpu").display  # nothing yet from the driver
        assert "Waiting for the first figures" in _text(live.query_one("#live-note"))
        cpu = [0, 2 * 10**8, 6 * 10**8, 16 * 10**8]  # 10 %, 20 %, 50 % of 1 vCPU over 2 s
        for i, ns in enumerate(cpu):
            feed.set(ALPHA, cpu_ns=ns, rd=i * 2048, wr=0, rx=i * 1024, tx=i * 512,
                     available_kib=2 * GIB_KIB, unused_kib=GIB_KIB + i * 1024)
            feed.set(DELTA, cpu_ns=i * 4 * 10**9)  # another VM's figures: not shown here
            await feed.tick(svc, 10.0 + 2 * i, monkeypatch)
        await wait_for(lambda: _text(live.query_one("#fig-cpu")) == "50%", what="cpu figure")
        assert live.query_one("#live-cpu").display and not live.query_one("#live-note").display
        assert _text(live.query_one("#fig-mem")) == "1021.0 MiB in use of 1.0 GiB"
        assert _text(live.query_one("#fig-disk")) == "read 1.0 KiB/s, write 0 B/s"
        assert _text(live.query_one("#fig-net")) == "rx 512 B/s, tx 256 B/s"
        assert _text(live.query_one("#peak-cpu")) == "max 50%"
        spark = live.query_one("#spark-cpu", Sparkline).data
        cap = svc.history.capacity
        assert len(spark) == cap + 1 and spark[-3:] == [10.0, 20.0, 50.0] and set(spark[:-3]) == {0.0}
        net = live.query_one("#spark-net", Sparkline).data
        assert net[-3:] == [768.0, 768.0, 768.0]
        # delta's figures changed meanwhile, alpha's did not: the graph still moves on
        ring = svc.history.get(ALPHA)
        feed.set(ALPHA, cpu_ns=26 * 10**8, rd=4 * 2048, wr=0, rx=4 * 1024, tx=4 * 512,
                 available_kib=2 * GIB_KIB, unused_kib=GIB_KIB + 3 * 1024)  # the same rates
        feed.set(DELTA, cpu_ns=99 * 10**9)
        await feed.tick(svc, 18.0, monkeypatch)
        assert ring.last < svc.history.tick  # not written this tick
        live._tick()
        assert live.query_one("#spark-cpu", Sparkline).data[-4:] == [10.0, 20.0, 50.0, 50.0]
        # it stops: the figures say so
        await svc.force_off(ALPHA)
        await wait_for(lambda: not live.query_one("#live-cpu").display, what="stopped")
        assert "Shut off: the figures show while it runs" in _text(live.query_one("#live-note"))


async def test_details_of_a_shut_off_vm_say_so(small_uri):
    app = VmtuiApp(LibvirtService(small_uri, stats_interval=3600, reconnect=False), Config())
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(lambda: app.ready, what="list")
        app.table.select(BRAVO)
        await pilot.press("enter")
        await wait_for(lambda: isinstance(app.screen, DetailsScreen) and app.screen.is_mounted, what="details")
        await pilot.pause()
        live = await live_figures(app)
        assert "Shut off: the figures show while it runs" in _text(live.query_one("#live-note"))
        assert not any(live.query_one(f"#live-{k}").display for k in ("cpu", "mem", "disk", "net"))


# --- the list's CPU graph column -------------------------------------------------------------


async def test_graph_column_is_off_by_default_and_g_toggles_it(small_uri, monkeypatch):
    feed = Feed()
    app = VmtuiApp(quiet_service(small_uri, feed), Config())
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(lambda: app.ready, what="list")
        t = app.table
        assert "graph" not in t.column_keys
        ns = 0
        for i, pct in enumerate((0, 25, 50, 100)):  # % of alpha's vCPU over each 2 s
            ns += pct * 2 * 10**7
            feed.set(ALPHA, cpu_ns=ns)
            await feed.tick(app.service, 10.0 + 2 * i, monkeypatch)
        await pilot.pause()
        await pilot.press("G")
        await pilot.pause()
        assert t.column_keys.index("graph") == t.column_keys.index("net") + 1
        assert str(t.get_cell(ALPHA, "graph")) == "       ▃▅█"  # 25, 50, 100 % of the 0-100 scale
        assert str(t.get_cell(DELTA, "graph")) == ""  # no figures
        assert t.selected_uuid is not None
        # the next tick updates the row in place
        feed.set(ALPHA, cpu_ns=175 * 2 * 10**7 + 0)
        await feed.tick(app.service, 18.0, monkeypatch)
        await wait_for(lambda: str(t.get_cell(ALPHA, "graph")).endswith("█▁"), what="cell updated")
        # its figures stay the same from now on: no row change, yet the bars move on, tick by tick
        for i in range(GRAPH_WIDTH + 1):
            feed.set(ALPHA, cpu_ns=175 * 2 * 10**7)
            feed.set(DELTA, cpu_ns=i * 10**9)  # another VM keeps the ticks busy
            await feed.tick(app.service, 20.0 + 2 * i, monkeypatch)
            t.refresh_graphs()  # what the app runs at each stats interval
            if i == 0:
                assert str(t.get_cell(ALPHA, "graph")) == "     ▃▅█▁▁"  # moved on: one more 0 %
        assert str(t.get_cell(ALPHA, "graph")) == "▁" * GRAPH_WIDTH
        assert ALPHA not in t._settling  # settled: no more work for it
        await pilot.press("G")
        await pilot.pause()
        assert "graph" not in t.column_keys and t.row_count == 5


async def test_config_shows_the_graph_column_from_the_start(small_uri, tmp_path):
    p = tmp_path / "config.yaml"
    p.write_text("cpu_graph_column: true\n")
    cfg = load_config(p)
    assert cfg.cpu_graph_column and cfg.notices == []
    app = VmtuiApp(LibvirtService(small_uri, stats_interval=3600, reconnect=False), cfg)
    async with app.run_test(size=(120, 40)):
        await wait_for(lambda: app.ready and app.table.row_count == 5, what="list")
        assert "graph" in app.table.column_keys and "CPU graph" in [str(c.label) for c in app.table.columns.values()]


def test_config_graph_column_must_be_a_boolean(tmp_path):
    p = tmp_path / "config.yaml"
    p.write_text("theme: nord\ncpu_graph_column: maybe\n")
    cfg = load_config(p)
    assert not cfg.cpu_graph_column
    assert f"{p}:2: cpu_graph_column: must be true or false" in cfg.notices[0]


def test_nan_never_reaches_a_graph():
    h = StatsHistory(capacity=3)
    h.advance()
    h.record("u", stats(cpu=None))
    assert h.get("u").series(CPU) == [None]
    assert not any(math.isnan(v) for v in graph_data(h.get("u").series(CPU), 3))


def test_config_graph_column_round_trip(tmp_path):
    from vmtui.core.config import save_config
    p = save_config(Config(cpu_graph_column=True), tmp_path / "config.yaml")
    assert load_config(p).cpu_graph_column and "cpu_graph_column: true" in p.read_text()


async def test_the_service_hears_which_domains_are_shown(small_uri):
    """The ticks between sweeps read what the user sees: the list's rows on
    screen, and the VM of an open details screen."""
    app = VmtuiApp(quiet_service(small_uri))
    async with app.run_test(size=(80, 6)) as pilot:
        await wait_for(lambda: app.ready, what="list")
        svc = app.service
        await svc.wait_loaded()
        await pilot.pause()
        table = app.table
        on_screen = [table.domains[k].uuid for k in table.keys_on_screen()]
        assert 0 < len(on_screen) < table.row_count  # a short terminal: some rows are off screen
        assert svc.shown() == on_screen
        off = next(u for u in (table.domains[k].uuid for k in table.visible_keys()) if u not in on_screen)
        app.push_screen(DetailsScreen(svc, off, svc.domains[off].name))
        await wait_for(lambda: isinstance(app.screen, DetailsScreen), what="details")
        assert svc.shown()[0] == off and set(svc.shown()[1:]) == set(on_screen)
    assert svc.shown is None  # the app let go of the service
