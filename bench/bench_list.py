#!/usr/bin/env python3
"""How fast is vmtui's domain list on big hosts, next to the floor?  Prints
figures with their targets (issue 14); never asserts.

Usage::

    .venv/bin/python bench/bench_list.py                 # 100, 1000, 5000, 10000 domains
    .venv/bin/python bench/bench_list.py --quick         # under a minute: 100 and 1000, one launch each
    .venv/bin/python bench/bench_list.py --sizes 5000 --launch-runs 5 --json out.json
    .venv/bin/python bench/bench_list.py --via-daemon    # the hosts behind a private libvirtd (root)

The floor is a bare Textual app that opens the same host and lists its
domains (``bench/floor_app.py``); every launch figure is measured for vmtui
and for the floor in the same run, their runs interleaved, and shown as a
ratio. For each size a test-driver host is generated (``bench/gen_host.py``)
into a temporary directory; every measurement runs in a fresh child process.

(a) ``bare``     libvirt.open + listAllDomains in a process of its own.
(b) ``launch``   vmtui (``vmtui.cli.run_ui``: the connection opens while
                 Textual is imported) and the floor, each in a pseudo-terminal
                 of 120x40 with Textual's real driver: seconds from spawning
                 the interpreter to the first frame written with the rows
                 ("first row"); for vmtui also where the time went, and when
                 the titles were in. Medians of ``--launch-runs``.
(c) ``ticks``    libvirt calls per stats tick and for the load, by method
                 (virDomain getters that read the object itself -- UUID,
                 UUIDString, name, ID -- are listed, not counted).
(d) ``headless`` the app headless at 120x40 with the default 2 s stats tick,
                 list and titles loaded: process CPU (all threads) and main
                 thread CPU over ``--idle-seconds``, RSS and peak RSS; the
                 floor app's RSS on the same host next to it (the test driver
                 keeps the whole host in the process: its share is the
                 floor's too).
(e)              in the same app, stats ticks stopped: pagedown from the first
                 row to the last and down 200 times, each with the key held
                 (the next key once the cursor moved and a frame was composed),
                 ms and CPU ms a key; a whole frame with the table's line
                 cache dropped; DomainTable.upsert of 100 changed rows (sorted
                 by name and by CPU) and a rebuild (a filter change).

``--via-daemon`` serves each host from a private libvirtd (user vmtui-b1,
tests/sessiond.py; needs root): what a client of a real daemon costs, the
hypervisor's own work out of the process. Timing is wall clock on whatever
else the machine does: the load average is printed with each size.
"""

from __future__ import annotations

import argparse
import asyncio
import compileall
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

TARGETS = {
    "launch_ratio": 1.15,  # vmtui / floor, launch -> first row
    "idle_cpu_percent": {1000: 0.5, 5000: 1.0},
    "rss_mib": {1000: 80, 5000: 150},
    "key_ms": {5000: 40.0},  # pagedown / down with the key held, 120x40
    "calls_per_tick": 2,
}
QUICK = {"sizes": "100,1000", "launch_runs": 1, "idle_seconds": 3.0}


