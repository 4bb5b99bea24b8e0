"""The rules each section's values must follow, checked against the VM as it
is (:class:`~.values.Settings`) and what the host offers
(:class:`~.values.Offers`). Each function returns the wizard's
:class:`~vmtui.core.create.validation.FieldError`\\ s, keyed by the field
names the settings screen shows its messages under (``cpus.current``,
``nic.source``, ...); "error" blocks the save, "warning" does not.

The same checks run in the form (on every change) and again in
:mod:`.apply` before anything is written. No libvirt, no Textual.
"""

from __future__ import annotations

import re

from ..create.validation import FieldError, listen_problem, validate_mac
from ..sizes import format_memory
from .values import (
    FIRMWARES,
    MACVTAP_MODES,
    NIC_KINDS,
    BootValues,
    CpuValues,
    DisplayValues,
    MemoryValues,
    NicValues,
    Offers,
    OverviewValues,
    RngValues,
    Settings,
    TpmValues,
)

__all__ = [
    "FieldError",
    "errors_of",
    "check_overview",
    "check_cpus",
    "check_memory",
    "check_boot",
    "check_nic",
    "check_display",
    "check_tpm",
    "check_rng",
]

_MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")
#: libvirt's <bootmenu timeout> range, in milliseconds
MAX_MENU_TIMEOUT = 65535


def errors_of(found: list[FieldError]) -> dict[str, str]:
    """The blocking problems by field (the first one of each)."""
    out: dict[str, str] = {}
    for fe in found:
        if fe.is_error:
            out.setdefault(fe.field, fe.message)
    return out


def _control(text: str, allowed: str = "") -> bool:
    """Characters XML cannot hold (libvirt would refuse the document)."""
    return any((ord(c) < 32 and c not in allowed) or ord(c) == 127 for c in text)


def _err(field: str, msg: str) -> FieldError:
    return FieldError(field, msg)


def _warn(field: str, msg: str) -> FieldError:
    return FieldError(field, msg, "warning")


def check_overview(v: OverviewValues, s: Settings, o: Offers) -> list[FieldError]:
    out: list[FieldError] = []
    if "\n" in v.title or "\r" in v.title:
        out.append(_err("title", "The title must be a single line (use the description for more)"))
    elif _control(v.title):
        out.append(_err("title", "The title must not contain control characters"))
    if _control(v.description, allowed="\n\t"):
        out.append(_err("description", "The description must not contain control characters (except newlines "
                                       "and tabs)"))
    if v.autostart and not s.persistent:
        out.append(_err("autostart", "A transient VM (no persistent definition) cannot start at host boot"))
    if v.firmware != s.overview.firmware:
        if v.firmware not in FIRMWARES:
            out.append(_err("firmware", f"Unknown firmware '{v.firmware}'"))
        elif s.running:
            out.append(_err("firmware", "Shut the VM off to change its firmware"))
        elif v.firmware not in o.firmware:
            out.append(_err("firmware", f"This host offers no {FIRMWARES[v.firmware]} firmware for "
                                        f"{s.machine or 'this machine'} (install OVMF / edk2-ovmf)"))
        elif v.firmware == "efi-secure" and not s.q35:
            out.append(_err("firmware", "Secure Boot needs the q35 machine type (it uses SMM)"))
        else:
            out.append(_warn("firmware", "An installed OS usually boots only with the firmware it was "
                                         "installed with"))
    return out


def check_cpus(v: CpuValues, s: Settings, o: Offers) -> list[FieldError]:
    out: list[FieldError] = []
    if v.maximum < 1:
        out.append(_err("cpus.maximum", "At least 1 vCPU"))
    elif o.max_vcpus and v.maximum > o.max_vcpus:
        out.append(_err("cpus.maximum", f"At most {o.max_vcpus} vCPUs on this hypervisor"))
    elif o.host_cpus and v.maximum > o.host_cpus:
        out.append(_warn("cpus.maximum", f"More vCPUs than the host has ({o.host_cpus}): slower, not faster"))
    if v.current < 1:
        out.append(_err("cpus.current", "At least 1 vCPU"))
    elif v.current > v.maximum >= 1:
        out.append(_err("cpus.current", f"At most the maximum ({v.maximum})"))
    elif s.running and s.live_max_vcpus and v.current > s.live_max_vcpus:
        out.append(_warn("cpus.current", f"The running VM can have at most {s.live_max_vcpus} now; "
                                         f"{v.current} at the next boot"))
    if v.mode == "host-passthrough" and s.virt_type == "qemu":
        out.append(_err("cpus.mode", "QEMU (TCG) cannot pass the host CPU through: use host-model, "
                                     "maximum or a named model"))
    elif v.mode and v.mode != s.cpus.mode and o.known and v.mode not in o.cpu_modes:
        out.append(_err("cpus.mode", f"{v.mode} is not supported by {s.virt_type or 'this hypervisor'} "
                                     "on this host"))
    if v.mode == "custom":
        model = v.model.strip()
        if not model:
            out.append(_err("cpus.model", "Choose a CPU model for the named-model mode"))
        elif not _MODEL_NAME.match(model):
            out.append(_err("cpus.model", f"'{model}' is not a CPU model name"))
        elif model != s.cpus.model and o.cpu_models and model not in o.cpu_models:
            out.append(_err("cpus.model", f"This host's QEMU has no usable CPU model '{model}'"))
    if v.has_topology:
        counts = (v.sockets, v.cores, v.threads)
        if any(c is None or c < 1 for c in counts):
            out.append(_err("cpus.topology", "Sockets, cores and threads must each be at least 1 "
                                             "(or all empty: no topology)"))
        else:
            product = v.sockets * v.cores * v.threads * (v.dies or 1) * (v.clusters or 1)
            if product != v.maximum:
                extra = (f" × {v.dies} dies" if (v.dies or 1) > 1 else "") + \
                        (f" × {v.clusters} clusters" if (v.clusters or 1) > 1 else "")
                out.append(_err("cpus.topology", f"{v.sockets} sockets × {v.cores} cores × {v.threads} threads"
                                                 f"{extra} is {product}, not the maximum of {v.maximum} vCPUs"))
    return out


