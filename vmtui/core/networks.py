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


def list_host_interfaces(conn: libvirt.virConnect) -> list[str]:
    """Host network interfaces (for bridges and macvtap).

    libvirt's interface driver needs udev/netcf; when it is missing and the
    connection is local, fall back to /sys/class/net."""
    names: list[str] = []
    try:
        names = [i.name() for i in conn.listAllInterfaces(0)]
    except libvirt.libvirtError:
        names = []
    local = "://" in conn.getURI() and conn.getURI().split("://", 1)[1].startswith("/")
    if not names and local:
        try:
            names = os.listdir("/sys/class/net")
        except OSError:
            names = []
    return sorted(set(names) - {"lo"})
