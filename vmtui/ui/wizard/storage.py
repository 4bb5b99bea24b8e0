"""Step 4, storage: a new disk in a pool, an existing volume or path, or none."""

from __future__ import annotations

from dataclasses import replace

from rich.markup import escape
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.suggester import SuggestFromList
from textual.widgets import Input, Label, RadioButton, RadioSet, Select, Static

from ...core.create.vmspec import DiskSpec
from ...core.sizes import fmt_bytes, parse_size
from ..forms import labelled
from .step import Step

GiB = 1024 ** 3


class StorageStep(Step):
    title = "Storage"
    owns = ("disks",)

    def compose(self) -> ComposeResult:
        yield Label("Where does the VM's disk live?", classes="step-question")
        with RadioSet(id="disk-mode"):
            yield RadioButton("Create a new disk", id="disk-new", value=True)
            yield RadioButton("Use an existing volume or path", id="disk-existing")
            yield RadioButton("No disk", id="disk-none")
        with Vertical(id="disk-new-box"):
            yield from labelled("Pool", Select([], id="pool", prompt="(no pool)"), "disks[0].pool")
            with Horizontal(classes="row"):
                with Vertical():
                    yield from labelled("Size (e.g. 20G, 512M, 1.5T)", Input(id="size"), "disks[0].size")
                with Vertical():
                    yield from labelled("Format", Select([("qcow2", "qcow2"), ("raw", "raw")], id="format",
                                                         allow_blank=False, value="qcow2"), "disks[0].format")
            with RadioSet(id="provisioning"):
                yield RadioButton("Thin: allocate on write (sparse)", id="prov-thin", value=True)
                yield RadioButton("Thick: allocate everything now (fallocate)", id="prov-thick")
            yield Static("", id="disk-plan")
            yield Static("", id="disk-warning", classes="warning")
            yield from labelled("Volume name (optional)", Input(id="vol-name", placeholder="<vm name>.qcow2"),
                                "disks[0].name")
        with Vertical(id="disk-existing-box"):
            yield from labelled("Volume (pool/volume) or path", Input(id="disk-path"), "disks[0].path")
        yield self.compose_errors()

    def on_mount(self) -> None:
        self.refresh_context()
        self._show()

    def refresh_context(self) -> None:
        pools = [p for p in self.ctx.pools if p.active]
        opts = [(f"{p.name} ({fmt_bytes(p.available)} free of {fmt_bytes(p.capacity)})", p.name) for p in pools]
        sel = self.query_one("#pool", Select)
        sel.set_options(opts)
        if opts and sel.is_blank():
            sel.value = opts[0][1]
        self.query_one("#disk-path", Input).suggester = (
            SuggestFromList(self.ctx.image_volumes, case_sensitive=False) if self.ctx.image_volumes else None)

    @property
    def mode(self) -> str:
        b = self.query_one("#disk-mode", RadioSet).pressed_button
        return b.id.removeprefix("disk-") if b and b.id else "new"

    @on(RadioSet.Changed)
    def _changed_radio(self) -> None:
        self._show()
        self._plan()

    @on(Input.Changed)
    @on(Select.Changed)
    def _changed(self) -> None:
        self._plan()

    def _show(self) -> None:
        mode = self.mode
        self.query_one("#disk-new-box").display = mode == "new"
        self.query_one("#disk-existing-box").display = mode == "existing"

    def _pool(self):
        sel = self.query_one("#pool", Select)
        name = None if sel.is_blank() else sel.value
        return next((p for p in self.ctx.pools if p.name == name), None)

    def _plan(self) -> None:
        from ...core.storage import plan_new_disk
        plan_w, warn_w = self.query_one("#disk-plan", Static), self.query_one("#disk-warning", Static)
        if self.mode != "new":
            plan_w.update("")
            warn_w.update("")
            return
        pool = self._pool()
        try:
            size = parse_size(self.query_one("#size", Input).value, "G")
        except ValueError:
            plan_w.update("")
            warn_w.update("")
            return
        if pool is None:
            plan_w.update("")
            return
        prov = "thick" if self.query_one("#prov-thick", RadioButton).value else "thin"
        fmt = str(self.query_one("#format", Select).value)
        plan = plan_new_disk(pool, size, prov, fmt)
        plan_w.update(f"The host will hold {fmt_bytes(plan.now)} now and at most {fmt_bytes(plan.at_most)}.")
        warn_w.update(escape(plan.error or plan.warning or ""))

    def load(self) -> None:
        disk = self.spec.disks[0] if self.spec.disks else None
        mode = "none" if disk is None else disk.mode
        self.query_one(f"#disk-{mode}", RadioButton).value = True
        if disk is not None:
            self.query_one("#size", Input).value = _size_text(disk.size)
            try:
                self.query_one("#format", Select).value = disk.format
                if disk.pool and any(p.name == disk.pool for p in self.ctx.pools):
                    self.query_one("#pool", Select).value = disk.pool
            except Exception:
                pass
            self.query_one(f"#prov-{disk.provisioning}", RadioButton).value = True
            self.query_one("#vol-name", Input).value = disk.name or ""
            self.query_one("#disk-path", Input).value = disk.path or ""
        self._show()
        self._plan()

    def save(self) -> dict[str, str]:
        errors: dict[str, str] = {}
        mode = self.mode
        cloud = self.spec.install.kind == "cloud"
        imported = self.spec.install.kind == "import"
        old = self.spec.disks[0] if self.spec.disks else DiskSpec()
        if mode == "none":
            if cloud:
                errors["disks"] = "A cloud image needs a new disk (an overlay on the image)"
            self.spec.disks = [] if not imported else []
            return errors
        disk = replace(old, mode=mode)  # type: ignore[arg-type]
        if mode == "new":
            sel = self.query_one("#pool", Select)
            disk.pool = "" if sel.is_blank() else str(sel.value)
            try:
                disk.size = parse_size(self.query_one("#size", Input).value, "G")
            except ValueError as e:
                errors["disks[0].size"] = str(e)
            disk.format = str(self.query_one("#format", Select).value)  # type: ignore[assignment]
            disk.provisioning = "thick" if self.query_one("#prov-thick", RadioButton).value else "thin"
            disk.name = self.query_one("#vol-name", Input).value.strip() or None
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


def _size_text(size: int) -> str:
    for unit, mult in (("T", 1024 ** 4), ("G", GiB), ("M", 1024 ** 2)):
        if size and size % mult == 0:
            return f"{size // mult}{unit}"
    return str(size)
