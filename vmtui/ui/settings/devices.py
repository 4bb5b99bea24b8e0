"""The device sections: display and video, serial ports, the guest agent's
channel, TPM and RNG (these two as the host's domain capabilities offer
them)."""

from __future__ import annotations

from rich.markup import escape
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Input, Select, Static

from ...core.edit import apply, rules
from ...core.edit.result import EditResult
from ...core.edit.values import (
    GRAPHICS_TYPES,
    TPM_BACKENDS,
    DisplayValues,
    Offers,
    RngValues,
    Settings,
    TpmValues,
)
from ..dialogs import ConfirmDialog
from ..forms import labelled, side_by_side
from ..toggles import Checkbox
from .base import ListPane, SettingsPane, options_with


def _when(settings: Settings) -> str:
    return "Used at the next boot." if settings.running else "Used at the next start."


class DisplayPane(SettingsPane):
    section = "Display"

    def fields(self) -> ComposeResult:
        graphics = Select([(v, k) for k, v in GRAPHICS_TYPES.items()], id="display-graphics", allow_blank=False,
                          value="none", compact=True)
        video = Select([], id="display-video", prompt="no video card", compact=True)
        yield side_by_side(("Display", graphics, "display.graphics"), ("Video card", video, "display.video"))
        yield side_by_side(("Listen address", Input(id="display-listen", compact=True), "display.listen"),
                           ("Port (empty: automatic)", Input(id="display-port", type="integer", compact=True),
                            "display.port"))
        yield Static("", id="display-others", classes="field-hint")

    def fill(self, settings: Settings, offers: Offers) -> None:
        d = settings.display
        g = self.query_one("#display-graphics", Select)
        g.set_options(options_with(offers.graphics, d.graphics, GRAPHICS_TYPES))
        g.value = d.graphics
        video = self.query_one("#display-video", Select)
        video.set_options(options_with(offers.video, d.video))
        if d.video:
            video.value = d.video
        else:
            video.clear()
        self.query_one("#display-listen", Input).value = d.listen
        self.query_one("#display-port", Input).value = "" if d.port is None else str(d.port)
        others = ", ".join(t.upper() for t in settings.other_graphics)
        self.query_one("#display-others", Static).update(
            f"Also: {escape(others)} (kept as it is; edit it in the XML)" if others else "")
        self.hint("The first display and the video card. " + _when(settings))
        self.changed()

    def changed(self) -> None:
        off = str(self.query_one("#display-graphics", Select).value) == "none"
        self.query_one("#display-listen", Input).disabled = off
        self.query_one("#display-port", Input).disabled = off

    def read(self) -> tuple[DisplayValues | None, dict[str, str]]:
        errors: dict[str, str] = {}
        port_text = self.query_one("#display-port", Input).value.strip()
        port = None
        if port_text:
            if not port_text.isdigit():
                errors["display.port"] = f"'{port_text}' is not a port number"
            else:
                port = int(port_text)
        if errors:
            return None, errors
        video = self.query_one("#display-video", Select).value
        return DisplayValues(graphics=str(self.query_one("#display-graphics", Select).value),
                             listen=self.query_one("#display-listen", Input).value.strip(), port=port,
                             video=video if isinstance(video, str) else ""), {}

    def check(self, values: DisplayValues) -> list:
        return rules.check_display(values, self.settings, self.offers)

    async def save(self, values: DisplayValues) -> EditResult:
        s = self.settings
        return await self.settings_screen.service.call(lambda c: apply.save_display(c, s.uuid, values),
                                                       action="change the display of", obj=f"domain '{s.name}'")


class SerialTable(DataTable):
    BINDINGS = [
        Binding("a", "add", "Add port"),
        Binding("r,delete", "remove", "Remove"),
    ]

    def __init__(self, **kw) -> None:
        super().__init__(cursor_type="row", **kw)

    def action_add(self) -> None:
        self.query_ancestor(SerialPane).add()

    def action_remove(self) -> None:
        self.query_ancestor(SerialPane).remove()


