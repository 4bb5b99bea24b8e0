"""The base of the settings screen's sections: a pane that shows one section
of the VM's settings, checks its fields as they change (the rules of
:mod:`vmtui.core.edit.rules`, the wizard's messages under the fields) and
saves it through the service."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Awaitable, Callable

from rich.markup import escape
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.message import Message
from textual.widget import Widget
from textual.widgets import Input, Select, Static, TextArea

from ...core.create.validation import FieldError as Problem
from ...core.edit.apply import EditorState
from ...core.edit.result import EditResult, SettingsError
from ...core.edit.values import Offers, Settings
from ...core.errors import VmtuiError
from ...core.sizes import parse_size
from ..forms import FieldError
from ..toggles import Checkbox

if TYPE_CHECKING:
    from .screen import SettingsScreen

__all__ = ["Edited", "SettingsPane", "ListPane", "parse_count", "parse_mib", "result_text", "options_with"]


class Edited(Message):
    """A widget of a pane changed what it holds (for widgets that are not fields)."""


def parse_count(text: str, field: str, errors: dict[str, str], *, empty: int | None = None) -> int | None:
    """A whole number typed into ``field`` (``empty``: the value of an empty field)."""
    text = text.strip()
    if not text:
        if empty is None:
            errors[field] = "Enter a whole number"
        return empty
    if not text.isdigit():
        errors[field] = f"'{text}' is not a whole number"
        return None
    return int(text)


def parse_mib(text: str, field: str, errors: dict[str, str]) -> int | None:
    """A memory size typed into ``field`` (plain numbers are MiB), in MiB."""
    try:
        n = parse_size(text, "M")
    except ValueError as err:
        errors[field] = str(err)
        return None
    if n % (1024 * 1024):
        errors[field] = "Give the memory in whole MiB (e.g. 1536M)"
        return None
    return n // (1024 * 1024)


def options_with(offered: list[str], current: str, labels: dict[str, str] | None = None) -> list[tuple[str, str]]:
    """Select options: what the host offers, plus the VM's current value."""
    values = list(offered)
    if current and current not in values:
        values.append(current)
    labels = labels or {}
    return [(labels.get(v, v) or v, v) for v in values]


def result_text(result: EditResult) -> Text:
    """The outcome of a save, for the pane's status line."""
    if not result.changes:
        return Text(result.summary(), style="dim")
    out = Text()
    if result.now:
        out.append("Now: ", style="bold")
        out.append("; ".join(c.describe() for c in result.now))
    if result.next_boot:
        if out:
            out.append("\n")
        out.append("At next boot: " if result.running else "Saved: ", style="bold")
        out.append("; ".join(c.describe() for c in result.next_boot))
    return out


