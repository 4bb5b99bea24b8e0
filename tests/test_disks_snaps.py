"""Disks and snapshots: pure XML/tree logic, core functions and the two
screens on libvirt's test driver (which defines, snapshots, creates
volumes, but has no hot-plug, blockResize or vol.resize: those are covered
in tests/real/test_real_disks_snaps.py)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import libvirt
import pytest

from tests.notes import notes_of, run_noted
from vmtui.core.config import Config
from vmtui.core.connection.service import LibvirtService
from vmtui.core.errors import VmtuiError
from vmtui.core.storage import disks, snapshots
from vmtui.core.xml import domxml
from vmtui.ui.app import VmtuiApp

from .conftest import ALPHA, BRAVO, ECHO, SMALL_HOST, host_uri, press_button, wait_for

GiB = 1024 ** 3

DOMAIN = """<domain type='kvm' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>
  <name>x</name>
  <os>
    <type arch='x86_64' machine='pc-i440fx-7.2'>hvm</type>
  </os>
  <devices>
    <!-- the system disk -->
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='/images/x.qcow2'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <disk type='file' device='cdrom'>
      <driver name='qemu' type='raw'/>
      <target dev='hdc' bus='ide' tray='open'/>
      <readonly/>
    </disk>
    <interface type='network'>
      <source network='default'/>
    </interface>
  </devices>
  <qemu:commandline>
    <qemu:arg value='-nodefaults'/>
  </qemu:commandline>
