"""The disks of one VM (domain-list key ``d``): list, add, remove, grow,
persistent / non-persistent mode, CD-ROM media (virt-manager's storage
devices page; ``virsh domblklist``, ``attach-disk``, ``detach-disk``,
``blockresize``, ``change-media``)."""

from __future__ import annotations

from dataclasses import dataclass

from rich.markup import escape
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.suggester import SuggestFromList
from textual.widgets import DataTable, Input, Label, RadioSet, Select, Static

from ..core import storage
from ..core.storage import disks
from ..core.host import inventory
from ..core.errors import VmtuiError
from ..core.connection.service import LibvirtService
from ..core.sizes import fmt_bytes, parse_size
from .footer import KeyFooter
from .forms import DomainItemsScreen, FieldError, SubmitDialog, dialog_buttons, labelled
from .new_volume import NewVolumeFields
from .templates_ui import clones_text, linked_clones
from .toggles import Checkbox, RadioButton


@dataclass
class AddRequest:
    existing: str | None = None
    pool: str | None = None
    name: str | None = None
    size: int | None = None
    fmt: str = "qcow2"
    provisioning: str = "thin"
    bus: str | None = None  # None: what the VM's devices of that kind use
    device: str = "disk"
    readonly: bool = False
    shareable: bool = False


