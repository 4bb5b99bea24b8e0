"""The serial console of a VM inside vmtui (Ctrl+] leaves, as in virsh)."""

from __future__ import annotations

from rich.markup import escape
from textual import work
from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Static

from ..core.console import ConsoleInUse, ConsoleManager, ConsoleNoDevice, ConsoleNotRunning, ConsoleSession
from ..core.errors import VmtuiError
from .dialogs import ConfirmDialog
from .terminal import TerminalView


class ConsoleScreen(Screen):
    """One VM's serial console. What arrived while away is shown again."""

    def __init__(self, manager: ConsoleManager, uuid: str, name: str) -> None:
        super().__init__()
        self.manager = manager
        self.uuid = uuid
        self.vm_name = name
        self.session: ConsoleSession | None = None

    def compose(self) -> ComposeResult:
        yield Static(f" Console — {escape(self.vm_name)} (serial)   Ctrl+] leaves", classes="screen-title")
        yield TerminalView(on_input=self._send, id="terminal")
        yield Static("connecting…", id="console-status", classes="screen-title")

    @property
    def terminal(self) -> TerminalView:
        return self.query_one(TerminalView)

    def on_mount(self) -> None:
        self.terminal.focus()
        self.connect()

    def _send(self, data: bytes) -> None:
        if self.session is not None and self.session.is_open:
            self.session.send(data)

    def _status(self, text: str) -> None:
        self.query_one("#console-status", Static).update(" " + escape(text))

    def _closed_threadsafe(self, reason: str) -> None:
        self.app.call_from_thread(self._closed, reason)

    def _closed(self, reason: str) -> None:
        self._status(f"{reason} — the scroll-back is kept; Ctrl+] leaves")

    @work(exclusive=True, group="console")
    async def connect(self, force: bool = False) -> None:
        try:
            session = await self.manager.open(self.uuid, force=force)
        except ConsoleInUse:
            if await self.app.push_screen_wait(ConfirmDialog(
                    "Console in use", f"Another client has the console of '{escape(self.vm_name)}'. "
                    "Take it over (like virsh console --force)?", yes="Take over", danger=False)):
                self.connect(force=True)
            else:
                self.app.pop_screen()
            return
        except ConsoleNotRunning:
            if await self.app.push_screen_wait(ConfirmDialog(
                    "VM not running", f"'{escape(self.vm_name)}' is not running. Start it?", yes="Start",
                    danger=False)):
                try:
                    await self.manager.service.start(self.uuid)
                except VmtuiError as err:
                    self.notify(err.message, title="Start", severity="error", timeout=12)
                    self.app.pop_screen()
                    return
                self.connect()
            else:
                self.app.pop_screen()
            return
        except ConsoleNoDevice as err:
            self.notify(err.message, title="Console", severity="error", timeout=12)
            self.app.pop_screen()
            return
        except VmtuiError as err:
            self.notify(err.message, title="Console", severity="error", timeout=12)
            self.app.pop_screen()
            return
        self.session = session
        history = session.attach(self.terminal.feed_threadsafe, self._closed_threadsafe)
        if history:
            self.terminal.feed(history)
        self._status("connected" if session.is_open else f"{session.close_reason or 'closed'}")

    def on_terminal_view_detach(self, event: TerminalView.Detach) -> None:
        event.stop()
        if self.session is not None:
            self.session.detach()  # keeps reading into the scroll-back
        self.app.pop_screen()
