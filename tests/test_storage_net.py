"""Pure logic of the storage and networks screens: pool/network XML,
validation, warning maths, leases."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import libvirt
import pytest

from vmtui.core.host import networks
from vmtui.core import storage
from vmtui.core.errors import VmtuiError
from vmtui.ui.network_screen import dhcp_label, fmt_expiry
from vmtui.ui.storage_screen import usage_bar

from .conftest import SMALL_HOST, host_uri

GiB = 1024 ** 3


def _pool(**kw) -> storage.PoolInfo:
    base = dict(name="p", uuid="u", type="dir", active=True, autostart=True, persistent=True,
                path="/srv/p", capacity=100 * GiB, allocation=10 * GiB, available=90 * GiB,
                volumes_capacity=50 * GiB, volume_count=3)
    base.update(kw)
    return storage.PoolInfo(**base)


# --- pool XML ----------------------------------------------------------------


def test_dir_pool_xml_round_trip():
    xml = storage.dir_pool_xml("isos & more", "/srv/isos")
    root = ET.fromstring(xml)
    assert root.tag == "pool" and root.get("type") == "dir"
    assert storage.parse_pool_xml(xml) == ("isos & more", "dir", "/srv/isos")
    assert "&amp;" in xml  # escaped by ElementTree, not string formatting


@pytest.mark.parametrize("name,problem", [
    ("", "Enter a name"), (" x", "space"), ("a/b", "'/'"), ("a\tb", "control"), ("ok-pool", None),
])
def test_validate_pool_name(name, problem):
    got = storage.validate_pool_name(name)
    assert (got is None) if problem is None else (problem in got)


@pytest.mark.parametrize("path,problem", [
    ("", "Enter the directory"), ("srv/x", "absolute"), ("/", "root"), ("/srv/x", None),
])
def test_validate_pool_path(path, problem):
    got = storage.validate_pool_path(path)
    assert (got is None) if problem is None else (problem in got)


# --- warnings ----------------------------------------------------------------


def test_no_warning_for_a_healthy_pool():
    assert storage.pool_warnings([_pool()]) == []
    assert storage.pool_warnings([_pool()], short=True) == []


def test_nearly_full_above_85_percent():
    at_85 = _pool(allocation=85 * GiB, available=15 * GiB)
    assert storage.pool_warnings([at_85]) == []  # "over 85 %"
    over = _pool(allocation=90 * GiB, available=10 * GiB)
    (w,) = storage.pool_warnings([over])
    assert "'p' is 90% full" in w and "10.0 GiB free" in w
    assert storage.pool_warnings([over], short=True) == ["pool p 90% full"]


def test_thin_overcommit_with_ratio():
    over = _pool(volumes_capacity=250 * GiB)
    (w,) = storage.pool_warnings([over])
    assert "overcommitted 2.50x" in w and "250.0 GiB on 100.0 GiB" in w
    both = _pool(volumes_capacity=432 * GiB, allocation=95 * GiB, available=5 * GiB)
    assert storage.pool_warnings([both], short=True) == ["pool p 95% full, 4.3x overcommitted"]
    assert len(storage.pool_warnings([both])) == 2


def test_exactly_full_capacity_is_not_overcommit_and_inactive_pools_are_skipped():
    assert storage.pool_warnings([_pool(volumes_capacity=100 * GiB)]) == []
    assert storage.pool_warnings([_pool(active=False, allocation=99 * GiB)]) == []
    assert storage.pool_warnings([_pool(capacity=0, allocation=0)]) == []


def test_usage_bar_is_plain_text():
    assert usage_bar(0.0) == "[--------]   0%"
    assert usage_bar(0.5) == "[####----]  50%"
    assert usage_bar(0.9) == "[#######-]  90%"
    assert usage_bar(1.7) == "[########] 100%"


# --- network XML and the short form -----------------------------------------------

DEFAULT = networks.NetworkInfo("default", "", True, True, True, "nat", "virbr0", "192.168.122.1/24",
                               ("192.168.122.2", "192.168.122.254"))


def test_nat_network_xml():
    plan = networks.plan_network("lab", "nat", "192.168.100.0/24", existing=[DEFAULT])
    assert plan.errors == {}
    root = ET.fromstring(plan.xml)
    assert root.findtext("name") == "lab"
    assert root.find("forward").get("mode") == "nat"
    ip = root.find("ip")
    assert (ip.get("address"), ip.get("prefix")) == ("192.168.100.1", "24")
    rng = ip.find("dhcp/range")
    assert (rng.get("start"), rng.get("end")) == ("192.168.100.2", "192.168.100.254")
    back = networks.parse_network_xml(plan.xml)
    assert (back.forward, back.ipv4, back.dhcp) == ("nat", "192.168.100.1/24", ("192.168.100.2", "192.168.100.254"))


def test_isolated_network_has_no_forward_and_keeps_a_given_range():
    plan = networks.plan_network("iso", "isolated", "10.20.30.1/24", "10.20.30.100", "10.20.30.150")
    root = ET.fromstring(plan.xml)
    assert root.find("forward") is None
    assert networks.parse_network_xml(plan.xml).mode_label == "isolated"
    assert plan.dhcp == ("10.20.30.100", "10.20.30.150")
    assert plan.gateway == "10.20.30.1"


@pytest.mark.parametrize("cidr,field_msg", [
    ("", "Enter the IPv4 network"),
    ("192.168.100.0", "no prefix length"),
    ("192.168.300.0/24", "not an IPv4 network"),
    ("10.0.0.0/31", "too small"),
    ("8.8.8.0/24", "not a private range"),
    ("192.168.122.128/25", "overlaps network 'default'"),
    ("192.168.0.0/16", "overlaps network 'default'"),
    ("192.168.100.255/24", "broadcast"),
])
def test_bad_cidr_is_an_error_on_the_field(cidr, field_msg):
    plan = networks.plan_network("lab", "nat", cidr, existing=[DEFAULT])
    assert plan.xml is None
    assert field_msg in plan.errors["cidr"]


def test_dhcp_range_errors_are_on_their_fields():
    p = networks.plan_network("lab", "nat", "192.168.100.0/24", "192.168.101.5", "x")
    assert "not a host address of 192.168.100.0/24" in p.errors["dhcp_start"]
    assert "not an IPv4 address" in p.errors["dhcp_end"]
    p = networks.plan_network("lab", "nat", "192.168.100.0/24", "192.168.100.200", "192.168.100.100")
    assert "ends" in p.errors["dhcp_end"]
    p = networks.plan_network("lab", "nat", "192.168.100.50/24", "192.168.100.10", "192.168.100.90")
    assert "host's own address 192.168.100.50" in p.errors["dhcp_end"]
    p = networks.plan_network("lab", "nat", "192.168.100.0/24", "192.168.100.1", "")
    assert "host's own address" in p.errors["dhcp_start"]


def test_name_errors():
    assert "already exists" in networks.plan_network("default", "nat", "10.1.0.0/24", existing=[DEFAULT]).errors["name"]
    assert "spaces" in networks.plan_network("my net", "nat", "10.1.0.0/24").errors["name"]
    assert "Enter a name" in networks.plan_network("", "nat", "10.1.0.0/24").errors["name"]


def test_default_dhcp_range():
    assert networks.default_dhcp_range("192.168.100.0/24") == ("192.168.100.2", "192.168.100.254")
    assert networks.default_dhcp_range("10.0.0.0/30") == ("10.0.0.2", "10.0.0.2")
    assert networks.default_dhcp_range("10.0.0.254/24") == ("10.0.0.1", "10.0.0.253")
    assert networks.default_dhcp_range("nonsense") is None


def test_dhcp_label_is_short():
    assert dhcp_label(("192.168.122.2", "192.168.122.254")) == "192.168.122.2–.254"
    assert dhcp_label(("10.0.0.2", "10.0.1.254")) == "10.0.0.2–.1.254"
    assert dhcp_label(None) == "-"


# --- leases ----------------------------------------------------------------------


def test_leases_name_their_vm_and_list_nics_without_a_lease():
    raw = [
        {"iface": "virbr5", "expirytime": 2000, "type": 0, "mac": "52:54:00:AA:00:02",
         "ipaddr": "10.9.0.20", "prefix": 24, "hostname": "web", "clientid": None, "iaid": None},
        {"iface": "virbr5", "expirytime": 0, "type": 0, "mac": "52:54:00:ff:ff:ff",
         "ipaddr": "10.9.0.3", "prefix": 24, "hostname": None, "clientid": None, "iaid": None},
    ]
    owners = {"52:54:00:aa:00:02": "web-01", "52:54:00:aa:00:03": "db-01"}
    out = networks.leases_from(raw, owners, {"52:54:00:aa:00:02": "web-01", "52:54:00:aa:00:03": "db-01"})
    assert [(x.ip, x.mac, x.hostname, x.owner) for x in out] == [
        ("10.9.0.3", "52:54:00:ff:ff:ff", None, None),
        ("10.9.0.20", "52:54:00:aa:00:02", "web", "web-01"),
        ("", "52:54:00:aa:00:03", None, "db-01"),
    ]
    assert out[1].address == "10.9.0.20/24" and out[1].expiry == 2000
    assert out[0].expiry is None


def test_fmt_expiry():
    assert fmt_expiry(None) == "never"
    assert fmt_expiry(1000, now=2000) == "expired"
    assert fmt_expiry(1000 + 3 * 3600 + 5 * 60, now=1000) == "in 3h05m"
    assert fmt_expiry(1000 + 600, now=1000) == "in 10m"


# --- on the test driver ---------------------------------------------------------------


@pytest.fixture
def conn():
    c = libvirt.open(host_uri(SMALL_HOST))
    yield c
    c.close()


def test_define_start_stop_delete_dir_pool_on_test_driver(conn, tmp_path):
    path = str(tmp_path / "newpool")
    info = storage.define_dir_pool(conn, "newpool", path)
    assert info.active and info.autostart and info.path == path
    with pytest.raises(VmtuiError, match="already exists"):
        storage.define_dir_pool(conn, "newpool", "/srv/other")
    with pytest.raises(VmtuiError, match="already uses"):
        storage.define_dir_pool(conn, "other", path + "/")
    storage.stop_pool(conn, "newpool")
    assert not storage.pool_info(conn, "newpool").active
    storage.start_pool(conn, "newpool")
    storage.set_pool_autostart(conn, "newpool", False)
    assert not storage.pool_info(conn, "newpool").autostart
    storage.create_volume(conn, "newpool", "v.qcow2", GiB)
    with pytest.raises(VmtuiError, match=r"not empty: it holds 1 volume \(v.qcow2\)"):
        storage.delete_pool(conn, "newpool")
    storage.delete_volume(conn, "newpool/v.qcow2")
    msg = storage.delete_pool(conn, "newpool")
    assert msg.startswith("deleted pool 'newpool'")
    assert "newpool" not in [p.name for p in storage.list_pools(conn)]


def test_network_users_and_clients_on_test_driver(conn):
    assert networks.network_users(conn) == {"default": ["alpha", "bravo", "charlie", "delta", "echo"]}
    clients, note = networks.network_clients(conn, "default")
    assert note == "this libvirt driver reports no leases"
    assert [(c.mac, c.owner, c.ip) for c in clients][:2] == [
        ("52:54:00:00:00:01", "alpha", ""), ("52:54:00:00:00:02", "bravo", "")]


def test_define_and_undefine_network_on_test_driver(conn):
    plan = networks.plan_network("lab", "isolated", "10.77.0.0/24", existing=networks.list_networks(conn))
    info = networks.define_network(conn, plan.xml)
    assert info.active and info.forward is None and info.dhcp == ("10.77.0.2", "10.77.0.254")
    networks.stop_network(conn, "lab")
    networks.start_network(conn, "lab")
    networks.undefine_network(conn, "lab")
    assert "lab" not in [n.name for n in networks.list_networks(conn)]
