"""Migration (``M``): move the selected VM to another connected host.

The dialog asks what virt-manager's Migrate dialog asks -- the destination,
live or offline, copy storage, persistent on the destination and undefined
on the source (its defaults), tunnelled or direct, a bandwidth limit, the
longest downtime, the migration address -- plus the destination pool for
copied disks. *Check* runs the pre-checks (core/migrate) and lists what they
found; *Migrate* checks again and, when nothing stops it, migrates with the
job's progress (data processed and left, memory dirty rate, expected
downtime); *Stop* aborts the job and the VM stays on its host.

:class:`BulkMigrateDialog` asks the same (without the per-VM checks) for a
bulk migration of the marked VMs.
"""

from __future__ import annotations

import asyncio

from rich.markup import escape
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, ProgressBar, Select, Static

from ..core.connection.rows import DomainInfo
from ..core.connection.service import LibvirtService
from ..core.errors import VmtuiError
from ..core.migrate import MigrationOptions, MigrationPlan
from ..core.migrate.job import (
    MigrationCancelled,
    MigrationProgress,
    migrate,
    plan_migration,
)
from .base import VModal
from .fleet import short_uri
from .forms import FieldError, dialog_buttons, labelled, side_by_side
from .toggles import Checkbox


def migration_fields(dests: list[LibvirtService], live: bool, *, per_vm: bool = True) -> ComposeResult:
    """The options, shared by the one-VM dialog and the bulk one."""
    options = [(f"{s.name}  ({short_uri(s.display_uri)})", s.name) for s in dests]
    yield from labelled("Destination host", Select(options, value=dests[0].name, allow_blank=False, id="dest"))
    yield from labelled("Kind", Select([("Live: it keeps running while it moves", "live"),
                                        ("Offline: move the definition of a shut-off VM", "offline")],
                                       value="live" if live else "offline", allow_blank=False, id="mode"))
    yield Checkbox("Copy storage: copy the disks that are not on shared storage", False, id="copy-storage")
    yield Checkbox("Define it on the destination (persistent)", True, id="persistent")
    yield Checkbox("Undefine it on the source", True, id="undefine")
    yield Checkbox("Tunnelled: the data goes through libvirtd (the source host connects to the destination)",
                   False, id="tunnelled")
    yield side_by_side(("Bandwidth limit (MiB/s)", Input("", placeholder="no limit", id="bandwidth"), "bandwidth"),
                       ("Max downtime (ms)", Input("", placeholder="libvirt's", id="downtime"), "downtime"))
    yield side_by_side(("Migration address", Input("", placeholder="tcp://HOST[:PORT], optional", id="address"),
                        "address"),
                       ("Pool for copied disks", Input("", placeholder="the pool of the same name", id="pool"),
                        "pool"))


def read_options(screen: ModalScreen) -> tuple[MigrationOptions | None, str]:
    """The options from the fields (None when a field is wrong: its message
    is shown under it), and the destination's name."""
    def number(field: str, what: str) -> tuple[int | None, str | None]:
        text = screen.query_one(f"#{field}", Input).value.strip()
        if not text:
            return None, None
        if not text.isdigit() or int(text) <= 0:
            return None, f"{what} must be a whole number above 0 (or empty)"
        return int(text), None

    bandwidth, bw_err = number("bandwidth", "the bandwidth")
    downtime, dt_err = number("downtime", "the downtime")
    address = screen.query_one("#address", Input).value.strip()
    addr_err = None
    if address and "://" not in address:
        addr_err = "an address like tcp://10.0.0.2 or tcp://10.0.0.2:49152"
    errors = {"bandwidth": bw_err, "downtime": dt_err, "address": addr_err}
    for err in screen.query(FieldError):
        if err.field_name in errors:
            err.set(errors[err.field_name])
    dest = str(screen.query_one("#dest", Select).value)
    if any(errors.values()):
        return None, dest
    opts = MigrationOptions(
        live=screen.query_one("#mode", Select).value == "live",
        copy_storage=screen.query_one("#copy-storage", Checkbox).value,
        persistent=screen.query_one("#persistent", Checkbox).value,
        undefine_source=screen.query_one("#undefine", Checkbox).value,
        tunnelled=screen.query_one("#tunnelled", Checkbox).value,
        bandwidth_mib=bandwidth, max_downtime_ms=downtime, migrate_uri=address or None,
        dest_pool=screen.query_one("#pool", Input).value.strip() or None)
    return opts, dest


def plan_text(plan: MigrationPlan) -> Text:
    """What the checks found, one line each: errors, warnings, notes, copies."""
    out = Text()
    for message in plan.errors:
        out.append("✗ " + message + "\n", style="bold red")
    for message in plan.warnings:
        out.append("! " + message + "\n", style="yellow")
    for note in plan.notes:
        out.append("· " + note + "\n")
    for c in plan.copied:
        out.append(f"· copies {c.target} to {c.dest} (pool {c.pool} of {plan.dest})\n")
    if plan.ok:
        how = "live" if plan.live else "offline"
        out.append(f"✓ '{plan.name}' can migrate ({how}) from {plan.source} to {plan.dest}.", style="bold green")
    return out