class SerialPane(ListPane):
    section = "Serial"

    def fields(self) -> ComposeResult:
        t = SerialTable(id="serial-table")
        t.add_columns("Port", "Type", "Device")
        yield t

    def fill(self, settings: Settings, offers: Offers) -> None:
        t = self.query_one(SerialTable)
        row = t.cursor_row
        t.clear()
        for s in settings.serials:
            t.add_row(str(s.port), s.type, s.label)
        if settings.serials:
            t.move_cursor(row=max(0, min(row, len(settings.serials) - 1)))
        self.hint("Serial ports (the first one is the console, c on the list). a add · r remove. "
                  + _when(settings))

    def _selected(self):
        t = self.query_one(SerialTable)
        items = self.settings.serials if self.state else []
        return items[t.cursor_row] if items and 0 <= t.cursor_row < len(items) else None

    @work(group="settings-serial")
    async def add(self) -> None:
        if self.state is None:
            return
        uuid, name = self.settings.uuid, self.settings.name
        await self.run_save(lambda: self.settings_screen.service.call(
            lambda c: apply.add_serial(c, uuid), action="add a serial port to", obj=f"domain '{name}'"))

    @work(group="settings-serial")
    async def remove(self) -> None:
        s = self._selected()
        if s is None:
            return
        uuid, name, port = self.settings.uuid, self.settings.name, s.port
        console = " Its console goes with it." if port == 0 else ""
        ok = await self.app.push_screen_wait(ConfirmDialog(
            "Remove serial port", f"Remove serial port {port} from '{name}'?{console}", yes="Remove"))
        if ok:
            await self.run_save(lambda: self.settings_screen.service.call(
                lambda c: apply.remove_serial(c, uuid, port), action=f"remove serial port {port} from",
                obj=f"domain '{name}'"))

    def focus_first(self) -> None:
        self.query_one(SerialTable).focus()


class AgentPane(SettingsPane):
    section = "Guest agent"

    def fields(self) -> ComposeResult:
        yield Checkbox("QEMU guest agent channel (org.qemu.guest_agent.0)", id="agent-on", classes="compact")
        yield Static("", id="agent-state", classes="field-hint")

    def fill(self, settings: Settings, offers: Offers) -> None:
        self.query_one("#agent-on", Checkbox).value = settings.agent
        state = ""
        if settings.running and settings.agent_state:
            state = f"The agent in the guest is {settings.agent_state}."
        self.query_one("#agent-state", Static).update(state)
        live = "Running: the channel is plugged in or out now. " if settings.running else ""
        self.hint(live + "The guest needs qemu-guest-agent; it lets the host shut it down cleanly, freeze "
                         "its file systems and read its IP addresses.")

    def read(self) -> tuple[bool, dict[str, str]]:
        return self.query_one("#agent-on", Checkbox).value, {}

    async def save(self, values: bool) -> EditResult:
        s = self.settings
        return await self.settings_screen.service.call(lambda c: apply.set_agent(c, s.uuid, values),
                                                       action="change the guest agent channel of",
                                                       obj=f"domain '{s.name}'", timeout=30)


