"""Virtual networks and host interfaces, as the wizard and the networks screen need them.

Blocking functions taking a ``virConnect``; call them through ``LibvirtService.call``.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass

import libvirt

FORWARD_LABELS = {
    None: "isolated",
    "nat": "NAT",
    "route": "routed",
    "open": "open",
    "bridge": "bridge",
    "private": "macvtap private",
    "vepa": "macvtap VEPA",
    "passthrough": "macvtap passthrough",
    "hostdev": "SR-IOV",
}


@dataclass(slots=True)
class NetworkInfo:
    name: str
    uuid: str
    active: bool
    autostart: bool
    persistent: bool
    forward: str | None  # libvirt's <forward mode>, None = isolated
    bridge: str | None
    ipv4: str | None  # "192.168.122.1/24"
    dhcp: tuple[str, str] | None  # (start, end)

    @property
    def mode_label(self) -> str:
        return FORWARD_LABELS.get(self.forward, self.forward or "isolated")

    @property
    def label(self) -> str:
        state = "" if self.active else ", inactive"
        return f"{self.name} ({self.mode_label}{state})"


def parse_network_xml(xml: str, active: bool = True, autostart: bool = False,
                      persistent: bool = True) -> NetworkInfo:
    root = ET.fromstring(xml)
    fwd = root.find("forward")
    mode = None
    if fwd is not None:
        mode = fwd.get("mode", "nat")
    br = root.find("bridge")
    ipv4, dhcp = None, None
    for ip in root.findall("ip"):
        if ip.get("family", "ipv4") != "ipv4":
            continue
        addr = ip.get("address")
        prefix = ip.get("prefix")
        if prefix is None and ip.get("netmask"):
            prefix = str(sum(bin(int(x)).count("1") for x in ip.get("netmask", "").split(".") if x.isdigit()))
        if addr:
            ipv4 = f"{addr}/{prefix}" if prefix else addr
        rng = ip.find("dhcp/range")
        if rng is not None:
            dhcp = (rng.get("start", ""), rng.get("end", ""))
        break
    return NetworkInfo(
        name=root.findtext("name", ""), uuid=root.findtext("uuid", ""), active=active,
        autostart=autostart, persistent=persistent, forward=mode,
        bridge=br.get("name") if br is not None else None, ipv4=ipv4, dhcp=dhcp,
    )


def list_networks(conn: libvirt.virConnect) -> list[NetworkInfo]:
    out = []
    for net in conn.listAllNetworks(0):
        try:
            info = parse_network_xml(net.XMLDesc(0), bool(net.isActive()), bool(net.autostart()),
                                     bool(net.isPersistent()))
        except libvirt.libvirtError:
            continue
        out.append(info)
    return sorted(out, key=lambda n: n.name)


@dataclass(frozen=True, slots=True)
class HostInterface:
    """A network interface of the host, for a NIC's bridge or macvtap source."""

    name: str
    kind: str = ""  # libvirt's <interface type>: "bridge", "ethernet", "bond", "vlan"; "" when unknown
    active: bool | None = None  # None: not known (node devices, /sys)

    @property
    def is_bridge(self) -> bool:
        return self.kind == "bridge"

    @property
    def label(self) -> str:
        bits = [self.kind] if self.kind else []
        if self.active is False:
            bits.append("down")
        return f"{self.name} ({', '.join(bits)})" if bits else self.name


def _local(conn: libvirt.virConnect) -> bool:
    try:
        uri = conn.getURI()
    except libvirt.libvirtError:
        return False
    return "://" in uri and uri.split("://", 1)[1].startswith("/") and not uri.startswith("test")


def _sys_kind(name: str) -> str:
    """A local interface's kind from /sys (bridges have a ``bridge`` directory)."""
    base = os.path.join("/sys/class/net", name)
    if os.path.isdir(os.path.join(base, "bridge")):
        return "bridge"
    if os.path.isdir(os.path.join(base, "bonding")):
        return "bond"
    return ""


