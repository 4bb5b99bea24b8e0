"""Details, XML and help screens."""

from __future__ import annotations

from rich.markup import escape
from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Static, TextArea

from ..core.xml import domxml
from ..core.errors import VmtuiError
from ..core.connection.service import DiskUsage, LibvirtService
from ..core.sizes import fmt_bytes, fmt_kib
from .footer import KeyFooter
from .forms import DomainScreen
from .keys import DOMAIN_LIST_KEYS, display_key


def _kv_table(rows: list[tuple[str, str]]) -> Table:
    t = Table.grid(padding=(0, 2))
    t.add_column(style="bold", no_wrap=True)
    t.add_column(overflow="fold")
    for k, v in rows:
        t.add_row(k, v)
    return t


def _table(headers: list[str]) -> Table:
    t = Table(box=None, padding=(0, 1), show_edge=False, header_style="bold")
    for h in headers:
        t.add_column(h, overflow="fold")
    return t


def overview_renderables(ov: domxml.DomainOverview, disks: list[DiskUsage], connect: list | None = None) -> list:
    """The details of a domain as Rich renderables (one per section).

    ``connect``: the graphics displays with their connection lines
    (``core.graphics.connect_info``); they replace the plain graphics rows."""
    general = [("Name", ov.name), ("UUID", ov.uuid or "-")]
    if ov.title:
        general.append(("Title", ov.title))
    if ov.description:
        general.append(("Description", ov.description))
    os_line = " ".join(x for x in (ov.os_type, ov.arch, ov.machine) if x) or "-"
    firmware = ov.firmware + (" (secure boot)" if ov.secure_boot else "")
    if ov.loader:
        firmware += f" — {ov.loader}"
    general += [
        ("Hypervisor", ov.domain_type + (" (KVM acceleration)" if ov.domain_type == "kvm" else
                                         " (TCG emulation)" if ov.domain_type == "qemu" else "")),
        ("OS", os_line),
        ("Firmware", firmware),
        ("Boot", ", ".join(ov.boot_devices) or ("kernel " + ov.kernel if ov.kernel else "-")),
    ]
    if ov.kernel:
        general.append(("Kernel", f"{ov.kernel}  initrd {ov.initrd or '-'}  cmdline {ov.cmdline or '-'}"))
    cpu = f"{ov.vcpus} vCPU" + (f" (max {ov.max_vcpus})" if ov.max_vcpus != ov.vcpus else "")
    if ov.cpu_mode:
        cpu += f", {ov.cpu_mode}" + (f" {ov.cpu_model}" if ov.cpu_model else "")
    if ov.topology:
        cpu += ", topology " + " ".join(f"{k}={v}" for k, v in ov.topology.items())
    general += [
        ("CPU", cpu),
        ("Memory", f"{fmt_kib(ov.current_memory_kib)} current, {fmt_kib(ov.memory_kib)} maximum"),
        ("Emulator", ov.emulator or "-"),
        ("Power", f"on poweroff {ov.on_poweroff or '-'}, on reboot {ov.on_reboot or '-'}, "
                  f"on crash {ov.on_crash or '-'}"),
    ]
    out: list = [Text("General", style="bold underline"), _kv_table(general)]

    out.append(Text("\nDisks", style="bold underline"))
    if disks:
        t = _table(["Target", "Device", "Bus", "Format", "Capacity", "Allocation", "Source"])
        for u in disks:
            d = u.disk
            flags = [f for f, on in (("ro", d.readonly), ("shared", d.shareable), ("transient", d.transient)) if on]
            alloc = fmt_bytes(u.allocation)
            if u.capacity and u.allocation is not None:
                alloc += " (thin)" if u.allocation < u.capacity * 0.95 else " (thick)"
            src = d.source or "(empty)"
            if d.backing:
                src += f"  ← {d.backing}"
            if flags:
                src += f"  [{', '.join(flags)}]"
            t.add_row(d.target or "-", d.device, d.bus or "-", d.driver_type or "-",
                      fmt_bytes(u.capacity), alloc, src)
        out.append(t)
    else:
        out.append(Text("none"))

    out.append(Text("\nNetwork interfaces", style="bold underline"))
    if ov.nics:
        t = _table(["MAC", "Source", "Model", "Host device", "Link"])
        for n in ov.nics:
            t.add_row(n.mac or "-", n.kind_label, n.model or "-", n.target or "-", n.link_state or "up")
        out.append(t)
    else:
        out.append(Text("none"))

    out.append(Text("\nGraphics and consoles", style="bold underline"))
    rows = []
    for info in connect or ():
        rows.append((info.display.label, info.display.describe()))
        for note in info.notes:
            rows.append(("", note))
        for what, cmd in info.commands:
            rows.append(("", f"{cmd}   # {what}"))
    for g in ov.graphics if connect is None else [g for g in ov.graphics if g.type not in ("vnc", "spice")]:
        port = str(g.port) if g.port else ("auto" if g.autoport else "-")
        rows.append((g.type.upper(), f"listen {g.listen or '-'}, port {port}"
                     + (f", TLS port {g.tls_port}" if g.tls_port else "")
                     + (", password set" if g.password_set else ", no password")))
    for s in ov.serials:
        rows.append((s.kind, f"{s.type}" + (f" {s.tty}" if s.tty else "")
                     + (f", {s.target_type}" if s.target_type else "")
                     + (f" port {s.port}" if s.port is not None else "")))
    if ov.video:
        rows.append(("video", ov.video))
    out.append(_kv_table(rows) if rows else Text("none"))
    return out


