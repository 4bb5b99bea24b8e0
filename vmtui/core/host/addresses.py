"""Where is my VM? The IP addresses of a running guest, and which source told them.

libvirt knows a guest's addresses from three sources (``virsh domifaddr
--source``), asked here in this order:

* ``lease`` -- the DHCP leases of the libvirt networks the VM's NICs are on
  (dnsmasq's lease file; no help from the guest);
* ``agent`` -- the QEMU guest agent inside the guest (every interface, static
  and IPv6 addresses too). Asked only when the VM has the agent's channel
  (``org.qemu.guest_agent.0``) and libvirt says the agent is connected: a
  guest without an agent would make the call wait for nothing;
* ``arp`` -- the host's ARP table, for NICs the other two left without an
  address (bridged NICs, static addresses): only guests that talked to the
  host recently are in it.

Each address keeps its source; :class:`AddressReport` also says what each
source answered when it gave nothing ("no lease yet", "no guest agent
channel" ...), so "no address" is never a bare shrug. Loopback and link-local
addresses are left out (nobody can ssh to them from the host).

Blocking functions taking a ``virConnect``; run them through the service.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

import libvirt

from ..errors import is_connection_lost, libvirt_message
from ..xml.domain_model import Domain

LEASE, AGENT, ARP = "lease", "agent", "arp"
SOURCES: tuple[str, ...] = (LEASE, AGENT, ARP)
_SOURCE_FLAGS = {
    LEASE: libvirt.VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_LEASE,
    AGENT: libvirt.VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_AGENT,
    ARP: libvirt.VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_ARP,
}
AGENT_CHANNEL = "org.qemu.guest_agent.0"


@dataclass(frozen=True, slots=True)
class GuestAddress:
    """One address of a guest NIC."""

    ip: str
    prefix: int | None
    family: str  # "ipv4" | "ipv6"
    mac: str  # lower case; "" when the source did not say
    interface: str  # the guest's name (agent) or the host side (vnet0) for leases / ARP
    source: str  # LEASE | AGENT | ARP

    @property
    def address(self) -> str:
        return f"{self.ip}/{self.prefix}" if self.prefix is not None else self.ip


@dataclass(slots=True)
class AddressReport:
    """What the sources said about one domain's addresses."""

    name: str
    running: bool
    addresses: list[GuestAddress] = field(default_factory=list)
    #: source -> what it answered when it gave no address (or why it was not asked)
    notes: dict[str, str] = field(default_factory=dict)
    nics: int = 0  # NICs in the live definition

    @property
    def ips(self) -> list[str]:
        return [a.ip for a in self.addresses]

    @property
    def sources(self) -> list[str]:
        """The sources that gave an address, in the order asked."""
        seen = {a.source for a in self.addresses}
        return [s for s in SOURCES if s in seen]

    def explain(self) -> str:
        """One line on what each source said, e.g. ``lease: no lease yet;
        agent: no guest agent channel``."""
        if not self.running:
            return "not running"
        if not self.nics:
            return "no network interface"
        parts = []
        for source in SOURCES:
            got = sum(1 for a in self.addresses if a.source == source)
            if got:
                parts.append(f"{source}: {got} address{'es' if got != 1 else ''}")
            elif source in self.notes:
                parts.append(f"{source}: {self.notes[source]}")
        return "; ".join(parts)


def agent_state(xml: str | bytes) -> str | None:
    """The guest agent channel of a domain's live XML: None (no channel),
    "connected", "disconnected", or "" (libvirt does not say)."""
    dom = Domain.parse(xml, register=False)
    for ch in dom.devices.channels:
        if ch.target_type == "virtio" and ch.target_name == AGENT_CHANNEL:
            return ch.target_state or ""
    return None


def _usable(ip: str) -> bool:
    try:
        addr = ipaddress.ip_address(ip.split("%", 1)[0])
    except ValueError:
        return False
    return not (addr.is_loopback or addr.is_link_local or addr.is_unspecified)


def parse_interface_addresses(raw: dict | None, source: str) -> list[GuestAddress]:
    """``virDomain.interfaceAddresses()`` -> GuestAddress, loopback and
    link-local left out."""
    out = []
    for ifname, info in (raw or {}).items():
        info = info or {}
        mac = (info.get("hwaddr") or "").lower()
        for a in info.get("addrs") or ():
            ip = a.get("addr") or ""
            if not _usable(ip):
                continue
            family = "ipv6" if a.get("type") == libvirt.VIR_IP_ADDR_TYPE_IPV6 or ":" in ip else "ipv4"
            prefix = a.get("prefix")
            out.append(GuestAddress(ip, int(prefix) if prefix is not None else None, family, mac,
                                    ifname or "", source))
    return out


