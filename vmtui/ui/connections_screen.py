"""Connections (``H``): the saved connections and the open hosts, like
virt-manager's connection list and its "Add Connection".

Each row is a host: its name, URI, whether it connects at start
(autoconnect) and its state now. ``a`` adds a connection (the URI is checked
as it is typed; *Test* connects once and says what it found), ``e`` edits
one, ``D`` removes it from the config, ``c`` connects it (it joins the list),
``x`` disconnects it. The saved connections live in the config file
(``connections:``, core/config.py).

:class:`HostPicker` asks which host, when an action needs one (a new VM, the
storage of a host) and several are connected.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.markup import escape
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, DataTable, Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from ..core.config import SavedConnection, save_config, uri_problem
from ..core.connection.hosts import default_name
from ..core.connection.service import LibvirtService, normalize_uri
from ..core.errors import VmtuiError
from ..core.fleet.model import host_state
from .base import VModal, VScreen
from .dialogs import ConfirmDialog
from .fleet import short_uri
from .footer import KeyFooter
from .forms import FieldError, KeyHelp, bindings, labelled
from .toggles import Checkbox

KEYS: list[tuple[str, str, str, str, bool]] = [
    ("a", "add", "Add", "Add a connection: name, URI, autoconnect; Test tries it", True),
    ("e", "edit", "Edit", "Edit the saved connection", True),
    ("D", "remove", "Remove", "Remove the saved connection from the config (an open host stays open)", True),
    ("c", "connect", "Connect", "Connect the host: its VMs join the list", True),
    ("x", "disconnect", "Disconnect", "Disconnect the host: its VMs leave the list", True),
    ("question_mark", "help", "Help", "Show these keys", False),
    ("escape", "close", "Back", "Back to the list", True),
]


@dataclass
class Row:
    name: str
    uri: str
    saved: SavedConnection | None = None
    service: LibvirtService | None = None


class HostPicker(VModal["str | None"]):
    """Which of the connected hosts: Enter picks, Esc cancels. Dismissed
    with the host's name."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, question: str, services: list[LibvirtService]) -> None:
        super().__init__()
        self.question = question
        self.services = services

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="host-picker"):
            yield Label(self.question, classes="dialog-title")
            yield OptionList(*(Option(Text.assemble((s.name, "bold"), "  ", (short_uri(s.display_uri), "dim")),
                                      id=s.name)
                               for s in self.services), id="hosts")
            yield Static("Enter picks the host · Esc cancels", classes="dim")

    def on_mount(self) -> None:
        self.query_one(OptionList).focus()

    @on(OptionList.OptionSelected)
    def _picked(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)


def check_uri(uri: str) -> str | None:
    """What is wrong with a connection URI typed in, or None."""
    uri = uri.strip()
    if not uri:
        return "Enter a libvirt URI, e.g. qemu+ssh://root@host/system"
    if "://" not in uri:
        return "A libvirt URI has a scheme: qemu:///system, qemu+ssh://user@host/system, test:///default"
    scheme = uri.split("://", 1)[0]
    driver, _, transport = scheme.partition("+")
    if not driver or not driver.replace("-", "").isalnum():
        return f"'{scheme}' is not a libvirt scheme (driver[+transport]: qemu, qemu+ssh, qemu+tls, test ...)"
    if transport and transport not in ("ssh", "tls", "tcp", "unix", "libssh", "libssh2", "ext"):
        return f"unknown transport '+{transport}' (ssh, tls, tcp, unix, libssh, libssh2, ext)"
    return uri_problem(uri)


