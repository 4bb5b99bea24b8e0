"""Saving a settings section: blocking functions that take a
``libvirt.virConnect`` and run in the service's thread pool::

    result = await service.call(lambda c: apply.save_memory(c, uuid, values), ...)

How a change is applied (virt-manager's way):

1. the values are checked (:mod:`.rules`); a problem raises
   :class:`~.result.SettingsError` naming the fields, and nothing changes;
2. the **persistent definition** (read with its secrets, so a display
   password survives) is edited through the domain model
   (:mod:`.xmledit`: only what changed is touched) and defined again --
   libvirt checks it, and a refusal changes nothing;
3. a **running** VM then gets what libvirt can change live: title and
   description (``setMetadata``), vCPUs up to the running maximum
   (``setVcpusFlags``, hot-plug), memory up to the running maximum through the
   balloon (``setMemoryFlags``), a NIC's source and link
   (``updateDeviceFlags``), NICs, the guest-agent channel and the RNG
   plugged in or out (``attachDeviceFlags`` / ``detachDeviceFlags``). What
   libvirt refuses live, and what only a boot can change, waits for the
   next boot; the :class:`~.result.EditResult` says which is which, with
   libvirt's own reason.

Transient VMs (no persistent definition) are not edited here.
"""

from __future__ import annotations

import copy
import logging
import time
from dataclasses import dataclass, field
from typing import Callable

import libvirt

from ..errors import VmtuiError, failure, is_connection_lost, libvirt_message, lookup_domain
from ..host import domcaps, inventory
from ..xml.domain_model import Domain, DomainXMLError, Interface
from ..xml.xmlmodel import XMLModel
from . import rules, xmledit
from .pending import Pending, pending_changes
from .result import Applied, EditResult, SettingsError
from .values import (
    AGENT_CHANNEL,
    CPU_MODES,
    GRAPHICS_TYPES,
    TPM_BACKENDS,
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
    read_settings,
)

log = logging.getLogger(__name__)

__all__ = [
    "EditorState",
    "load_editor",
    "read_offers",
    "pending_of",
    "save_overview",
    "save_cpus",
    "save_memory",
    "save_boot",
    "add_nic",
    "update_nic",
    "set_nic_link",
    "remove_nic",
    "save_display",
    "add_serial",
    "remove_serial",
    "set_agent",
    "save_tpm",
    "save_rng",
]

LIVE = libvirt.VIR_DOMAIN_AFFECT_LIVE
#: the definition as it is to be written back: inactive, with secrets (passwords)
CONFIG_XML = libvirt.VIR_DOMAIN_XML_INACTIVE | libvirt.VIR_DOMAIN_XML_SECURE
#: how long a live unplug may take before it is reported as still under way
UNPLUG_WAIT = 8.0

#: why a change waits for the next boot, by the key of its edit
NEXT_BOOT_ONLY = {
    "firmware": "the firmware is chosen when the VM starts",
    "vcpus.maximum": "the maximum is fixed while the VM runs",
    "cpu.mode": "the CPU model is fixed while the VM runs",
    "cpu.topology": "the CPU topology is fixed while the VM runs",
    "memory.maximum": "the maximum is fixed while the VM runs",
    "boot.order": "read when the VM starts",
    "boot.menu": "read when the VM starts",
    "boot.kernel": "read when the VM starts",
    "boot.initrd": "read when the VM starts",
    "boot.cmdline": "read when the VM starts",
    "display.graphics": "the display changes when the VM starts",
    "display.listen": "the display changes when the VM starts",
    "display.port": "the display changes when the VM starts",
    "display.video": "the video card changes when the VM starts",
    "nic.model": "libvirt changes a NIC's model only when the VM starts",
    "nic.mac": "libvirt changes a NIC's MAC address only when the VM starts",
    "serial": "serial ports change when the VM starts",
    "tpm": "a TPM changes when the VM starts",
}


@dataclass
class EditorState:
    """What the settings screen needs: the VM's settings, what the host
    offers, and the changes waiting for the next boot."""

    settings: Settings
    offers: Offers
    pending: list[Pending] = field(default_factory=list)


# ---------------------------------------------------------------------------
# reading
# ---------------------------------------------------------------------------


