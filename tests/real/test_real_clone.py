"""Clones and templates on the real libvirtd (qemu:///system), boot-free.

Each test defines a shut-off VM (never started: the checks are on the XML
libvirt holds and on the images) with qcow2 disks in its own transient dir
pool, and removes everything it made.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import xml.etree.ElementTree as ET

import libvirt
import pytest

from tests.real.test_real_storage import make_pool, pool  # noqa: F401  (fixtures)

from vmtui.core.clones import clone, templates
from vmtui.core import storage
from vmtui.core.errors import VmtuiError

pytestmark = pytest.mark.real

MiB = 1024 ** 2
_counter = itertools.count(1)
PATTERN = b"vmtui-clone-content-" * 1000


def _name(tag: str) -> str:
    return f"vmtui-test-{os.getpid()}-{tag}{next(_counter)}-{os.urandom(2).hex()}"


def _undefine(conn, name: str) -> None:
    try:
        dom = conn.lookupByName(name)
    except libvirt.libvirtError:
        return
    try:
        if dom.isActive():
            dom.destroy()
        dom.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_NVRAM)
    except libvirt.libvirtError:
        try:
            dom.undefine()
        except libvirt.libvirtError:
            pass


@pytest.fixture
def domains(system_conn):
    """Names of domains to undefine at teardown (sources and clones)."""
    names: list[str] = []
    yield names
    conn = libvirt.open("qemu:///system")
    try:
        for n in names:
            _undefine(conn, n)
    finally:
        conn.close()


def _qcow2_with_content(conn, pool_name: str, name: str, size: int = 16 * MiB) -> str:
    """A qcow2 volume holding PATTERN at offset 1 MiB (written with qemu-io? no:
    a raw file converted by qemu-img, then uploaded through libvirt)."""
    info = storage.create_volume(conn, pool_name, name, size, "qcow2", "thin")
    raw = f"/tmp/{name}.raw"
    with open(raw, "wb") as fh:
        fh.truncate(size)
        fh.seek(MiB)
        fh.write(PATTERN)
    try:
        subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw, info.path + ".tmp"],
                       check=True, capture_output=True)
        os.replace(info.path + ".tmp", info.path)
    finally:
        os.unlink(raw)
    conn.storagePoolLookupByName(pool_name).refresh(0)
    return info.path


def _define_source(conn, name: str, disks: list[str], *, cdrom: str | None = None, nics: int = 2,
                   nvram: str | None = None) -> libvirt.virDomain:
    dom = ET.Element("domain", type="qemu")
    ET.SubElement(dom, "name").text = name
    meta = ET.SubElement(dom, "metadata")
    ET.SubElement(meta, "{urn:example:other}keep", mark="1")
    ET.SubElement(dom, "memory", unit="MiB").text = "64"
    ET.SubElement(dom, "vcpu").text = "1"
    os_el = ET.SubElement(dom, "os")
    ET.SubElement(os_el, "type", arch="x86_64", machine="pc").text = "hvm"
    if nvram:
        ET.SubElement(os_el, "loader", readonly="yes", type="pflash").text = "/usr/share/OVMF/OVMF_CODE.fd"
        ET.SubElement(os_el, "nvram").text = nvram
    if nvram:
        ET.SubElement(ET.SubElement(dom, "features"), "acpi")
    devices = ET.SubElement(dom, "devices")
    for i, path in enumerate(disks):
        d = ET.SubElement(devices, "disk", type="file", device="disk")
        ET.SubElement(d, "driver", name="qemu", type="qcow2")
        ET.SubElement(d, "source", file=path)
        ET.SubElement(d, "target", dev=f"vd{'abcdefgh'[i]}", bus="virtio")
    if cdrom:
        d = ET.SubElement(devices, "disk", type="file", device="cdrom")
        ET.SubElement(d, "driver", name="qemu", type="raw")
        ET.SubElement(d, "source", file=cdrom)
        ET.SubElement(d, "target", dev="hdc", bus="ide")
        ET.SubElement(d, "readonly")
    for i in range(nics):
        n = ET.SubElement(devices, "interface", type="user")
        ET.SubElement(n, "mac", address=f"52:54:00:aa:bb:{i:02x}")
        ET.SubElement(n, "model", type="virtio")
    return conn.defineXML(ET.tostring(dom, encoding="unicode"))


def _img_info(path: str) -> dict:
    out = subprocess.run(["qemu-img", "info", "-U", "--output=json", path], check=True,
                         capture_output=True, text=True)
    return json.loads(out.stdout)


def _read_guest_bytes(path: str) -> bytes:
    """PATTERN's place in the virtual disk (whatever the format)."""
    out = f"/tmp/vmtui-test-{os.getpid()}-{os.urandom(3).hex()}.raw"
    try:
        subprocess.run(["qemu-img", "convert", "-U", "-O", "raw", path, out], check=True, capture_output=True)
        with open(out, "rb") as fh:
            fh.seek(MiB)
            return fh.read(len(PATTERN))
    finally:
        if os.path.exists(out):
            os.unlink(out)


