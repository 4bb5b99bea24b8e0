"""OVA export → import round trip on the real libvirtd (qemu:///system).

A shut-off VM with two qcow2 disks (one holding a known pattern) in a
transient dir pool ``vmtui-test-opool-<pid>-...`` is exported to an OVA in a
temp dir, then imported back under a new name through the same path the UI
uses (open_package → import_disks → to_vmspec → installer.create_vm): the
disks must hold the same data (``qemu-img compare``) and the CPU count and
memory must survive. Both the local path (qemu-img straight on the pool's
files) and the remote path (volume download/upload through libvirt streams)
are run. Pools and domains are removed at teardown.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import tarfile
import xml.etree.ElementTree as ET
from pathlib import Path

import libvirt
import pytest

from tests import guest
from tests.notes import notes_of, run_noted
from vmtui.core import ovf, storage
from vmtui.core.connection.service import LibvirtService
from vmtui.core.create.installer import create_vm
from vmtui.core.errors import VmtuiError

pytestmark = pytest.mark.real

URI = "qemu:///system"
MiB = 1024 ** 2
IMAGES = Path("/var/lib/libvirt/images")
POOL_PREFIX = "vmtui-test-opool-"
_counter = itertools.count(1)


def unique(kind: str) -> str:
    return f"vmtui-test-{os.getpid()}-{kind}{next(_counter)}-{os.urandom(2).hex()}"


@pytest.fixture
def pool(system_conn):
    guest.remove_stale_pools(system_conn, POOL_PREFIX)
    name = f"{POOL_PREFIX}{os.getpid()}-{next(_counter)}-{os.urandom(2).hex()}"
    path = IMAGES / name
    path.mkdir(mode=0o755)
    system_conn.storagePoolCreateXML(storage.dir_pool_xml(name, str(path)), 0)
    yield name, path
    guest.remove_pool(system_conn, name, path)


@pytest.fixture
def domains(system_conn):
    made: list[str] = []
    yield made
    for name in made:
        guest.destroy_and_undefine(system_conn, name)


@pytest.fixture
async def svc():
    service = LibvirtService(URI, stats_interval=3600, reconnect=False)
    await service.connect()
    yield service
    await service.close()


@pytest.fixture
def isolated_net(system_conn):
    """A transient isolated network (no <forward>): traffic stays on this machine."""
    name = unique("net")
    root = ET.Element("network")
    ET.SubElement(root, "name").text = name
    net = system_conn.networkCreateXML(ET.tostring(root, encoding="unicode"))
    yield name
    try:
        net.destroy()
    except libvirt.libvirtError:
        pass


def _make_source_vm(conn, pool_name: str, pool_path: Path, name: str,
                    network: str | None = None) -> tuple[Path, Path]:
    disk1 = pool_path / f"{name}-a.qcow2"
    disk2 = pool_path / f"{name}-b.qcow2"
    raw = pool_path / "pattern.raw"
    subprocess.run(["qemu-img", "create", "-q", "-f", "raw", str(raw), "24M"], check=True)
    with open(raw, "r+b") as fh:
        for off in range(0, 24 * MiB, 3 * MiB + 4096):  # a pattern spread over the disk
            fh.seek(off)
            fh.write(os.urandom(8192))
    subprocess.run(["qemu-img", "convert", "-q", "-f", "raw", "-O", "qcow2", str(raw), str(disk1)], check=True)
    raw.unlink()
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(disk2), "8M"], check=True)
    conn.storagePoolLookupByName(pool_name).refresh(0)
    dom = ET.Element("domain", type="qemu")
    ET.SubElement(dom, "name").text = name
    ET.SubElement(dom, "description").text = "round trip source"
    ET.SubElement(dom, "memory", unit="MiB").text = "192"
    ET.SubElement(dom, "currentMemory", unit="MiB").text = "192"
    ET.SubElement(dom, "vcpu").text = "3"
    os_el = ET.SubElement(dom, "os")
    ET.SubElement(os_el, "type", arch="x86_64", machine="pc").text = "hvm"
    devs = ET.SubElement(dom, "devices")
    for path, dev in ((disk1, "vda"), (disk2, "vdb")):
        d = ET.SubElement(devs, "disk", type="file", device="disk")
        ET.SubElement(d, "driver", name="qemu", type="qcow2")
        ET.SubElement(d, "source", file=str(path))
        ET.SubElement(d, "target", dev=dev, bus="virtio")
    if network:
        nic = ET.SubElement(devs, "interface", type="network")
        ET.SubElement(nic, "mac", address="52:54:00:0f:0f:01")
        ET.SubElement(nic, "source", network=network)
        ET.SubElement(nic, "model", type="virtio")
    conn.defineXML(ET.tostring(dom, encoding="unicode"))
    return disk1, disk2


def _compare(a: str, b: str) -> None:
    out = subprocess.run(["qemu-img", "compare", a, b], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.parametrize("local", [True, False], ids=["local", "streams"])
async def test_export_import_round_trip(svc, system_conn, pool, domains, tmp_path, local, isolated_net):
    pool_name, pool_path = pool
    src_name = unique("ovfsrc")
    domains.append(src_name)
    disk1, disk2 = _make_source_vm(system_conn, pool_name, pool_path, src_name, network=isolated_net)

    ova = tmp_path / "out.ova"
    steps = []
    path = await svc.call(lambda c: ovf.export_ova(c, src_name, ova, local=local,
                                                   progress=lambda m, f: steps.append((m, f))),
                          action="export", obj=src_name, timeout=600)
    assert path == str(ova)
    assert steps[-1] == ("Exported", 1.0)
    with tarfile.open(ova) as tf:
        names = tf.getnames()
    assert names[0].endswith(".ovf") and names[1].endswith(".mf")  # descriptor first
    assert sum(n.endswith(".vmdk") for n in names) == 2

    pkg = ovf.open_package(ova, work_dir=str(tmp_path))
    try:
        assert pkg.manifest == "checked (SHA256)"
        assert (pkg.vcpus, pkg.memory_mib, pkg.description) == (3, 192, "round trip source")
        assert [d.capacity for d in pkg.disks] == [24 * MiB, 8 * MiB]
        new_name = unique("ovfdst")
        names_ = ovf.volume_names(pkg, new_name)
        vols = await svc.call(lambda c: ovf.import_disks(c, pkg, pool_name, names_, local=local),
                              action="import", obj=new_name, timeout=600)
    finally:
        pkg.close()
    assert [v.name for v in vols] == names_
    assert [n.network for n in pkg.nics] == [isolated_net]
    nets = await svc.call(lambda c: [n.name() for n in c.listAllNetworks(0)])
    spec = ovf.to_vmspec(pkg, vols, name=new_name, virt_type="qemu", host_networks=nets)
    spec.machine = "pc"
    spec.graphics = "none"
    domains.append(new_name)
    await create_vm(svc, spec)

    dom = system_conn.lookupByName(new_name)
    root = ET.fromstring(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
    assert root.findtext("vcpu") == "3"
    assert int(root.findtext("memory")) == 192 * 1024
    assert root.findtext("description") == "round trip source"
    sources = [d.find("source").get("file") for d in root.findall("devices/disk[@device='disk']")]
    assert sources == [v.path for v in vols]
    for v in vols:
        assert ET.fromstring(system_conn.storageVolLookupByPath(v.path).XMLDesc(0)).find(
            "target/format").get("type") == "qcow2"
    nics = root.findall("devices/interface")
    assert [n.find("source").get("network") for n in nics] == [isolated_net]
    assert nics[0].find("mac").get("address") != "52:54:00:0f:0f:01"  # a new MAC, no clash with the source
    _compare(str(disk1), vols[0].path)
    _compare(str(disk2), vols[1].path)
    assert dom.isActive() == 0  # defined, not started


async def test_import_rolls_back_volumes(svc, system_conn, pool, tmp_path):
    pool_name, pool_path = pool
    good = tmp_path / "good.vmdk"
    subprocess.run(["qemu-img", "create", "-q", "-f", "vmdk", str(good), "4M"], check=True)
    bad = tmp_path / "bad.vmdk"
    bad.write_bytes(b"this is not a disk image" * 100)
    pkg = ovf.OvfPackage(source="x", version="1.x", name="rb",
                         disks=[ovf.OvfDisk("d1", 4 * MiB, path=str(good), format="vmdk"),
                                ovf.OvfDisk("d2", 4 * MiB, path=str(bad), format="vmdk")])
    name = unique("ovfrb")
    with pytest.raises(VmtuiError, match="bad.vmdk"):
        await svc.call(lambda c: ovf.import_disks(c, pkg, pool_name, ovf.volume_names(pkg, name), local=True),
                       action="import", obj=name, timeout=300)
    p = system_conn.storagePoolLookupByName(pool_name)
    p.refresh(0)
    assert [v.name() for v in p.listAllVolumes(0)] == []
    assert list(pool_path.iterdir()) == []


async def test_export_refuses_running_and_existing(svc, system_conn, pool, domains, tmp_path):
    pool_name, pool_path = pool
    src_name = unique("ovfx")
    domains.append(src_name)
    _make_source_vm(system_conn, pool_name, pool_path, src_name)
    (tmp_path / "there.ova").write_bytes(b"x")
    with pytest.raises(VmtuiError, match="already exists"):
        await svc.call(lambda c: ovf.export_ova(c, src_name, tmp_path / "there.ova", local=True),
                       action="export", obj=src_name)
    assert not list(tmp_path.glob("*.partial"))


SAMPLE = Path(__file__).resolve().parent.parent / "data" / "ovf" / "appliance.ova"


async def test_import_dialog_defines_the_vm(system_conn, pool, domains):
    """Pilot on the real host: I → read the sample OVA → Import → review in the
    customize step → Begin: the VM is defined with the converted disks."""
    from textual.widgets import Input, Select

    from tests.conftest import wait_for
    from vmtui.core.config import Config
    from vmtui.ui.app import VmtuiApp
    from vmtui.ui.ovf_screens import ImportOvfScreen
    from vmtui.ui.wizard import CustomizeScreen

    pool_name, pool_path = pool
    name = unique("ovfui")
    domains.append(name)
    app = VmtuiApp(LibvirtService(URI, stats_interval=3600, reconnect=False), Config())
    async with run_noted(app, size=(80, 24)) as pilot:
        await wait_for(lambda: app.ready, timeout=20, what="list")
        await pilot.press("I")
        await wait_for(lambda: isinstance(app.screen, ImportOvfScreen), what="import screen")
        scr = app.screen
        await wait_for(lambda: scr.pools, timeout=10, what="pools")
        scr.query_one("#ovf-path", Input).value = str(SAMPLE)
        await pilot.press("enter")
        await wait_for(lambda: scr.package is not None, timeout=20, what="package read")
        scr.query_one("#ovf-pool", Select).value = pool_name
        scr.query_one("#ovf-name", Input).value = name
        await pilot.press("ctrl+s")
        await wait_for(lambda: isinstance(app.screen, CustomizeScreen), timeout=60, what="customize step")
        cust = app.screen
        assert cust.spec.vcpus == 4 and cust.spec.memory_mib == 3072
        assert cust.spec.install.kind == "import"
        # this host runs TCG: i440fx + BIOS keep the test independent of OVMF
        cust.query_one("#c-machine", Select).value = "pc"
        cust.query_one("#c-firmware", Select).value = "bios"
        cust.query_one("#c-graphics", Select).value = "none"
        await pilot.pause()
        await pilot.press("ctrl+g")
        await wait_for(lambda: type(app.screen).__name__ == "DomainListScreen", timeout=60, what="back on the list")
    dom = system_conn.lookupByName(name)
    root = ET.fromstring(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
    assert root.findtext("vcpu") == "4"
    files = [d.find("source").get("file") for d in root.findall("devices/disk[@device='disk']")]
    assert files == [str(pool_path / f"{name}.qcow2"), str(pool_path / f"{name}-1.qcow2")]
    info = subprocess.run(["qemu-img", "info", "--output=json", files[0]], capture_output=True, text=True,
                          check=True).stdout
    assert '"format": "qcow2"' in info and '"virtual-size": 16777216' in info


async def test_import_dialog_cancel_in_review_removes_disks(system_conn, pool):
    from textual.widgets import Input, Select

    from tests.conftest import wait_for
    from vmtui.core.config import Config
    from vmtui.ui.app import VmtuiApp
    from vmtui.ui.ovf_screens import ImportOvfScreen
    from vmtui.ui.wizard import CustomizeScreen

    pool_name, pool_path = pool
    app = VmtuiApp(LibvirtService(URI, stats_interval=3600, reconnect=False), Config())
    async with run_noted(app, size=(80, 24)) as pilot:
        await wait_for(lambda: app.ready, timeout=20, what="list")
        await pilot.press("I")
        await wait_for(lambda: isinstance(app.screen, ImportOvfScreen), what="import screen")
        scr = app.screen
        await wait_for(lambda: scr.pools, timeout=10, what="pools")
        scr.query_one("#ovf-path", Input).value = str(SAMPLE)
        await pilot.press("enter")
        await wait_for(lambda: scr.package is not None, timeout=20, what="package read")
        scr.query_one("#ovf-pool", Select).value = pool_name
        scr.query_one("#ovf-name", Input).value = unique("ovfcancel")
        await pilot.press("ctrl+s")
        await wait_for(lambda: isinstance(app.screen, CustomizeScreen), timeout=60, what="customize step")
        assert len(list(pool_path.iterdir())) == 2
        await pilot.press("escape")
        await wait_for(lambda: isinstance(app.screen, ImportOvfScreen) and not scr.busy, timeout=20,
                       what="back on import")
        assert list(pool_path.iterdir()) == []


async def test_export_dialog_writes_the_ova(system_conn, pool, domains, tmp_path):
    """Pilot on the real host: E on a shut-off VM → path → Export → an OVA that reads back."""
    from textual.widgets import Input

    from tests.conftest import wait_for
    from vmtui.core.config import Config
    from vmtui.ui.app import VmtuiApp
    from vmtui.ui.ovf_screens import ExportOvaScreen

    pool_name, pool_path = pool
    src_name = unique("ovfe")
    domains.append(src_name)
    _make_source_vm(system_conn, pool_name, pool_path, src_name)
    uuid = system_conn.lookupByName(src_name).UUIDString()
    out = tmp_path / "exported.ova"
    app = VmtuiApp(LibvirtService(URI, stats_interval=3600, reconnect=False), Config())
    async with run_noted(app, size=(80, 24)) as pilot:
        await wait_for(lambda: app.ready and uuid in app.table.domains, timeout=20, what="list")
        app.table.select(uuid)
        await pilot.pause()
        await pilot.press("E")
        await wait_for(lambda: isinstance(app.screen, ExportOvaScreen), what="export dialog")
        app.screen.query_one("#ova-path", Input).value = str(out)
        await pilot.press("enter")
        await wait_for(lambda: not isinstance(app.screen, ExportOvaScreen), timeout=120, what="export done")
        assert any("Exported" in str(n.message) for n in notes_of(app).all)
    pkg = ovf.open_package(out, work_dir=str(tmp_path))
    try:
        assert (pkg.name, pkg.vcpus, pkg.memory_mib, len(pkg.disks)) == (src_name, 3, 192, 2)
    finally:
        pkg.close()


async def test_cancel_leaves_nothing(svc, system_conn, pool, domains, tmp_path):
    import threading

    pool_name, pool_path = pool
    src_name = unique("ovfc")
    domains.append(src_name)
    _make_source_vm(system_conn, pool_name, pool_path, src_name)
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(ovf.Cancelled):
        await svc.call(lambda c: ovf.export_ova(c, src_name, tmp_path / "c.ova", local=True, cancel=cancel),
                       action="export", obj=src_name, timeout=300)
    assert list(tmp_path.iterdir()) == []  # no OVA, no partial file, no work dir

    ova = tmp_path / "ok.ova"
    await svc.call(lambda c: ovf.export_ova(c, src_name, ova, local=True), action="export", obj=src_name,
                   timeout=300)
    pkg = ovf.open_package(ova, work_dir=str(tmp_path))
    before = sorted(p.name for p in pool_path.iterdir())
    try:
        with pytest.raises(ovf.Cancelled):
            await svc.call(lambda c: ovf.import_disks(c, pkg, pool_name, ovf.volume_names(pkg, unique("ovfc")),
                                                      local=True, cancel=cancel),
                           action="import", obj="x", timeout=300)
    finally:
        pkg.close()
    assert sorted(p.name for p in pool_path.iterdir()) == before


async def test_cancel_during_conversion_removes_the_partial_volume(svc, system_conn, pool, domains, tmp_path):
    import threading

    pool_name, pool_path = pool
    src_name = unique("ovfm")
    domains.append(src_name)
    _make_source_vm(system_conn, pool_name, pool_path, src_name)
    ova = tmp_path / "m.ova"
    await svc.call(lambda c: ovf.export_ova(c, src_name, ova, local=True), action="export", obj=src_name,
                   timeout=300)
    before = sorted(p.name for p in pool_path.iterdir())
    cancel = threading.Event()

    def progress(message: str, fraction: float) -> None:
        if message.startswith("Converting disk 2"):  # disk 1 is done and must go again
            cancel.set()

    pkg = ovf.open_package(ova, work_dir=str(tmp_path))
    try:
        with pytest.raises(ovf.Cancelled):
            await svc.call(lambda c: ovf.import_disks(c, pkg, pool_name, ovf.volume_names(pkg, unique("ovfm")),
                                                      local=True, cancel=cancel, progress=progress),
                           action="import", obj="x", timeout=300)
    finally:
        pkg.close()
    assert sorted(p.name for p in pool_path.iterdir()) == before
    p = system_conn.storagePoolLookupByName(pool_name)
    p.refresh(0)
    assert sorted(p.listVolumes()) == before
