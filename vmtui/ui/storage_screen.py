"""The storage screen: pools and their volumes (virt-manager's Storage tab,
virsh pool-* and vol-*).

Everything libvirt is done through ``service.call`` (off the event loop);
pool lifecycle events from the service reload the screen.
"""

from __future__ import annotations

import os
import threading

from rich.markup import escape
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.widgets import DataTable, Input, ProgressBar, Static

from ..core import storage
from ..core.files import userfile
from ..core.errors import VmtuiError
from ..core.connection.service import LibvirtService
from ..core.sizes import fmt_bytes
from .footer import KeyFooter
from .forms import FormDialog, HostObjectScreen, KeyHelp, bindings, labelled
from .new_volume import NewVolumeFields


def usage_bar(fraction: float, width: int = 8) -> str:
    """``[#####-----]  50%``: plain characters, so it reads the same with NO_COLOR."""
    fraction = max(0.0, min(1.0, fraction))
    filled = round(fraction * width)
    return f"[{'#' * filled}{'-' * (width - filled)}] {fraction * 100:3.0f}%"


# (key, action, footer label, virsh equivalent / description, shown in footer)
STORAGE_KEYS: list[tuple[str, str, str, str, bool]] = [
    ("s", "pool_start", "Start", "Start the selected pool (virsh pool-start)", True),
    ("x", "pool_stop", "Stop", "Stop the selected pool; volumes stay on disk (virsh pool-destroy)", True),
    ("r", "pool_refresh", "Refresh", "Rescan the pool for files copied in (virsh pool-refresh)", False),
    ("a", "pool_autostart", "Autostart", "Toggle start at host boot (virsh pool-autostart)", False),
    ("P", "pool_define", "New pool", "Define a directory pool: name, path (virsh pool-define-as --type dir, "
                                     "pool-build, pool-start)", True),
    ("X", "pool_delete", "Del pool", "Delete an empty pool and its directory (virsh pool-delete, pool-undefine)",
     False),
    ("n", "vol_create", "New vol", "Create a volume, thin or thick (virsh vol-create-as)", True),
    ("d", "vol_delete", "Del vol", "Delete the selected volume, never one in use (virsh vol-delete)", True),
    ("u", "vol_upload", "Upload", "Upload a local file (an ISO) into a new volume (virsh vol-upload)", True),
    ("w", "vol_download", "Download", "Download the selected volume to a local file (virsh vol-download)", False),
    ("tab", "focus_next", "Pools/volumes", "Switch between the pools and the volumes", False),
    ("question_mark", "storage_help", "Help", "Show the keys of this screen", True),
    ("escape", "close", "Back", "Back to the domain list", False),
]


class TransferProgress:
    """Progress of a transfer (``service.run_long`` hands it each report on
    the loop), shown by a UI timer; ``cancel`` stops the transfer."""

    def __init__(self) -> None:
        self.done = 0
        self.total = 0
        self.cancel = threading.Event()

    def __call__(self, done: int, total: int) -> None:
        self.done, self.total = done, total


class ProgressForm(FormDialog):
    """A form whose OK starts a long job with a progress bar; Cancel stops it."""

    with_progress = True

    def start_progress(self, what: str) -> TransferProgress:
        self.progress = TransferProgress()
        self.what = what
        self.query_one("#form-progress").display = True
        for inp in self.query(Input):
            inp.disabled = True
        self._timer = self.set_interval(0.2, self._tick)
        return self.progress

    def _tick(self) -> None:
        if not self.is_mounted:
            return
        p = self.progress
        bar = self.query_one("#form-progress", ProgressBar)
        if p.total:
            bar.update(total=p.total, progress=p.done)
            self.status(f"{self.what}: {fmt_bytes(p.done)} of {fmt_bytes(p.total)}")

    def stop_progress(self) -> None:
        timer = getattr(self, "_timer", None)
        if timer is not None:
            timer.stop()
            self._tick()
        if self.is_mounted:
            for inp in self.query(Input):
                inp.disabled = False

    def action_cancel(self) -> None:
        if self.busy and getattr(self, "progress", None) is not None:
            self.progress.cancel.set()
            self.status("Cancelling…")
            return
        self.dismiss(None)


