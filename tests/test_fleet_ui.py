"""The fleet in the UI, on two test-driver hosts (issue 15): one list with a
Host column, events from both, actions on the selected VM's own host, marks
that survive filtering, bulk actions, the migration dialog's checks, the
connections screen, a host that cannot be reached."""

from __future__ import annotations

from vmtui.core.config import Config
from vmtui.core.connection.service import ConnState, LibvirtService
from vmtui.core.errors import VmtuiError
from vmtui.core.fleet.model import key_of
from vmtui.ui.app import VmtuiApp

from .conftest import ALPHA, BRAVO, DATA, DELTA, ECHO, SMALL_HOST, host_uri, press_button, wait_for
from .notes import Notes

FLEET_B = DATA / "host-fleet-b.xml"
B_ALPHA = "44444444-4444-4444-8444-000000000001"
FOXTROT = "44444444-4444-4444-8444-000000000002"
GOLF = "44444444-4444-4444-8444-000000000003"
HOTEL = "44444444-4444-4444-8444-000000000004"


def fleet_app(config: Config | None = None, *, extra: list[LibvirtService] = ()) -> VmtuiApp:
    a = LibvirtService(host_uri(SMALL_HOST), stats_interval=3600, reconnect=False, name="small")
    b = LibvirtService(host_uri(FLEET_B), stats_interval=3600, reconnect=False, name="lab-b")
    return VmtuiApp([a, b, *extra], config or Config())


def svc(app: VmtuiApp, name: str) -> LibvirtService:
    return app.slots[name].service


def status(app: VmtuiApp) -> str:
    return str(app.list_screen.query_one("#status").content)


async def loaded(app: VmtuiApp, rows: int = 9) -> None:
    await wait_for(lambda: app.ready and app.table.row_count == rows, what="both hosts listed")
    for slot in app.slots.values():
        await slot.service.wait_loaded()


async def test_one_list_for_two_hosts_follows_events_from_both():
    app = fleet_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(app)
        t = app.table
        assert t.column_keys[:2] == ["host", "name"]
        # the same name on two hosts: two rows, keyed by host and UUID
        assert key_of("small", ALPHA) in t.rows and key_of("lab-b", B_ALPHA) in t.rows
        assert t.domains[key_of("lab-b", B_ALPHA)].title == "Alpha on the second host"
        text = status(app)
        assert "small connected" in text and "lab-b connected" in text
        assert "4 running, 2 paused, 3 shut off" in text
        # events from both hosts
        await svc(app, "small").pause(DELTA)
        await svc(app, "lab-b").start(GOLF)
        await wait_for(lambda: t.domains[key_of("small", DELTA)].is_paused
                       and t.domains[key_of("lab-b", GOLF)].is_running, what="both updated")
        await pilot.pause()
        assert "4 running, 3 paused, 2 shut off" in status(app)
        # / matches the host's name
        await pilot.press("slash", *"lab-b")
        await wait_for(lambda: len(t.visible_keys()) == 4, what="filtered by host")
        assert {t.domains[k].host for k in t.visible_keys()} == {"lab-b"}
        await pilot.press("escape")
        await wait_for(lambda: t.row_count == 9, what="filter cleared")
        # grouped by host: small's rows together, in name order within
        await pilot.press("v")
        await pilot.pause()
        assert [t.domains[k].host for k in t.visible_keys()] == ["lab-b"] * 4 + ["small"] * 5
        assert [t.domains[k].name for k in t.visible_keys()][:4] == ["alpha", "foxtrot", "golf", "hotel"]