@dataclass
class _Ctx:
    dom: libvirt.virDomain
    obj: str
    name: str
    active: bool
    config_xml: str
    live_xml: str | None
    autostart: bool
    uuid: str

    def settings(self) -> Settings:
        return read_settings(self.config_xml, self.live_xml, uuid=self.uuid, autostart=self.autostart)

    def live_domain(self) -> Domain | None:
        return Domain.parse(self.live_xml, register=False) if self.live_xml else None


def _read(conn: libvirt.virConnect, uuid: str, action: str) -> _Ctx:
    dom, obj = lookup_domain(conn, uuid, action)
    try:
        if not dom.isPersistent():
            raise VmtuiError(action, obj, "it is transient: there is no persistent definition to change",
                             "Define it first (virsh dumpxml, then virsh define).")
        active = bool(dom.isActive())
        return _Ctx(dom=dom, obj=obj, name=dom.name(), active=active, config_xml=dom.XMLDesc(CONFIG_XML),
                    live_xml=dom.XMLDesc(0) if active else None, autostart=bool(dom.autostart()), uuid=uuid)
    except libvirt.libvirtError as err:
        raise failure(action, obj, err) from None


def read_offers(conn: libvirt.virConnect, config_xml: str, *, networking: bool = True) -> Offers:
    """Blocking: what the host offers this VM (its emulator, arch, machine and
    virtualization type's domain capabilities; the host's size; its networks,
    bridges and interfaces unless ``networking`` is False)."""
    dom = Domain.parse(config_xml, register=False)
    o = Offers()
    try:
        info = conn.getInfo()
        o.host_memory_mib, o.host_cpus = int(info[1]), int(info[2])
    except libvirt.libvirtError as err:
        if is_connection_lost(err):
            raise
    dc = domcaps.domain_caps(conn, emulator=dom.devices.emulator or None, arch=dom.os.arch or None,
                             machine=dom.os.machine or None, virt_type=dom.type or None)
    if dc is not None:
        o.known = True
        o.max_vcpus = dc.max_vcpus
        o.firmware = ["bios"] + (["efi"] if dc.efi_autoselect else []) + \
                     (["efi-secure"] if dc.efi_autoselect and dc.secure_boot else [])
        o.cpu_modes = [m for m in CPU_MODES if m == "" or dc.cpu_mode_supported(m)]
        o.cpu_models = list(dc.cpu_models)
        if dc.graphics_types:
            o.graphics = [t for t in GRAPHICS_TYPES if t == "none" or t in dc.graphics_types]
        if dc.video_models:
            o.video = list(dc.video_models)
        o.tpm_models = list(dc.tpm_models)
        o.tpm_backends = [b for b in dc.tpm_backends if b in TPM_BACKENDS]
        o.rng = bool(dc.rng_models) and (not dc.rng_backends or "random" in dc.rng_backends)
    if networking:
        inv = inventory.read_networking(conn)
        o.networks = inv.network_names
        o.network_labels = {n.name: n.label for n in inv.networks}
        o.bridges = inv.bridges
        o.interfaces = inv.interfaces
    return o


def load_editor(conn: libvirt.virConnect, uuid: str) -> EditorState:
    """Blocking: the settings of the VM with ``uuid``, what the host offers,
    and what its next boot will change."""
    action = "read the settings of"
    ctx = _read(conn, uuid, action)
    try:
        settings = ctx.settings()
        offers = read_offers(conn, ctx.config_xml)
        pending = pending_changes(ctx.live_xml, ctx.config_xml) if ctx.live_xml else []
    except libvirt.libvirtError as err:
        raise failure(action, ctx.obj, err) from None
    except DomainXMLError as err:
        raise VmtuiError(action, ctx.obj, str(err)) from None
    return EditorState(settings, offers, pending)