def _ask(dom: libvirt.virDomain, source: str) -> tuple[list[GuestAddress], str]:
    """(addresses, note) from one source; a failure is a note, not an error
    (a lost connection excepted)."""
    try:
        raw = dom.interfaceAddresses(_SOURCE_FLAGS[source], 0)
    except libvirt.libvirtError as err:
        if is_connection_lost(err):
            raise
        if err.get_error_code() in (libvirt.VIR_ERR_NO_SUPPORT, libvirt.VIR_ERR_ARGUMENT_UNSUPPORTED):
            return [], "not supported by this libvirt driver"
        if source == AGENT and err.get_error_code() == libvirt.VIR_ERR_AGENT_UNRESPONSIVE:
            return [], "the guest agent does not answer"
        return [], libvirt_message(err)
    found = parse_interface_addresses(raw, source)
    if found:
        return found, ""
    return [], {LEASE: "no lease (yet)", AGENT: "no address", ARP: "not in the host's ARP table"}[source]


def _order(addresses: list[GuestAddress], macs: list[str]) -> list[GuestAddress]:
    """NIC order of the definition, IPv4 first, then the order asked; each
    IP once (the first source that gave it)."""
    seen: set[str] = set()
    unique = []
    for a in addresses:
        if a.ip not in seen:
            seen.add(a.ip)
            unique.append(a)
    rank = {mac: i for i, mac in enumerate(macs)}
    asked = {id(a): i for i, a in enumerate(unique)}
    return sorted(unique, key=lambda a: (rank.get(a.mac, len(rank)), a.family != "ipv4", asked[id(a)]))


def domain_addresses(dom: libvirt.virDomain, sources: tuple[str, ...] | list[str] = SOURCES,
                     xml: str | None = None) -> AddressReport:
    """Blocking: the addresses of ``dom`` from ``sources`` (see the module's
    docstring for the order and when each is asked)."""
    name = dom.name()
    if not dom.isActive():
        return AddressReport(name, running=False)
    xml = xml if xml is not None else dom.XMLDesc(0)
    model = Domain.parse(xml, register=False)
    macs = [(i.mac or "").lower() for i in model.devices.interfaces]
    report = AddressReport(name, running=True, nics=len(macs))
    if not macs:
        return report
    found: list[GuestAddress] = []
    for source in SOURCES:
        if source not in sources:
            continue
        if source == AGENT:
            state = agent_state(xml)
            if state is None:
                report.notes[AGENT] = "no guest agent channel"
                continue
            if state == "disconnected":
                report.notes[AGENT] = "the guest agent is not running in the guest"
                continue
        if source == ARP and found and all(m in {a.mac for a in found} for m in macs if m):
            report.notes[ARP] = "not asked (every NIC has an address)"
            continue
        got, note = _ask(dom, source)
        if source == ARP:
            covered = {a.mac for a in found}
            got = [a for a in got if a.mac not in covered]
        found += got
        if note:
            report.notes[source] = note
    report.addresses = _order(found, macs)
    return report


def guest_addresses(conn: libvirt.virConnect, uuid: str | None = None, *, name: str | None = None,
                    sources: tuple[str, ...] | list[str] = SOURCES) -> AddressReport:
    """Blocking: the addresses of the domain with ``uuid`` (or ``name``)."""
    dom = conn.lookupByUUIDString(uuid) if uuid else conn.lookupByName(name or "")
    return domain_addresses(dom, sources)


def running_addresses(conn: libvirt.virConnect, uuids: list[str] | None = None,
                      sources: tuple[str, ...] | list[str] = SOURCES) -> dict[str, AddressReport]:
    """Blocking: the addresses of every running domain (or of ``uuids``
    among them), in one pass: what the list's Address column shows. A domain
    gone meanwhile is left out."""
    out: dict[str, AddressReport] = {}
    wanted = set(uuids) if uuids is not None else None
    for dom in conn.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE):
        uuid = dom.UUIDString()
        if wanted is not None and uuid not in wanted:
            continue
        try:
            out[uuid] = domain_addresses(dom, sources)
        except libvirt.libvirtError as err:
            if is_connection_lost(err):
                raise
            continue
    return out


__all__ = ["AGENT", "AGENT_CHANNEL", "ARP", "AddressReport", "GuestAddress", "LEASE", "SOURCES", "agent_state",
           "domain_addresses", "guest_addresses", "parse_interface_addresses", "running_addresses"]
