#!/usr/bin/env python3
"""How fast does vmtui list big hosts?  Prints figures; never asserts.

Usage::

    .venv/bin/python bench/bench_list.py                      # 100, 1000, 5000 domains
    .venv/bin/python bench/bench_list.py --sizes 1000 --idle-seconds 5
    .venv/bin/python bench/bench_list.py --json out.json      # also write the raw figures

For each size a libvirt test-driver host XML is generated (bench/gen_host.py)
into a temporary directory, then every measurement runs in a fresh child
process (clean RSS, nothing cached in our process, no leftovers between sizes):

(a)  ``bare``    libvirt.open + listAllDomains, no vmtui at all: the floor.
(b)  ``launch``  the real program in a pseudo-terminal (real Linux driver,
                 120x40, output drained by this process): seconds from
                 spawning the interpreter until the table holds every domain
                 ("table filled", app.ready) and until the first frame after
                 that is written to the terminal ("on screen"), with where
                 the time went. ``--launch-runs`` runs; the median is shown.
(b2) ``launch_early_open``  the same, but libvirt.open starts in a thread on
                 the first line, while Python imports Textual (a prototype of
                 "open the connection while the UI starts"; the app itself
                 does not do this yet). Runs interleave with (b).
(c)  ``ticks``   libvirt calls per stats tick by method, after the load and
                 titles are done: calls on the connection (counting wrapper)
                 and on virDomain objects (bench-only wrapper); getters that
                 read the virDomain object itself (UUIDString, name, ID) are
                 listed but not counted as calls.
(d)  ``idle``    the app headless (120x40) with the default 2 s stats
                 interval, list and titles loaded: process CPU % (all
                 threads, time.process_time) over ``--idle-seconds``, then
                 RSS (VmRSS) and peak RSS (VmHWM) from /proc/self/status.
(e)  ``scroll``  in the same app, stats ticks stopped: pagedown from the
                 first row to the last with the key held (each key posted like
                 the terminal driver posts it, the next one as soon as the
                 cursor moved and a frame was composed): ms and CPU ms a key;
                 a full 120x40 frame with the table's render caches dropped
                 (mean of 20 places); DomainTable.upsert of 100 changed rows
                 (the call, and process CPU until Textual is idle again,
                 repaint included), sorted by name and by CPU; a rebuild
                 (what a filter change does). Medians of 5.

Timing is wall clock on whatever else the machine is doing: the 1-minute load
average is printed with each size. Nothing here asserts.
"""

from __future__ import annotations

import argparse
import asyncio
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
    "on_screen": {1000: 1.0, 5000: 2.0},
    "calls_per_tick": 2,
    "idle_cpu_percent": 1.0,
    "rss_mib": 120,
}


