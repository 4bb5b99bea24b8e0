"""Serial consoles inside vmtui: several open at once, one tab each.

In a console every key goes to the guest except:

* ``Ctrl+]`` -- leave (as ``virsh console``); the console keeps running and
  keeps what arrives in its scroll-back;
* ``Ctrl+PgDn`` / ``Ctrl+PgUp`` -- next / previous open console;
* ``Shift+PgUp`` / ``Shift+PgDn`` -- scroll back.

While a console is not connected (VM not running, no serial device, console
in use, VM shut down, connection lost) there is no guest to type to, so the
letter keys offered in its state panel work (``s`` start, ``a`` add a serial
device, ``f`` force, ``r`` retry, ``w`` save the scroll-back, ``x`` close).
The domain list's ``C`` lists the open consoles: switch, save the scroll-back,
send the terminal size to the guest, close -- ``Ctrl+] C`` from a console.

Terminal size: a serial line carries no window size (no SIGWINCH, no
``TIOCSWINSZ`` from our side, unlike ssh or a pty), so the guest keeps
whatever ``stty`` says (often 80x24 or 0x0). The emulator follows the widget
(lines scroll into / back from the history like xterm, columns are cut);
telling the guest is explicit: ``t`` in the console list types
``stty rows R cols C`` into the guest's shell. Never automatic: typed into an
editor or a login prompt those words would do harm.
"""

from __future__ import annotations

import asyncio
import contextvars
import time

from rich.markup import escape
from rich.text import Text
from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, ContentSwitcher, DataTable, Input, Label, Static

from ..core.consoles import serial as C
from ..core.errors import VmtuiError
from ..core.sizes import fmt_bytes
from .base import VModal, VScreen
from .footer import KeyFooter
from .templates_ui import confirm_start
from .terminal import TerminalView
from .toggles import Checkbox

SCREEN_NAME = "vmtui-consoles"

CONNECTING = "connecting"
CONNECTED = "connected"
ERROR = "error"

#: How long after a console closed a connection loss is still blamed for it.
LOSS_WINDOW = 5.0


def _fmt_size(n: int) -> str:
    return fmt_bytes(n) if n else "empty"


