"""Several hosts without the UI (issue 15): row keys and marks, host names,
bulk actions with a bound per host, migration pre-checks on test-driver
hosts, ssh logins that would prompt, titles for the rows on screen first,
and the command line (several -c, vmtui migrate)."""

from __future__ import annotations

import asyncio
import os
import stat
import subprocess
import sys

import pytest

from vmtui.cli import build_parser, resolve_uris
from vmtui.core.config import Config, SavedConnection
from vmtui.core.connection.hosts import HostRegistry, default_name, unique_name
from vmtui.core.connection.rows import DomainInfo
from vmtui.core.connection.service import LibvirtService, ssh_problem
from vmtui.core.errors import AuthFailed, VmtuiError
from vmtui.core.fleet import bulk
from vmtui.core.fleet.model import Marks, host_state, key_of, matches_text, row_key, split_key
from vmtui.core.migrate import MigrationOptions
from vmtui.core.migrate.job import MigrationRefused, migrate, plan_migration

from .conftest import ALPHA, BRAVO, CHARLIE, DATA, DELTA, ECHO, SMALL_HOST, host_uri, wait_for

FLEET_B = DATA / "host-fleet-b.xml"
B_ALPHA = "44444444-4444-4444-8444-000000000001"
FOXTROT = "44444444-4444-4444-8444-000000000002"
GOLF = "44444444-4444-4444-8444-000000000003"


def svc(path, name: str) -> LibvirtService:
    return LibvirtService(host_uri(path), stats_interval=3600, reconnect=False, name=name)


@pytest.fixture
async def two_hosts():
    a, b = svc(SMALL_HOST, "small"), svc(FLEET_B, "lab-b")
    await asyncio.gather(a.connect(), b.connect())
    yield a, b
    await asyncio.gather(a.close(), b.close())


# --- the row model -------------------------------------------------------------


def test_row_keys_are_the_uuid_alone_for_one_host_and_with_the_host_for_several():
    one = DomainInfo(uuid=ALPHA, name="alpha", id=1, state_code=1)
    assert row_key(one) == ALPHA and split_key(ALPHA) == ("", ALPHA)
    there = DomainInfo(uuid=ALPHA, name="alpha", id=1, state_code=1, host="lab-b")
    assert row_key(there) == key_of("lab-b", ALPHA) != ALPHA
    assert split_key(row_key(there)) == ("lab-b", ALPHA)


def test_text_filter_matches_host_names_too():
    d = DomainInfo(uuid=ALPHA, name="web-01", id=None, state_code=5, title="Frontend", host="kvm-rack2")
    assert matches_text(d, "WEB") and matches_text(d, "front") and matches_text(d, "rack2")
    assert not matches_text(d, "rack3")
    assert not matches_text(DomainInfo(uuid=ALPHA, name="web", id=None, state_code=5), "rack")


def test_marks_keep_their_order_and_forget_rows_that_went_away():
    m = Marks()
    assert m.toggle("a") and m.toggle("b") and not m.toggle("a")
    assert m.mark(["c", "b", "d"]) == ["c", "d"]
    assert list(m) == ["b", "c", "d"] and len(m) == 3
    rows = {k: DomainInfo(uuid=k, name=k, id=None, state_code=5) for k in ("b", "d", "e")}
    assert [d.name for d in m.marked(rows)] == ["b", "d"]  # c is gone from the list
    assert m.forget_missing(rows) == ["c"] and list(m) == ["b", "d"]
    assert m.clear() == ["b", "d"] and not m


def test_host_names_come_from_the_uri_and_stay_unique():
    assert default_name("qemu+ssh://root@lab1/system") == "lab1"
    assert default_name("qemu+ssh://lab1/session") == "lab1-session"
    assert default_name("qemu:///system") == "local"
    assert default_name("qemu+unix:///session?socket=/run/vmtui-test/vmtui-h2/libvirt/libvirt-sock") == "vmtui-h2"
    assert default_name(host_uri(SMALL_HOST)) == "host-small"
    assert unique_name("lab1", {"lab1", "lab1-2"}) == "lab1-3" and unique_name("lab2", {"lab1"}) == "lab2"