def check_memory(v: MemoryValues, s: Settings, o: Offers) -> list[FieldError]:
    out: list[FieldError] = []
    if v.current_mib < 1:
        out.append(_err("memory.current", "Memory must be at least 1 MiB"))
    if v.maximum_mib < 1:
        out.append(_err("memory.maximum", "Memory must be at least 1 MiB"))
    elif v.maximum_mib < v.current_mib:
        out.append(_err("memory.current", f"At most the maximum memory ({format_memory(v.maximum_mib)})"))
    elif o.host_memory_mib and v.maximum_mib > o.host_memory_mib:
        out.append(_err("memory.maximum", f"{format_memory(v.maximum_mib)} is more than the host's "
                                          f"{format_memory(o.host_memory_mib)} of memory"))
    elif s.numa and v.maximum_mib != s.memory.maximum_mib:
        out.append(_err("memory.maximum", "The VM's NUMA cells set its memory size: change them in the XML"))
    if any(fe.field == "memory.current" for fe in out) or v.current_mib < 1:
        return out
    if not s.balloon and v.current_mib < v.maximum_mib:
        out.append(_warn("memory.current", "The VM has no balloon device: the guest gets the maximum memory"))
    elif s.running and s.live_max_memory_mib and v.current_mib > s.live_max_memory_mib:
        out.append(_warn("memory.current", f"The running VM has at most {format_memory(s.live_max_memory_mib)}; "
                                           f"{format_memory(v.current_mib)} at the next boot"))
    return out


def _abs_path(field: str, path: str, what: str) -> FieldError | None:
    if path and not path.startswith("/"):
        return _err(field, f"Give the {what} as an absolute path on the host")
    if any(c in path for c in "\n\r\t"):
        return _err(field, f"The {what} path must not contain tabs or newlines")
    return None


def check_boot(v: BootValues, s: Settings, o: Offers) -> list[FieldError]:
    out: list[FieldError] = []
    kernel, initrd = v.kernel.strip(), v.initrd.strip()
    if not v.order and not kernel:
        out.append(_err("boot.order", "Choose at least one device to boot from (or a kernel below)"))
    if v.menu_timeout_ms is not None and not 0 <= v.menu_timeout_ms <= MAX_MENU_TIMEOUT:
        out.append(_err("boot.menu_timeout", f"The menu timeout is 0 to {MAX_MENU_TIMEOUT} ms"))
    for field, path, what in (("boot.kernel", kernel, "kernel"), ("boot.initrd", initrd, "initrd")):
        problem = _abs_path(field, path, what)
        if problem:
            out.append(problem)
    if initrd and not kernel:
        out.append(_err("boot.initrd", "An initrd needs a kernel"))
    if v.cmdline.strip() and not kernel:
        out.append(_err("boot.cmdline", "Kernel arguments need a kernel (direct kernel boot)"))
    if "\n" in v.cmdline or "\r" in v.cmdline:
        out.append(_err("boot.cmdline", "The kernel command line must be a single line"))
    return out