class TpmPane(SettingsPane):
    section = "TPM"

    def fields(self) -> ComposeResult:
        model = Select([("none", "")], id="tpm-model", allow_blank=False, value="", compact=True)
        backend = Select([(v, k) for k, v in TPM_BACKENDS.items()], id="tpm-backend", allow_blank=False,
                         value="emulator", compact=True)
        version = Select([("2.0", "2.0"), ("1.2", "1.2")], id="tpm-version", allow_blank=False, value="2.0",
                         compact=True)
        yield side_by_side(("TPM", model, "tpm.model"), ("Backend", backend, "tpm.backend"))
        yield side_by_side(("Version (emulated)", version, "tpm.version"),
                           ("Host device (passthrough)", Input(id="tpm-path", compact=True), "tpm.path"))
        yield Static("", id="tpm-offer", classes="field-hint")

    def fill(self, settings: Settings, offers: Offers) -> None:
        t = settings.tpm
        model = self.query_one("#tpm-model", Select)
        models = [v for _label, v in options_with(offers.tpm_models, t.model)]
        model.set_options([("none", "")] + [(m, m) for m in models])
        model.value = t.model
        backend = self.query_one("#tpm-backend", Select)
        backend.set_options(options_with(offers.tpm_backends or [t.backend], t.backend, TPM_BACKENDS))
        backend.value = t.backend
        self.query_one("#tpm-version", Select).value = t.version if t.version in ("1.2", "2.0") else "2.0"
        self.query_one("#tpm-path", Input).value = t.path
        if not offers.tpm:
            offer = "This host offers no TPM for this VM's machine (domain capabilities)."
        elif "emulator" not in offers.tpm_backends:
            offer = "This host offers only the host's own TPM (passthrough): install swtpm for an emulated one."
        else:
            offer = "" if offers.known else "The host did not say what it offers: libvirt checks when saved."
        self.query_one("#tpm-offer", Static).update(offer)
        self.hint("A TPM (Windows 11 wants TPM 2.0). " + _when(settings))
        self.changed()

    def changed(self) -> None:
        model = str(self.query_one("#tpm-model", Select).value)
        backend = str(self.query_one("#tpm-backend", Select).value)
        self.query_one("#tpm-backend", Select).disabled = not model
        self.query_one("#tpm-version", Select).disabled = not model or backend != "emulator"
        self.query_one("#tpm-path", Input).disabled = not model or backend != "passthrough"

    def read(self) -> tuple[TpmValues, dict[str, str]]:
        model = str(self.query_one("#tpm-model", Select).value)
        if not model:
            return TpmValues(), {}
        return TpmValues(model=model, backend=str(self.query_one("#tpm-backend", Select).value),
                         version=str(self.query_one("#tpm-version", Select).value),
                         path=self.query_one("#tpm-path", Input).value.strip()), {}

    def check(self, values: TpmValues) -> list:
        return rules.check_tpm(values, self.settings, self.offers)

    async def save(self, values: TpmValues) -> EditResult:
        s = self.settings
        return await self.settings_screen.service.call(lambda c: apply.save_tpm(c, s.uuid, values),
                                                       action="change the TPM of", obj=f"domain '{s.name}'")


class RngPane(SettingsPane):
    section = "RNG"

    def fields(self) -> ComposeResult:
        yield Checkbox("virtio random number generator", id="rng-on", classes="compact")
        yield from labelled("Fed from the host's", Input(compact=True, id="rng-source"), "rng.source")

    def fill(self, settings: Settings, offers: Offers) -> None:
        self.query_one("#rng-on", Checkbox).value = settings.rng.present
        self.query_one("#rng-source", Input).value = settings.rng.source
        live = "Running: plugged in or out now. " if settings.running else ""
        offer = "" if offers.rng else "This host offers no RNG device for this VM. "
        self.hint(offer + live + "Gives the guest entropy from the host (virt-manager's default: /dev/urandom).")
        self.changed()

    def changed(self) -> None:
        self.query_one("#rng-source", Input).disabled = not self.query_one("#rng-on", Checkbox).value

    def read(self) -> tuple[RngValues, dict[str, str]]:
        on = self.query_one("#rng-on", Checkbox).value
        return RngValues(present=on, source=self.query_one("#rng-source", Input).value.strip()), {}

    def check(self, values: RngValues) -> list:
        return rules.check_rng(values, self.settings, self.offers)

    async def save(self, values: RngValues) -> EditResult:
        s = self.settings
        return await self.settings_screen.service.call(lambda c: apply.save_rng(c, s.uuid, values),
                                                       action="change the random number generator of",
                                                       obj=f"domain '{s.name}'", timeout=30)

