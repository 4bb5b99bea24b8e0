"""Checks for the libvirt test-driver host definitions shipped with vmtui.

* ``vmtui/data/demo-host.xml``  -- the ``vmtui --demo`` host
* ``tests/data/host-small.xml`` -- the small fixture for unit/UI tests
* ``bench/gen_host.py``         -- generator of large hosts

Every test opens the XML with the real test driver, so a file libvirt
refuses to load (or loads differently than documented in
``tests/data/README.md``) fails here first.
"""

from __future__ import annotations

import importlib.util
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import libvirt
import pytest

ROOT = Path(__file__).resolve().parents[1]
DEMO_XML = ROOT / "vmtui" / "data" / "demo-host.xml"
SMALL_XML = ROOT / "tests" / "data" / "host-small.xml"
GEN_HOST_PY = ROOT / "bench" / "gen_host.py"

GiB = 1024**3
RUNNING = libvirt.VIR_DOMAIN_RUNNING
PAUSED = libvirt.VIR_DOMAIN_PAUSED
SHUTOFF = libvirt.VIR_DOMAIN_SHUTOFF
CRASHED = libvirt.VIR_DOMAIN_CRASHED
PMSUSPENDED = libvirt.VIR_DOMAIN_PMSUSPENDED

# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------


def _open(path: Path):
    return libvirt.open("test://" + str(path.resolve()))


def _dom_xml(dom) -> ET.Element:
    return ET.fromstring(dom.XMLDesc(0))


def _disks(root: ET.Element) -> list[dict]:
    out = []
    for d in root.findall("./devices/disk"):
        src = d.find("source")
        drv = d.find("driver")
        out.append({
            "device": d.get("device"),
            "path": src.get("file") if src is not None else None,
            "format": drv.get("type") if drv is not None else None,
            "target": d.find("target").get("dev"),
            "shareable": d.find("shareable") is not None,
        })
    return out


def _volumes(conn) -> dict[str, dict]:
    """All volumes of all pools, keyed by path."""
    vols = {}
    for pool in conn.listAllStoragePools():
        for vol in pool.listAllVolumes():
            vtype, cap, alloc = vol.info()
            fmt = ET.fromstring(vol.XMLDesc(0)).find("./target/format").get("type")
            vols[vol.path()] = {
                "pool": pool.name(), "name": vol.name(), "format": fmt,
                "capacity": cap, "allocation": alloc,
            }
    return vols


def _forward_mode(net) -> str | None:
    fwd = ET.fromstring(net.XMLDesc(0)).find("forward")
    if fwd is None:
        return None
    return fwd.get("mode", "nat")  # libvirt's default forward mode is nat


def _load_gen_host():
    spec = importlib.util.spec_from_file_location("vmtui_bench_gen_host", GEN_HOST_PY)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


# --------------------------------------------------------------------------
# demo host
# --------------------------------------------------------------------------

DEMO_STATES = {
    "web-01": RUNNING,
    "web-02": RUNNING,
    "db-primary": RUNNING,
    "db-replica": PAUSED,
    "ci-runner-1": RUNNING,
    "ci-runner-2": CRASHED,
    "win2022-ad": RUNNING,
    "fedora-workstation": PMSUSPENDED,
    "debian12-tmpl": SHUTOFF,
    "k8s-cp-1": RUNNING,
    "k8s-worker-1": RUNNING,
    "k8s-worker-2": RUNNING,
    "mail-gw": RUNNING,
    "backup-nas": SHUTOFF,
    "dev-sandbox": SHUTOFF,
    "monitoring": RUNNING,
    "legacy-erp": PAUSED,
}

# CD-ROM media deliberately outside every storage pool.
DEMO_EXPLICIT_ISOS = {"/srv/iso/rhel-7.9-x86_64-dvd.iso"}


@pytest.fixture(scope="module")
def demo():
    conn = _open(DEMO_XML)
    yield conn
    conn.close()


@pytest.fixture(scope="module")
def demo_doms(demo):
    return {d.name(): d for d in demo.listAllDomains()}


def test_demo_domain_names_and_count(demo_doms):
    assert len(demo_doms) >= 14
    assert set(demo_doms) == set(DEMO_STATES)


