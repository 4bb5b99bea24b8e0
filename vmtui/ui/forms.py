"""Pieces the screens share: the error line under a field, labelled fields
(alone or side by side), a dialog's buttons, key tables with their help
screen, a short form dialog (FormDialog) and a small submit/cancel dialog
(SubmitDialog), the base of the host-object screens (storage, networks:
HostObjectScreen), of the screens about one VM (DomainScreen) and of those
about one VM's items (disks, snapshots: DomainItemsScreen)."""

from __future__ import annotations

from typing import Callable

from rich.markup import escape
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.css.query import NoMatches
from textual.screen import ScreenResultType
from textual.widget import Widget
from textual.widgets import Button, DataTable, Input, Label, ProgressBar, Select, Static

from ..core.connection.service import LibvirtService
from ..core.errors import VmtuiError
from .base import VModal, VScreen


def field_id(name: str) -> str:
    """'disks[0].size' -> 'err-disks-0-size' (a valid widget id)."""
    return "err-" + name.replace("[", "-").replace("]", "").replace(".", "-").replace("_", "-")


class FieldError(Static):
    """The message under a field; empty and hidden when the field is fine."""

    def __init__(self, name: str) -> None:
        super().__init__("", id=field_id(name), classes="field-error")
        self.field_name = name
        self.display = False

    def set(self, message: str | None) -> None:
        self.update(escape(message or ""))
        self.display = bool(message)


def show_field_errors(root: Widget, by_field: dict[str, str]) -> dict[str, str]:
    """Each message under its field (every :class:`FieldError` below ``root``
    is set or cleared); the messages that have no field on screen."""
    shown = set()
    for w in root.query(FieldError):
        msg = by_field.get(w.field_name)
        w.set(msg)
        if msg:
            shown.add(w.field_name)
    return {f: m for f, m in by_field.items() if f not in shown}


def labelled(label: str, widget: Widget, name: str | None = None, hint: str = "") -> list[Widget]:
    out: list[Widget] = [Label(label, classes="field-label"), widget]
    if hint:
        out.append(Static(hint, classes="field-hint"))
    if name:
        out.append(FieldError(name))
    return out


def side_by_side(*fields: tuple) -> Horizontal:
    """Labelled fields next to each other in a form row; each field is
    :func:`labelled`'s arguments: ``(label, widget[, error name[, hint]])``."""
    return Horizontal(*(Vertical(*labelled(*f)) for f in fields), classes="row")


def dialog_buttons(ok: str, ok_id: str = "ok", *, cancel: str = "Cancel", cancel_id: str = "cancel",
                   variant: str = "primary", compact: bool = False, ok_disabled: bool = False) -> Horizontal:
    """A dialog's row of buttons: the one that does it, then Cancel."""
    return Horizontal(Button(ok, id=ok_id, variant=variant, compact=compact, disabled=ok_disabled),  # type: ignore[arg-type]
                      Button(cancel, id=cancel_id, compact=compact), classes="dialog-buttons")


def bindings(table: list[tuple[str, str, str, str, bool]]) -> list[Binding]:
    """Bindings from a key table (key, action, footer label, description, shown in footer)."""
    out = []
    for key, action, label, desc, show in table:
        target = "app.focus_next" if action == "focus_next" else action
        out.append(Binding(key, target, label, show=show, tooltip=desc))
    return out


class KeyHelp(VModal[None]):
    """The keys of a screen, with their virsh equivalents."""

    BINDINGS = [Binding("escape,q,question_mark", "close", "Back")]

    def __init__(self, title: str, keys: list[tuple[str, str, str, str, bool]]) -> None:
        super().__init__()
        self.title_text = title
        self.keys = keys

    def compose(self) -> ComposeResult:
        from rich.table import Table
        t = Table(box=None, padding=(0, 1), show_header=False)
        t.add_column(style="bold", no_wrap=True)
        t.add_column(overflow="fold")
        names = {"question_mark": "?", "escape": "Esc", "tab": "Tab", "enter": "Enter"}
        for key, _a, _l, desc, _s in self.keys:
            t.add_row(names.get(key, key), desc)
        with Vertical(classes="dialog", id="key-help"):
            yield Label(self.title_text, classes="dialog-title")
            with VerticalScroll():
                yield Static(t)

    def action_close(self) -> None:
        self.dismiss(None)