def _setup(conn, pool_name, domains, **kw):
    src_name = _name("src")
    disk1 = _qcow2_with_content(conn, pool_name, f"{src_name}.qcow2")
    disk2 = storage.create_volume(conn, pool_name, f"{src_name}-data.qcow2", 8 * MiB).path
    iso = storage.create_volume(conn, pool_name, f"{src_name}-media.iso", MiB, "raw").path
    domains.append(src_name)
    dom = _define_source(conn, src_name, [disk1, disk2], cdrom=iso, **kw)
    return dom, src_name, disk1, disk2, iso


def _disks(xml: str) -> list[ET.Element]:
    return ET.fromstring(xml).findall("devices/disk")


def test_full_clone(system_conn, pool, domains):
    pool_name, path = pool
    dom, src_name, disk1, disk2, iso = _setup(system_conn, pool_name, domains)
    new_name = _name("clone")
    domains.append(new_name)
    plan = clone.plan_clone(system_conn, dom.UUIDString(), new_name, "full", pool_name)
    assert [d.action for d in plan.disks] == ["copy", "copy", "share"]
    assert plan.disks[0].new_name == f"{new_name}.qcow2"  # old VM name replaced in the file name
    seen = []
    result = clone.run_clone(system_conn, plan, lambda what, done, total: seen.append((what, done, total)))
    new = system_conn.lookupByName(new_name)
    xml = new.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
    root = ET.fromstring(xml)
    assert root.findtext("uuid") == result.uuid != dom.UUIDString()
    macs = [m.get("address") for m in root.iterfind("devices/interface/mac")]
    assert len(macs) == 2 and not set(macs) & {"52:54:00:aa:bb:00", "52:54:00:aa:bb:01"}
    assert all(m.startswith("52:54:00:") for m in macs)
    srcs = [d.find("source").get("file") for d in _disks(xml)]
    assert srcs[0] == str(path / f"{new_name}.qcow2") and srcs[0] != disk1
    assert srcs[1] not in (disk1, disk2) and os.path.dirname(srcs[1]) == str(path)
    assert srcs[2] == iso  # the CD-ROM is shared
    # other applications' metadata came along
    assert root.find("metadata/{urn:example:other}keep") is not None
    # same content, no backing file: a real copy
    info = _img_info(srcs[0])
    assert info["format"] == "qcow2" and "backing-filename" not in info
    assert _read_guest_bytes(srcs[0]) == PATTERN
    assert seen and seen[-1][1] == seen[-1][2]
    # the source is untouched
    assert [d.find("source").get("file") for d in _disks(dom.XMLDesc(0))] == [disk1, disk2, iso]


def test_linked_clone_of_template(system_conn, pool, domains):
    pool_name, path = pool
    dom, src_name, disk1, disk2, iso = _setup(system_conn, pool_name, domains)
    templates.set_marked(dom, True)
    assert templates.is_template(dom)
    # the other metadata is still there
    assert ET.fromstring(dom.XMLDesc(0)).find("metadata/{urn:example:other}keep") is not None
    new_name = _name("linked")
    domains.append(new_name)
    plan = clone.plan_clone(system_conn, dom.UUIDString(), new_name, "linked", pool_name)
    assert plan.warnings and "must not change" in plan.warnings[0]
    clone.run_clone(system_conn, plan)
    xml = system_conn.lookupByName(new_name).XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
    disks = _disks(xml)
    new1 = disks[0].find("source").get("file")
    assert disks[0].find("driver").get("type") == "qcow2"
    info = _img_info(new1)
    assert info["backing-filename"] == disk1
    assert info.get("backing-filename-format", "qcow2") == "qcow2"
    vol = storage.find_volume(system_conn, new1)
    assert vol.backing == disk1
    assert _read_guest_bytes(new1) == PATTERN  # through the backing file
    assert disks[2].find("source").get("file") == iso
    # the clone is no template (the marker is the source's)
    assert not templates.is_template(system_conn.lookupByName(new_name))
    # the original is now in use as a backing file
    assert storage.overlays_of(system_conn, disk1) == [f"{pool_name}/{os.path.basename(new1)}"]
    # ... so deleting the template never offers to delete that disk
    from vmtui.core.xml import domxml
    from vmtui.core.connection.service import LibvirtService
    usage = LibvirtService._disk_usage(system_conn, dom.UUIDString(), domxml.disk_sources(dom.XMLDesc(0)))
    assert usage[0].used_by == [f"overlay {pool_name}/{os.path.basename(new1)}"]
    assert not usage[0].deletable and "overlay" in usage[0].why_not_deletable


