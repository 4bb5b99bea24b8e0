"""The sections about the whole VM: overview, CPUs, memory, boot."""

from __future__ import annotations

import copy

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.suggester import SuggestFromList
from textual.widgets import DataTable, Input, Label, Select, Static, TextArea

from ...core.edit import apply, rules
from ...core.edit.result import EditResult
from ...core.edit.values import (
    CPU_MODES,
    FIRMWARES,
    BootEntry,
    BootValues,
    CpuValues,
    MemoryValues,
    Offers,
    OverviewValues,
    Settings,
)
from ...core.sizes import format_memory
from ..forms import FieldError, labelled, side_by_side
from ..toggles import Checkbox
from .base import Edited, SettingsPane, options_with, parse_count, parse_mib


def _value(pane: SettingsPane, wid: str) -> str:
    return pane.query_one(wid, Input).value


def _opt_count(pane: SettingsPane, wid: str, field: str, errors: dict[str, str]) -> int | None:
    text = _value(pane, wid).strip()
    if not text:
        return None
    if not text.isdigit():
        errors[field] = f"'{text}' is not a whole number"
        return None
    return int(text)


class OverviewPane(SettingsPane):
    section = "Overview"

    def fields(self) -> ComposeResult:
        yield from labelled("Title", Input(id="ov-title", placeholder="a short name shown in the list",
                                           compact=True), "title")
        yield Label("Description", classes="field-label")
        yield TextArea(id="ov-description", soft_wrap=True, show_line_numbers=False, compact=True)
        yield FieldError("description")
        yield Checkbox("Start at host boot (autostart)", id="ov-autostart", classes="compact")
        yield FieldError("autostart")
        firmware = Select([(v, k) for k, v in FIRMWARES.items()], id="ov-firmware", allow_blank=False,
                          value="bios", compact=True)
        yield from labelled("Firmware", firmware, "firmware")

    def fill(self, settings: Settings, offers: Offers) -> None:
        ov = settings.overview
        self.query_one("#ov-title", Input).value = ov.title
        self.query_one("#ov-description", TextArea).load_text(ov.description)
        self.query_one("#ov-autostart", Checkbox).value = ov.autostart
        self.query_one("#ov-autostart", Checkbox).disabled = not settings.persistent
        fw = self.query_one("#ov-firmware", Select)
        fw.set_options(options_with(offers.firmware, ov.firmware, FIRMWARES))
        fw.value = ov.firmware
        fw.disabled = settings.running
        now = "Title and description change now as well. " if settings.running else ""
        firmware = ("The firmware changes only while the VM is shut off." if settings.running
                    else "Firmware: libvirt picks the UEFI build itself; an installed OS usually boots only with "
                         "the firmware it was installed with.")
        self.hint(now + firmware)

    def read(self) -> tuple[OverviewValues, dict[str, str]]:
        return OverviewValues(
            title=self.query_one("#ov-title", Input).value,
            description=self.query_one("#ov-description", TextArea).text,
            autostart=self.query_one("#ov-autostart", Checkbox).value,
            firmware=str(self.query_one("#ov-firmware", Select).value),
        ), {}

    def check(self, values: OverviewValues) -> list:
        return rules.check_overview(values, self.settings, self.offers)

    async def save(self, values: OverviewValues) -> EditResult:
        s = self.settings
        return await self.settings_screen.service.call(lambda c: apply.save_overview(c, s.uuid, values),
                                                       action="change the overview of", obj=f"domain '{s.name}'")


