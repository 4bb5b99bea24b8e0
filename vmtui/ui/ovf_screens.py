"""OVF / OVA import and export screens (what virt-convert did).

ImportOvfScreen: path of an ``.ova``/``.ovf`` (checked on the field), read it
(digests checked, envelope parsed, shown), choose the pool and the VM name,
convert the disks to qcow2 (progress, Esc cancels), then review the VM in the
wizard's CustomizeScreen before it is defined. Cancelling or a failure
removes the imported volumes again.

ExportOvaScreen: path of the ``.ova`` to write for a shut-off VM, progress,
Esc cancels (the partial file is removed).
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from pathlib import Path

from rich.markup import escape
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Button, Input, Label, ProgressBar, Select, Static

from ..core import ovf
from ..core.connection.service import LibvirtService
from ..core.errors import VmtuiError
from ..core.host import inventory
from .base import VModal, VScreen
from .footer import KeyFooter
from .forms import dialog_buttons
from .toggles import Checkbox

log = logging.getLogger(__name__)


def check_package_path(text: str) -> str | None:
    """The message for the path field, or None when it can be read."""
    path = os.path.expanduser(text.strip())
    if not path:
        return "Give the path of an .ova file or of an .ovf file (its disks next to it)"
    if not path.lower().endswith((".ova", ".ovf")):
        return "The file name must end in .ova or .ovf"
    if not os.path.exists(path):
        return f"No such file: {path}"
    if os.path.isdir(path):
        return "This is a directory: give the .ova, or the .ovf inside it"
    from ..core.files.userfile import file_problem

    problem = file_problem(path)
    if problem:
        return f"This is {problem}"
    if not os.access(path, os.R_OK):
        return "Not readable (permission denied)"
    return None


class _ProgressMixin:
    """A long job on the screen: its progress line and bar, and Esc that
    first cancels the job and then leaves."""

    busy = False
    cancel_event: threading.Event | None = None

    def cancel_or_leave(self) -> bool:
        """Cancel the running job (True), or say there is none (False)."""
        if self.busy and self.cancel_event is not None:
            self.cancel_event.set()
            self.set_progress("Cancelling…", None)
            return True
        return False

    def set_progress(self, message: str, fraction: float | None) -> None:
        try:
            self.query_one("#ovf-progress-text", Static).update(escape(message))
            bar = self.query_one("#ovf-progress", ProgressBar)
        except Exception:  # closed meanwhile
            return
        bar.display = True
        for box in self.query("#ovf-progress-box"):
            box.display = True
        if fraction is None:
            bar.update(total=None)
        else:
            bar.update(total=100, progress=max(0.0, min(1.0, fraction)) * 100)


class ImportOvfScreen(_ProgressMixin, VScreen[str | None]):
    """Import an OVA/OVF; dismisses with the new domain's UUID (or None)."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel / back"),
        Binding("ctrl+r", "read", "Read package"),
        Binding("ctrl+s", "import_disks", "Import…"),
    ]

    def __init__(self, service: LibvirtService, path: str = "") -> None:
        super().__init__()
        self.service = service
        self.initial_path = path
        self.package: ovf.OvfPackage | None = None
        self.cancel_event: threading.Event | None = None
        self.busy = False
        self.pools: list = []
        self.networks: list[str] = []
        self.existing: set[str] = set()
        self.pool_volumes: dict[str, set[str]] = {}

    def compose(self) -> ComposeResult:
        yield Static(" Import an OVF / OVA appliance (virt-convert)", classes="screen-title")
        with VerticalScroll(id="ovf-body"):
            yield Label("Package: an .ova file, or an .ovf with its disks next to it", classes="field-label")
            yield Input(self.initial_path, id="ovf-path", placeholder="/path/to/appliance.ova")
            yield Static("", id="ovf-path-error", classes="field-error")
            yield Static("Enter or Ctrl+R reads the package (digests are checked).", id="ovf-summary",
                         classes="field-hint")
            with Horizontal(classes="row"):
                with Vertical():
                    yield Label("Target pool", classes="field-label")
                    yield Select([], id="ovf-pool", prompt="(loading pools)")
                with Vertical():
                    yield Label("VM name", classes="field-label")
                    yield Input("", id="ovf-name")
            yield Static("", id="ovf-name-error", classes="field-error")
            yield Checkbox("Start the VM after defining it", False, id="ovf-start")
        with Vertical(id="ovf-progress-box"):  # outside the scroll: always in sight
            yield Static("", id="ovf-progress-text")
            yield ProgressBar(total=100, show_eta=False, id="ovf-progress")
        with Horizontal(classes="wizard-buttons"):
            yield Button("Read", id="ovf-read", compact=True)
            yield Button("Import…", id="ovf-import", variant="primary", compact=True, disabled=True)
            yield Button("Cancel", id="ovf-cancel", compact=True)
        yield KeyFooter(compact=True)

    def on_mount(self) -> None:
        for wid in ("#ovf-path-error", "#ovf-name-error", "#ovf-progress-box"):
            self.query_one(wid).display = False
        self.query_one("#ovf-path", Input).focus()
        self.load_host()

    @work(group="ovf-host")
    async def load_host(self) -> None:
        try:
            inv = await self.service.call(lambda c: inventory.read_inventory(c, with_interfaces=False),
                                          action="read the pools and networks of", obj=self.service.display_uri)
        except VmtuiError as err:
            self.notify(err.message, title="Import", severity="error", timeout=12)
            return
        self.pools, self.networks = inv.active_pools, inv.network_names
        self.pool_volumes = {p.name: set(inv.volume_names().get(p.name, ())) for p in self.pools}
        self.existing = {d.name for d in self.service.domains.values()}
        select = self.query_one("#ovf-pool", Select)
        select.set_options([(f"{p.name} ({p.type})", p.name) for p in self.pools])
        select.prompt = "(choose a pool)" if self.pools else "(no active pool: start or define one)"
        if self.pools:
            names = [p.name for p in self.pools]
            select.value = "default" if "default" in names else names[0]
        if self.initial_path:
            self.action_read()

    # --- path -------------------------------------------------------------------

    @on(Input.Changed, "#ovf-path")
    def _path_changed(self, event: Input.Changed) -> None:
        err = self.query_one("#ovf-path-error", Static)
        if not event.value.strip():
            err.display = False
            return
        msg = check_package_path(event.value)
        err.update(escape(msg or ""))
        err.display = bool(msg)

    @on(Input.Submitted, "#ovf-path")
    @on(Button.Pressed, "#ovf-read")
    def action_read(self) -> None:
        if self.busy:
            return
        text = self.query_one("#ovf-path", Input).value
        msg = check_package_path(text)
        err = self.query_one("#ovf-path-error", Static)
        err.update(escape(msg or ""))
        err.display = bool(msg)
        if msg:
            self.query_one("#ovf-path", Input).focus()
            return
        self.read_package(os.path.abspath(os.path.expanduser(text.strip())))

    def _known_os(self):
        from ..core.create import osinfo
        try:
            db = osinfo.default_db()
        except Exception:  # no osinfo-db: the generic entries
            return None
        return lambda short: db.get(short) is not None

    @work(exclusive=True, group="ovf-read")
    async def read_package(self, path: str) -> None:
        self._close_package()
        self.busy = True
        self.cancel_event = threading.Event()
        cancel = self.cancel_event
        self.query_one("#ovf-import", Button).disabled = True
        self.set_progress(f"Reading {os.path.basename(path)} (extracting, checking digests)", 0.0)

        def read(_conn, progress, cancel):
            return ovf.open_package(
                path, cancel=cancel, known_os=self._known_os(),
                progress=lambda done, total: progress("Reading the package", done / total if total else None))

        try:
            pkg = await self.service.run_long(read, progress=self.set_progress, cancel=cancel,
                                              action="read", obj=os.path.basename(path))
        except VmtuiError as err:
            self.busy = False
            self._hide_progress()
            msg = err.message
            box = self.query_one("#ovf-path-error", Static)
            box.update(escape(msg))
            box.display = True
            self.query_one("#ovf-summary", Static).update("")
            if not isinstance(err, ovf.Cancelled):
                self.notify(msg, title="Import", severity="error", timeout=15)
            return
        except Exception as err:  # never a traceback on screen
            log.exception("reading %s failed", path)
            self.busy = False
            self._hide_progress()
            self.notify(f"Cannot read {path}: {err}", title="Import", severity="error", timeout=15)
            return
        self.busy = False
        self._hide_progress()
        self.package = pkg
        self.show_package(pkg)

    def show_package(self, pkg: ovf.OvfPackage) -> None:
        lines = [escape(line) for line in pkg.summary_lines()]
        for w in pkg.warnings:
            lines.append(f"[b]Note:[/b] {escape(w)}")
        summary = self.query_one("#ovf-summary", Static)
        summary.set_classes("ovf-summary")
        summary.update("\n".join(lines))
        name = self._unique(ovf.safe_vm_name(pkg.name))
        self.query_one("#ovf-name", Input).value = name
        self.query_one("#ovf-import", Button).disabled = False

    def _unique(self, base: str) -> str:
        name, n = base, 1
        while name in self.existing:
            n += 1
            name = f"{base}-{n}"
        return name

    def _hide_progress(self) -> None:
        self.query_one("#ovf-progress-box").display = False
        self.query_one("#ovf-progress-text", Static).update("")

    # --- import -------------------------------------------------------------------

    def _check_target(self) -> tuple[str, str] | None:
        name = self.query_one("#ovf-name", Input).value.strip()
        pool = self.query_one("#ovf-pool", Select).value
        err = self.query_one("#ovf-name-error", Static)
        msg = None
        if not name:
            msg = "Give the new VM a name"
        elif "/" in name or len(name) > 200:
            msg = "A VM name cannot contain '/' (and must be shorter)"
        elif name in self.existing:
            msg = f"A VM named '{name}' already exists"
        elif not isinstance(pool, str):
            msg = "Choose the storage pool the disks go to"
        elif self.package is not None:
            taken = self.pool_volumes.get(pool, set())
            clash = [v for v in ovf.volume_names(self.package, name) if v in taken]
            if clash:
                msg = f"Pool '{pool}' already has a volume '{clash[0]}': choose another name"
        err.update(escape(msg or ""))
        err.display = bool(msg)
        if msg:
            return None
        return name, str(pool)

    @on(Button.Pressed, "#ovf-import")
    def action_import_disks(self) -> None:
        if self.busy:
            return
        if self.package is None:
            self.notify("Read a package first (Enter on the path).", title="Import", severity="warning")
            return
        target = self._check_target()
        if target is not None:
            self.run_import(*target)

    @work(exclusive=True, group="ovf-import")
    async def run_import(self, name: str, pool: str) -> None:
        from ..core.create.installer import create_vm, is_local_uri
        from .wizard import CreateProgress, CustomizeScreen, load_context

        pkg = self.package
        assert pkg is not None
        self.busy = True
        self.cancel_event = threading.Event()
        cancel = self.cancel_event
        self.query_one("#ovf-import", Button).disabled = True
        names = ovf.volume_names(pkg, name, self.pool_volumes.get(pool, set()))
        local = is_local_uri(self.service.uri)
        self.set_progress("Converting the disks to qcow2", 0.0)
        vols: list[ovf.ImportedVolume] = []
        try:
            vols = await self.service.run_long(
                lambda c, progress, cancel: ovf.import_disks(c, pkg, pool, names, local=local, progress=progress,
                                                             cancel=cancel),
                progress=self.set_progress, cancel=cancel, action="import the disks of", obj=f"'{pkg.name}'")
        except VmtuiError as err:
            self._import_failed(err.message if not isinstance(err, ovf.Cancelled)
                                else "Import cancelled: nothing was kept.", cancelled=isinstance(err, ovf.Cancelled))
            return
        except Exception as err:  # never a traceback on screen
            log.exception("import failed")
            self._import_failed(f"Importing '{pkg.name}' failed: {err}")
            return
        self.set_progress("Disks imported: review the VM", 1.0)
        try:
            ctx = await load_context(self.service)
            virt = "kvm" if getattr(ctx.caps, "kvm_available", False) else "qemu"
            spec = ovf.to_vmspec(pkg, vols, name=name, host_networks=[n.name for n in ctx.networks],
                                 virt_type=virt, start=self.query_one("#ovf-start", Checkbox).value)
            if ctx.osdb is not None and ctx.osdb.get(spec.os) is None:
                spec.os = "generic"
        except Exception as err:
            log.exception("preparing the imported VM failed")
            await self._rollback(vols)
            self._import_failed(f"Cannot prepare the VM: {err}")
            return
        label = "Define and start" if spec.start_install else "Define VM"
        result = await self.app.push_screen_wait(CustomizeScreen(self.service, spec, ctx, begin_label=label))
        if result is None:
            await self._rollback(vols)
            self._import_failed("Not defined: the imported disks were removed.", cancelled=True)
            return
        progress = CreateProgress(result.name)
        await self.app.push_screen(progress)
        loop = asyncio.get_running_loop()
        try:
            uuid = await create_vm(self.service, result, osdb=ctx.osdb,
                                   progress=lambda m, f=None: loop.call_soon_threadsafe(progress.update_progress, m, f),
                                   caps=ctx.caps)
        except Exception as err:
            progress.dismiss()
            await self._rollback(vols)
            msg = err.message if isinstance(err, VmtuiError) else str(err)
            self._import_failed(msg + "\nThe imported disks were removed.")
            return
        progress.dismiss()
        self.busy = False
        self._close_package()
        started = " and started it" if result.start_install else ""
        self.notify(f"Imported '{result.name}' from {os.path.basename(pkg.source)}{started}", title="Import",
                    timeout=8)
        self.dismiss(uuid)

    async def _rollback(self, vols: list[ovf.ImportedVolume]) -> None:
        try:
            left = await self.service.call(lambda c: ovf.remove_volumes(c, vols), action="remove the imported disks",
                                           obj="", timeout=300)
        except VmtuiError as err:
            left = [err.message]
        if left:
            self.notify("Could not remove: " + "; ".join(left), title="Import", severity="warning", timeout=15)
        for v in vols:
            self.pool_volumes.get(v.pool, set()).discard(v.name)

    def _import_failed(self, message: str, cancelled: bool = False) -> None:
        self.busy = False
        self._hide_progress()
        self.query_one("#ovf-import", Button).disabled = self.package is None
        self.notify(message, title="Import", severity="warning" if cancelled else "error", timeout=15)

    # --- leaving -------------------------------------------------------------------

    def _close_package(self) -> None:
        if self.package is not None:
            self.package.close()
            self.package = None

    @on(Button.Pressed, "#ovf-cancel")
    def action_cancel(self) -> None:
        if not self.cancel_or_leave():
            self._close_package()
            self.dismiss(None)