class DisksScreen(DomainItemsScreen):
    """Every disk and CD-ROM of one VM, with what the host really holds."""

    detail_id = "#disk-detail"
    busy_group = "disks-actions"
    done_timeout = 8

    BINDINGS = [
        Binding("escape,q", "app.pop_screen", "Back"),
        Binding("a", "add", "Add"),
        Binding("r,delete", "remove", "Remove"),
        Binding("g", "grow", "Grow"),
        Binding("m", "mode", "Mode"),
        Binding("i", "insert", "Insert"),
        Binding("e", "eject", "Eject"),
        Binding("R,f5", "reload", "Reload"),
    ]

    def __init__(self, service: LibvirtService, uuid: str, name: str) -> None:
        super().__init__(service, uuid, name)
        self.rows: list[disks.DiskRow] = []
        self.transient_how = ""

    def compose(self) -> ComposeResult:
        yield Static(f" Disks — {escape(self.domain_name)}", id="disks-title", classes="screen-title")
        yield DataTable(id="disks-table", cursor_type="row", zebra_stripes=False)
        yield Static("Loading…", id="disk-detail")
        yield KeyFooter(compact=True)

    def on_mount(self) -> None:
        t = self.query_one(DataTable)
        t.add_columns("Target", "Bus", "Format", "Capacity", "Held", "Prov", "Mode", "Source")
        t.focus()
        self.load()

    @property
    def selected(self) -> disks.DiskRow | None:
        return self._item_at_cursor(self.rows)

    @work(exclusive=True, group="disks-load")
    async def load(self, select: str | None = None) -> None:
        try:
            rows, (_ok, how) = await self.service.call(
                lambda c: (disks.list_disks(c, self.uuid), disks.transient_support(c)),
                action="list the disks of", obj=f"domain '{self.domain_name}'")
        except VmtuiError as err:
            self._load_failed(err, "Disks")
            return
        self.transient_how = how
        t = self.query_one(DataTable)
        keep = select or (self.selected.disk.target if self.selected else None)
        self.rows = rows
        t.clear()
        for r in rows:
            d = r.disk
            source = d.source.rstrip("/").rsplit("/", 1)[-1] if d.source else "(empty)"
            t.add_row(d.target or "-", d.bus or "-", r.format or "-", fmt_bytes(r.capacity),
                      fmt_bytes(r.allocation), r.provisioning, r.mode, source, key=d.target or None)
        if keep:
            for i, r in enumerate(rows):
                if r.disk.target == keep:
                    t.move_cursor(row=i)
        state = "running" if self.running else "shut off"
        self.query_one("#disks-title", Static).update(
            f" Disks — {escape(self.domain_name)} ({state}, {len(rows)} device{'s' if len(rows) != 1 else ''})")
        self._detail()

    def _detail(self) -> None:
        r = self.selected
        w = self.query_one("#disk-detail", Static)
        if r is None:
            w.update("No disks. a adds one.")
            return
        d = r.disk
        lines = [Text.assemble((f"{d.target} ({d.device}, {d.bus or '?'}): ", "bold"), d.source or "no medium")]
        if d.backing:
            lines.append(Text(f"backing file {d.backing}"))
        bits = []
        if r.volume is not None:
            bits.append(f"volume {r.volume.pool}/{r.volume.name}")
            bits.append(f"{fmt_bytes(r.allocation)} held of {fmt_bytes(r.capacity)} ({r.provisioning})")
        elif d.source:
            bits.append("not in a storage pool")
        bits += r.flags
        if d.device == "disk":
            if r.overlay is not None:
                bits.append(f"non-persistent: vmtui overlay on {r.overlay.base}, emptied at power-off")
            else:
                bits.append("non-persistent: writes discarded at power-off (libvirt <transient/>)"
                            if d.transient else "persistent")
        if bits:
            lines.append(Text(", ".join(bits), style="dim"))
        if r.used_by:
            lines.append(Text("also used by " + ", ".join(r.used_by), style="bold yellow"))
        w.update(Text("\n").join(lines))

    def done_text(self, done: str, result) -> str:
        return done.format(**result) if isinstance(result, dict) else done.format(result=result)

    # --- add --------------------------------------------------------------

    async def _storage(self, title: str, action: str) -> inventory.HostInventory | None:
        """The host's pools and volumes, or None once the error is said."""
        try:
            return await self.service.call(inventory.read_storage, action=action, obj=self.service.display_uri)
        except VmtuiError as err:
            self.notify(err.message, title=title, severity="error", timeout=12)
            return None

    @work(group="disks-dialog")
    async def action_add(self) -> None:
        inv = await self._storage("Add disk", "list the storage pools of")
        if inv is None:
            return
        req = await self.app.push_screen_wait(AddDiskDialog(self.domain_name, inv.pools, inv.all_volumes))
        if req is None:
            return
        if req.device == "cdrom":
            what = f"a CD-ROM drive ({req.existing})" if req.existing else "an empty CD-ROM drive"
        elif req.existing:
            what = f"'{req.existing}'"
        else:
            what = f"{req.name} ({fmt_bytes(req.size)}, {req.provisioning})"

        async def job():
            return await self.service.call(
                lambda c: disks.add_disk(c, self.uuid, bus=req.bus, device=req.device, pool=req.pool,
                                         name=req.name, size=req.size, fmt=req.fmt,
                                         provisioning=req.provisioning, existing=req.existing,
                                         readonly=req.readonly, shareable=req.shareable),
                action="add a disk to", obj=f"domain '{self.domain_name}'",
                timeout=max(self.service.timeout, 600))
        live = " (hot-plugged: the guest sees it now)" if self.running else ""
        self._busy("Add disk", job, f"Added {escape(what)} as {{result}}{live}")

    # --- remove -------------------------------------------------------------

    @work(group="disks-dialog")
    async def action_remove(self) -> None:
        r = self.selected
        if r is None:
            return
        delete = await self.app.push_screen_wait(RemoveDiskDialog(self.domain_name, r, self.running))
        if delete is None:
            return
        target = r.disk.target

        async def job():
            return await self.service.call(
                lambda c: disks.remove_disk(c, self.uuid, target, delete_volume=delete),
                action=f"remove disk {target} from", obj=f"domain '{self.domain_name}'",
                timeout=max(self.service.timeout, 60))
        self._busy("Remove disk", job,
                   f"Removed {target}" + (" and deleted its volume" if delete else "; the volume was kept"))

    # --- grow ---------------------------------------------------------------

    @work(group="disks-dialog")
    async def action_grow(self) -> None:
        r = self.selected
        if r is None:
            return
        if r.disk.device != "disk":
            self.notify(f"{r.disk.target} is a {r.disk.device}: only disks can grow.", severity="warning")
            return
        try:  # a disk that backs linked clones must not change under them
            clones = await linked_clones(self.service, self.uuid, self.domain_name, r.disk.target)
        except VmtuiError as err:
            self.notify(err.message, title="Grow disk", severity="error", timeout=12)
            return
        size = await self.app.push_screen_wait(ResizeDialog(r, self.running, clones))
        if size is None:
            return
        target = r.disk.target

        async def job():
            return await self.service.call(lambda c: disks.resize_disk(c, self.uuid, target, size),
                                           action=f"resize disk {target} of", obj=f"domain '{self.domain_name}'",
                                           timeout=max(self.service.timeout, 120))
        self._busy("Grow disk", job, f"{target} is now {fmt_bytes(size)}" +
                   (" (the guest still has to grow its partition and file system)" if self.running else ""),
                   target)

    # --- mode ---------------------------------------------------------------

    def action_mode(self) -> None:
        r = self.selected
        if r is None:
            return
        d = r.disk
        if d.device != "disk":
            self.notify(f"{d.target} is a {d.device}: only disks have a mode.", severity="warning")
            return
        if self.running:
            self.notify(f"Shut '{self.domain_name}' off first: a disk's mode changes only while the VM is off.",
                        title="Disk mode", severity="warning", timeout=8)
            return
        to_persistent = d.transient or r.overlay is not None
        problem = None if to_persistent else disks.transient_problem(d)
        if problem:
            self.notify(problem, title="Disk mode", severity="error", timeout=10)
            return
        target = d.target

        how_transient = escape(self.transient_how)

        async def job():
            mech = await self.service.call(lambda c: disks.set_mode(c, self.uuid, target, to_persistent),
                                           action="change the mode of", obj=f"disk {target}")
            return {"how": how_transient if mech == "transient" else "a vmtui overlay, emptied at each power-off"}
        if to_persistent:
            done = f"{target} is persistent: the guest's writes are kept"
        else:
            done = f"{target} is non-persistent: writes are discarded at each power-off ({{how}})"
        self._busy("Disk mode", job, done, target)

    # --- media --------------------------------------------------------------

    def _cdrom(self) -> disks.DiskRow | None:
        r = self.selected
        if r is None:
            return None
        if not r.disk.is_removable_media:
            self.notify(f"{r.disk.target} is a disk, not a CD-ROM.", severity="warning")
            return None
        return r

    @work(group="disks-dialog")
    async def action_insert(self) -> None:
        r = self._cdrom()
        if r is None:
            return
        inv = await self._storage("Insert media", "list the volumes of")
        if inv is None:
            return
        isos = inv.iso_volumes
        source = await self.app.push_screen_wait(MediaDialog(r.disk.target, isos))
        if not source:
            return
        target = r.disk.target

        async def job():
            return await self.service.call(lambda c: disks.change_media(c, self.uuid, target, source),
                                           action=f"insert media into {target} of",
                                           obj=f"domain '{self.domain_name}'")
        self._busy("Insert media", job, f"Inserted {escape(source)} into {target}", target)

    def action_eject(self) -> None:
        r = self._cdrom()
        if r is None:
            return
        if not r.disk.source:
            self.notify(f"{r.disk.target} is already empty.", severity="warning")
            return
        target = r.disk.target

        async def job():
            return await self.service.call(lambda c: disks.change_media(c, self.uuid, target, None),
                                           action=f"eject {target} of", obj=f"domain '{self.domain_name}'")
        self._busy("Eject", job, f"Ejected the media of {target}", target)


