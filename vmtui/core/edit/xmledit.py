"""The settings sections written into a domain's XML, through the domain
model: only what changed is touched, and every element, attribute and
namespace the model does not know stays where it was.

Each ``set_*`` function edits a parsed :class:`Domain` in place from a
section's new values (compared with the old ones read from the same
document) and returns the :class:`Edit`\\ s it made, which :mod:`.apply`
turns into live changes where libvirt can. No libvirt here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from ..sizes import format_memory
from ..xml.domain_model import Channel, Domain, DomainXMLError, Graphics, Interface, Rng, Serial, Tpm, Video
from ..xml.xmlmodel import insert_child, remove_child
from .values import (
    AGENT_CHANNEL,
    FIRMWARES,
    BootValues,
    CpuValues,
    DisplayValues,
    MemoryValues,
    NicValues,
    OverviewValues,
    RngValues,
    TpmValues,
    boot_entries,
    firmware_of,
    nic_values,
)

__all__ = [
    "Edit",
    "set_overview",
    "set_cpus",
    "set_memory",
    "set_boot",
    "find_nic",
    "new_nic",
    "change_nic",
    "add_nic",
    "remove_nic",
    "set_display",
    "add_serial",
    "remove_serial",
    "set_agent",
    "agent_channel",
    "set_tpm",
    "set_rng",
    "random_mac",
]


@dataclass(frozen=True)
class Edit:
    """One change made to the XML: ``key`` says which (for the live part),
    ``what`` and ``value`` say it in words."""

    key: str
    what: str
    value: str


def _on(b: bool) -> str:
    return "on" if b else "off"


# ---------------------------------------------------------------------------
# overview, CPUs, memory, boot
# ---------------------------------------------------------------------------


def set_overview(dom: Domain, v: OverviewValues) -> list[Edit]:
    """Title, description and firmware (autostart is not XML: :mod:`.apply`)."""
    out = []
    if v.title != (dom.title or ""):
        dom.title = v.title or None
        out.append(Edit("title", "Title", repr(v.title) if v.title else "removed"))
    if v.description != (dom.description or ""):
        dom.description = v.description or None
        out.append(Edit("description", "Description", "changed" if v.description else "removed"))
    if v.firmware != firmware_of(dom):
        dom.os.set_firmware(v.firmware)
        if v.firmware == "efi-secure":
            dom.features.smm = True  # Secure Boot's firmware needs SMM
        out.append(Edit("firmware", "Firmware", FIRMWARES.get(v.firmware, v.firmware)))
    return out


def set_cpus(dom: Domain, v: CpuValues) -> list[Edit]:
    out = []
    old_max, old_cur = dom.vcpus or 1, dom.vcpus_online
    if v.maximum != old_max:
        dom.vcpus = v.maximum
        out.append(Edit("vcpus.maximum", "Maximum vCPUs", str(v.maximum)))
    if v.current != old_cur or v.maximum != old_max:
        dom.vcpus_current = v.current if v.current != v.maximum else None
        if v.current != old_cur:
            out.append(Edit("vcpus.current", "vCPUs", str(v.current)))
        el = dom.element.find("vcpus")  # libvirt's per-vCPU list no longer fits: it makes it again
        if el is not None:
            remove_child(dom.element, el)
    cpu = dom.cpu
    old_mode = cpu.effective_mode or "" if cpu.exists else ""
    old_model = (cpu.model or "") if cpu.exists else ""
    model = v.model.strip() if v.mode == "custom" else ""
    if v.mode != old_mode or model != (old_model if old_mode == "custom" else ""):
        cpu.mode = v.mode or None
        if v.mode == "custom":
            cpu.model = model
        elif old_model:
            cpu.model = None
        if v.mode != "custom":
            cpu.match = None  # only a named model has a match policy
        if v.mode == "":
            cpu.check = None
        out.append(Edit("cpu.mode", "CPU", model if v.mode == "custom" else (v.mode or "hypervisor default")))
    old_topo = (cpu.sockets, cpu.cores, cpu.threads) if cpu.exists and cpu.has_topology else (None, None, None)
    new_topo = (v.sockets, v.cores, v.threads) if v.has_topology else (None, None, None)
    if new_topo != old_topo:
        if v.has_topology:
            cpu.sockets, cpu.cores, cpu.threads = new_topo
            cpu.dies, cpu.clusters = v.dies, v.clusters
            out.append(Edit("cpu.topology", "Topology",
                            f"{v.sockets} sockets × {v.cores} cores × {v.threads} threads"))
        else:
            cpu.sockets = cpu.cores = cpu.threads = cpu.dies = cpu.clusters = None
            out.append(Edit("cpu.topology", "Topology", "removed"))
    if cpu.exists and not cpu.mode and len(cpu.element) == 0 and not cpu.element.attrib:
        remove_child(dom.element, cpu.element)
    return out


def set_memory(dom: Domain, v: MemoryValues) -> list[Edit]:
    out = []
    old_max = (dom.memory_kib if dom.memory_kib is not None else dom.current_memory_kib or 0) // 1024
    old_cur = (dom.current_memory_kib if dom.current_memory_kib is not None else dom.memory_kib or 0) // 1024
    if v.maximum_mib != old_max:
        dom.memory_kib = v.maximum_mib * 1024
        out.append(Edit("memory.maximum", "Maximum memory", format_memory(v.maximum_mib)))
    if v.current_mib != old_cur or v.maximum_mib != old_max:
        dom.current_memory_kib = v.current_mib * 1024
        if v.current_mib != old_cur:
            out.append(Edit("memory.current", "Memory", format_memory(v.current_mib)))
    return out


def set_boot(dom: Domain, v: BootValues) -> list[Edit]:
    out = []
    old_entries, per_device = boot_entries(dom)
    old_order = [e.key for e in old_entries if e.enabled]
    if v.order != old_order:
        if per_device:
            _set_device_order(dom, v.order)
        else:
            dom.os.boot_devices = v.order
        labels = {e.key: e.label for e in v.entries}
        out.append(Edit("boot.order", "Boot order", ", ".join(labels.get(k, k) for k in v.order) or "none"))
    os_ = dom.os
    if v.menu != bool(os_.bootmenu_enable) or (v.menu and v.menu_timeout_ms != os_.bootmenu_timeout):
        if v.menu:
            os_.bootmenu_enable = True
            os_.bootmenu_timeout = v.menu_timeout_ms
        elif os_.bootmenu_enable is not None:
            os_.bootmenu_enable = False
            os_.bootmenu_timeout = None
        wait = f", {v.menu_timeout_ms} ms" if v.menu and v.menu_timeout_ms is not None else ""
        out.append(Edit("boot.menu", "Boot menu", _on(v.menu) + wait))
    for key, attr, what in (("boot.kernel", "kernel", "Kernel"), ("boot.initrd", "initrd", "Initrd"),
                            ("boot.cmdline", "cmdline", "Kernel arguments")):
        new = getattr(v, attr)
        new = new if attr == "cmdline" else new.strip()
        if new != (getattr(os_, attr) or ""):
            setattr(os_, attr, new or None)
            out.append(Edit(key, what, repr(new) if new else "removed"))
    return out


def _set_device_order(dom: Domain, order: list[str]) -> None:
    """Per-device ``<boot order>``: ours numbered in ``order``, skipping the
    numbers devices the model does not list (host devices ...) hold."""
    devices = dom.devices
    disks = {f"disk:{d.target_dev}": d for d in devices.disks if d.target_dev}
    nics = {f"nic:{(n.mac or '').lower()}": n for n in devices.interfaces if n.mac}
    ours = {**disks, **nics}
    taken = set()
    for dev in devices.element:
        if dev.tag in ("disk", "interface"):
            continue
        b = dev.find("boot")
        if b is not None and (b.get("order") or "").isdigit():
            taken.add(int(b.get("order")))
    for item in ours.values():
        item.boot_order = None
    n = 0
    for key in order:
        if key not in ours:
            raise DomainXMLError(f"no device {key.split(':', 1)[1]} to boot from")
        n += 1
        while n in taken:
            n += 1
        ours[key].boot_order = n


# ---------------------------------------------------------------------------
# NICs
# ---------------------------------------------------------------------------


def random_mac(taken: set[str] = frozenset()) -> str:
    """A MAC in QEMU's range (52:54:00:xx:xx:xx) not in ``taken``."""
    while True:
        tail = os.urandom(3)
        mac = "52:54:00:" + ":".join(f"{b:02x}" for b in tail)
        if mac not in taken:
            return mac


