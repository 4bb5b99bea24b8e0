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
* typing under load -- a thread floods the widget with output while keys are
                    pressed through Textual (Pilot): every key must reach
                    on_input, in order (keys pressed vs bytes sent)

    .venv/bin/python bench/bench_console.py --guest [KEYS]

boots the tiny test guest (tests/guest.py, qemu:///system, TCG) and proves the
same end to end: the guest floods its serial console (``yes | head -c``)
while KEYS random characters are typed through the widget into a raw-mode
``dd`` in the guest; the guest reports how many bytes it got and their MD5.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from textual import events  # noqa: E402
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


# --------------------------------------------------------------------------
# typed input under heavy output

KEY_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"
KEY_RATE = 200  # keys per second: a very fast typist, or a paste typed out


async def type_keys(app: App, text: str, rate: float) -> None:
    """Key events as the terminal driver delivers them (App.on_event: priority
    bindings, then the focused widget), at ``rate`` keys per second, without
    waiting for the screen to go idle in between (Pilot.press would)."""
    t0 = time.perf_counter()
    for i, ch in enumerate(text):
        app.post_message(events.Key(ch, ch))
        delay = t0 + (i + 1) / rate - time.perf_counter()
        await asyncio.sleep(max(0.0, delay))


class TypingApp(App):
    def __init__(self) -> None:
        super().__init__()
        self.sent = bytearray()

    def compose(self) -> ComposeResult:
        yield TerminalView(on_input=self.sent.extend)

    def on_mount(self) -> None:
        self.query_one(TerminalView).focus()


async def typing_under_load(keys: int = 2000) -> None:
    """Keys pressed while another thread floods the widget: none may be lost."""
    app = TypingApp()
    typed = "".join(random.Random(7).choice(KEY_ALPHABET) for _ in range(keys))
    flood = synthetic(1 << 20, seed=3)
    chunks = [flood[i:i + CHUNK] for i in range(0, len(flood), CHUNK)]
    stop = threading.Event()
    async with app.run_test(size=(120, 40)) as pilot:
        term = app.query_one(TerminalView)
        await pilot.pause()

        def producer() -> None:
            while not stop.is_set():
                for c in chunks:
                    term.feed_threadsafe(c)
                    if stop.is_set():
                        return
                    time.sleep(0.0005)  # ~8 MB/s offered: far above what the widget renders

        th = threading.Thread(target=producer, daemon=True)
        fed0 = term.bytes_fed
        t0 = time.perf_counter()
        th.start()
        await type_keys(app, typed, KEY_RATE)
        while len(app.sent) < keys and time.perf_counter() - t0 < 120:
            await asyncio.sleep(0.01)
        elapsed = time.perf_counter() - t0
        stop.set()
        th.join()
        await pilot.pause()
        rendered = term.bytes_fed - fed0
    ok = bytes(app.sent) == typed.encode()
    print(f"Typing under load (widget only): {keys} keys pressed, {len(app.sent)} bytes sent, "
          f"{'all in order' if ok else 'MISMATCH'}; {keys / elapsed:.0f} keys/s while "
          f"{rendered / elapsed / 1e3:.0f} KB/s of output was emulated")
    if not ok:
        raise SystemExit("typed input was dropped or reordered")


async def guest_typing(keys: int = 500) -> None:
    """End to end: the tiny guest floods its console while we type into it."""
    import re

    import libvirt

    from tests import guest
    from vmtui.core.consoles import serial as C
    from vmtui.core.connection.service import LibvirtService

    files = guest.tiny_guest_files()
    name = f"vmtui-test-{os.getpid()}-bench-console"
    conn = libvirt.open("qemu:///system")
    dom = conn.defineXML(guest.domain_xml(name, files.kernel, files.initrd))
    svc = LibvirtService("qemu:///system", stats_interval=3600, reconnect=False)
    try:
        await svc.connect()
        dom.create()
        session = await C.ConsoleSession.open(svc, dom.UUIDString())
        app = TypingApp()
        typed = "".join(random.Random(11).choice(KEY_ALPHABET) for _ in range(keys))
        want = hashlib.md5(typed.encode()).hexdigest()
        async with app.run_test(size=(120, 40)) as pilot:
            term = app.query_one(TerminalView)
            term.on_input = lambda b: (app.sent.extend(b), session.send(b))
            session.attach(term.feed_threadsafe)

            async def wait_text(rx: str, timeout: float) -> re.Match:
                end = time.monotonic() + timeout
                while True:
                    m = re.search(rx.encode(), session.scrollback.snapshot())
                    if m:
                        return m
                    if time.monotonic() > end:
                        raise SystemExit(f"guest: no {rx!r} within {timeout} s")
                    await pilot.pause(0.05)

            await wait_text(re.escape(guest.PROMPT), 180)
            line = "vmtui-bench 0123456789 abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ"
            session.send((f"yes '{line}' | head -c 4000000 & stty raw -echo; "
                          f"dd bs=1 count={keys} 2>/dev/null > /tmp/in; stty sane; "
                          "echo GOT $(md5sum < /tmp/in) $(wc -c < /tmp/in) END\r").encode())
            await wait_text(re.escape(line) + r"\r?\n" + re.escape(line), 60)
            in0, fed0, t0 = session.bytes_in, term.bytes_fed, time.perf_counter()
            await type_keys(app, typed, KEY_RATE)
            typing_s = time.perf_counter() - t0
            out_during = session.bytes_in - in0
            m = await wait_text(r"GOT ([0-9a-f]{32})\s+-?\s*(\d+) END", 300)
            total_s = time.perf_counter() - t0
            got_md5, got_n = m.group(1).decode(), int(m.group(2))
            fed = term.bytes_fed - fed0
        session.close()
    finally:
        await svc.close()
        guest.destroy_and_undefine(conn, name)
        conn.close()
    # pyte answers the shell's cursor-position queries (ESC[6n) on the same path
    key_bytes = re.sub(rb"\x1b\[\d+;\d+R", b"", bytes(app.sent))
    ok = got_n == keys and got_md5 == want and key_bytes == typed.encode()
    print(f"Typing under load (real guest, TCG): {keys} keys pressed, {len(key_bytes)} key bytes sent "
          f"(+{len(app.sent) - len(key_bytes)} bytes of terminal replies), "
          f"guest received {got_n} bytes, MD5 {'matches' if got_md5 == want else 'DIFFERS'}")
    print(f"  while typing ({typing_s:.1f} s): guest output {out_during / typing_s / 1e3:.0f} KB/s, "
          f"{keys / typing_s:.0f} keys/s; widget emulated {fed / total_s / 1e3:.0f} KB/s until the reply")
    if not ok:
        raise SystemExit("typed input was dropped or changed on the way to the guest")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--guest":
        asyncio.run(guest_typing(int(sys.argv[2]) if len(sys.argv) > 2 else 500))
    else:
        mib = float(sys.argv[1]) if len(sys.argv) > 1 else 4.0
        asyncio.run(run(int(mib * 2**20)))
        sys.stdout.flush()
        asyncio.run(typing_under_load())