def test_failure_on_second_disk_leaves_nothing(system_conn, pool, domains):
    pool_name, path = pool
    dom, src_name, disk1, disk2, iso = _setup(system_conn, pool_name, domains)
    new_name = _name("fail")
    domains.append(new_name)
    plan = clone.plan_clone(system_conn, dom.UUIDString(), new_name, "full", pool_name)
    # someone makes a volume with the 2nd disk's new name after planning
    squatter = storage.create_volume(system_conn, pool_name, plan.disks[1].new_name, MiB, "raw")
    before = sorted(v.name() for v in system_conn.storagePoolLookupByName(pool_name).listAllVolumes(0))
    with pytest.raises(VmtuiError) as exc:
        clone.run_clone(system_conn, plan)
    assert "vdb" in str(exc.value)
    after = sorted(v.name() for v in system_conn.storagePoolLookupByName(pool_name).listAllVolumes(0))
    assert after == before  # the first copy is gone, the squatter's volume kept
    assert os.path.exists(squatter.path)
    assert not clone.name_taken(system_conn, new_name)


def test_failure_when_pool_fills_leaves_nothing(system_conn, make_pool, domains, tmp_path):
    """A tiny tmpfs pool: the first disk fits, the second does not."""
    def mount_small(p):
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", str(p)], check=True)
    small_name, small_path = make_pool(mount_small)
    big_name, _ = make_pool()
    src_name = _name("src")
    domains.append(src_name)
    # 4 MiB of real data each
    paths = []
    for i in range(2):
        v = storage.create_volume(system_conn, big_name, f"{src_name}-{i}.raw", 4 * MiB, "raw", "thick")
        with open(v.path, "r+b") as fh:  # data, not zeros: the copy cannot be sparse
            fh.write(os.urandom(4 * MiB))
        paths.append(v.path)
    system_conn.storagePoolLookupByName(big_name).refresh(0)
    dom = ET.Element("domain", type="qemu")
    ET.SubElement(dom, "name").text = src_name
    ET.SubElement(dom, "memory", unit="MiB").text = "64"
    os_el = ET.SubElement(dom, "os")
    ET.SubElement(os_el, "type", arch="x86_64", machine="pc").text = "hvm"
    devices = ET.SubElement(dom, "devices")
    for i, p in enumerate(paths):
        d = ET.SubElement(devices, "disk", type="file", device="disk")
        ET.SubElement(d, "driver", name="qemu", type="raw")
        ET.SubElement(d, "source", file=p)
        ET.SubElement(d, "target", dev=f"vd{'ab'[i]}", bus="virtio")
    src = system_conn.defineXML(ET.tostring(dom, encoding="unicode"))
    new_name = _name("full")
    domains.append(new_name)
    # the planner refuses this up front ...
    with pytest.raises(clone.CloneError) as exc:
        clone.plan_clone(system_conn, src.UUIDString(), new_name, "full", small_name)
    assert exc.value.field == "pool" and "free" in exc.value.cause
    # ... and if it gets through anyway, the copy fails and is cleaned up
    plan = clone.plan_clone(system_conn, src.UUIDString(), new_name, "full", small_name, check_space=False)
    with pytest.raises(VmtuiError):
        clone.run_clone(system_conn, plan)
    assert system_conn.storagePoolLookupByName(small_name).listAllVolumes(0) == []
    assert os.listdir(small_path) == []
    assert not clone.name_taken(system_conn, new_name)


def test_name_collision_is_a_field_error(system_conn, pool, domains):
    pool_name, _ = pool
    dom, src_name, *_ = _setup(system_conn, pool_name, domains)
    with pytest.raises(clone.CloneError) as exc:
        clone.plan_clone(system_conn, dom.UUIDString(), src_name, "full", pool_name)
    assert exc.value.field == "name" and "already exists" in exc.value.cause