def test_demo_states(demo_doms):
    states = {name: dom.state()[0] for name, dom in demo_doms.items()}
    assert states == DEMO_STATES
    # at least one of every state family
    assert set(states.values()) >= {RUNNING, PAUSED, SHUTOFF, CRASHED, PMSUSPENDED}
    # every state but shutoff is "active" in the test driver
    for name, dom in demo_doms.items():
        assert bool(dom.isActive()) == (states[name] != SHUTOFF), name
        assert (dom.ID() == -1) == (states[name] == SHUTOFF), name


def test_demo_managed_save(demo_doms):
    saved = {n for n, d in demo_doms.items() if d.hasManagedSaveImage()}
    assert saved == {"dev-sandbox"}


def test_demo_uuids_macs_unique(demo_doms):
    uuids = [d.UUIDString() for d in demo_doms.values()]
    assert len(set(uuids)) == len(uuids)
    macs = [m.get("address")
            for d in demo_doms.values()
            for m in _dom_xml(d).findall("./devices/interface/mac")]
    assert len(set(macs)) == len(macs)


def test_demo_titles_descriptions_resources(demo_doms):
    titled = described = 0
    for name, dom in demo_doms.items():
        root = _dom_xml(dom)
        assert root.get("type") == "test"
        titled += bool((root.findtext("title") or "").strip())
        described += bool((root.findtext("description") or "").strip())
        _state, max_kib, cur_kib, vcpus, _cpu = dom.info()
        assert 1 <= vcpus <= 16, name
        assert 512 * 1024 <= cur_kib <= max_kib <= 64 * 1024 * 1024, name
    assert titled >= len(demo_doms) * 3 // 4
    assert 3 <= described < len(demo_doms)


def test_demo_node_info(demo):
    model, mem_mib, cpus, mhz, nodes, sockets, cores, threads = demo.getInfo()
    assert cpus == 16
    assert mem_mib == 64 * 1024
    assert (nodes, sockets, cores, threads) == (1, 1, 8, 2)


def test_demo_pools_and_volumes(demo):
    pools = {p.name(): p for p in demo.listAllStoragePools()}
    assert set(pools) == {"default", "fast-ssd"}
    paths = {n: ET.fromstring(p.XMLDesc(0)).findtext("./target/path") for n, p in pools.items()}
    assert paths == {"default": "/var/lib/libvirt/images", "fast-ssd": "/srv/ssd"}

    vols = _volumes(demo)
    by_pool = Counter(v["pool"] for v in vols.values())
    assert by_pool["default"] >= 10 and by_pool["fast-ssd"] >= 5
    formats = Counter(v["format"] for v in vols.values())
    assert formats["qcow2"] >= 10 and formats["raw"] >= 3 and formats["iso"] >= 2
    assert "/var/lib/libvirt/images/debian-12.8.0-amd64-netinst.iso" in vols

    for path, v in vols.items():
        assert path.startswith(paths[v["pool"]] + "/"), path
        if v["format"] == "qcow2":  # thin
            assert 0 < v["allocation"] < v["capacity"], path
        else:  # raw images and ISOs are thick
            assert v["allocation"] == v["capacity"], path


def test_demo_pool_overcommit(demo):
    vols = _volumes(demo)
    for pool in demo.listAllStoragePools():
        _state, cap, alloc, avail = pool.info()
        assert pool.isActive()
        mine = [v for v in vols.values() if v["pool"] == pool.name()]
        # test driver: allocation is the sum of the volumes' allocations
        assert alloc == sum(v["allocation"] for v in mine)
        assert avail == cap - alloc
        assert alloc < cap
        overcommitted = sum(v["capacity"] for v in mine) > cap
        assert overcommitted == (pool.name() == "default"), pool.name()


def test_demo_networks(demo):
    nets = {n.name(): n for n in demo.listAllNetworks()}
    assert set(nets) == {"default", "isolated"}
    assert _forward_mode(nets["default"]) == "nat"
    assert _forward_mode(nets["isolated"]) is None
    assert nets["default"].bridgeName() == "virbr0"
    assert nets["isolated"].bridgeName() == "virbr1"
    assert all(n.isActive() for n in nets.values())
    ips = {n: ET.fromstring(net.XMLDesc(0)).find("ip").get("address") for n, net in nets.items()}
    assert ips == {"default": "192.168.122.1", "isolated": "10.10.0.1"}