def pending_of(conn: libvirt.virConnect, uuid: str) -> list[Pending]:
    """Blocking: what the next boot of the VM will change (nothing when it is
    shut off or transient)."""
    dom, obj = lookup_domain(conn, uuid, "compare the live and saved settings of")
    try:
        if not dom.isActive() or not dom.isPersistent():
            return []
        return pending_changes(dom.XMLDesc(0), dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
    except libvirt.libvirtError as err:
        raise failure("compare the live and saved settings of", obj, err) from None
    except DomainXMLError as err:
        raise VmtuiError("compare the live and saved settings of", obj, str(err)) from None


# ---------------------------------------------------------------------------
# the common way of a save
# ---------------------------------------------------------------------------


def _check(action: str, obj: str, found: list[rules.FieldError]) -> None:
    errors = rules.errors_of(found)
    if errors:
        raise SettingsError(action, obj, errors)


def _live(ctx: _Ctx, what: str, value: str, op: Callable[[], object], note: str = "") -> Applied:
    """Run a live change; libvirt's refusal makes it wait for the next boot."""
    try:
        op()
    except libvirt.libvirtError as err:
        if is_connection_lost(err):
            raise
        return Applied(what, value, False, f"not live: {libvirt_message(err)}")
    return Applied(what, value, True, note)


def _element_xml(model: XMLModel) -> str:
    return model.to_xml(pretty=True)


def _save(conn: libvirt.virConnect, uuid: str, action: str,
          edit: Callable[[_Ctx, Domain], list[xmledit.Edit]],
          live: Callable[[_Ctx, xmledit.Edit], Applied | None] | None = None,
          after: Callable[[_Ctx, EditResult], None] | None = None) -> EditResult:
    """Read, edit (``edit`` checks and changes the parsed definition), define,
    then the live part (``live`` per edit, None: next boot) and ``after``."""
    ctx = _read(conn, uuid, action)
    try:
        dom = Domain.parse(ctx.config_xml)
        edits = edit(ctx, dom)
        if edits:
            conn.defineXML(dom.to_xml())
        result = EditResult(ctx.name, ctx.active)
        for e in edits:
            applied = live(ctx, e) if (ctx.active and live is not None) else None
            if applied is None:
                applied = Applied(e.what, e.value, False, NEXT_BOOT_ONLY.get(e.key, "") if ctx.active else "")
            result.changes.append(applied)
        if after is not None:
            after(ctx, result)
        return result
    except libvirt.libvirtError as err:
        raise failure(action, ctx.obj, err) from None
    except DomainXMLError as err:
        raise VmtuiError(action, ctx.obj, str(err)) from None


# ---------------------------------------------------------------------------
# overview, CPUs, memory, boot
# ---------------------------------------------------------------------------


def save_overview(conn: libvirt.virConnect, uuid: str, v: OverviewValues) -> EditResult:
    """Title and description (live too), firmware (shut off only), autostart."""
    action = "change the overview of"

    def edit(ctx: _Ctx, dom: Domain) -> list[xmledit.Edit]:
        _check(action, ctx.obj, rules.check_overview(v, ctx.settings(), read_offers(conn, ctx.config_xml,
                                                                                   networking=False)))
        return xmledit.set_overview(dom, v)

    def live(ctx: _Ctx, e: xmledit.Edit) -> Applied | None:
        kinds = {"title": libvirt.VIR_DOMAIN_METADATA_TITLE, "description": libvirt.VIR_DOMAIN_METADATA_DESCRIPTION}
        if e.key not in kinds:
            return None
        text = v.title if e.key == "title" else v.description
        return _live(ctx, e.what, e.value, lambda: ctx.dom.setMetadata(kinds[e.key], text or None, None, None, LIVE))

    def after(ctx: _Ctx, result: EditResult) -> None:
        if v.autostart != ctx.autostart:
            ctx.dom.setAutostart(1 if v.autostart else 0)
            result.changes.append(Applied("Autostart", "on" if v.autostart else "off", True))

    return _save(conn, uuid, action, edit, live, after)


def save_cpus(conn: libvirt.virConnect, uuid: str, v: CpuValues) -> EditResult:
    """vCPUs (hot-plugged up to the running maximum), the maximum, CPU mode,
    model and topology (next boot)."""
    action = "change the CPUs of"

    def edit(ctx: _Ctx, dom: Domain) -> list[xmledit.Edit]:
        _check(action, ctx.obj, rules.check_cpus(v, ctx.settings(), read_offers(conn, ctx.config_xml,
                                                                               networking=False)))
        return xmledit.set_cpus(dom, v)

    def live(ctx: _Ctx, e: xmledit.Edit) -> Applied | None:
        if e.key != "vcpus.current":
            return None
        running = ctx.live_domain()
        limit = running.vcpus or 1
        if v.current > limit:
            return Applied(e.what, e.value, False, f"the running VM has at most {limit} vCPUs")
        if v.current == running.vcpus_online:
            return Applied(e.what, e.value, True)
        note = "hot-plugged: the guest may have to bring the new vCPUs online" if v.current > running.vcpus_online \
            else "unplugged: the guest has to let go of them"
        return _live(ctx, e.what, e.value, lambda: ctx.dom.setVcpusFlags(v.current, LIVE), note)

    return _save(conn, uuid, action, edit, live)


def save_memory(conn: libvirt.virConnect, uuid: str, v: MemoryValues) -> EditResult:
    """Memory (the balloon, live, up to the running maximum) and the maximum
    (next boot)."""
    action = "change the memory of"

    def edit(ctx: _Ctx, dom: Domain) -> list[xmledit.Edit]:
        _check(action, ctx.obj, rules.check_memory(v, ctx.settings(), read_offers(conn, ctx.config_xml,
                                                                                 networking=False)))
        return xmledit.set_memory(dom, v)

    def live(ctx: _Ctx, e: xmledit.Edit) -> Applied | None:
        if e.key != "memory.current":
            return None
        running = ctx.live_domain()
        mb = running.devices.memballoon
        if not mb.exists or (mb.model or "virtio") == "none":
            return Applied(e.what, e.value, False, "the running VM has no balloon device")
        limit = (running.memory_kib or 0) // 1024
        if v.current_mib > limit:
            return Applied(e.what, e.value, False, f"the running VM has at most {limit} MiB")
        return _live(ctx, e.what, e.value, lambda: ctx.dom.setMemoryFlags(v.current_mib * 1024, LIVE),
                     "the guest's balloon driver gives or takes it")

    return _save(conn, uuid, action, edit, live)


def save_boot(conn: libvirt.virConnect, uuid: str, v: BootValues) -> EditResult:
    """Boot order, boot menu and direct kernel boot (all at the next boot)."""
    action = "change the boot options of"

    def edit(ctx: _Ctx, dom: Domain) -> list[xmledit.Edit]:
        _check(action, ctx.obj, rules.check_boot(v, ctx.settings(), Offers()))
        return xmledit.set_boot(dom, v)

    return _save(conn, uuid, action, edit)


# ---------------------------------------------------------------------------
# NICs
# ---------------------------------------------------------------------------


def _live_nic(ctx: _Ctx, mac: str):
    running = ctx.live_domain()
    return xmledit.find_nic(running, mac) if running is not None else None


def _wait_gone(ctx: _Ctx, present: Callable[[Domain], bool]) -> bool:
    """Wait (a little) for an unplugged device to leave the running VM."""
    deadline = time.monotonic() + UNPLUG_WAIT
    while True:
        if not present(Domain.parse(ctx.dom.XMLDesc(0), register=False)):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)