class DetailsScreen(DomainScreen):
    """Overview of one domain, built from its XML."""

    BINDINGS = [
        Binding("escape,q", "app.pop_screen", "Back"),
        Binding("x", "xml", "XML"),
        Binding("c", "console", "Console"),
        Binding("r", "reload", "Reload"),
    ]

    def compose(self) -> ComposeResult:
        yield Static(f" Details — {escape(self.domain_name)}", classes="screen-title")
        with VerticalScroll(id="details-body"):
            yield Static("Loading…", id="details")
        yield KeyFooter()

    def on_mount(self) -> None:
        self.query_one("#details-body").focus()
        self.load()

    @work(exclusive=True, group="details")
    async def load(self) -> None:
        try:
            ov, disks = await self.service.details(self.uuid)
        except (VmtuiError, domxml.DomainXMLError) as err:
            self.query_one("#details", Static).update(Text(str(err), style="red"))
            self.notify(str(err), title="Details", severity="error")
            return
        connect = None
        if any(g.type in ("vnc", "spice") for g in ov.graphics):
            from ..core.consoles import graphics
            try:  # read with the SECURE flag: tells whether a password is set
                displays = await self.service.call(
                    lambda c: graphics.displays_of(c, self.uuid),
                    action="read the displays of", obj=f"domain '{self.domain_name}'")
                connect = [graphics.connect_info(d, self.service.display_uri, self.domain_name)
                           for d in displays]
            except VmtuiError:
                connect = None  # the plain rows from the XML above
        from rich.console import Group
        self.query_one("#details", Static).update(Group(*overview_renderables(ov, disks, connect)))

    def action_reload(self) -> None:
        self.load()

    def action_xml(self) -> None:
        self.app.push_screen(XmlScreen(self.service, self.uuid, self.domain_name))

    def action_console(self) -> None:
        from .console_screen import show_console
        slot = next((s for s in getattr(self.app, "slots", {}).values() if s.service is self.service), None)
        show_console(self.app, self.uuid, self.domain_name, slot.consoles if slot else None,
                     host=slot.name if slot else "")


class XmlScreen(DomainScreen):
    """The domain XML, read-only."""

    BINDINGS = [
        Binding("escape,q", "app.pop_screen", "Back"),
        Binding("i", "toggle_inactive", "Live/config"),
    ]

    def __init__(self, service: LibvirtService, uuid: str, name: str) -> None:
        super().__init__(service, uuid, name)
        self.inactive = False

    def compose(self) -> ComposeResult:
        yield Static(self._title(), id="xml-title", classes="screen-title")
        yield TextArea("Loading…", read_only=True, id="xml", show_line_numbers=True, soft_wrap=False)
        yield KeyFooter()

    def _title(self) -> str:
        which = "persistent configuration" if self.inactive else "live"
        return f" XML — {escape(self.domain_name)} ({which})"

    def on_mount(self) -> None:
        self.query_one("#xml").focus()
        self.load()

    @work(exclusive=True, group="xml")
    async def load(self) -> None:
        try:
            xml = await self.service.domain_xml(self.uuid, inactive=self.inactive)
        except VmtuiError as err:
            self.query_one("#xml", TextArea).load_text(str(err))
            self.notify(str(err), title="XML", severity="error")
            return
        self.query_one("#xml", TextArea).load_text(xml)
        self.query_one("#xml-title", Static).update(self._title())

    def action_toggle_inactive(self) -> None:
        self.inactive = not self.inactive
        self.load()


class HelpScreen(Screen):
    """Every key of the domain list."""

    BINDINGS = [Binding("escape,q,question_mark", "app.pop_screen", "Back")]

    def compose(self) -> ComposeResult:
        yield Static(" Help — keys", classes="screen-title")
        t = _table(["Key", "Action"])
        for key, _action, _label, desc, _show in DOMAIN_LIST_KEYS:
            t.add_row(display_key(key), desc)
        t.add_row("Ctrl+P", "Command palette: every action by name")
        t.add_row("Esc", "Close a screen or dialog; clear the filter")
        with VerticalScroll(id="help-body"):
            yield Static(t)
            yield Static(
                "\nStates and devices use libvirt's own words. Actions that do not apply to the "
                "selected VM's state are greyed out in the footer. Errors from libvirt appear as "
                "notifications naming the VM.", classes="dim")
        yield KeyFooter()

    def on_mount(self) -> None:
        self.query_one("#help-body").focus()