class ConsolePane(Vertical):
    """One VM's console: the terminal, and a panel saying what is wrong and
    what can be done about it when it is not connected."""

    def __init__(self, manager: C.ConsoleManager, uuid: str, name: str, *, id: str | None = None,
                 host: str = "") -> None:
        super().__init__(id=id, classes="console-pane")
        self.manager = manager  # the console manager of the VM's host
        self.uuid = uuid
        self.vm_name = name
        self.host = host  # the host's name when there are several ("" otherwise)
        self.session: C.ConsoleSession | None = None
        self.state = CONNECTING
        self.detail = ""
        self.serial_in_definition: bool | None = None
        self.serial_added = False
        self.ever_connected = False
        self.resized_since_connect = False
        self._laid_out = False
        self._pos = 0  # scroll-back position already fed to the terminal
        self._closed_at = 0.0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ctx: contextvars.Context | None = None
        self.terminal = TerminalView(on_input=self._send)
        self.panel = Static("", classes="console-state")

    def compose(self) -> ComposeResult:
        yield self.terminal
        yield self.panel

    def on_mount(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._ctx = contextvars.copy_context()
        self.terminal.on_resize_terminal = self._terminal_resized
        self._show_state()
        self.connect()

    # -- data in / out (callbacks run on the libvirt-events thread) ----------

    def _send(self, data: bytes) -> None:
        if self.session is not None and self.session.is_open:
            self.session.send(data)

    def _on_data(self, data: bytes) -> None:
        self._pos += len(data)
        self.terminal.feed_threadsafe(data)

    def _on_closed_threadsafe(self, reason: str) -> None:
        loop = self._loop
        if loop is None:
            return
        try:
            loop.call_soon_threadsafe(self._session_closed, reason, context=self._ctx)
        except RuntimeError:  # the app is gone
            pass

    def _session_closed(self, reason: str) -> None:
        if reason == C.CLOSED_BY_USER or not self.is_mounted:
            return
        self._closed_at = time.monotonic()
        if reason == C.CONNECTION_LOST or self._connection_down():
            self.set_state(C.CONNECTION_LOST)
        elif reason in (C.VM_SHUT_DOWN, C.TAKEN_OVER):
            self.set_state(reason)
        else:
            self.set_state(ERROR, f"The console of '{self.vm_name}' closed: {reason}")
        screen = self.screen
        if not (isinstance(screen, ConsoleScreen) and screen.current is self and self.app.screen is screen):
            self.notify(f"Console of '{self.vm_name}': {self.label}", title="Console",
                        severity="warning", timeout=6)

    def _connection_down(self) -> bool:
        svc = self.manager.service
        return getattr(svc, "state", None) is not None and svc.state.value != "connected"

    # -- connecting ------------------------------------------------------------

    @work(exclusive=True, group="console-connect")
    async def connect(self, force: bool = False, fresh: bool = False) -> None:
        self.set_state(CONNECTING)
        if fresh and self.manager.session(self.uuid) is not None:
            # the old stream belongs to a connection that is gone
            await asyncio.to_thread(self.manager.close, self.uuid)
        try:
            session = await self.manager.open(self.uuid, force=force)
        except C.ConsoleInUse:
            self.set_state(C.IN_USE)
            return
        except C.ConsoleNotRunning:
            self.serial_in_definition = await C.definition_has_serial(self.manager.service, self.uuid)
            self.set_state(C.VM_NOT_RUNNING)
            return
        except C.ConsoleNoDevice:
            self.set_state(C.NO_SERIAL)
            return
        except VmtuiError as err:
            if self._connection_down():
                self.set_state(C.CONNECTION_LOST)
                return
            if not self.ever_connected and isinstance(self.screen, ConsoleScreen):
                if self not in self.screen.panes:
                    return
                # e.g. a driver without consoles: nothing to offer
                self.notify(err.message, title="Console", severity="error", timeout=12)
                self.screen.close_pane(self)
                return
            self.set_state(ERROR, err.message)
            return
        self._use_session(session)

    def _use_session(self, session: C.ConsoleSession) -> None:
        if self.session is not None and self.session is not session:
            self.session.detach()
        self.session = session
        data, self._pos = session.attach_from(self._pos, self._on_data, self._on_closed_threadsafe)
        if data:
            self.terminal.feed(data)
        self.ever_connected = True
        self.resized_since_connect = False
        if session.is_open:
            self.set_state(CONNECTED)
        else:
            self._session_closed(session.close_reason or C.VM_SHUT_DOWN)

    def detach(self) -> None:
        if self.session is not None:
            self.session.detach()

    # -- what the rest of the app says ----------------------------------------

    def connection_changed(self, connected: bool) -> None:
        if not connected:
            recent = time.monotonic() - self._closed_at < LOSS_WINDOW
            if self.state in (CONNECTED, CONNECTING) or (recent and self.state in (C.TAKEN_OVER, C.VM_SHUT_DOWN, ERROR)):
                self.detach()
                self.set_state(C.CONNECTION_LOST)
        elif self.state == C.CONNECTION_LOST:
            self.connect(fresh=True)

    def domain_event(self, event: str) -> None:
        if event == "started" and self.state in (C.VM_NOT_RUNNING, C.VM_SHUT_DOWN, C.NO_SERIAL):
            self.connect()

    # -- state -------------------------------------------------------------------

    @property
    def label(self) -> str:
        """Short state for the tab strip and the console list."""
        return {CONNECTING: "connecting…", CONNECTED: "connected", ERROR: "error"}.get(self.state, self.state)

    def describe(self) -> tuple[str, list[tuple[str, str]]]:
        """The state panel: a sentence, and the offered (key, what it does)."""
        n = escape(self.vm_name)
        offers: list[tuple[str, str]] = []
        st = self.state
        if st == CONNECTING and self.detail == "starting":
            return f"Starting '{n}'…", []
        if st == CONNECTING:
            return f"Connecting to the serial console of '{n}'…", []
        if st == C.VM_NOT_RUNNING:
            msg = f"VM not running: '{n}' is shut off, so its console has nothing to show."
            offers.append(("s", "start it (virsh start); the console connects when it runs"))
            if self.serial_in_definition is False:
                msg += " Its definition has no serial device either."
                offers.append(("a", "add a serial console to its definition first"))
            elif self.serial_added:
                msg += " A serial console was added to its definition."
        elif st == C.NO_SERIAL:
            if self.serial_added:
                msg = (f"A serial console was added to the persistent definition of '{n}'. It takes effect at "
                       "the next boot: shut the VM down and start it again (a reboot from inside the guest keeps "
                       "the devices it runs with). This console connects when the VM starts.")
                offers.append(("r", "retry now"))
            else:
                msg = f"No serial device: '{n}' has no serial port or console device to connect to."
                offers.append(("a", "add one to its persistent definition (<serial type='pty'> and its "
                                    "<console>, as virt-install --serial pty); it takes effect at the next boot"))
        elif st == C.IN_USE:
            msg = (f"Console in use by another client: someone has the console of '{n}' open "
                   "(virsh console, virt-manager or another vmtui).")
            offers += [("f", "take it over (virsh console --force): the other client is disconnected"),
                       ("r", "retry")]
        elif st == C.TAKEN_OVER:
            msg = f"Another client took over the console of '{n}' (virsh console --force). The scroll-back is kept."
            offers += [("f", "take it back"), ("r", "reconnect without force")]
        elif st == C.VM_SHUT_DOWN:
            msg = f"VM shut down: '{n}' stopped while you were watching. The scroll-back is kept (Shift+PgUp)."
            offers.append(("s", "start it again; the console reconnects by itself when it runs"))
        elif st == C.CONNECTION_LOST:
            uri = escape(getattr(self.manager.service, "display_uri", "the host"))
            msg = (f"Connection lost to {uri}. The console reconnects by itself when vmtui is connected "
                   "again; the scroll-back is kept.")
            offers.append(("r", "retry now"))
        else:
            msg = escape(self.detail or "The console closed.")
            offers.append(("r", "retry"))
        offers += [("w", "save the scroll-back to a file"), ("x", "close this console"),
                   ("Ctrl+]", "leave (the console stays in the list: C)")]
        return msg, offers

    def offered_keys(self) -> set[str]:
        if self.state in (CONNECTED, CONNECTING):
            return set()
        return {k for k, _ in self.describe()[1]}

    def set_state(self, state: str, detail: str = "") -> None:
        self.state = state
        self.detail = detail
        if self.is_mounted:
            self.terminal.input_enabled = state == CONNECTED
            self._show_state()
        screen = self.screen if self.is_attached else None
        if isinstance(screen, ConsoleScreen):
            screen.pane_changed(self)

    def _show_state(self) -> None:
        panel = self.panel
        if self.state == CONNECTED:
            panel.display = False
            return
        msg, offers = self.describe()
        text = Text.from_markup(msg)
        for key, what in offers:
            text.append("\n")
            text.append(f" {key} ", style="reverse")
            text.append(" " + what)
        panel.update(text)
        panel.display = True

    # -- actions --------------------------------------------------------------------

    def _terminal_resized(self, columns: int, lines: int) -> None:
        # the first layout is not a change the user made; later ones
        # (the user's terminal window changed) are worth a hint
        if self._laid_out and self.state == CONNECTED:
            self.resized_since_connect = True
        self._laid_out = True
        screen = self.screen if self.is_attached else None
        if isinstance(screen, ConsoleScreen):
            screen.pane_changed(self)

    def size_command(self) -> str:
        scr = self.terminal.screen_buffer
        return f"stty rows {scr.lines} cols {scr.columns}"

    def send_size(self) -> bool:
        if self.session is None or not self.session.is_open:
            return False
        self.session.send((self.size_command() + "\r").encode())
        self.resized_since_connect = False
        return True

    @work(group="console-action")
    async def start_vm(self) -> None:
        service = self.manager.service
        d = service.domains.get(self.uuid)
        if not await confirm_start(self.app, service, self.uuid, self.vm_name, template=bool(d and d.template)):
            return
        before = self.state
        self.set_state(CONNECTING, "starting")  # the 'started' event must not connect a second time
        try:
            await self.manager.service.start(self.uuid)
        except VmtuiError as err:
            self.notify(err.message, title="Start", severity="error", timeout=12)
            self.set_state(before)
            return
        self.notify(f"Started '{self.vm_name}'", title="Start", timeout=4)
        self.connect()

    @work(group="console-action")
    async def add_serial(self) -> None:
        try:
            result = await C.add_serial_console(self.manager.service, self.uuid)
        except C.SerialAlreadyPresent:
            self.serial_in_definition = True
            self.notify(f"The definition of '{self.vm_name}' already has a serial console; it takes effect "
                        "at the next boot.", title="Add serial console", timeout=8)
            self.serial_added = True
            self._show_state()
            return
        except VmtuiError as err:
            self.notify(err.message, title="Add serial console", severity="error", timeout=12)
            return
        self.serial_added = True
        self.serial_in_definition = True
        when = "at the next boot (shut down, then start)" if result.running else "when it starts"
        self.notify(f"Added a serial console to the definition of '{result.name}'; it takes effect {when}.",
                    title="Add serial console", timeout=10)
        self.set_state(C.NO_SERIAL if result.running else C.VM_NOT_RUNNING)


class ConsoleScreen(VScreen):
    """The open serial consoles, one tab each (installed once per app)."""

    BINDINGS = [
        Binding("ctrl+right_square_bracket", "leave", "Leave", key_display="^]"),
        Binding("ctrl+pagedown", "next_console", "Next", key_display="^PgDn", priority=True),
        Binding("ctrl+pageup", "prev_console", "Prev", key_display="^PgUp", priority=True),
        Binding("s", "start_vm", "Start"),
        Binding("a", "add_serial", "Add serial"),
        Binding("f", "force", "Force"),
        Binding("r", "retry", "Retry"),
        Binding("w", "save", "Save"),
        Binding("x", "close_console", "Close"),
        Binding("escape", "leave", "Leave", show=False),
    ]

    _OFFER_ACTIONS = {"start_vm": "s", "add_serial": "a", "force": "f", "retry": "r", "save": "w",
                      "close_console": "x", "leave": "Ctrl+]"}

    def __init__(self, manager: C.ConsoleManager) -> None:
        super().__init__()
        self.manager = manager
        self.panes: list[ConsolePane] = []
        self._pending: list[tuple[str, str]] = []
        self._serial = 0
        self._ready = False  # composed (is_mounted is still False in on_mount)

    def compose(self) -> ComposeResult:
        yield Static("", id="console-tabs", classes="screen-title")
        yield ContentSwitcher(id="console-panes")
        yield Static("", id="console-status")
        yield KeyFooter(compact=True)

    def on_mount(self) -> None:
        self._ready = True
        pending, self._pending = self._pending, []
        for uuid, name, manager, host in pending:
            self.open_console(uuid, name, manager, host=host)
        self._update_bars()

    # -- tabs --------------------------------------------------------------------

    @property
    def current(self) -> ConsolePane | None:
        if not self._ready:
            return None
        cur = self.query_one(ContentSwitcher).current
        return next((p for p in self.panes if p.id == cur), None)

    def pane_of(self, uuid: str, manager: C.ConsoleManager | None = None) -> ConsolePane | None:
        """The tab of ``uuid`` (on ``manager``'s host: after a migration the
        same VM can have a tab per host)."""
        return next((p for p in self.panes if p.uuid == uuid and (manager is None or p.manager is manager)), None)

    def open_console(self, uuid: str, name: str, manager: C.ConsoleManager | None = None, *,
                     host: str = "") -> None:
        """Show the console of ``uuid`` (opening a tab for it if needed)."""
        manager = manager or self.manager
        if not self._ready:
            if all(u != uuid or m is not manager for u, _, m, _ in self._pending):
                self._pending.append((uuid, name, manager, host))
            return
        pane = self.pane_of(uuid, manager)
        if pane is None:
            self._serial += 1
            pane = ConsolePane(manager, uuid, name, id=f"console-{self._serial}", host=host)
            self.panes.append(pane)
            self.query_one(ContentSwitcher).mount(pane)
        elif pane.state in (C.VM_NOT_RUNNING, C.NO_SERIAL, C.IN_USE, ERROR) and pane.ever_connected is False:
            pane.connect()  # asked again: look again
        self.switch_to(pane)

    def switch_to(self, pane: ConsolePane) -> None:
        self.query_one(ContentSwitcher).current = pane.id
        self.call_after_refresh(pane.terminal.focus)
        self._update_bars()
        self.refresh_bindings()

    def close_pane(self, pane: ConsolePane) -> None:
        """Close a console: its stream and scroll-back go, the tab too."""
        if pane not in self.panes:
            return
        i = self.panes.index(pane)
        self.panes.remove(pane)
        pane.detach()
        manager = pane.manager
        uuid = pane.uuid

        async def close() -> None:
            await asyncio.to_thread(manager.forget, uuid)

        self.app.run_worker(close(), group="console-close")
        pane.remove()
        if self.panes:
            self.switch_to(self.panes[min(i, len(self.panes) - 1)])
        else:
            self._update_bars()
            if self.app.screen is self:
                self.app.pop_screen()

    def pane_changed(self, pane: ConsolePane) -> None:
        self._update_bars()
        self.refresh_bindings()

    def _update_bars(self) -> None:
        if not self._ready:
            return
        cur = self.current
        tabs = Text(" Consoles ", style="bold")
        for i, p in enumerate(self.panes, 1):
            mark = "" if p.state == CONNECTED else f" ({p.label})"
            where = f"@{p.host}" if p.host else ""
            label = f" {i} {p.vm_name}{where}{mark} "
            tabs.append(label, style="reverse bold" if p is cur else "")
            tabs.append("│" if i < len(self.panes) else "")
        self.query_one("#console-tabs", Static).update(tabs)
        status = Text()
        if cur is not None:
            scr = cur.terminal.screen_buffer
            sb = len(cur.manager.scrollback(cur.uuid))
            status.append(f" {cur.vm_name}: {cur.label}")
            status.append(f" │ {scr.columns}×{scr.lines}")
            if cur.resized_since_connect:
                status.append(" (new size: ^] C t tells the guest)", style="bold")
            status.append(f" │ scroll-back {_fmt_size(sb)}")
        self.query_one("#console-status", Static).update(status)

    # -- keys --------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("next_console", "prev_console"):
            return len(self.panes) > 1
        key = self._OFFER_ACTIONS.get(action)
        if key is None or action == "leave":
            return True
        cur = self.current
        return cur is not None and key in cur.offered_keys()

    def action_leave(self) -> None:
        cur = self.current
        if cur is not None:
            cur.terminal.scroll_to_live()
        if self.app.screen is self:
            self.app.pop_screen()

    def on_terminal_view_detach(self, event: TerminalView.Detach) -> None:
        event.stop()
        self.action_leave()

    def _step(self, delta: int) -> None:
        cur = self.current
        if not self.panes or cur is None:
            return
        self.switch_to(self.panes[(self.panes.index(cur) + delta) % len(self.panes)])

    def action_next_console(self) -> None:
        self._step(1)

    def action_prev_console(self) -> None:
        self._step(-1)

    def action_start_vm(self) -> None:
        if cur := self.current:
            cur.start_vm()

    def action_add_serial(self) -> None:
        if cur := self.current:
            cur.add_serial()

    def action_force(self) -> None:
        if cur := self.current:
            cur.connect(force=True)

    def action_retry(self) -> None:
        if cur := self.current:
            cur.connect(fresh=cur.state == C.CONNECTION_LOST)

    def action_save(self) -> None:
        if cur := self.current:
            save_scrollback(self.app, cur)

    def action_close_console(self) -> None:
        if cur := self.current:
            self.close_pane(cur)

    # -- forwarded service messages ------------------------------------------------

    def connection_changed(self, connected: bool, manager: C.ConsoleManager | None = None) -> None:
        for p in list(self.panes):
            if manager is None or p.manager is manager:
                p.connection_changed(connected)

    def domain_event(self, uuid: str, event: str, manager: C.ConsoleManager | None = None) -> None:
        p = self.pane_of(uuid, manager)
        if p is not None:
            p.domain_event(event)

    def captures_keys(self) -> bool:
        """True while typing goes to a guest (app-wide keys must stay away)."""
        cur = self.current
        return cur is not None and cur.state == CONNECTED and cur.terminal.has_focus


# --------------------------------------------------------------------------
# saving the scroll-back


class SaveScrollbackDialog(VModal["str | None"]):
    """Where to save a console's scroll-back, as text or raw bytes."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, vm_name: str, data: bytes, default_path: str | None = None) -> None:
        super().__init__()
        self.vm_name = vm_name
        self.data = data
        self.default_path = default_path or C.default_log_path(vm_name)
        self._overwrite_ok: str | None = None

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="save-dialog"):
            yield Label(f"Save the console of '{escape(self.vm_name)}'", classes="dialog-title")
            yield Static(f"{_fmt_size(len(self.data))} of scroll-back (the last "
                         f"{fmt_bytes(C.SCROLLBACK_LIMIT)} the console sent).", classes="dim")
            yield Input(self.default_path, id="save-path")
            yield Static("", id="save-error", classes="field-error")
            yield Checkbox("Raw bytes with escape sequences (view with less -R)", id="save-raw")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Save", id="save", variant="primary")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#save-path", Input).focus()

    def _error(self, text: str) -> None:
        self.query_one("#save-error", Static).update(escape(text))

    @on(Input.Changed, "#save-path")
    def _path_changed(self) -> None:
        self._error("")

    @on(Input.Submitted, "#save-path")
    def _submitted(self) -> None:
        self.save()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "save":
            self.save()
        else:
            self.dismiss(None)

    def action_cancel(self) -> None:
        self.dismiss(None)

    @work(exclusive=True, group="save")
    async def save(self) -> None:
        path = self.query_one("#save-path", Input).value.strip()
        raw = self.query_one("#save-raw", Checkbox).value
        try:
            n = await asyncio.to_thread(C.write_scrollback, path, self.data, raw=raw,
                                        overwrite=self._overwrite_ok == path)
        except FileExistsError:
            self._overwrite_ok = path
            self._error("This file exists: Save again to overwrite it.")
            return
        except VmtuiError as err:
            self._error(err.message)
            self.query_one("#save-path", Input).focus()
            return
        import os
        full = os.path.abspath(os.path.expanduser(path))
        self.app.notify(f"Saved the console of '{self.vm_name}' ({fmt_bytes(n)}{', raw' if raw else ''}) to {full}",
                        title="Console", timeout=8)
        self.dismiss(full)


def save_scrollback(app: App, pane: ConsolePane) -> None:
    data = pane.manager.scrollback(pane.uuid).snapshot()
    app.push_screen(SaveScrollbackDialog(pane.vm_name, data))


# --------------------------------------------------------------------------
# the list of open consoles (C on the domain list)


class ConsoleListScreen(VScreen):
    """Open consoles: switch to one, save its scroll-back, send the size, close it."""

    BINDINGS = [
        Binding("escape,q", "app.pop_screen", "Back"),
        Binding("enter", "open", "Open"),
        Binding("w", "save", "Save"),
        Binding("t", "send_size", "Send size"),
        Binding("x", "close_console", "Close"),
    ]

    def compose(self) -> ComposeResult:
        yield Static(" Open consoles", classes="screen-title")
        yield DataTable(id="console-list", cursor_type="row", zebra_stripes=False)
        yield Static("Enter opens · w saves the scroll-back to a file · t types 'stty rows R cols C' into the "
                     "guest's shell (a serial line cannot tell the guest its size) · x closes the console and "
                     "drops its scroll-back · in a console Ctrl+PgDn/PgUp switch, Ctrl+] comes back here.",
                     id="console-list-help", classes="dim")
        yield KeyFooter(compact=True)

    @property
    def consoles(self) -> ConsoleScreen | None:
        return console_screen(self.app, create=False)

    def on_mount(self) -> None:
        t = self.query_one(DataTable)
        t.add_columns("#", "VM", "State", "Scroll-back", "Size")
        t.focus()

    def on_screen_resume(self) -> None:
        self.reload()

    def reload(self) -> None:
        t = self.query_one(DataTable)
        keep = t.cursor_row
        t.clear()
        cs = self.consoles
        panes = cs.panes if cs is not None else []
        for i, p in enumerate(panes, 1):
            scr = p.terminal.screen_buffer
            name = f"{p.vm_name}@{p.host}" if p.host else p.vm_name
            t.add_row(str(i), name, p.label, _fmt_size(len(p.manager.scrollback(p.uuid))),
                      f"{scr.columns}×{scr.lines}", key=p.id)
        if panes:
            t.move_cursor(row=min(keep, len(panes) - 1))
        elif self.app.screen is self:
            self.app.pop_screen()

    def selected(self) -> ConsolePane | None:
        cs = self.consoles
        t = self.query_one(DataTable)
        if cs is None or not t.row_count:
            return None
        key = t.coordinate_to_cell_key(t.cursor_coordinate).row_key.value
        return next((p for p in cs.panes if p.id == key), None)

    @on(DataTable.RowSelected)
    def _row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_open()

    def action_open(self) -> None:
        if p := self.selected():
            show_console(self.app, p.uuid, p.vm_name, p.manager, host=p.host)

    def action_save(self) -> None:
        if p := self.selected():
            save_scrollback(self.app, p)

    def action_send_size(self) -> None:
        p = self.selected()
        if p is None:
            return
        if p.send_size():
            self.notify(f"Typed '{p.size_command()}' into the console of '{p.vm_name}'.", title="Console",
                        timeout=5)
        else:
            self.notify(f"The console of '{p.vm_name}' is not connected ({p.label}).", title="Console",
                        severity="warning", timeout=5)

    def action_close_console(self) -> None:
        p = self.selected()
        cs = self.consoles
        if p is not None and cs is not None:
            cs.close_pane(p)
            self.notify(f"Closed the console of '{p.vm_name}'.", title="Console", timeout=3)
            self.reload()


# --------------------------------------------------------------------------
# entry points for the app


def console_screen(app: App, create: bool = True) -> ConsoleScreen | None:
    """The app's console screen (one, kept while the app runs)."""
    if app.is_screen_installed(SCREEN_NAME):
        return app.get_screen(SCREEN_NAME)  # type: ignore[return-value]
    if not create:
        return None
    screen = ConsoleScreen(app.consoles)  # type: ignore[attr-defined]
    app.install_screen(screen, SCREEN_NAME)
    return screen


def show_console(app: App, uuid: str, name: str, manager: C.ConsoleManager | None = None, *,
                 host: str = "") -> ConsoleScreen:
    """Open (or switch to) the console of ``uuid`` (on ``manager``'s host) and show it."""
    screen = console_screen(app)
    assert screen is not None
    screen.open_console(uuid, name, manager, host=host)
    if app.screen is not screen:
        if screen in app.screen_stack:
            while app.screen is not screen:
                app.pop_screen()
        else:
            app.push_screen(screen)
    return screen


def show_console_list(app: App) -> None:
    cs = console_screen(app, create=False)
    if cs is None or not (cs.panes or cs._pending):
        app.notify("No consoles are open. Press c on a VM to open its serial console.", title="Consoles",
                   timeout=5)
        return
    app.push_screen(ConsoleListScreen())


def forward_connection_state(app: App, state, manager: C.ConsoleManager | None = None) -> None:
    """Tell the open consoles (of ``manager``'s host) that the connection went down or came back."""
    cs = console_screen(app, create=False)
    if cs is None or not cs._ready:
        return
    from ..core.connection.service import ConnState
    if state is ConnState.CONNECTED:
        cs.connection_changed(True, manager)
    elif state is ConnState.DISCONNECTED:
        cs.connection_changed(False, manager)


def forward_domain_event(app: App, uuid: str, kind: str, manager: C.ConsoleManager | None = None) -> None:
    """Tell the open consoles about a domain event (a VM started or stopped) on ``manager``'s host."""
    cs = console_screen(app, create=False)
    if cs is not None and cs._ready:
        cs.domain_event(uuid, kind, manager)
