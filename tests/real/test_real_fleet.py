"""Several hosts against two real libvirt daemons on this machine (issue 15).

Hosts A and B are the session daemons of two users of ours (``vmtui-h2``,
``vmtui-h3``: distinct host UUIDs, see tests/sessiond.py and the
``two_daemons`` fixture); root reaches both over their unix sockets. The
tiny TCG test guest (kernel + initramfs readable by both users) migrates
live between them over ``tcp://127.0.0.1``.

* the fleet list shows both hosts' VMs and follows events from both;
* a VM started on A moves to B through ``M`` and through ``vmtui migrate``,
  and its serial console answers on B afterwards;
* a copy-storage migration of a VM with a qcow2 disk: the disk and what the
  guest wrote to it arrive in B's pool;
* a refused migration (the name exists on B) leaves the VM running on A;
* one daemon killed while the other keeps updating;
* bulk start and stop of 10 marked VMs across both hosts.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import libvirt
import pytest

from tests import guest
from tests.guest import PROMPT, READY_BANNER
from tests.notes import Notes
from tests.real.conftest import FLEET_USERS, NAME_PREFIX, fleet_pool
from vmtui.core.config import Config
from vmtui.core.connection.service import ConnState, LibvirtService
from vmtui.core.fleet.model import key_of
from vmtui.core.migrate import MigrationOptions
from vmtui.core.migrate.job import migrate
from vmtui.ui.app import VmtuiApp
from vmtui.ui.console_screen import CONNECTED, ConsoleScreen

pytestmark = pytest.mark.real

ROOT = Path(__file__).resolve().parent.parent.parent
BOOT = 180.0  # s: a TCG guest on a busy 2-core machine
_KEYS = {" ": "space", "-": "minus", "$": "dollar_sign", ";": "semicolon", "(": "left_parenthesis",
         ")": "right_parenthesis", "+": "plus", "*": "asterisk"}


def unique(tag: str) -> str:
    return f"{NAME_PREFIX}{os.getpid()}-{tag}-{os.urandom(2).hex()}"


def define(uri: str, files: guest.GuestFiles, name: str, *, start: bool = False, **kw) -> str:
    conn = libvirt.open(uri)
    try:
        dom = conn.defineXML(guest.domain_xml(name, files.kernel, files.initrd, memory_mib=kw.pop("memory_mib", 128),
                                              **kw))
        if start:
            dom.create()
        return dom.UUIDString()
    finally:
        conn.close()


def state_on(uri: str, name: str) -> int | None:
    """The domain's state on that host; None when it has no such domain."""
    conn = libvirt.open(uri)
    try:
        try:
            return conn.lookupByName(name).state()[0]
        except libvirt.libvirtError:
            return None
    finally:
        conn.close()


def boot_and_prompt(uri: str, name: str) -> None:
    """Wait until the guest's shell answers on its serial console."""
    conn = libvirt.open(uri)
    try:
        con = guest.SerialConsole(conn.lookupByName(name))
        try:
            con.wait_ready(BOOT)
            assert con.run("echo up-$((1+1))") == "up-2"
        finally:
            con.close()
    finally:
        conn.close()


def console_run(uri: str, name: str, command: str) -> str:
    conn = libvirt.open(uri)
    try:
        con = guest.SerialConsole(conn.lookupByName(name), force=True)
        try:
            con.send("\n")
            con.read_until(PROMPT, BOOT)
            return con.run(command, timeout=60)
        finally:
            con.close()
    finally:
        conn.close()


def fleet(a, b, **kw) -> VmtuiApp:
    sa = LibvirtService(a.uri, stats_interval=kw.get("stats", 3600), name="host-a", hang_limit=10.0,
                        probe_interval=1.0)
    sb = LibvirtService(b.uri, stats_interval=kw.get("stats", 3600), name="host-b", hang_limit=10.0,
                        probe_interval=1.0)
    return VmtuiApp([sa, sb], Config())