class ExportOvaScreen(_ProgressMixin, VModal[str | None]):
    """Export a shut-off VM to an OVA; dismisses with the path written (or None)."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, service: LibvirtService, domain_name: str, default_dir: str | None = None, *,
                 uuid: str | None = None) -> None:
        super().__init__()
        self.service = service
        self.domain_name = domain_name
        self.uuid = uuid  # the VM chosen on the list (by UUID: a rename or a namesake cannot swap it)
        self.default_dir = default_dir or os.getcwd()
        self.cancel_event: threading.Event | None = None
        self.busy = False

    def compose(self) -> ComposeResult:
        default = os.path.join(self.default_dir, f"{self.domain_name}.ova")
        with Vertical(classes="dialog", id="export-dialog"):
            yield Label(f"Export '{escape(self.domain_name)}' to OVA", classes="dialog-title")
            yield Static("OVF 1.0 envelope, stream-optimized VMDK disks, SHA256 manifest.", classes="field-hint")
            yield Label("Write to (.ova, on this machine)", classes="field-label")
            yield Input(default, id="ova-path")
            yield Static("", id="ova-path-error", classes="field-error")
            yield Checkbox("Replace the file if it exists", False, id="ova-overwrite")
            yield Static("", id="ovf-progress-text")
            yield ProgressBar(total=100, show_eta=False, id="ovf-progress")
            yield dialog_buttons("Export", "ova-export", cancel_id="ova-cancel")

    def on_mount(self) -> None:
        self.query_one("#ova-path-error").display = False
        self.query_one("#ovf-progress").display = False
        self.query_one("#ova-path", Input).focus()

    def check_path(self) -> str | None:
        path = os.path.expanduser(self.query_one("#ova-path", Input).value.strip())
        if not path:
            return "Give the path of the .ova file to write"
        if not path.lower().endswith(".ova"):
            return "The file name must end in .ova"
        if os.path.isdir(path):
            return "This is a directory: add a file name ending in .ova"
        parent = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(parent):
            return f"The directory {parent} does not exist"
        if not os.access(parent, os.W_OK):
            return f"Cannot write in {parent} (permission denied)"
        if os.path.exists(path) and not self.query_one("#ova-overwrite", Checkbox).value:
            return "The file exists: tick 'Replace' or give another name"
        return None

    @on(Input.Changed, "#ova-path")
    @on(Checkbox.Changed, "#ova-overwrite")
    def _changed(self) -> str | None:
        msg = self.check_path()
        box = self.query_one("#ova-path-error", Static)
        box.update(escape(msg or ""))
        box.display = bool(msg)
        return msg

    @on(Input.Submitted, "#ova-path")
    @on(Button.Pressed, "#ova-export")
    def _export(self) -> None:
        if self.busy:
            return
        if self._changed() is None:
            path = os.path.abspath(os.path.expanduser(self.query_one("#ova-path", Input).value.strip()))
            self.run_export(path, self.query_one("#ova-overwrite", Checkbox).value)

    @work(exclusive=True, group="ova-export")
    async def run_export(self, path: str, overwrite: bool) -> None:
        from ..core.create.installer import is_local_uri
        self.busy = True
        self.cancel_event = threading.Event()
        cancel = self.cancel_event
        self.query_one("#ova-export", Button).disabled = True
        local = is_local_uri(self.service.uri)
        self.set_progress("Starting the export", 0.0)
        try:
            # checksums and the tar file are written without progress reports:
            # a longer stall limit than the default
            out = await self.service.run_long(
                lambda c, progress, cancel: ovf.export_ova(c, self.domain_name, path, local=local, progress=progress,
                                                           cancel=cancel, overwrite=overwrite, uuid=self.uuid),
                progress=self.set_progress, cancel=cancel, action="export", obj=f"domain '{self.domain_name}'",
                stall=3600)
        except VmtuiError as err:
            self.busy = False
            self.query_one("#ova-export", Button).disabled = False
            self.query_one("#ovf-progress", ProgressBar).display = False
            self.query_one("#ovf-progress-text", Static).update("")
            cancelled = isinstance(err, ovf.Cancelled)
            self.notify("Export cancelled: no file was written." if cancelled else err.message, title="Export",
                        severity="warning" if cancelled else "error", timeout=15)
            return
        except Exception as err:  # never a traceback on screen
            log.exception("export failed")
            self.busy = False
            self.query_one("#ova-export", Button).disabled = False
            self.notify(f"Exporting '{self.domain_name}' failed: {err}", title="Export", severity="error", timeout=15)
            return
        self.busy = False
        size = Path(out).stat().st_size
        from ..core.sizes import fmt_bytes
        self.notify(f"Exported '{self.domain_name}' to {out} ({fmt_bytes(size)})", title="Export", timeout=8)
        self.dismiss(out)

    @on(Button.Pressed, "#ova-cancel")
    def action_cancel(self) -> None:
        if not self.cancel_or_leave():
            self.dismiss(None)
