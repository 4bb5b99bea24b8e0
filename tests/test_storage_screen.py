"""The storage (S) and networks (N) screens on the test driver, through Textual's Pilot."""

from __future__ import annotations

from textual.widgets import DataTable, Input, RadioButton

from tests.notes import notes_of, run_noted
from vmtui.core.config import Config
from vmtui.core.connection.service import LibvirtService
from vmtui.ui.app import StatusBar, VmtuiApp
from vmtui.ui.dialogs import ConfirmDialog
from vmtui.ui.network_screen import DefineNetworkDialog, NetworkScreen
from vmtui.ui.storage_screen import CreateVolumeDialog, DefinePoolDialog, StorageScreen

from .conftest import DATA, SMALL_HOST, host_uri, press_button, wait_for

WARN_HOST = DATA / "host-storage-warn.xml"


def _app(path=SMALL_HOST) -> VmtuiApp:
    return VmtuiApp(LibvirtService(host_uri(path), stats_interval=3600, reconnect=False), Config())


def _messages(app) -> list[str]:
    return [n.message for n in notes_of(app).all]


async def _open(pilot, key: str, cls):
    app = pilot.app
    await wait_for(lambda: app.ready, what="list")
    await pilot.press(key)
    await wait_for(lambda: isinstance(app.screen, cls) and app.screen.loaded, what=cls.__name__)
    await pilot.pause()
    return app.screen


def _cells(table: DataTable, col: int = 0) -> list[str]:
    return [str(table.get_row_at(i)[col]) for i in range(table.row_count)]


def _status(app) -> str:
    return str(app.list_screen.query_one(StatusBar).render())


def _field_error(screen, name: str) -> str:
    from vmtui.ui.forms import field_id
    err = screen.query_one(f"#{field_id(name)}")
    return str(err.render()) if err.display else ""


# --- storage ---------------------------------------------------------------------------


async def test_storage_screen_lists_pools_and_volumes_with_users():
    app = _app()
    async with run_noted(app, size=(120, 40)) as pilot:
        screen = await _open(pilot, "S", StorageScreen)
        pools = screen.query_one("#pools", DataTable)
        assert _cells(pools) == ["default"]
        row = [str(c) for c in pools.get_row_at(0)]
        assert row[:4] == ["default", "active", "no", "[#-------]  14%"]
        assert row[4:] == ["100.0 GiB", "14.0 GiB", "86.0 GiB", "dir"]
        vols = screen.query_one("#volumes", DataTable)
        by_name = {str(r[0]): [str(c) for c in r] for r in (vols.get_row_at(i) for i in range(vols.row_count))}
        assert by_name["shared.img"][1:] == ["raw", "1.0 GiB", "1.0 GiB", "thick", "alpha, bravo"]
        assert by_name["alpha.qcow2"][4:] == ["thin", "alpha"]
        assert by_name["install.iso"][5] == "echo"
        assert screen.warnings == [] and not screen.query_one("#storage-warnings").display
        # Enter and the cursor keys stay on this screen (the list's Enter opens a VM's details)
        await pilot.press("down", "enter", "tab", "down", "enter")
        await pilot.pause()
        assert app.screen is screen
        await pilot.press("escape")
        assert app.screen is app.list_screen


async def test_warnings_on_the_screen_and_in_the_status_line():
    app = _app(WARN_HOST)
    async with run_noted(app, size=(160, 30)) as pilot:
        await wait_for(lambda: app.ready)
        # computed off the loop once the list is there, not on each stats tick
        await wait_for(lambda: app.storage_warnings, what="status warnings")
        assert app.storage_warnings == ["pool full 90% full, 2.5x overcommitted"]
        assert "! pool full 90% full, 2.5x overcommitted" in _status(app)
        screen = await _open(pilot, "S", StorageScreen)
        text = str(screen.query_one("#storage-warnings").render())
        assert "pool 'full' is 90% full (90.0 GiB of 100.0 GiB, 10.0 GiB free)" in text
        assert "pool 'full' is overcommitted 2.50x: its volumes can grow to 250.0 GiB on 100.0 GiB" in text
        assert "calm" not in text
        # deleting the big volume's user is not our job: stopping the pool clears its warning
        screen.query_one("#pools", DataTable).move_cursor(row=1)
        await pilot.press("x")
        await wait_for(lambda: app.storage_warnings == [], what="warnings gone")
        await wait_for(lambda: not screen.query_one("#storage-warnings").display, what="screen warnings gone")
        assert "! pool" not in _status(app)