async def test_each_action_acts_on_the_selected_vm_of_its_own_host():
    app = fleet_app()
    notes = Notes()
    async with app.run_test(size=(120, 40), message_hook=notes.hook) as pilot:
        await loaded(app)
        t = app.table
        # alpha on lab-b: pausing it leaves small's alpha (another VM, same name) running
        t.select(key_of("lab-b", B_ALPHA))
        await pilot.pause()
        assert app.service is svc(app, "lab-b")
        await pilot.press("p")
        await wait_for(lambda: svc(app, "lab-b").domains[B_ALPHA].is_paused, what="lab-b's alpha paused")
        assert svc(app, "small").domains[ALPHA].is_running
        # golf (lab-b, shut off) starts on lab-b
        t.select(key_of("lab-b", GOLF))
        await pilot.pause()
        await pilot.press("s")
        await wait_for(lambda: svc(app, "lab-b").domains[GOLF].is_running, what="golf started")
        assert notes.has("Started 'golf'")
        # details and disks open on the row's host
        t.select(key_of("lab-b", FOXTROT))
        await pilot.pause()
        await pilot.press("d")
        await wait_for(lambda: type(app.screen).__name__ == "DisksScreen", what="disks")
        assert app.screen.service is svc(app, "lab-b") and app.screen.uuid == FOXTROT
        await pilot.press("escape")
        await pilot.pause()
        # the storage screen is the selected VM's host's
        await pilot.press("S")
        await wait_for(lambda: type(app.screen).__name__ == "StorageScreen", what="storage")
        assert app.screen.service is svc(app, "lab-b")
        await pilot.press("escape")
        await pilot.pause()
        # the console is asked of the VM's host (the test driver has no consoles: it says so)
        opened = []
        real_open = app.slots["lab-b"].consoles.open

        async def spy(uuid, **kw):
            opened.append(uuid)
            return await real_open(uuid, **kw)

        app.slots["lab-b"].consoles.open = spy
        await pilot.press("c")
        await wait_for(lambda: notes.has("Cannot open the console of domain 'foxtrot'"), what="console tried")
        assert opened == [FOXTROT]


async def test_new_vm_asks_which_host_first():
    app = fleet_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(app)
        await pilot.press("n")
        await wait_for(lambda: type(app.screen).__name__ == "HostPicker", what="host picker")
        await pilot.press("down", "enter")
        await wait_for(lambda: type(app.screen).__name__ == "NewVmWizard", what="wizard")
        assert app.screen.service is svc(app, "lab-b")


async def test_marks_survive_filtering_and_bulk_pause_across_hosts():
    app = fleet_app()
    notes = Notes()
    async with app.run_test(size=(120, 40), message_hook=notes.hook) as pilot:
        await loaded(app)
        t = app.table
        assert "mark" not in t.column_keys
        t.select(key_of("small", DELTA))
        await pilot.pause()
        await pilot.press("space")  # marks delta, goes to the next row
        assert t.selected_key == key_of("small", ECHO) and "mark" in t.column_keys
        assert str(t.get_cell(key_of("small", DELTA), "mark")) == "*"
        assert "1 marked" in status(app)
        # a filter hides the marked VM: it stays marked
        await pilot.press("slash", *"lab-b")
        await wait_for(lambda: len(t.visible_keys()) == 4, what="lab-b only")
        await pilot.press("enter")  # keep the filter, back to the list
        await pilot.press("asterisk")  # every VM shown
        assert len(app.marks) == 5 and key_of("small", DELTA) in app.marks
        await pilot.press("b")
        await wait_for(lambda: type(app.screen).__name__ == "BulkMenu", what="bulk menu")
        await pilot.press("p")
        await wait_for(lambda: type(app.screen).__name__ == "BulkConfirm", what="confirmation")
        body = str(app.screen.query_one("#bulk-list Static").content)
        # the running ones go, the others are named with why; one is hidden by the filter
        assert "delta" in body and "foxtrot" in body and "alpha" in body
        assert "golf on lab-b: shut off, not running" in body and "hotel on lab-b: paused, not running" in body
        assert "1 of the marked VMs are not shown by the filter now." in body
        await pilot.press("y")
        await wait_for(lambda: notes.has("Pause: 3 of 5 done, 2 skipped."), what="summary", timeout=15)
        assert svc(app, "small").domains[DELTA].is_paused
        assert svc(app, "lab-b").domains[FOXTROT].is_paused and svc(app, "lab-b").domains[B_ALPHA].is_paused
        assert type(app.screen).__name__ == "BulkProgressScreen"
        table = app.screen.query_one("#bulk-table")
        assert str(table.get_cell(key_of("small", DELTA), "state")) == "done"
        assert str(table.get_cell(key_of("lab-b", GOLF), "state")) == "skipped"
        await press_button(pilot, "#close")
        await wait_for(lambda: type(app.screen).__name__ == "DomainListScreen", what="list")
        # * again on the four shown unmarks them; delta stays marked
        await pilot.press("asterisk")
        assert list(app.marks) == [key_of("small", DELTA)]


