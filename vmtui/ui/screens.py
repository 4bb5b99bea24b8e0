"""Details, XML and help screens."""

from __future__ import annotations

from rich.markup import escape
from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Static, TextArea

from ..core.connection.service import DiskUsage, LibvirtService
from ..core.errors import VmtuiError
from ..core.sizes import fmt_bytes, fmt_kib
from ..core.xml import domxml
from .base import VScreen
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


READINESS_WORDS = {
    "booting": "booting",
    "cloud-init": "cloud-init is running",
    "ready": "ready",
    "error": "error",
}


def guest_renderables(d, report, seed_status, *, watched: bool, seed_waits: bool, note: str = "") -> list:
    """The "Guest" section of the details: how far its boot got (when vmtui
    reads its console), its addresses with the source of each, and its
    cloud-init seed. ``d``: the DomainInfo (None: unknown); ``report``: an
    AddressReport (None: not read); ``seed_status``: core.provision.seed's
    SeedStatus or None; ``watched``: this vmtui reads its console;
    ``seed_waits``: this vmtui removes the seed once cloud-init finished."""
    rows: list[tuple[str, str]] = []
    running = d is not None and d.is_active
    if running:
        g = d.guest
        if g.readiness:
            rows.append(("Boot", f"{READINESS_WORDS.get(g.readiness, g.readiness)}: {g.readiness_detail}"
                         if g.readiness_detail else READINESS_WORDS.get(g.readiness, g.readiness)))
        elif watched:
            rows.append(("Boot", "nothing on its serial console yet"))
        else:
            rows.append(("Boot", "not followed: vmtui reads the boot (serial console) of the VMs it creates "
                                 "or starts"))
    if report is not None and report.addresses:
        t = _table(["Address", "Source", "MAC", "Interface"])
        for a in report.addresses:
            t.add_row(a.address, a.source, a.mac or "-", a.interface or "-")
        rows_table = t
    else:
        rows_table = None
    if running:
        if report is None:
            rows.append(("Addresses", note or "not read"))
        elif not report.addresses:
            rows.append(("Addresses", f"none known ({report.explain()})"))
        else:
            rows.append(("Sources", report.explain()))
    if seed_status is not None:
        where = seed_status.path or "?"
        if not seed_status.attached:
            text = f"{where} (not attached)"
        elif not seed_status.remove_after_first_boot:
            text = f"{where} (stays attached)"
        elif seed_waits:
            text = f"{where}: this vmtui removes it once cloud-init reports that it finished"
        else:
            text = (f"{where}: to go after the first boot, but only the vmtui that waits for it removes it "
                    "(vmtui create --wait, or the vmtui that created the VM), and none does: it stays. "
                    "Remove it in Disks (d).")
        rows.append(("cloud-init seed", text))
    out: list = [Text("\nGuest", style="bold underline")]
    if not rows and rows_table is None:
        out.append(Text("not running" if not running else "nothing known"))
        return out
    boot, rest = [r for r in rows if r[0] == "Boot"], [r for r in rows if r[0] != "Boot"]
    if boot:
        out.append(_kv_table(boot))
    if rows_table is not None:
        out.append(rows_table)
    if rest:
        out.append(_kv_table(rest))
    return out


