"""Faults injected into a real libvirtd: vmtui lives, tells the user, resyncs (issue 10).

Every test here works on a private daemon (a non-root user's session libvirtd,
see tests/sessiond.py and the ``private_daemon`` fixture), never on the system
daemon that other tests and people use:

* a daemon stopped (SIGSTOP) with a call pending for longer than the call
  limit, then continued: the process lives (it used to die with SIGSEGV in
  libvirt's client), the user hears "connection lost" with the status line
  saying the same, and the list resyncs;
* a daemon killed and restarted in a loop: every time the list comes back,
  and the connections given up are released (nothing retained per reconnect);
* an event storm (hundreds of domains defined, started, undefined by a
  script): a key pressed in the middle is answered, and the list ends right.
"""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import sys
import threading
import time
import weakref
from pathlib import Path

import libvirt
import pytest

from tests import guest
from tests.conftest import wait_for
from tests.notes import Notes
from tests.ptyterm import PtyTerminal
from tests.real.conftest import NAME_PREFIX
from vmtui.core import heap
from vmtui.core.config import Config
from vmtui.core.connection.service import ConnState, ConnectionChanged, LibvirtService
from vmtui.ui.app import VmtuiApp

pytestmark = pytest.mark.real

ROOT = Path(__file__).resolve().parent.parent.parent


def unique(tag: str) -> str:
    return f"{NAME_PREFIX}{os.getpid()}-{tag}-{os.urandom(2).hex()}"


def define_tiny(uri: str, files: guest.GuestFiles, name: str) -> tuple[str, str]:
    conn = libvirt.open(uri)
    try:
        dom = conn.defineXML(guest.domain_xml(name, files.kernel, files.initrd, memory_mib=64))
        return dom.UUIDString(), dom.name()
    finally:
        conn.close()


def domstate(uri: str, name: str) -> int:
    conn = libvirt.open(uri)
    try:
        return conn.lookupByName(name).state()[0]
    finally:
        conn.close()


def status_text(app: VmtuiApp) -> str:
    return str(app.list_screen.query_one("#status").content)


async def test_hung_daemon_with_a_pending_start_never_kills_the_process(private_daemon, tiny_guest_files):
    """SIGSTOP the daemon, press s, wait past the call limit, SIGCONT (the
    issue's repro, which crashed 4 times out of 4)."""
    uuid, name = define_tiny(private_daemon.uri, tiny_guest_files, unique("hang"))
    service = LibvirtService(private_daemon.uri, stats_interval=1.0, hang_limit=5.0, probe_interval=1.0,
                             slow_timeout=15.0, timeout=10.0)
    app = VmtuiApp(service, Config())
    notes = Notes()
    async with app.run_test(size=(120, 40), message_hook=notes.hook) as pilot:
        await wait_for(lambda: app.ready and uuid in app.table.rows, timeout=60, what="guest listed")
        app.table.select(uuid)
        await pilot.pause()
        private_daemon.signal(signal.SIGSTOP)
        stopped_at = time.monotonic()
        try:
            await pilot.press("s")
            # the pending call (the start, or its check of linked clones) fails as
            # soon as the connection is declared lost, not when its 15 s limit runs
            # out, and the status line agrees
            def failure() -> str | None:
                return next((n for n in notes.messages if n.startswith("Cannot ") and f"domain '{name}'" in n), None)

            await wait_for(failure, timeout=60, what="the start's failure told")
            assert f"domain '{name}': connection to {private_daemon.uri} lost" in failure()
            assert "did not answer" in failure()
            assert service.state is not ConnState.CONNECTED
            assert "disconnected" in status_text(app)
            # stay stopped well past the call limit (15 s), with reconnects trying meanwhile
            await wait_for(lambda: time.monotonic() - stopped_at > 25, timeout=60, interval=0.5,
                           what="past the call limit")
        finally:
            private_daemon.signal(signal.SIGCONT)
        await wait_for(lambda: service.state is ConnState.CONNECTED, timeout=120, what="reconnected")
        # the list tells the truth: the start may or may not have happened in the daemon
        truth = await asyncio.to_thread(domstate, private_daemon.uri, name)
        await wait_for(lambda: app.table.domains.get(uuid) is not None
                       and app.table.domains[uuid].state_code == truth, timeout=60, what="row resynced")
        assert "connected" in status_text(app) and "disconnected" not in status_text(app)
        # and the app still answers keys
        await pilot.press("question_mark")
        await wait_for(lambda: type(app.screen).__name__ == "HelpScreen", timeout=30, what="help opened")
        await pilot.press("escape")


