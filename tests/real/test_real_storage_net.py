"""The storage and networks screens on the real libvirtd (qemu:///system).

* a directory pool on a small tmpfs (64 MiB) shows the "over 85 % allocated"
  and the thin overcommit warnings, on the screen and in the status line;
* a pool defined through the form, an upload and a download through the
  screen (bytes compared), the empty pool deleted through the screen;
* a cancelled upload leaves no volume;
* an isolated network (no <forward>) defined through the form: its bridge
  exists with the host address, the DHCP range is shown.

Every object is named ``vmtui-test-...<pid>...`` and removed at teardown.
"""

from __future__ import annotations

import os
import subprocess
import threading
import xml.etree.ElementTree as ET
from pathlib import Path

import libvirt
import pytest
from textual.widgets import DataTable, Input

from tests import guest
from tests.conftest import press_button, wait_for
from tests.notes import notes_of, run_noted
from tests.prereq import missing
from tests.real.test_real_storage import IMAGES, POOL_PREFIX
from vmtui.core import storage
from vmtui.core.config import Config
from vmtui.core.connection.service import LibvirtService
from vmtui.core.errors import VmtuiError
from vmtui.core.host import networks
from vmtui.ui.app import StatusBar, VmtuiApp
from vmtui.ui.dialogs import ConfirmDialog
from vmtui.ui.network_screen import DefineNetworkDialog, NetworkScreen
from vmtui.ui.storage_screen import (
    CreateVolumeDialog,
    DefinePoolDialog,
    DownloadDialog,
    StorageScreen,
    UploadDialog,
)

pytestmark = pytest.mark.real

URI = "qemu:///system"
MiB = 1024 ** 2
NET_PREFIX = "vmtui-test-net-"


def make_app() -> VmtuiApp:
    return VmtuiApp(LibvirtService(URI, stats_interval=3600), Config())


async def open_screen(pilot, key: str, cls):
    app = pilot.app
    await wait_for(lambda: app.ready, timeout=30, what="list")
    await pilot.press(key)
    await wait_for(lambda: isinstance(app.screen, cls) and app.screen.loaded, timeout=30, what=cls.__name__)
    await pilot.pause()
    return app.screen


def select_row(table: DataTable, name: str) -> None:
    names = [str(table.get_row_at(i)[0]) for i in range(table.row_count)]
    table.move_cursor(row=names.index(name))


@pytest.fixture
def pool_name(system_conn):
    """A unique pool name and directory under /var/lib/libvirt/images; whatever
    the test made with them (pool, volumes, tmpfs mount, directory) is removed."""
    guest.remove_stale_pools(system_conn, POOL_PREFIX)
    name = f"{POOL_PREFIX}{os.getpid()}-sn-{os.urandom(2).hex()}"
    path = IMAGES / name
    yield name, path
    conn = libvirt.open(URI)
    try:
        try:
            pool = conn.storagePoolLookupByName(name)
        except libvirt.libvirtError:
            pool = None
        if pool is not None:
            guest.remove_pool(conn, name, path)
    finally:
        conn.close()
    for mount in guest.mounts_under(path):
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)
    if path.exists():
        subprocess.run(["rm", "-rf", str(path)], capture_output=True)


@pytest.fixture
def tmpfs_pool(system_conn, pool_name):
    """A started dir pool on a 64 MiB tmpfs (a real small file system, no loop device)."""
    name, path = pool_name
    path.mkdir(mode=0o755)
    mount = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m,mode=0755", "tmpfs", str(path)],
                           capture_output=True, text=True)
    if mount.returncode != 0:
        missing(f"cannot mount a tmpfs: {mount.stderr.strip()}")
    storage.define_dir_pool(system_conn, name, str(path), autostart=False)
    return name, path