def find_nic(dom: Domain, mac: str) -> Interface | None:
    mac = mac.lower()
    return next((n for n in dom.devices.interfaces if (n.mac or "").lower() == mac), None)


def new_nic(v: NicValues) -> Interface:
    nic = Interface.new(v.kind, v.source.strip(), mac=v.mac or None, model=v.model.strip() or None,
                        mode=v.mode if v.kind == "macvtap" else None)
    if not v.link_up:
        nic.link_state = "down"
    return nic


def change_nic(nic: Interface, v: NicValues, *, facts: tuple[str, ...] = ("source", "model", "mac", "link"),
               ) -> list[Edit]:
    """Change ``nic`` (in a domain's XML) to ``v``; only ``facts`` are
    touched. Returns what changed."""
    old = nic_values(nic)
    mac_label = old.mac or "?"
    out = []
    if "source" in facts and (v.kind, v.source.strip(), v.mode if v.kind == "macvtap" else "") != \
            (old.kind, old.source, old.mode if old.kind == "macvtap" else ""):
        nic.source_network = nic.source_bridge = nic.source_dev = nic.source_mode = nic.source_portid = None
        nic.type = {"network": "network", "bridge": "bridge", "macvtap": "direct"}[v.kind]
        src = v.source.strip()
        if v.kind == "network":
            nic.source_network = src
        elif v.kind == "bridge":
            nic.source_bridge = src
        else:
            nic.source_dev = src
            nic.source_mode = v.mode
        where = {"network": f"network '{src}'", "bridge": f"bridge {src}", "macvtap": f"macvtap {src} ({v.mode})"}
        out.append(Edit("nic.source", f"NIC {mac_label} source", where[v.kind]))
    if "model" in facts and v.model.strip() != old.model:
        nic.model = v.model.strip() or None
        out.append(Edit("nic.model", f"NIC {mac_label} model", v.model.strip()))
    if "mac" in facts and v.mac.strip().lower() != old.mac:
        nic.mac = v.mac.strip().lower()
        out.append(Edit("nic.mac", f"NIC {mac_label} MAC address", v.mac.strip().lower()))
    if "link" in facts and v.link_up != old.link_up:
        if v.link_up:
            nic.link_state = "up" if nic.link_state is not None else None
        else:
            nic.link_state = "down"
        out.append(Edit("nic.link", f"NIC {mac_label} link", "up" if v.link_up else "down"))
    return out