class CpusPane(SettingsPane):
    section = "CPUs"

    def fields(self) -> ComposeResult:
        def count(wid: str) -> Input:
            return Input(id=wid, type="integer", compact=True)

        yield side_by_side(("vCPUs", count("cpus-current"), "cpus.current"),
                           ("Maximum (hot-plug limit)", count("cpus-maximum"), "cpus.maximum"))
        mode = Select([(v, k) for k, v in CPU_MODES.items()], id="cpus-mode", allow_blank=False, value="",
                      compact=True)
        yield side_by_side(("CPU mode", mode, "cpus.mode"),
                           ("Model (named model)", Input(id="cpus-model", placeholder="e.g. qemu64", compact=True),
                            "cpus.model"))
        yield Label("Topology (all empty: none; sockets × cores × threads = the maximum)", classes="field-label")
        yield side_by_side(("Sockets", count("cpus-sockets")), ("Cores", count("cpus-cores")),
                           ("Threads", count("cpus-threads")))
        yield FieldError("cpus.topology")
        yield Static("", id="cpus-host", classes="field-hint")

    def fill(self, settings: Settings, offers: Offers) -> None:
        v = settings.cpus
        self.query_one("#cpus-current", Input).value = str(v.current)
        self.query_one("#cpus-maximum", Input).value = str(v.maximum)
        mode = self.query_one("#cpus-mode", Select)
        mode.set_options(options_with(offers.cpu_modes, v.mode, CPU_MODES))
        mode.value = v.mode
        model = self.query_one("#cpus-model", Input)
        model.value = v.model
        model.suggester = SuggestFromList(offers.cpu_models, case_sensitive=False) if offers.cpu_models else None
        for wid, n in (("#cpus-sockets", v.sockets), ("#cpus-cores", v.cores), ("#cpus-threads", v.threads)):
            self.query_one(wid, Input).value = "" if n is None else str(n)
        host = []
        if offers.host_cpus:
            host.append(f"The host has {offers.host_cpus} CPUs.")
        if offers.max_vcpus:
            host.append(f"The hypervisor takes up to {offers.max_vcpus} vCPUs.")
        self.query_one("#cpus-host", Static).update(" ".join(host))
        if settings.running:
            self.hint(f"Running with {settings.live_vcpus} of at most {settings.live_max_vcpus} vCPUs: vCPUs "
                      "change now (hot-plug) up to that; the maximum, mode, model and topology at the next boot.")
        else:
            self.hint("Shut off: every change is used at the next start.")
        self.changed()

    def changed(self) -> None:
        self.query_one("#cpus-model", Input).disabled = str(self.query_one("#cpus-mode", Select).value) != "custom"

    def read(self) -> tuple[CpuValues | None, dict[str, str]]:
        errors: dict[str, str] = {}
        cur = parse_count(_value(self, "#cpus-current"), "cpus.current", errors)
        mx = parse_count(_value(self, "#cpus-maximum"), "cpus.maximum", errors)
        topo = [_opt_count(self, wid, "cpus.topology", errors) for wid in ("#cpus-sockets", "#cpus-cores",
                                                                          "#cpus-threads")]
        if errors:
            return None, errors
        old = self.settings.cpus if self.state else CpuValues()
        has = any(t is not None for t in topo)
        return CpuValues(current=cur or 0, maximum=mx or 0, mode=str(self.query_one("#cpus-mode", Select).value),
                         model=_value(self, "#cpus-model").strip(), sockets=topo[0], cores=topo[1],
                         threads=topo[2], dies=old.dies if has else None,
                         clusters=old.clusters if has else None), {}

    def check(self, values: CpuValues) -> list:
        return rules.check_cpus(values, self.settings, self.offers)

    async def save(self, values: CpuValues) -> EditResult:
        s = self.settings
        return await self.settings_screen.service.call(lambda c: apply.save_cpus(c, s.uuid, values),
                                                       action="change the CPUs of", obj=f"domain '{s.name}'")


class MemoryPane(SettingsPane):
    section = "Memory"

    def fields(self) -> ComposeResult:
        yield side_by_side(("Memory (e.g. 2G, 512M)", Input(compact=True, id="memory-current"), "memory.current"),
                           ("Maximum", Input(compact=True, id="memory-maximum"), "memory.maximum"))
        yield Static("", id="memory-now", classes="field-hint")

    def fill(self, settings: Settings, offers: Offers) -> None:
        v = settings.memory
        self.query_one("#memory-current", Input).value = format_memory(v.current_mib)
        self.query_one("#memory-maximum", Input).value = format_memory(v.maximum_mib)
        host = f"The host has {format_memory(offers.host_memory_mib)}. " if offers.host_memory_mib else ""
        if settings.running:
            now = (f"Running with {format_memory(settings.live_memory_mib or 0)} of at most "
                   f"{format_memory(settings.live_max_memory_mib or 0)}")
            if settings.balloon:
                self.hint(now + ": the memory changes now (the balloon) up to that; the maximum at the next boot.")
            else:
                self.hint(now + " and no balloon device: memory changes wait for the next boot.")
        else:
            self.hint("Shut off: every change is used at the next start.")
        balloon = "" if settings.balloon else "The VM has no balloon device: the guest gets the maximum."
        self.query_one("#memory-now", Static).update(host + balloon)

    def read(self) -> tuple[MemoryValues | None, dict[str, str]]:
        errors: dict[str, str] = {}
        cur = parse_mib(_value(self, "#memory-current"), "memory.current", errors)
        mx = parse_mib(_value(self, "#memory-maximum"), "memory.maximum", errors)
        if errors:
            return None, errors
        return MemoryValues(current_mib=cur or 0, maximum_mib=mx or 0), {}

    def check(self, values: MemoryValues) -> list:
        return rules.check_memory(values, self.settings, self.offers)

    async def save(self, values: MemoryValues) -> EditResult:
        s = self.settings
        return await self.settings_screen.service.call(lambda c: apply.save_memory(c, s.uuid, values),
                                                       action="change the memory of", obj=f"domain '{s.name}'")