async def wait(pilot, pred, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out after {timeout} s waiting for {what}"
        await pilot.pause(0.1)


def status(app: VmtuiApp) -> str:
    return str(app.list_screen.query_one("#status").content)


async def test_fleet_list_shows_both_hosts_and_follows_events_from_both(two_daemons, tiny_guest_files):
    a, b = two_daemons
    one, two, three = unique("a1"), unique("a2"), unique("b1")
    ua1, ua2 = define(a.uri, tiny_guest_files, one), define(a.uri, tiny_guest_files, two)
    ub1 = define(b.uri, tiny_guest_files, three)
    app = fleet(a, b)
    async with app.run_test(size=(140, 40)) as pilot:
        t = app.table
        await wait(pilot, lambda: all(k in t.rows for k in (key_of("host-a", ua1), key_of("host-a", ua2),
                                                             key_of("host-b", ub1))), 60, "both hosts' VMs")
        assert t.domains[key_of("host-b", ub1)].host == "host-b" and "host" in t.column_keys
        assert "host-a connected" in status(app) and "host-b connected" in status(app)
        # events: a start on B and on A, made behind vmtui's back
        await asyncio.to_thread(b.virsh, "start", three)
        await asyncio.to_thread(a.virsh, "start", two)
        await wait(pilot, lambda: t.domains[key_of("host-b", ub1)].is_running
                   and t.domains[key_of("host-a", ua2)].is_running, 60, "started on both")
        await asyncio.to_thread(b.virsh, "destroy", three)
        await asyncio.to_thread(a.virsh, "undefine", one)
        await wait(pilot, lambda: t.domains[key_of("host-b", ub1)].is_shut_off
                   and key_of("host-a", ua1) not in t.rows, 60, "stopped on B, gone from A")


async def _open_console(app, pilot, key: str):
    app.table.select(key)
    await pilot.pause()
    await pilot.press("c")

    def shown():
        scr = app.screen
        return (isinstance(scr, ConsoleScreen) and scr.current is not None and scr.current.state == CONNECTED
                and scr.current.manager is app.slots["host-b"].consoles)

    await wait(pilot, shown, 60, "console on B")
    return app.screen.current


async def _console_line(pilot, pane, line: str, expect: str) -> None:
    await pilot.press(*[_KEYS.get(c, c) for c in line], "enter")
    rx = re.compile(expect, re.M)

    def seen():
        pane.terminal.flush()
        return rx.search(pane.terminal.text())

    await wait(pilot, seen, 60, f"{expect!r} on the console")


async def test_a_vm_moves_from_a_to_b_with_M_and_its_console_answers_on_b(two_daemons, tiny_guest_files):
    a, b = two_daemons
    name = unique("mig")
    uuid = define(a.uri, tiny_guest_files, name, start=True)
    await asyncio.to_thread(boot_and_prompt, a.uri, name)
    app = fleet(a, b)
    notes = Notes()
    async with app.run_test(size=(140, 45), message_hook=notes.hook) as pilot:
        t = app.table
        await wait(pilot, lambda: key_of("host-a", uuid) in t.rows and t.domains[key_of("host-a", uuid)].is_running,
                   60, "the VM on A")
        t.select(key_of("host-a", uuid))
        await pilot.pause()
        await pilot.press("M")
        await wait(pilot, lambda: type(app.screen).__name__ == "MigrateScreen", 10, "migrate dialog")
        assert str(app.screen.query_one("#dest").value) == "host-b"
        app.screen.query_one("#ok").press()
        await wait(pilot, lambda: notes.has(f"Migrated '{name}' (live) from host-a to host-b"), 180, "migrated")
        # the row moved to B, from the events of both hosts
        await wait(pilot, lambda: key_of("host-b", uuid) in t.rows and key_of("host-a", uuid) not in t.rows,
                   60, "the row on B")
        assert t.domains[key_of("host-b", uuid)].is_running
        assert await asyncio.to_thread(state_on, a.uri, name) is None  # undefined on the source
        conn = libvirt.open(b.uri)
        try:
            assert conn.lookupByName(name).isPersistent()  # defined on the destination
        finally:
            conn.close()
        await wait(pilot, lambda: t.selected_key == key_of("host-b", uuid), 10, "selected on B")
        pane = await _open_console(app, pilot, key_of("host-b", uuid))
        assert pane.host == "host-b"
        await _console_line(pilot, pane, "echo on-b-$((2+3))", r"^on-b-5\s*$")


async def test_vmtui_migrate_moves_a_running_vm_and_its_console_answers_on_b(two_daemons, tiny_guest_files):
    a, b = two_daemons
    name = unique("cli")
    define(a.uri, tiny_guest_files, name, start=True)
    await asyncio.to_thread(boot_and_prompt, a.uri, name)
    env = dict(os.environ, TERM="dumb")
    env.pop("LIBVIRT_DEFAULT_URI", None)
    out = await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "vmtui", "migrate", name, "--to", b.uri,
                                                   "-c", a.uri, "--config", "/dev/null/none.yaml"],
                                  capture_output=True, text=True, env=env, timeout=300, cwd=ROOT,
                                  stdin=subprocess.DEVNULL)
    assert out.returncode == 0, out.stderr
    assert re.match(rf"Migrated '{re.escape(name)}' \(live\) from vmtui-h2 to vmtui-h3 in [\d.]+ s$",
                    out.stdout.strip()), out.stdout
    assert f"Migrating '{name}' (live) from vmtui-h2 to vmtui-h3..." in out.stderr
    assert await asyncio.to_thread(state_on, a.uri, name) is None
    assert await asyncio.to_thread(state_on, b.uri, name) == libvirt.VIR_DOMAIN_RUNNING
    assert await asyncio.to_thread(console_run, b.uri, name, "echo cli-$((3+4))") == "cli-7"