def add_nic(dom: Domain, v: NicValues) -> Interface:
    """Add a NIC (its MAC made up when ``v`` has none); returns it."""
    taken = {(n.mac or "").lower() for n in dom.devices.interfaces}
    mac = v.mac.strip().lower() or random_mac(taken)
    if mac in taken:
        raise DomainXMLError(f"the domain already has a NIC with MAC address {mac}")
    nic = new_nic(NicValues(kind=v.kind, source=v.source, model=v.model, mac=mac, link_up=v.link_up,
                            mode=v.mode))
    dom.devices.add(nic)
    return nic


def remove_nic(dom: Domain, mac: str) -> Interface | None:
    """Take the NIC with ``mac`` out; returns it (None when there is none)."""
    nic = find_nic(dom, mac)
    if nic is not None:
        dom.devices.interfaces.remove(nic)
    return nic


# ---------------------------------------------------------------------------
# display and video
# ---------------------------------------------------------------------------


def set_display(dom: Domain, v: DisplayValues, old: DisplayValues) -> list[Edit]:
    """The first display and the first video card (others stay as they are)."""
    out = []
    devices = dom.devices
    graphics = list(devices.graphics)
    if v.graphics != old.graphics:
        if v.graphics == "none":
            for g in graphics:
                devices.graphics.remove(g)
            out.append(Edit("display.graphics", "Display", "none"))
        else:
            new = Graphics.new(v.graphics, v.listen.strip() or "127.0.0.1")
            new.set_port(v.port)
            if graphics:  # another protocol: its settings do not carry over
                first = graphics[0]
                parent = devices.element
                index = list(parent).index(first.element)
                remove_child(parent, first.element)
                insert_child(parent, index, new.element, dom.element)
            else:
                devices.add(new)
            out.append(Edit("display.graphics", "Display", f"{v.graphics.upper()} on {v.listen.strip()}"
                            + (f" port {v.port}" if v.port else "")))
    elif v.graphics != "none" and graphics:
        g = graphics[0]
        if v.listen.strip() != old.listen:
            g.set_listen_address(v.listen.strip())
            out.append(Edit("display.listen", "Display listens on", v.listen.strip()))
        if v.port != old.port:
            g.set_port(v.port)
            out.append(Edit("display.port", "Display port", str(v.port) if v.port else "automatic"))
    if v.video != old.video:
        videos = list(devices.videos)
        if not v.video:
            for vid in videos:
                devices.videos.remove(vid)
            out.append(Edit("display.video", "Video", "none"))
        else:
            if videos:
                videos[0].set_model(v.video)
            else:
                devices.add(Video.new(v.video))
            out.append(Edit("display.video", "Video", v.video))
    return out