class DefinePoolDialog(FormDialog):
    title_text = "New directory pool (virsh pool-define-as NAME dir --target PATH)"
    ok_label = "Define"

    def __init__(self, service: LibvirtService, existing: list[storage.PoolInfo]) -> None:
        super().__init__(service)
        self.existing = existing

    def fields(self) -> ComposeResult:
        yield from labelled("Name", Input(placeholder="isos", compact=True, id="name"), "name")
        path = Input(placeholder="/var/lib/libvirt/images/<name>", compact=True, id="path")
        yield from labelled("Directory", path, "path",
                            "libvirt creates it (pool-build); the pool is started and set to autostart")

    def changed(self) -> None:
        name = self.field("name").strip()
        self.query_one("#path", Input).placeholder = f"/var/lib/libvirt/images/{name or '<name>'}"

    def check(self) -> tuple[str, str] | None:
        name = self.field("name")
        path = self.field("path").strip() or f"/var/lib/libvirt/images/{name.strip()}"
        errors = {"name": storage.validate_pool_name(name), "path": storage.validate_pool_path(path)}
        if not errors["name"] and any(p.name == name for p in self.existing):
            errors["name"] = f"A pool named '{name}' already exists"
        norm = os.path.normpath(path)
        for p in self.existing:
            if not errors["path"] and p.path and os.path.normpath(p.path) == norm:
                errors["path"] = f"Pool '{p.name}' already uses {norm}"
        return (name, norm) if self.set_errors(errors) else None

    async def submit(self):
        got = self.check()
        if got is None:
            return None
        name, path = got
        self.status(f"Defining pool '{name}'…")
        info = await self.service.call(lambda c: storage.define_dir_pool(c, name, path),
                                       action="define pool", obj=f"'{name}'")
        return info


class CreateVolumeDialog(ProgressForm):
    ok_label = "Create"

    def __init__(self, service: LibvirtService, pool: storage.PoolInfo) -> None:
        super().__init__(service, f"New volume in pool '{pool.name}' (virsh vol-create-as)")
        self.pool = pool

    def fields(self) -> ComposeResult:
        yield NewVolumeFields(fixed_pool=self.pool, size="10G", name_placeholder="disk1.qcow2", compact=True)

    def changed(self) -> None:
        volume = self.query_one(NewVolumeFields)
        if "." not in volume.name_input.value:
            volume.name_input.placeholder = f"disk1.{volume.fmt}"

    async def submit(self):
        new, errors = self.query_one(NewVolumeFields).read()
        if new.size is not None:
            plan = storage.plan_new_disk(self.pool, new.size, new.provisioning, new.fmt)
            if plan.error:
                errors["size"] = plan.error
        errors["name"] = storage.validate_volume_name(new.name)
        if not self.set_errors(errors):
            return None
        name, size, fmt, prov = new.name, new.size, new.fmt, new.provisioning
        progress = self.start_progress(f"Allocating '{name}'") if prov == "thick" else None
        pool = self.pool.name
        try:
            info = await self.service.run_long(
                lambda c, progress, cancel: storage.create_volume(c, pool, name, size, fmt, prov,
                                                                  progress=progress if prov == "thick" else None),
                progress=progress, cancel=progress.cancel if progress else None,
                action="create volume", obj=f"'{name}' in pool '{pool}'")
        finally:
            if progress is not None:
                self.stop_progress()
        return info


class UploadDialog(ProgressForm):
    ok_label = "Upload"

    def __init__(self, service: LibvirtService, pool: storage.PoolInfo, local_path: str = "") -> None:
        super().__init__(service, f"Upload a file to pool '{pool.name}' (virsh vol-upload)")
        self.pool = pool
        self.local_path = local_path

    def fields(self) -> ComposeResult:
        yield from labelled("Local file", Input(self.local_path, placeholder="/path/to/installer.iso",
                                                compact=True, id="local"), "local",
                            "Streamed over the libvirt connection: works on remote hosts")
        yield from labelled("Volume name", Input(compact=True, id="name"), "name")

    def changed(self) -> None:
        base = os.path.basename(self.field("local").strip())
        self.query_one("#name", Input).placeholder = base or "name of the new volume"

    async def submit(self):
        local = os.path.expanduser(self.field("local").strip())
        name = self.field("name").strip() or os.path.basename(local)
        errors: dict[str, str | None] = {}
        if not local:
            errors["local"] = "Enter the path of a local file"
        elif userfile.file_problem(local):
            errors["local"] = f"{local}: {userfile.file_problem(local)}"
        elif os.path.getsize(local) > self.pool.available:
            errors["local"] = (f"{fmt_bytes(os.path.getsize(local))} is larger than the "
                               f"{fmt_bytes(self.pool.available)} free in pool '{self.pool.name}'")
        errors["name"] = storage.validate_volume_name(name) if local else None
        if not self.set_errors(errors):
            return None
        progress = self.start_progress(f"Uploading '{name}'")
        pool = self.pool.name
        try:
            return await self.service.run_long(
                lambda c, progress, cancel: storage.upload_file(c, pool, name, local, progress=progress,
                                                                cancel=cancel),
                progress=progress, cancel=progress.cancel, action="upload", obj=f"'{local}' to pool '{pool}'")
        finally:
            self.stop_progress()