NVRAM_DIR = "/var/lib/libvirt/qemu/nvram"


@pytest.fixture
def nvram_file():
    os.makedirs(NVRAM_DIR, exist_ok=True)
    path = os.path.join(NVRAM_DIR, f"vmtui-test-{os.getpid()}-{os.urandom(2).hex()}_VARS.fd")
    with open(path, "wb") as fh:
        fh.write(b"UEFI-VARS" + os.urandom(64 * 1024))
    made = [path]
    yield path, made
    for p in made:
        if os.path.exists(p):
            os.unlink(p)


def test_full_clone_copies_nvram(system_conn, pool, domains, nvram_file):
    nvram, made = nvram_file
    pool_name, _ = pool
    dom, src_name, *_ = _setup(system_conn, pool_name, domains, nvram=nvram)
    new_name = _name("uefi")
    domains.append(new_name)
    plan = clone.plan_clone(system_conn, dom.UUIDString(), new_name, "full", pool_name)
    assert plan.nvram_new == os.path.join(NVRAM_DIR, f"{new_name}_VARS.fd")
    made.append(plan.nvram_new)
    pools_before = {p.name() for p in system_conn.listAllStoragePools(0)}
    result = clone.run_clone(system_conn, plan)
    assert "UEFI variables copied" in result.notes
    xml = system_conn.lookupByName(new_name).XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
    assert ET.fromstring(xml).findtext("os/nvram") == plan.nvram_new
    with open(plan.nvram_new, "rb") as a, open(nvram, "rb") as b:
        assert a.read() == b.read()
    # the temporary pool on the NVRAM directory is gone again
    assert {p.name() for p in system_conn.listAllStoragePools(0)} == pools_before
    # and the source still points at its own
    assert ET.fromstring(dom.XMLDesc(0)).findtext("os/nvram") == nvram


async def test_clone_screen_on_real_host(system_conn, pool, domains):
    """Through the app: mark the VM a template with 'm', clone it with 'l' as
    a full copy into the pool; progress shows; the new VM is in the list."""
    from textual.widgets import Input, ProgressBar, RadioButton, Select

    from tests.conftest import wait_for
    from vmtui.core.config import Config
    from vmtui.core.connection.service import LibvirtService
    from vmtui.ui.app import VmtuiApp
    from vmtui.ui.templates_ui import CloneScreen

    pool_name, path = pool
    dom, src_name, disk1, *_ = _setup(system_conn, pool_name, domains)
    uuid = dom.UUIDString()
    new_name = _name("ui")
    domains.append(new_name)
    app = VmtuiApp(LibvirtService("qemu:///system", stats_interval=3600), Config())
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(lambda: app.ready and uuid in app.table.domains, timeout=30, what="source listed")
        app.table.select(uuid)
        await pilot.pause()
        await pilot.press("m")
        await wait_for(lambda: app.table.domains[uuid].template, timeout=10, what="marked")
        assert str(app.table.get_cell(uuid, "state")) == "template"
        await pilot.press("l")
        await wait_for(lambda: isinstance(app.screen, CloneScreen), what="clone screen")
        screen = app.screen
        await wait_for(lambda: screen.plan is not None, timeout=15, what="plan")
        assert screen.query_one("#mode-linked", RadioButton).value  # a template: linked by default
        screen.query_one("#mode-full", RadioButton).value = True
        screen.query_one("#clone-pool", Select).value = pool_name
        screen.query_one("#clone-name", Input).value = new_name
        await wait_for(lambda: screen.plan is not None and screen.plan.new_name == new_name
                       and screen.plan.mode == "full" and screen.plan.pool == pool_name, timeout=15, what="plan")
        shown = []
        await pilot.press("ctrl+s")

        def progress_or_gone() -> bool:
            if not isinstance(app.screen, CloneScreen):
                return True
            bars = screen.query("#clone-progress").results(ProgressBar)  # none while it is dismissed
            shown.extend(bar.display for bar in bars)
            return False

        await wait_for(progress_or_gone, timeout=60, interval=0.005, what="clone done")
        assert True in shown  # the progress bar was up
        await wait_for(lambda: any(d.name == new_name for d in app.table.domains.values()), timeout=15,
                       what="clone listed")
    new_xml = system_conn.lookupByName(new_name).XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
    src = ET.fromstring(new_xml).find("devices/disk/source").get("file")
    assert src == str(path / f"{new_name}.qcow2")
    assert "backing-filename" not in _img_info(src)
    assert _read_guest_bytes(src) == PATTERN