async def test_daemon_killed_and_restarted_in_a_loop(private_daemon, tiny_guest_files):
    """Each time the list comes back (the guest kept running while its
    libvirtd was away) and events flow; the connections given up are
    released (no link, thread or callback retained per reconnect)."""
    uuid, name = define_tiny(private_daemon.uri, tiny_guest_files, unique("restart"))
    await asyncio.to_thread(private_daemon.virsh, "start", name)
    service = LibvirtService(private_daemon.uri, stats_interval=1.0)
    history: list[str] = []  # the connection's states, for a failure's message
    service.subscribe(lambda m: isinstance(m, ConnectionChanged)
                      and history.append(f"{time.monotonic():.1f} {m.state.name} {m.message}"))
    app = VmtuiApp(service, Config())
    links: list[weakref.ref] = []
    notes = Notes()
    async with app.run_test(size=(120, 40), message_hook=notes.hook) as pilot:
        await wait_for(lambda: app.ready and uuid in app.table.rows, timeout=60, what="guest listed")
        threads_before = threading.active_count()
        for round_ in range(4):
            links.append(weakref.ref(service._link))
            private_daemon.signal(signal.SIGKILL)
            await wait_for(lambda: service.state is not ConnState.CONNECTED, timeout=60, what="loss noticed")
            await asyncio.to_thread(private_daemon.start)
            try:
                await wait_for(lambda: service.state is ConnState.CONNECTED and service._link is not None
                               and all(service._link is not r() for r in links), timeout=120, what="reconnected")
            except AssertionError as err:
                raise AssertionError(f"{err} (round {round_}); states:\n" + "\n".join(history)) from None
            await wait_for(lambda: uuid in app.table.rows and app.table.domains[uuid].is_running, timeout=60,
                           what="list back, the guest still running")
        # events flow on the last connection
        await asyncio.to_thread(private_daemon.virsh, "destroy", name)
        await wait_for(lambda: not app.table.domains[uuid].is_active, timeout=60, what="destroy seen")
        # what the old connections held is gone. A garbage cycle that was
        # still alive at the app's last heap.settle (a cancelled worker's
        # traceback, whose frames name a link) sits frozen after it until the
        # next settle unfreezes and collects; the app may settle again at any
        # time (after churn). heap.release before each collection does what
        # that next settle would. A link that a live object still references
        # survives it, and fails the test.
        for _ in range(50):
            heap.release()
            gc.collect()
            if all(r() is None for r in links):
                break
            await asyncio.sleep(0.1)
        assert [r() for r in links] == [None] * len(links)
        assert threading.active_count() <= threads_before + 4
        assert notes.has("connected again")
        await pilot.press("question_mark")
        await wait_for(lambda: type(app.screen).__name__ == "HelpScreen", timeout=30, what="help opened")


def _storm(uri: str, files: guest.GuestFiles, prefix: str, defines: int, starts: int, undefines: int,
           done: threading.Event, errors: list[str]) -> None:
    """As fast as a script can: define, start/destroy, undefine."""
    try:
        conn = libvirt.open(uri)
        try:
            doms = [conn.defineXML(guest.domain_xml(f"{prefix}{i:03d}", files.kernel, files.initrd, memory_mib=32))
                    for i in range(defines)]
            for dom in doms[:starts]:
                dom.create()
                dom.destroy()
            for dom in doms[:undefines]:
                dom.undefine()
        finally:
            conn.close()
    except Exception as exc:  # noqa: BLE001 - reported by the test
        errors.append(f"{type(exc).__name__}: {exc}")
    finally:
        done.set()


def test_event_storm_keeps_the_screen_answering(private_daemon, tiny_guest_files, tmp_path):
    """vmtui in a real terminal while a script floods the daemon with events:
    ? opens the help and Esc closes it during the storm, and afterwards the
    status line counts exactly the domains the daemon has."""
    prefix = unique("storm") + "-"
    env = {"XDG_STATE_HOME": str(tmp_path / "state"), "XDG_CONFIG_HOME": str(tmp_path / "config")}
    term = PtyTerminal([sys.executable, "-m", "vmtui", "-c", private_daemon.uri], cols=120, rows=40,
                       env=env, cwd=str(ROOT))
    done, errors = threading.Event(), []
    try:
        term.wait_for("connected", timeout=60)
        storm = threading.Thread(target=_storm, args=(private_daemon.uri, tiny_guest_files, prefix, 150, 20, 100,
                                                      done, errors), daemon=True)
        storm.start()
        term.wait_for(prefix, timeout=120)  # the storm is on screen
        answered = 0
        while not done.is_set() or answered == 0:
            term.send("?")
            term.wait_for("Help — keys", timeout=60)
            term.send("\x1b")
            term.wait_for(lambda t: "Help — keys" not in t, timeout=60)
            answered += 1
        storm.join(120)
        assert not errors, errors
        conn = libvirt.open(private_daemon.uri)
        try:
            doms = conn.listAllDomains()
            running = sum(1 for d in doms if d.isActive())
            total = len(doms)
        finally:
            conn.close()
        shut_off = total - running
        term.wait_for(f"{running} running, 0 paused, {shut_off} shut off", timeout=120)
        assert term.alive()
    finally:
        term.close()
