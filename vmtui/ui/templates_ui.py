"""Templates and clones: the clone screen (virt-clone), "prepare as
template" (virt-sysprep or a first-boot cloud-init config) and the app
actions behind the list keys m, T, u and l (:class:`TemplateActions`)."""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass

from rich.markup import escape
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import (
    Button,
    Checkbox,
    Input,
    Label,
    Log,
    ProgressBar,
    RadioButton,
    RadioSet,
    Select,
    Static,
)
from textual.worker import WorkerCancelled

from ..core import storage
from ..core.clones import clone, templates
from ..core.connection.rows import DomainInfo
from ..core.errors import VmtuiError
from ..core.sizes import fmt_bytes
from .base import VScreen
from .dialogs import ConfirmDialog
from .footer import KeyFooter
from .forms import FieldError, dialog_buttons
from .template_actions import TemplateActions, template_action_enabled  # noqa: F401 (their old home)

log = logging.getLogger(__name__)

SAME_POOL = "__same__"


@dataclass
class CloneOutcome:
    """What the clone screen made."""
    result: clone.CloneResult
    plan: clone.ClonePlan
    start: bool = False

    @property
    def pool(self) -> str | None:
        """Where the new VM's first new volume is (its cloud-init seed goes there too)."""
        for d in self.plan.disks:
            if d.copies and d.new_pool:
                return d.new_pool
        return self.plan.pool


def describe_disk(d: clone.DiskClone) -> str:
    """One line of the per-disk plan."""
    src = (d.source or "(empty)").rstrip("/").rsplit("/", 1)[-1]
    line = f"{d.target or '?':5} {src}"
    if d.action in ("copy", "link"):
        size = fmt_bytes(d.capacity)
        if d.action == "copy":
            line += f"  {size}, {fmt_bytes(d.allocation)} to copy → {d.new_pool}/{d.new_name}"
        else:
            line += f"  {size} → overlay {d.new_pool}/{d.new_name}"
    elif d.action == "share":
        line += f"  — {d.why}"
    else:
        line += f"  — {d.why or 'empty'}"
    return line