def _gen_host():
    spec = importlib.util.spec_from_file_location("vmtui_bench_gen_host", HERE / "gen_host.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _load() -> str:
    """The 1-minute load average: other work on the machine skews every figure."""
    return f"{os.getloadavg()[0]:.2f}"


def _proc_status() -> dict[str, float]:
    """VmRSS / VmHWM of this process in MiB."""
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(rest.split()[0]) / 1024
    return out


# --- children ------------------------------------------------------------------


def child_bare(n: int, uri: str, repeat: int = 3) -> dict:
    import libvirt

    runs = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        conn = libvirt.open(uri)
        t1 = time.perf_counter()
        doms = conn.listAllDomains(0)
        t2 = time.perf_counter()
        assert len(doms) == n, (len(doms), n)
        conn.close()
        runs.append((t1 - t0, t2 - t1))
    return {
        "open_first": runs[0][0], "list_first": runs[0][1],
        "open_best": min(r[0] for r in runs), "list_best": min(r[1] for r in runs),
        "open_list_first": sum(runs[0]), "open_list_best": min(sum(r) for r in runs),
    }


def child_launch(n: int, uri: str, spawned: float, result_path: str, profile: str | None) -> None:
    """Runs inside the pseudo-terminal: vmtui as ``vmtui`` starts it
    (cli.run_ui), timed through its ``instrument`` hook."""
    marks: dict[str, float] = {"spawned": spawned, "main": time.monotonic()}
    from vmtui import cli
    from vmtui.core.config import Config
    from vmtui.core.connection.service import LibvirtService

    early = LibvirtService.open_early

    def timed_open_early(self) -> None:
        marks["open_start"] = time.monotonic()
        opener = self._open

        def timed_open():
            try:
                return opener()
            finally:
                marks.setdefault("open_done", time.monotonic())

        self._open = timed_open
        early(self)

    LibvirtService.open_early = timed_open_early

    def instrument(svc, app) -> None:
        from vmtui.core.connection.service import DomainsReset
        from vmtui.ui import domain_table

        marks["imported"] = time.monotonic()
        connect = svc.connect

        async def timed_connect() -> None:
            marks.setdefault("connect_called", time.monotonic())
            await connect()

        svc.connect = timed_connect

        def timed(fn, start: str, done: str):
            def wrapper(*args):
                marks.setdefault(start, time.monotonic())
                try:
                    return fn(*args)
                finally:
                    marks.setdefault(done, time.monotonic())
            return wrapper

        svc._fetch_domains = timed(svc._fetch_domains, "domains_start", "domains_done")
        svc.subscribe(lambda p: isinstance(p, DomainsReset) and marks.setdefault("reset_emitted", time.monotonic()))
        reset = domain_table.DomainTable.reset

        def timed_reset(self, domains):
            marks.setdefault("reset_start", time.monotonic())
            reset(self, domains)
            if self.row_count == n:
                marks.setdefault("table_filled", time.monotonic())

        domain_table.DomainTable.reset = timed_reset
        display = app._display

        def timed_display(screen, renderable):
            display(screen, renderable)
            if renderable is None:
                return
            now = time.monotonic()
            marks.setdefault("first_frame", now)
            if "table_filled" in marks and "on_screen" not in marks:
                marks["on_screen"] = now
                app.call_later(lambda: app.run_worker(watch()))

        async def watch() -> None:
            task = svc._titles_task
            if task is not None:
                await asyncio.wait([task])
            marks["titles_done"] = time.monotonic()
            marks["rows"] = app.table.row_count
            await asyncio.sleep(0.05)
            app.exit()

        app._display = timed_display

    if profile:
        import cProfile

        prof = cProfile.Profile()
        prof.enable()
        cli.run_ui(uri, Config(), instrument=instrument)
        prof.disable()
        prof.dump_stats(profile)
    else:
        cli.run_ui(uri, Config(), instrument=instrument)
    Path(result_path).write_text(json.dumps(marks))


def child_floor_launch(n: int, uri: str, spawned: float, result_path: str, profile: str | None) -> None:
    """Runs inside the pseudo-terminal: the floor app (bench/floor_app.py)."""
    marks: dict[str, float] = {"spawned": spawned, "main": time.monotonic()}
    sys.path.insert(0, str(HERE))
    import floor_app

    marks["imported"] = time.monotonic()
    app = floor_app.Floor(uri)
    show = app.show

    def timed_show(rows):
        show(rows)
        marks["table_filled"] = time.monotonic()
        marks["rows"] = len(rows)

    app.show = timed_show
    display = app._display

    def timed_display(screen, renderable):
        display(screen, renderable)
        if renderable is None:
            return
        now = time.monotonic()
        marks.setdefault("first_frame", now)
        if "table_filled" in marks and "on_screen" not in marks:
            marks["on_screen"] = now
            app.set_timer(0.05, app.exit)

    app._display = timed_display
    app.run()
    Path(result_path).write_text(json.dumps(marks))


# virDomain getters that read the object itself: no round trip to libvirtd.
LOCAL_DOMAIN_CALLS = {"UUIDString", "UUID", "name", "ID", "connect"}


def _count_domain_calls(counts) -> None:
    """Count virDomain method calls too (bench-only instrumentation): the
    counting connection only sees calls on the connection."""
    import libvirt

    for name, fn in list(vars(libvirt.virDomain).items()):
        if name.startswith("_") or not callable(fn):
            continue

        def counted(self, *args, _fn=fn, _name=f"virDomain.{name}", **kwargs):
            counts[_name] += 1
            return _fn(self, *args, **kwargs)

        setattr(libvirt.virDomain, name, counted)


async def _tick_counts(n: int, uri: str, ticks: int = 4) -> dict:
    from collections import Counter

    from vmtui.core.connection.counting import counting_opener
    from vmtui.core.connection.service import LibvirtService

    dom_counts: Counter = Counter()
    _count_domain_calls(dom_counts)
    holder: list = []
    svc = LibvirtService(uri, stats_interval=3600, reconnect=False, open_func=counting_opener(holder))
    t0 = time.perf_counter()
    await svc.connect()
    t1 = time.perf_counter()
    await svc.wait_loaded()
    t2 = time.perf_counter()
    conn = holder[0]
    load = dict(conn.counts + dom_counts)
    per_tick, tick_times = [], []
    for _ in range(ticks):
        before = conn.counts + dom_counts
        s = time.perf_counter()
        await svc.stats_tick()
        tick_times.append(time.perf_counter() - s)
        per_tick.append(dict((conn.counts + dom_counts) - before))
    await svc.close()
    assert len(svc.domains) == n, (len(svc.domains), n)
    return {"load_calls": load, "per_tick": per_tick, "connect_s": t1 - t0, "titles_s": t2 - t1,
            "tick_s": tick_times, "bare_call_cpu_ms": _bare_stats_call(uri)}


def _bare_stats_call(uri: str, runs: int = 7) -> float:
    """CPU ms of the tick's libvirt call alone, its records dropped: the
    floor of what any client reading these stats every tick pays (median)."""
    import libvirt

    from vmtui.core.connection.service import STATS_FLAGS

    conn = libvirt.open(uri)
    groups = STATS_FLAGS & ~libvirt.VIR_DOMAIN_STATS_VCPU
    cpus = []
    for _ in range(runs):
        start = time.process_time()
        records = conn.getAllDomainStats(groups, libvirt.VIR_CONNECT_GET_ALL_DOMAINS_STATS_ACTIVE)
        del records
        cpus.append(time.process_time() - start)
    conn.close()
    return 1000 * statistics.median(cpus)


def child_ticks(n: int, uri: str) -> dict:
    return asyncio.run(_tick_counts(n, uri))


def child_floor_rss(n: int, uri: str) -> dict:
    """The floor app headless, its rows shown: its RSS."""
    sys.path.insert(0, str(HERE))
    import floor_app

    app = floor_app.Floor(uri)
    out: dict = {}

    async def pilot_run(pilot) -> None:
        from textual.widgets import DataTable

        deadline = time.monotonic() + 300
        while app.query_one(DataTable).row_count < n and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        await pilot.pause()
        await asyncio.sleep(2.0)
        out.update(_proc_status())
        app.exit()

    asyncio.run(app.run_async(headless=True, size=(120, 40), auto_pilot=pilot_run))
    return out


def child_headless(n: int, uri: str, idle_seconds: float, profile: str | None) -> dict:
    """The app headless at 120x40: idle CPU and RSS, then keys and updates."""
    from textual import events

    from vmtui.core.config import Config
    from vmtui.core.connection.counting import counting_opener
    from vmtui.core.connection.rows import DomainStats
    from vmtui.core.connection.service import LibvirtService
    from vmtui.ui.app import VmtuiApp

    holder: list = []
    svc = LibvirtService(uri, stats_interval=Config().stats_interval, reconnect=False,
                         open_func=counting_opener(holder))
    app = VmtuiApp(svc, Config())
    out: dict = {}

    async def until(pred, timeout=300.0):
        deadline = time.monotonic() + timeout
        while not pred():
            if time.monotonic() > deadline:
                raise TimeoutError("benchmark condition not reached")
            await asyncio.sleep(0.01)

    async def pilot_run(pilot) -> None:
        try:
            await until(lambda: app.ready and app.table.row_count == n)
            await svc.wait_loaded()
            await pilot.pause()
            await asyncio.sleep(3.0)  # let startup work settle (the rows measured, the first ticks)

            # (d) idle: the app sits there while stats tick every 2 s.
            conn = holder[0]
            # a tick is one bulk call: of every running domain (a sweep) or of those on screen
            calls0 = conn.total
            ticks0 = conn.counts["getAllDomainStats"] + conn.counts["domainListGetStats"]
            sweeps0 = conn.counts["getAllDomainStats"]
            cpu0, wall0, main0 = time.process_time(), time.monotonic(), time.thread_time()
            await asyncio.sleep(idle_seconds)
            cpu1, wall1, main1 = time.process_time(), time.monotonic(), time.thread_time()
            out["idle_cpu_percent"] = 100.0 * (cpu1 - cpu0) / (wall1 - wall0)
            out["idle_main_percent"] = 100.0 * (main1 - main0) / (wall1 - wall0)
            out["idle_seconds"] = wall1 - wall0
            out["idle_calls"] = conn.total - calls0
            out["idle_ticks"] = conn.counts["getAllDomainStats"] + conn.counts["domainListGetStats"] - ticks0
            out["idle_sweeps"] = conn.counts["getAllDomainStats"] - sweeps0
            out.update(_proc_status())

            # (e) Stats ticks are stopped from here on (the loop's current
            # sleep runs out first): they would land in the middle of these.
            svc.stats_interval = 3600
            await asyncio.sleep(2.5)
            table = app.table
            screen = app.screen
            table.focus()
            table.move_cursor(row=0)
            await pilot.pause()
            frame = asyncio.Event()
            display = app._display

            def timed_display(screen, renderable):
                display(screen, renderable)
                if renderable is not None:
                    frame.set()

            # A key held: each key is posted like the terminal driver posts it,
            # the next one as soon as the cursor moved and a frame was composed
            # after that (headless: composed, not written anywhere).
            app._display = timed_display

            async def held(key: str, most: int) -> tuple[int, float, float]:
                await asyncio.sleep(0.2)
                start, cpu = time.perf_counter(), time.process_time()
                count = 0
                while table.cursor_row < table.row_count - 1 and count < most:
                    before = table.cursor_row
                    app.post_message(events.Key(key, None))
                    while table.cursor_row == before:
                        await asyncio.sleep(0.0005)
                    frame.clear()
                    await asyncio.wait_for(frame.wait(), 5)
                    count += 1
                return count, time.perf_counter() - start, time.process_time() - cpu

            count, wall, cpu = await held("pagedown", 10_000)
            out["pagedown_presses"], out["pagedown_total_s"] = count, wall
            out["pagedown_ms_per_key"] = 1000 * wall / max(1, count)
            out["pagedown_cpu_ms_per_key"] = 1000 * cpu / max(1, count)
            table.move_cursor(row=0)
            await pilot.pause()
            count, wall, cpu = await held("down", 200)
            out["down_presses"] = count
            out["down_ms_per_key"] = 1000 * wall / max(1, count)
            out["down_cpu_ms_per_key"] = 1000 * cpu / max(1, count)
            app._display = display

            # A whole frame from scratch for the table (its line cache dropped),
            # at 20 places down the list.
            frames = []
            step = max(1, table.row_count // 20)
            for row in range(0, table.row_count, step):
                table.move_cursor(row=row)
                await pilot.pause()
                table.clear_caches()
                s = time.perf_counter()
                screen._compositor.render_update(full=True)
                frames.append(time.perf_counter() - s)
            out["frame_cold_mean_ms"] = 1000 * statistics.mean(frames) if frames else None
            out["frame_cold_max_ms"] = 1000 * max(frames) if frames else None

            # upsert of 100 changed rows (stats changed), sorted by name and by
            # CPU; then rebuilds (what a filter change does). Medians of 5.
            reps = 5
            for sort_key in ("name", "cpu"):
                table.sort_by(sort_key)
                await pilot.pause()
                calls, cpus = [], []
                for rep in range(reps):
                    changed = []
                    for i, d in enumerate(list(table.domains.values())[:: max(1, n // 100)][:100]):
                        stats = DomainStats(cpu_percent=float((i * 7 + rep * 13) % 100), mem_used_kib=None,
                                            disk_read_bps=float(i * 1000 + rep), disk_write_bps=None,
                                            net_rx_bps=float(i * 10 + rep), net_tx_bps=1.0)
                        changed.append(d.with_stats(stats))
                    cpu_s = time.process_time()
                    s = time.perf_counter()
                    table.upsert(changed)
                    calls.append(time.perf_counter() - s)
                    await pilot.pause()
                    cpus.append(time.process_time() - cpu_s)
                out[f"upsert100_{sort_key}_call_ms"] = 1000 * statistics.median(calls)
                out[f"upsert100_{sort_key}_cpu_ms"] = 1000 * statistics.median(cpus)

            calls, cpus = [], []
            for rep in range(reps):
                cpu_s = time.process_time()
                s = time.perf_counter()
                table.rebuild()
                calls.append(time.perf_counter() - s)
                await pilot.pause()
                cpus.append(time.process_time() - cpu_s)
            out["rebuild_call_ms"] = 1000 * statistics.median(calls)
            out["rebuild_cpu_ms"] = 1000 * statistics.median(cpus)
        finally:
            app.exit()

    if profile:
        import cProfile

        prof = cProfile.Profile()
        prof.enable()
        asyncio.run(app.run_async(headless=True, size=(120, 40), auto_pilot=pilot_run))
        prof.disable()
        prof.dump_stats(profile)
    else:
        asyncio.run(app.run_async(headless=True, size=(120, 40), auto_pilot=pilot_run))
    return out


# --- the parent ------------------------------------------------------------------


def _run_child(args: list[str], timeout: float = 900) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--child", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)
    if proc.returncode != 0:
        raise RuntimeError(f"child {args[0]} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _run_launch(kind: str, n: int, uri: str, profile: str | None = None, timeout: float = 300) -> dict:
    """Spawn vmtui or the floor in a pseudo-terminal of 120x40 and drain its output."""
    import fcntl
    import pty
    import select
    import struct
    import termios

    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        result = f.name
    argv = [sys.executable, __file__, "--child", kind, str(n), uri, "--spawned", "0", "--result", result]
    if profile:
        argv += ["--profile", profile]
    spawned = time.monotonic()
    argv[argv.index("--spawned") + 1] = repr(spawned)
    pid, fd = pty.fork()
    if pid == 0:  # child
        try:
            os.chdir(ROOT)
            env = dict(os.environ, TERM="xterm-256color", COLUMNS="120", LINES="40")
            os.execve(sys.executable, argv, env)
        finally:
            os._exit(127)
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    tail = b""
    deadline = time.monotonic() + timeout
    while True:
        if time.monotonic() > deadline:
            os.kill(pid, 9)
            break
        ready, _, _ = select.select([fd], [], [], 0.5)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 1 << 16)
        except OSError:
            break
        if not chunk:
            break
        tail = (tail + chunk)[-4000:]
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    try:
        marks = json.loads(Path(result).read_text() or "{}")
    except (OSError, ValueError):
        marks = {}
    finally:
        try:
            os.unlink(result)
        except OSError:
            pass
    if "on_screen" not in marks:
        raise RuntimeError(f"{kind} child failed (status {status}):\n{tail.decode(errors='replace')[-2000:]}")
    return marks


def _rel(m: dict, key: str) -> float | None:
    return None if key not in m else m[key] - m["spawned"]


def _fmt(v, unit="s", digits=3) -> str:
    if v is None:
        return "-"
    if unit == "ms":
        return f"{v:.1f} ms"
    if unit == "%":
        return f"{v:.2f} %"
    if unit == "MiB":
        return f"{v:.0f} MiB"
    return f"{v:.{digits}f} s"


VMTUI_MARKS = ["main", "open_start", "imported", "connect_called", "open_done", "domains_start", "domains_done",
               "reset_emitted", "table_filled", "on_screen", "titles_done"]
FLOOR_MARKS = ["main", "imported", "table_filled", "on_screen"]


def _median_marks(runs: list[dict], keys: list[str]) -> dict[str, float]:
    return {k: statistics.median([_rel(m, k) for m in runs]) for k in keys if all(k in m for m in runs)}


def _print_launch(r: dict) -> None:
    vm, fl = r["launch_median"], r["floor_median"]
    runs = len(r["launch_runs"])
    print(f"(b) launch -> first row (real terminal 120x40, median of {runs}, seconds since spawning python):")
    rows = [
        ("python started", "main", "main"),
        ("libvirt open started", "open_start", None),
        ("imports done (Textual, the app)", "imported", "imported"),
        ("service.connect() called", "connect_called", None),
        ("libvirt open done", "open_done", None),
        ("domains read", "domains_done", None),
        ("DomainsReset", "reset_emitted", None),
        ("table filled", "table_filled", "table_filled"),
        ("first frame with the rows", "on_screen", "on_screen"),
        ("titles loaded", "titles_done", None),
    ]
    print(f"      {'':<34} {'vmtui':>9} {'floor':>9}")
    for label, k_vm, k_fl in rows:
        print(f"      {label:<34} {_fmt(vm.get(k_vm)):>9} {_fmt(fl.get(k_fl) if k_fl else None):>9}")
    ratio = vm["on_screen"] / fl["on_screen"]
    r["launch_ratio"] = ratio
    verdict = "met" if ratio <= TARGETS["launch_ratio"] else "MISSED"
    print(f"      vmtui / floor: {ratio:.2f} (target <= {TARGETS['launch_ratio']}: {verdict}); runs (vmtui | floor): "
          f"{', '.join(_fmt(_rel(m, 'on_screen'), digits=2) for m in r['launch_runs'])} | "
          f"{', '.join(_fmt(_rel(m, 'on_screen'), digits=2) for m in r['floor_runs'])}", flush=True)


def _remote(calls: dict) -> int:
    return sum(v for k, v in calls.items() if not k.startswith("virDomain.") or k.split(".")[-1] not in LOCAL_DOMAIN_CALLS)


def _verdict(value: float | None, target: float | None) -> str:
    if value is None or target is None:
        return ""
    return " met" if value <= target else " MISSED"


def _summary(results: dict[int, dict], sizes: list[int]) -> None:
    def cell(n, fn):
        try:
            return fn(results[n])
        except (KeyError, TypeError, ZeroDivisionError):
            return "-"

    head = "| | " + " | ".join(f"{n:,} domains" for n in sizes) + " | target |"
    print("\n" + head)
    print("|---" * (len(sizes) + 2) + "|")
    rows = [
        ("launch → first row, vmtui", lambda r: _fmt(r["launch_median"]["on_screen"], digits=2), ""),
        ("launch → first row, floor", lambda r: _fmt(r["floor_median"]["on_screen"], digits=2), ""),
        ("vmtui / floor", lambda r: f"{r['launch_ratio']:.2f}" + _verdict(r["launch_ratio"], TARGETS["launch_ratio"]),
         f"≤ {TARGETS['launch_ratio']}"),
        ("titles in, after the first row", lambda r: _fmt(r["launch_median"]["titles_done"]
                                                          - r["launch_median"]["on_screen"], digits=2), ""),
        ("idle CPU, process (main thread)", lambda r: f"{r['headless']['idle_cpu_percent']:.2f} % "
         f"({r['headless']['idle_main_percent']:.2f} %)"
         + _verdict(r["headless"]["idle_cpu_percent"], TARGETS["idle_cpu_percent"].get(r["n"])),
         "≤ 0.5 % at 1,000, ≤ 1 % at 5,000"),
        ("of which the stats call alone", lambda r: f"{r['ticks']['bare_call_cpu_ms'] / 20:.2f} %", ""),
        ("RSS (peak)", lambda r: f"{r['headless']['VmRSS']:.0f} ({r['headless']['VmHWM']:.0f}) MiB"
         + _verdict(r["headless"]["VmRSS"], TARGETS["rss_mib"].get(r["n"])), "≤ 80 MiB at 1,000, ≤ 150 at 5,000"),
        ("floor's RSS (peak)", lambda r: f"{r['floor_rss']['VmRSS']:.0f} ({r['floor_rss']['VmHWM']:.0f}) MiB", ""),
        ("pagedown held, a key", lambda r: _fmt(r["headless"]["pagedown_ms_per_key"], "ms")
         + _verdict(r["headless"]["pagedown_ms_per_key"], TARGETS["key_ms"].get(r["n"])), "≤ 40 ms at 5,000"),
        ("down held, a key", lambda r: _fmt(r["headless"]["down_ms_per_key"], "ms")
         + _verdict(r["headless"]["down_ms_per_key"], TARGETS["key_ms"].get(r["n"])), "≤ 40 ms at 5,000"),
        ("libvirt calls per stats tick", lambda r: str(max(_remote(p) for p in r["ticks"]["per_tick"])),
         f"≤ {TARGETS['calls_per_tick']}"),
        ("calls for load + titles (XMLDesc, metadata)", lambda r: f"{_remote(r['ticks']['load_calls'])} "
         f"({r['ticks']['load_calls'].get('virDomain.XMLDesc', 0)}, "
         f"{r['ticks']['load_calls'].get('virDomain.metadata', 0)})", "one per domain"),
    ]
    for label, fn, target in rows:
        print(f"| {label} | " + " | ".join(cell(n, fn) for n in sizes) + f" | {target} |")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="vmtui list benchmark (prints figures, asserts nothing)")
    ap.add_argument("--sizes", default="100,1000,5000,10000", help="comma-separated domain counts")
    ap.add_argument("--launch-runs", type=int, default=5, help="launches per size and program (median shown)")
    ap.add_argument("--idle-seconds", type=float, default=10.0, help="idle CPU window")
    ap.add_argument("--quick", action="store_true", help=f"under a minute: {QUICK}")
    ap.add_argument("--skip", default="", help="comma-separated parts to skip: bare,launch,ticks,headless")
    ap.add_argument("--via-daemon", action="store_true", help="serve the hosts from a private libvirtd (root)")
    ap.add_argument("--no-compile", action="store_true",
                    help="do not byte-compile vmtui first (installed packages are; this checkout may not be)")
    ap.add_argument("--profile-dir", help="write cProfile dumps of the launch and headless runs here")
    ap.add_argument("--json", help="also write all raw figures to this file")
    ap.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    ap.add_argument("--spawned", type=float, help=argparse.SUPPRESS)
    ap.add_argument("--result", help=argparse.SUPPRESS)
    ap.add_argument("--profile", help=argparse.SUPPRESS)
    ns = ap.parse_args(argv)

    if ns.child:
        kind, n, uri = ns.child[0], int(ns.child[1]), ns.child[2]
        if kind == "launch":
            child_launch(n, uri, ns.spawned, ns.result, ns.profile)
            return 0
        if kind == "floor":
            child_floor_launch(n, uri, ns.spawned, ns.result, ns.profile)
            return 0
        if kind == "bare":
            res = child_bare(n, uri)
        elif kind == "ticks":
            res = child_ticks(n, uri)
        elif kind == "headless":
            res = child_headless(n, uri, ns.idle_seconds, ns.profile)
        elif kind == "floor_rss":
            res = child_floor_rss(n, uri)
        else:
            raise SystemExit(f"unknown child {kind}")
        print(json.dumps(res))
        return 0

    if ns.quick:
        ns.sizes, ns.launch_runs, ns.idle_seconds = QUICK["sizes"], QUICK["launch_runs"], QUICK["idle_seconds"]
    sizes = [int(s) for s in ns.sizes.split(",") if s.strip()]
    skip = {s.strip() for s in ns.skip.split(",") if s.strip()}
    if ns.profile_dir:
        Path(ns.profile_dir).mkdir(parents=True, exist_ok=True)
    if not ns.no_compile:
        # pip byte-compiles an installed vmtui; a checkout run with
        # PYTHONDONTWRITEBYTECODE=1 would compile every module at every start
        compileall.compile_dir(str(ROOT / "vmtui"), quiet=2)
        compileall.compile_file(str(HERE / "floor_app.py"), quiet=2)
    gen = _gen_host()
    daemon = None
    results: dict[int, dict] = {}
    print(f"vmtui list benchmark — {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, "
          f"{time.strftime('%Y-%m-%d %H:%M')}; load average at start {_load()}"
          + ("; hosts served by a private libvirtd" if ns.via_daemon else "; test driver in the process"),
          flush=True)
    tmp = tempfile.mkdtemp(prefix="vmtui-bench-")
    try:
        if ns.via_daemon:
            from tests.sessiond import SessionDaemon

            daemon = SessionDaemon("vmtui-b1").start()
            os.chmod(tmp, 0o755)
        for n in sizes:
            xml = str(Path(tmp) / f"host-{n}.xml")
            gen.generate_host_xml(n, xml)
            os.chmod(xml, 0o644)
            uri = "test://" + xml
            if daemon is not None:
                uri = f"test+unix://{xml}?socket={daemon.socket}"
            r: dict = {"n": n, "load_average": _load()}
            results[n] = r
            print(f"\n=== {n:,} domains ({os.path.getsize(xml) / 2**20:.1f} MiB host XML; load average "
                  f"{_load()}) ===", flush=True)

            if "bare" not in skip:
                b = r["bare"] = _run_child(["bare", str(n), uri])
                print(f"(a) bare libvirt.open + listAllDomains: {_fmt(b['open_list_first'])} first "
                      f"(open {_fmt(b['open_first'])}), best of 3 {_fmt(b['open_list_best'])}", flush=True)

            if "launch" not in skip:
                r["launch_runs"], r["floor_runs"] = [], []
                for i in range(ns.launch_runs):  # interleaved: both see the same machine load
                    prof = str(Path(ns.profile_dir) / f"launch-{n}.prof") if ns.profile_dir and i == 0 else None
                    r["launch_runs"].append(_run_launch("launch", n, uri, prof))
                    r["floor_runs"].append(_run_launch("floor", n, uri))
                r["launch_median"] = _median_marks(r["launch_runs"], VMTUI_MARKS)
                r["floor_median"] = _median_marks(r["floor_runs"], FLOOR_MARKS)
                _print_launch(r)

            if "ticks" not in skip:
                t = r["ticks"] = _run_child(["ticks", str(n), uri])
                per = t["per_tick"]
                print(f"(c) libvirt calls per stats tick: {[_remote(p) for p in per]} "
                      f"(target <= {TARGETS['calls_per_tick']}; not counted: {', '.join(sorted(LOCAL_DOMAIN_CALLS))})")
                for i, p in enumerate(per):
                    print(f"      tick {i}: " + ", ".join(f"{k} x{v}" for k, v in sorted(p.items())))
                print(f"      tick wall time {', '.join(_fmt(x * 1000, 'ms') for x in t['tick_s'])}; the stats call "
                      f"alone, its records dropped: {_fmt(t['bare_call_cpu_ms'], 'ms')} CPU "
                      f"({t['bare_call_cpu_ms'] / 20:.2f} % at a 2 s tick)")
                load = t["load_calls"]
                print(f"      calls for connect + load + titles: {_remote(load)} ("
                      + ", ".join(f"{k} x{v}" for k, v in sorted(load.items(), key=lambda kv: -kv[1])) + ")",
                      flush=True)

            if "headless" not in skip:
                prof = str(Path(ns.profile_dir) / f"headless-{n}.prof") if ns.profile_dir else None
                args = ["headless", str(n), uri, "--idle-seconds", str(ns.idle_seconds)]
                if prof:
                    args += ["--profile", prof]
                h = r["headless"] = _run_child(args)
                f = r["floor_rss"] = _run_child(["floor_rss", str(n), uri])
                cpu_t = TARGETS["idle_cpu_percent"].get(n)
                rss_t = TARGETS["rss_mib"].get(n)
                print(f"(d) idle over {h['idle_seconds']:.1f} s (stats every 2 s: {h['idle_ticks']} ticks, "
                      f"{h.get('idle_sweeps', '?')} of them sweeps, "
                      f"{h['idle_calls']} libvirt calls): CPU {_fmt(h['idle_cpu_percent'], '%')}, main thread "
                      f"{_fmt(h['idle_main_percent'], '%')}" + (f" (target <= {cpu_t} %)" if cpu_t else ""))
                print(f"      RSS {h['VmRSS']:.0f} MiB, peak {h['VmHWM']:.0f} MiB"
                      + (f" (target <= {rss_t} MiB)" if rss_t else "")
                      + f"; the floor app on the same host: {f['VmRSS']:.0f} MiB, peak {f['VmHWM']:.0f} MiB")
                print(f"(e) key held, 120x40 (stats ticks stopped): pagedown {h['pagedown_presses']} keys, "
                      f"{_fmt(h['pagedown_ms_per_key'], 'ms')} a key ({_fmt(h['pagedown_cpu_ms_per_key'], 'ms')} CPU); "
                      f"down {h['down_presses']} keys, {_fmt(h['down_ms_per_key'], 'ms')} a key "
                      f"({_fmt(h['down_cpu_ms_per_key'], 'ms')} CPU)")
                print(f"      full frame, table's line cache dropped: {_fmt(h['frame_cold_mean_ms'], 'ms')} mean, "
                      f"{_fmt(h['frame_cold_max_ms'], 'ms')} max")
                print(f"      upsert of 100 changed rows (median of 5): by name {_fmt(h['upsert100_name_call_ms'], 'ms')}"
                      f" call, {_fmt(h['upsert100_name_cpu_ms'], 'ms')} CPU until idle; by CPU "
                      f"{_fmt(h['upsert100_cpu_call_ms'], 'ms')} call, {_fmt(h['upsert100_cpu_cpu_ms'], 'ms')} CPU")
                print(f"      rebuild (filter change, median of 5): {_fmt(h['rebuild_call_ms'], 'ms')} call, "
                      f"{_fmt(h['rebuild_cpu_ms'], 'ms')} CPU until idle", flush=True)
        _summary(results, sizes)
        print(f"\nload average at the end {_load()}")
    finally:
        if daemon is not None:
            daemon.stop()
        for p in Path(tmp).glob("*"):
            p.unlink()
        os.rmdir(tmp)
    if ns.json:
        Path(ns.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