async def test_copy_storage_migration_of_a_vm_with_a_qcow2_disk(two_daemons, tiny_guest_files):
    a, b = two_daemons
    pools = [await asyncio.to_thread(fleet_pool, d.uri, user) for d, user in zip((a, b), FLEET_USERS)]
    name = unique("disk")
    conn = libvirt.open(a.uri)
    try:
        pool = conn.storagePoolLookupByName(pools[0])
        vol = pool.createXML(f"<volume><name>{name}.qcow2</name><capacity unit='MiB'>64</capacity>"
                             "<target><format type='qcow2'/></target></volume>", 0)
        source = vol.path()
    finally:
        conn.close()
    disk = (f"<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='{source}'/>"
            "<target dev='vda' bus='virtio'/></disk>")
    uuid = define(a.uri, tiny_guest_files, name, start=True, extra_devices_xml=disk)
    await asyncio.to_thread(boot_and_prompt, a.uri, name)
    mark = f"FLEET-{os.urandom(3).hex()}"
    await asyncio.to_thread(console_run, a.uri, name, f"echo {mark} | dd of=/dev/vda conv=fsync 2>/dev/null; sync")

    sa = LibvirtService(a.uri, stats_interval=3600, reconnect=False, name="host-a")
    sb = LibvirtService(b.uri, stats_interval=3600, reconnect=False, name="host-b")
    await asyncio.gather(sa.connect(), sb.connect())
    try:
        seen = []
        result = await migrate(sa, sb, uuid, MigrationOptions(copy_storage=True), progress=seen.append)
    finally:
        await asyncio.gather(sa.close(), sb.close())
    dest_dir = ET.fromstring(libvirt.open(b.uri).storagePoolLookupByName(pools[1]).XMLDesc(0)).findtext("target/path")
    expect = f"{dest_dir}/{name}.qcow2"
    assert [(c.target, c.dest) for c in result.copied] == [("vda", expect)]
    conn = libvirt.open(b.uri)
    try:
        dom = conn.lookupByName(name)
        assert dom.state()[0] == libvirt.VIR_DOMAIN_RUNNING
        live = ET.fromstring(dom.XMLDesc(0)).find("devices/disk/source").get("file")
        saved = ET.fromstring(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)).find("devices/disk/source").get("file")
        assert live == saved == expect
        pool = conn.storagePoolLookupByName(pools[1])
        pool.refresh(0)
        assert pool.storageVolLookupByName(f"{name}.qcow2").path() == expect
        fmt = ET.fromstring(pool.storageVolLookupByName(f"{name}.qcow2").XMLDesc(0)).find("target/format").get("type")
        assert fmt == "qcow2"
    finally:
        conn.close()
    # what the guest wrote on A is on B's copy
    got = await asyncio.to_thread(console_run, b.uri, name, f"dd if=/dev/vda bs={len(mark)} count=1 2>/dev/null")
    assert got == mark
    assert await asyncio.to_thread(state_on, a.uri, name) is None