def test_demo_every_disk_is_a_volume_or_known_iso(demo, demo_doms):
    vols = _volumes(demo)
    for name, dom in demo_doms.items():
        for disk in _disks(_dom_xml(dom)):
            if disk["path"] is None:
                assert disk["device"] == "cdrom", (name, disk)  # empty tray
                continue
            if disk["path"] in DEMO_EXPLICIT_ISOS:
                assert disk["device"] == "cdrom", (name, disk)
                continue
            assert disk["path"] in vols, (name, disk["path"])
            vol = vols[disk["path"]]
            if disk["device"] == "cdrom":
                assert vol["format"] == "iso", (name, disk)
            else:
                assert vol["format"] == disk["format"], (name, disk)


def test_demo_disk_variety(demo_doms):
    users: dict[str, set[str]] = {}
    shareable: set[str] = set()
    cdroms_with_media = 0
    multi_disk = set()
    for name, dom in demo_doms.items():
        disks = _disks(_dom_xml(dom))
        if sum(d["device"] == "disk" for d in disks) >= 2:
            multi_disk.add(name)
        for d in disks:
            if d["device"] == "cdrom" and d["path"]:
                cdroms_with_media += 1
            if d["path"] and d["device"] == "disk":
                users.setdefault(d["path"], set()).add(name)
                if d["shareable"]:
                    shareable.add(d["path"])
    shared = {p: u for p, u in users.items() if len(u) > 1}
    assert shared == {"/srv/ssd/k8s-shared.img": {"k8s-worker-1", "k8s-worker-2"}}
    assert shareable == set(shared)
    assert "db-primary" in multi_disk
    assert cdroms_with_media >= 2


def test_demo_nics_graphics_serial_firmware(demo_doms):
    nic_kinds = set()
    graphics = Counter()
    with_serial = 0
    uefi = set()
    for name, dom in demo_doms.items():
        root = _dom_xml(dom)
        for nic in root.findall("./devices/interface"):
            src = nic.find("source")
            kind = nic.get("type")
            if kind == "network":
                nic_kinds.add(("network", src.get("network")))
            elif kind == "bridge":
                nic_kinds.add(("bridge", src.get("bridge")))
            elif kind == "direct":
                nic_kinds.add(("direct", src.get("mode")))
        for g in root.findall("./devices/graphics"):
            graphics[g.get("type")] += 1
        with_serial += root.find("./devices/serial") is not None
        os_el = root.find("os")
        loader = os_el.find("loader")
        if os_el.get("firmware") == "efi" or (loader is not None and loader.get("type") == "pflash"):
            uefi.add(name)
    assert nic_kinds >= {("network", "default"), ("network", "isolated"),
                         ("bridge", "br0"), ("direct", "bridge")}
    assert graphics["vnc"] >= 2 and graphics["spice"] >= 1
    assert with_serial >= len(demo_doms) * 3 // 4
    assert uefi == {"win2022-ad", "fedora-workstation"}


def test_demo_autostart_defaults_off_but_settable(demo_doms):
    # The test driver cannot declare autostart in the node XML.
    assert not any(d.autostart() for d in demo_doms.values())
    conn = _open(DEMO_XML)  # private copy: do not disturb the module fixture
    try:
        dom = conn.lookupByName("web-01")
        dom.setAutostart(1)
        assert dom.autostart() == 1
    finally:
        conn.close()


# --------------------------------------------------------------------------
# small fixture
# --------------------------------------------------------------------------

SMALL = {
    # name: (uuid, state)
    "alpha": ("11111111-1111-4111-8111-000000000001", RUNNING),
    "bravo": ("11111111-1111-4111-8111-000000000002", SHUTOFF),
    "charlie": ("11111111-1111-4111-8111-000000000003", PAUSED),
    "delta": ("11111111-1111-4111-8111-000000000004", RUNNING),
    "echo": ("11111111-1111-4111-8111-000000000005", SHUTOFF),
}


@pytest.fixture(scope="module")
def small():
    conn = _open(SMALL_XML)
    yield conn
    conn.close()


def test_small_domains(small):
    doms = {d.name(): d for d in small.listAllDomains()}
    assert set(doms) == set(SMALL)
    for name, (uuid, state) in SMALL.items():
        assert doms[name].UUIDString() == uuid
        assert doms[name].state()[0] == state
        assert small.lookupByUUIDString(uuid).name() == name
    delta = _dom_xml(doms["delta"])
    assert delta.findtext("title") == "Delta database"


