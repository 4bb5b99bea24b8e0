"""Typed snapshots of what the UI shows, in libvirt's own words.

These are plain dataclasses: the service builds them off the event loop and
hands them to whoever listens. Nothing here talks to libvirt.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any, Collection

# virDomainState numbers -> the words virsh uses (`virsh domstate`).
STATE_NAMES: dict[int, str] = {
    0: "no state",
    1: "running",
    2: "idle",
    3: "paused",
    4: "in shutdown",
    5: "shut off",
    6: "crashed",
    7: "pmsuspended",
}

# (state, reason) -> virsh's reason words (`virsh domstate --reason`).
REASON_NAMES: dict[int, dict[int, str]] = {
    0: {0: "unknown"},
    1: {
        0: "unknown", 1: "booted", 2: "migrated", 3: "restored", 4: "from snapshot",
        5: "unpaused", 6: "migration canceled", 7: "save canceled", 8: "event wakeup",
        9: "crashed", 10: "post-copy", 11: "post-copy failed",
    },
    2: {0: "unknown"},
    3: {
        0: "unknown", 1: "user", 2: "migrating", 3: "saving", 4: "dumping", 5: "I/O error",
        6: "watchdog", 7: "from snapshot", 8: "shutting down", 9: "creating snapshot",
        10: "starting up", 11: "post-copy", 12: "post-copy failed", 13: "api error",
    },
    4: {0: "unknown", 1: "user"},
    5: {
        0: "unknown", 1: "shutdown", 2: "destroyed", 3: "crashed", 4: "migrated", 5: "saved",
        6: "failed", 7: "from snapshot", 8: "daemon",
    },
    6: {0: "unknown", 1: "panicked"},
    7: {0: "unknown"},
}

# virDomainEventType numbers -> names (lifecycle events).
EVENT_NAMES: dict[int, str] = {
    0: "defined", 1: "undefined", 2: "started", 3: "suspended", 4: "resumed",
    5: "stopped", 6: "shutdown", 7: "pmsuspended", 8: "crashed",
}

RUNNING, IDLE, PAUSED, IN_SHUTDOWN, SHUT_OFF, CRASHED, PMSUSPENDED = 1, 2, 3, 4, 5, 6, 7
#: States in which the guest is executing (or could be, for "idle").
ACTIVE_STATES = frozenset({RUNNING, IDLE, PAUSED, IN_SHUTDOWN, PMSUSPENDED})


def state_name(state: int) -> str:
    return STATE_NAMES.get(state, "no state")


def reason_name(state: int, reason: int) -> str:
    return REASON_NAMES.get(state, {}).get(reason, "unknown")


@dataclass(slots=True)
class DomainStats:
    """Rates computed from two consecutive bulk stats samples."""

    cpu_percent: float | None = None  # of the domain's own vCPUs, 0..100
    mem_used_kib: int | None = None  # what the guest really uses, when known
    disk_read_bps: float | None = None
    disk_write_bps: float | None = None
    net_rx_bps: float | None = None
    net_tx_bps: float | None = None


@dataclass(frozen=True, slots=True)
class GuestFacts:
    """What vmtui learned about a running guest from outside its definition:
    its addresses (core/host/addresses.py, read on demand and on a slow
    cadence, never per stats tick) and how far its boot got (the console's
    readiness detector, core/consoles/readiness.py). Empty when unknown;
    dropped when the VM stops."""

    addresses: tuple[str, ...] = ()  # IPs, the first NIC's IPv4 first
    address_source: str = ""  # "lease" | "agent" | "arp": who told the first one
    readiness: str = ""  # "" unknown, "booting", "cloud-init", "ready", "error"
    readiness_detail: str = ""


NO_GUEST_FACTS = GuestFacts()


@dataclass(slots=True)
class DomainInfo:
    uuid: str
    name: str
    id: int | None  # None when not running (libvirt's -1)
    state_code: int
    reason_code: int = 0
    vcpus: int = 0
    memory_kib: int = 0  # current (balloon) memory
    max_memory_kib: int = 0
    autostart: bool = False
    persistent: bool = True
    title: str = ""
    description: str = ""
    template: bool = False  # marked as a template (vmtui's metadata, see core/clones/templates.py)
    # vmtui's records in the domain's <metadata> (core/xml/ownmeta.py), read with
    # the title; until then (flags_read False) they are unknown, not "no"
    overlays: bool = False  # non-persistent disks with vmtui overlays to empty at power-off
    seed_cleanup: bool = False  # a cloud-init seed to remove after the first boot
    flags_read: bool = False
    stats: DomainStats = field(default_factory=DomainStats)
    guest: GuestFacts = NO_GUEST_FACTS  # addresses and readiness, while it runs
    #: the last few minutes of ``stats`` (a history.Ring, kept by the
    #: service) while the domain runs, for graphs; None otherwise
    history: Any = field(default=None, compare=False, repr=False)
    #: the name of the host (service) it lives on, in a list of several
    #: hosts; "" when vmtui shows one host (the list keys rows by UUID then)
    host: str = ""

    @property
    def state(self) -> str:
        return state_name(self.state_code)

    @property
    def reason(self) -> str:
        return reason_name(self.state_code, self.reason_code)

    @property
    def is_active(self) -> bool:
        return self.state_code in ACTIVE_STATES

    @property
    def is_running(self) -> bool:
        return self.state_code in (RUNNING, IDLE)

    @property
    def is_paused(self) -> bool:
        return self.state_code == PAUSED

    @property
    def is_shut_off(self) -> bool:
        return self.state_code in (SHUT_OFF, CRASHED, 0)

    def with_stats(self, stats: DomainStats) -> "DomainInfo":
        return replace(self, stats=stats)


@dataclass(slots=True)
class HostInfo:
    uri: str
    hostname: str = ""
    driver: str = ""  # "QEMU", "Test", ...
    hypervisor_version: str = ""
    libvirt_version: str = ""
    cpu_model: str = ""
    cpus: int = 0
    memory_total_kib: int = 0
    memory_free_kib: int | None = None
    cpu_percent: float | None = None
    readonly: bool = False


def state_counts(doms: Collection[DomainInfo], *, templates: bool = False) -> str:
    """The status line's count: "3 running, 1 paused, 2 shut off[, 1 other]"
    and, with ``templates``, " (2 templates)". One pass over the rows."""
    by_state = Counter(d.state_code for d in doms)
    running = by_state[RUNNING] + by_state[IDLE]
    paused = by_state[PAUSED]
    off = by_state[SHUT_OFF] + by_state[CRASHED] + by_state[0]
    other = len(doms) - running - paused - off
    text = f"{running} running, {paused} paused, {off} shut off" + (f", {other} other" if other else "")
    marked = sum(d.template for d in doms) if templates else 0
    if marked:
        text += f" ({marked} template{'s' if marked != 1 else ''})"
    return text


def version_string(number: int) -> str:
    """libvirt encodes versions as major*1e6 + minor*1e3 + release."""
    if not number:
        return ""
    major, rest = divmod(number, 1_000_000)
    minor, release = divmod(rest, 1_000)
    return f"{major}.{minor}.{release}"