def _gen_host():
    spec = importlib.util.spec_from_file_location("vmtui_bench_gen_host", HERE / "gen_host.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _uri(path: str) -> str:
    return "test://" + str(Path(path).resolve())


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


def child_bare(n: int, xml: str, repeat: int = 3) -> dict:
    import libvirt

    uri = _uri(xml)
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


def child_launch(n: int, xml: str, spawned: float, result_path: str, profile: str | None,
                 early_open: bool = False) -> None:
    """Runs inside the pseudo-terminal: the real app with the real driver.

    ``early_open``: a prototype of "open the connection while the UI
    starts" -- libvirt.open runs in a thread from the first line, while
    Textual is imported and the app starts; the service then gets that
    connection through ``open_func``. (The app itself does not do this.)
    """
    marks: dict[str, float] = {"spawned": spawned, "main": time.monotonic()}
    open_func = None
    if early_open:
        import threading

        import libvirt

        from vmtui.core.connection.eventloop import ensure_event_impl

        ensure_event_impl()  # libvirt wants its event loop before the first connection
        box: dict = {}

        def opener() -> None:
            marks["open_start"] = time.monotonic()
            try:
                box["conn"] = libvirt.open(_uri(xml))
            except libvirt.libvirtError as err:
                box["err"] = err
            marks["open_done"] = time.monotonic()

        thread = threading.Thread(target=opener, name="early-open", daemon=True)
        thread.start()

        def open_func(uri: str, readonly: bool):
            thread.join()
            if "err" in box:
                raise box["err"]
            return box["conn"]

    from vmtui.core.config import Config
    from vmtui.core.connection.service import DomainsReset, LibvirtService
    from vmtui.ui import domain_table
    from vmtui.ui.app import VmtuiApp

    marks["imported"] = time.monotonic()
    svc = LibvirtService(_uri(xml), stats_interval=Config().stats_interval, reconnect=False,
                         open_func=open_func)
    app = VmtuiApp(svc, Config())
    marks["app_created"] = time.monotonic()

    # Instrumentation only: wrap a few callables of these instances / classes.
    connect = svc.connect

    async def timed_connect() -> None:
        marks.setdefault("connect_called", time.monotonic())
        await connect()

    def timed_open():
        marks.setdefault("open_start", time.monotonic())
        try:
            return service_open()
        finally:
            marks.setdefault("open_done", time.monotonic())

    service_open = svc._open
    svc.connect, svc._open = timed_connect, timed_open

    def timed(fn, start: str, done: str):
        def wrapper(*args):
            marks.setdefault(start, time.monotonic())
            try:
                return fn(*args)
            finally:
                marks.setdefault(done, time.monotonic())
        return wrapper

    svc._setup_connection = timed(svc._setup_connection, "setup_start", "setup_done")
    svc._fetch_host = timed(svc._fetch_host, "host_start", "host_done")
    svc._fetch_domains = timed(svc._fetch_domains, "domains_start", "domains_done")
    svc.subscribe(lambda p: isinstance(p, DomainsReset) and marks.setdefault("reset_emitted", time.monotonic()))

    reset = domain_table.DomainTable.reset

    def timed_reset(self, domains):
        marks.setdefault("reset_start", time.monotonic())
        reset(self, domains)
        if len(self.rows) == n:
            marks.setdefault("table_filled", time.monotonic())

    domain_table.DomainTable.reset = timed_reset
    display = app._display

    def timed_display(screen, renderable):
        display(screen, renderable)
        now = time.monotonic()
        if renderable is not None:
            marks.setdefault("first_frame", now)
            if "table_filled" in marks:
                marks.setdefault("on_screen", now)

    app._display = timed_display

    async def watch() -> None:
        while "on_screen" not in marks:
            await asyncio.sleep(0.01)
        task = svc._titles_task
        if task is not None:
            await asyncio.wait([task])
        marks["titles_done"] = time.monotonic()
        marks["rows"] = len(app.table.rows)
        await asyncio.sleep(0.05)
        app.exit()

    async def main() -> None:
        watcher = asyncio.ensure_future(watch())
        await app.run_async()
        watcher.cancel()

    if profile:
        import cProfile

        prof = cProfile.Profile()
        prof.enable()
        asyncio.run(main())
        prof.disable()
        prof.dump_stats(profile)
    else:
        asyncio.run(main())
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


async def _tick_counts(n: int, xml: str, ticks: int = 4) -> dict:
    from collections import Counter

    from vmtui.core.connection.counting import counting_opener
    from vmtui.core.connection.service import LibvirtService

    dom_counts: Counter = Counter()
    _count_domain_calls(dom_counts)
    holder: list = []
    svc = LibvirtService(_uri(xml), stats_interval=3600, reconnect=False, open_func=counting_opener(holder))
    t0 = time.perf_counter()
    await svc.connect()
    t1 = time.perf_counter()
    await svc.wait_loaded()
    t2 = time.perf_counter()
    conn = holder[0]
    load = dict(conn.counts + dom_counts)
    per_tick = []
    tick_times = []
    for _ in range(ticks):
        before = conn.counts + dom_counts
        s = time.perf_counter()
        await svc.stats_tick()
        tick_times.append(time.perf_counter() - s)
        per_tick.append(dict((conn.counts + dom_counts) - before))
    await svc.close()
    assert len(svc.domains) == n, (len(svc.domains), n)
    return {"load_calls": load, "per_tick": per_tick, "connect_s": t1 - t0, "titles_s": t2 - t1,
            "tick_s": tick_times}


def child_ticks(n: int, xml: str) -> dict:
    return asyncio.run(_tick_counts(n, xml))


def child_headless(n: int, xml: str, idle_seconds: float, profile: str | None) -> dict:
    """The app headless at 120x40: idle CPU and RSS, then scrolling and upserts."""
    from textual import events

    from vmtui.core.config import Config
    from vmtui.core.connection.counting import counting_opener
    from vmtui.core.connection.rows import DomainStats
    from vmtui.core.connection.service import LibvirtService
    from vmtui.ui.app import VmtuiApp

    holder: list = []
    svc = LibvirtService(_uri(xml), stats_interval=Config().stats_interval, reconnect=False,
                         open_func=counting_opener(holder))
    app = VmtuiApp(svc, Config())
    out: dict = {}

    async def until(pred, timeout=120.0):
        deadline = time.monotonic() + timeout
        while not pred():
            if time.monotonic() > deadline:
                raise TimeoutError("benchmark condition not reached")
            await asyncio.sleep(0.01)

    async def pilot_run(pilot) -> None:
        try:
            await until(lambda: app.ready and len(app.table.rows) == n)
            await svc.wait_loaded()
            await pilot.pause()
            await asyncio.sleep(1.0)  # let startup work settle

            # (d) idle: the app sits there while stats tick every 2 s.
            conn = holder[0]
            calls0, ticks0 = conn.total, conn.counts["getAllDomainStats"]
            cpu0, wall0 = time.process_time(), time.monotonic()
            await asyncio.sleep(idle_seconds)
            cpu1, wall1 = time.process_time(), time.monotonic()
            out["idle_cpu_percent"] = 100.0 * (cpu1 - cpu0) / (wall1 - wall0)
            out["idle_seconds"] = wall1 - wall0
            out["idle_calls"] = conn.total - calls0
            out["idle_ticks"] = conn.counts["getAllDomainStats"] - ticks0
            out.update(_proc_status())

            # (e) Stats ticks are stopped from here on (the loop's current
            # sleep runs out first): at 5,000 domains a tick is ~0.1 s of work
            # that would land in the middle of these figures. (d) has them.
            svc.stats_interval = 3600
            await asyncio.sleep(3.0)
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

            # Pagedown from the first row to the last, the key held: each key
            # is posted like the terminal driver posts it, as soon as the
            # previous one moved the cursor and a frame was composed after
            # that (headless: composed, not written anywhere). Whatever the
            # app still does after that frame delays the next key, as it
            # would with key repeat.
            app._display = timed_display
            await asyncio.sleep(0.2)
            held_start, held_cpu = time.perf_counter(), time.process_time()
            held = 0
            while table.cursor_row < table.row_count - 1 and held < 10_000:
                before = table.cursor_row
                app.post_message(events.Key("pagedown", None))
                while table.cursor_row == before:
                    await asyncio.sleep(0.0005)
                frame.clear()
                await asyncio.wait_for(frame.wait(), 5)
                held += 1
            out["pagedown_presses"] = held
            out["pagedown_total_s"] = time.perf_counter() - held_start
            out["pagedown_ms_per_key"] = 1000 * out["pagedown_total_s"] / max(1, held)
            out["pagedown_cpu_ms_per_key"] = 1000 * (time.process_time() - held_cpu) / max(1, held)
            out["cursor_at_end"] = table.cursor_row == table.row_count - 1
            app._display = display

            # A whole frame from scratch for the table (its render caches
            # dropped), at 20 places down the list.
            frames = []
            step = max(1, table.row_count // 20)
            for row in range(0, table.row_count, step):
                table.move_cursor(row=row)
                await pilot.pause()
                table.clear_caches()
                s = time.perf_counter()
                screen._compositor.render_update(full=True)
                frames.append(time.perf_counter() - s)
                table.refresh()
            out["frame_cold_mean_ms"] = 1000 * statistics.mean(frames) if frames else None
            out["frame_cold_max_ms"] = 1000 * max(frames) if frames else None

            # upsert of 100 changed rows (stats changed), sorted by name and by
            # CPU; then rebuilds (what a filter change does). Five of each,
            # medians: a single one may meet a garbage-collector pass.
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


def _run_child(args: list[str], timeout: float = 600) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--child", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)
    if proc.returncode != 0:
        raise RuntimeError(f"child {args[0]} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _run_launch(n: int, xml: str, profile: str | None = None, timeout: float = 120,
                early_open: bool = False) -> dict:
    """Spawn the app in a pseudo-terminal of 120x40 and drain its output."""
    import fcntl
    import pty
    import select
    import struct
    import termios

    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        result = f.name
    argv = [sys.executable, __file__, "--child", "launch", str(n), xml, "--spawned", "0", "--result", result]
    if profile:
        argv += ["--profile", profile]
    if early_open:
        argv += ["--early-open"]
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
    total = 0
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
        total += len(chunk)
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
        raise RuntimeError(f"launch child failed (status {status}):\n{tail.decode(errors='replace')[-2000:]}")
    marks["terminal_bytes"] = total
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
    return f"{v:.{digits}f} s"


LAUNCH_MARKS = ["main", "imported", "app_created", "connect_called", "open_start", "open_done",
                "setup_start", "setup_done", "host_start", "host_done", "domains_start", "domains_done",
                "reset_emitted", "reset_start", "table_filled", "first_frame", "on_screen", "titles_done"]


def _print_launch(r: dict, name: str, n: int, early: bool) -> None:
    runs = r[name + "_runs"]
    med = {k: statistics.median([_rel(m, k) for m in runs]) for k in LAUNCH_MARKS if all(k in m for m in runs)}
    r[name + "_median"] = med
    if early:
        print(f"(b2) the same with libvirt.open started on the first line, in a thread, while Python imports "
              f"Textual and the app starts (prototype of the issue's suggestion; the app does not do this):")
    else:
        print(f"(b) launch to full list (real terminal 120x40, median of {len(runs)}, seconds since spawning python):")
    rows = [
        ("python started, main() runs", "main"),
        ("imports done", "imported"),
        ("app created", "app_created"),
        ("service.connect() called", "connect_called"),
        ("libvirt open started", "open_start"),
        ("libvirt open done", "open_done"),
        ("  events registered", "setup_done"),
        ("  host read (_fetch_host)", "host_done"),
        ("  domains read (_fetch_domains)", "domains_done"),
        ("DomainsReset emitted", "reset_emitted"),
        ("table filled (app.ready)", "table_filled"),
        ("first frame with the rows", "on_screen"),
        ("titles loaded", "titles_done"),
    ]
    for label, k in rows:
        print(f"      {label:<32} {_fmt(med.get(k))}")
    if {"open_start", "open_done", "on_screen", "reset_emitted", "table_filled"} <= med.keys():
        open_s = med["open_done"] - med["open_start"]
        after = med["on_screen"] - med["open_done"]
        r[name + "_open_s"], r[name + "_after_open_s"] = open_s, after
        print(f"      libvirt open took {_fmt(open_s)} in the app; from open done to rows on screen {_fmt(after)} "
              f"(load {_fmt(med['reset_emitted'] - med['open_done'])}, fill "
              f"{_fmt(med['table_filled'] - med['reset_emitted'])}, paint "
              f"{_fmt(med['on_screen'] - med['table_filled'])}); all but the open: "
              f"{_fmt(med['on_screen'] - open_s)}")
    target = TARGETS["on_screen"].get(n)
    if target:
        verdict = "met" if med["on_screen"] <= target else "MISSED"
        bare = r.get("bare", {}).get("open_list_first")
        print(f"      target: on screen within {target:.1f} s of launch -> {verdict}"
              + (f" (bare open+listAllDomains alone: {bare:.3f} s)" if bare else ""))
    print(f"      all runs (on screen): {', '.join(_fmt(_rel(m, 'on_screen')) for m in runs)}", flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="vmtui list benchmark (prints figures, asserts nothing)")
    ap.add_argument("--sizes", default="100,1000,5000", help="comma-separated domain counts")
    ap.add_argument("--launch-runs", type=int, default=3, help="launches per size (median shown)")
    ap.add_argument("--no-early-open", action="store_true", help="skip the early-open launch variant (b2)")
    ap.add_argument("--idle-seconds", type=float, default=10.0, help="idle CPU window")
    ap.add_argument("--skip", default="", help="comma-separated parts to skip: bare,launch,ticks,headless")
    ap.add_argument("--profile-dir", help="write cProfile dumps of the launch and headless runs here")
    ap.add_argument("--json", help="also write all raw figures to this file")
    ap.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    ap.add_argument("--spawned", type=float, help=argparse.SUPPRESS)
    ap.add_argument("--result", help=argparse.SUPPRESS)
    ap.add_argument("--profile", help=argparse.SUPPRESS)
    ap.add_argument("--early-open", action="store_true", help=argparse.SUPPRESS)
    ns = ap.parse_args(argv)

    if ns.child:
        kind, n, xml = ns.child[0], int(ns.child[1]), ns.child[2]
        if kind == "launch":
            child_launch(n, xml, ns.spawned, ns.result, ns.profile, ns.early_open)
            return 0
        if kind == "bare":
            res = child_bare(n, xml)
        elif kind == "ticks":
            res = child_ticks(n, xml)
        elif kind == "headless":
            res = child_headless(n, xml, ns.idle_seconds, ns.profile)
        else:
            raise SystemExit(f"unknown child {kind}")
        print(json.dumps(res))
        return 0

    sizes = [int(s) for s in ns.sizes.split(",") if s.strip()]
    skip = {s.strip() for s in ns.skip.split(",") if s.strip()}
    if ns.profile_dir:
        Path(ns.profile_dir).mkdir(parents=True, exist_ok=True)
    gen = _gen_host()
    results: dict[int, dict] = {}
    print(f"vmtui list benchmark — {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, "
          f"{time.strftime('%Y-%m-%d')}; load average at start {_load()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="vmtui-bench-") as tmp:
        for n in sizes:
            xml = str(Path(tmp) / f"host-{n}.xml")
            gen.generate_host_xml(n, xml)
            r: dict = {"n": n}
            results[n] = r
            print(f"\n=== {n} domains ({os.path.getsize(xml) / 2**20:.1f} MiB host XML; load average "
                  f"{_load()}) ===", flush=True)

            if "bare" not in skip:
                b = r["bare"] = _run_child(["bare", str(n), xml])
                print(f"(a) bare libvirt.open + listAllDomains: {_fmt(b['open_list_first'])} first "
                      f"(open {_fmt(b['open_first'])}), best of 3 {_fmt(b['open_list_best'])} "
                      f"(open {_fmt(b['open_best'])})", flush=True)


            if "launch" not in skip:
                variants = [("launch", False)] + ([] if ns.no_early_open else [("launch_early_open", True)])
                for name, _ in variants:
                    r[name + "_runs"] = []
                for i in range(ns.launch_runs):  # interleaved: both variants see the same machine load
                    for name, early in variants:
                        prof = None
                        if ns.profile_dir and i == 0:
                            prof = str(Path(ns.profile_dir) / f"{name}-{n}.prof")
                        r[name + "_runs"].append(_run_launch(n, xml, prof, early_open=early))
                for name, early in variants:
                    _print_launch(r, name, n, early)

            if "ticks" not in skip:
                t = r["ticks"] = _run_child(["ticks", str(n), xml])
                per = t["per_tick"]

                def remote(calls: dict) -> int:
                    return sum(v for k, v in calls.items() if k.split(".")[-1] not in LOCAL_DOMAIN_CALLS
                               or not k.startswith("virDomain."))

                print(f"(c) libvirt calls per stats tick: {[remote(p) for p in per]} "
                      f"(target <= {TARGETS['calls_per_tick']}; not counting virDomain getters that read the "
                      f"object itself: {', '.join(sorted(LOCAL_DOMAIN_CALLS))})")
                for i, p in enumerate(per):
                    print(f"      tick {i}: " + ", ".join(f"{k} x{v}" for k, v in sorted(p.items())))
                print(f"      tick wall time {', '.join(_fmt(x * 1000, 'ms') for x in t['tick_s'])}")
                load = t["load_calls"]
                print(f"      calls to connect + load + titles: {remote(load)} remote-capable ("
                      + ", ".join(f"{k} x{v}" for k, v in sorted(load.items(), key=lambda kv: -kv[1])) + ")",
                      flush=True)

            if "headless" not in skip:
                prof = str(Path(ns.profile_dir) / f"headless-{n}.prof") if ns.profile_dir else None
                args = ["headless", str(n), xml, "--idle-seconds", str(ns.idle_seconds)]
                if prof:
                    args += ["--profile", prof]
                h = r["headless"] = _run_child(args)
                print(f"(d) idle over {h['idle_seconds']:.1f} s (stats every 2 s: {h['idle_ticks']} ticks, {h['idle_calls']} libvirt calls): "
                      f"CPU {_fmt(h['idle_cpu_percent'], '%')} (target <= {TARGETS['idle_cpu_percent']} %), "
                      f"RSS {h['VmRSS']:.0f} MiB, peak {h['VmHWM']:.0f} MiB (target <= {TARGETS['rss_mib']} MiB)")
                print(f"(e) pagedown from the first row to the last, key held (stats ticks stopped): "
                      f"{h['pagedown_presses']} keys in {_fmt(h['pagedown_total_s'])}, "
                      f"{_fmt(h['pagedown_ms_per_key'], 'ms')} a key, {_fmt(h['pagedown_cpu_ms_per_key'], 'ms')} CPU a key")
                print(f"      full 120x40 frame with cold table caches: {_fmt(h['frame_cold_mean_ms'], 'ms')} mean, "
                      f"{_fmt(h['frame_cold_max_ms'], 'ms')} max")
                print(f"      upsert of 100 changed rows (median of 5): sorted by name "
                      f"{_fmt(h['upsert100_name_call_ms'], 'ms')} call, {_fmt(h['upsert100_name_cpu_ms'], 'ms')} CPU "
                      f"until idle; sorted by CPU {_fmt(h['upsert100_cpu_call_ms'], 'ms')} call, "
                      f"{_fmt(h['upsert100_cpu_cpu_ms'], 'ms')} CPU until idle")
                print(f"      rebuild (filter change, median of 5): {_fmt(h['rebuild_call_ms'], 'ms')} call, "
                      f"{_fmt(h['rebuild_cpu_ms'], 'ms')} CPU until idle", flush=True)

    if ns.json:
        Path(ns.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