async def test_pool_stop_start_autostart_and_refresh_keys():
    app = _app()
    async with run_noted(app, size=(120, 40)) as pilot:
        screen = await _open(pilot, "S", StorageScreen)
        await pilot.press("x")
        await wait_for(lambda: screen.pools and not screen.pools[0].active, what="stopped")
        await wait_for(lambda: "inactive" in str(screen.query_one("#volumes-title").render()))
        assert screen.query_one("#volumes", DataTable).row_count == 0
        assert screen.check_action("vol_create", ()) is None
        await pilot.press("s")
        await wait_for(lambda: screen.pools[0].active, what="started")
        await pilot.press("a")
        await wait_for(lambda: screen.pools[0].autostart, what="autostart")
        await pilot.press("r")
        await wait_for(lambda: any("Refreshed pool 'default'" in m for m in _messages(app)))


async def test_pool_events_from_elsewhere_reload_the_screen():
    app = _app()
    async with run_noted(app, size=(120, 40)) as pilot:
        screen = await _open(pilot, "S", StorageScreen)
        await app.service.call(lambda c: c.storagePoolLookupByName("default").destroy())
        await wait_for(lambda: not screen.pools[0].active, what="event reload")
        # and a pool defined by someone else appears
        xml = "<pool type='dir'><name>other</name><target><path>/srv/other</path></target></pool>"
        await app.service.call(lambda c: c.storagePoolDefineXML(xml, 0))
        await wait_for(lambda: [p.name for p in screen.pools] == ["default", "other"], what="new pool")