def overview_renderables(ov: domxml.DomainOverview, disks: list[DiskUsage], connect: list | None = None,
                         guest: list | None = None) -> list:
    """The details of a domain as Rich renderables (one per section).

    ``connect``: the graphics displays with their connection lines
    (``core.graphics.connect_info``); they replace the plain graphics rows.
    ``guest``: the Guest section (:func:`guest_renderables`), after General."""
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
    out += guest or []

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
        Binding("e", "settings", "Settings"),
        Binding("c", "console", "Console"),
        Binding("r", "reload", "Reload"),
    ]

    def compose(self) -> ComposeResult:
        from .live_figures import LiveFigures
        yield Static(f" Details — {escape(self.domain_name)}", classes="screen-title")
        pending = Static("", id="details-pending")
        pending.display = False
        yield pending
        with VerticalScroll(id="details-body"):
            yield LiveFigures(self.service, self.uuid, id="live")
            yield Static("Loading…", id="details")
        yield KeyFooter()

    def domain_rows_changed(self, message) -> None:
        """The app forwards each batch of changed rows: the live figures follow this VM."""
        from .live_figures import LiveFigures
        for live in self.query(LiveFigures):  # none while composing: it reads the VM's row when it mounts
            if not live.is_mounted:
                continue
            if self.uuid in message.removed:
                live.show(None, gone=True)
                continue
            for d in message.changed:
                if d.uuid == self.uuid:
                    live.show(d)

    def on_mount(self) -> None:
        self.query_one("#details-body").focus()
        self._shown: tuple | None = None  # (overview, disks, connect) on screen
        self._guest_facts = None
        self._report = None
        self._report_note = ""
        self._seed_status = None
        self.load()
        self.set_interval(1.0, self._follow_guest)

    def _guests(self):
        of = getattr(self.app, "guests_of", None)  # the watch of this VM's host
        return of(self.service) if of is not None else getattr(self.app, "guests", None)

    def _follow_guest(self) -> None:
        """What the guest watch learns (readiness, addresses) shows as it comes:
        no libvirt call here, the watch reads."""
        d = self.service.domains.get(self.uuid)
        facts = d.guest if d is not None else None
        if self._shown is None or facts == self._guest_facts:
            return
        self._guest_facts = facts
        guests = self._guests()
        view = guests.view(self.uuid) if guests is not None else None
        if view is not None and view.addresses is not None:
            self._report = view.addresses
        if d is not None and not d.is_active:
            self._report = None
        self._show_details()

    def _show_details(self) -> None:
        from rich.console import Group
        if self._shown is None:
            return
        ov, disks, connect = self._shown
        d = self.service.domains.get(self.uuid)
        guests = self._guests()
        view = guests.view(self.uuid) if guests is not None else None
        guest = guest_renderables(d, self._report, self._seed_status,
                                  watched=view is not None and view.watched,
                                  seed_waits=view is not None and view.remove_seed, note=self._report_note)
        self.query_one("#details", Static).update(Group(*overview_renderables(ov, disks, connect, guest)))

    async def _read_guest(self) -> None:
        """The addresses (the watch's cache when fresh) and the seed."""
        from ..core.consoles.guests import ADDRESS_TTL
        from ..core.provision import seed
        d = self.service.domains.get(self.uuid)
        guests = self._guests()
        self._report, self._report_note = None, ""
        if d is not None and d.is_active and guests is not None:
            try:
                self._report = await guests.addresses(self.uuid, max_age=ADDRESS_TTL)
            except VmtuiError as err:
                self._report_note = f"cannot be read: {err.cause}"
        try:
            xml = await self.service.domain_xml(self.uuid, inactive=True)
            self._seed_status = seed.seed_status(xml)
        except (VmtuiError, domxml.DomainXMLError):
            self._seed_status = None
        self._guest_facts = d.guest if d is not None else None

    @work(exclusive=True, group="details-pending")
    async def load_pending(self) -> None:
        """The line that says what the next boot will change (none when shut off)."""
        from .settings.pending import pending_line
        await pending_line(self.service, self.uuid, self.domain_name, self.query_one("#details-pending", Static))

    @work(exclusive=True, group="details")
    async def load(self) -> None:
        self.load_pending()
        try:
            ov, disks = await self.service.details(self.uuid)
        except (VmtuiError, domxml.DomainXMLError) as err:
            self.query_one("#details", Static).update(Text(str(err), style="red"))
            self.notify(str(err), title="Details", severity="error")
            return
        await self._read_guest()
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
        self._shown = (ov, disks, connect)
        self._show_details()

    def action_reload(self) -> None:
        self.load()

    def action_xml(self) -> None:
        self.app.push_screen(XmlScreen(self.service, self.uuid, self.domain_name))

    def action_settings(self) -> None:
        from .settings import SettingsScreen
        self.app.push_screen(SettingsScreen(self.service, self.uuid, self.domain_name), lambda _: self.load())

    def action_console(self) -> None:
        from .console_screen import show_console
        slot = next((s for s in getattr(self.app, "slots", {}).values() if s.service is self.service), None)
        show_console(self.app, self.uuid, self.domain_name, slot.consoles if slot else None,
                     host=slot.name if slot else "")


class XmlScreen(DomainScreen):
    """The domain XML, read-only; ``e`` edits the persistent definition (xml_editor.py)."""

    BINDINGS = [
        Binding("escape,q", "app.pop_screen", "Back"),
        Binding("i", "toggle_inactive", "Live/config"),
        Binding("e", "edit", "Edit", tooltip="Edit the persistent definition (virsh edit): $VISUAL / $EDITOR "
                "when set, else vmtui's editor"),
        Binding("E", "edit_here", "Edit in vmtui", tooltip="Edit the persistent definition in vmtui's editor"),
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

    def action_edit(self) -> None:
        from .xml_editor import editor_command
        self.edit(editor_command())

    def action_edit_here(self) -> None:
        self.edit(None)

    @work(exclusive=True, group="xml-edit")
    async def edit(self, editor: list[str] | None) -> None:
        """Edit the persistent definition: in ``editor`` (argv), else in vmtui."""
        from .xml_editor import EditSession, XmlEditScreen, edit_externally
        if self.service.readonly:
            self.notify("Read-only connection: vmtui cannot change VMs here.", title="Edit XML",
                        severity="warning", timeout=5)
            return
        d = self.service.domains.get(self.uuid)
        if d is not None and not d.persistent:
            self.notify(f"'{escape(self.domain_name)}' is transient: it has no persistent definition to edit.",
                        title="Edit XML", severity="warning", timeout=6)
            return
        try:
            original = await self.service.domain_xml(self.uuid, inactive=True)
        except VmtuiError as err:
            self.notify(escape(err.message), title="Edit XML", severity="error", timeout=12)
            return
        if editor:
            defined = await edit_externally(self, editor, EditSession(self.service, self.uuid, self.domain_name,
                                                                      original))
        else:
            defined = await self.app.push_screen_wait(XmlEditScreen(self.service, self.uuid, self.domain_name,
                                                                    original))
        if defined is not None and self.is_attached:
            self.inactive = True  # show what libvirt holds now
            self.load()


class HelpScreen(VScreen):
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