def add_nic(conn: libvirt.virConnect, uuid: str, v: NicValues) -> EditResult:
    """A new NIC: in the definition, and plugged into a running VM."""
    action = "add a NIC to"
    added: dict[str, Interface] = {}

    def edit(ctx: _Ctx, dom: Domain) -> list[xmledit.Edit]:
        _check(action, ctx.obj, rules.check_nic(v, ctx.settings(), read_offers(conn, ctx.config_xml)))
        nic = xmledit.add_nic(dom, v)
        added["nic"] = nic
        where = {"network": f"network '{v.source}'", "bridge": f"bridge {v.source}",
                 "macvtap": f"macvtap {v.source}"}[v.kind]
        return [xmledit.Edit("nic.add", f"New NIC {nic.mac}", f"on {where}, {v.model}")]

    def live(ctx: _Ctx, e: xmledit.Edit) -> Applied | None:
        nic = added["nic"]
        return _live(ctx, e.what, e.value, lambda: ctx.dom.attachDeviceFlags(_element_xml(nic), LIVE),
                     "plugged in")

    return _save(conn, uuid, action, edit, live)


def update_nic(conn: libvirt.virConnect, uuid: str, mac: str, v: NicValues,
               facts: tuple[str, ...] = ("source", "model", "mac", "link")) -> EditResult:
    """Change the NIC that has ``mac`` (only ``facts`` of it): its source and
    link live where libvirt can, its model and MAC address at the next boot."""
    action = f"change NIC {mac} of"

    def edit(ctx: _Ctx, dom: Domain) -> list[xmledit.Edit]:
        if set(facts) - {"link"}:
            settings = ctx.settings()
            offers = read_offers(conn, ctx.config_xml)
            old = next((n.values for n in settings.nics if n.values.mac == mac.lower() and not n.live_only), None)
            if old is not None and (old.kind, old.source) == (v.kind, v.source.strip()):
                # an unchanged source is not checked again (a network may have gone since)
                offers.networks, offers.bridges, offers.interfaces = [], [], []
            _check(action, ctx.obj, rules.check_nic(v, settings, offers, old_mac=mac))
        nic = xmledit.find_nic(dom, mac)
        if nic is None:
            raise VmtuiError(action, ctx.obj, f"it has no NIC with MAC address {mac} in its definition")
        return xmledit.change_nic(nic, v, facts=facts)

    def live(ctx: _Ctx, e: xmledit.Edit) -> Applied | None:
        if e.key not in ("nic.source", "nic.link"):
            return None
        nic = _live_nic(ctx, mac)
        if nic is None:
            return Applied(e.what, e.value, False, "the running VM does not have this NIC yet")
        changed = copy.deepcopy(nic.element)
        fact = "source" if e.key == "nic.source" else "link"
        xmledit.change_nic(Interface(changed), v, facts=(fact,))
        return _live(ctx, e.what, e.value,
                     lambda: ctx.dom.updateDeviceFlags(Interface(changed).to_xml(pretty=True), LIVE))

    return _save(conn, uuid, action, edit, live)