async def test_bulk_failures_are_named_and_stop_nothing(monkeypatch):
    app = fleet_app()
    notes = Notes()
    async with app.run_test(size=(120, 40), message_hook=notes.hook) as pilot:
        await loaded(app)
        b = svc(app, "lab-b")
        real = b.start

        async def start(uuid):
            if uuid == GOLF:
                raise VmtuiError("start", "domain 'golf'", "not enough memory on the host")
            await real(uuid)

        monkeypatch.setattr(b, "start", start)
        for key in (key_of("small", BRAVO), key_of("lab-b", GOLF), key_of("small", ECHO)):
            app.table.select(key)
            await pilot.pause()
            await pilot.press("space")
        await pilot.press("b", "s")
        await wait_for(lambda: type(app.screen).__name__ == "BulkConfirm", what="confirmation")
        await pilot.press("y")
        await wait_for(lambda: notes.has("Start: 2 of 3 done, 1 failed."), what="summary", timeout=15)
        text = notes.find("Start: 2 of 3 done")
        assert "'golf' on lab-b: Cannot start domain 'golf': not enough memory on the host" in text
        assert notes.severity_of("Start: 2 of 3 done") == "error"
        a = svc(app, "small")
        await wait_for(lambda: a.domains[BRAVO].is_running and a.domains[ECHO].is_running, what="others started")


async def test_b_without_marks_says_what_to_do():
    app = fleet_app()
    notes = Notes()
    async with app.run_test(size=(120, 40), message_hook=notes.hook) as pilot:
        await loaded(app)
        await pilot.press("b")
        await wait_for(lambda: notes.has("No VM is marked"), what="told")
        assert type(app.screen).__name__ == "DomainListScreen"


async def test_migrate_dialog_runs_the_checks_and_a_failure_leaves_the_vm():
    app = fleet_app()
    notes = Notes()
    async with app.run_test(size=(120, 40), message_hook=notes.hook) as pilot:
        await loaded(app)
        t = app.table
        t.select(key_of("small", ALPHA))
        await pilot.pause()
        await pilot.press("M")
        await wait_for(lambda: type(app.screen).__name__ == "MigrateScreen", what="dialog")
        await press_button(pilot, "#check")
        checks = app.screen.query_one("#migrate-checks")
        await wait_for(lambda: "already exists" in str(checks.content), what="checks shown")
        assert f"A VM named 'alpha' already exists on lab-b (UUID {B_ALPHA})" in str(checks.content)
        await press_button(pilot, "#ok")
        await wait_for(lambda: notes.has("Cannot migrate 'alpha' to lab-b"), what="refused")
        assert type(app.screen).__name__ == "MigrateScreen"  # stays open, nothing started
        assert svc(app, "small").domains[ALPHA].is_running
        await pilot.press("escape")
        # delta: copy storage passes the checks; the test driver cannot migrate: the error says
        # why and that delta is still running where it was
        t.select(key_of("small", DELTA))
        await pilot.pause()
        await pilot.press("M")
        await wait_for(lambda: type(app.screen).__name__ == "MigrateScreen", what="dialog")
        app.screen.query_one("#copy-storage").value = True
        app.screen.query_one("#bandwidth").value = "fast"
        await press_button(pilot, "#ok")
        await wait_for(lambda: "whole number" in str(app.screen.query_one("#err-bandwidth").content),
                       what="field error")
        app.screen.query_one("#bandwidth").value = "100"
        await press_button(pilot, "#ok")
        await wait_for(lambda: notes.has("Cannot migrate domain 'delta' from small to lab-b"), what="failure")
        text = notes.find("Cannot migrate domain 'delta'")
        assert "'delta' is running on small, as before." in text
        assert key_of("small", DELTA) in t.rows and key_of("lab-b", DELTA) not in t.rows