async def test_a_refused_migration_leaves_the_vm_running_on_a(two_daemons, tiny_guest_files):
    a, b = two_daemons
    name = unique("taken")
    uuid = define(a.uri, tiny_guest_files, name, start=True)
    other = define(b.uri, tiny_guest_files, name)  # the same name, another VM
    app = fleet(a, b)
    notes = Notes()
    async with app.run_test(size=(140, 45), message_hook=notes.hook) as pilot:
        t = app.table
        await wait(pilot, lambda: key_of("host-a", uuid) in t.rows and key_of("host-b", other) in t.rows, 60,
                   "both listed")
        t.select(key_of("host-a", uuid))
        await pilot.pause()
        await pilot.press("M")
        await wait(pilot, lambda: type(app.screen).__name__ == "MigrateScreen", 10, "migrate dialog")
        app.screen.query_one("#ok").press()
        await wait(pilot, lambda: notes.has(f"Cannot migrate '{name}' to host-b"), 60, "refused")
        assert f"A VM named '{name}' already exists on host-b (UUID {other})" in notes.find("Cannot migrate")
    assert await asyncio.to_thread(state_on, a.uri, name) == libvirt.VIR_DOMAIN_RUNNING
    assert await asyncio.to_thread(state_on, b.uri, name) == libvirt.VIR_DOMAIN_SHUTOFF
    # the command line says the same and leaves it too
    env = dict(os.environ, TERM="dumb")
    out = await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "vmtui", "migrate", name, "--to", b.uri,
                                                   "-c", a.uri], capture_output=True, text=True, env=env,
                                  timeout=120, cwd=ROOT, stdin=subprocess.DEVNULL)
    assert out.returncode == 1 and f"already exists on vmtui-h3 (UUID {other})" in out.stderr
    assert f"Nothing was changed: '{name}' stays on vmtui-h2." in out.stderr
    assert await asyncio.to_thread(state_on, a.uri, name) == libvirt.VIR_DOMAIN_RUNNING


async def test_one_daemon_killed_while_the_other_keeps_updating(two_daemons, tiny_guest_files):
    a, b = two_daemons
    na, nb = unique("alive"), unique("dies")
    ua, ub = define(a.uri, tiny_guest_files, na), define(b.uri, tiny_guest_files, nb)
    app = fleet(a, b)
    app.slots["host-a"].service.reconnect_enabled = True
    async with app.run_test(size=(140, 40)) as pilot:
        t = app.table
        await wait(pilot, lambda: key_of("host-a", ua) in t.rows and key_of("host-b", ub) in t.rows, 60, "listed")
        await asyncio.to_thread(b.stop)
        await wait(pilot, lambda: "host-b retrying" in status(app), 60, "B retrying")
        assert "host-a connected" in status(app)
        # A goes on: an event there still reaches the list
        await asyncio.to_thread(a.virsh, "start", na)
        await wait(pilot, lambda: t.domains[key_of("host-a", ua)].is_running, 60, "A's VM running")
        assert app.slots["host-b"].service.state is ConnState.DISCONNECTED
        # B comes back by itself
        await asyncio.to_thread(b.start)
        await wait(pilot, lambda: "host-b connected" in status(app), 120, "B connected again")
        await wait(pilot, lambda: key_of("host-b", ub) in t.rows, 30, "B's VM listed again")