class AddDiskDialog(SubmitDialog["AddRequest | None"]):
    """A new thin/thick volume in a pool, or an existing volume or path."""

    ok_id = "add"

    def __init__(self, domain_name: str, pools: list[storage.PoolInfo], volumes: list[storage.VolumeInfo]) -> None:
        super().__init__()
        self.domain_name = domain_name
        self.pools = pools
        self.volumes = volumes

    def compose(self) -> ComposeResult:
        taken = {v.name for v in self.volumes}
        base = self.domain_name
        name = next(f"{base}-{i}.qcow2" for i in range(1, 1000) if f"{base}-{i}.qcow2" not in taken)
        with VerticalScroll(classes="dialog", id="add-disk-dialog"):
            yield Label(f"Add a disk to '{escape(self.domain_name)}'", classes="dialog-title")
            with RadioSet(id="add-kind"):
                yield RadioButton("New volume", id="kind-new", value=True)
                yield RadioButton("Existing volume or path", id="kind-existing")
                yield RadioButton("CD-ROM drive (empty, or with an ISO given below)", id="kind-cdrom")
            yield NewVolumeFields(self.pools, size="10G", name=name, compact=True, id="add-new-box")
            with Vertical(id="add-existing-box"):
                names = sorted(f"{v.pool}/{v.name}" for v in self.volumes)
                yield from labelled("Volume (pool/volume) or path", Input(
                    id="add-path", compact=True, suggester=SuggestFromList(names, case_sensitive=False) if names else None),
                    "path")
                yield Checkbox("Read-only", id="add-readonly")
                yield Checkbox("Shareable (used by several VMs at once)", id="add-shareable")
            yield from labelled("Bus", Select([("auto: what the VM's other devices use", "auto")]
                                              + [(b, b) for b in disks.BUSES], id="add-bus", compact=True,
                                              allow_blank=False, value="auto"))

            yield dialog_buttons("Add", "add", compact=True)

    def on_mount(self) -> None:
        self._show()
        self.query_one("#vol-size", Input).focus()

    @property
    def kind(self) -> str:
        b = self.query_one("#add-kind", RadioSet).pressed_button
        return b.id.removeprefix("kind-") if b is not None and b.id else "new"

    def _show(self) -> None:
        self.query_one("#add-new-box").display = self.kind == "new"
        self.query_one("#add-existing-box").display = self.kind in ("existing", "cdrom")
        for box in self.query("#add-existing-box Checkbox"):
            box.display = self.kind == "existing"

    @on(RadioSet.Changed, "#add-kind")
    def _radio(self) -> None:
        self._show()

    def _errors(self) -> tuple[dict[str, str], AddRequest]:
        errors: dict[str, str] = {}
        bus = str(self.query_one("#add-bus", Select).value)
        req = AddRequest(bus=None if bus == "auto" else bus)
        if self.kind == "cdrom":
            req.device = "cdrom"
            req.existing = self.query_one("#add-path", Input).value.strip() or None
            return errors, req
        if self.kind == "existing":
            req.existing = self.query_one("#add-path", Input).value.strip() or None
            req.readonly = self.query_one("#add-readonly", Checkbox).value
            req.shareable = self.query_one("#add-shareable", Checkbox).value
            if not req.existing:
                errors["path"] = "Give a volume (pool/volume) or a path"
            return errors, req
        new, errors = self.query_one(NewVolumeFields).read()
        pool = new.pool
        if pool is None:
            errors["pool"] = "Choose a pool (start one on the storage screen)"
        req.size = new.size
        if req.size is not None and req.size <= 0:
            errors["size"] = "Size must be larger than zero"
        req.fmt, req.provisioning, req.name = new.fmt, new.provisioning, new.name
        problem = storage.validate_volume_name(req.name)
        if problem:
            errors["name"] = problem
        elif pool is not None and any(v.pool == pool.name and v.name == req.name for v in self.volumes):
            errors["name"] = f"Pool '{pool.name}' already has a volume '{req.name}'"
        if pool is not None and req.size and "size" not in errors:
            plan = storage.plan_new_disk(pool, req.size, req.provisioning, req.fmt)
            if plan.error:
                errors["size"] = plan.error
        req.pool = pool.name if pool else None
        return errors, req

    def _submit(self) -> None:
        errors, req = self._errors()
        for fe in self.query(FieldError):
            fe.set(errors.get(fe.field_name))
        if not errors:
            self.dismiss(req)