def host_interfaces(conn: libvirt.virConnect) -> list[HostInterface]:
    """The host's network interfaces (bridges, NICs, bonds, VLANs), sorted by name.

    From libvirt's interface driver (``listAllInterfaces``: names, kinds,
    up or down); when it has none (no udev/netcf backend), from the host's
    network devices (``listAllDevices``, capability ``net``). On a local
    connection /sys/class/net adds what both missed (netcf lists only the
    interfaces it configures). The loopback is left out. A lost connection
    is raised as libvirt said it.
    """
    from ..errors import is_connection_lost

    found: dict[str, HostInterface] = {}
    try:
        for iface in conn.listAllInterfaces(0):
            try:
                kind = ET.fromstring(iface.XMLDesc(0)).get("type", "")
                active: bool | None = bool(iface.isActive())
            except (libvirt.libvirtError, ET.ParseError) as err:
                if isinstance(err, libvirt.libvirtError) and is_connection_lost(err):
                    raise
                kind, active = "", None
            found[iface.name()] = HostInterface(iface.name(), kind, active)
    except libvirt.libvirtError as err:
        if is_connection_lost(err):
            raise
        found = {}
    local = _local(conn)
    if not found:
        try:
            devices = conn.listAllDevices(libvirt.VIR_CONNECT_LIST_NODE_DEVICES_CAP_NET)
        except libvirt.libvirtError as err:
            if is_connection_lost(err):
                raise
            devices = []
        for dev in devices:
            try:
                cap = ET.fromstring(dev.XMLDesc(0)).find("capability[@type='net']")
            except (libvirt.libvirtError, ET.ParseError):
                continue
            name = (cap.findtext("interface") or "").strip() if cap is not None else ""
            if name:
                link = cap.find("link")
                state = link.get("state") if link is not None else None
                found[name] = HostInterface(name, _sys_kind(name) if local else "",
                                            None if state in (None, "unknown") else state == "up")
    if local:
        try:
            names = os.listdir("/sys/class/net")
        except OSError:
            names = []
        for n in names:
            found.setdefault(n, HostInterface(n, _sys_kind(n)))
    found.pop("lo", None)
    return [found[n] for n in sorted(found)]


def list_host_interfaces(conn: libvirt.virConnect) -> list[str]:
    """The names of :func:`host_interfaces`."""
    return [i.name for i in host_interfaces(conn)]


def list_host_bridges(conn: libvirt.virConnect) -> list[str]:
    """The host's bridges (for a NIC of type bridge): libvirt's interfaces of
    type 'bridge', else, on a local connection, the devices with a
    /sys/class/net/NAME/bridge directory."""
    names: list[str] = []
    try:
        for iface in conn.listAllInterfaces(0):
            try:
                if ET.fromstring(iface.XMLDesc(0)).get("type") == "bridge":
                    names.append(iface.name())
            except (libvirt.libvirtError, ET.ParseError):
                continue
    except libvirt.libvirtError:
        names = []
    local = "://" in conn.getURI() and conn.getURI().split("://", 1)[1].startswith("/")
    if not names and local:
        try:
            names = [n for n in os.listdir("/sys/class/net") if os.path.isdir(f"/sys/class/net/{n}/bridge")]
        except OSError:
            names = []
    return sorted(set(names))


# ---------------------------------------------------------------------------
# defining a NAT or isolated network (virsh net-define), lifecycle, leases
# ---------------------------------------------------------------------------

NEW_NETWORK_MODES = ("nat", "isolated")


def _owner_error(action: str, obj: str, err: BaseException) -> BaseException:
    from ..errors import from_libvirt, is_connection_lost
    if isinstance(err, libvirt.libvirtError) and is_connection_lost(err):
        return err
    return from_libvirt(action, obj, err)


@dataclass(slots=True)
class NetworkPlan:
    """A checked short form: the XML to define, or errors by field name
    (``name``, ``cidr``, ``dhcp_start``, ``dhcp_end``, ``mode``)."""
    xml: str | None
    errors: dict[str, str]
    gateway: str | None = None
    prefix: int | None = None
    dhcp: tuple[str, str] | None = None


def _subnet(info: NetworkInfo):
    import ipaddress
    if not info.ipv4:
        return None
    try:
        return ipaddress.ip_interface(info.ipv4 if "/" in info.ipv4 else info.ipv4 + "/32").network
    except ValueError:
        return None