def check_nic(v: NicValues, s: Settings, o: Offers, *, old_mac: str | None = None) -> list[FieldError]:
    """A new NIC (``old_mac`` None) or the NIC that had ``old_mac``."""
    out: list[FieldError] = []
    source = v.source.strip()
    if v.kind not in NIC_KINDS:
        out.append(_err("nic.kind", f"vmtui edits NICs on a virtual network, a bridge or macvtap, "
                                    f"not '{v.kind}'"))
    elif not source:
        what = {"network": "virtual network", "bridge": "bridge", "macvtap": "host interface"}[v.kind]
        out.append(_err("nic.source", f"Choose the {what}"))
    elif v.kind == "network" and o.networks and source not in o.networks:
        out.append(_err("nic.source", f"No virtual network named '{source}'"))
    elif v.kind == "bridge" and o.bridges and source not in o.bridges:
        out.append(_err("nic.source", f"The host has no bridge '{source}' (bridges: {', '.join(o.bridges)})"))
    elif v.kind == "bridge" and not o.bridges and o.interfaces and source not in o.interfaces:
        out.append(_err("nic.source", f"The host has no interface '{source}'"))
    elif v.kind == "macvtap" and o.interfaces and source not in o.interfaces:
        out.append(_err("nic.source", f"The host has no interface '{source}'"))
    if v.kind == "macvtap" and v.mode not in MACVTAP_MODES:
        out.append(_err("nic.mode", f"The macvtap mode is one of: {', '.join(MACVTAP_MODES)}"))
    if not v.model.strip():
        out.append(_err("nic.model", "Choose the NIC model (virtio is the fastest)"))
    elif not _MODEL_NAME.match(v.model.strip()):
        out.append(_err("nic.model", f"'{v.model}' is not a NIC model name"))
    mac = v.mac.strip().lower()
    if mac:
        problem = validate_mac(mac)
        if problem:
            out.append(_err("nic.mac", problem))
        elif mac != (old_mac or "").lower() and any(n.values.mac == mac for n in s.nics):
            out.append(_err("nic.mac", f"Another NIC of this VM has the MAC address {mac}"))
    elif old_mac:
        out.append(_err("nic.mac", "Enter the MAC address"))
    return out


def check_display(v: DisplayValues, s: Settings, o: Offers) -> list[FieldError]:
    out: list[FieldError] = []
    old = s.display
    if v.graphics != old.graphics and v.graphics not in o.graphics:
        out.append(_err("display.graphics", f"This host offers no {v.graphics} display"))
    if v.graphics != "none" and (v.listen != old.listen or v.graphics != old.graphics):
        problem = listen_problem(v.listen)
        if problem is not None:
            out.append(FieldError("display.listen", problem.message, problem.severity))
    if v.graphics != "none" and v.port is not None:
        low = 5900 if v.graphics == "vnc" else 1
        if not low <= v.port <= 65535:
            out.append(_err("display.port", f"The port is {low} to 65535 (or empty: chosen at start)"))
    if v.video != old.video and v.video and v.video not in o.video:
        out.append(_err("display.video", f"This host offers no {v.video} video card"))
    if v.graphics != "none" and v.video == "none":
        out.append(_warn("display.video", "A display without a video card shows nothing"))
    return out


def check_tpm(v: TpmValues, s: Settings, o: Offers) -> list[FieldError]:
    out: list[FieldError] = []
    if not v.model:
        return out
    old = s.tpm
    changed = (v.model, v.backend, v.version, v.path) != (old.model, old.backend, old.version, old.path)
    if not changed:
        return out
    if v.model not in o.tpm_models:
        offered = ", ".join(o.tpm_models) or "none"
        out.append(_err("tpm.model", f"This host offers no {v.model} TPM (offered: {offered})"))
    if v.backend not in ("emulator", "passthrough"):
        out.append(_err("tpm.backend", f"Unknown TPM backend '{v.backend}'"))
    elif v.backend not in o.tpm_backends:
        hint = " (install swtpm for an emulated TPM)" if v.backend == "emulator" else ""
        out.append(_err("tpm.backend", f"This host offers no {v.backend} TPM{hint}"))
    if v.backend == "emulator":
        if v.version not in ("1.2", "2.0"):
            out.append(_err("tpm.version", "The TPM version is 1.2 or 2.0"))
        elif v.model == "tpm-crb" and v.version != "2.0":
            out.append(_err("tpm.version", "A CRB TPM is always version 2.0"))
    elif v.backend == "passthrough":
        problem = _abs_path("tpm.path", v.path.strip(), "TPM device") if v.path.strip() else \
            _err("tpm.path", "Give the host's TPM device, e.g. /dev/tpm0")
        if problem:
            out.append(problem)
    return out


def check_rng(v: RngValues, s: Settings, o: Offers) -> list[FieldError]:
    out: list[FieldError] = []
    if v.present and (v.present != s.rng.present or v.source != s.rng.source):
        if not o.rng:
            out.append(_err("rng.source", "This host offers no random number generator device"))
        elif not v.source.strip():
            out.append(_err("rng.source", "Give the host's random source, e.g. /dev/urandom"))
        else:
            problem = _abs_path("rng.source", v.source.strip(), "random source")
            if problem:
                out.append(problem)
    return out
