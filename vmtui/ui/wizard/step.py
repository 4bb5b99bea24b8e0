"""The base of the wizard's pages."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.markup import escape
from textual import events, on
from textual.containers import VerticalScroll
from textual.widget import Widget
from textual.widgets import Input, Label, RadioSet, Select, Static

from ...core.create.vmspec import VmSpec
from ..forms import FieldError, show_field_errors
from ..toggles import Checkbox
from .context import HostContext

if TYPE_CHECKING:
    from .screen import NewVmWizard


class Step(VerticalScroll, can_focus=False):
    """One page of the wizard (not a Tab stop itself: focusing a field
    scrolls it into view).

    A field's message (under it, :class:`FieldError`) comes on Next; once
    shown it follows the field: every change checks the step again and the
    message goes (or changes) at once. Focus -- Tab, or the first field in
    error -- scrolls the step so the field, its label and its message show.
    """

    title = ""
    owns: tuple[str, ...] = ()  # field-name prefixes whose errors belong here

    def __init__(self, wizard: "NewVmWizard", **kw) -> None:
        super().__init__(**kw)
        self.wizard = wizard

    @property
    def spec(self) -> VmSpec:
        return self.wizard.spec

    @property
    def ctx(self) -> HostContext:
        return self.wizard.ctx

    def applies(self) -> bool:
        """Whether this step is shown for the answers so far (optional steps)."""
        return True

    def load(self) -> None:
        """Show what the spec holds."""

    def refresh_context(self) -> None:
        """The host context (pools, networks, OS list) arrived or changed."""

    def volumes_changed(self) -> None:
        """Pools were read again (the volumes offered as suggestions); the
        fields keep what they hold."""

    def save(self) -> dict[str, str]:
        """Copy the fields into the spec; return parse errors by field."""
        return {}

    def owns_field(self, name: str) -> bool:
        return any(name == p or name.startswith(p + ".") or name.startswith(p + "[") for p in self.owns)

    def field_for(self, name: str) -> str:
        """The error line a message for spec field ``name`` goes under (a
        step shows some spec fields under another widget's line)."""
        return name

    def show_errors(self, errors: dict[str, str]) -> list[str]:
        """Put each message under its field; return those with no field here."""
        mapped: dict[str, str] = {}
        for name, msg in errors.items():
            mapped.setdefault(self.field_for(name), msg)
        leftovers = [f"{name}: {msg}" if name else msg for name, msg in show_field_errors(self, mapped).items()]
        general = self.query("#step-errors")
        if general:
            general.first(Static).update(escape("\n".join(leftovers)))
            general.first(Static).display = bool(leftovers)
        return leftovers

    def shown_errors(self) -> dict[str, str]:
        """The messages on screen now, by error line (``""``: the step's own line)."""
        out = {w.field_name: str(w.content) for w in self.query(FieldError) if w.display}
        general = self.query("#step-errors")
        if general and general.first(Static).display:
            out[""] = str(general.first(Static).content)
        return out

    def compose_errors(self) -> Static:
        s = Static("", id="step-errors", classes="field-error")
        s.display = False
        return s

    # --- a shown message follows its field ------------------------------------

    @on(Input.Changed)
    @on(Select.Changed)
    @on(RadioSet.Changed)
    @on(Checkbox.Changed)
    def _recheck_shown_errors(self) -> None:
        if self.wizard.is_current(self):
            self.wizard.recheck(self)

    # --- focus shows the whole field ------------------------------------------

    def on_descendant_focus(self, event: events.DescendantFocus) -> None:
        self.call_after_refresh(self.show_field, event.widget)

    def field_group(self, widget: Widget) -> list[Widget]:
        """The widget with its label above and its hint and error line below."""
        parent = widget.parent
        siblings = list(parent.children) if parent is not None else [widget]
        i = siblings.index(widget)
        group = [widget]
        if i > 0 and isinstance(siblings[i - 1], Label) and siblings[i - 1].has_class("field-label"):
            group.insert(0, siblings[i - 1])
        for nxt in siblings[i + 1:]:
            if isinstance(nxt, FieldError) or nxt.has_class("field-hint"):
                group.append(nxt)
            else:
                break
        return [w for w in group if w.display]

    def show_field(self, widget: Widget) -> None:
        """Scroll so the focused field shows with its label and messages."""
        if not widget.is_attached or not self.is_attached:
            return
        group = self.field_group(widget) or [widget]  # none shown: the field was just hidden
        for w in (group[-1], group[0], widget):
            self.scroll_to_widget(w, animate=False, immediate=True)

    def focus_first_error(self) -> None:
        """Focus the field of the first message shown (and scroll to it)."""
        for err in self.query(FieldError):
            if not err.display or err.parent is None:
                continue
            siblings = list(err.parent.children)
            before = [w for w in siblings[:siblings.index(err)] if w.focusable and w.display]
            target = before[-1] if before else None
            if target is None:  # the error line of a group: its first focusable field
                target = next((w for w in err.parent.query("*") if w.focusable and w.display), None)
            if target is not None:
                target.focus()
                self.call_after_refresh(self.show_field, target)
                self.call_after_refresh(self.scroll_to_widget, err, animate=False, immediate=True)
            else:
                self.scroll_to_widget(err, animate=False, immediate=True)
            return