async def test_migrate_needs_another_host():
    app = VmtuiApp(LibvirtService(host_uri(SMALL_HOST), stats_interval=3600, reconnect=False), Config())
    notes = Notes()
    async with app.run_test(size=(120, 40), message_hook=notes.hook) as pilot:
        await wait_for(lambda: app.ready, what="list")
        app.table.select(DELTA)
        await pilot.pause()
        await pilot.press("M")
        await wait_for(lambda: notes.has("Migration needs another connected host"), what="told")


async def test_a_host_that_cannot_be_reached_leaves_the_others_working():
    dead = LibvirtService("test:///no/such/host.xml", stats_interval=3600, reconnect=False, name="gone")
    app = fleet_app(extra=[dead])
    notes = Notes()
    async with app.run_test(size=(120, 40), message_hook=notes.hook) as pilot:
        await loaded(app)
        await wait_for(lambda: notes.has("gone: Cannot connect to test:///no/such/host.xml"), what="told")
        await pilot.pause()
        assert "gone not connected" in status(app) and "small connected" in status(app)
        assert app.is_running  # no exit: the other hosts are there


async def test_connections_screen_adds_a_host_and_disconnects_one(tmp_path):
    cfg = Config(path=tmp_path / "config.yaml")
    app = VmtuiApp(LibvirtService(host_uri(SMALL_HOST), stats_interval=3600, reconnect=False), cfg)
    notes = Notes()
    async with app.run_test(size=(120, 40), message_hook=notes.hook) as pilot:
        await wait_for(lambda: app.ready and app.table.row_count == 5, what="one host")
        assert "host" not in app.table.column_keys
        app.table.select(DELTA)
        await pilot.press("space")  # a mark on the one host follows it into the fleet
        await pilot.press("H")
        await wait_for(lambda: type(app.screen).__name__ == "ConnectionsScreen", what="connections")
        await pilot.press("a")
        await wait_for(lambda: type(app.screen).__name__ == "ConnectionDialog", what="dialog")
        uri = app.screen.query_one("#uri")
        uri.value = "lab b"
        await pilot.pause()
        assert "has a scheme" in str(app.screen.query_one("#err-uri").content)
        uri.value = host_uri(FLEET_B)
        app.screen.query_one("#name").value = "lab-b"
        await press_button(pilot, "#test")
        await wait_for(lambda: "4 VMs" in str(app.screen.query_one("#test-result").content), what="tested")
        await press_button(pilot, "#ok")
        await wait_for(lambda: app.table.row_count == 9, what="second host listed", timeout=10)
        assert app.table.column_keys[:3] == ["mark", "host", "name"]
        assert key_of("lab-b", B_ALPHA) in app.table.rows
        first = app.primary.name
        assert first == "host-small" and key_of(first, DELTA) in app.marks
        saved = (tmp_path / "config.yaml").read_text()
        assert "name: lab-b" in saved and "test:///" in saved
        table = app.screen.query_one("#connections")
        await wait_for(lambda: table.row_count == 2, what="two rows")
        # disconnect lab-b: its rows leave the list
        table.move_cursor(row=[r.name for r in app.screen.rows].index("lab-b"))
        await pilot.press("x")
        await wait_for(lambda: app.table.row_count == 5, what="lab-b gone")
        assert "lab-b" not in app.slots
        assert notes.has("Disconnected lab-b")


async def test_read_only_host_in_a_fleet_greys_its_actions_only():
    ro = LibvirtService(host_uri(FLEET_B), stats_interval=3600, reconnect=False, name="lab-b", readonly=True)
    a = LibvirtService(host_uri(SMALL_HOST), stats_interval=3600, reconnect=False, name="small")
    app = VmtuiApp([a, ro], Config())
    notes = Notes()
    async with app.run_test(size=(120, 40), message_hook=notes.hook) as pilot:
        await loaded(app)
        assert "lab-b read-only" in status(app)
        app.table.select(key_of("lab-b", GOLF))
        await pilot.pause()
        assert not app.action_enabled("start")
        await pilot.press("s")
        await wait_for(lambda: notes.has("Read-only connection"), what="told")
        app.table.select(key_of("small", BRAVO))
        await pilot.pause()
        assert app.action_enabled("start")
        assert ro.state is ConnState.CONNECTED


