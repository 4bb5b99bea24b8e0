"""Modal dialogs: confirm, one line of text, and delete-with-storage."""

from __future__ import annotations

from typing import Callable

from rich.markup import escape
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.widgets import Button, Input, Label, Static

from ..core.connection.rows import DomainInfo
from ..core.connection.service import DiskUsage
from ..core.sizes import fmt_bytes
from .base import VModal
from .forms import dialog_buttons
from .toggles import Checkbox


class ConfirmDialog(VModal[bool]):
    """A yes/no question. Enter on the focused button, Esc or n says no."""

    BINDINGS = [
        Binding("escape,n", "answer(False)", "Cancel"),
        Binding("y", "answer(True)", "Yes"),
    ]

    def __init__(self, title: str, question: str, yes: str = "Yes", danger: bool = True) -> None:
        super().__init__()
        self.title_text = title
        self.question = question
        self.yes = yes
        self.danger = danger

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.title_text, classes="dialog-title")
            yield Static(self.question, classes="dialog-body")
            yield dialog_buttons(self.yes, "yes", cancel_id="no", variant="error" if self.danger else "primary")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, value: bool) -> None:
        self.dismiss(value)


class AskText(VModal["str | None"]):
    """One line of text (a name, a path): Enter or the OK button answers,
    Esc or Cancel gives None. ``check(text)`` returns a problem to show
    under the field; without it an empty answer is a problem, unless not
    ``required`` (then it is None, like Cancel)."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, question: str, default: str = "", ok: str = "OK",
                 check: Callable[[str], str | None] | None = None, *, required: bool = True) -> None:
        super().__init__()
        self.question, self.default, self.ok, self.check, self.required = question, default, ok, check, required

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.question, classes="dialog-title")
            yield Input(self.default, id="answer")
            yield Static("", id="answer-error", classes="field-error")
            yield dialog_buttons(self.ok, cancel_id="no")

    def on_mount(self) -> None:
        self.query_one("#answer-error").display = False
        self.query_one(Input).focus()

    @on(Input.Submitted)
    @on(Button.Pressed, "#ok")
    def _ok(self) -> None:
        value = self.query_one(Input).value.strip()
        if not value and not self.required:
            self.dismiss(None)
            return
        problem = self.check(value) if self.check else (None if value else "Enter something")
        if problem:
            err = self.query_one("#answer-error", Static)
            err.update(escape(problem))
            err.display = True
            return
        self.dismiss(value)

    @on(Button.Pressed, "#no")
    def action_cancel(self) -> None:
        self.dismiss(None)


class DiskCheckbox(Checkbox):
    """One disk: target, file name and sizes; the full path and, for a disk
    that cannot be deleted, the reason go on the line below (DiskNote)."""

    def __init__(self, usage: DiskUsage, **kwargs) -> None:
        d = usage.disk
        name = (d.source or "(empty)").rstrip("/").rsplit("/", 1)[-1]
        label = f"{d.target or '?'}  {escape(name)}"
        if d.device != "disk":
            label += f" ({d.device})"
        if usage.capacity is not None:
            label += f"  {fmt_bytes(usage.capacity)}"
            if usage.allocation is not None:
                label += f", {fmt_bytes(usage.allocation)} allocated"
        super().__init__(label, value=False, disabled=not usage.deletable, **kwargs)
        self.usage = usage

    @property
    def note(self) -> str:
        d = self.usage.disk
        text = d.source or "no medium"
        if not self.usage.deletable:
            text += f" — kept: {self.usage.why_not_deletable}"
        return text


class DiskNote(Static):
    pass


class DeleteDialog(VModal["list[str] | None"]):
    """Which of the VM's disks to delete with it. Returns volume keys, or None to cancel."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, domain: DomainInfo, disks: list[DiskUsage]) -> None:
        super().__init__()
        self.domain = domain
        self.disks = disks

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="delete-dialog"):
            yield Label(f"Delete domain '{escape(self.domain.name)}'", classes="dialog-title")
            if self.domain.is_active:
                yield Static(f"It is {self.domain.state}: it will be forced off first.", classes="warning")
            if self.disks:
                yield Static("Also delete the storage of these disks (space toggles):")
                with VerticalScroll(id="disk-list"):
                    for i, usage in enumerate(self.disks):
                        box = DiskCheckbox(usage, id=f"disk-{i}")
                        yield box
                        yield DiskNote(escape(box.note), classes="dim")
            else:
                yield Static("This VM has no disks.")
            yield Static("The definition, its NVRAM and snapshot metadata are removed. "
                         "Unticked disks are kept.", classes="dim")
            yield dialog_buttons("Delete", "delete", variant="error")

    def on_mount(self) -> None:
        boxes = [b for b in self.query(DiskCheckbox) if not b.disabled]
        (boxes[0] if boxes else self.query_one("#cancel", Button)).focus()

    def selected_keys(self) -> list[str]:
        return [b.usage.volume_key for b in self.query(DiskCheckbox)
                if b.value and not b.disabled and b.usage.volume_key]

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "delete":
            self.dismiss(self.selected_keys())
        else:
            self.dismiss(None)

    def action_cancel(self) -> None:
        self.dismiss(None)