def parse_cidr(cidr: str):
    """``192.168.100.0/24`` or ``192.168.100.1/24`` -> (gateway IPv4Address,
    IPv4Network). The gateway (the host's address on the network) is the
    address given, or the first host address when the network address is
    given. Raises ValueError with a message for the field."""
    import ipaddress
    text = (cidr or "").strip()
    if not text:
        raise ValueError("Enter the IPv4 network in CIDR form, e.g. 192.168.100.0/24")
    if "/" not in text:
        raise ValueError(f"'{text}' has no prefix length: write it as e.g. {text}/24")
    try:
        iface = ipaddress.IPv4Interface(text)
    except ValueError:
        raise ValueError(f"'{text}' is not an IPv4 network in CIDR form (e.g. 192.168.100.0/24)") from None
    net = iface.network
    if net.prefixlen > 30:
        raise ValueError(f"/{net.prefixlen} is too small for a network with DHCP: use /30 or larger (e.g. /24)")
    if net.prefixlen < 8:
        raise ValueError(f"/{net.prefixlen} is too large: use a prefix between /8 and /30")
    if not (net.is_private or net.is_link_local):
        # routable addresses are possible, but almost always a typo for a NAT network
        raise ValueError(f"{net} is not a private range: use one from 10.0.0.0/8, 172.16.0.0/12 "
                         "or 192.168.0.0/16")
    gw = iface.ip
    if gw == net.network_address:
        gw = net.network_address + 1
    elif gw == net.broadcast_address:
        raise ValueError(f"{gw} is the broadcast address of {net}")
    return gw, net


def default_dhcp_range(cidr: str) -> tuple[str, str] | None:
    """libvirt's usual range: every host address after the gateway (for
    192.168.100.0/24: .2 to .254). None when the CIDR is not valid."""
    try:
        gw, net = parse_cidr(cidr)
    except ValueError:
        return None
    hosts_first = net.network_address + 1
    last = net.broadcast_address - 1
    start = gw + 1 if gw == hosts_first else hosts_first
    if gw == last:
        last = gw - 1
    if start > last:
        return None
    return str(start), str(last)


def validate_network_name(name: str, existing: list[NetworkInfo] = ()) -> str | None:
    if not name or not name.strip():
        return "Enter a name for the network"
    if name != name.strip() or any(c.isspace() for c in name):
        return "The name must not contain spaces"
    if "/" in name or any(ord(c) < 32 or ord(c) == 127 for c in name):
        return "The name must not contain '/' or control characters"
    if len(name) > 64:
        return "The name is too long (at most 64 characters)"
    if any(n.name == name for n in existing):
        return f"A network named '{name}' already exists"
    return None


def plan_network(name: str, mode: str, cidr: str, dhcp_start: str = "", dhcp_end: str = "",
                 existing: list[NetworkInfo] = (), *, dhcp: bool = True) -> NetworkPlan:
    """Check the short form and build the network XML.

    Empty DHCP fields take :func:`default_dhcp_range`. Overlaps with the
    IPv4 networks of ``existing`` are errors on ``cidr``.
    """
    import ipaddress
    errors: dict[str, str] = {}
    problem = validate_network_name(name, existing)
    if problem:
        errors["name"] = problem
    if mode not in NEW_NETWORK_MODES:
        errors["mode"] = f"Mode must be one of {', '.join(NEW_NETWORK_MODES)}"
    gw = net = None
    try:
        gw, net = parse_cidr(cidr)
    except ValueError as err:
        errors["cidr"] = str(err)
    if net is not None:
        for other in existing:
            sub = _subnet(other)
            if sub is not None and sub.version == 4 and sub.overlaps(net):
                errors["cidr"] = f"{net} overlaps network '{other.name}' ({other.ipv4})"
                break
    rng = None
    if dhcp and net is not None and "cidr" not in errors:
        default = default_dhcp_range(cidr)
        start_text = (dhcp_start or "").strip() or (default[0] if default else "")
        end_text = (dhcp_end or "").strip() or (default[1] if default else "")
        addrs = {}
        for field_, text in (("dhcp_start", start_text), ("dhcp_end", end_text)):
            try:
                a = ipaddress.IPv4Address(text)
            except ValueError:
                errors[field_] = f"'{text}' is not an IPv4 address"
                continue
            if a not in net or a in (net.network_address, net.broadcast_address):
                errors[field_] = f"{a} is not a host address of {net}"
            elif a == gw:
                errors[field_] = f"{a} is the host's own address on this network"
            addrs[field_] = a
        if "dhcp_start" not in errors and "dhcp_end" not in errors:
            if addrs["dhcp_start"] > addrs["dhcp_end"]:
                errors["dhcp_end"] = f"The range ends ({addrs['dhcp_end']}) before it starts ({addrs['dhcp_start']})"
            elif addrs["dhcp_start"] <= gw <= addrs["dhcp_end"]:
                errors["dhcp_end"] = f"The range includes the host's own address {gw}"
            else:
                rng = (str(addrs["dhcp_start"]), str(addrs["dhcp_end"]))
    if errors:
        return NetworkPlan(None, errors)
    xml = network_xml(name, mode, str(gw), net.prefixlen, rng)
    return NetworkPlan(xml, {}, str(gw), net.prefixlen, rng)


