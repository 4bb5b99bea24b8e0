#!/usr/bin/env python3
"""Generate large host definitions for libvirt's test driver.

Usage::

    python bench/gen_host.py 1000 /tmp/host-1000.xml     # write one file
    python bench/gen_host.py --bench                     # time 100/1000/5000
    python bench/gen_host.py --bench 100 20000           # time other sizes

The generated file is opened with ``libvirt.open('test:///abs/path.xml')``.
It holds ``n_domains`` domains named ``vm-00001`` ... with a mix of states
(about 60 % running, 30 % shut off, 10 % paused), one qcow2 disk and one
NIC on the NAT network ``default`` each, plus a ``default`` dir pool that
contains every disk as a thin volume.  Output depends only on ``n_domains``
and ``seed``: the same arguments always produce byte-identical files.

Test driver facts this relies on (libvirt 9.0):

* ``<domain type='test'>`` is required; the run state is the
  ``<test:runstate>`` element (virDomainState number) of the namespace
  ``http://libvirt.org/schemas/domain/test/1.0``, which may be declared on
  the ``<node>`` root.
* Pool capacity is always 100 GiB whatever the XML says and the pool
  allocation is the sum of its volumes' allocations, so the volume
  allocations are scaled to fill at most 90 GiB in total.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path

TEST_NS = "http://libvirt.org/schemas/domain/test/1.0"
POOL_PATH = "/var/lib/libvirt/images"
GiB = 1024**3
MiB = 1024**2

# virDomainState numbers understood by <test:runstate>
RUNNING, PAUSED, SHUTOFF = 1, 3, 5
_STATES = (RUNNING, SHUTOFF, PAUSED)
_STATE_WEIGHTS = (60, 30, 10)

ET.register_namespace("test", TEST_NS)


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrib: str) -> ET.Element:
    el = ET.SubElement(parent, tag, attrib)
    if text is not None:
        el.text = text
    return el


def _domain_name(i: int) -> str:
    return f"vm-{i:05d}"


def _add_domain(node: ET.Element, i: int, rng: random.Random) -> int:
    """Append domain number *i* (1-based); return its disk capacity in GiB."""
    name = _domain_name(i)
    vcpus = rng.choice((1, 1, 2, 2, 2, 4, 4, 8))
    mem_mib = rng.choice((512, 1024, 2048, 2048, 4096, 4096, 8192, 16384))
    disk_gib = rng.choice((10, 20, 20, 40, 80))
    state = rng.choices(_STATES, weights=_STATE_WEIGHTS)[0]

    dom = _sub(node, "domain", type="test")
    _sub(dom, "name", name)
    _sub(dom, "uuid", str(uuid.UUID(int=rng.getrandbits(128), version=4)))
    if i % 3 == 0:
        _sub(dom, "title", f"Generated VM {i}")
    _sub(dom, "memory", str(mem_mib), unit="MiB")
    _sub(dom, "currentMemory", str(mem_mib), unit="MiB")
    _sub(dom, "vcpu", str(vcpus), placement="static")
    os_el = _sub(dom, "os")
    _sub(os_el, "type", "hvm", arch="x86_64", machine="pc-q35-7.2")
    _sub(os_el, "boot", dev="hd")

    devices = _sub(dom, "devices")
    disk = _sub(devices, "disk", type="file", device="disk")
    _sub(disk, "driver", name="qemu", type="qcow2")
    _sub(disk, "source", file=f"{POOL_PATH}/{name}.qcow2")
    _sub(disk, "target", dev="vda", bus="virtio")

    nic = _sub(devices, "interface", type="network")
    # 52:54:00 is the QEMU/KVM prefix; the index makes MACs unique for
    # up to 16.7 million domains.
    _sub(nic, "mac", address="52:54:00:{:02x}:{:02x}:{:02x}".format(
        (i >> 16) & 0xFF, (i >> 8) & 0xFF, i & 0xFF))
    _sub(nic, "source", network="default")
    _sub(nic, "model", type="virtio")

    serial = _sub(devices, "serial", type="pty")
    _sub(serial, "target", port="0")
    console = _sub(devices, "console", type="pty")
    _sub(console, "target", type="serial", port="0")

    _sub(dom, f"{{{TEST_NS}}}runstate", str(state))
    return disk_gib


def _add_network(node: ET.Element) -> None:
    net = _sub(node, "network")
    _sub(net, "name", "default")
    _sub(net, "uuid", "dd8fe884-6c02-401e-8551-cca97df1c5df")
    _sub(net, "forward", mode="nat")
    _sub(net, "bridge", name="virbr0", stp="on", delay="0")
    ip = _sub(net, "ip", address="192.168.122.1", netmask="255.255.255.0")
    dhcp = _sub(ip, "dhcp")
    _sub(dhcp, "range", start="192.168.122.2", end="192.168.122.254")


def _add_pool(node: ET.Element, disks: list[tuple[str, int]], rng: random.Random) -> None:
    pool = _sub(node, "pool", type="dir")
    _sub(pool, "name", "default")
    _sub(pool, "uuid", "dfe224cb-28fb-4dd0-84b2-64eb3f0f4566")
    target = _sub(pool, "target")
    _sub(target, "path", POOL_PATH)
    # The test driver fixes the pool at 100 GiB and sums the allocations:
    # keep the total at or below 90 GiB so "available" stays positive.
    budget_mib = max(1, (90 * GiB // MiB) // max(1, len(disks)))
    for vol_name, cap_gib in disks:
        alloc_mib = max(1, min(cap_gib * 1024, budget_mib * rng.randint(25, 100) // 100))
        vol = _sub(pool, "volume", type="file")
        _sub(vol, "name", vol_name)
        _sub(vol, "capacity", str(cap_gib), unit="GiB")
        _sub(vol, "allocation", str(alloc_mib), unit="MiB")
        vtarget = _sub(vol, "target")
        _sub(vtarget, "format", type="qcow2")


def build_host_tree(n_domains: int, *, seed: int = 1234) -> ET.ElementTree:
    """Return the ElementTree of a host with *n_domains* domains."""
    if n_domains < 0:
        raise ValueError("n_domains must be >= 0")
    rng = random.Random(seed)
    node = ET.Element("node")
    cpu = _sub(node, "cpu")
    for tag, val in (("nodes", "1"), ("sockets", "2"), ("cores", "16"),
                     ("threads", "2"), ("mhz", "2900"), ("model", "x86_64")):
        _sub(cpu, tag, val)
    _sub(node, "memory", str(512 * 1024 * 1024))  # KiB -> 512 GiB

    disks = []
    for i in range(1, n_domains + 1):
        cap = _add_domain(node, i, rng)
        disks.append((f"{_domain_name(i)}.qcow2", cap))
    _add_network(node)
    _add_pool(node, disks, rng)
    ET.indent(node, space="  ")
    return ET.ElementTree(node)


def generate_host_xml(n_domains: int, path, *, seed: int = 1234) -> None:
    """Write a test-driver host XML with *n_domains* domains to *path*."""
    tree = build_host_tree(n_domains, seed=seed)
    tree.write(os.fspath(path), encoding="UTF-8", xml_declaration=True)


def measure(n_domains: int, repeat: int = 3) -> dict[str, float]:
    """Time open + listAllDomains (best of *repeat*) for *n_domains*."""
    import libvirt

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"host-{n_domains}.xml"
        t0 = time.perf_counter()
        generate_host_xml(n_domains, path)
        gen = time.perf_counter() - t0
        uri = "test://" + str(path.resolve())
        best_open = best_list = best_info = float("inf")
        for _ in range(repeat):
            t0 = time.perf_counter()
            conn = libvirt.open(uri)
            t1 = time.perf_counter()
            doms = conn.listAllDomains()
            t2 = time.perf_counter()
            for d in doms:
                d.info()
            t3 = time.perf_counter()
            if len(doms) != n_domains:
                raise RuntimeError(f"expected {n_domains} domains, got {len(doms)}")
            conn.close()
            best_open = min(best_open, t1 - t0)
            best_list = min(best_list, t2 - t1)
            best_info = min(best_info, t3 - t2)
        return {
            "n": n_domains,
            "size_mib": path.stat().st_size / MiB,
            "generate_s": gen,
            "open_s": best_open,
            "list_s": best_list,
            "open_list_s": best_open + best_list,
            "info_all_s": best_info,
        }


def _main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bench", action="store_true",
                    help="time libvirt.open + listAllDomains for the given sizes")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("args", nargs="*", help="N PATH, or sizes with --bench")
    ns = ap.parse_args(argv)
    if ns.bench:
        sizes = [int(a) for a in ns.args] or [100, 1000, 5000]
        print(f"{'domains':>8} {'xml MiB':>8} {'generate':>9} {'open':>8} "
              f"{'listAll':>8} {'open+list':>10} {'info() all':>10}")
        for n in sizes:
            r = measure(n)
            print(f"{r['n']:>8} {r['size_mib']:>8.1f} {r['generate_s']:>8.3f}s "
                  f"{r['open_s']:>7.3f}s {r['list_s']:>7.3f}s "
                  f"{r['open_list_s']:>9.3f}s {r['info_all_s']:>9.3f}s")
        return 0
    if len(ns.args) != 2:
        ap.error("expected N PATH (or --bench)")
    n, path = int(ns.args[0]), ns.args[1]
    generate_host_xml(n, path, seed=ns.seed)
    print(f"wrote {n} domains to {path}; open with test://{os.path.abspath(path)}")
    return 0


if __name__ == "__main__":
    sys.exit(_main())