class CloneScreen(VScreen["CloneOutcome | None"]):
    """Clone a shut-off VM or a template: name, full/linked, pool, the plan
    per disk, progress. ``for_template`` makes it the first step of "new VM
    from template" (linked by default, with a start-after checkbox)."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel"),
        Binding("ctrl+s", "clone", "Clone"),
        Binding("f5", "replan", "Re-plan", show=False),
    ]

    def __init__(self, service, domain: DomainInfo, *, for_template: bool = False) -> None:
        super().__init__()
        self.service = service
        self.domain = domain
        self.for_template = for_template
        self.plan: clone.ClonePlan | None = None
        self.busy = False

    def compose(self) -> ComposeResult:
        d = self.domain
        title = (f"New VM from template '{escape(d.name)}'" if self.for_template
                 else f"Clone '{escape(d.name)}'" + (" (template)" if d.template else ""))
        with VerticalScroll(id="clone-body"):
            yield Label(title, classes="dialog-title")
            yield Label("Name of the new VM", classes="field-label")
            yield Input(id="clone-name", placeholder="new VM name")
            yield FieldError("name")
            with Horizontal(classes="row"):
                with Vertical():
                    yield Label("Disks", classes="field-label")
                    with RadioSet(id="clone-mode"):
                        linked_default = self.for_template or d.template
                        yield RadioButton("Full copy", value=not linked_default, id="mode-full")
                        yield RadioButton("Linked (qcow2 overlay)", value=linked_default, id="mode-linked")
                with Vertical():
                    yield Label("Pool for the new volumes", classes="field-label")
                    yield Select([], prompt="pool", allow_blank=True, id="clone-pool")
            yield FieldError("mode")
            yield FieldError("pool")
            yield Label("Plan per disk", classes="field-label")
            yield Static("planning…", id="clone-disks")
            yield FieldError("disks")
            yield Static("", id="clone-warnings", classes="warning")
            if self.for_template:
                yield Checkbox("Start it when done", value=True, id="clone-start", classes="compact")
                yield Static("Next: the cloud-init step (hostname, users, the template's first-boot "
                             "config), then it starts.", classes="field-hint")
            yield Static("", id="clone-progress-text")
            yield ProgressBar(total=100, show_eta=False, id="clone-progress")
            yield dialog_buttons("Create" if self.for_template else "Clone", "clone-go", cancel_id="clone-cancel")
        yield KeyFooter(compact=True)

    def on_mount(self) -> None:
        self.query_one("#clone-progress", ProgressBar).display = False
        self.query_one("#clone-name", Input).focus()
        self._load()

    @work(group="clone-load", exclusive=True)
    async def _load(self) -> None:
        name = self.domain.name

        def load(conn):
            pools = [p.name for p in storage.list_pools(conn) if p.active]
            return pools, clone.suggest_name(conn, name)

        try:
            pools, suggestion = await self.service.call(load, action="prepare the clone of",
                                                        obj=f"domain '{name}'")
        except VmtuiError as err:
            self.query_one("#clone-disks", Static).update(escape(err.message))
            return
        sel = self.query_one("#clone-pool", Select)
        sel.set_options([("same pool as each disk", SAME_POOL)] + [(p, p) for p in pools])
        sel.value = SAME_POOL
        box = self.query_one("#clone-name", Input)
        if not box.value:
            box.value = suggestion  # Input.Changed re-plans

    # --- inputs ------------------------------------------------------------

    @property
    def mode(self) -> str:
        return "linked" if self.query_one("#mode-linked", RadioButton).value else "full"

    @property
    def pool(self) -> str | None:
        value = self.query_one("#clone-pool", Select).value
        return None if value in (SAME_POOL, Select.BLANK, None) else str(value)

    @on(Input.Changed, "#clone-name")
    @on(RadioSet.Changed, "#clone-mode")
    @on(Select.Changed, "#clone-pool")
    def _inputs_changed(self) -> None:
        if not self.busy:
            self.replan()

    def action_replan(self) -> None:
        self.replan()

    def _errors(self, field: str | None = None, message: str = "") -> None:
        for w in self.query(FieldError):
            w.set(message if w.field_name == field else None)

    @work(group="clone-plan", exclusive=True)
    async def replan(self) -> clone.ClonePlan | None:
        name = self.query_one("#clone-name", Input).value
        mode, pool = self.mode, self.pool
        problem = clone.validate_name(name)
        if problem:
            self.plan = None
            self._errors("name", problem)
            return None
        await asyncio.sleep(0.15)  # typing: plan once the keys settle
        try:
            plan = await self.service.call(
                lambda c: clone.plan_clone(c, self.domain.uuid, name, mode, pool),
                action="plan the clone of", obj=f"domain '{self.domain.name}'")
        except clone.CloneError as err:
            self.plan = None
            self._errors(err.field or "disks", err.cause)
            return None
        except VmtuiError as err:
            self.plan = None
            self._errors("disks", err.message)
            return None
        self.plan = plan
        self._errors()
        self._show_plan(plan)
        return plan

    def _show_plan(self, plan: clone.ClonePlan) -> None:
        lines = [describe_disk(d) for d in plan.disks] or ["(no disks)"]
        if plan.nvram_src:
            lines.append(f"nvram {os.path.basename(plan.nvram_src)} → {os.path.basename(plan.nvram_new or '')}")
        if plan.bytes_to_copy:
            lines.append(f"{fmt_bytes(plan.bytes_to_copy)} to copy in all")
        self.query_one("#clone-disks", Static).update(escape("\n".join(lines)))
        warn = list(plan.warnings)
        if plan.mode == "linked" and not any(d.action == "link" for d in plan.disks):
            warn.append("No writable disk: nothing to link.")
        self.query_one("#clone-warnings", Static).update(escape("\n".join(warn)))

    # --- doing it ------------------------------------------------------------

    def _show_progress(self, what: str, done: int, total: int) -> None:
        if not self.is_mounted:
            return
        frac = done / total if total else 1.0
        self.query_one("#clone-progress-text", Static).update(
            escape(f"{what}: {fmt_bytes(done)} of {fmt_bytes(total)}"))
        self.query_one("#clone-progress", ProgressBar).update(total=100, progress=min(100.0, frac * 100))

    @on(Button.Pressed, "#clone-go")
    def _go(self) -> None:
        self.action_clone()

    def action_clone(self) -> None:
        if not self.busy:
            self._clone()

    @work(group="clone-run", exclusive=True)
    async def _clone(self) -> None:
        self.busy = True  # no re-planning from here on
        try:
            plan = await self.replan().wait()
        except WorkerCancelled:
            plan = None
        if plan is None:
            self.busy = False
            self.notify("Fix the marked field first.", severity="warning", timeout=4)
            return
        for w in self.query("Input, RadioSet, Select, #clone-go"):
            w.disabled = True
        self.query_one("#clone-progress", ProgressBar).display = True
        self.query_one("#clone-progress-text", Static).update("starting…")
        try:
            result = await self.service.run_long(lambda c, progress, cancel: clone.run_clone(c, plan, progress),
                                                 progress=self._show_progress, action="clone",
                                                 obj=f"domain '{self.domain.name}'")
        except clone.CloneError as err:
            self._failed(err.field or "disks", err.cause)
            return
        except VmtuiError as err:
            self._failed("disks", err.message)
            return
        start = False
        if self.for_template:
            start = self.query_one("#clone-start", Checkbox).value
        self.dismiss(CloneOutcome(result, plan, start))

    def _failed(self, field: str, message: str) -> None:
        self.busy = False
        for w in self.query("Input, RadioSet, Select, #clone-go"):
            w.disabled = False
        self.query_one("#clone-progress", ProgressBar).display = False
        self.query_one("#clone-progress-text", Static).update(
            escape("Nothing was left behind: the partial copies were removed."))
        self._errors(field, message)

    @on(Button.Pressed, "#clone-cancel")
    def action_cancel(self) -> None:
        if self.busy:
            self.notify("The clone is under way; it cleans up after itself if it fails.",
                        severity="warning", timeout=4)
            return
        self.dismiss(None)


class NewFromTemplateScreen(CloneScreen):
    """The clone screen as the first step of "new VM from template"."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel"),
        Binding("ctrl+s", "clone", "Create"),
        Binding("f5", "replan", "Re-plan", show=False),
    ]

    def __init__(self, service, domain: DomainInfo) -> None:
        super().__init__(service, domain, for_template=True)


