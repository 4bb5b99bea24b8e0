"""libvirt's "pending changes": what the next boot will change in a running
VM, found by comparing its live XML with its persistent definition, fact by
fact, in words (the settings editor's sections, plus disks).

What the running VM fills in by itself is not a change: device aliases and
addresses, the ports it was given, the host-model CPU it expanded, the host
device of a NIC. No libvirt here.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..sizes import fmt_kib
from ..xml.domain_model import Domain, Interface
from .values import AGENT_CHANNEL, FIRMWARES, boot_entries, firmware_of

__all__ = ["Pending", "pending_changes", "pending_text"]


@dataclass(frozen=True)
class Pending:
    """One difference: ``what`` is ``now`` in the running VM and
    ``next_boot`` after it restarts ("" when absent)."""

    what: str
    now: str
    next_boot: str

    def describe(self) -> str:
        now = self.now or "none"
        nxt = self.next_boot or "none"
        return f"{self.what}: {now} now, {nxt} at next boot"


def _nic_words(n: Interface) -> str:
    kind, src = n.kind, n.source or ""
    where = {"network": f"network '{src}'", "bridge": f"bridge {src}",
             "macvtap": f"macvtap {src}"}.get(kind or "", f"{n.type or '?'} {src}".strip())
    return f"{where}, {n.model or 'default model'}, link {(n.link_state or 'up')}"


def _cpu_words(dom: Domain, other: Domain) -> str:
    """The CPU in words; a running VM's expansion of host-model is not a change."""
    cpu = dom.cpu
    mode = cpu.effective_mode if cpu.exists else None
    other_mode = other.cpu.effective_mode if other.cpu.exists else None
    if other_mode == "host-model" or mode == "host-model":
        return "host-model"
    if not mode:
        return "hypervisor default"
    if other_mode is None and mode == "custom":  # QEMU's default model, spelled out in the live XML
        return "hypervisor default"
    return cpu.model if mode == "custom" and cpu.model else mode


def _topology(dom: Domain) -> str:
    cpu = dom.cpu
    if not (cpu.exists and cpu.has_topology):
        return ""
    return f"{cpu.sockets or 1}×{cpu.cores or 1}×{cpu.threads or 1}"


def _display(dom: Domain) -> str:
    g = next(iter(dom.devices.graphics), None)
    if g is None:
        return ""
    port = "" if g.autoport_on else f" port {g.port_number}"
    return f"{(g.type or '?').upper()} on {g.listen or '-'}{port}"


def _facts(dom: Domain, other: Domain) -> dict[str, str]:
    """The facts compared, in words (``other``: the other side, for the CPU)."""
    os_ = dom.os
    entries, _per_device = boot_entries(dom)
    mem = dom.memory_kib
    cur = dom.current_memory_kib
    out = {
        "Title": dom.title or "",
        "Description": (dom.description or "").strip(),
        "Firmware": FIRMWARES[firmware_of(dom)],
        "vCPUs": str(dom.vcpus_online),
        "Maximum vCPUs": str(dom.vcpus or 1),
        "CPU": _cpu_words(dom, other),
        "Topology": _topology(dom),
        "Memory": fmt_kib(cur if cur is not None else mem),
        "Maximum memory": fmt_kib(mem if mem is not None else cur),
        "Boot order": ", ".join(e.label for e in entries if e.enabled),
        "Boot menu": "on" if os_.bootmenu_enable else "",
        "Kernel": os_.kernel or "",
        "Initrd": os_.initrd or "",
        "Kernel arguments": (os_.cmdline or "").strip(),
        "Display": _display(dom),
        "Video": next((v.model or "" for v in dom.devices.videos), ""),
        "Serial ports": str(len(dom.devices.serials)),
        "Guest agent channel": "yes" if any(c.target_name == AGENT_CHANNEL for c in dom.devices.channels) else "",
        "TPM": next((f"{t.model} ({t.backend_type})" for t in dom.devices.tpms), ""),
        "RNG": next((f"from {r.backend}" for r in dom.devices.rngs if r.backend), ""),
    }
    for n in dom.devices.interfaces:
        if n.mac:
            out[f"NIC {n.mac.lower()}"] = _nic_words(n)
    for d in dom.devices.disks:
        if d.target_dev:
            out[f"Disk {d.target_dev}"] = d.source or "(empty)"
    return out


def pending_changes(live_xml: str, config_xml: str) -> list[Pending]:
    """What differs between the running VM and its next boot."""
    live = Domain.parse(live_xml, register=False)
    config = Domain.parse(config_xml, register=False)
    now, nxt = _facts(live, config), _facts(config, live)
    out = []
    for key in list(now) + [k for k in nxt if k not in now]:
        a, b = now.get(key, ""), nxt.get(key, "")
        if a != b:
            out.append(Pending(key, a, b))
    return out


def pending_text(changes: list[Pending]) -> str:
    """One line for the details screen ("" when nothing is pending)."""
    if not changes:
        return ""
    return "Pending at next boot: " + "; ".join(c.describe() for c in changes)