async def test_registry_names_its_services_and_stamps_their_rows():
    reg = HostRegistry(lambda uri: LibvirtService(uri, stats_interval=3600, reconnect=False))
    try:
        a = await reg.open(host_uri(SMALL_HOST))
        b = await reg.open(host_uri(FLEET_B), name="host-small")  # taken: gets a suffix
        assert (a.name, b.name) == ("host-small", "host-small-2")
        assert reg.named("host-small-2") is b and reg.names() == ["host-small", "host-small-2"]
        assert {d.host for d in a.domains.values()} == {"host-small"}
        assert {d.host for d in b.domains.values()} == {"host-small-2"}
        seen = []
        a.subscribe(seen.append)
        a.rename("small")
        assert {d.host for d in a.domains.values()} == {"small"}
        assert any(type(n).__name__ == "DomainsReset" for n in seen)
    finally:
        await reg.close_all()


# --- bulk actions ----------------------------------------------------------------


async def test_bulk_runs_concurrently_with_a_bound_per_host_and_names_each_failure(two_hosts):
    a, b = two_hosts
    running = {"small": 0, "lab-b": 0}
    most = {"small": 0, "lab-b": 0}

    async def slow_pause(service, d, options):
        running[d.host] += 1
        most[d.host] = max(most[d.host], running[d.host])
        try:
            await asyncio.sleep(0.05)
            if d.name == "foxtrot":
                raise VmtuiError("pause", "domain 'foxtrot'", "the guest refused")
            await service.pause(d.uuid)
            return "paused"
        finally:
            running[d.host] -= 1

    action = bulk.BulkAction("pause", "Pause", "p", bulk.BY_NAME["pause"].why_not, slow_pause)
    targets = [(a, d) for d in a.domains.values()] + [(b, d) for d in b.domains.values()]
    told = []
    report = await bulk.run_bulk(action, targets, per_host=2, progress=lambda o: told.append((o.name, o.state)))
    # alpha and delta (small) and alpha and foxtrot (lab-b) were running; the rest are skipped with why
    assert sorted((o.host, o.name) for o in report.done) == [("lab-b", "alpha"), ("small", "alpha"),
                                                             ("small", "delta")]
    assert [(o.host, o.name) for o in report.failed] == [("lab-b", "foxtrot")]
    assert "the guest refused" in report.failed[0].message
    skipped = {o.name: o.message for o in report.skipped}
    assert skipped["bravo"] == "shut off, not running" and skipped["hotel"] == "paused, not running"
    assert max(most.values()) <= 2  # never more than the bound on one host
    summary = report.summary()
    assert summary.startswith("Pause: 3 of 9 done, 5 skipped, 1 failed.")
    assert "'foxtrot' on lab-b: Cannot pause domain 'foxtrot': the guest refused" in summary
    await wait_for(lambda: a.domains[DELTA].is_paused and b.domains[B_ALPHA].is_paused, what="paused on both")
    assert b.domains[FOXTROT].is_running  # the failure stopped nothing else
    assert ("foxtrot", "failed") in told and ("bravo", "skipped") in told


async def test_bulk_start_stop_and_autostart_on_both_hosts(two_hosts):
    a, b = two_hosts
    off = [(a, a.domains[BRAVO]), (a, a.domains[ECHO]), (b, b.domains[GOLF])]
    report = await bulk.run_bulk(bulk.BY_NAME["start"], off)
    assert len(report.done) == 3, report.summary()
    await wait_for(lambda: a.domains[BRAVO].is_running and b.domains[GOLF].is_running, what="started")
    report = await bulk.run_bulk(bulk.BY_NAME["force_off"], [(a, a.domains[BRAVO]), (b, b.domains[GOLF])])
    assert len(report.done) == 2
    await wait_for(lambda: a.domains[BRAVO].is_shut_off and b.domains[GOLF].is_shut_off, what="stopped")
    report = await bulk.run_bulk(bulk.BY_NAME["autostart_on"], [(a, a.domains[CHARLIE]), (b, b.domains[GOLF])])
    assert len(report.done) == 2
    await wait_for(lambda: a.domains[CHARLIE].autostart and b.domains[GOLF].autostart, what="autostart")


async def test_bulk_on_a_read_only_host_skips_its_vms():
    ro = LibvirtService(host_uri(SMALL_HOST), stats_interval=3600, reconnect=False, readonly=True, name="ro")
    await ro.connect()
    try:
        report = bulk.plan_bulk(bulk.BY_NAME["start"], [(ro, ro.domains[BRAVO])])
        assert report.skipped[0].message == "read-only connection"
    finally:
        await ro.close()


# --- migration checks (test driver: no migration itself) -------------------------


