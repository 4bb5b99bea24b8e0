"""Step 3, memory and CPUs: the OS's recommendations, capped by the host."""

from __future__ import annotations


from rich.markup import escape
from textual import on
from textual.app import ComposeResult
from textual.widgets import Input, Label, Static

from ...core.sizes import fmt_bytes, parse_size
from ..forms import labelled
from .step import Step


class ResourcesStep(Step):
    title = "Memory and CPUs"
    owns = ("memory", "max_memory", "vcpus")

    def compose(self) -> ComposeResult:
        yield Label("How much memory and how many CPUs?", classes="step-question")
        yield from labelled("Memory (e.g. 2G, 4096M; plain numbers are MiB)", Input(id="memory"), "memory")
        yield from labelled("CPUs", Input(id="vcpus", type="integer"), "vcpus")
        yield Static("", id="host-limits", classes="field-hint")
        yield Static("", id="os-warnings", classes="warning")
        yield self.compose_errors()

    def load(self) -> None:
        self.query_one("#memory", Input).value = f"{self.spec.memory_mib}M"
        self.query_one("#vcpus", Input).value = str(self.spec.vcpus)
        ctx = self.ctx
        self.query_one("#host-limits", Static).update(
            f"Host: {ctx.host_cpus} CPUs, {fmt_bytes(ctx.host_memory_mib * 1024 * 1024)} memory")
        self._warn()

    @on(Input.Changed)
    def _changed(self) -> None:
        self._warn()

    def _warn(self) -> None:
        os_ = self.wizard.os_info
        text = ""
        if os_ is not None:
            try:
                mem = parse_size(self.query_one("#memory", Input).value, "M") // (1024 * 1024)
                cpus = int(self.query_one("#vcpus", Input).value or 0)
            except ValueError:
                mem, cpus = None, None
            if mem is not None:
                from ...core.create.osinfo import check_resources
                text = "\n".join(check_resources(os_, mem, cpus or 1))
        self.query_one("#os-warnings", Static).update(escape(text))

    def save(self) -> dict[str, str]:
        errors = {}
        try:
            mem = parse_size(self.query_one("#memory", Input).value, "M") // (1024 * 1024)
            if mem <= 0:
                raise ValueError("Memory must be larger than zero")
            self.spec.memory_mib = mem
            if self.spec.max_memory_mib and self.spec.max_memory_mib < mem:
                self.spec.max_memory_mib = None
        except ValueError as e:
            errors["memory"] = str(e)
        text = self.query_one("#vcpus", Input).value.strip()
        if not text.isdigit() or int(text) < 1:
            errors["vcpus"] = "CPUs must be a whole number, 1 or more"
        else:
            self.spec.vcpus = int(text)
        return errors
