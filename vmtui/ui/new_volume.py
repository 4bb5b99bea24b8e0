"""The fields of a new volume -- pool, size, format, thin or thick, name --
and what the host will hold for it. The New-VM wizard's storage step, the
disks screen's Add dialog and the storage screen's New volume dialog all use
:class:`NewVolumeFields`, so they ask and explain the same way; each form
adds its own checks when it is submitted."""

from __future__ import annotations

from dataclasses import dataclass

from rich.markup import escape
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Input, Label, RadioSet, Select, Static

from ..core.sizes import fmt_bytes, format_size, parse_size
from ..core.storage import DiskPlan, PoolInfo, plan_new_disk
from .forms import labelled
from .toggles import RadioButton

FORMATS = [("qcow2", "qcow2"), ("raw", "raw")]


def pool_label(pool: PoolInfo) -> str:
    """``default (86.0 GiB free of 100.0 GiB)``."""
    return f"{pool.name} ({fmt_bytes(pool.available)} free of {fmt_bytes(pool.capacity)})"


@dataclass
class NewVolume:
    """What the fields hold. ``size`` is None when the text is not a size."""

    pool: PoolInfo | None
    size: int | None
    fmt: str
    provisioning: str  # "thin" or "thick"
    name: str  # "" when not given


class NewVolumeFields(Vertical):
    """The new-volume fields (ids ``vol-pool``, ``vol-size``, ``vol-format``,
    ``vol-thin``/``vol-thick``, ``vol-name``), the plan line (``vol-plan``:
    what the host will hold now and at most) and the warning line
    (``vol-warning``: a thick volume the pool cannot hold, thin volumes
    that overcommit it), both kept current as the fields change.

    ``pools`` are offered (the active ones) unless ``fixed_pool`` is given;
    the error lines under the fields are named ``field_prefix`` + ``pool``,
    ``size``, ``format``, ``name`` (the wizard's are ``disks[0].size`` ...).
    """

    def __init__(self, pools: list[PoolInfo] | None = None, *, fixed_pool: PoolInfo | None = None,
                 size: str = "", name: str = "", name_placeholder: str = "", name_optional: bool = False,
                 field_prefix: str = "", compact: bool = False, **kw) -> None:
        super().__init__(**kw)
        self.pools = list(pools or [])
        self.fixed_pool = fixed_pool
        self._initial = (size, name, name_placeholder)
        self.name_optional = name_optional
        self.prefix = field_prefix
        self._compact = compact
        self.set_class(compact, "-compact")

    def _options(self) -> list[tuple[str, str]]:
        return [(pool_label(p), p.name) for p in self.pools if p.active]

    def compose(self) -> ComposeResult:
        c, p = self._compact, self.prefix
        size, name, placeholder = self._initial
        if self.fixed_pool is None:
            opts = self._options()
            first = {"value": opts[0][1]} if opts else {}
            yield from labelled("Pool", Select(opts, id="vol-pool", prompt="(no active pool)", compact=c, **first),
                                f"{p}pool")
        else:
            yield Label("Pool", classes="field-label")
            yield Static(escape(pool_label(self.fixed_pool)), id="vol-pool-fixed")
        with Horizontal(classes="row"):
            with Vertical():
                yield from labelled("Size (e.g. 20G, 512M, 1.5T)", Input(size, id="vol-size", compact=c),
                                    f"{p}size")
            with Vertical():
                yield from labelled("Format", Select(FORMATS, id="vol-format", allow_blank=False, value="qcow2",
                                                     compact=c), f"{p}format")
        with RadioSet(id="vol-prov"):
            yield RadioButton("Thin: allocate on write (sparse)", id="vol-thin", value=True)
            yield RadioButton("Thick: allocate everything now (fallocate)", id="vol-thick")
        yield Static("", id="vol-plan")
        yield Static("", id="vol-warning", classes="warning")
        label = "Volume name (optional)" if self.name_optional else "Volume name"
        yield from labelled(label, Input(name, id="vol-name", placeholder=placeholder, compact=c),
                            f"{p}name")

    def on_mount(self) -> None:
        self.update_plan()

    # --- what the fields hold --------------------------------------------

    @property
    def pool(self) -> PoolInfo | None:
        if self.fixed_pool is not None:
            return self.fixed_pool
        sel = self.query_one("#vol-pool", Select)
        return None if sel.is_blank() else next((p for p in self.pools if p.name == sel.value), None)

    @property
    def fmt(self) -> str:
        return str(self.query_one("#vol-format", Select).value)

    @property
    def provisioning(self) -> str:
        return "thick" if self.query_one("#vol-thick", RadioButton).value else "thin"

    @property
    def name_input(self) -> Input:
        return self.query_one("#vol-name", Input)

    def read(self) -> tuple[NewVolume, dict[str, str]]:
        """The values, and the error of a size that is not one (by field name)."""
        errors: dict[str, str] = {}
        try:
            size: int | None = parse_size(self.query_one("#vol-size", Input).value, "G")
        except ValueError as err:
            size = None
            errors[f"{self.prefix}size"] = str(err)
        return NewVolume(self.pool, size, self.fmt, self.provisioning, self.name_input.value.strip()), errors

    def set_pools(self, pools: list[PoolInfo]) -> None:
        """New pools to offer; the chosen one stays if it still can be."""
        self.pools = list(pools)
        if self.fixed_pool is not None:
            return
        sel = self.query_one("#vol-pool", Select)
        opts = self._options()
        sel.set_options(opts)
        if opts and sel.is_blank():
            sel.value = opts[0][1]

    def load(self, *, size: int, fmt: str, provisioning: str, name: str = "", pool: str | None = None) -> None:
        """Show these values (a pool that is not offered is left as it is)."""
        self.query_one("#vol-size", Input).value = str(format_size(size))
        self.query_one("#vol-format", Select).value = fmt
        if pool and self.fixed_pool is None and any(o[1] == pool for o in self._options()):
            self.query_one("#vol-pool", Select).value = pool
        self.query_one(f"#vol-{provisioning}", RadioButton).value = True
        self.name_input.value = name
        self.update_plan()

    # --- the plan -------------------------------------------------------------

    @on(Input.Changed, "#vol-size")
    @on(Select.Changed)
    @on(RadioSet.Changed, "#vol-prov")
    def _changed(self) -> None:
        self.update_plan()

    def update_plan(self) -> DiskPlan | None:
        """Say what the host will hold, and warn; None (and nothing said)
        without a pool or a size."""
        plan_w, warn_w = self.query_one("#vol-plan", Static), self.query_one("#vol-warning", Static)
        volume, errors = self.read()
        if volume.pool is None or volume.size is None:
            plan_w.update("")
            warn_w.update("")
            return None
        plan = plan_new_disk(volume.pool, volume.size, volume.provisioning, volume.fmt)
        plan_w.update(f"The host will hold {fmt_bytes(plan.now)} now and at most {fmt_bytes(plan.at_most)}.")
        warn_w.update(escape(plan.error or plan.warning or ""))
        return plan