async def test_migration_refused_when_the_name_exists_on_the_destination(two_hosts):
    a, b = two_hosts
    plan = await plan_migration(a, b, ALPHA, MigrationOptions())
    assert not plan.ok
    assert any(f"A VM named 'alpha' already exists on lab-b (UUID {B_ALPHA})" in e for e in plan.errors)
    with pytest.raises(MigrationRefused) as exc:
        await migrate(a, b, ALPHA, MigrationOptions())
    assert "Nothing was changed: 'alpha' stays on small." in exc.value.message
    assert a.domains[ALPHA].is_running


async def test_migration_checks_disks_state_and_same_host(two_hosts):
    a, b = two_hosts
    # delta's disk is in no pool of lab-b: not copied, not shared
    plan = await plan_migration(a, b, DELTA, MigrationOptions())
    assert any("Disk vda (/var/lib/libvirt/images/delta.qcow2) is not on lab-b's storage" in e for e in plan.errors)
    # copied into lab-b's pool of the same name, same path there
    plan = await plan_migration(a, b, DELTA, MigrationOptions(copy_storage=True))
    assert plan.ok, plan.errors
    assert [(c.target, c.dest, c.pool) for c in plan.copied] == [
        ("vda", "/var/lib/libvirt/images/delta.qcow2", "default")]
    # a volume of that name there already: never overwritten
    plan = await plan_migration(b, a, FOXTROT, MigrationOptions(copy_storage=True))
    assert plan.ok  # foxtrot.qcow2 is not on small
    await a.call(lambda c: c.storagePoolLookupByName("default").createXML(
        "<volume><name>foxtrot.qcow2</name><capacity>1048576</capacity></volume>", 0))
    plan = await plan_migration(b, a, FOXTROT, MigrationOptions(copy_storage=True))
    assert any("would overwrite it" in e for e in plan.errors)
    # an unknown destination pool
    plan = await plan_migration(a, b, DELTA, MigrationOptions(copy_storage=True, dest_pool="fast"))
    assert any("lab-b has no storage pool 'fast'" in e for e in plan.errors)
    # the kind of migration must fit the state
    plan = await plan_migration(a, b, BRAVO, MigrationOptions(live=True))
    assert any("'bravo' is shut off: only a running (or paused) VM migrates live" in e for e in plan.errors)
    plan = await plan_migration(a, b, DELTA, MigrationOptions(live=False, copy_storage=True))
    assert any("is running: an offline migration" in e for e in plan.errors)
    assert any("libvirt copies disks only during a live migration" in e for e in plan.errors)
    # the same host: nowhere to go
    same = svc(SMALL_HOST, "small-again")
    await same.connect()
    try:
        plan = await plan_migration(a, a, DELTA, MigrationOptions())
        assert plan.errors == ["small and small are the same host: there is nowhere to migrate to."]
    finally:
        await same.close()


async def test_a_failed_migration_says_why_and_where_the_vm_is(two_hosts):
    a, b = two_hosts
    with pytest.raises(VmtuiError) as exc:
        await migrate(a, b, DELTA, MigrationOptions(copy_storage=True))
    text = exc.value.message
    assert text.startswith("Cannot migrate domain 'delta' from small to lab-b:")
    assert "not supported" in text  # the test driver cannot migrate
    assert "'delta' is running on small, as before." in text
    assert a.domains[DELTA].is_running and DELTA not in b.domains


# --- ssh that would prompt -------------------------------------------------------