def set_nic_link(conn: libvirt.virConnect, uuid: str, mac: str, up: bool) -> EditResult:
    """Plug the cable of the NIC with ``mac`` in or out (live and next boot)."""
    return update_nic(conn, uuid, mac, NicValues(link_up=up), facts=("link",))


def remove_nic(conn: libvirt.virConnect, uuid: str, mac: str) -> EditResult:
    """Take the NIC with ``mac`` out of the definition and the running VM."""
    action = f"remove NIC {mac} from"
    mac = mac.lower()
    ctx = _read(conn, uuid, action)
    try:
        result = EditResult(ctx.name, ctx.active)
        dom = Domain.parse(ctx.config_xml)
        in_config = xmledit.remove_nic(dom, mac) is not None
        live_nic = _live_nic(ctx, mac) if ctx.active else None
        if not in_config and live_nic is None:
            raise VmtuiError(action, ctx.obj, f"it has no NIC with MAC address {mac}")
        if in_config:
            conn.defineXML(dom.to_xml())
        what = f"NIC {mac}"
        if live_nic is None:
            result.changes.append(Applied(what, "removed", False, ""))
            return result
        applied = _live(ctx, what, "removed", lambda: ctx.dom.detachDeviceFlags(live_nic.to_xml(pretty=True), LIVE))
        if applied.live and not _wait_gone(ctx, lambda d: xmledit.find_nic(d, mac) is not None):
            applied = Applied(what, "removed", False, "unplug requested: the guest has not let go of it yet")
        result.changes.append(applied)
        return result
    except libvirt.libvirtError as err:
        raise failure(action, ctx.obj, err) from None
    except DomainXMLError as err:
        raise VmtuiError(action, ctx.obj, str(err)) from None


# ---------------------------------------------------------------------------
# display, serial, guest agent, TPM, RNG
# ---------------------------------------------------------------------------


def save_display(conn: libvirt.virConnect, uuid: str, v: DisplayValues) -> EditResult:
    """The first display (type, listen address, port) and video card (next boot)."""
    action = "change the display of"

    def edit(ctx: _Ctx, dom: Domain) -> list[xmledit.Edit]:
        settings = ctx.settings()
        _check(action, ctx.obj, rules.check_display(v, settings, read_offers(conn, ctx.config_xml,
                                                                            networking=False)))
        return xmledit.set_display(dom, v, settings.display)

    return _save(conn, uuid, action, edit)


def add_serial(conn: libvirt.virConnect, uuid: str) -> EditResult:
    """A pty serial port (next boot)."""
    def edit(ctx: _Ctx, dom: Domain) -> list[xmledit.Edit]:
        port = xmledit.add_serial(dom)
        return [xmledit.Edit("serial", f"Serial port {port}", "added (pty)")]
    return _save(conn, uuid, "add a serial port to", edit)