async def test_bulk_start_and_stop_of_10_marked_vms_across_both_hosts(two_daemons, tiny_guest_files):
    a, b = two_daemons
    names = {a: [unique(f"bulk{i}") for i in range(5)], b: [unique(f"bulk{i}") for i in range(5, 10)]}
    keys = []
    for daemon, host in ((a, "host-a"), (b, "host-b")):
        for n in names[daemon]:
            keys.append(key_of(host, define(daemon.uri, tiny_guest_files, n)))
    app = fleet(a, b)
    notes = Notes()
    async with app.run_test(size=(140, 45), message_hook=notes.hook) as pilot:
        t = app.table
        await wait(pilot, lambda: all(k in t.rows for k in keys), 60, "the 10 VMs listed")
        await pilot.press("slash", *f"{NAME_PREFIX}{os.getpid()}-bulk")
        await wait(pilot, lambda: len(t.visible_keys()) == 10, 10, "filtered to the 10")
        await pilot.press("enter", "asterisk")
        assert sorted(app.marks) == sorted(keys)
        for verb, key, want in (("Start", "s", libvirt.VIR_DOMAIN_RUNNING),
                                ("Force off", "F", libvirt.VIR_DOMAIN_SHUTOFF)):
            await pilot.press("b")
            await wait(pilot, lambda: type(app.screen).__name__ == "BulkMenu", 10, "menu")
            await pilot.press(key)
            await wait(pilot, lambda: type(app.screen).__name__ == "BulkConfirm", 10, "confirmation")
            body = str(app.screen.query_one("#bulk-list Static").content)
            assert all(n in body for ns in names.values() for n in ns)
            await pilot.press("y")
            await wait(pilot, lambda: notes.has(f"{verb}: 10 of 10 done."), 240, f"{verb} done")
            for daemon, ns in names.items():
                for n in ns:
                    assert await asyncio.to_thread(state_on, daemon.uri, n) == want, (verb, n)
            await wait(pilot, lambda: all(t.domains[k].state_code == want for k in keys), 60, f"rows after {verb}")
            await pilot.press("escape")
            await wait(pilot, lambda: type(app.screen).__name__ == "DomainListScreen", 10, "back to the list")


async def test_a_cancelled_migration_leaves_the_vm_running_on_a(two_daemons, tiny_guest_files):
    """At 1 MiB/s the memory takes minutes: the first progress report
    cancels it (abortJob), and the VM goes on running on A."""
    from vmtui.core.migrate.job import MigrationCancelled

    a, b = two_daemons
    name = unique("stop")
    uuid = define(a.uri, tiny_guest_files, name, start=True)
    sa = LibvirtService(a.uri, stats_interval=3600, reconnect=False, name="host-a")
    sb = LibvirtService(b.uri, stats_interval=3600, reconnect=False, name="host-b")
    await asyncio.gather(sa.connect(), sb.connect())
    cancel = asyncio.Event()
    seen = []

    def progress(p):
        seen.append(p)
        if p.data_total:
            cancel.set()

    try:
        with pytest.raises(MigrationCancelled) as exc:
            await migrate(sa, sb, uuid, MigrationOptions(bandwidth_mib=1), progress=progress, cancel=cancel)
    finally:
        await asyncio.gather(sa.close(), sb.close())
    assert f"'{name}' is running on host-a, as before." in exc.value.message
    assert seen and seen[-1].data_total and seen[-1].data_remaining
    assert await asyncio.to_thread(state_on, a.uri, name) == libvirt.VIR_DOMAIN_RUNNING
    assert await asyncio.to_thread(state_on, b.uri, name) is None