def _fake_ssh(tmp_path, lines: list[str]) -> str:
    path = tmp_path / "ssh"
    body = "".join(f"echo '{line}' >&2\n" for line in lines)
    path.write_text(f"#!/bin/sh\necho \"$@\" > {tmp_path}/args\n{body}sleep 0.5\nexit 255\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return str(path)


@pytest.mark.parametrize("lines, expect", [
    (["Permission denied (publickey,password)."], "without a password"),
    (["Host key verification failed."], "host key of lab1"),
])
async def test_ssh_that_would_prompt_fails_with_what_to_set_up(tmp_path, lines, expect):
    """libvirt runs ssh in batch mode (no_tty=1): it fails instead of asking,
    and the message says to use a key / ssh-agent or accept the host key."""
    ssh = _fake_ssh(tmp_path, lines)
    service = LibvirtService(f"qemu+ssh://admin@lab1/system?command={ssh}", reconnect=False, timeout=20)
    with pytest.raises(AuthFailed) as exc:
        await service.connect()
    text = exc.value.message
    assert expect in text and ("vmtui never" in text or "keys only" in text)
    args = (tmp_path / "args").read_text()
    assert "BatchMode=yes" in args and "-T" in args.split()  # never a prompt on our terminal
    state = host_state(service)
    assert state.word == "auth failed" and expect in state.problem


def test_ssh_problem_leaves_other_failures_alone():
    assert ssh_problem("qemu:///system", "Permission denied") is None
    assert ssh_problem("qemu+ssh://lab/system", "Connection refused") is None
    assert "ssh-copy-id root@lab" in ssh_problem("qemu+ssh://root@lab/system", "Cannot recv data: Permission denied")


# --- titles: the rows on screen first ----------------------------------------------


async def test_titles_of_the_rows_on_screen_are_read_first(monkeypatch):
    service = svc(FLEET_B, "")
    await service.connect()
    await service.wait_loaded()
    import threading

    order: list[str] = []
    real = LibvirtService._flags_of
    go_on = threading.Event()

    def spy(dom, both):
        order.append(dom.UUIDString())
        go_on.wait(30)  # the first read waits until the test has scrolled
        return real(dom, both)

    monkeypatch.setattr(LibvirtService, "_flags_of", staticmethod(spy))
    uuids = sorted(service.domains)
    try:
        task = asyncio.ensure_future(service._load_titles(uuids, chunk=1, workers=1))
        await wait_for(lambda: order, what="the pass read its first title")
        service.prioritize_titles([uuids[-1], uuids[-2]])  # what scrolled into view
        go_on.set()
        await task
    finally:
        await service.close()
    assert order[0] == uuids[0]
    assert order[1:] == [uuids[-1], uuids[-2], *uuids[1:-2]]


# --- the command line ------------------------------------------------------------------


def test_several_connect_options_open_several_hosts(monkeypatch):
    monkeypatch.delenv("LIBVIRT_DEFAULT_URI", raising=False)
    p = build_parser()
    cfg = Config(connections=[SavedConnection("lab", "qemu+ssh://lab1/system", True),
                              SavedConnection("spare", "qemu+ssh://lab9/system", False),
                              SavedConnection("rack2", "qemu+tls://rack2/system", True)])
    assert resolve_uris(p.parse_args(["-c", "qemu+ssh://lab1/system", "-c", "test:///default"]), cfg) == [
        ("lab", "qemu+ssh://lab1/system"), ("", "test:///default")]
    assert resolve_uris(p.parse_args([]), cfg) == [("lab", "qemu+ssh://lab1/system"),
                                                   ("rack2", "qemu+tls://rack2/system")]
    assert resolve_uris(p.parse_args([]), Config()) == [("", "qemu:///system")]
    monkeypatch.setenv("LIBVIRT_DEFAULT_URI", "test:///default")
    assert resolve_uris(p.parse_args([]), cfg) == [("", "test:///default")]


def _run(*args: str, tmp_path) -> subprocess.CompletedProcess:
    env = dict(os.environ, TERM="dumb")
    env.pop("LIBVIRT_DEFAULT_URI", None)
    return subprocess.run([sys.executable, "-m", "vmtui", *args, "--config", str(tmp_path / "c.yaml")],
                          capture_output=True, text=True, env=env, timeout=120, stdin=subprocess.DEVNULL)


def test_cli_migrate_checks_refuses_and_reports(tmp_path):
    a, b = host_uri(SMALL_HOST), host_uri(FLEET_B)
    out = _run("migrate", "alpha", "--to", b, "-c", a, tmp_path=tmp_path)
    assert out.returncode == 1
    assert "A VM named 'alpha' already exists on host-fleet-b" in out.stderr
    assert "Nothing was changed: 'alpha' stays on host-small." in out.stderr and "Traceback" not in out.stderr
    out = _run("migrate", "delta", "--to", b, "-c", a, "--copy-storage", "--check", tmp_path=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ("'delta' can migrate (live) from host-small to host-fleet-b; copies vda to "
                                  "/var/lib/libvirt/images/delta.qcow2")
    out = _run("migrate", "nosuch", "--to", b, "-c", a, tmp_path=tmp_path)
    assert out.returncode == 1 and "no domain named 'nosuch'" in out.stderr
    out = _run("migrate", "delta", "--to", b, "-c", a, "--bandwidth", "0", tmp_path=tmp_path)
    assert out.returncode == 2 and "--bandwidth must be a positive number" in out.stderr
    out = _run("migrate", "delta", "--to", b, "-c", a, "-c", b, tmp_path=tmp_path)
    assert out.returncode == 2 and "works on one host" in out.stderr