# ---------------------------------------------------------------------------
# prepare as template
# ---------------------------------------------------------------------------


class PrepareTemplateScreen(VScreen["templates.TemplateMeta | None"]):
    """The checklist of what clones must not share, and the way to reset it
    (virt-sysprep here, or a first-boot cloud-init config)."""

    BINDINGS = [
        Binding("escape", "close", "Close"),
        Binding("ctrl+s", "prepare", "Prepare"),
    ]

    def __init__(self, service, domain: DomainInfo, *, sysprep: str | None | bool = None) -> None:
        super().__init__()
        self.service = service
        self.domain = domain
        # None: look for virt-sysprep; False: pretend there is none (tests)
        found = templates.virt_sysprep_path() if sysprep is None else (sysprep or None)
        self.sysprep = found
        self.method = templates.choose_method(service.display_uri, found or "")
        self.result: templates.TemplateMeta | None = None
        self.running = False

    def compose(self) -> ComposeResult:
        d = self.domain
        with VerticalScroll(id="prepare-body"):
            yield Label(f"Prepare '{escape(d.name)}' as a template", classes="dialog-title")
            yield Static("Clones of a template must not share these. Tick what to reset:")
            for key, label, what in templates.SYSPREP_ITEMS:
                yield Checkbox(label, value=True, id=f"item-{key}", classes="compact")
                yield Static(escape(what), classes="item-note")
            if self.method == "virt-sysprep":
                how = (f"Method: virt-sysprep ({self.sysprep}) runs now on the VM's disk images "
                       "on this host; its output shows below.")
            else:
                why = ("the host is remote" if not templates.is_local_uri(self.service.display_uri)
                       else "virt-sysprep is not installed on this host")
                how = (f"Method: first-boot cloud-init config ({why}). The disks are not changed; "
                       "the config is stored in the template's metadata and every VM made from it "
                       "with 'u' gets it in its cloud-init seed, so each regenerates these at first boot.")
            yield Static(escape(how), id="prepare-method")
            yield Checkbox("Mark it as a template when done", value=True, id="prepare-mark", classes="compact")
            yield Log(id="prepare-log", max_lines=2000)
            yield Static("", id="prepare-result")
            yield dialog_buttons("Prepare", "prepare-go", cancel="Close", cancel_id="prepare-close")
        yield KeyFooter(compact=True)

    def on_mount(self) -> None:
        self.query_one("#prepare-log", Log).display = self.method == "virt-sysprep"
        self.query_one(Checkbox).focus()

    @property
    def items(self) -> list[str]:
        return [key for key, _, _ in templates.SYSPREP_ITEMS
                if self.query_one(f"#item-{key}", Checkbox).value]

    @on(Button.Pressed, "#prepare-go")
    def _go(self) -> None:
        self.action_prepare()

    def action_prepare(self) -> None:
        if self.running:
            return
        if not self.items:
            self._say("Tick at least one item.", error=True)
            return
        self._prepare()

    def _say(self, text: str, error: bool = False) -> None:
        w = self.query_one("#prepare-result", Static)
        w.update(escape(text))
        w.set_class(error, "field-error")

    @work(group="prepare", exclusive=True)
    async def _prepare(self) -> None:
        items = self.items
        mark = self.query_one("#prepare-mark", Checkbox).value
        uuid, name = self.domain.uuid, self.domain.name
        obj = f"domain '{name}'"
        self.running = True
        self.query_one("#prepare-go", Button).disabled = True
        try:
            if self.method == "virt-sysprep":
                ok = await self._run_sysprep(items)
                if not ok:
                    return
                meta = await self.service.call(
                    lambda c: templates.record_preparation(c, uuid, "virt-sysprep", items, None, mark=mark),
                    action="record the preparation of", obj=obj)
                self._say(f"Done with virt-sysprep: {', '.join(items)} reset on the disk images."
                          + (" Marked as a template." if mark else ""))
            else:
                config = templates.firstboot_config(items)
                meta = await self.service.call(
                    lambda c: templates.record_preparation(c, uuid, "firstboot", items, config, mark=mark),
                    action="store the first-boot config of", obj=obj)
                self._say("No disk was changed: a first-boot cloud-init config that resets "
                          f"{', '.join(items)} is stored in the template's metadata; VMs made from it "
                          "with 'u' get it in their seed." + (" Marked as a template." if mark else ""))
            self.result = meta
            await self.service.refresh_domain(uuid)
        except VmtuiError as err:
            self._say(err.message, error=True)
        finally:
            self.running = False
            if self.is_mounted:
                self.query_one("#prepare-go", Button).disabled = False

    async def _run_sysprep(self, items: list[str]) -> bool:
        uuid = self.domain.uuid
        logw = self.query_one("#prepare-log", Log)

        try:
            paths = await self.service.call(lambda c: templates.sysprep_disks(c, uuid), action="read the disks of",
                                            obj=f"domain '{self.domain.name}'")
        except VmtuiError as err:
            self._say(err.message, error=True)
            return False
        if not paths:
            self._say("This VM has no writable disk image to prepare.", error=True)
            return False
        cmd = templates.sysprep_command(paths, items, sysprep=self.sysprep or "virt-sysprep")
        logw.write_line("$ " + " ".join(cmd))
        try:
            proc = await asyncio.create_subprocess_exec(
                *cmd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
                stdin=asyncio.subprocess.DEVNULL)
        except OSError as err:
            self._say(f"Cannot run {cmd[0]}: {err}", error=True)
            return False
        assert proc.stdout is not None
        while True:
            line = await proc.stdout.readline()
            if not line:
                break
            logw.write_line(line.decode("utf-8", "replace").rstrip("\n"))
        code = await proc.wait()
        if code != 0:
            self._say(f"virt-sysprep failed (exit status {code}); see its output above. "
                      "Nothing was recorded.", error=True)
            return False
        return True

    @on(Button.Pressed, "#prepare-close")
    def action_close(self) -> None:
        if self.running:
            self.notify("Still preparing…", severity="warning", timeout=3)
            return
        self.dismiss(self.result)