async def test_volume_in_use_is_not_deleted_and_a_free_one_is_after_asking():
    app = _app()
    async with run_noted(app, size=(120, 40)) as pilot:
        screen = await _open(pilot, "S", StorageScreen)
        vols = screen.query_one("#volumes", DataTable)
        names = _cells(vols)
        vols.focus()
        vols.move_cursor(row=names.index("shared.img"))
        await pilot.press("d")
        await wait_for(lambda: any("Volume 'shared.img' is in use by alpha, bravo: it is kept." in m
                                   for m in _messages(app)))
        assert not isinstance(app.screen, ConfirmDialog)
        # a volume nobody uses
        await app.service.call(lambda c: c.storagePoolLookupByName("default").createXML(
            "<volume><name>spare.img</name><capacity>1048576</capacity></volume>", 0))
        screen.reload()
        await wait_for(lambda: "spare.img" in [v.name for v in screen.volumes])
        vols.move_cursor(row=[v.name for v in screen.volumes].index("spare.img"))
        await pilot.press("d")
        await wait_for(lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.press("y")
        await wait_for(lambda: "spare.img" not in [v.name for v in screen.volumes], what="deleted")


async def test_create_volume_form_shows_plan_and_errors_on_the_fields():
    app = _app()
    async with run_noted(app, size=(100, 30)) as pilot:
        screen = await _open(pilot, "S", StorageScreen)
        await pilot.press("n")
        await wait_for(lambda: isinstance(app.screen, CreateVolumeDialog))
        form = app.screen
        assert "default (86.0 GiB free of 100.0 GiB)" in str(form.query_one("#vol-pool-fixed").render())
        form.query_one("#vol-size", Input).value = "20G"
        await pilot.pause()
        plan = str(form.query_one("#vol-plan").render())
        assert "The host will hold 256.0 KiB now and at most 20.0 GiB" in plan
        # thin overcommit: a warning, not an error
        form.query_one("#vol-size", Input).value = "60G"
        await pilot.pause()
        assert "Thin disks would overcommit pool 'default'" in str(form.query_one("#vol-warning").render())
        # thick and too big: said at once, an error on the size field when submitted
        form.query_one("#vol-thick", RadioButton).value = True
        form.query_one("#vol-size", Input).value = "90G"
        await pilot.pause()
        too_big = "is larger than the 86.0 GiB free in pool 'default'"
        assert too_big in str(form.query_one("#vol-warning").render())
        form.query_one("#vol-name", Input).value = "big.img"
        await press_button(pilot, "#ok")
        await wait_for(lambda: too_big in _field_error(form, "size"))
        form.query_one("#vol-size", Input).value = "lots"
        await pilot.pause()
        await press_button(pilot, "#ok")
        await wait_for(lambda: "'lots' is not a size" in _field_error(form, "size"))
        # bad name
        form.query_one("#vol-size", Input).value = "2G"
        form.query_one("#vol-thin", RadioButton).value = True
        form.query_one("#vol-name", Input).value = "a/b"
        await pilot.pause()
        await press_button(pilot, "#ok")
        await wait_for(lambda: "must not contain '/'" in _field_error(form, "name"))
        assert isinstance(app.screen, CreateVolumeDialog)
        form.query_one("#vol-name", Input).value = "new.qcow2"
        await pilot.pause()
        await press_button(pilot, "#ok")
        await wait_for(lambda: isinstance(app.screen, StorageScreen), what="dialog closed")
        await wait_for(lambda: "new.qcow2" in [v.name for v in screen.volumes], what="volume")
        v = next(v for v in screen.volumes if v.name == "new.qcow2")
        assert (v.capacity, v.format) == (2 * 1024 ** 3, "qcow2")


async def test_define_dir_pool_form_and_delete_empty_pool(tmp_path):
    app = _app()
    async with run_noted(app, size=(100, 30)) as pilot:
        screen = await _open(pilot, "S", StorageScreen)
        await pilot.press("P")
        await wait_for(lambda: isinstance(app.screen, DefinePoolDialog))
        form = app.screen
        form.query_one("#name", Input).value = "default"
        form.query_one("#path", Input).value = "relative/dir"
        await pilot.pause()
        await press_button(pilot, "#ok")
        await wait_for(lambda: "already exists" in _field_error(form, "name"))
        assert "must be absolute" in _field_error(form, "path")
        form.query_one("#name", Input).value = "isos"
        form.query_one("#path", Input).value = "/var/lib/libvirt/images/"
        await pilot.pause()
        await press_button(pilot, "#ok")
        await wait_for(lambda: "Pool 'default' already uses /var/lib/libvirt/images" in _field_error(form, "path"))
        form.query_one("#path", Input).value = str(tmp_path / "isos")
        await pilot.pause()
        await press_button(pilot, "#ok")
        await wait_for(lambda: isinstance(app.screen, StorageScreen))
        await wait_for(lambda: "isos" in [p.name for p in screen.pools], what="new pool")
        pool = next(p for p in screen.pools if p.name == "isos")
        assert pool.active and pool.autostart and pool.path == str(tmp_path / "isos")
        xml = await app.service.call(lambda c: c.storagePoolLookupByName("isos").XMLDesc(0))
        assert f"<path>{tmp_path / 'isos'}</path>" in xml
        # the non-empty default pool is refused
        screen.query_one("#pools", DataTable).move_cursor(row=0)
        await pilot.pause()
        await pilot.press("X")
        await wait_for(lambda: any("Pool 'default' is not empty: it holds 7 volumes" in m for m in _messages(app)))
        # the empty one goes, after asking
        screen.query_one("#pools", DataTable).move_cursor(row=1)
        await pilot.pause()
        await pilot.press("X")
        await wait_for(lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.press("y")
        await wait_for(lambda: [p.name for p in screen.pools] == ["default"], what="pool deleted")


# --- networks --------------------------------------------------------------------------


async def test_networks_screen_lists_networks_and_vm_nics():
    app = _app()
    async with run_noted(app, size=(120, 40)) as pilot:
        screen = await _open(pilot, "N", NetworkScreen)
        table = screen.query_one("#networks", DataTable)
        assert [str(c) for c in table.get_row_at(0)] == [
            "default", "NAT", "active", "no", "192.168.122.1/24", "192.168.122.2–.254", "virbr0", "yes", "5"]
        leases = screen.query_one("#leases", DataTable)
        assert _cells(leases, 4) == ["alpha", "bravo", "charlie", "delta", "echo"]
        assert _cells(leases, 3) == ["no lease"] * 5
        assert "this libvirt driver reports no leases" in str(screen.query_one("#leases-title").render())


async def test_define_network_form_validates_then_defines_and_starts():
    app = _app()
    async with run_noted(app, size=(100, 30)) as pilot:
        screen = await _open(pilot, "N", NetworkScreen)
        await pilot.press("n")
        await wait_for(lambda: isinstance(app.screen, DefineNetworkDialog))
        form = app.screen
        assert form.query_one("#cidr", Input).value == "192.168.100.0/24"  # the first free /24
        assert form.query_one("#dhcp_start", Input).placeholder == "192.168.100.2"
        form.query_one("#name", Input).value = "lab"
        form.query_one("#cidr", Input).value = "192.168.122.0/25"
        await pilot.pause()
        await press_button(pilot, "#ok")
        await wait_for(lambda: "overlaps network 'default'" in _field_error(form, "cidr"))
        form.query_one("#cidr", Input).value = "10.50.0.0/33"
        await pilot.pause()
        await press_button(pilot, "#ok")
        await wait_for(lambda: "not an IPv4 network" in _field_error(form, "cidr"))
        form.query_one("#cidr", Input).value = "10.50.0.0/24"
        form.query_one("#mode").value = "isolated"
        form.query_one("#dhcp_start", Input).value = "10.50.0.100"
        await pilot.pause()
        assert form.query_one("#dhcp_end", Input).placeholder == "10.50.0.254"
        await pilot.pause()
        await press_button(pilot, "#ok")
        await wait_for(lambda: isinstance(app.screen, NetworkScreen))
        await wait_for(lambda: "lab" in [n.name for n in screen.networks], what="network")
        net = next(n for n in screen.networks if n.name == "lab")
        assert (net.active, net.autostart, net.forward, net.ipv4, net.dhcp) == (
            True, True, None, "10.50.0.1/24", ("10.50.0.100", "10.50.0.254"))


async def test_network_stop_and_undefine_warn_naming_the_vms():
    app = _app()
    async with run_noted(app, size=(120, 40)) as pilot:
        screen = await _open(pilot, "N", NetworkScreen)
        await pilot.press("D")
        await wait_for(lambda: isinstance(app.screen, ConfirmDialog))
        question = app.screen.question
        assert "It is used by alpha, bravo, charlie, delta, echo" in question
        await pilot.press("n")  # no
        await wait_for(lambda: isinstance(app.screen, NetworkScreen))
        await pilot.press("x")
        await wait_for(lambda: isinstance(app.screen, ConfirmDialog))
        assert "alpha, bravo, charlie, delta, echo have a NIC on it" in app.screen.question
        await pilot.press("y")
        await wait_for(lambda: screen.networks and not screen.networks[0].active, what="stopped")
        await pilot.press("s")
        await wait_for(lambda: screen.networks[0].active, what="started")
        await pilot.press("a")
        await wait_for(lambda: screen.networks[0].autostart, what="autostart")
        await pilot.press("D")
        await wait_for(lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.press("y")
        await wait_for(lambda: screen.networks == [], what="undefined")
        assert "n defines one" in str(screen.query_one("#leases-title").render())


async def test_network_events_reload_the_screen():
    app = _app()
    async with run_noted(app, size=(120, 40)) as pilot:
        screen = await _open(pilot, "N", NetworkScreen)
        await app.service.call(lambda c: c.networkLookupByName("default").destroy())
        await wait_for(lambda: not screen.networks[0].active, what="event reload")
