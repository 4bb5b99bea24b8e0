"""Bulk actions (``b``) on the marked VMs: which action, one confirmation
that lists the VMs (and the ones it does not apply to, with why), then a
screen with each VM's progress. The work is core/fleet/bulk.py: concurrent,
a few at a time per host, every failure kept with its VM's name."""

from __future__ import annotations

from rich.markup import escape
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.widgets import Button, DataTable, Label, OptionList, Static
from textual.widgets.option_list import Option

from ..core.fleet import bulk
from .base import VModal
from .forms import dialog_buttons

STATE_STYLE = {bulk.WAITING: "dim", bulk.RUNNING: "yellow", bulk.DONE: "green", bulk.FAILED: "bold red",
               bulk.SKIPPED: "dim"}


class BulkMenu(VModal["str | None"]):
    """The action for the marked VMs: its key, or Enter on it."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")] + [
        Binding(a.key, f"pick('{a.name}')", a.label, show=False) for a in bulk.ACTIONS]

    def __init__(self, count: int) -> None:
        super().__init__()
        self.count = count

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="bulk-menu"):
            yield Label(f"{self.count} marked VM{'s' if self.count != 1 else ''}: do what?", classes="dialog-title")
            yield OptionList(*(Option(Text.assemble((f" {a.key} ", "bold"), f" {a.label}"), id=a.name)
                               for a in bulk.ACTIONS), id="bulk-actions")
            yield Static("A key or Enter picks · Esc cancels · the next step lists the VMs", classes="dim")

    def on_mount(self) -> None:
        self.query_one(OptionList).focus()

    @on(OptionList.OptionSelected)
    def _selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_pick(self, name: str) -> None:
        self.dismiss(name)

    def action_cancel(self) -> None:
        self.dismiss(None)


class BulkConfirm(VModal[bool]):
    """One confirmation for them all, naming every VM."""

    BINDINGS = [Binding("escape,n", "answer(False)", "Cancel"), Binding("y", "answer(True)", "Yes")]

    def __init__(self, action: bulk.BulkAction, report: bulk.BulkReport, hidden: int = 0) -> None:
        super().__init__()
        self.action = action
        self.report = report
        self.hidden = hidden

    def compose(self) -> ComposeResult:
        go = [o for o in self.report.outcomes if o.state != bulk.SKIPPED]
        skip = self.report.skipped
        title = f"{self.action.label}: {len(go)} VM{'s' if len(go) != 1 else ''}"
        body = Text()
        for o in go:
            body.append(f"  {o.name}", style="bold")
            body.append(f"  {o.host}\n" if o.host else "\n", style="dim")
        if skip:
            body.append(f"Not for {len(skip)} (left alone):\n", style="bold")
            for o in skip:
                body.append(f"  {o.name}" + (f" on {o.host}" if o.host else "") + f": {o.message}\n", style="dim")
        if self.hidden:
            body.append(f"{self.hidden} of the marked VMs are not shown by the filter now.\n", style="yellow")
        if self.action.warning:
            body.append(self.action.warning + "\n", style="bold")
        with Vertical(classes="dialog", id="bulk-confirm"):
            yield Label(escape(title) + (" — nothing to do" if not go else "?"), classes="dialog-title")
            with VerticalScroll(id="bulk-list"):
                yield Static(body)
            if go:
                yield dialog_buttons(self.action.label, "yes", cancel_id="no",
                                     variant="error" if self.action.warning else "primary")
            else:
                yield dialog_buttons("Close", "no", cancel="Cancel", cancel_id="no2")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, value: bool) -> None:
        go = any(o.state != bulk.SKIPPED for o in self.report.outcomes)
        self.dismiss(value and go)


class BulkProgressScreen(VModal[None]):
    """Each VM's state while the action runs; closing it leaves the work
    running (the summary comes as a notification)."""

    BINDINGS = [Binding("escape,q", "close", "Close")]

    def __init__(self, action: bulk.BulkAction, report: bulk.BulkReport) -> None:
        super().__init__()
        self.action = action
        self.report = report
        self.over = False

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="bulk-progress"):
            yield Label(f"{self.action.label}: {len(self.report.outcomes)} VMs", classes="dialog-title")
            yield DataTable(id="bulk-table", cursor_type="row", zebra_stripes=False)
            yield Static("", id="bulk-summary")
            yield dialog_buttons("Close", "close", cancel="Hide", cancel_id="hide", compact=True)

    def on_mount(self) -> None:
        t = self.query_one(DataTable)
        t.add_column("VM", key="vm")
        t.add_column("Host", key="host")
        t.add_column("State", key="state")
        t.add_column("", key="message")
        for o in self.report.outcomes:
            t.add_row(o.name, o.host, Text(o.state, style=STATE_STYLE[o.state]), o.message, key=o.key)
        t.focus()
        if self.over:  # it all ran before the screen was up
            self.finished()
        else:
            self.query_one("#close", Button).disabled = True
            self._summary()

    def outcome_changed(self, o: bulk.Outcome) -> None:
        if not self.is_mounted:
            return
        t = self.query_one(DataTable)
        try:
            t.update_cell(o.key, "state", Text(o.state, style=STATE_STYLE[o.state]))
            t.update_cell(o.key, "message", o.message, update_width=True)
        except Exception:  # a row key Textual no longer has: nothing to show
            return
        self._summary()

    def _summary(self) -> None:
        r = self.report
        running = sum(1 for o in r.outcomes if o.state == bulk.RUNNING)
        waiting = sum(1 for o in r.outcomes if o.state == bulk.WAITING)
        text = (f"{len(r.done)} done, {len(r.failed)} failed, {len(r.skipped)} skipped"
                + ("" if self.over else f", {running} running, {waiting} waiting"))
        self.query_one("#bulk-summary", Static).update(Text(text, style="bold red" if r.failed else "bold"))

    def finished(self) -> None:
        self.over = True
        if self.is_mounted:
            self._summary()
            self.query_one("#close", Button).disabled = False
            self.query_one("#hide", Button).display = False

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.action_close()

    def action_close(self) -> None:
        self.dismiss(None)