# ---------------------------------------------------------------------------
# forms
# ---------------------------------------------------------------------------


class FormDialog(VModal):
    """A short form: labelled inputs with their error lines, a status line,
    an optional progress bar, OK and Cancel. Subclasses fill ``fields`` and
    implement :meth:`submit` (a coroutine; return a value to dismiss with),
    which does its work through ``service``."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]
    title_text = ""
    ok_label = "OK"
    with_progress = False

    def __init__(self, service: LibvirtService, title: str | None = None) -> None:
        super().__init__()
        self.service = service
        if title is not None:
            self.title_text = title

    def fields(self) -> ComposeResult:
        yield from ()

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog form-dialog"):
            yield Label(self.title_text, classes="dialog-title")
            with VerticalScroll(classes="form-body"):
                yield from self.fields()
            yield Static("", id="form-status", classes="form-status")
            if self.with_progress:
                yield ProgressBar(total=100, show_eta=False, id="form-progress")
            yield dialog_buttons(self.ok_label, compact=True)

    def on_mount(self) -> None:
        if self.with_progress:
            self.query_one("#form-progress").display = False
        inputs = list(self.query(Input))
        if inputs:
            inputs[0].focus()
        self.changed()

    def field(self, name: str) -> str:
        return self.query_one(f"#{name}", Input).value

    def set_errors(self, errors: dict[str, str | None], partial: bool = False) -> bool:
        """Show each message under its field (``partial``: only the fields
        named in ``errors``, the others keep theirs); True when there is none."""
        for err in self.query(FieldError):
            if not partial or err.field_name in errors:
                err.set(errors.get(err.field_name))
        return not any(errors.values())

    def status(self, text: str | Text) -> None:
        if not self.is_mounted:
            return
        self.query_one("#form-status", Static).update(text if isinstance(text, Text) else escape(text))

    def changed(self) -> None:
        """A field changed: update hints (override)."""

    @on(Input.Changed)
    @on(Select.Changed)
    def _changed(self) -> None:
        self.changed()

    busy = False

    @on(Input.Submitted)
    @on(Button.Pressed, "#ok")
    def _ok(self) -> None:
        if not self.busy:
            self._submit()

    @work(group="form", exclusive=True)
    async def _submit(self) -> None:
        self.busy = True
        self.query_one("#ok", Button).disabled = True
        try:
            result = await self.submit()
        except VmtuiError as err:
            self.status(Text(err.message, style="bold red"))
            self.notify(err.message, title=self.title_text, severity="error", timeout=12)
            result = None
        finally:
            self.busy = False
            if self.is_mounted:
                self.query_one("#ok", Button).disabled = False
        if result is not None:
            self.dismiss(result)

    async def submit(self):  # pragma: no cover - overridden
        return None

    @on(Button.Pressed, "#cancel")
    def _cancel_pressed(self) -> None:
        self.action_cancel()

    def action_cancel(self) -> None:
        self.dismiss(None)


class HostObjectScreen(VScreen):
    """The base of the screens listing host objects (storage pools, networks):
    their tables keep their events, and their actions run as notifying workers."""

    actions_group = "host-object-actions"
    object_kind = ""  # the kind of the service's ObjectEvents that reload the screen

    def __init__(self, service: LibvirtService) -> None:
        super().__init__()
        self.service = service
        self.users: dict[str, list[str]] = {}  # who uses each object: VM names
        self.loaded = False

    def item_at_cursor(self, table_id: str, items: list):
        """The item of ``items`` (the rows of table ``table_id``, in order)
        under its cursor; None before the screen is composed (Textual may ask
        the screen's check_action then, for the footer of the screen below)."""
        try:
            table = self.query_one(table_id, DataTable)
        except NoMatches:
            return None
        row = table.cursor_row
        return items[row] if items and table.row_count and 0 <= row < len(items) else None

    @staticmethod
    def keep_cursor(table: DataTable, names: list[str], current: str | None) -> None:
        """Put the cursor back on ``current`` after the rows were read again."""
        if current in names:
            table.move_cursor(row=names.index(current))

    def action_close(self) -> None:
        self.dismiss()

    def reload(self) -> None:  # pragma: no cover - overridden
        """Read the objects again (a worker in the subclasses)."""

    def on_object_event(self, kind: str, name: str) -> None:
        """The app forwards the service's ObjectEvents here."""
        if kind == self.object_kind:
            self.reload()

    def _run(self, title: str, fn: Callable, done: str | Callable[[object], str], obj: str,
             timeout: float = 4) -> None:
        """Run ``fn(conn)`` as a worker; say ``done`` (or ``done(result)``),
        or the error, and reload."""
        async def job() -> None:
            try:
                result = await self.service.call(fn, action=title.lower(), obj=obj)
            except VmtuiError as err:
                self.notify(err.message, title=title, severity="error", timeout=12)
                return
            self.notify(done(result) if callable(done) else done, title=title, timeout=timeout)
            self.reload()
        self.run_worker(job(), group=self.actions_group)


class DomainScreen(VScreen):
    """A screen about one VM: the service, and the VM's UUID and name."""

    def __init__(self, service: LibvirtService, uuid: str, name: str) -> None:
        super().__init__()
        self.service = service
        self.uuid = uuid
        self.domain_name = name


class DomainItemsScreen(DomainScreen):
    """The base of the screens about one VM's items (its disks, its
    snapshots): a table, a detail line under it that follows the cursor,
    and actions that run as workers, notify, and load the table again."""

    detail_id = ""  # the id of the detail Static
    busy_group = ""  # the worker group of the actions
    done_timeout = 6  # seconds the "done" notification stays

    @property
    def running(self) -> bool:
        d = self.service.domains.get(self.uuid)
        return bool(d and d.is_active)

    def _item_at_cursor(self, items: list):
        t = self.query_one(DataTable)
        if not items or t.cursor_row is None or t.cursor_row >= len(items):
            return None
        return items[t.cursor_row]

    def load(self, select: str | None = None) -> None:  # pragma: no cover - overridden
        """Read the items again (a worker in the subclasses)."""

    def _detail(self) -> None:  # pragma: no cover - overridden
        """Show the item under the cursor in the detail line."""

    def _load_failed(self, err: VmtuiError, title: str) -> None:
        self.query_one(self.detail_id, Static).update(Text(err.message, style="red"))
        self.notify(err.message, title=title, severity="error", timeout=12)

    @on(DataTable.RowHighlighted)
    def _highlighted(self) -> None:
        self._detail()

    def action_reload(self) -> None:
        self.load()

    def done_text(self, done: str, result) -> str:
        """The notification once an action has worked (override to fill in the result)."""
        return done

    def _busy(self, title: str, job, done: str, select: str | None = None) -> None:
        async def runner() -> None:
            try:
                result = await job()
            except VmtuiError as err:
                self.notify(err.message, title=title, severity="error", timeout=15)
            else:
                self.notify(self.done_text(done, result), title=title, timeout=self.done_timeout)
            self.load(select)
        self.run_worker(runner(), group=self.busy_group)


class SubmitDialog(VModal[ScreenResultType]):
    """A small dialog: Enter in its input or its OK button (id ``ok_id``)
    runs :meth:`_submit`; any other button and Esc dismiss it with None.
    With ``focus_cancel`` (dialogs that destroy something) Cancel has the
    focus first."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]
    ok_id = "ok"
    focus_cancel = False

    def on_mount(self) -> None:
        if self.focus_cancel:
            self.query_one("#cancel", Button).focus()

    def _submit(self) -> None:  # pragma: no cover - overridden
        """Check the input; dismiss with the result when it is good."""

    def on_input_submitted(self) -> None:
        self._submit()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == self.ok_id:
            self._submit()
        else:
            self.dismiss(None)

    def action_cancel(self) -> None:
        self.dismiss(None)
