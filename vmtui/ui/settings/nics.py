"""The NICs section: the VM's network interfaces, added, changed, unplugged
and removed at once (virt-manager's NIC page; ``virsh attach-interface``,
``domif-setlink``, ``detach-interface``)."""

from __future__ import annotations

from rich.markup import escape
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Input, Label, Select, Static

from ...core.connection.service import LibvirtService
from ...core.edit import apply, rules
from ...core.edit.result import EditResult, SettingsError
from ...core.edit.values import (
    MACVTAP_MODES,
    NIC_KINDS,
    NIC_MODELS,
    NicInfo,
    NicValues,
    Offers,
    Settings,
)
from ..dialogs import ConfirmDialog
from ..forms import FormDialog, labelled, side_by_side
from ..toggles import Checkbox
from .base import ListPane, options_with


def _sources(kind: str, offers: Offers) -> tuple[list[str], dict[str, str]]:
    if kind == "network":
        return list(offers.networks), dict(offers.network_labels)
    if kind == "bridge":
        return list(offers.bridges or offers.interfaces), {}
    return list(offers.interfaces), {}


class NicDialog(FormDialog):
    """A new NIC, or the one with ``nic``'s MAC address: its fields checked
    as they change, saved (live where libvirt can) when OK is pressed."""

    ok_label = "Save"

    def __init__(self, service: LibvirtService, settings: Settings, offers: Offers, nic: NicInfo | None = None):
        self.settings, self.offers, self.nic = settings, offers, nic
        self.start = nic.values if nic is not None else NicValues(
            source=offers.networks[0] if offers.networks else "")
        super().__init__(service, f"NIC {nic.values.mac} of {settings.name}" if nic else f"New NIC for {settings.name}")

    def fields(self) -> ComposeResult:
        v = self.start
        kind = Select([(label, k) for k, label in NIC_KINDS.items()], id="nic-kind", allow_blank=False,
                      value=v.kind, compact=True)
        source = Select([], id="nic-source", prompt="(choose)", compact=True)
        model = Select(options_with(list(NIC_MODELS), v.model), id="nic-model", allow_blank=False,
                       value=v.model or "virtio", compact=True)
        mode = Select([(m, m) for m in MACVTAP_MODES], id="nic-mode", allow_blank=False,
                      value=v.mode if v.mode in MACVTAP_MODES else "bridge", compact=True)
        yield side_by_side(("Plugged into", kind, "nic.kind"), ("Source", source, "nic.source"))
        yield Label("Source name (the host lists none of this kind)", classes="field-label nic-source-text")
        yield Input(id="nic-source-text", placeholder="its name on the host", compact=True)
        yield side_by_side(("Model", model, "nic.model"), ("macvtap mode", mode, "nic.mode"))
        yield from labelled("MAC address", Input(v.mac, id="nic-mac", placeholder="empty: one is made up",
                                                 compact=True), "nic.mac")
        yield Checkbox("Link up (cable plugged in)", v.link_up, id="nic-link", classes="compact")
        yield Static("", id="nic-hint", classes="field-hint")

    def on_mount(self) -> None:
        super().on_mount()
        self._fill_sources(self.start.source)
        self.query_one("#nic-kind", Select).focus()
        if self.settings.running:
            self.query_one("#nic-hint", Static).update(
                "Running: a new NIC is plugged in now; its network or bridge and link change now, its model and "
                "MAC address at the next boot." if self.nic else "Running: the new NIC is plugged in now.")

    def _fill_sources(self, keep: str | None = None) -> None:
        kind = str(self.query_one("#nic-kind", Select).value)
        names, labels = _sources(kind, self.offers)
        sel = self.query_one("#nic-source", Select)
        current = keep if keep is not None else (sel.value if isinstance(sel.value, str) else "")
        sel.set_options(options_with(names, current or "", labels))
        if current:
            sel.value = current
        elif names:
            sel.value = names[0]
        # a host that lists nothing of this kind (a remote one without libvirt's
        # interface driver): the name is typed
        free = not names and not current
        sel.display = not free
        self.query_one("#nic-source-text", Input).value = ""
        for w in self.query("#nic-source-text, .nic-source-text"):
            w.display = free
        self.query_one("#nic-mode", Select).disabled = kind != "macvtap"

    _last_kind: str | None = None

    def changed(self) -> None:
        if not self.is_mounted:
            return
        kind = str(self.query_one("#nic-kind", Select).value)
        if self._last_kind is not None and kind != self._last_kind:
            self._fill_sources("")
        self._last_kind = kind
        values = self.values()
        if values is not None:
            self.set_errors(rules.errors_of(self._check(values)))

    def values(self) -> NicValues | None:
        try:
            sel = self.query_one("#nic-source", Select)
            src = sel.value if sel.display else self.query_one("#nic-source-text", Input).value.strip()
            return NicValues(kind=str(self.query_one("#nic-kind", Select).value),
                             source=src if isinstance(src, str) else "",
                             model=str(self.query_one("#nic-model", Select).value),
                             mac=self.query_one("#nic-mac", Input).value.strip().lower(),
                             link_up=self.query_one("#nic-link", Checkbox).value,
                             mode=str(self.query_one("#nic-mode", Select).value))
        except Exception:  # noqa: BLE001 - not composed yet
            return None

    def _check(self, v: NicValues) -> list:
        offers = self.offers
        if self.nic is not None and (v.kind, v.source) == (self.start.kind, self.start.source):
            offers = Offers(networks=[], bridges=[], interfaces=[])  # an unchanged source stays allowed
        return rules.check_nic(v, self.settings, offers, old_mac=self.nic.values.mac if self.nic else None)

    async def submit(self) -> EditResult | None:
        v = self.values()
        if v is None:
            return None
        if not self.set_errors(rules.errors_of(self._check(v))):
            self.status(Text("Fix the fields marked above first.", style="bold red"))
            return None
        uuid, name = self.settings.uuid, self.settings.name
        self.status(Text("Saving…", style="dim"))
        try:
            if self.nic is None:
                return await self.service.call(lambda c: apply.add_nic(c, uuid, v), action="add a NIC to",
                                               obj=f"domain '{name}'", timeout=60)
            mac = self.nic.values.mac
            return await self.service.call(lambda c: apply.update_nic(c, uuid, mac, v),
                                           action=f"change NIC {mac} of", obj=f"domain '{name}'", timeout=60)
        except SettingsError as err:
            self.set_errors(err.errors)
            self.status(Text(err.message, style="bold red"))
            return None


