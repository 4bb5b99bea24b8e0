#!/usr/bin/env python3
"""How long does creating a new disk take?  Prints figures; never asserts.

Usage::

    .venv/bin/python bench/bench_volumes.py                 # 20 GiB, 5 runs each
    .venv/bin/python bench/bench_volumes.py --runs 9 --size 20G
    .venv/bin/python bench/bench_volumes.py --json out.json  # also write the raw figures

On the real libvirtd (default ``qemu:///system``) a transient dir pool
``vmtui-bench-pool-<pid>`` is made under /var/lib/libvirt/images; every kind
of volume is created ``--runs`` times through
:func:`vmtui.core.storage.create_volume` (the same path the New-VM wizard
uses: name/pool checks, ``pool.createXML``, reading the result back), checked
(allocation from libvirt, blocks on disk) and deleted again. The pool and its
directory are removed at the end, also on Ctrl-C or failure.

Targets (issue): thick ≤ 0.5 s, thin ≤ 0.2 s for 20 GiB. Thick volumes
really take their space for a moment, so the size shrinks (and the output
says so) when the file system has less than 25 GiB free.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import libvirt

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from vmtui.core.storage import pools as storage  # noqa: E402
from vmtui.core.sizes import fmt_bytes, parse_size  # noqa: E402

GiB = 1024 ** 3
IMAGES = Path("/var/lib/libvirt/images")
KINDS = [  # (label, format, provisioning, target seconds)
    ("thick raw", "raw", "thick", 0.5),
    ("thick qcow2", "qcow2", "thick", 0.5),
    ("thin qcow2", "qcow2", "thin", 0.2),
    ("thin raw", "raw", "thin", 0.2),
]


def free_bytes(path: Path) -> int:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize  # what a non-reserved writer can use (df "Avail")


def pick_size(wanted: int, free: int) -> tuple[int, str | None]:
    if free >= wanted + 5 * GiB:
        return wanted, None
    size = max(GiB, (free - 5 * GiB) // 2 // GiB * GiB)
    if size <= 0 or free < 3 * GiB:
        raise SystemExit(f"only {fmt_bytes(free)} free under {IMAGES}: not enough to measure")
    return size, (f"NOTE: only {fmt_bytes(free)} free under {IMAGES}; measuring {fmt_bytes(size)} "
                  f"volumes instead of {fmt_bytes(wanted)}")


def make_pool(conn: libvirt.virConnect) -> tuple[libvirt.virStoragePool, Path]:
    name = f"vmtui-bench-pool-{os.getpid()}"
    path = IMAGES / name
    path.mkdir(mode=0o755)
    root = ET.Element("pool", type="dir")
    ET.SubElement(root, "name").text = name
    ET.SubElement(ET.SubElement(root, "target"), "path").text = str(path)
    try:
        return conn.storagePoolCreateXML(ET.tostring(root, encoding="unicode"), 0), path
    except libvirt.libvirtError:
        shutil.rmtree(path, ignore_errors=True)
        raise


def remove_pool(pool: libvirt.virStoragePool, path: Path) -> None:
    try:
        for vol in pool.listAllVolumes(0):
            vol.delete(0)
        pool.destroy()
    except libvirt.libvirtError as err:
        print(f"warning: cleaning up pool {path.name}: {err}", file=sys.stderr)
    shutil.rmtree(path, ignore_errors=True)


def measure(conn, pool_name: str, label: str, fmt: str, provisioning: str, size: int, runs: int) -> dict:
    creates, deletes, allocs, blocks = [], [], [], []
    for i in range(runs):
        name = f"bench-{i}.{'img' if fmt == 'raw' else fmt}"
        t = time.perf_counter()
        info = storage.create_volume(conn, pool_name, name, size, fmt=fmt, provisioning=provisioning)
        creates.append(time.perf_counter() - t)
        allocs.append(conn.storageVolLookupByPath(info.path).info()[2])
        blocks.append(os.stat(info.path).st_blocks * 512)
        t = time.perf_counter()
        storage.delete_volume(conn, info.key, force=True)
        deletes.append(time.perf_counter() - t)
    return {
        "kind": label, "format": fmt, "provisioning": provisioning, "size": size, "runs": runs,
        "create_s": creates, "delete_s": deletes,
        "create_median_s": statistics.median(creates), "delete_median_s": statistics.median(deletes),
        "allocation": statistics.median(allocs), "on_disk": statistics.median(blocks),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--uri", default="qemu:///system")
    ap.add_argument("--size", default="20G", help="volume size (default 20G)")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--json", metavar="FILE", help="also write the raw figures here")
    args = ap.parse_args(argv)

    wanted = parse_size(args.size)
    free = free_bytes(IMAGES)
    size, note = pick_size(wanted, free)
    conn = libvirt.open(args.uri)
    libvirt.registerErrorHandler(lambda _ctx, _err: None, None)
    print(f"libvirt {conn.getLibVersion() // 1000000}.{conn.getLibVersion() // 1000 % 1000}"
          f".{conn.getLibVersion() % 1000}, {conn.getType()} {conn.getVersion() // 1000000}"
          f".{conn.getVersion() // 1000 % 1000}, {args.uri}")
    print(f"free under {IMAGES}: {fmt_bytes(free)} (df Avail)")
    if note:
        print(note)
    pool, path = make_pool(conn)
    results = []
    try:
        info = storage.pool_info(conn, pool.name())
        print(f"pool {info.name}: {info.type}, {path}; libvirt says {fmt_bytes(info.available)} available")
        print(f"\n{fmt_bytes(size)} volumes, {args.runs} runs each, through storage.create_volume:\n")
        print(f"{'kind':<12} {'create median':>13} {'min':>7} {'max':>7} {'target':>7}   "
              f"{'allocation':>11} {'on disk':>10} {'delete':>7}")
        for label, fmt, provisioning, target in KINDS:
            r = measure(conn, pool.name(), label, fmt, provisioning, size, args.runs)
            r["target_s"] = target
            results.append(r)
            ok = "ok" if r["create_median_s"] <= target else "SLOW"
            print(f"{label:<12} {r['create_median_s']:>12.3f}s {min(r['create_s']):>6.3f}s "
                  f"{max(r['create_s']):>6.3f}s {target:>6.1f}s {ok:<4} {fmt_bytes(r['allocation']):>10} "
                  f"{fmt_bytes(r['on_disk']):>10} {r['delete_median_s']:>6.3f}s")
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        remove_pool(pool, path)
        conn.close()
    print("\nthick: libvirt fallocate()s raw files and runs qemu-img with preallocation=falloc for "
          "qcow2 (no zeros written);\nthin: sparse raw / qcow2 header only.")
    if args.json:
        Path(args.json).write_text(json.dumps({"size": size, "free": free, "note": note,
                                               "results": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