class DownloadDialog(ProgressForm):
    ok_label = "Download"

    def __init__(self, service: LibvirtService, volume: storage.VolumeInfo) -> None:
        super().__init__(service, f"Download '{volume.name}' (virsh vol-download)")
        self.volume = volume

    def fields(self) -> ComposeResult:
        default = os.path.join(os.getcwd(), self.volume.name)
        yield from labelled("Save to local file", Input(default, compact=True, id="local"), "local")

    async def submit(self):
        local = os.path.expanduser(self.field("local").strip())
        errors: dict[str, str | None] = {}
        if not local:
            errors["local"] = "Enter a local file name"
        elif os.path.isdir(local):
            errors["local"] = f"{local} is a directory: add a file name"
        elif os.path.exists(local):
            errors["local"] = f"{local} exists: choose another name (nothing is overwritten)"
        elif not os.path.isdir(os.path.dirname(os.path.abspath(local))):
            errors["local"] = f"{os.path.dirname(os.path.abspath(local))}: no such directory"
        if not self.set_errors(errors):
            return None
        progress = self.start_progress(f"Downloading '{self.volume.name}'")
        key = self.volume.key or self.volume.path
        try:
            n = await self.service.run_long(
                lambda c, progress, cancel: storage.download_volume(c, key, local, progress=progress, cancel=cancel),
                progress=progress, cancel=progress.cancel, action="download volume", obj=f"'{self.volume.name}'")
        finally:
            self.stop_progress()
        return (local, n)


# ---------------------------------------------------------------------------
# the screen
# ---------------------------------------------------------------------------