async def test_small_pool_shows_full_and_overcommit_warnings(system_conn, tmpfs_pool):
    name, path = tmpfs_pool
    # thin: only promised (100 MiB on a 64 MiB pool)
    storage.create_volume(system_conn, name, "thin.qcow2", 100 * MiB, fmt="qcow2", provisioning="thin")
    app = make_app()
    async with run_noted(app, size=(200, 40)) as pilot:
        screen = await open_screen(pilot, "S", StorageScreen)
        mine = [w for w in screen.warnings if f"'{name}'" in w]
        assert len(mine) == 1 and "overcommitted" in mine[0], screen.warnings
        select_row(screen.query_one("#pools", DataTable), name)
        await wait_for(lambda: screen._pool_for_volumes == name and screen.selected_pool.name == name)
        # thick through the form: really allocated on the tmpfs (fallocate)
        await pilot.press("n")
        await wait_for(lambda: isinstance(app.screen, CreateVolumeDialog))
        form = app.screen
        form.query_one("#vol-name", Input).value = "thick.img"
        form.query_one("#vol-size", Input).value = "56M"
        form.query_one("#vol-format").value = "raw"
        form.query_one("#vol-thick").value = True
        await pilot.pause()
        assert "The host will hold 56.0 MiB now and at most 56.0 MiB" in str(form.query_one("#vol-plan").render())
        await press_button(pilot, "#ok")
        await wait_for(lambda: isinstance(app.screen, StorageScreen), timeout=30, what="created")
        await wait_for(lambda: [v.name for v in screen.volumes] == ["thick.img", "thin.qcow2"], timeout=20)
        assert os.stat(path / "thick.img").st_blocks * 512 >= 56 * MiB  # really allocated
        info = storage.pool_info(system_conn, name)
        assert info.capacity == 64 * MiB and info.used_fraction > 0.85, info
        await wait_for(lambda: len([w for w in screen.warnings if f"'{name}'" in w]) == 2, timeout=20)
        mine = [w for w in screen.warnings if f"'{name}'" in w]
        assert "% full" in mine[0] and "of 64.0 MiB" in mine[0]
        assert f"overcommitted {info.overcommit_ratio:.2f}x" in mine[1]
        assert f"pool '{name}' is " in str(screen.query_one("#storage-warnings").render())
        row = [str(c) for c in screen.query_one("#pools", DataTable).get_row_at(
            screen.query_one("#pools", DataTable).cursor_row)]
        assert row[0] == name and row[1] == "active" and row[3].startswith("[#######") and row[4] == "64.0 MiB"
        vols = screen.query_one("#volumes", DataTable)
        assert [str(vols.get_row_at(i)[4]) for i in range(2)] == ["thick", "thin"]
        await pilot.press("escape")
        await wait_for(lambda: any(name in w for w in app.storage_warnings), what="status line")
        status = str(app.list_screen.query_one(StatusBar).render())
        assert f"pool {name} " in status and "x overcommitted" in status