def network_xml(name: str, mode: str, address: str, prefix: int,
                dhcp: tuple[str, str] | None = None, bridge: str | None = None) -> str:
    """``<network>`` XML: NAT (``<forward mode='nat'/>``) or isolated (no
    ``<forward>``); libvirt picks the bridge name (virbrN) unless given."""
    if mode not in NEW_NETWORK_MODES:
        raise ValueError(f"mode must be one of {NEW_NETWORK_MODES}")
    root = ET.Element("network")
    ET.SubElement(root, "name").text = name
    if mode == "nat":
        fwd = ET.SubElement(root, "forward", mode="nat")
        ET.SubElement(ET.SubElement(fwd, "nat"), "port", start="1024", end="65535")
    br = ET.SubElement(root, "bridge", stp="on", delay="0")
    if bridge:
        br.set("name", bridge)
    ip = ET.SubElement(root, "ip", address=address, prefix=str(prefix))
    if dhcp:
        ET.SubElement(ET.SubElement(ip, "dhcp"), "range", start=dhcp[0], end=dhcp[1])
    ET.indent(root, "  ")
    return ET.tostring(root, encoding="unicode") + "\n"


def define_network(conn: libvirt.virConnect, xml: str, *, start: bool = True,
                   autostart: bool = True) -> NetworkInfo:
    """virsh net-define (+ net-start, net-autostart). Nothing stays defined on failure."""
    name = ET.fromstring(xml).findtext("name", "")
    action, obj = "define network", f"'{name}'"
    try:
        net = conn.networkDefineXML(xml)
    except libvirt.libvirtError as err:
        raise _owner_error(action, obj, err) from None
    try:
        if start:
            net.create()
        if autostart:
            net.setAutostart(1)
        return parse_network_xml(net.XMLDesc(0), bool(net.isActive()), bool(net.autostart()),
                                 bool(net.isPersistent()))
    except libvirt.libvirtError as err:
        try:
            if net.isActive():
                net.destroy()
            net.undefine()
        except libvirt.libvirtError:
            pass
        raise _owner_error(action, obj, err) from None


def _net_op(conn: libvirt.virConnect, name: str, action: str, op) -> None:
    try:
        op(conn.networkLookupByName(name))
    except libvirt.libvirtError as err:
        raise _owner_error(action, f"'{name}'", err) from None


def start_network(conn: libvirt.virConnect, name: str) -> None:
    """virsh net-start."""
    _net_op(conn, name, "start network", lambda n: n.create())


def stop_network(conn: libvirt.virConnect, name: str) -> None:
    """virsh net-destroy (running VMs lose their link on it)."""
    _net_op(conn, name, "stop network", lambda n: n.destroy())


def set_network_autostart(conn: libvirt.virConnect, name: str, on: bool) -> None:
    """virsh net-autostart [--disable]."""
    _net_op(conn, name, "set autostart of network", lambda n: n.setAutostart(1 if on else 0))


def undefine_network(conn: libvirt.virConnect, name: str) -> None:
    """virsh net-destroy + net-undefine."""
    def op(n) -> None:
        if n.isActive():
            n.destroy()
        if n.isPersistent():
            n.undefine()
    _net_op(conn, name, "undefine network", op)


