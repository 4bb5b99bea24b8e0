"""Figures for issue 10: the screen during an event storm, and memory across
reconnects and after churn. Prints figures, asserts nothing.

Runs vmtui (and, for the storm, a bare Textual floor app: bench/floor_app.py)
in real pseudo-terminals against a private libvirt daemon (a non-root user's
session libvirtd, tests/sessiond.py), never the system daemon. Needs root.

    .venv/bin/python bench/bench_faults.py [--only storm,reconnect,churn] [--base 20]

* **storm**: with B domains defined, a script defines 200 domains, starts and
  destroys 50, undefines 100 as fast as libvirt-python goes. Meanwhile the
  bench presses ``?`` and waits until the help is on screen, then Esc and waits
  until it is gone, over and over: key → screen latency. The same for the
  floor app under the same storm. Target: vmtui ≤ 2× the floor.
* **reconnect**: vmtui on the daemon, RSS when settled, then the daemon is
  killed and restarted 10 times (each time until the status line says
  connected again); RSS after. Target: ≤ +5 MiB.
* **churn**: RSS of the vmtui that watched the storm, against a fresh vmtui
  on the same domains. Target: ≤ fresh + 15 MiB.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

import libvirt  # noqa: E402

from tests import guest  # noqa: E402
from tests.ptyterm import PtyTerminal  # noqa: E402
from tests.sessiond import SessionDaemon  # noqa: E402

PREFIX = f"bench-faults-{os.getpid()}-"
HELP = "Help — keys"
EXTRA_ENV = dict(e.split("=", 1) for e in os.environ.get("BENCH_ENV", "").split() if "=" in e)


def vmtui(uri: str, state: Path) -> PtyTerminal:
    env = {"XDG_STATE_HOME": str(state), "XDG_CONFIG_HOME": str(state / "config"), **EXTRA_ENV}
    return PtyTerminal([sys.executable, "-m", "vmtui", "-c", uri], cols=120, rows=40, env=env, cwd=str(ROOT))


def floor(uri: str) -> PtyTerminal:
    return PtyTerminal([sys.executable, str(HERE / "floor_app.py"), uri], cols=120, rows=40, cwd=str(ROOT))


def define(conn, files, names) -> list:
    return [conn.defineXML(guest.domain_xml(n, files.kernel, files.initrd, memory_mib=32)) for n in names]


def clean(uri: str) -> None:
    conn = libvirt.open(uri)
    try:
        for dom in conn.listAllDomains():
            if dom.name().startswith(PREFIX):
                guest.destroy_and_undefine(conn, dom.name())
    finally:
        conn.close()


def storm(uri: str, files, tag: str, done: threading.Event) -> None:
    conn = libvirt.open(uri)
    try:
        doms = define(conn, files, [f"{PREFIX}{tag}{i:03d}" for i in range(200)])
        for dom in doms[:50]:
            dom.create()
            dom.destroy()
        for dom in doms[:100]:
            dom.undefine()
    finally:
        conn.close()
        done.set()


def latencies_during(term: PtyTerminal, done: threading.Event) -> list[float]:
    out: list[float] = []
    while not done.is_set():
        t0 = time.monotonic()
        term.send("?")
        term.wait_for(HELP, timeout=120, poll=0.002)
        out.append(time.monotonic() - t0)
        t0 = time.monotonic()
        term.send("\x1b")
        term.wait_for(lambda t: HELP not in t, timeout=120, poll=0.002)
        out.append(time.monotonic() - t0)
    return out


def fmt(xs: list[float]) -> str:
    if not xs:
        return "no samples"
    xs = sorted(xs)
    p90 = xs[min(len(xs) - 1, int(0.9 * len(xs)))]
    return (f"median {statistics.median(xs) * 1000:.0f} ms, p90 {p90 * 1000:.0f} ms, "
            f"max {xs[-1] * 1000:.0f} ms ({len(xs)} samples)")


def measure_storm(daemon: SessionDaemon, files, state: Path) -> PtyTerminal:
    results = {}
    kept = None
    for name, start in (("floor", lambda: floor(daemon.uri)), ("vmtui", lambda: vmtui(daemon.uri, state))):
        term = start()
        term.wait_for("connected", timeout=120)
        done = threading.Event()
        worker = threading.Thread(target=storm, args=(daemon.uri, files, name[0], done), daemon=True)
        t0 = time.monotonic()
        worker.start()
        lat = latencies_during(term, done)
        worker.join()
        results[name] = lat
        print(f"  {name:6s} key → screen during the storm ({time.monotonic() - t0:.1f} s): {fmt(lat)}", flush=True)
        if name == "vmtui":
            kept = term
        else:
            term.close()
            clean_tag(daemon.uri, "f")
    f, v = results["floor"], results["vmtui"]
    if f and v:
        ratio = statistics.median(v) / max(1e-6, statistics.median(f))
        p90 = sorted(v)[int(0.9 * (len(v) - 1))] / max(1e-6, sorted(f)[int(0.9 * (len(f) - 1))])
        print(f"  vmtui / floor: median {ratio:.2f}×, p90 {p90:.2f}× (target ≤ 2×)")
    return kept


def clean_tag(uri: str, tag: str) -> None:
    conn = libvirt.open(uri)
    try:
        for dom in conn.listAllDomains():
            if dom.name().startswith(f"{PREFIX}{tag}"):
                guest.destroy_and_undefine(conn, dom.name())
    finally:
        conn.close()


def settle_rss(term: PtyTerminal, seconds: float = 6.0) -> int:
    time.sleep(seconds)  # a bench may wait: let ticks and titles settle
    return term.rss_kib()


def measure_reconnects(daemon: SessionDaemon, state: Path, rounds: int = 10) -> None:
    term = vmtui(daemon.uri, state)
    try:
        term.wait_for("connected", timeout=120)
        before = settle_rss(term)
        t0 = time.monotonic()
        for _ in range(rounds):
            daemon.signal(signal.SIGKILL)
            term.wait_for("disconnected", timeout=120)
            daemon.start()
            term.wait_for(lambda t: " connected" in t and "disconnected" not in t, timeout=120)
        after = settle_rss(term)
        print(f"  {rounds} daemon restarts in {time.monotonic() - t0:.1f} s: RSS {before / 1024:.1f} → "
              f"{after / 1024:.1f} MiB ({(after - before) / 1024:+.1f} MiB; target ≤ +5 MiB)")
    finally:
        term.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default="storm,reconnect,churn")
    ap.add_argument("--base", type=int, default=20, help="domains defined before the storm (default 20)")
    args = ap.parse_args()
    parts = set(args.only.split(","))
    libvirt.registerErrorHandler(lambda *_: None, None)
    daemon = SessionDaemon("vmtui-h1").start()
    files = guest.tiny_guest_files()
    state = Path(f"/tmp/{PREFIX}state")
    print(f"daemon {daemon.uri}; load average {os.getloadavg()[0]:.2f}", flush=True)
    conn = libvirt.open(daemon.uri)
    define(conn, files, [f"{PREFIX}base{i:03d}" for i in range(args.base)])
    conn.close()
    watched = None
    try:
        if "reconnect" in parts:
            print("reconnect:")
            measure_reconnects(daemon, state)
        if "storm" in parts or "churn" in parts:
            print("storm:")
            watched = measure_storm(daemon, files, state)
        if "churn" in parts and watched is not None:
            print("churn:")
            after = settle_rss(watched)
            fresh_term = vmtui(daemon.uri, state)
            try:
                fresh_term.wait_for("connected", timeout=120)
                fresh = settle_rss(fresh_term)
            finally:
                fresh_term.close()
            n = len(libvirt.open(daemon.uri).listAllDomains())
            print(f"  after the storm {after / 1024:.1f} MiB, fresh on the same {n} domains {fresh / 1024:.1f} MiB "
                  f"({(after - fresh) / 1024:+.1f} MiB; target ≤ +15 MiB)")
    finally:
        if watched is not None:
            watched.close()
        clean(daemon.uri)
    print(f"load average at the end {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
