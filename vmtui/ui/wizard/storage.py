"""Step 4, storage: a new disk in a pool, an existing volume or path, or none."""

from __future__ import annotations

from dataclasses import replace

from textual import on
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.suggester import SuggestFromList
from textual.widgets import Input, Label, RadioSet

from ...core.create.vmspec import DiskSpec
from ..forms import labelled
from ..new_volume import NewVolumeFields
from ..toggles import RadioButton
from .step import Step


class StorageStep(Step):
    title = "Storage"
    owns = ("disks",)

    def compose(self) -> ComposeResult:
        yield Label("Where does the VM's disk live?", classes="step-question")
        with RadioSet(id="disk-mode"):
            yield RadioButton("Create a new disk", id="disk-new", value=True)
            yield RadioButton("Use an existing volume or path", id="disk-existing")
            yield RadioButton("No disk", id="disk-none")
        yield NewVolumeFields(name_placeholder="<vm name>.qcow2", name_optional=True, field_prefix="disks[0].",
                              id="disk-new-box")
        with Vertical(id="disk-existing-box"):
            yield from labelled("Volume (pool/volume) or path", Input(id="disk-path"), "disks[0].path")
        yield self.compose_errors()

    @property
    def volume(self) -> NewVolumeFields:
        return self.query_one(NewVolumeFields)

    def on_mount(self) -> None:
        self.refresh_context()
        self._show()

    def refresh_context(self) -> None:
        self.volume.set_pools(self.ctx.pools)
        self.volumes_changed()

    def volumes_changed(self) -> None:
        self.query_one("#disk-path", Input).suggester = (
            SuggestFromList(self.ctx.image_volumes, case_sensitive=False) if self.ctx.image_volumes else None)

    def field_group(self, widget):
        """The size, format and thin/thick fields show with what the host
        will hold and the warnings under them (they change as these do)."""
        group = super().field_group(widget)
        if widget.id in ("vol-size", "vol-format", "vol-prov") or (
                widget.parent is not None and widget.parent.id == "vol-prov"):
            top = self.query_one("#vol-size").parent
            below = [w for w in (self.query_one("#vol-plan"), self.query_one("#vol-warning")) if w.display]
            group = [top, *group, *below] if top is not None else group + below
        return group

    @on(Input.Changed, "#vol-size")
    @on(RadioSet.Changed, "#vol-prov")
    def _keep_warnings_in_view(self) -> None:
        focused = self.app.focused
        if focused is not None and self in focused.ancestors:
            self.call_after_refresh(self.show_field, focused)

    @property
    def mode(self) -> str:
        b = self.query_one("#disk-mode", RadioSet).pressed_button
        return b.id.removeprefix("disk-") if b and b.id else "new"

    @on(RadioSet.Changed, "#disk-mode")
    def _show(self) -> None:
        mode = self.mode
        self.query_one("#disk-new-box").display = mode == "new"
        self.query_one("#disk-existing-box").display = mode == "existing"

    def load(self) -> None:
        disk = self.spec.disks[0] if self.spec.disks else None
        mode = "none" if disk is None else disk.mode
        self.query_one(f"#disk-{mode}", RadioButton).value = True
        if disk is not None:
            self.volume.load(size=disk.size, fmt=disk.format, provisioning=disk.provisioning, name=disk.name or "",
                             pool=disk.pool)
            self.query_one("#disk-path", Input).value = disk.path or ""
        self._show()

    def save(self) -> dict[str, str]:
        errors: dict[str, str] = {}
        mode = self.mode
        cloud = self.spec.install.kind == "cloud"
        old = self.spec.disks[0] if self.spec.disks else DiskSpec()
        if mode == "none":
            if cloud:
                errors["disks"] = "A cloud image needs a new disk (an overlay on the image)"
            self.spec.disks = []
            return errors
        disk = replace(old, mode=mode)  # type: ignore[arg-type]
        if mode == "new":
            new, errors = self.volume.read()
            disk.pool = new.pool.name if new.pool else ""
            if new.size is not None:
                disk.size = new.size
            disk.format = new.fmt  # type: ignore[assignment]
            disk.provisioning = new.provisioning  # type: ignore[assignment]
            disk.name = new.name or None
            disk.path = None
            if cloud:
                disk.format, disk.provisioning = "qcow2", "thin"
                disk.backing = self.spec.install.image
        else:
            disk.path = self.query_one("#disk-path", Input).value.strip() or None
            if not disk.path:
                errors["disks[0].path"] = "Give a volume (pool/volume) or a path"
        self.spec.disks = [disk] + self.spec.disks[1:]
        return errors