class RemoveDiskDialog(SubmitDialog["bool | None"]):
    """Remove a disk: keep its volume (default) or delete it. Returns
    whether to delete the volume, None to cancel."""

    ok_id = "remove"
    focus_cancel = True

    def __init__(self, domain_name: str, row: disks.DiskRow, running: bool) -> None:
        super().__init__()
        self.domain_name = domain_name
        self.row = row
        self.running = running

    def why_kept(self) -> str | None:
        r, d = self.row, self.row.disk
        if d.is_removable_media:
            return "removable media: the ISO is kept"
        if r.used_by:
            return "also used by " + ", ".join(r.used_by)
        if d.shareable:
            return "shareable"
        if r.volume is None:
            return "not a storage volume" if d.source else "no source"
        return None

    def compose(self) -> ComposeResult:
        d = self.row.disk
        kept = self.why_kept()
        with Vertical(classes="dialog", id="remove-disk-dialog"):
            yield Label(f"Remove {d.target} from '{escape(self.domain_name)}'", classes="dialog-title")
            yield Static(escape(d.source or "(no medium)"), classes="dialog-body")
            if self.running:
                yield Static("The VM is running: the disk is unplugged now (the guest must let go of it) "
                             "and from the next boot.", classes="warning")
            yield Checkbox("Also delete the volume (its data is lost)", id="delete-volume",
                           disabled=kept is not None)
            if kept:
                yield Static(f"Kept: {escape(kept)}", classes="dim")
            yield dialog_buttons("Remove", "remove", variant="error", compact=True)

    def _submit(self) -> None:
        box = self.query_one("#delete-volume", Checkbox)
        self.dismiss(bool(box.value and not box.disabled))