class StorageScreen(HostObjectScreen):
    """Pools (top) and the volumes of the highlighted pool (bottom)."""

    actions_group = "storage-actions"
    object_kind = "pool"

    BINDINGS = bindings(STORAGE_KEYS)

    def __init__(self, service: LibvirtService) -> None:
        super().__init__(service)
        self.pools: list[storage.PoolInfo] = []
        self.volumes: list[storage.VolumeInfo] = []
        self.warnings: list[str] = []
        self._pool_for_volumes: str | None = None

    def compose(self) -> ComposeResult:
        yield Static(" Storage pools", id="storage-title", classes="screen-title")
        yield Static("", id="storage-warnings")
        pools = DataTable(id="pools", cursor_type="row", zebra_stripes=False)
        pools.add_columns("Pool", "State", "Auto", "Usage", "Capacity", "Allocation", "Available", "Type")
        yield pools
        yield Static("", id="volumes-title")
        vols = DataTable(id="volumes", cursor_type="row")
        vols.add_columns("Volume", "Format", "Capacity", "Allocation", "Provisioning", "Used by")
        yield vols
        yield KeyFooter(compact=True)

    def on_mount(self) -> None:
        self.query_one("#storage-warnings").display = False
        self.query_one("#pools", DataTable).focus()
        self.reload()

    # --- data -------------------------------------------------------------

    @property
    def selected_pool(self) -> storage.PoolInfo | None:
        return self.item_at_cursor("#pools", self.pools)

    @property
    def selected_volume(self) -> storage.VolumeInfo | None:
        return self.item_at_cursor("#volumes", self.volumes)

    @work(exclusive=True, group="storage-load")
    async def reload(self, refresh: bool = False) -> None:
        await self._reload(refresh)

    async def _reload(self, refresh: bool) -> None:
        try:
            pools = await self.service.call(lambda c: storage.list_pools(c, refresh=refresh),
                                            action="list storage pools of", obj=self.service.display_uri)
            users = await self.service.call(storage.volume_users, action="read the disks of the VMs on",
                                            obj=self.service.display_uri)
        except VmtuiError as err:
            self.notify(err.message, title="Storage", severity="error", timeout=12)
            return
        self.users = users
        self.show_pools(pools)
        await self.load_volumes()
        self.loaded = True

    def show_pools(self, pools: list[storage.PoolInfo]) -> None:
        table = self.query_one("#pools", DataTable)
        current = self.selected_pool.name if self.selected_pool else self._pool_for_volumes
        self.pools = pools
        table.clear()
        for p in pools:
            active = p.active and p.capacity > 0
            table.add_row(*map(Text, (
                p.name, "active" if p.active else "inactive", "yes" if p.autostart else "no",
                usage_bar(p.used_fraction) if active else "-",
                fmt_bytes(p.capacity) if active else "-", fmt_bytes(p.allocation) if active else "-",
                fmt_bytes(p.available) if active else "-", p.type)),
                key=p.name)
        self.keep_cursor(table, [p.name for p in pools], current)
        self.warnings = storage.pool_warnings(pools)
        box = self.query_one("#storage-warnings", Static)
        box.update(Text("\n".join(f" ! {w}" for w in self.warnings), style="bold yellow"))
        box.display = bool(self.warnings)
        set_warnings = getattr(self.app, "set_storage_warnings", None)
        if set_warnings is not None:
            set_warnings(storage.pool_warnings(pools, short=True))
        self.refresh_bindings()

    async def load_volumes(self) -> None:
        pool = self.selected_pool
        title = self.query_one("#volumes-title", Static)
        table = self.query_one("#volumes", DataTable)
        self._pool_for_volumes = pool.name if pool else None
        if pool is None:
            self.volumes = []
            table.clear()
            title.update(" No storage pools: P defines a directory pool")
            return
        if not pool.active:
            self.volumes = []
            table.clear()
            title.update(f" Volumes of '{escape(pool.name)}': the pool is inactive (s starts it)")
            return
        try:
            vols = await self.service.call(lambda c: storage.list_volumes(c, pool.name),
                                           action="list volumes of pool", obj=f"'{pool.name}'")
        except VmtuiError as err:
            self.volumes = []
            table.clear()
            title.update(f" Volumes of '{escape(pool.name)}': {escape(err.message)}")
            return
        if self._pool_for_volumes != pool.name:
            return  # the cursor moved meanwhile
        current = self.selected_volume.name if self.selected_volume else None
        self.volumes = vols
        table.clear()
        for v in vols:
            table.add_row(*map(Text, (v.name, v.format or "-", fmt_bytes(v.capacity), fmt_bytes(v.allocation),
                                      self._provisioning(v), ", ".join(self.users_of(v)) or "-")), key=v.name)
        self.keep_cursor(table, [v.name for v in vols], current)
        summary = f"{len(vols)} volume{'s' if len(vols) != 1 else ''}"
        if pool.capacity:
            summary += f", {fmt_bytes(pool.volumes_capacity)} provisioned on {fmt_bytes(pool.capacity)}"
            if pool.overcommitted:
                summary += f" ({pool.overcommit_ratio:.2f}x overcommitted)"
        title.update(f" Volumes of '{escape(pool.name)}' ({pool.path or pool.type}) — {summary}")
        self.refresh_bindings()

    @staticmethod
    def _provisioning(v: storage.VolumeInfo) -> str:
        if v.format == "iso":
            return "-"
        if v.backing:
            return "thin (overlay)"
        return "thin" if v.thin else "thick"

    def users_of(self, v: storage.VolumeInfo) -> list[str]:
        return storage.users_of_volume(self.users, v)

    @on(DataTable.RowHighlighted, "#pools")
    def _pool_highlighted(self) -> None:
        pool = self.selected_pool
        if pool is not None and pool.name != self._pool_for_volumes:
            self._load_volumes_worker()
        self.refresh_bindings()

    @on(DataTable.RowHighlighted, "#volumes")
    def _volume_highlighted(self) -> None:
        self.refresh_bindings()

    @work(exclusive=True, group="storage-volumes")
    async def _load_volumes_worker(self) -> None:
        await self.load_volumes()

    # --- which keys apply --------------------------------------------------

    def check_action(self, action: str, parameters) -> bool | None:
        pool = self.selected_pool
        vol = self.selected_volume
        ro = self.service.readonly
        match action:
            case "pool_start":
                return None if ro or pool is None or pool.active else True
            case "pool_stop" | "pool_refresh":
                return None if (ro and action == "pool_stop") or pool is None or not pool.active else True
            case "pool_autostart":
                return None if ro or pool is None or not pool.persistent else True
            case "pool_define":
                return None if ro else True
            case "pool_delete":
                return None if ro or pool is None else True
            case "vol_create" | "vol_upload":
                return None if ro or pool is None or not pool.active else True
            case "vol_delete":
                return None if ro or vol is None else True
            case "vol_download":
                return None if vol is None else True
        return True

    # --- actions -----------------------------------------------------------

    def _pool_or_say(self, action: str) -> storage.PoolInfo | None:
        pool = self.selected_pool
        if pool is None:
            self.notify("No pool selected.", severity="warning", timeout=4)
            return None
        if self.check_action(action, ()) is None:
            state = "active" if pool.active else "inactive"
            self.notify(f"Not possible for pool '{pool.name}' while it is {state}.", severity="warning", timeout=4)
            return None
        return pool

    def action_pool_start(self) -> None:
        if p := self._pool_or_say("pool_start"):
            self._run("Start pool", lambda c: storage.start_pool(c, p.name), f"Started pool '{p.name}'", p.name)

    def action_pool_stop(self) -> None:
        if p := self._pool_or_say("pool_stop"):
            self._run("Stop pool", lambda c: storage.stop_pool(c, p.name),
                      f"Stopped pool '{p.name}' (its volumes stay on disk)", p.name)

    def action_pool_refresh(self) -> None:
        if p := self._pool_or_say("pool_refresh"):
            self._run("Refresh pool", lambda c: storage.refresh_pool(c, p.name), f"Refreshed pool '{p.name}'",
                      p.name)

    def action_pool_autostart(self) -> None:
        if p := self._pool_or_say("pool_autostart"):
            on_ = not p.autostart
            self._run("Pool autostart", lambda c: storage.set_pool_autostart(c, p.name, on_),
                      f"Pool '{p.name}' will {'now' if on_ else 'no longer'} start at host boot", p.name)

    def action_pool_define(self) -> None:
        if self.check_action("pool_define", ()) is None:
            return

        def done(info) -> None:
            if info is not None:
                self.notify(f"Defined and started pool '{info.name}' at {info.path}", title="New pool", timeout=6)
                self._pool_for_volumes = info.name
                self.reload()

        self.app.push_screen(DefinePoolDialog(self.service, self.pools), done)

    def action_pool_delete(self) -> None:
        p = self._pool_or_say("pool_delete")
        if p is None:
            return
        if p.active and p.volume_count:
            self.notify(f"Pool '{p.name}' is not empty: it holds {p.volume_count} volume"
                        f"{'s' if p.volume_count != 1 else ''}. Delete them first.",
                        title="Delete pool", severity="error", timeout=10)
            return
        from .dialogs import ConfirmDialog
        what = f" and remove its directory {p.path}" if p.type == "dir" and p.path else ""

        def answered(yes: bool | None) -> None:
            if yes:
                self._run("Delete pool", lambda c: storage.delete_pool(c, p.name), lambda msg: msg[0].upper() + msg[1:],
                          f"'{p.name}'", timeout=6)

        self.app.push_screen(ConfirmDialog("Delete pool", f"Delete pool '{escape(p.name)}'{escape(what)}? "
                                           "(virsh pool-destroy, pool-delete, pool-undefine)", yes="Delete"),
                             answered)

    def action_vol_create(self) -> None:
        p = self._pool_or_say("vol_create")
        if p is None:
            return

        def done(info) -> None:
            if info is not None:
                self.notify(f"Created volume '{info.name}' ({fmt_bytes(info.capacity)}, "
                            f"{'thin' if info.thin else 'thick'})", title="New volume", timeout=6)
                self.reload()

        self.app.push_screen(CreateVolumeDialog(self.service, p), done)

    def action_vol_delete(self) -> None:
        v = self.selected_volume
        if v is None or self.check_action("vol_delete", ()) is None:
            return
        users = self.users_of(v)
        if users:
            self.notify(f"Volume '{v.name}' is in use by {', '.join(users)}: it is kept.",
                        title="Delete volume", severity="error", timeout=10)
            return
        from .dialogs import ConfirmDialog

        def answered(yes: bool | None) -> None:
            if yes:
                key = v.key or v.path
                self._run("Delete volume", lambda c: storage.delete_volume(c, key),
                          f"Deleted volume '{v.name}'", v.name)

        self.app.push_screen(ConfirmDialog(
            "Delete volume", f"Delete volume '{escape(v.name)}' ({fmt_bytes(v.capacity)}) from pool "
            f"'{escape(v.pool)}'? Its data is lost. (virsh vol-delete)", yes="Delete"), answered)

    def action_vol_upload(self) -> None:
        p = self._pool_or_say("vol_upload")
        if p is None:
            return

        def done(info) -> None:
            if info is not None:
                self.notify(f"Uploaded '{info.name}' ({fmt_bytes(info.capacity)}, {info.format or 'raw'})",
                            title="Upload", timeout=6)
                self.reload()

        self.app.push_screen(UploadDialog(self.service, p), done)

    def action_vol_download(self) -> None:
        v = self.selected_volume
        if v is None:
            return

        def done(result) -> None:
            if result is not None:
                local, n = result
                self.notify(f"Saved '{v.name}' to {local} ({fmt_bytes(n)})", title="Download", timeout=6)

        self.app.push_screen(DownloadDialog(self.service, v), done)

    def action_storage_help(self) -> None:
        self.app.push_screen(KeyHelp("Storage — keys", STORAGE_KEYS))
