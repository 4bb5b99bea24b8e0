"""The optional kickstart step, for ISO, CD-ROM and network installs of
Anaconda-based OSes."""

from __future__ import annotations

from typing import Any

from rich.markup import escape
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Button, Label, Static

from ...core.create.vmspec import VmSpec
from ..forms import FieldError
from .step import Step


class KickstartStep(Step):
    """Optional, for ISO/CD-ROM/network installs of Anaconda-based OSes: the
    kickstart editor (vmtui.ui.kickstart_editor) on the spec's kickstart."""

    title = "Kickstart (optional)"
    owns = ("install.kickstart",)

    def compose(self) -> ComposeResult:
        yield Label("Install unattended with a kickstart?", classes="step-question")
        yield Static("Anaconda reads a kickstart and installs without asking. Skip this step to answer "
                     "the installer's questions on the console yourself.", classes="field-hint")
        with Horizontal(classes="row"):
            yield Button("Edit kickstart…", id="ks-edit", variant="primary")
            yield Button("No kickstart", id="ks-none")
        yield Static("", id="wizard-ks-status")
        yield FieldError("install.kickstart")
        yield self.compose_errors()

    def applies(self) -> bool:
        return kickstart_applies(self.spec, self.wizard.os_info)

    def load(self) -> None:
        from ...core.create.validation import kickstart_problems
        from ..kickstart_editor import KickstartEditorScreen, delivery_text
        ks = self.spec.install.kickstart
        if not ks:
            text = "No kickstart: the installer runs interactively."
        else:
            found = kickstart_problems(self.spec)  # cached pykickstart run + the VM's disks
            errors = sum(p.is_error for p in found)
            state = f"{errors} error(s)" if errors else ("valid" + (f", {len(found)} warning(s)" if found else ""))
            syntax = KickstartEditorScreen.version_label(ks["version"])
            text = (f"Kickstart: {len(ks['text'].splitlines())} lines, syntax {syntax}, {state}.\n"
                    + delivery_text(self.spec.install.kind))
        self.query_one("#wizard-ks-status", Static).update(escape(text))

    @on(Button.Pressed, "#ks-edit")
    def edit(self) -> None:
        from ..kickstart_editor import KickstartEditorScreen
        ks = self.spec.install.kickstart or {}

        def done(result: dict | None) -> None:
            if result is not None:
                self.spec.install.kickstart = result
                self.show_errors({})
            self.load()

        self.app.push_screen(KickstartEditorScreen(
            text=ks.get("text", ""), version=ks.get("version"), install_kind=self.spec.install.kind,
            spec=self.spec, os_info=self.wizard.os_info, title=f"VM '{self.spec.name}'"), done)

    @on(Button.Pressed, "#ks-none")
    def skip(self) -> None:
        self.spec.install.kickstart = None
        self.show_errors({})
        self.load()


def kickstart_applies(spec: VmSpec, os_info: Any) -> bool:
    """ISO, CD-ROM and network installs of an OS whose installer is Anaconda."""
    from ...core.provision.kickstart import DELIVERY_FOR_KIND
    return spec.install.kind in DELIVERY_FOR_KIND and bool(getattr(os_info, "is_anaconda", False))