class BootList(DataTable):
    """The boot devices in order: the ticked ones boot, first to last."""

    BINDINGS = [
        Binding("space", "toggle", "On/off"),
        Binding("u,shift+up", "move(-1)", "Up"),
        Binding("d,shift+down", "move(1)", "Down"),
    ]

    def __init__(self, **kw) -> None:
        super().__init__(cursor_type="row", show_header=False, **kw)
        self.entries: list[BootEntry] = []

    def on_mount(self) -> None:
        self.add_columns("on", "device")

    def set_entries(self, entries: list[BootEntry], row: int = 0) -> None:
        self.entries = [copy.copy(e) for e in entries]
        self.clear()
        for e in self.entries:
            self.add_row(Text("[x]" if e.enabled else "[ ]"), Text(e.label))
        if self.entries:
            self.move_cursor(row=max(0, min(row, len(self.entries) - 1)))

    def action_toggle(self) -> None:
        row = self.cursor_row
        if 0 <= row < len(self.entries):
            self.entries[row].enabled = not self.entries[row].enabled
            self.set_entries(self.entries, row)
            self.post_message(Edited())  # the pane checks again

    def action_move(self, by: int) -> None:
        row = self.cursor_row
        new = row + by
        if 0 <= row < len(self.entries) and 0 <= new < len(self.entries):
            self.entries[row], self.entries[new] = self.entries[new], self.entries[row]
            self.set_entries(self.entries, new)
            self.post_message(Edited())


class BootPane(SettingsPane):
    section = "Boot"

    def fields(self) -> ComposeResult:
        yield Label("Boot order (Space: on/off; u / d: move up / down)", classes="field-label")
        yield BootList(id="boot-list")
        yield FieldError("boot.order")
        yield Checkbox("Boot menu (press Esc at start)", id="boot-menu", classes="compact")
        yield from labelled("Menu timeout (ms, empty: firmware default)",
                            Input(id="boot-timeout", type="integer", compact=True), "boot.menu_timeout")
        yield Label("Direct kernel boot (all empty: boot from the devices)", classes="section")
        yield from labelled("Kernel (path on the host)", Input(compact=True, id="boot-kernel"), "boot.kernel")
        yield from labelled("Initrd", Input(compact=True, id="boot-initrd"), "boot.initrd")
        yield from labelled("Kernel arguments", Input(compact=True, id="boot-cmdline"), "boot.cmdline")

    def fill(self, settings: Settings, offers: Offers) -> None:
        b = settings.boot
        self.query_one(BootList).set_entries(b.entries)
        self.query_one("#boot-menu", Checkbox).value = b.menu
        self.query_one("#boot-timeout", Input).value = "" if b.menu_timeout_ms is None else str(b.menu_timeout_ms)
        self.query_one("#boot-kernel", Input).value = b.kernel
        self.query_one("#boot-initrd", Input).value = b.initrd
        self.query_one("#boot-cmdline", Input).value = b.cmdline
        how = "each device's own boot order" if b.per_device else "the firmware's device kinds"
        self.hint(f"Boot order by {how}. " + ("Used at the next boot." if settings.running
                                               else "Used at the next start."))
        self.changed()

    def changed(self) -> None:
        self.query_one("#boot-timeout", Input).disabled = not self.query_one("#boot-menu", Checkbox).value

    def read(self) -> tuple[BootValues | None, dict[str, str]]:
        errors: dict[str, str] = {}
        menu = self.query_one("#boot-menu", Checkbox).value
        timeout = _opt_count(self, "#boot-timeout", "boot.menu_timeout", errors) if menu else None
        if errors:
            return None, errors
        per_device = self.settings.boot.per_device if self.state else False
        return BootValues(entries=[copy.copy(e) for e in self.query_one(BootList).entries], per_device=per_device,
                          menu=menu, menu_timeout_ms=timeout, kernel=_value(self, "#boot-kernel").strip(),
                          initrd=_value(self, "#boot-initrd").strip(), cmdline=_value(self, "#boot-cmdline")), {}

    def check(self, values: BootValues) -> list:
        return rules.check_boot(values, self.settings, self.offers)

    async def save(self, values: BootValues) -> EditResult:
        s = self.settings
        return await self.settings_screen.service.call(lambda c: apply.save_boot(c, s.uuid, values),
                                                       action="change the boot options of", obj=f"domain '{s.name}'")