class MigrateScreen(VModal["MigrationResult | None"]):
    """Migrate one VM; dismissed with the result once it moved."""

    BINDINGS = [Binding("escape", "cancel", "Cancel / stop")]

    def __init__(self, service: LibvirtService, d: DomainInfo, dests: list[LibvirtService]) -> None:
        super().__init__()
        self.service = service
        self.vm = d
        self.dests = dests
        self.running = False
        self.cancel_event: asyncio.Event | None = None

    def compose(self) -> ComposeResult:
        d = self.vm
        where = self.service.name or self.service.display_uri
        with Vertical(classes="dialog", id="migrate-dialog"):
            yield Label(f"Migrate '{escape(d.name)}' ({d.state}) from {escape(where)}", classes="dialog-title")
            with VerticalScroll(id="migrate-body"):
                yield from migration_fields(self.dests, d.is_active)
                yield Static("", id="migrate-checks")
            yield ProgressBar(total=100, show_eta=False, id="migrate-progress")
            yield Static("", id="migrate-status")
            yield Horizontal(Button("Check", id="check", compact=True),
                             Button("Migrate", id="ok", variant="primary", compact=True),
                             Button("Cancel", id="cancel", compact=True), classes="dialog-buttons")

    def on_mount(self) -> None:
        self.query_one("#migrate-progress").display = False
        self.query_one("#dest", Select).focus()

    def _status(self, text: str | Text) -> None:
        self.query_one("#migrate-status", Static).update(text if isinstance(text, Text) else escape(text))

    def _show_checks(self, plan: MigrationPlan) -> None:
        self.query_one("#migrate-checks", Static).update(plan_text(plan))
        body = self.query_one("#migrate-body", VerticalScroll)
        self.call_after_refresh(body.scroll_end, animate=False)

    def _dest(self, name: str) -> LibvirtService:
        return next(s for s in self.dests if s.name == name)

    @on(Button.Pressed, "#check")
    def _check_pressed(self) -> None:
        if not self.running:
            self.check()

    @work(exclusive=True, group="migrate-check")
    async def check(self) -> MigrationPlan | None:
        opts, dest = read_options(self)
        if opts is None:
            return None
        self._status(Text("Checking…", style="yellow"))
        try:
            plan = await plan_migration(self.service, self._dest(dest), self.vm.uuid, opts)
        except VmtuiError as err:
            self._status(Text(err.message, style="bold red"))
            return None
        self._show_checks(plan)
        self._status("")
        return plan

    @on(Button.Pressed, "#ok")
    def _ok(self) -> None:
        if not self.running:
            self.run_migration()

    @work(exclusive=True, group="migrate-run")
    async def run_migration(self) -> None:
        opts, dest_name = read_options(self)
        if opts is None:
            return
        dest = self._dest(dest_name)
        self._status(Text("Checking…", style="yellow"))
        try:
            plan = await plan_migration(self.service, dest, self.vm.uuid, opts)
        except VmtuiError as err:
            self._status(Text(err.message, style="bold red"))
            self.notify(err.message, title="Migrate", severity="error", timeout=12)
            return
        self._show_checks(plan)
        if not plan.ok:
            self._status(Text(f"Nothing was started: '{plan.name}' stays on {plan.source}.", style="bold"))
            self.notify(escape(f"Cannot migrate '{plan.name}' to {plan.dest}: " + " ".join(plan.errors)),
                        title="Migrate", severity="error", timeout=12)
            return
        self.running = True
        self.cancel_event = asyncio.Event()
        bar = self.query_one("#migrate-progress", ProgressBar)
        bar.display = True
        bar.update(progress=0)
        ok = self.query_one("#ok", Button)
        ok.disabled = True
        self.query_one("#check", Button).disabled = True
        self.query_one("#cancel", Button).label = "Stop"
        self._status(f"Migrating '{plan.name}' to {plan.dest}…")

        def progress(p: MigrationProgress) -> None:
            if p.fraction is not None:
                bar.update(progress=round(p.fraction * 100))
            self._status(p.text())

        try:
            result = await migrate(self.service, dest, self.vm.uuid, opts, plan=plan, progress=progress,
                                   cancel=self.cancel_event)
        except MigrationCancelled as err:
            self._finish_failed(err, "Stopped")
            return
        except VmtuiError as err:
            self._finish_failed(err, "Migrate")
            return
        finally:
            self.running = False
        bar.update(progress=100)
        self.dismiss(result)

    def _finish_failed(self, err: VmtuiError, title: str) -> None:
        if not self.is_mounted:
            return
        self.query_one("#migrate-progress").display = False
        self.query_one("#ok", Button).disabled = False
        self.query_one("#check", Button).disabled = False
        self.query_one("#cancel", Button).label = "Close"
        self._status(Text(err.message, style="bold red"))
        self.notify(escape(err.message), title=title, severity="warning" if title == "Stopped" else "error",
                    timeout=15)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        if self.running:
            if self.cancel_event is not None and not self.cancel_event.is_set():
                self.cancel_event.set()
                self._status(Text("Stopping the migration…", style="yellow"))
            return
        self.dismiss(None)


class BulkMigrateDialog(VModal["tuple[LibvirtService, MigrationOptions] | None"]):
    """Where and how the marked VMs go (each is checked as it goes)."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, dests: list[LibvirtService]) -> None:
        super().__init__()
        self.dests = dests

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog form-dialog", id="bulk-migrate-dialog"):
            yield Label("Migrate the marked VMs", classes="dialog-title")
            with VerticalScroll(classes="form-body"):
                yield from migration_fields(self.dests, True, per_vm=False)
            yield Static("Each VM is checked before it moves; one that fails stays where it is, the others go on.",
                         classes="dim")
            yield dialog_buttons("Next", cancel="Cancel", compact=True)

    def on_mount(self) -> None:
        self.query_one("#dest", Select).focus()

    @on(Button.Pressed, "#ok")
    def _ok(self) -> None:
        opts, dest = read_options(self)
        if opts is not None:
            self.dismiss((next(s for s in self.dests if s.name == dest), opts))

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