def test_small_devices(small):
    disks = {}
    for dom in small.listAllDomains():
        root = _dom_xml(dom)
        assert root.findall("./devices/disk"), dom.name()
        assert root.findall("./devices/interface"), dom.name()
        assert root.find("./devices/serial") is not None, dom.name()
        nets = {i.find("source").get("network") for i in root.findall("./devices/interface")}
        assert nets == {"default"}
        disks[dom.name()] = _disks(root)

    img = "/var/lib/libvirt/images/"
    assert [(d["path"], d["device"], d["shareable"]) for d in disks["alpha"]] == [
        (img + "alpha.qcow2", "disk", False), (img + "shared.img", "disk", True)]
    assert [(d["path"], d["device"], d["shareable"]) for d in disks["bravo"]] == [
        (img + "bravo.img", "disk", False), (img + "shared.img", "disk", True)]
    assert [(d["path"], d["device"]) for d in disks["echo"]] == [
        (img + "echo.qcow2", "disk"), (img + "install.iso", "cdrom")]
    assert [d["path"] for d in disks["charlie"]] == [img + "charlie.qcow2"]
    assert [d["path"] for d in disks["delta"]] == [img + "delta.qcow2"]


def test_small_pool(small):
    pools = small.listAllStoragePools()
    assert [p.name() for p in pools] == ["default"]
    vols = _volumes(small)
    img = "/var/lib/libvirt/images/"
    expect = {
        "alpha.qcow2": "qcow2", "bravo.img": "raw", "shared.img": "raw",
        "install.iso": "iso", "charlie.qcow2": "qcow2", "delta.qcow2": "qcow2",
        "echo.qcow2": "qcow2",
    }
    assert {v["name"]: v["format"] for v in vols.values()} == expect
    for name, fmt in expect.items():
        v = vols[img + name]
        if fmt == "qcow2":
            assert v["allocation"] < v["capacity"], name
        else:
            assert v["allocation"] == v["capacity"], name
    assert vols[img + "alpha.qcow2"]["capacity"] == 10 * GiB
    assert vols[img + "alpha.qcow2"]["allocation"] == 2 * GiB
    assert vols[img + "bravo.img"]["capacity"] == 4 * GiB
    # every disk of every domain is a volume of the pool
    for dom in small.listAllDomains():
        for d in _disks(_dom_xml(dom)):
            assert d["path"] in vols, (dom.name(), d["path"])


def test_small_network(small):
    nets = small.listAllNetworks()
    assert [n.name() for n in nets] == ["default"]
    assert _forward_mode(nets[0]) == "nat"
    assert nets[0].bridgeName() == "virbr0"


# --------------------------------------------------------------------------
# generator
# --------------------------------------------------------------------------


@pytest.mark.parametrize("n", [0, 1, 250])
def test_gen_host_loadable(tmp_path, n):
    gen = _load_gen_host()
    path = tmp_path / "host.xml"
    gen.generate_host_xml(n, path)
    conn = _open(path)
    try:
        doms = conn.listAllDomains()
        assert len(doms) == n
        assert sorted(d.name() for d in doms) == [f"vm-{i:05d}" for i in range(1, n + 1)]
        assert len({d.UUIDString() for d in doms}) == n
        states = Counter(d.state()[0] for d in doms)
        assert set(states) <= {RUNNING, SHUTOFF, PAUSED}
        if n >= 100:
            assert states[RUNNING] and states[SHUTOFF] and states[PAUSED]
        vols = _volumes(conn)
        assert len(vols) == n
        for d in doms[:50]:
            root = _dom_xml(d)
            assert [x["path"] for x in _disks(root)] == [
                f"/var/lib/libvirt/images/{d.name()}.qcow2"]
            assert len(root.findall("./devices/interface")) == 1
        pool = conn.storagePoolLookupByName("default")
        _s, cap, alloc, avail = pool.info()
        assert alloc <= cap and avail == cap - alloc
        assert _forward_mode(conn.networkLookupByName("default")) == "nat"
    finally:
        conn.close()


def test_gen_host_deterministic(tmp_path):
    gen = _load_gen_host()
    a, b, c = tmp_path / "a.xml", tmp_path / "b.xml", tmp_path / "c.xml"
    gen.generate_host_xml(40, a)
    gen.generate_host_xml(40, str(b))
    gen.generate_host_xml(40, c, seed=99)
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()