async def test_the_selection_follows_a_vm_that_moved_to_another_host():
    """What a migration looks like in the events: the VM is defined on the
    destination, then undefined on the source. The selection goes with it."""
    app = fleet_app()
    notes = Notes()
    async with app.run_test(size=(120, 40), message_hook=notes.hook) as pilot:
        await loaded(app)
        t = app.table
        t.select(key_of("small", BRAVO))
        await pilot.pause()
        a, b = svc(app, "small"), svc(app, "lab-b")
        xml = await a.domain_xml(BRAVO, inactive=True)
        await b.call(lambda c: c.defineXML(xml))
        await wait_for(lambda: key_of("lab-b", BRAVO) in t.rows, what="defined on lab-b")
        await a.undefine(BRAVO)
        await wait_for(lambda: t.selected_key == key_of("lab-b", BRAVO), what="selected on lab-b")
        assert notes.has("'bravo' moved from small to lab-b: selected there.")
        assert not notes.has("No VM is selected now")


def test_vmtui_with_several_c_shows_every_host_and_a_clear_ssh_message(tmp_path):
    """The real program in a pseudo-terminal: two test-driver hosts and an
    ssh host whose ssh would ask for a password. The list shows both hosts'
    VMs, the third says 'auth failed' and what to set up, and nothing ssh
    writes reaches the screen."""
    import stat as stat_
    import sys
    from pathlib import Path

    from tests.ptyterm import PtyTerminal

    ssh = tmp_path / "ssh"
    # a real ssh asks on /dev/tty unless it runs in batch mode (libvirt's no_tty=1)
    ssh.write_text("#!/bin/sh\ncase \"$*\" in *BatchMode=yes*) ;; *) echo 'admin@lab1 PROMPT-ON-TTY:' > /dev/tty;; esac\n"
                   "echo 'Permission denied (publickey,password).' >&2\nsleep 0.5\nexit 255\n")
    ssh.chmod(ssh.stat().st_mode | stat_.S_IEXEC)
    root = Path(__file__).resolve().parent.parent
    env = {"XDG_STATE_HOME": str(tmp_path / "state"), "XDG_CONFIG_HOME": str(tmp_path / "config")}
    argv = [sys.executable, "-m", "vmtui", "-c", host_uri(SMALL_HOST), "-c", host_uri(FLEET_B),
            "-c", f"qemu+ssh://admin@lab1/system?command={ssh}"]
    with PtyTerminal(argv, env=env, cwd=str(root), cols=140, rows=40) as term:
        term.wait_for(lambda s: "foxtrot" in s and "delta" in s, timeout=60)
        term.wait_for("lab1 auth failed", timeout=60)
        term.wait_for("without a password", timeout=30)
        screen = term.text()
    assert "host-small connected" in screen and "host-fleet-b connected" in screen
    assert b"PROMPT-ON-TTY" not in term.raw  # ssh never asked on the terminal


def test_vmtui_exits_with_every_reason_when_no_host_can_be_reached(tmp_path):
    import os
    import subprocess
    import sys

    env = dict(os.environ, TERM="dumb")
    env.pop("LIBVIRT_DEFAULT_URI", None)
    out = subprocess.run([sys.executable, "-m", "vmtui", "-c", "test:///no/such/one.xml", "-c",
                          "test:///no/such/two.xml", "--config", str(tmp_path / "c.yaml")],
                         capture_output=True, text=True, env=env, timeout=60, stdin=subprocess.DEVNULL)
    text = " ".join((out.stdout + out.stderr).split())
    assert out.returncode == 1
    assert "Cannot connect to test:///no/such/one.xml" in text and "Cannot connect to test:///no/such/two.xml" in text
    assert "Traceback" not in text
