"""Console throughput: bytes/s of guest output TerminalView emulates and renders.

Synthetic stream: coloured ``ls -l`` style lines (SGR 1;34 / 0;32 / 0), CRLF.

    .venv/bin/python bench/bench_console.py [MiB]

Figures printed:
* feed only      -- pyte parsing into the screen (TerminalView.feed)
* feed + render  -- feed in 4 KiB chunks, and every 1/30 s of wall time
                    apply the dirty lines and render every screen line
                    through render_line() (what Textual does per frame)
* threaded       -- chunks handed over with feed_threadsafe() from another
                    thread (as the libvirt-events thread does) while the app
                    runs; measured until the last byte is on screen
"""

from __future__ import annotations

import asyncio
import os
import random
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from textual.app import App, ComposeResult  # noqa: E402

from vmtui.ui.terminal import TerminalView  # noqa: E402

CHUNK = 4096


def synthetic(size: int, seed: int = 1) -> bytes:
    rnd = random.Random(seed)
    out = bytearray()
    names = ["vmlinuz", "initrd.img", "config", "System.map", "grub", "lost+found", "README.md", "data.bin"]
    while len(out) < size:
        kind = rnd.random()
        name = f"{rnd.choice(names)}-{rnd.randrange(100000)}"
        if kind < 0.3:
            name = f"\x1b[1;34m{name}\x1b[0m"
        elif kind < 0.5:
            name = f"\x1b[0;32m{name}\x1b[0m"
        line = (f"-rw-r--r-- 1 root root {rnd.randrange(10**8):>9} Nov 27 13:{rnd.randrange(60):02d} "
                f"{name}\r\n")
        out += line.encode()
    return bytes(out[:size])


class BenchApp(App):
    def compose(self) -> ComposeResult:
        yield TerminalView()


async def run(total: int) -> None:
    data = synthetic(total)
    chunks = [data[i:i + CHUNK] for i in range(0, len(data), CHUNK)]
    app = BenchApp()
    async with app.run_test(size=(120, 40)) as pilot:
        term = app.query_one(TerminalView)
        await pilot.pause()
        cols, rows = term.screen_buffer.columns, term.screen_buffer.lines

        t0 = time.perf_counter()
        for c in chunks:
            term.feed(c)
        feed_s = time.perf_counter() - t0
        term.flush()

        frames = 0
        t0 = time.perf_counter()
        next_frame = t0
        for c in chunks:
            term.feed(c)
            now = time.perf_counter()
            if now >= next_frame:
                term.flush()
                for y in range(rows):
                    term.render_line(y)
                frames += 1
                next_frame = now + 1 / 30
        term.flush()
        for y in range(rows):
            term.render_line(y)
        render_s = time.perf_counter() - t0

        marker = b"\r\nEND-OF-BENCH\r\n"
        before = term.bytes_fed

        def producer() -> None:
            for c in chunks:
                term.feed_threadsafe(c)
            term.feed_threadsafe(marker)

        t0 = time.perf_counter()
        th = threading.Thread(target=producer)
        th.start()
        while not any("END-OF-BENCH" in line for line in term.display_lines) \
                or term.bytes_fed < before + len(data) + len(marker):
            await asyncio.sleep(0.005)
        threaded_s = time.perf_counter() - t0
        th.join()

    mib = total / 2**20
    print(f"TerminalView throughput, {mib:.1f} MiB synthetic ls -l output, {cols}x{rows} screen, "
          f"{os.cpu_count()} CPUs")
    print(f"  feed only      : {total / feed_s / 1e3:8.0f} KB/s")
    print(f"  feed + render  : {total / render_s / 1e3:8.0f} KB/s  ({frames} frames, "
          f"{frames / render_s:.0f} fps)")
    print(f"  threaded (app) : {total / threaded_s / 1e3:8.0f} KB/s")
    print(f"  target         : {500:8d} KB/s")


if __name__ == "__main__":
    mib = float(sys.argv[1]) if len(sys.argv) > 1 else 4.0
    asyncio.run(run(int(mib * 2**20)))