class NicTable(DataTable):
    BINDINGS = [
        Binding("a", "add", "Add"),
        Binding("enter,e", "edit", "Edit"),
        Binding("l", "link", "Link"),
        Binding("r,delete", "remove", "Remove"),
    ]

    def __init__(self, **kw) -> None:
        super().__init__(cursor_type="row", **kw)

    @property
    def pane(self) -> "NicsPane":
        return self.query_ancestor(NicsPane)

    def action_add(self) -> None:
        self.pane.add()

    def action_edit(self) -> None:
        self.pane.edit()

    def action_link(self) -> None:
        self.pane.toggle_link()

    def action_remove(self) -> None:
        self.pane.remove()


class NicsPane(ListPane):
    section = "NICs"

    def fields(self) -> ComposeResult:
        table = NicTable(id="nics-table")
        table.add_columns("MAC", "Plugged into", "Model", "Link", "")
        yield table
        yield Static("", id="nics-detail")

    def fill(self, settings: Settings, offers: Offers) -> None:
        t = self.query_one(NicTable)
        row = t.cursor_row
        t.clear()
        for n in settings.nics:
            v = n.values
            note = "live only" if n.live_only else "next boot" if n.next_boot_only else ""
            t.add_row(v.mac or "-", n.label, v.model or "-", "up" if v.link_up else "down", note)
        if settings.nics:
            t.move_cursor(row=max(0, min(row, len(settings.nics) - 1)))
        live = ("Running: NICs plug in and out now; the network or bridge and the link change now, the model "
                "and MAC address at the next boot. ") if settings.running else ""
        self.hint(live + "a add · Enter edit · l link up/down · r remove")
        self.detail()

    @property
    def selected(self) -> NicInfo | None:
        if self.state is None:
            return None
        t = self.query_one(NicTable)
        nics = self.settings.nics
        return nics[t.cursor_row] if nics and 0 <= t.cursor_row < len(nics) else None

    def detail(self) -> None:
        n = self.selected
        w = self.query_one("#nics-detail", Static)
        if n is None:
            w.update("No NICs. a adds one.")
            return
        bits = [f"{n.values.mac}: {n.label}, {n.values.model or 'default model'}, link "
                f"{'up' if n.values.link_up else 'down'}"]
        if n.live_only:
            bits.append("hot-plugged: the running VM has it, its definition does not")
        elif n.next_boot_only:
            bits.append("added to the definition: the running VM gets it at the next boot")
        if not n.editable:
            bits.append(f"type {n.type}: vmtui changes only its link (edit the rest in the XML)")
        w.update(escape("; ".join(bits)))

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self.detail()

    @property
    def service(self) -> LibvirtService:
        return self.settings_screen.service

    async def _dialog_result(self, result: EditResult | None) -> None:
        if result is not None:
            self.settings_screen.saved(self, result)

    @work(group="settings-nic")
    async def add(self) -> None:
        if self.state is None:
            return
        result = await self.app.push_screen_wait(NicDialog(self.service, self.settings, self.offers))
        await self._dialog_result(result)

    @work(group="settings-nic")
    async def edit(self) -> None:
        n = self.selected
        if n is None:
            return
        if not n.editable or n.live_only:
            why = ("it is only in the running VM (hot-plugged)" if n.live_only
                   else f"it is of type {n.type}: vmtui edits NICs on networks, bridges and macvtap")
            self.notify(f"NIC {n.values.mac} cannot be edited here: {why}.", title="NICs", severity="warning")
            return
        result = await self.app.push_screen_wait(NicDialog(self.service, self.settings, self.offers, n))
        await self._dialog_result(result)

    @work(group="settings-nic")
    async def toggle_link(self) -> None:
        n = self.selected
        if n is None:
            return
        up = not n.values.link_up
        uuid, name, mac = self.settings.uuid, self.settings.name, n.values.mac
        await self.run_save(lambda: self.service.call(lambda c: apply.set_nic_link(c, uuid, mac, up),
                                                      action=f"change the link of NIC {mac} of",
                                                      obj=f"domain '{name}'"))

    @work(group="settings-nic")
    async def remove(self) -> None:
        n = self.selected
        if n is None:
            return
        mac, uuid, name = n.values.mac, self.settings.uuid, self.settings.name
        live = " It is unplugged from the running VM now." if self.settings.running else ""
        ok = await self.app.push_screen_wait(ConfirmDialog(
            "Remove NIC", f"Remove NIC {mac} ({n.label}) from '{name}'?{live}", yes="Remove"))
        if not ok:
            return
        await self.run_save(lambda: self.service.call(lambda c: apply.remove_nic(c, uuid, mac),
                                                      action=f"remove NIC {mac} from", obj=f"domain '{name}'",
                                                      timeout=60))

    def focus_first(self) -> None:
        self.query_one(NicTable).focus()