async def test_pool_form_upload_download_round_trip_and_delete(system_conn, pool_name, tmp_path):
    name, path = pool_name
    data = os.urandom(3 * MiB + 12345)
    local = tmp_path / "small.iso"
    local.write_bytes(data)
    back = tmp_path / "back.img"
    app = make_app()
    async with run_noted(app, size=(120, 40)) as pilot:
        screen = await open_screen(pilot, "S", StorageScreen)
        # define a directory pool through the short form
        await pilot.press("P")
        await wait_for(lambda: isinstance(app.screen, DefinePoolDialog))
        app.screen.query_one("#name", Input).value = name
        app.screen.query_one("#path", Input).value = str(path)
        await pilot.pause()
        await press_button(pilot, "#ok")
        await wait_for(lambda: isinstance(app.screen, StorageScreen), timeout=30, what="pool defined")
        await wait_for(lambda: name in [p.name for p in screen.pools], timeout=20)
        pool = system_conn.storagePoolLookupByName(name)
        assert pool.isActive() and pool.isPersistent() and pool.autostart()
        assert path.is_dir()
        select_row(screen.query_one("#pools", DataTable), name)
        await wait_for(lambda: screen._pool_for_volumes == name and screen.selected_pool.name == name)

        # upload through the screen
        await pilot.press("u")
        await wait_for(lambda: isinstance(app.screen, UploadDialog))
        app.screen.query_one("#local", Input).value = str(local)
        await pilot.pause()
        await press_button(pilot, "#ok")
        await wait_for(lambda: isinstance(app.screen, StorageScreen), timeout=60, what="upload done")
        await wait_for(lambda: "small.iso" in [v.name for v in screen.volumes], timeout=20)
        assert (path / "small.iso").read_bytes() == data
        assert any("Uploaded 'small.iso'" in n.message for n in notes_of(app).all)

        # download it again through the screen
        select_row(screen.query_one("#volumes", DataTable), "small.iso")
        await pilot.pause()
        await pilot.press("w")
        await wait_for(lambda: isinstance(app.screen, DownloadDialog))
        app.screen.query_one("#local", Input).value = str(back)
        await pilot.pause()
        await press_button(pilot, "#ok")
        await wait_for(lambda: isinstance(app.screen, StorageScreen), timeout=60, what="download done")
        assert back.read_bytes() == data

        # a non-empty pool is not deleted
        await pilot.press("X")
        await wait_for(lambda: any(f"Pool '{name}' is not empty" in n.message for n in notes_of(app).all))
        # empty it, then delete it (stop, remove the directory, undefine)
        screen.query_one("#volumes", DataTable).focus()
        select_row(screen.query_one("#volumes", DataTable), "small.iso")
        await pilot.press("d")
        await wait_for(lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.press("y")
        await wait_for(lambda: screen.volumes == [] and screen.pools and
                       next(p for p in screen.pools if p.name == name).volume_count == 0, timeout=20)
        screen.query_one("#pools", DataTable).focus()
        select_row(screen.query_one("#pools", DataTable), name)
        await pilot.pause()
        await pilot.press("X")
        await wait_for(lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.press("y")
        await wait_for(lambda: name not in [p.name for p in screen.pools], timeout=20, what="pool gone")
    assert not path.exists()
    with pytest.raises(libvirt.libvirtError):
        system_conn.storagePoolLookupByName(name)


async def test_pool_events_from_another_connection_reach_the_screen(system_conn, pool_name):
    name, path = pool_name
    app = make_app()
    async with run_noted(app, size=(120, 40)) as pilot:
        screen = await open_screen(pilot, "S", StorageScreen)
        path.mkdir()
        pool = system_conn.storagePoolDefineXML(storage.dir_pool_xml(name, str(path)), 0)
        await wait_for(lambda: name in [p.name for p in screen.pools], timeout=20, what="defined event")
        pool.create(0)
        await wait_for(lambda: next(p for p in screen.pools if p.name == name).active, timeout=20,
                       what="started event")


def test_cancelled_upload_leaves_no_volume(system_conn, tmpfs_pool, tmp_path):
    name, _path = tmpfs_pool
    local = tmp_path / "big.iso"
    local.write_bytes(os.urandom(8 * MiB))
    cancel = threading.Event()
    seen = []

    def progress(done: int, total: int) -> None:
        seen.append(done)
        cancel.set()  # the first progress report: cancel

    with pytest.raises(VmtuiError, match="cancelled"):
        storage.upload_file(system_conn, name, "big.iso", local, progress=progress, cancel=cancel)
    assert seen and seen[0] < 8 * MiB
    assert not storage.volume_exists(system_conn, name, "big.iso")


def test_cancelled_download_leaves_no_file(system_conn, tmpfs_pool, tmp_path):
    name, _path = tmpfs_pool
    src = tmp_path / "src.img"
    src.write_bytes(os.urandom(8 * MiB))
    storage.upload_file(system_conn, name, "src.img", src)
    cancel = threading.Event()
    out = tmp_path / "out.img"
    with pytest.raises(VmtuiError, match="cancelled"):
        storage.download_volume(system_conn, f"{name}/src.img", out,
                                progress=lambda d, t: cancel.set(), cancel=cancel)
    assert not out.exists()


@pytest.fixture
def net_name(system_conn):
    name = f"{NET_PREFIX}{os.getpid()}-{os.urandom(2).hex()}"
    yield name
    conn = libvirt.open(URI)
    try:
        net = conn.networkLookupByName(name)
    except libvirt.libvirtError:
        net = None
    try:
        if net is not None:
            if net.isActive():
                net.destroy()
            if net.isPersistent():
                net.undefine()
    finally:
        conn.close()


def _free_subnet(conn) -> str:
    """A 10.x.y.0/24 no libvirt network uses (x, y from the pid: parallel sessions differ)."""
    existing = networks.list_networks(conn)
    pid = os.getpid()
    for i in range(200):
        cidr = f"10.{200 + (pid + i) % 50}.{(pid // 50 + i) % 250}.0/24"
        if "cidr" not in networks.plan_network("x", "isolated", cidr, existing=existing).errors:
            return cidr
    missing("no free 10.x.y.0/24 for an isolated test network")


async def test_define_isolated_network_through_the_form(system_conn, net_name):
    cidr = _free_subnet(system_conn)
    base = cidr.rsplit(".", 1)[0]
    app = make_app()
    async with run_noted(app, size=(160, 40)) as pilot:
        screen = await open_screen(pilot, "N", NetworkScreen)
        await pilot.press("n")
        await wait_for(lambda: isinstance(app.screen, DefineNetworkDialog))
        form = app.screen
        form.query_one("#name", Input).value = net_name
        form.query_one("#mode").value = "isolated"
        form.query_one("#cidr", Input).value = cidr
        form.query_one("#dhcp_start", Input).value = f"{base}.100"
        form.query_one("#dhcp_end", Input).value = f"{base}.199"
        await pilot.pause()
        await press_button(pilot, "#ok")
        await wait_for(lambda: isinstance(app.screen, NetworkScreen), timeout=30, what="network defined")
        await wait_for(lambda: net_name in [n.name for n in screen.networks], timeout=20)
        net = system_conn.networkLookupByName(net_name)
        root = ET.fromstring(net.XMLDesc(0))
        assert root.find("forward") is None  # isolated: no traffic leaves the host
        assert net.isActive() and net.isPersistent() and net.autostart()
        bridge = root.find("bridge").get("name")
        assert bridge and Path(f"/sys/class/net/{bridge}").exists()
        addr = subprocess.run(["ip", "-4", "-o", "addr", "show", "dev", bridge], capture_output=True, text=True)
        assert f"{base}.1/24" in addr.stdout
        select_row(screen.query_one("#networks", DataTable), net_name)
        await pilot.pause()
        row = [str(c) for c in screen.query_one("#networks", DataTable).get_row_at(
            screen.query_one("#networks", DataTable).cursor_row)]
        assert row[:7] == [net_name, "isolated", "active", "yes", f"{base}.1/24", f"{base}.100–.199", bridge]
        await wait_for(lambda: screen._leases_of == net_name)
        await wait_for(lambda: "0 DHCP leases" in str(screen.query_one("#leases-title").render()), timeout=20)
        # undefine through the screen
        await pilot.press("D")
        await wait_for(lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.press("y")
        await wait_for(lambda: net_name not in [n.name for n in screen.networks], timeout=20, what="gone")
    assert not Path(f"/sys/class/net/{bridge}").exists()


async def test_cancel_an_upload_from_the_dialog(system_conn, pool_name, tmp_path):
    """A 768 MiB upload into a 1 GiB tmpfs pool, cancelled with the dialog's
    Cancel button once progress shows: no volume is left, the dialog stays."""
    name, path = pool_name
    path.mkdir(mode=0o755)
    mount = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1g,mode=0755", "tmpfs", str(path)],
                           capture_output=True, text=True)
    if mount.returncode != 0:
        missing(f"cannot mount a tmpfs: {mount.stderr.strip()}")
    storage.define_dir_pool(system_conn, name, str(path), autostart=False)
    local = tmp_path / "big.iso"
    with open(local, "wb") as fh:  # sparse: quick to make, still 768 MiB to send
        fh.truncate(768 * MiB)
    app = make_app()
    async with run_noted(app, size=(120, 40)) as pilot:
        screen = await open_screen(pilot, "S", StorageScreen)
        select_row(screen.query_one("#pools", DataTable), name)
        await wait_for(lambda: screen._pool_for_volumes == name and screen.selected_pool.name == name)
        await pilot.press("u")
        await wait_for(lambda: isinstance(app.screen, UploadDialog))
        dialog = app.screen
        dialog.query_one("#local", Input).value = str(local)
        await pilot.pause()
        await press_button(pilot, "#ok")
        await wait_for(lambda: getattr(dialog, "progress", None) is not None and dialog.progress.done > 0,
                       timeout=30, what="upload under way")
        await press_button(pilot, "#cancel")
        await wait_for(lambda: not dialog.busy, timeout=30, what="upload stopped")
        assert app.screen is dialog  # still open, saying why
        assert "cancelled" in str(dialog.query_one("#form-status").render())
        assert not storage.volume_exists(system_conn, name, "big.iso")
        assert list(path.iterdir()) == []
        await pilot.press("escape")
        await wait_for(lambda: isinstance(app.screen, StorageScreen))