class SettingsPane(VerticalScroll):
    """One section of the settings. Subclasses compose their fields, fill
    them (:meth:`show`), read them back (:meth:`read`: values and parse
    errors), check them (:meth:`check`) and save them (:meth:`save`)."""

    section = ""  # its name in the list of sections
    has_form = True  # Ctrl+S applies it (the list panes act through their own keys)

    def __init__(self, screen: "SettingsScreen", **kw: Any) -> None:
        super().__init__(**kw)
        self.settings_screen = screen
        self.state: EditorState | None = None
        self._loading = False
        self._shown: Any = None  # the values as shown, to tell whether they changed
        self._problem_shown = False  # the status line holds problems without a field
        self.saving = False  # a save is under way (another waits for it to end)

    # what a section provides ---------------------------------------------------

    def fields(self) -> ComposeResult:  # pragma: no cover - overridden
        yield from ()

    def fill(self, settings: Settings, offers: Offers) -> None:  # pragma: no cover - overridden
        """Put the settings into the fields."""

    def read(self) -> tuple[Any, dict[str, str]]:  # pragma: no cover - overridden
        """The values in the fields, and the fields that cannot be read."""
        return None, {}

    def check(self, values: Any) -> list[Problem]:  # pragma: no cover - overridden
        return []

    async def save(self, values: Any) -> EditResult:  # pragma: no cover - overridden
        raise NotImplementedError

    # the common parts -------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Static("", classes="pane-hint", id=f"{self.id}-hint")
        yield from self.fields()
        yield Static("", classes="pane-status", id=f"{self.id}-status")

    @property
    def settings(self) -> Settings:
        assert self.state is not None
        return self.state.settings

    @property
    def offers(self) -> Offers:
        assert self.state is not None
        return self.state.offers

    def hint(self, text: str | Text) -> None:
        self.query_one(f"#{self.id}-hint", Static).update(text if isinstance(text, Text) else escape(text))

    def status(self, text: str | Text) -> None:
        self.query_one(f"#{self.id}-status", Static).update(text if isinstance(text, Text) else escape(text))

    def show(self, state: EditorState, *, keep_edits: bool = False) -> None:
        """Fill the pane from ``state`` (``keep_edits``: a pane with unsaved
        changes keeps them, only its facts are new)."""
        dirty = self.dirty
        self.state = state
        if keep_edits and dirty:
            self.revalidate()
            return
        self._loading = True
        try:
            self.fill(state.settings, state.offers)
        finally:
            self._loading = False
        self._shown = self.read()[0]
        self.show_problems([])

    @property
    def dirty(self) -> bool:
        """The fields hold something not saved."""
        if self.state is None or not self.has_form:
            return False
        values, errors = self.read()
        return bool(errors) or values != self._shown

    def show_problems(self, problems: list[Problem], parse_errors: dict[str, str] | None = None) -> bool:
        """Each message under its field; True when nothing blocks a save."""
        by_field: dict[str, str] = dict(parse_errors or {})
        for p in sorted(problems, key=lambda p: not p.is_error):  # an error before a warning
            by_field.setdefault(p.field, p.message if p.is_error else f"warning: {p.message}")
        shown = set()
        for w in self.query(FieldError):
            msg = by_field.get(w.field_name)
            w.set(msg)
            if msg:
                shown.add(w.field_name)
        rest = [m for f, m in by_field.items() if f not in shown]
        if rest:
            self.status(Text("\n".join(rest), style="bold red"))
        elif self._problem_shown:
            self.status("")
        self._problem_shown = bool(rest)
        return not parse_errors and not any(p.is_error for p in problems)

    def revalidate(self) -> bool:
        if self.state is None:
            return False
        values, errors = self.read()
        problems = self.check(values) if values is not None and not errors else []
        return self.show_problems(problems, errors)

    @on(Input.Changed)
    @on(Select.Changed)
    @on(Checkbox.Changed)
    @on(TextArea.Changed)
    @on(Edited)
    def _field_changed(self, event) -> None:
        if not self._loading and self.state is not None:
            self.changed()
            self.revalidate()

    def changed(self) -> None:
        """A field changed (override to enable or disable others)."""

    async def apply(self) -> None:
        """Check the fields and save them; say what applies now and what at
        the next boot."""
        if self.state is None:
            return
        values, errors = self.read()
        problems = self.check(values) if values is not None and not errors else []
        if not self.show_problems(problems, errors):
            self.status(Text("Fix the fields marked above first.", style="bold red"))
            self._problem_shown = True
            self.app.bell()
            return
        await self.run_save(lambda: self.save(values))

    async def run_save(self, job: Callable[[], Awaitable[EditResult]]) -> EditResult | None:
        """Run a save: its result in the status line and a notification, then
        the screen reads the VM again. A refusal keeps the fields as typed."""
        if self.saving:
            self.notify("A save is under way: wait for it to end.", title=f"Settings: {self.section}",
                        severity="warning", timeout=4)
            return None
        self.saving = True
        self.status(Text("Saving…", style="dim"))
        try:
            result = await job()
        except SettingsError as err:
            self.show_problems([Problem(f, m) for f, m in err.errors.items()])
            self.status(Text(err.message, style="bold red"))
            return None
        except VmtuiError as err:
            self.status(Text(err.message, style="bold red"))
            self.notify(err.message, title=f"Settings: {self.section}", severity="error", timeout=12)
            return None
        finally:
            self.saving = False
        self._shown = None  # the reload fills the pane again
        self.settings_screen.saved(self, result)
        return result

    def focus_first(self) -> None:
        for w in self.query("Input, Select, Checkbox, TextArea, DataTable"):
            if isinstance(w, Widget) and w.focusable and w.display:
                w.focus()
                return


class ListPane(SettingsPane):
    """A section that lists devices and acts on them with its table's keys
    (each action saves at once)."""

    has_form = False

    def read(self) -> tuple[Any, dict[str, str]]:
        return None, {}