def _domain_nics(conn: libvirt.virConnect):
    """(domain name, NicInfo) for every NIC of every domain (live XML when running)."""
    from ..xml import domxml
    out = []
    for dom in conn.listAllDomains(0):
        try:
            ov = domxml.parse_domain(dom.XMLDesc(0))
        except (libvirt.libvirtError, domxml.DomainXMLError):
            continue
        out.extend((ov.name, nic) for nic in ov.nics)
    return out


def network_users(conn: libvirt.virConnect) -> dict[str, list[str]]:
    """network name -> names of the domains with a NIC on it."""
    users: dict[str, set[str]] = {}
    for dom, nic in _domain_nics(conn):
        if nic.type == "network" and nic.source:
            users.setdefault(nic.source, set()).add(dom)
    return {k: sorted(v) for k, v in users.items()}


@dataclass(slots=True)
class Lease:
    mac: str
    ip: str
    prefix: int | None
    hostname: str | None
    expiry: int | None  # seconds since the epoch; None = never
    owner: str | None  # the domain with this MAC, if any

    @property
    def address(self) -> str:
        return f"{self.ip}/{self.prefix}" if self.prefix is not None else self.ip


def leases_from(raw: list[dict], mac_owners: dict[str, str],
                nics_on_network: dict[str, str] | None = None) -> list[Lease]:
    """virNetwork.DHCPLeases() records -> Lease, with the owning domain by MAC.

    ``nics_on_network`` (MAC -> domain) adds a row without an address for
    each NIC on the network that holds no lease (a VM that is off, or that
    uses a static address)."""
    out = []
    for r in raw:
        mac = (r.get("mac") or "").lower()
        expiry = r.get("expirytime")
        out.append(Lease(
            mac=mac, ip=r.get("ipaddr") or "", prefix=r.get("prefix"),
            hostname=r.get("hostname") or None,
            expiry=int(expiry) if expiry else None,
            owner=mac_owners.get(mac),
        ))
    leased = {lease.mac for lease in out}
    for mac, dom in (nics_on_network or {}).items():
        if mac.lower() not in leased:
            out.append(Lease(mac=mac.lower(), ip="", prefix=None, hostname=None, expiry=None, owner=dom))

    def order(lease: Lease):
        ip = tuple(int(x) if x.isdigit() else 0 for x in lease.ip.split(".")) if lease.ip else (999,)
        return (ip, lease.owner or "", lease.mac)
    return sorted(out, key=order)


def dhcp_leases(conn: libvirt.virConnect, name: str) -> list[Lease]:
    """The DHCP leases of an active network (virsh net-dhcp-leases) and which VM has each."""
    try:
        raw = conn.networkLookupByName(name).DHCPLeases()
    except libvirt.libvirtError as err:
        raise _owner_error("read DHCP leases of network", f"'{name}'", err) from None
    owners = {nic.mac.lower(): dom for dom, nic in _domain_nics(conn) if nic.mac}
    return leases_from(raw or [], owners)


def network_clients(conn: libvirt.virConnect, name: str) -> tuple[list[Lease], str | None]:
    """Who is on a network: its DHCP leases (with the VM owning each MAC)
    plus every VM NIC on it without a lease. The second value says why
    leases are missing (the network is inactive, the driver cannot tell),
    or is None."""
    nics = _domain_nics(conn)
    owners = {nic.mac.lower(): dom for dom, nic in nics if nic.mac}
    on_net = {nic.mac.lower(): dom for dom, nic in nics
              if nic.mac and nic.type == "network" and nic.source == name}
    note = None
    raw: list[dict] = []
    try:
        net = conn.networkLookupByName(name)
        if net.isActive():
            raw = net.DHCPLeases() or []
        else:
            note = "the network is inactive"
    except libvirt.libvirtError as err:
        from ..errors import is_connection_lost
        if is_connection_lost(err):
            raise
        if err.get_error_code() == libvirt.VIR_ERR_NO_SUPPORT:
            note = "this libvirt driver reports no leases"
        else:
            raise _owner_error("read DHCP leases of network", f"'{name}'", err) from None
    return leases_from(raw, owners, on_net), note
