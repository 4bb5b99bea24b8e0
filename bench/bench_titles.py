"""Figures for issue 15: loading the titles over a slow link. Prints figures,
asserts nothing.

On a remote host the titles are the only per-domain round trips of the
load (one ``XMLDesc`` per domain; two for a running persistent one). This
bench puts a unix-socket proxy between vmtui and a private libvirt daemon (a
non-root user's session libvirtd, tests/sessiond.py) that holds every read
for ``--delay`` ms before passing it on, both ways, defines N domains with
titles and measures, with vmtui's LibvirtService:

* the round trip of one call through the proxy;
* connect + list (until ``DomainsReset``);
* **first screen**: until the titles of the first 40 rows (by name, the
  list's first order) are known;
* **all titles**: until every title is known.

for the titles pass as it was (chunks of 200 in the daemon's listing order,
one call at a time) and as it is now (the rows on screen first, chunks of
16, three calls in flight). Needs root.

    .venv/bin/python bench/bench_titles.py [--sizes 200,1000] [--delay 20]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import sys
import tempfile
import threading
import time
import xml.etree.ElementTree as ET
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

import libvirt  # noqa: E402

from tests.sessiond import SessionDaemon  # noqa: E402
from vmtui.core.connection import service as service_mod  # noqa: E402
from vmtui.core.connection.service import DomainsChanged, DomainsReset, LibvirtService  # noqa: E402

PREFIX = f"bench-titles-{os.getpid()}-"
SCREEN = 40  # rows on the first screen


class DelayProxy:
    """A unix socket that forwards to ``target``, holding each read for ``delay`` s."""

    def __init__(self, target: str, path: str, delay: float) -> None:
        self.target, self.path, self.delay = target, path, delay
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(16)
        self.closed = False
        threading.Thread(target=self._accept, daemon=True, name="proxy-accept").start()

    def _accept(self) -> None:
        while not self.closed:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            upstream.connect(self.target)
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True, name="proxy-pump").start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                data = src.recv(1 << 16)
                if not data:
                    break
                time.sleep(self.delay)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        self.closed = True
        self.sock.close()


def domain_xml(name: str, i: int) -> str:
    dom = ET.Element("domain", type="qemu")
    ET.SubElement(dom, "name").text = name
    ET.SubElement(dom, "title").text = f"Bench guest number {i}"
    ET.SubElement(dom, "memory", unit="MiB").text = "64"
    ET.SubElement(dom, "vcpu").text = "1"
    os_el = ET.SubElement(dom, "os")
    ET.SubElement(os_el, "type", arch="x86_64", machine="pc").text = "hvm"
    return ET.tostring(dom, encoding="unicode")


def define(uri: str, n: int) -> list[str]:
    conn = libvirt.open(uri)
    try:
        # names in an order unlike the listing's: the first screen by name is spread over it
        names = [f"{PREFIX}{(i * 7919) % n:05d}" for i in range(n)]
        for i, name in enumerate(names):
            conn.defineXML(domain_xml(name, i))
        return names
    finally:
        conn.close()


def undefine_all(uri: str) -> None:
    conn = libvirt.open(uri)
    try:
        for dom in conn.listAllDomains():
            if dom.name().startswith(PREFIX):
                dom.undefine()
    finally:
        conn.close()


async def measure(uri: str, mode: str) -> dict:
    """Connect through the proxy, then one titles pass in ``mode``."""
    svc = LibvirtService(uri, stats_interval=3600, reconnect=False, timeout=120)
    real = LibvirtService._load_titles
    done_events: dict[str, float] = {}
    loaded = asyncio.Event()

    async def no_titles(self, uuids, **kw):  # the pass below is the one measured
        return None

    LibvirtService._load_titles = no_titles  # type: ignore[method-assign]
    t0 = time.monotonic()
    try:
        await svc.connect()
    finally:
        LibvirtService._load_titles = real  # type: ignore[method-assign]
    t_list = time.monotonic() - t0
    rtt0 = time.monotonic()
    await svc.call(lambda c: c.getLibVersion())
    rtt = time.monotonic() - rtt0
    ours = {u: d for u, d in svc.domains.items() if d.name.startswith(PREFIX)}
    by_name = sorted(ours, key=lambda u: ours[u].name)
    first = set(by_name[:SCREEN])
    listing = [u for u in svc.domains if u in ours]  # the daemon's own order
    known: set[str] = set()
    start = time.monotonic()

    def heard(news) -> None:
        if isinstance(news, DomainsChanged):
            for d in news.domains:
                if d.flags_read and d.uuid in ours:
                    known.add(d.uuid)
            now = time.monotonic() - start
            if "first" not in done_events and first <= known:
                done_events["first"] = now
            if len(known) == len(ours):
                done_events["all"] = now
                loaded.set()

    svc.subscribe(heard)
    if mode == "before":
        task = svc._load_titles(listing, chunk=200, workers=1)
    else:
        task = svc._load_titles(by_name, chunk=service_mod.TITLE_CHUNK, workers=service_mod.TITLE_WORKERS)
    await task
    total = time.monotonic() - start
    await svc.close()
    return {"list": t_list, "rtt": rtt, "first": done_events.get("first", total),
            "all": done_events.get("all", total)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="200,1000")
    ap.add_argument("--delay", type=float, default=20.0, help="ms each read is held, both ways")
    ap.add_argument("--runs", type=int, default=1)
    args = ap.parse_args()
    daemon = SessionDaemon("vmtui-h2").start()
    tmp = tempfile.mkdtemp(prefix="bench-titles-")
    proxy = DelayProxy(str(daemon.socket), f"{tmp}/proxy.sock", args.delay / 1000)
    uri = f"qemu+unix:///session?socket={tmp}/proxy.sock"
    load = os.getloadavg()[0]
    print(f"titles over a link holding each read {args.delay:g} ms (both ways); {os.cpu_count()} CPUs, "
          f"load average {load:.2f}; {time.strftime('%Y-%m-%d')}")
    try:
        for n in (int(s) for s in args.sizes.split(",")):
            undefine_all(daemon.uri)
            define(daemon.uri, n)
            for mode in ("before", "after"):
                for _ in range(args.runs):
                    r = asyncio.run(measure(uri, mode))
                    print(f"{n:5d} domains, {mode:6s}: round trip {r['rtt'] * 1000:5.0f} ms, connect+list "
                          f"{r['list']:5.2f} s, first screen's titles {r['first']:6.2f} s, all titles "
                          f"{r['all']:6.2f} s", flush=True)
    finally:
        undefine_all(daemon.uri)
        proxy.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
