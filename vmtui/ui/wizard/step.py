"""The base of the wizard's pages."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.markup import escape
from textual.containers import VerticalScroll
from textual.widgets import Static

from ...core.create.vmspec import VmSpec
from ..forms import FieldError
from .context import HostContext

if TYPE_CHECKING:
    from .screen import NewVmWizard


class Step(VerticalScroll):
    """One page of the wizard."""

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

    def save(self) -> dict[str, str]:
        """Copy the fields into the spec; return parse errors by field."""
        return {}

    def owns_field(self, name: str) -> bool:
        return any(name == p or name.startswith(p + ".") or name.startswith(p + "[") for p in self.owns)

    def show_errors(self, errors: dict[str, str]) -> list[str]:
        """Put each message under its field; return those with no field here."""
        leftovers = []
        shown = set()
        for w in self.query(FieldError):
            msg = errors.get(w.field_name)
            w.set(msg)
            if msg:
                shown.add(w.field_name)
        for name, msg in errors.items():
            if name not in shown:
                leftovers.append(f"{name}: {msg}" if name else msg)
        general = self.query("#step-errors")
        if general:
            general.first(Static).update(escape("\n".join(leftovers)))
            general.first(Static).display = bool(leftovers)
        return leftovers

    def compose_errors(self) -> Static:
        s = Static("", id="step-errors", classes="field-error")
        s.display = False
        return s