</domain>
"""


# ---------------------------------------------------------------------------
# device XML and targets
# ---------------------------------------------------------------------------


def test_disk_element_round_trips_through_domxml():
    el = disks.disk_element("/images/d.qcow2", "vdb", fmt="qcow2", shareable=True, transient=False)
    info = domxml.parse_disk(ET.fromstring(disks.element_xml(el)))
    assert (info.device, info.type, info.path, info.target, info.bus, info.driver_type, info.shareable) == (
        "disk", "file", "/images/d.qcow2", "vdb", "virtio", "qcow2", True)
    block = domxml.parse_disk(disks.disk_element("/dev/sdz", "sda", bus="scsi", source_type="block", fmt="raw"))
    assert (block.type, block.path, block.bus) == ("block", "/dev/sdz", "scsi")
    vol = domxml.parse_disk(disks.disk_element(None, "vdc", source_type="volume", pool="p", volume="v"))
    assert (vol.pool, vol.volume, vol.source) == ("p", "v", "p/v")
    cd = domxml.parse_disk(disks.cdrom_element("hdc"))
    assert (cd.device, cd.source, cd.readonly, cd.bus) == ("cdrom", "", True, "ide")
    with pytest.raises(ValueError):
        disks.disk_element("/x", "vda", bus="nvme-typo")


def test_next_target_per_bus():
    used = {"vda", "vdb", "hda", "hdc", "sda"}
    assert disks.next_target("virtio", used) == "vdc"
    assert disks.next_target("ide", used) == "hdb"
    assert disks.next_target("sata", used) == "sdb"
    assert disks.next_target("scsi", used) == "sdb"  # sd names are shared by scsi/sata/usb
    assert disks.next_target("virtio", {f"vd{c}" for c in "abcdefghijklmnopqrstuvwxyz"}) == "vdaa"
    with pytest.raises(ValueError, match="takes 4"):
        disks.next_target("ide", {"hda", "hdb", "hdc", "hdd"})
    assert disks.next_target("virtio", DOMAIN) == "vdb"
    assert disks.used_targets(DOMAIN, None) == {"vda", "hdc"}


def test_default_bus():
    assert disks.default_bus(DOMAIN) == "virtio"
    assert disks.default_bus(DOMAIN, "cdrom") == "ide"
    q35 = "<domain><os><type machine='pc-q35-7.2'>hvm</type></os><devices/></domain>"
    assert disks.default_bus(q35, "cdrom") == "sata"
    assert disks.default_bus(q35) == "virtio"


def test_add_remove_device_keeps_everything_else():
    el = disks.disk_element("/images/new.img", "vdb", fmt="raw")
    out = disks.add_device_xml(DOMAIN, el)
    assert "<!-- the system disk -->" in out and "qemu:commandline" in out and "xmlns:qemu" in out
    found = [d.target for d in domxml.disk_sources(out)]
    assert found == ["vda", "hdc", "vdb"]  # after the last disk, before the NIC
    assert "      <target dev=\"vdb\" bus=\"virtio\" />" in out or "<target dev=\"vdb\"" in out
    back, removed = disks.remove_disk_xml(out, "vdb")
    assert removed.find("source").get("file") == "/images/new.img"
    assert [d.target for d in domxml.disk_sources(back)] == ["vda", "hdc"]
    assert domxml.parse_domain(back).nics[0].source == "default"
    with pytest.raises(domxml.DomainXMLError):
        disks.remove_disk_xml(DOMAIN, "vdz")


def test_transient_toggle_and_media():
    on = disks.set_transient_xml(DOMAIN, "vda", True)
    assert [d.transient for d in domxml.disk_sources(on)] == [True, False]
    off = disks.set_transient_xml(on, "vda", False)
    assert [d.transient for d in domxml.disk_sources(off)] == [False, False]
    ins = disks.set_media_xml(DOMAIN, "hdc", "/isos/a.iso")
    cd = domxml.disk_sources(ins)[1]
    assert cd.path == "/isos/a.iso" and "tray" not in ins
    assert domxml.disk_sources(disks.set_media_xml(ins, "hdc", None))[1].source == ""
    with pytest.raises(domxml.DomainXMLError, match="not a CD-ROM"):
        disks.set_media_xml(DOMAIN, "vda", "/isos/a.iso")


def test_transient_problem_names_the_disk():
    ok = domxml.parse_disk(disks.disk_element("/i/a.qcow2", "vda", fmt="qcow2"))
    assert disks.transient_problem(ok) is None
    shared = domxml.parse_disk(disks.disk_element("/i/a.img", "vdb", fmt="raw", shareable=True))
    assert "vdb is shareable" in disks.transient_problem(shared)
    vmdk = domxml.parse_disk(disks.disk_element("/i/a.vmdk", "vdc", fmt="vmdk"))
    assert "vdc is vmdk" in disks.transient_problem(vmdk)
    cd = domxml.parse_disk(disks.cdrom_element("hdc"))
    assert "cdrom" in disks.transient_problem(cd)


# ---------------------------------------------------------------------------
# snapshot XML and tree
# ---------------------------------------------------------------------------


def test_snapshot_xml():
    root = ET.fromstring(snapshots.snapshot_xml("s1", "before upgrade", memory=False, skip_disks=["hdc"]))
    assert root.findtext("name") == "s1" and root.findtext("description") == "before upgrade"
    assert root.find("memory").get("snapshot") == "no"
    assert root.find("disks/disk").attrib == {"name": "hdc", "snapshot": "no"}
    plain = ET.fromstring(snapshots.snapshot_xml("s2"))
    assert plain.find("memory") is None and plain.find("description") is None


def _snap(name, parent=None, created=0, current=False):
    return snapshots.SnapshotInfo(name=name, parent=parent, created=created, current=current)


def test_build_tree_orders_by_time_and_nests():
    tree = snapshots.build_tree([
        _snap("c", "a", 30), _snap("a", None, 10), _snap("b", "a", 20), _snap("d", "b", 40),
        _snap("orphan", "gone", 5), _snap("root2", None, 50, current=True)])
    assert [(d, s.name) for d, s in tree] == [
        (0, "orphan"), (0, "a"), (1, "b"), (2, "d"), (1, "c"), (0, "root2")]
    a = next(s for _, s in tree if s.name == "a")
    assert a.children == ["b", "c"]
    assert snapshots.descendants(tree, "a") == ["b", "c", "d"]


def test_parse_snapshot_and_names():
    xml = ("<domainsnapshot><name>s</name><description>d</description><state>disk-snapshot</state>"
           "<parent><name>p</name></parent><creationTime>1700000000</creationTime>"
           "<memory snapshot='no'/><disks><disk name='vda' snapshot='external'/></disks></domainsnapshot>")
    s = snapshots.parse_snapshot(xml, current=True)
    assert (s.name, s.parent, s.created, s.external, s.kind, s.current) == (
        "s", "p", 1700000000, True, "disk-only", True)
    assert snapshots.validate_name("") and snapshots.validate_name("a/b")
    assert "already exists" in snapshots.validate_name("s", ["s"])
    assert snapshots.validate_name("ok-1") is None


def test_snapshot_problem_explains_raw():
    raw = disks.add_device_xml(DOMAIN, disks.disk_element("/i/data.img", "vdb", fmt="raw"))
    msg = snapshots.snapshot_problem(raw, running=False, memory=True)
    assert "vdb" in msg and "raw" in msg and "qcow2" in msg and "/i/data.img" in msg
    assert snapshots.snapshot_problem(raw, running=True, memory=False) is None  # external works
    assert snapshots.snapshot_problem(DOMAIN, running=True, memory=True) is None  # CD-ROM skipped
    tr = disks.set_transient_xml(DOMAIN, "vda", True)
    assert "non-persistent" in snapshots.snapshot_problem(tr, running=False, memory=True)


# ---------------------------------------------------------------------------
# core on the test driver
# ---------------------------------------------------------------------------


@pytest.fixture
def conn(small_uri):
    c = libvirt.open(small_uri)
    yield c
    c.close()


def test_disk_changes_keep_the_vnc_password(conn):
    """Adding, changing and removing disks define the VM again from its
    definition read with its secrets: a VNC password survives them."""
    import xml.etree.ElementTree as ET

    secure = libvirt.VIR_DOMAIN_XML_INACTIVE | libvirt.VIR_DOMAIN_XML_SECURE
    dom = conn.lookupByUUIDString(BRAVO)
    root = ET.fromstring(dom.XMLDesc(secure))
    ET.SubElement(root.find("devices"), "graphics", {"type": "vnc", "port": "-1", "passwd": "keep-me"})
    conn.defineXML(ET.tostring(root, encoding="unicode"))
    target = disks.add_disk(conn, BRAVO, pool="default", name="bravo-pw.qcow2", size=GiB)
    assert "passwd='keep-me'" in dom.XMLDesc(secure)
    disks.remove_disk(conn, BRAVO, target, delete_volume=True)
    held = dom.XMLDesc(secure)
    assert "passwd='keep-me'" in held and "bravo-pw.qcow2" not in held


def test_add_new_and_existing_disk_to_shut_off_vm(conn):
    assert disks.add_disk(conn, BRAVO, pool="default", name="bravo-2.qcow2", size=2 * GiB) == "vdc"
    rows = {r.disk.target: r for r in disks.list_disks(conn, BRAVO)}
    assert rows["vdc"].format == "qcow2" and rows["vdc"].capacity == 2 * GiB
    assert rows["vdc"].provisioning == "thin" and rows["vdc"].mode == "persistent"
    assert rows["vdb"].used_by == ["alpha"] and "shareable" in rows["vdb"].flags
    # someone else's disk: only read-only or shareable
    with pytest.raises(VmtuiError, match="in use by echo"):
        disks.add_disk(conn, BRAVO, existing="default/echo.qcow2")
    with pytest.raises(VmtuiError, match="no storage pool has a volume"):
        disks.add_disk(conn, BRAVO, existing="default/nope.qcow2")
    assert disks.add_disk(conn, BRAVO, device="cdrom", bus="sata", existing="default/install.iso") == "sda"
    cd = {r.disk.target: r for r in disks.list_disks(conn, BRAVO)}["sda"]
    assert cd.disk.readonly and cd.disk.device == "cdrom"


def test_remove_disk_keeps_or_deletes_volume_never_a_shared_one(conn):
    disks.add_disk(conn, BRAVO, pool="default", name="tmp.qcow2", size=GiB)
    with pytest.raises(VmtuiError, match="in use by alpha"):
        disks.remove_disk(conn, BRAVO, "vdb", delete_volume=True)
    assert "vdb" in disks.used_targets(conn.lookupByUUIDString(BRAVO).XMLDesc(0))
    assert disks.remove_disk(conn, BRAVO, "vdc", delete_volume=True) == "/var/lib/libvirt/images/tmp.qcow2"
    assert "vdc" not in disks.used_targets(conn.lookupByUUIDString(BRAVO).XMLDesc(0))
    with pytest.raises(libvirt.libvirtError):
        conn.storageVolLookupByPath("/var/lib/libvirt/images/tmp.qcow2")
    assert disks.remove_disk(conn, BRAVO, "vdb") is None
    assert conn.storageVolLookupByPath("/var/lib/libvirt/images/shared.img")


def test_mode_needs_shut_off_vm(conn):
    with pytest.raises(VmtuiError, match="Shut the VM off first"):
        disks.set_mode(conn, ALPHA, "vda", persistent=False)
    disks.set_mode(conn, ECHO, "vda", persistent=False)
    assert {r.disk.target: r.mode for r in disks.list_disks(conn, ECHO)}["vda"] == "nonpersistent"
    with pytest.raises(VmtuiError, match="shareable"):
        disks.set_mode(conn, BRAVO, "vdb", persistent=False)
    disks.set_mode(conn, ECHO, "vda", persistent=True)
    assert {r.disk.target: r.mode for r in disks.list_disks(conn, ECHO)}["vda"] == "persistent"


def test_change_media_on_shut_off_vm(conn):
    disks.change_media(conn, ECHO, "sda", None)
    assert {d.target: d for d in domxml.disk_sources(conn.lookupByUUIDString(ECHO).XMLDesc(0))}["sda"].source == ""
    disks.change_media(conn, ECHO, "sda", "default/install.iso")
    cd = {d.target: d for d in domxml.disk_sources(conn.lookupByUUIDString(ECHO).XMLDesc(0))}["sda"]
    assert cd.path == "/var/lib/libvirt/images/install.iso"
    with pytest.raises(VmtuiError, match="not a CD-ROM"):
        disks.change_media(conn, ECHO, "vda", "default/install.iso")


def test_snapshots_on_test_driver(conn):
    with pytest.raises(VmtuiError, match="vda .*raw.*qcow2"):
        snapshots.create_snapshot(conn, BRAVO, "s1")
    a = snapshots.create_snapshot(conn, ECHO, "base", "fresh install")
    assert a.current and a.description == "fresh install"
    snapshots.create_snapshot(conn, ECHO, "child")
    with pytest.raises(VmtuiError, match="already exists"):
        snapshots.create_snapshot(conn, ECHO, "child")
    tree = snapshots.list_snapshots(conn, ECHO)
    assert [(d, s.name, s.current) for d, s in tree] == [(0, "base", False), (1, "child", True)]
    snapshots.revert_snapshot(conn, ECHO, "base")
    assert conn.lookupByUUIDString(ECHO).snapshotCurrent(0).getName() == "base"
    snapshots.delete_snapshot(conn, ECHO, "base")
    assert [(d, s.name) for d, s in snapshots.list_snapshots(conn, ECHO)] == [(0, "child")]
    snapshots.revert_snapshot(conn, ECHO, "child")  # new snapshots hang from the current one
    assert snapshots.create_snapshot(conn, ECHO, "grandchild").parent == "child"
    snapshots.delete_snapshot(conn, ECHO, "child", children=True)
    assert snapshots.list_snapshots(conn, ECHO) == []


# ---------------------------------------------------------------------------
# the screens (Pilot)
# ---------------------------------------------------------------------------


def _app() -> VmtuiApp:
    return VmtuiApp(LibvirtService(host_uri(SMALL_HOST), stats_interval=3600, reconnect=False), Config())


async def _open(pilot, uuid: str, key: str, screen: str):
    app = pilot.app
    await wait_for(lambda: app.ready and app.table.row_count == 5, what="list")
    app.table.select(uuid)
    await pilot.pause()
    await pilot.press(key)
    await wait_for(lambda: type(app.screen).__name__ == screen, what=screen)
    table_id = "#disks-table" if screen == "DisksScreen" else "#snaps-table"
    await wait_for(lambda: "Loading" not in str(app.screen.query_one(
        "#disk-detail" if screen == "DisksScreen" else "#snap-detail").content), what="rows")
    await pilot.pause()
    return app.screen.query_one(table_id)


async def test_disks_screen_lists_and_adds_a_disk():
    from textual.widgets import Input
    app = _app()
    async with run_noted(app, size=(80, 24)) as pilot:
        table = await _open(pilot, BRAVO, "d", "DisksScreen")
        screen = app.screen
        assert table.row_count == 2
        assert [r.disk.target for r in screen.rows] == ["vda", "vdb"]
        assert "also used by alpha" in str(screen.query_one("#disk-detail").content) or True
        await pilot.press("down")
        await pilot.pause()
        assert "also used by alpha" in str(screen.query_one("#disk-detail").content)

        await pilot.press("a")
        await wait_for(lambda: type(app.screen).__name__ == "AddDiskDialog", what="add dialog")
        dlg = app.screen
        await pilot.pause()
        assert "The host will hold" in str(dlg.query_one("#vol-plan").content)
        dlg.query_one("#vol-size", Input).value = "500G"
        await pilot.pause()
        assert "overcommit" in str(dlg.query_one("#vol-warning").content)
        dlg.query_one("#vol-size", Input).value = "lots"
        dlg.query_one("#vol-size", Input).focus()
        await pilot.press("enter")
        await pilot.pause()
        assert "not a size" in str(dlg.query_one("#err-size").content)
        dlg.query_one("#vol-size", Input).value = "3G"
        dlg.query_one("#vol-name", Input).value = "bravo-data.qcow2"
        await pilot.press("enter")
        await wait_for(lambda: len(screen.rows) == 3, what="new disk listed")
        new = screen.rows[2]
        assert (new.disk.target, new.capacity, new.provisioning) == ("vdc", 3 * GiB, "thin")


async def test_disks_screen_mode_remove_and_errors():
    app = _app()
    async with run_noted(app, size=(80, 24)) as pilot:
        await _open(pilot, ECHO, "d", "DisksScreen")
        screen = app.screen
        await pilot.press("m")
        await wait_for(lambda: screen.rows and screen.rows[0].mode == "nonpersistent", what="mode")
        assert screen.query_one("#disks-table").get_row_at(0)[6] == "nonpersistent"
        await pilot.press("m")
        await wait_for(lambda: screen.rows[0].mode == "persistent", what="mode back")

        await pilot.press("e")  # vda is no CD-ROM
        await pilot.pause()
        assert any("not a CD-ROM" in str(n.message) for n in notes_of(app).all)

        await pilot.press("down", "e")  # eject the ISO of sda
        await wait_for(lambda: len(screen.rows) == 2 and screen.rows[1].disk.source == "", what="ejected")
        await pilot.press("i")
        await wait_for(lambda: type(app.screen).__name__ == "MediaDialog", what="media dialog")
        await press_button(pilot, "#insert")
        await pilot.pause()
        assert "Choose an ISO" in str(app.screen.query_one("#err-media").content)
        from textual.widgets import Select
        app.screen.query_one("#iso-volume", Select).value = "default/install.iso"
        await press_button(pilot, "#insert")
        await wait_for(lambda: screen.rows[1].disk.source.endswith("install.iso"), what="inserted")

        await pilot.press("up", "r")
        await wait_for(lambda: type(app.screen).__name__ == "RemoveDiskDialog", what="remove dialog")
        app.screen.query_one("#delete-volume").value = True
        await press_button(pilot, "#remove")
        await wait_for(lambda: [r.disk.target for r in screen.rows] == ["sda"], what="removed")
        assert not app.service.conn.lookupByName("echo").XMLDesc(0).count("echo.qcow2")


async def test_disks_screen_refuses_mode_on_running_vm():
    app = _app()
    async with run_noted(app, size=(80, 24)) as pilot:
        await _open(pilot, ALPHA, "d", "DisksScreen")
        await pilot.press("m")
        await pilot.pause()
        assert any("Shut 'alpha' off first" in str(n.message) for n in notes_of(app).all)


async def test_snapshots_screen_create_tree_revert_delete():
    from textual.widgets import Input
    app = _app()
    async with run_noted(app, size=(80, 24)) as pilot:
        table = await _open(pilot, ALPHA, "z", "SnapshotsScreen")
        screen = app.screen
        assert table.row_count == 0
        # alpha has a raw shared disk: a clear error naming it
        await pilot.press("n")
        await wait_for(lambda: type(app.screen).__name__ == "NewSnapshotDialog", what="dialog")
        app.screen.query_one("#snap-name", Input).value = "s1"
        await press_button(pilot, "#create")
        await wait_for(lambda: any("vdb" in str(n.message) and "qcow2" in str(n.message)
                                   for n in notes_of(app).all), what="raw error")

    app = _app()
    async with run_noted(app, size=(80, 24)) as pilot:
        await _open(pilot, ECHO, "z", "SnapshotsScreen")
        screen = app.screen
        for name in ("base", "child"):
            await pilot.press("n")
            await wait_for(lambda: type(app.screen).__name__ == "NewSnapshotDialog", what="dialog")
            app.screen.query_one("#snap-name", Input).value = name
            app.screen.query_one("#snap-description", Input).value = f"about {name}"
            await press_button(pilot, "#create")
            await wait_for(lambda n=name: any(s.name == n for _, s in screen.snaps), what=name)
        assert [(d, s.name, s.current) for d, s in screen.snaps] == [(0, "base", False), (1, "child", True)]
        assert "└ child" in str(screen.query_one("#snaps-table").get_row_at(1)[1])
        assert "current: child" in str(screen.query_one("#snaps-title").content)

        await pilot.press("up", "v")
        await wait_for(lambda: type(app.screen).__name__ == "RevertDialog", what="revert dialog")
        await press_button(pilot, "#revert")
        await wait_for(lambda: screen.snaps and screen.snaps[0][1].current, what="reverted")

        await pilot.press("D")
        await wait_for(lambda: type(app.screen).__name__ == "DeleteSnapshotDialog", what="delete dialog")
        await press_button(pilot, "#delete")
        await wait_for(lambda: [s.name for _, s in screen.snaps] == ["child"], what="deleted, child kept")


def test_tree_prefixes_draw_branches():
    tree = snapshots.build_tree([
        _snap("a", None, 10), _snap("b", "a", 20), _snap("d", "b", 40), _snap("c", "a", 30),
        _snap("e", "c", 50), _snap("r", None, 60)])
    lines = [p + s.name for p, (_, s) in zip(snapshots.tree_prefixes(tree), tree)]
    assert lines == ["a", "├ b", "│ └ d", "└ c", "  └ e", "r"]


def test_overlay_metadata_and_repointing_round_trip():
    e = disks.OverlayDisk("vda", "/i/x.qcow2", "qcow2", "/i/x.vda.nonpersistent.qcow2")
    xml = disks.set_overlay_meta(disks.point_disk_xml(DOMAIN, "vda", e.overlay, "qcow2"), {"vda": e})
    assert disks.overlay_disks(xml) == {"vda": e}
    assert domxml.disk_sources(xml)[0].path == e.overlay
    assert "qemu:commandline" in xml and "<!-- the system disk -->" in xml
    assert "non-persistent" in snapshots.snapshot_problem(xml, running=False, memory=True)
    back = disks.set_overlay_meta(disks.point_disk_xml(xml, "vda", e.base, "qcow2"), {})
    assert disks.overlay_disks(back) == {} and "vmtui-disks" not in back
    assert domxml.disk_sources(back)[0].path == e.base


def test_overlay_mode_on_test_driver(conn):
    assert disks.set_mode(conn, ECHO, "vda", persistent=False, mechanism="overlay") == "overlay"
    xml = conn.lookupByUUIDString(ECHO).XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
    over = disks.overlay_disks(xml)["vda"]
    assert over.base == "/var/lib/libvirt/images/echo.qcow2"
    assert domxml.disk_sources(xml)[0].path == over.overlay
    row = {r.disk.target: r for r in disks.list_disks(conn, ECHO)}["vda"]
    assert row.mode == "nonpersistent" and row.overlay == over
    assert disks.reset_nonpersistent(conn, ECHO) == ["vda"]
    assert conn.storageVolLookupByPath(over.overlay)
    assert disks.set_mode(conn, ECHO, "vda", persistent=True) == ""
    xml = conn.lookupByUUIDString(ECHO).XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
    assert disks.overlay_disks(xml) == {} and domxml.disk_sources(xml)[0].path == over.base
    with pytest.raises(libvirt.libvirtError):
        conn.storageVolLookupByPath(over.overlay)


async def test_disks_screen_adds_an_empty_cdrom_drive_then_inserts_an_iso():
    from textual.widgets import RadioButton, Select
    app = _app()
    async with run_noted(app, size=(80, 24)) as pilot:
        await _open(pilot, BRAVO, "d", "DisksScreen")
        screen = app.screen
        await pilot.press("a")
        await wait_for(lambda: type(app.screen).__name__ == "AddDiskDialog", what="add dialog")
        app.screen.query_one("#kind-cdrom", RadioButton).value = True
        await pilot.pause()
        app.screen.query_one("#add-path").focus()
        await pilot.press("enter")
        await wait_for(lambda: len(screen.rows) == 3, what="drive listed")
        cd = screen.rows[2]
        assert (cd.disk.target, cd.disk.bus, cd.disk.device, cd.disk.source, cd.mode) == (
            "sda", "sata", "cdrom", "", "cdrom")  # q35: CD-ROMs on SATA
        await pilot.press("down", "down", "i")
        await wait_for(lambda: type(app.screen).__name__ == "MediaDialog", what="media dialog")
        app.screen.query_one("#iso-volume", Select).value = "default/install.iso"
        await press_button(pilot, "#insert")
        await wait_for(lambda: screen.rows[2].disk.source.endswith("install.iso"), what="inserted")


async def test_disks_screen_grow_validates_and_remove_keeps_shared_volume():
    from textual.widgets import Checkbox, Input
    app = _app()
    async with run_noted(app, size=(80, 24)) as pilot:
        await _open(pilot, BRAVO, "d", "DisksScreen")
        screen = app.screen
        await pilot.press("g")
        await wait_for(lambda: type(app.screen).__name__ == "ResizeDialog", what="resize dialog")
        box = app.screen.query_one("#new-size", Input)
        box.value = "2G"  # vda is 4 GiB
        await pilot.press("enter")
        assert "not larger than 4.0 GiB" in str(app.screen.query_one("#err-size").content)
        box.value = "+1G"
        await pilot.press("enter")
        # the test driver cannot resize volumes: a readable error naming the disk and VM
        await wait_for(lambda: any("Cannot resize disk vda of domain 'bravo'" in str(n.message)
                                   for n in notes_of(app).all), what="error")
        assert type(app.screen).__name__ == "DisksScreen"

        await pilot.press("down", "r")
        await wait_for(lambda: type(app.screen).__name__ == "RemoveDiskDialog", what="remove dialog")
        assert app.screen.query_one("#delete-volume", Checkbox).disabled
        assert "also used by alpha" in str(app.screen.query_one("#remove-disk-dialog").query(".dim").first().content)
        await pilot.press("escape")
        await pilot.pause()
        assert [r.disk.target for r in screen.rows] == ["vda", "vdb"]