# ---------------------------------------------------------------------------
# serial ports, the guest agent, TPM, RNG
# ---------------------------------------------------------------------------


def add_serial(dom: Domain) -> int:
    """A pty serial port on the first free port number; returns it."""
    taken = {s.target_port if s.target_port is not None else i for i, s in enumerate(dom.devices.serials)}
    port = next(p for p in range(len(taken) + 1) if p not in taken)
    dev = Serial.new("pty", port=port)
    dom.devices.add(dev)
    return port


def remove_serial(dom: Domain, port: int) -> bool:
    """Take serial port ``port`` out, with the console that shows it (libvirt
    would make the port again for that console). False when there is none."""
    devices = dom.devices
    found = False
    for i, s in enumerate(list(devices.serials)):
        if (s.target_port if s.target_port is not None else i) == port:
            devices.serials.remove(s)
            found = True
    if found:
        for c in list(devices.consoles):
            if (c.target_type or "serial") == "serial" and (c.target_port or 0) == port:
                devices.consoles.remove(c)
    return found


def agent_channel() -> Channel:
    """The guest agent's channel (libvirt picks the socket path)."""
    return Channel.new("unix", target_type="virtio", name=AGENT_CHANNEL)


def set_agent(dom: Domain, on: bool) -> list[Channel]:
    """Add the guest agent's channel, or take it out; returns the channels
    added or removed (empty: nothing to do)."""
    have = [c for c in dom.devices.channels if c.target_name == AGENT_CHANNEL]
    if on and not have:
        ch = agent_channel()
        dom.devices.add(ch)
        return [ch]
    if not on and have:
        for c in have:
            dom.devices.channels.remove(c)
        return have
    return []


def set_tpm(dom: Domain, v: TpmValues) -> list[Edit]:
    devices = dom.devices
    tpms = list(devices.tpms)
    if not v.model:
        if not tpms:
            return []
        for t in tpms:
            devices.tpms.remove(t)
        return [Edit("tpm", "TPM", "removed")]
    version = v.version if v.backend == "emulator" else None
    path = v.path.strip() if v.backend == "passthrough" else None
    label = f"{v.model}, " + (f"emulated {v.version}" if v.backend == "emulator" else f"passthrough {path}")
    if not tpms:
        devices.add(Tpm.new(v.model, v.backend, version=version, path=path))
        return [Edit("tpm", "TPM", label)]
    t = tpms[0]
    if (t.model, t.backend_type, t.backend_version, t.backend_path) == (v.model, v.backend, version, path):
        return []
    t.model = v.model
    t.set_backend(v.backend, version=version, path=path)
    return [Edit("tpm", "TPM", label)]


def _random_rngs(dom: Domain) -> list[Rng]:
    return [r for r in dom.devices.rngs if (r.backend_model or "random") == "random"]


def set_rng(dom: Domain, v: RngValues) -> tuple[list[Edit], list[Rng], list[Rng]]:
    """The virtio RNG fed from a host device: (edits, added, removed)."""
    have = _random_rngs(dom)
    if not v.present:
        for r in have:
            dom.devices.rngs.remove(r)
        return ([Edit("rng", "Random number generator", "removed")] if have else []), [], have
    source = v.source.strip()
    if have:
        if have[0].backend == source:
            return [], [], []
        have[0].backend = source
        return [Edit("rng", "Random number generator", f"from {source}")], [], []
    rng = Rng.new(source)
    dom.devices.add(rng)
    return [Edit("rng", "Random number generator", f"from {source}")], [rng], []