class ResizeDialog(SubmitDialog["int | None"]):
    """Grow a disk: the new size, validated (larger than now, fits the pool)."""

    ok_id = "grow"

    def __init__(self, row: disks.DiskRow, running: bool, clones: list[str] | None = None) -> None:
        super().__init__()
        self.row = row
        self.running = running
        self.clones = clones or []  # linked clones whose backing file this disk is

    def compose(self) -> ComposeResult:
        d, cap = self.row.disk, self.row.capacity
        with Vertical(classes="dialog", id="resize-dialog"):
            yield Label(f"Grow {d.target}", classes="dialog-title")
            yield Static(f"{escape(d.source)}: {fmt_bytes(cap)} now. Disks only grow.", classes="dialog-body")
            if self.clones:
                yield Static(f"It is the backing file of linked clones ({escape(clones_text(self.clones))}): "
                             "changing it can break them.", classes="warning")
            yield from labelled("New size (e.g. 40G, or +10G)", Input(id="new-size", compact=True), "size")
            how = ("QEMU grows it while the VM runs (virsh blockresize)" if self.running
                   else "the storage pool grows the volume (virsh vol-resize)")
            yield Static(f"How: {how}. The guest then grows its partition and file system.", classes="dim")
            yield dialog_buttons("Grow", "grow", compact=True)

    def on_mount(self) -> None:
        self.query_one("#new-size", Input).focus()

    def value(self) -> tuple[int | None, str | None]:
        text = self.query_one("#new-size", Input).value.strip()
        cap = self.row.capacity or 0
        try:
            size = cap + parse_size(text[1:], "G") if text.startswith("+") else parse_size(text, "G")
        except ValueError as e:
            return None, str(e)
        if size <= cap:
            return None, f"{fmt_bytes(size)} is not larger than {fmt_bytes(cap)}: disks only grow"
        return size, None

    def _submit(self) -> None:
        size, err = self.value()
        self.query_one(FieldError).set(err)
        if err is None:
            self.dismiss(size)


class MediaDialog(SubmitDialog["str | None"]):
    """Choose an ISO volume, or type a path, for a CD-ROM."""

    ok_id = "insert"

    def __init__(self, target: str, isos: list[str]) -> None:
        super().__init__()
        self.target = target
        self.isos = sorted(isos)

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="media-dialog"):
            yield Label(f"Insert media into {self.target}", classes="dialog-title")
            yield from labelled("ISO volume", Select([(i, i) for i in self.isos], id="iso-volume", compact=True,
                                                     prompt="(no ISO volumes)" if not self.isos else "(choose)"))
            yield from labelled("or a path / pool/volume", Input(id="iso-path", compact=True), "media")
            yield dialog_buttons("Insert", "insert", compact=True)

    def on_mount(self) -> None:
        self.query_one("#iso-volume" if self.isos else "#iso-path").focus()

    def _submit(self) -> None:
        text = self.query_one("#iso-path", Input).value.strip()
        sel = self.query_one("#iso-volume", Select)
        source = text or (None if sel.is_blank() else str(sel.value))
        if not source:
            self.query_one(FieldError).set("Choose an ISO volume or give a path")
            return
        self.dismiss(source)