# ---------------------------------------------------------------------------
# a linked clone's source: warn before it changes
# ---------------------------------------------------------------------------


def clones_text(clones: list[str], most: int = 4) -> str:
    """``pool/a, pool/b and 3 more``."""
    shown = ", ".join(clones[:most])
    return shown + (f" and {len(clones) - most} more" if len(clones) > most else "")


async def linked_clones(service, uuid: str, name: str, target: str | None = None) -> list[str]:
    """The linked clones' overlays backed by the VM's disks (a VmtuiError
    when they cannot be checked)."""
    return await service.call(lambda c: clone.linked_clones_of(c, uuid, target), action="check the disks of",
                              obj=f"domain '{name}'")


async def confirm_start(app, service, uuid: str, name: str, *, template: bool = False) -> bool:
    """Before starting a template, or a VM whose disks are the backing files
    of linked clones, ask (naming the VM and the clones). True: go ahead.
    Must run in a worker (it waits for the answer)."""
    try:
        clones = await linked_clones(service, uuid, name)
    except VmtuiError as err:
        app.notify(err.message, title="Start", severity="error", timeout=12)
        return False
    if not clones and not template:
        return True
    if template:
        title = "Start template"
        question = (f"'{escape(name)}' is a template. Starting it changes its disks, which breaks linked "
                    "clones made from it" + (f" ({escape(clones_text(clones))})" if clones else "")
                    + " and undoes its preparation. Start it anyway?")
    else:
        title = "Start a linked clone's source"
        question = (f"The disks of '{escape(name)}' are the backing files of linked clones "
                    f"({escape(clones_text(clones))}). Running it writes to them, which breaks those clones. "
                    "Start it anyway?")
    return bool(await app.push_screen_wait(ConfirmDialog(title, question, yes="Start")))