class ConnectionDialog(VModal["tuple[SavedConnection, bool] | None"]):
    """Add or edit a saved connection. Dismissed with (connection, connect now)."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, existing: SavedConnection | None = None, taken: set[str] | None = None) -> None:
        super().__init__()
        self.existing = existing
        self.taken = set(taken or ()) - ({existing.name} if existing else set())

    def compose(self) -> ComposeResult:
        e = self.existing
        with Vertical(classes="dialog form-dialog", id="connection-dialog"):
            yield Label("Edit connection" if e else "Add connection", classes="dialog-title")
            yield from labelled("URI", Input(e.uri if e else "", placeholder="qemu+ssh://root@host/system",
                                             id="uri"), "uri",
                                hint="ssh logs in with a key or ssh-agent only (never a password prompt)")
            yield from labelled("Name (the Host column)", Input(e.name if e else "", id="name",
                                                                placeholder="from the URI"), "name")
            yield Checkbox("Connect at start (autoconnect)", e.autoconnect if e else False, id="autoconnect")
            if e is None:
                yield Checkbox("Connect now", True, id="connect-now")
            yield Static("", id="test-result")
            yield Horizontal(Button("Test", id="test", compact=True),
                             Button("Save", id="ok", variant="primary", compact=True),
                             Button("Cancel", id="cancel", compact=True), classes="dialog-buttons")

    def on_mount(self) -> None:
        self.query_one("#uri", Input).focus()

    def _values(self) -> tuple[str, str, dict[str, str | None]]:
        uri = self.query_one("#uri", Input).value.strip()
        name = " ".join(self.query_one("#name", Input).value.split())
        errors: dict[str, str | None] = {"uri": check_uri(uri), "name": None}
        if not name and not errors["uri"]:
            name = default_name(uri)
        if name in self.taken:
            errors["name"] = f"'{name}' is the name of another saved connection"
        return uri, name, errors

    def _show(self, errors: dict[str, str | None]) -> bool:
        for err in self.query(FieldError):
            err.set(errors.get(err.field_name))
        return not any(errors.values())

    @on(Input.Changed, "#uri")
    def _uri_changed(self, event: Input.Changed) -> None:
        if event.value.strip():
            self.query_one("FieldError#err-uri", FieldError).set(check_uri(event.value))

    @on(Input.Submitted)
    @on(Button.Pressed, "#ok")
    def _save(self) -> None:
        uri, name, errors = self._values()
        if not self._show(errors):
            return
        auto = self.query_one("#autoconnect", Checkbox).value
        now = self.existing is None and self.query_one("#connect-now", Checkbox).value
        self.dismiss((SavedConnection(name=name, uri=uri, autoconnect=auto), now))

    @on(Button.Pressed, "#test")
    def _test_pressed(self) -> None:
        uri, _name, errors = self._values()
        if self._show({"uri": errors["uri"]}):
            self._test(uri)

    @work(exclusive=True, group="test-connection")
    async def _test(self, uri: str) -> None:
        out = self.query_one("#test-result", Static)
        out.update(Text(f"Connecting to {uri}…", style="yellow"))
        svc = LibvirtService(uri, reconnect=False, stats_interval=3600, timeout=20)
        try:
            await svc.connect()
        except VmtuiError as err:
            out.update(Text(err.message, style="bold red"))
            return
        try:
            h = svc.host
            ro = " (read-only)" if svc.readonly else ""
            out.update(Text(f"Connected{ro}: {h.hostname or '?'}, {h.driver} {h.hypervisor_version}, "
                            f"libvirt {h.libvirt_version}, {len(svc.domains)} VMs.", style="green"))
        finally:
            await svc.close()

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)


class ConnectionsScreen(VScreen):
    """The saved connections and the open hosts."""

    BINDINGS = bindings(KEYS) + [Binding("q", "close", "Back", show=False)]

    def compose(self) -> ComposeResult:
        yield Static(" Connections", classes="screen-title")
        yield DataTable(id="connections", cursor_type="row", zebra_stripes=False)
        yield Static("", id="connection-detail")
        yield KeyFooter(compact=True)

    def on_mount(self) -> None:
        t = self.query_one(DataTable)
        t.add_columns("Name", "URI", "Autoconnect", "State")
        self.rows: list[Row] = []
        self.reload()
        t.focus()
        self.set_interval(1.0, self.reload)  # states change while the screen is open

    # --- the rows ---------------------------------------------------------------

    def _rows(self) -> list[Row]:
        app = self.app
        open_ = {normalize_uri(slot.service.uri): slot.service for slot in app.slots.values()}
        rows: list[Row] = []
        seen = set()
        for c in app.config.connections:
            key = normalize_uri(c.uri)
            svc = open_.get(key)
            rows.append(Row(svc.name if svc is not None and svc.name else c.name, c.uri, c, svc))
            seen.add(key)
        for key, svc in open_.items():
            if key not in seen:
                rows.append(Row(svc.name or default_name(svc.display_uri), svc.display_uri, None, svc))
        return rows

    def reload(self) -> None:
        t = self.query_one(DataTable)
        keep = t.cursor_row
        self.rows = self._rows()
        t.clear()
        for i, r in enumerate(self.rows):
            if r.service is not None:
                slot = self.app.slots.get(r.service.name)
                err = slot.connect_error.cause if slot is not None and slot.connect_error else ""
                st = host_state(r.service, err)
                state = Text(st.word, style={"connected": "green", "read-only": "yellow"}.get(st.word, "bold red"))
            else:
                state = Text("—", style="dim")
            auto = "yes" if r.saved is not None and r.saved.autoconnect else ("no" if r.saved else "(not saved)")
            t.add_row(r.name, short_uri(r.uri), auto, state, key=str(i))
        if self.rows:
            t.move_cursor(row=min(keep, len(self.rows) - 1))
        self._detail()

    def selected(self) -> Row | None:
        t = self.query_one(DataTable)
        if not self.rows or not t.row_count:
            return None
        return self.rows[min(t.cursor_row, len(self.rows) - 1)]

    @on(DataTable.RowHighlighted)
    def _detail(self) -> None:
        r = self.selected()
        out = self.query_one("#connection-detail", Static)
        if r is None:
            out.update(Text(" No connections: a adds one.", style="dim"))
            return
        bits = [f" {short_uri(r.uri)}"]
        if r.service is not None:
            slot = self.app.slots.get(r.service.name)
            st = host_state(r.service, slot.connect_error.cause if slot and slot.connect_error else "")
            if st.problem:
                bits.append(st.problem)
            elif r.service.host.hostname:
                h = r.service.host
                bits.append(f"{h.hostname}: {h.driver} {h.hypervisor_version}, libvirt {h.libvirt_version}, "
                            f"{len(r.service.domains)} VMs")
        out.update(escape("\n ".join(bits)))

    # --- saving -------------------------------------------------------------------

    def _save(self) -> str:
        """Write the config; what to add to the notification."""
        config = self.app.config
        if config.path is None:
            return " (kept for this session: there is no config file)"
        if config.unusable:
            return f" (not written: {config.path} could not be read, see its notice)"
        try:
            save_config(config)
        except OSError as err:
            return f" (not written to {config.path}: {err.strerror or err})"
        return f" (saved in {config.path})"

    def _taken(self) -> set[str]:
        return {c.name for c in self.app.config.connections}

    # --- keys ---------------------------------------------------------------------

    def action_add(self) -> None:
        def done(answer) -> None:
            if answer is None:
                return
            conn, now = answer
            self.app.config.connections.append(conn)
            note = self._save()
            self.notify(escape(f"Added {conn.name} ({conn.uri}){note}"), title="Connections", timeout=6)
            if now:
                self.app.add_host(conn.uri, conn.name)
            self.reload()

        self.app.push_screen(ConnectionDialog(taken=self._taken()), done)

    def action_edit(self) -> None:
        r = self.selected()
        if r is None:
            return
        if r.saved is None:
            # an open host that is not saved yet: saving it is editing a new entry
            r.saved = SavedConnection(name=r.name, uri=r.uri)
            fresh = True
        else:
            fresh = False
        old = r.saved

        def done(answer) -> None:
            if answer is None:
                return
            conn, _ = answer
            conns = self.app.config.connections
            if fresh:
                conns.append(conn)
            else:
                conns[conns.index(old)] = conn
            note = self._save()
            renamed = r.service is not None and conn.name != r.service.name
            self.notify(escape(f"Saved {conn.name}{note}" + ("; the new name shows after reconnecting it"
                                                             if renamed else "")), title="Connections", timeout=6)
            self.reload()

        self.app.push_screen(ConnectionDialog(old, self._taken()), done)

    def action_remove(self) -> None:
        r = self.selected()
        if r is None or r.saved is None:
            self.notify("Not a saved connection (x disconnects an open host).", severity="warning", timeout=4)
            return
        saved = r.saved

        def answered(yes: bool | None) -> None:
            if yes:
                self.app.config.connections.remove(saved)
                note = self._save()
                self.notify(escape(f"Removed {saved.name}{note}"), title="Connections", timeout=5)
                self.reload()

        self.app.push_screen(ConfirmDialog("Remove connection", f"Remove the saved connection "
                                           f"'{escape(saved.name)}' ({escape(saved.uri)})? An open host stays "
                                           "open until you disconnect it.", yes="Remove"), answered)

    def action_connect(self) -> None:
        r = self.selected()
        if r is None:
            return
        if r.service is not None and r.service.state.value in ("connected", "connecting"):
            self.notify(escape(f"{r.name} is {r.service.state.value} already."), timeout=3)
            return
        if r.service is not None:
            slot = self.app.slots.get(r.service.name)
            if slot is not None:
                self.app.connect(slot)
        else:
            self.app.add_host(r.uri, r.saved.name if r.saved else "")
        self.notify(escape(f"Connecting {r.name}…"), timeout=3)
        self.reload()

    def action_disconnect(self) -> None:
        r = self.selected()
        if r is None or r.service is None:
            self.notify("That host is not open.", severity="warning", timeout=3)
            return
        service = r.service

        async def go() -> None:
            if not await self.app.remove_host(service.name):
                self.notify(escape(f"{service.name} is the only host: the list needs one (q quits vmtui)."),
                            title="Connections", severity="warning", timeout=5)
                return
            self.notify(escape(f"Disconnected {service.name}: its VMs left the list."), title="Connections",
                        timeout=5)
            self.reload()

        self.run_worker(go(), group="disconnect")

    def action_help(self) -> None:
        self.app.push_screen(KeyHelp("Connections — keys", KEYS))

    def action_close(self) -> None:
        self.dismiss()