def remove_serial(conn: libvirt.virConnect, uuid: str, port: int) -> EditResult:
    """Serial port ``port`` and its console (next boot)."""
    action = f"remove serial port {port} from"

    def edit(ctx: _Ctx, dom: Domain) -> list[xmledit.Edit]:
        if not xmledit.remove_serial(dom, port):
            raise VmtuiError(action, ctx.obj, f"it has no serial port {port}")
        return [xmledit.Edit("serial", f"Serial port {port}", "removed")]
    return _save(conn, uuid, action, edit)


def set_agent(conn: libvirt.virConnect, uuid: str, on: bool) -> EditResult:
    """Add or remove the QEMU guest agent's channel (plugged live where
    libvirt can)."""
    action = "add the guest agent channel to" if on else "remove the guest agent channel from"
    changed: list = []

    def edit(ctx: _Ctx, dom: Domain) -> list[xmledit.Edit]:
        changed.extend(xmledit.set_agent(dom, on))
        return [xmledit.Edit("agent", "Guest agent channel", "added" if on else "removed")] if changed else []

    def live(ctx: _Ctx, e: xmledit.Edit) -> Applied | None:
        running = ctx.live_domain()
        have = [c for c in running.devices.channels if c.target_name == AGENT_CHANNEL]
        if on:
            if have:
                return Applied(e.what, e.value, True)
            return _live(ctx, e.what, e.value,
                         lambda: ctx.dom.attachDeviceFlags(_element_xml(xmledit.agent_channel()), LIVE),
                         "the guest needs qemu-guest-agent running")
        if not have:
            return Applied(e.what, e.value, True)
        applied = _live(ctx, e.what, e.value,
                        lambda: [ctx.dom.detachDeviceFlags(c.to_xml(pretty=True), LIVE) for c in have])
        if applied.live and not _wait_gone(ctx, lambda d: any(c.target_name == AGENT_CHANNEL
                                                               for c in d.devices.channels)):
            return Applied(e.what, e.value, False, "unplug requested: the guest has not let go of it yet")
        return applied

    return _save(conn, uuid, action, edit, live)


def save_tpm(conn: libvirt.virConnect, uuid: str, v: TpmValues) -> EditResult:
    """Add, change or remove the TPM (next boot)."""
    action = "change the TPM of"

    def edit(ctx: _Ctx, dom: Domain) -> list[xmledit.Edit]:
        _check(action, ctx.obj, rules.check_tpm(v, ctx.settings(), read_offers(conn, ctx.config_xml,
                                                                              networking=False)))
        return xmledit.set_tpm(dom, v)

    return _save(conn, uuid, action, edit)


def save_rng(conn: libvirt.virConnect, uuid: str, v: RngValues) -> EditResult:
    """Add, change or remove the virtio RNG (plugged live where libvirt can)."""
    action = "change the random number generator of"
    plan: dict[str, list] = {}

    def edit(ctx: _Ctx, dom: Domain) -> list[xmledit.Edit]:
        _check(action, ctx.obj, rules.check_rng(v, ctx.settings(), read_offers(conn, ctx.config_xml,
                                                                              networking=False)))
        edits, plan["added"], plan["removed"] = xmledit.set_rng(dom, v)
        return edits

    def live(ctx: _Ctx, e: xmledit.Edit) -> Applied | None:
        running = ctx.live_domain()
        have = [r for r in running.devices.rngs if (r.backend_model or "random") == "random"]
        if plan["added"]:
            if have:
                return Applied(e.what, e.value, True)
            rng = plan["added"][0]
            return _live(ctx, e.what, e.value, lambda: ctx.dom.attachDeviceFlags(_element_xml(rng), LIVE),
                         "plugged in")
        if plan["removed"]:
            if not have:
                return Applied(e.what, e.value, True)
            applied = _live(ctx, e.what, e.value,
                            lambda: [ctx.dom.detachDeviceFlags(r.to_xml(pretty=True), LIVE) for r in have])
            if applied.live and not _wait_gone(ctx, lambda d: any((r.backend_model or "random") == "random"
                                                                   for r in d.devices.rngs)):
                return Applied(e.what, e.value, False, "unplug requested: the guest has not let go of it yet")
            return applied
        return Applied(e.what, e.value, False, "the random source changes when the VM starts")

    return _save(conn, uuid, action, edit, live)

