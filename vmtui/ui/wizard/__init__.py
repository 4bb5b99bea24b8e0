"""The New-VM wizard: virt-manager's five steps, keyboard first.

1. install source  2. operating system  3. memory and CPUs  4. storage
5. name, network and finish — then optionally "Customize configuration
before install", then the VM is created by ``vmtui.core.create.installer``.

Every step fills the shared :class:`VmSpec`; validation comes from
``vmtui.core.create.vmspec_yaml.validate_spec`` (the same rules as ``vmtui create``)
and each message is shown under the field that caused it.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from rich.markup import escape
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.suggester import SuggestFromList
from textual.widget import Widget
from textual.widgets import (
    Button,
    Checkbox,
    ContentSwitcher,
    Footer,
    Input,
    Label,
    OptionList,
    ProgressBar,
    RadioButton,
    RadioSet,
    Select,
    Static,
    TextArea,
)
from textual.widgets.option_list import Option

from ...core.errors import VmtuiError
from ...core.connection.service import LibvirtService
from ...core.sizes import fmt_bytes, parse_size
from ...core.create.vmspec import DiskSpec, InstallSource, NicSpec, VmSpec
from ..forms import FieldError, field_id, labelled  # noqa: F401 (field_id: used by the tests)

log = logging.getLogger(__name__)

GiB = 1024 ** 3


@dataclass
class HostContext:
    """What the wizard knows about the host, loaded once off the loop."""

    pools: list = field(default_factory=list)  # storage.PoolInfo
    iso_volumes: list[str] = field(default_factory=list)  # "pool/volume" of ISO volumes
    image_volumes: list[str] = field(default_factory=list)  # "pool/volume" of disk images
    networks: list = field(default_factory=list)  # networks.NetworkInfo
    interfaces: list[str] = field(default_factory=list)
    caps: Any = None  # domcaps.HostCaps
    osdb: Any = None  # osinfo.OsDb
    existing_names: set[str] = field(default_factory=set)
    pool_volumes: dict[str, list[str]] = field(default_factory=dict)
    host_memory_mib: int = 0
    host_cpus: int = 0
    local: bool = True  # the host's files are this machine's files


async def load_context(service: LibvirtService) -> HostContext:
    from ...core.host import inventory
    from ...core.create import osinfo
    from ...core.host.domcaps import host_caps
    from ...core.create.installer import is_local_uri

    ctx = HostContext()
    ctx.existing_names = {d.name for d in service.domains.values()}
    ctx.host_memory_mib = service.host.memory_total_kib // 1024
    ctx.host_cpus = service.host.cpus
    ctx.local = is_local_uri(service.uri)
    inv = await service.call(inventory.read_inventory, action="read pools and networks of",
                             obj=service.display_uri)
    ctx.pools, ctx.networks, ctx.interfaces = inv.pools, inv.networks, inv.interfaces
    ctx.iso_volumes, ctx.image_volumes = inv.iso_volumes, inv.image_volumes
    ctx.pool_volumes = inv.volume_names()
    ctx.caps = await host_caps(service)
    ctx.osdb = await asyncio.to_thread(osinfo.default_db)
    return ctx


def validate_with_context(spec: VmSpec, service: LibvirtService, ctx: HostContext, os_info=None) -> list:
    from ...core.create.vmspec_yaml import PoolFacts, local_path_checker, validate_spec
    pools = {p.name: PoolFacts(volumes=ctx.pool_volumes.get(p.name, ()), available=p.available, active=p.active,
                               path=p.path) for p in ctx.pools}
    return validate_spec(spec, host=ctx.caps or service.host, existing_names=ctx.existing_names,
                         pools=pools or None, networks=[n.name for n in ctx.networks] or None,
                         check_path=local_path_checker if ctx.local else None, osinfo=os_info)


# --- steps -----------------------------------------------------------------


class Step(VerticalScroll):
    """One page of the wizard."""

    title = ""
    owns: tuple[str, ...] = ()  # field-name prefixes whose errors belong here

    def __init__(self, wizard: "NewVmWizard", **kw) -> None:
        super().__init__(**kw)
        self.wizard = wizard

    @property
    def spec(self) -> VmSpec:
        return self.wizard.spec

    @property
    def ctx(self) -> HostContext:
        return self.wizard.ctx

    def applies(self) -> bool:
        """Whether this step is shown for the answers so far (optional steps)."""
        return True

    def load(self) -> None:
        """Show what the spec holds."""

    def refresh_context(self) -> None:
        """The host context (pools, networks, OS list) arrived or changed."""

    def save(self) -> dict[str, str]:
        """Copy the fields into the spec; return parse errors by field."""
        return {}

    def owns_field(self, name: str) -> bool:
        return any(name == p or name.startswith(p + ".") or name.startswith(p + "[") for p in self.owns)

    def show_errors(self, errors: dict[str, str]) -> list[str]:
        """Put each message under its field; return those with no field here."""
        leftovers = []
        shown = set()
        for w in self.query(FieldError):
            msg = errors.get(w.field_name)
            w.set(msg)
            if msg:
                shown.add(w.field_name)
        for name, msg in errors.items():
            if name not in shown:
                leftovers.append(f"{name}: {msg}" if name else msg)
        general = self.query("#step-errors")
        if general:
            general.first(Static).update(escape("\n".join(leftovers)))
            general.first(Static).display = bool(leftovers)
        return leftovers

    def compose_errors(self) -> Static:
        s = Static("", id="step-errors", classes="field-error")
        s.display = False
        return s


SOURCES = [
    ("iso", "Local install media: an ISO file or an ISO volume of a pool"),
    ("cdrom", "The host's CD-ROM / DVD drive"),
    ("url", "Network install: HTTP, HTTPS or FTP install tree"),
    ("import", "Import an existing disk image"),
    ("pxe", "PXE boot from a network"),
    ("cloud", "Cloud image (qcow2/raw) with a cloud-init seed"),
]


def cloudinit_widgets() -> list[Widget]:
    """The cloud-init part of the cloud-image source (the seed the VM gets)."""
    return [Label("cloud-init seed (NoCloud: users, SSH keys, hostname, packages…)", classes="field-label"),
            Horizontal(Button("Edit cloud-init…", id="cloudinit-edit"),
                       Static("default: the VM name as hostname", id="cloudinit-summary"), classes="row"),
            Checkbox("Remove the seed CD-ROM after the first boot", id="cloudinit-detach"),
            FieldError("install.cloud_init")]


def cloudinit_summary(ci: dict | None) -> str:
    if not ci:
        return "default: the VM name as hostname"
    import yaml

    from ...core.files import safeyaml
    try:
        data = safeyaml.load(ci.get("user_data") or "") or {}
    except yaml.YAMLError:
        data = {}
    if not isinstance(data, dict):
        return "custom user-data (not cloud-config)"
    bits = [f"hostname {data['hostname']}"] if data.get("hostname") else []
    users = data.get("users") if isinstance(data.get("users"), list) else []
    if users:
        bits.append(f"{len(users)} user{'s' if len(users) != 1 else ''}")
    if isinstance(data.get("packages"), list) and data["packages"]:
        bits.append(f"{len(data['packages'])} packages")
    if ci.get("network_config"):
        bits.append("network-config")
    return "custom: " + (", ".join(bits) or f"{len(data)} settings")


def cloudinit_save(step: "Step") -> dict | None:
    ci = getattr(step, "_cloud_init", None) or step.spec.install.cloud_init
    detach = step.query_one("#cloudinit-detach", Checkbox).value
    if ci is None and detach:  # default documents, filled in at creation
        ci = {"user_data": "", "meta_data": "", "network_config": None}
    return dict(ci, detach_after_first_boot=detach) if ci is not None else None


class SourceStep(Step):
    title = "Install source"
    owns = ("install",)

    @on(Button.Pressed, "#cloudinit-edit")
    def _edit_cloudinit(self) -> None:
        from ...core.provision.seed import CloudInitDocs
        from ..cloudinit_editor import CloudInitEditorScreen
        current = cloudinit_save(self)

        def done(docs: CloudInitDocs | None) -> None:
            if docs is None:
                return
            self._cloud_init = docs.to_spec(self.query_one("#cloudinit-detach", Checkbox).value)
            self.query_one("#cloudinit-summary", Static).update(escape(cloudinit_summary(self._cloud_init)))

        # a name the user has not typed yet is filled in (meta-data local-hostname) at creation
        hostname = self.spec.name if self.wizard._named_by_user else ""
        self.app.push_screen(CloudInitEditorScreen(self.wizard.service, hostname=hostname,
                                                   initial=CloudInitDocs.from_spec(current)), done)

    def owns_field(self, name: str) -> bool:
        return not name.startswith("install.kickstart") and super().owns_field(name)

    def compose(self) -> ComposeResult:
        yield Label("How will the operating system be installed?", classes="step-question")
        with RadioSet(id="source-kind"):
            for kind, label in SOURCES:
                yield RadioButton(label, id=f"src-{kind}", value=kind == "iso")
        with Vertical(id="src-iso-box", classes="src-box"):
            yield from labelled("ISO path or pool/volume", Input(id="iso", placeholder="/var/lib/libvirt/images/x.iso"),
                                "install.iso", "Type a path, or start typing a pool name for its ISO volumes.")
        with Vertical(id="src-cdrom-box", classes="src-box"):
            yield from labelled("CD-ROM device", Input("/dev/sr0", id="cdrom"), "install.cdrom")
        with Vertical(id="src-url-box", classes="src-box"):
            yield from labelled("Install tree URL", Input(id="url", placeholder="https://deb.debian.org/debian/dists/bookworm/main/installer-amd64/"),
                                "install.url")
            yield from labelled("Kernel arguments (optional)", Input(id="kernel-args", placeholder="console=ttyS0 inst.text"),
                                "install.kernel_args")
        with Vertical(id="src-import-box", classes="src-box"):
            yield from labelled("Disk image path or pool/volume", Input(id="image"), "install.image",
                                "The VM boots from this disk; no installer runs.")
        with Vertical(id="src-pxe-box", classes="src-box"):
            yield from labelled("Network to boot from", Select([], id="pxe-network", allow_blank=True), "install.network")
        with Vertical(id="src-cloud-box", classes="src-box"):
            yield from labelled("Cloud image path or pool/volume", Input(id="cloud-image"), "install.cloud_image",
                                "The new disk is a thin qcow2 overlay on this image (the image is not changed).")
            yield from cloudinit_widgets()
        yield self.compose_errors()

    def on_mount(self) -> None:
        self.refresh_context()
        self._show_box()

    def refresh_context(self) -> None:
        isos = self.ctx.iso_volumes
        self.query_one("#iso", Input).suggester = SuggestFromList(isos, case_sensitive=False) if isos else None
        images = self.ctx.image_volumes
        for wid in ("#image", "#cloud-image"):
            self.query_one(wid, Input).suggester = SuggestFromList(images, case_sensitive=False) if images else None
        nets = [(n.label, n.name) for n in self.ctx.networks]
        self.query_one("#pxe-network", Select).set_options(nets)

    @property
    def kind(self) -> str:
        rs = self.query_one("#source-kind", RadioSet)
        pressed = rs.pressed_button
        return pressed.id.removeprefix("src-") if pressed and pressed.id else "iso"

    @on(RadioSet.Changed, "#source-kind")
    def _kind_changed(self) -> None:
        self._show_box()

    def _show_box(self) -> None:
        kind = self.kind
        for k, _ in SOURCES:
            self.query_one(f"#src-{k}-box").display = k == kind

    def load(self) -> None:
        src = self.spec.install
        self.query_one(f"#src-{src.kind}", RadioButton).value = True
        self.query_one("#iso", Input).value = src.iso or ""
        self.query_one("#cdrom", Input).value = src.cdrom or "/dev/sr0"
        self.query_one("#url", Input).value = src.url or ""
        self.query_one("#kernel-args", Input).value = src.kernel_args or ""
        if src.kind == "cloud":
            self.query_one("#cloud-image", Input).value = src.image or ""
            self._cloud_init = src.cloud_init
            self.query_one("#cloudinit-detach", Checkbox).value = bool((src.cloud_init or {}).get(
                "detach_after_first_boot"))
            self.query_one("#cloudinit-summary", Static).update(escape(cloudinit_summary(src.cloud_init)))
        else:
            self.query_one("#image", Input).value = src.image or ""
        if src.network:
            try:
                self.query_one("#pxe-network", Select).value = src.network
            except Exception:
                pass
        self._show_box()

    def save(self) -> dict[str, str]:
        kind = self.kind
        errors: dict[str, str] = {}
        src = InstallSource(kind=kind)  # type: ignore[arg-type]
        val = lambda wid: self.query_one(wid, Input).value.strip()  # noqa: E731
        if kind == "iso":
            src.iso = val("#iso") or None
        elif kind == "cdrom":
            src.cdrom = val("#cdrom") or None
        elif kind == "url":
            src.url = val("#url") or None
            src.kernel_args = val("#kernel-args")
        elif kind == "import":
            src.image = val("#image") or None
        elif kind == "pxe":
            sel = self.query_one("#pxe-network", Select)
            src.network = None if sel.is_blank() else str(sel.value)
        elif kind == "cloud":
            src.image = val("#cloud-image") or None
            if not src.image:
                errors["install.cloud_image"] = "Give the cloud image to start from"
        src.cloud_init = cloudinit_save(self) if kind == "cloud" else None
        src.kickstart = self.spec.install.kickstart
        self.spec.install = src
        self.wizard.source_changed()
        return errors


class OsStep(Step):
    title = "Operating system"
    owns = ("os",)

    def compose(self) -> ComposeResult:
        yield Label("Which operating system will the VM run?", classes="step-question")
        yield Static("", id="os-note", classes="warning")
        with Horizontal(classes="row"):
            yield Input(id="os-search", placeholder="search: debian 12, fedora, windows server…")
            yield Button("Detect from media", id="detect", variant="default")
        yield OptionList(id="os-list")
        yield Static("", id="os-chosen")
        yield FieldError("os")
        yield self.compose_errors()

    def on_mount(self) -> None:
        self.refresh_context()

    def refresh_context(self) -> None:
        db = self.ctx.osdb
        note = self.query_one("#os-note", Static)
        if db is None:
            note.update("Loading the OS list…")
            return
        note.update(escape(db.note) if getattr(db, "note", "") and not db.available else "")
        note.display = bool(note.content)
        self.fill(self.query_one("#os-search", Input).value)

    def fill(self, text: str) -> None:
        db = self.ctx.osdb
        if db is None:
            return
        found = db.search(text) if text.strip() else db.all()
        ol = self.query_one("#os-list", OptionList)
        ol.clear_options()
        for os_ in found[:300]:
            label = os_.label + ("  [EOL]" if getattr(os_, "eol", False) else "")
            ol.add_option(Option(escape(label), id=os_.short_id))
        current = self.spec.os
        try:
            ol.highlighted = next(i for i, o in enumerate(found[:300]) if o.short_id == current)
        except StopIteration:
            ol.highlighted = 0 if found else None

    @on(Input.Changed, "#os-search")
    def _search(self, event: Input.Changed) -> None:
        self.fill(event.value)

    @on(Input.Submitted, "#os-search")
    def _search_done(self) -> None:
        self.query_one("#os-list", OptionList).focus()

    @on(OptionList.OptionHighlighted, "#os-list")
    def _highlight(self, event: OptionList.OptionHighlighted) -> None:
        if event.option.id:
            self.choose(event.option.id, announce=False)

    @on(OptionList.OptionSelected, "#os-list")
    def _selected(self, event: OptionList.OptionSelected) -> None:
        if event.option.id:
            self.choose(event.option.id)
            self.wizard.action_next()

    def choose(self, short_id: str, announce: bool = True) -> None:
        db = self.ctx.osdb
        os_ = db.get(short_id) if db else None
        if os_ is None:
            return
        self.wizard.set_os(os_)
        rec = os_.recommended
        bits = [f"Chosen: {os_.label}"]
        if rec.ram_mib:
            bits.append(f"recommended {fmt_bytes(rec.ram_mib * 1024 * 1024)} RAM")
        if rec.vcpus:
            bits.append(f"{rec.vcpus} CPUs")
        if rec.storage_bytes:
            bits.append(f"{fmt_bytes(rec.storage_bytes)} disk")
        self.query_one("#os-chosen", Static).update(escape(", ".join(bits)))

    @on(Button.Pressed, "#detect")
    def _detect_pressed(self) -> None:
        self.detect()

    @work(exclusive=True, group="detect")
    async def detect(self) -> None:
        src = self.spec.install
        db = self.ctx.osdb
        err = self.query_one(FieldError)
        try:
            if src.kind == "iso" and src.iso:
                path = await self.wizard.local_path_of(src.iso)
                found = await asyncio.to_thread(db.detect_iso, path)
            elif src.kind == "url" and src.url:
                text = await asyncio.to_thread(fetch_treeinfo, src.url)
                found = db.detect_tree(text)
            else:
                err.set("Detection reads an ISO or an install tree: choose one as the install source first")
                return
        except (OSError, ValueError, VmtuiError) as e:
            err.set(f"Could not read the media: {e}")
            return
        if found is None:
            err.set("The media did not match any OS in osinfo-db: pick one from the list")
            return
        err.set(None)
        self.query_one("#os-search", Input).value = ""
        self.fill("")
        self.choose(found.os.short_id)
        ol = self.query_one("#os-list", OptionList)
        for i in range(ol.option_count):
            if ol.get_option_at_index(i).id == found.os.short_id:
                ol.highlighted = i
                break
        self.notify(f"Detected {found.os.label}", timeout=4)

    def load(self) -> None:
        self.refresh_context()

    def save(self) -> dict[str, str]:
        if not self.spec.os:
            return {"os": "Choose an operating system (or 'generic')"}
        self.wizard.kickstart_changed()  # on leaving the step, not while browsing the list
        return {}


def fetch_treeinfo(url: str, timeout: float = 15.0) -> str:
    import urllib.parse
    import urllib.request
    base = url if url.endswith("/") else url + "/"
    if urllib.parse.urlsplit(base).scheme not in ("http", "https", "ftp"):
        raise ValueError("only http, https and ftp install trees are supported")
    last: Exception | None = None
    for name in (".treeinfo", "treeinfo"):
        try:
            with urllib.request.urlopen(base + name, timeout=timeout) as resp:  # noqa: S310 (scheme checked)
                return resp.read(1 << 20).decode("utf-8", "replace")
        except OSError as e:
            last = e
    raise OSError(f"no .treeinfo at {base} ({last})")


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


NIC_MODELS = [("virtio", "virtio"), ("e1000e", "e1000e"), ("e1000", "e1000"), ("rtl8139", "rtl8139")]
MACVTAP_MODES = [("bridge", "bridge"), ("vepa", "vepa"), ("private", "private"), ("passthrough", "passthrough")]


class FinishStep(Step):
    title = "Name, network and finish"
    owns = ("name", "nics", "title")

    def compose(self) -> ComposeResult:
        yield from labelled("Name", Input(id="name"), "name",
                            "Letters, digits and - _ . +; it must be unique on the host.")
        yield Label("Network", classes="field-label")
        yield Select([], id="net-source", prompt="(choose a network)")
        yield FieldError("nics[0].source")
        with Vertical(id="bridge-box"):
            yield from labelled("Bridge device", Input(id="bridge", placeholder="br0"), "nics[0].bridge")
        with Vertical(id="macvtap-box"):
            with Horizontal(classes="row"):
                with Vertical():
                    yield from labelled("Host interface", Input(id="macvtap-dev", placeholder="eth0"), "nics[0].dev")
                with Vertical():
                    yield from labelled("Mode", Select(MACVTAP_MODES, id="macvtap-mode", allow_blank=False,
                                                       value="bridge"))
            yield Static("macvtap: the guest cannot talk to this host through it (host↔guest traffic is "
                         "blocked by design); other machines on the network can reach it.", classes="warning")
        with Horizontal(classes="row"):
            with Vertical():
                yield from labelled("MAC address (blank: generated)", Input(id="mac", placeholder="52:54:00:…"),
                                    "nics[0].mac")
            with Vertical():
                yield from labelled("NIC model", Select(NIC_MODELS, id="nic-model", allow_blank=False,
                                                        value="virtio"))
        yield Checkbox("Customize configuration before install", id="customize")
        yield Label("Summary", classes="field-label")
        yield Static("", id="summary")
        yield self.compose_errors()

    def on_mount(self) -> None:
        self.refresh_context()

    def refresh_context(self) -> None:
        opts = [(f"Virtual network '{n.name}': {n.mode_label}" + ("" if n.active else " (inactive)"), f"net:{n.name}")
                for n in self.ctx.networks]
        opts += [("Bridge device…", "bridge:"), ("Macvtap on a host interface…", "macvtap:"),
                 ("No network", "none:")]
        sel = self.query_one("#net-source", Select)
        sel.set_options(opts)
        sel.value = opts[0][1]
        sugg = SuggestFromList(self.ctx.interfaces, case_sensitive=True) if self.ctx.interfaces else None
        self.query_one("#bridge", Input).suggester = sugg
        self.query_one("#macvtap-dev", Input).suggester = sugg
        self._show()

    @property
    def source(self) -> str:
        sel = self.query_one("#net-source", Select)
        return "none:" if sel.is_blank() else str(sel.value)

    @on(Select.Changed, "#net-source")
    def _net_changed(self) -> None:
        self._show()
        self.update_summary()

    @on(Input.Changed)
    @on(Checkbox.Changed)
    def _changed(self) -> None:
        self.update_summary()

    def _show(self) -> None:
        kind = self.source.split(":", 1)[0]
        self.query_one("#bridge-box").display = kind == "bridge"
        self.query_one("#macvtap-box").display = kind == "macvtap"

    def load(self) -> None:
        self.query_one("#name", Input).value = self.spec.name
        nic = self.spec.nics[0] if self.spec.nics else None
        sel = self.query_one("#net-source", Select)
        try:
            if nic is None:
                sel.value = "none:"
            elif nic.kind == "network":
                sel.value = f"net:{nic.source}"
            elif nic.kind == "bridge":
                sel.value = "bridge:"
                self.query_one("#bridge", Input).value = nic.source
            else:
                sel.value = "macvtap:"
                self.query_one("#macvtap-dev", Input).value = nic.source
                self.query_one("#macvtap-mode", Select).value = nic.mode
        except Exception:  # a network that no longer exists: keep the first option
            pass
        if nic is not None:
            self.query_one("#mac", Input).value = nic.mac or ""
            try:
                self.query_one("#nic-model", Select).value = nic.model
            except Exception:
                pass
        self._show()
        self.update_summary()

    def save(self) -> dict[str, str]:
        errors: dict[str, str] = {}
        self.spec.name = self.query_one("#name", Input).value.strip()
        kind, _, rest = self.source.partition(":")
        mac = self.query_one("#mac", Input).value.strip().lower() or None
        model = str(self.query_one("#nic-model", Select).value)
        if kind == "none":
            self.spec.nics = []
        elif kind == "net":
            self.spec.nics = [NicSpec("network", rest, mac=mac, model=model)]
        elif kind == "bridge":
            br = self.query_one("#bridge", Input).value.strip()
            if not br:
                errors["nics[0].bridge"] = "Give the host bridge device, e.g. br0"
            self.spec.nics = [NicSpec("bridge", br, mac=mac, model=model)]
        else:
            dev = self.query_one("#macvtap-dev", Input).value.strip()
            if not dev:
                errors["nics[0].dev"] = "Give the host interface for macvtap, e.g. eth0"
            mode = str(self.query_one("#macvtap-mode", Select).value)
            self.spec.nics = [NicSpec("macvtap", dev, mode=mode, mac=mac, model=model)]  # type: ignore[arg-type]
        if self.spec.install.kind == "pxe" and not self.spec.nics:
            errors["nics[0].source"] = "PXE boot needs a network interface"
        return errors

    @property
    def customize(self) -> bool:
        return self.query_one("#customize", Checkbox).value

    def update_summary(self) -> None:
        self.query_one("#summary", Static).update(escape(self.wizard.summary_text()))


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
        from ...core.create.vmspec_yaml import kickstart_problems
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


STEP_CLASSES = [SourceStep, OsStep, ResourcesStep, StorageStep, KickstartStep, FinishStep]


# --- the wizard screen -----------------------------------------------------


class NewVmWizard(Screen):
    """`n` on the domain list opens it."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel"),
        Binding("alt+b", "back", "Back"),
        Binding("alt+f,ctrl+n", "next", "Next"),
        Binding("ctrl+s", "save_spec", "Save spec"),
        Binding("f2", "preview", "XML/virt-install"),
    ]

    def __init__(self, service: LibvirtService, spec: VmSpec | None = None) -> None:
        super().__init__()
        self.service = service
        self.spec = spec or VmSpec(name="")
        self.ctx = HostContext()
        self.os_info = None
        self.index = 0
        self.steps: list[Step] = [cls(self, id=f"step-{i}") for i, cls in enumerate(STEP_CLASSES)]
        self._named_by_user = bool(spec and spec.name)
        self._acknowledged: set[tuple[str, str]] = set()

    def compose(self) -> ComposeResult:
        yield Static("", id="wizard-title", classes="screen-title")
        with ContentSwitcher(initial="step-0", id="steps"):
            yield from self.steps
        with Horizontal(classes="wizard-buttons"):
            yield Button("Back", id="back")
            yield Button("Next", id="next", variant="primary")
            yield Button("Cancel", id="cancel")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self._update_title()
        self.load()

    @work(exclusive=True, group="wizard-load")
    async def load(self) -> None:
        try:
            self.ctx = await load_context(self.service)
        except VmtuiError as err:
            self.notify(err.message, title="New VM", severity="error", timeout=12)
            self.ctx = HostContext(host_memory_mib=self.service.host.memory_total_kib // 1024,
                                   host_cpus=self.service.host.cpus)
        self.apply_host_defaults()
        for step in self.steps:
            step.refresh_context()
        self.steps[self.index].load()
        self.focus_step()

    def apply_host_defaults(self) -> None:
        caps = self.ctx.caps
        spec = self.spec
        if caps is not None:
            spec.virt_type = "kvm" if getattr(caps, "kvm_available", False) else "qemu"
            if spec.virt_type == "qemu" and spec.cpu_mode == "host-passthrough":
                spec.cpu_mode = "host-model"  # libvirt refuses host-passthrough under TCG
        if self.ctx.osdb is not None and spec.os:
            self.os_info = self.ctx.osdb.get(spec.os)
        if not spec.name:
            spec.name = self.unique_name(spec.os if spec.os and spec.os != "generic" else "vm")
        if self.spec.disks and self.spec.disks[0].mode == "new" and self.ctx.pools:
            names = [p.name for p in self.ctx.pools if p.active]
            if names and self.spec.disks[0].pool not in names:
                self.spec.disks[0].pool = names[0]
        if self.spec.nics and self.spec.nics[0].kind == "network":
            nets = [n.name for n in self.ctx.networks]
            if nets and self.spec.nics[0].source not in nets:
                self.spec.nics[0].source = nets[0]
            elif not nets:
                self.spec.nics = []

    def focus_step(self) -> None:
        step = self.steps[self.index]
        for widget in step.query("RadioSet, Input, OptionList, Select"):
            if widget.display and widget.focusable:
                widget.focus()
                return

    def _update_title(self) -> None:
        step = self.steps[self.index]
        shown = [i for i, st in enumerate(self.steps) if st.applies() or i == self.index]
        self.query_one("#wizard-title", Static).update(
            f" New VM — step {shown.index(self.index) + 1} of {len(shown)}: {step.title}")
        self.query_one("#back", Button).disabled = self.index == 0
        self.query_one("#next", Button).label = "Finish" if self.index == len(self.steps) - 1 else "Next"

    # --- what other steps change ------------------------------------------

    def set_os(self, os_) -> None:
        """A new OS: its recommended memory, CPUs, disk size and devices."""
        from ...core.create.osinfo import recommended_defaults
        changed = self.os_info is None or os_.short_id != getattr(self.os_info, "short_id", None)
        self.os_info = os_
        self.spec.os = os_.short_id
        if not changed:
            return
        rec = recommended_defaults(os_, self.ctx.host_memory_mib or 4096, self.ctx.host_cpus or 2)
        if rec.ram_mib:
            self.spec.memory_mib = rec.ram_mib
            self.spec.max_memory_mib = None
        if rec.vcpus:
            self.spec.vcpus = rec.vcpus
        if rec.storage_bytes and self.spec.disks and self.spec.disks[0].mode == "new":
            self.spec.disks[0].size = rec.storage_bytes
        virtio = bool(getattr(os_, "virtio", True))
        for d in self.spec.disks:
            d.bus = "virtio" if virtio else "sata"
        for n in self.spec.nics:
            n.model = "virtio" if getattr(os_, "virtio_net", virtio) else "e1000e"
        if getattr(os_, "is_windows", False):
            self.spec.graphics = "spice"
        if not self._named_by_user:
            self.spec.name = self.unique_name(os_.short_id or "vm")

    def kickstart_changed(self) -> None:
        """The source or OS changed: a kickstart follows the delivery, or goes."""
        ks = self.spec.install.kickstart
        if not ks:
            return
        if not kickstart_applies(self.spec, self.os_info):
            self.spec.install.kickstart = None
            self.notify("The kickstart was dropped: it is only used by ISO, CD-ROM and network installs "
                        "of Anaconda-based OSes.", title="New VM", severity="warning", timeout=6)
            return
        from ...core.provision.kickstart import delivery_for
        ks["delivery"] = delivery_for(self.spec.install.kind)[0]

    def source_changed(self) -> None:
        self.kickstart_changed()
        kind = self.spec.install.kind
        if kind == "import" and self.spec.install.image:
            self.spec.disks = [DiskSpec(mode="existing", path=self.spec.install.image,
                                        bus=self.spec.disks[0].bus if self.spec.disks else "virtio")]
        elif kind == "cloud":
            base = self.spec.disks[0] if self.spec.disks else DiskSpec()
            self.spec.disks = [replace(base, mode="new", format="qcow2", provisioning="thin",
                                       backing=self.spec.install.image, path=None)]
        elif self.spec.disks and self.spec.disks[0].backing:
            self.spec.disks[0].backing = None

    def unique_name(self, base: str) -> str:
        base = "".join(c if c.isalnum() or c in "-_.+" else "-" for c in base).strip("-") or "vm"
        name, n = base, 1
        while name in self.ctx.existing_names:
            n += 1
            name = f"{base}-{n}"
        return name

    async def local_path_of(self, ref: str) -> str:
        """A path this machine can read for an ISO given as a path or pool/volume."""
        from ...core import storage
        if not self.ctx.local:
            raise VmtuiError("read", f"'{ref}'", "the host is remote: detection needs a local file")
        if ref.startswith("/"):
            return ref
        vol = await self.service.call(lambda c: storage.find_volume(c, ref), action="find volume", obj=ref)
        if vol is None:
            raise VmtuiError("find", f"volume '{ref}'", "no such volume")
        return vol.path

    def summary_text(self) -> str:
        s = self.spec
        src = s.install
        what = {"iso": f"ISO {src.iso}", "cdrom": f"CD-ROM {src.cdrom}", "url": f"network install {src.url}",
                "import": f"import {src.image}", "pxe": f"PXE on network {src.network}",
                "cloud": f"cloud image {src.image}"}.get(src.kind, src.kind)
        if src.kind == "cloud":
            what += f" + cloud-init seed ({cloudinit_summary(src.cloud_init)})"
        os_label = self.os_info.label if self.os_info is not None else s.os
        lines = [f"Install: {what}", f"OS: {os_label}",
                 f"Memory: {fmt_bytes(s.memory_mib * 1024 * 1024)}, CPUs: {s.vcpus}",
                 f"Hypervisor: {'KVM' if s.virt_type == 'kvm' else 'QEMU (TCG)'}, {s.machine}, "
                 f"{'UEFI' if s.firmware == 'uefi' else 'BIOS'}"]
        for d in s.disks:
            if d.mode == "new":
                lines.append(f"Disk: new {d.provisioning} {d.format} {fmt_bytes(d.size)} in pool '{d.pool}'"
                             + (f" over {d.backing}" if d.backing else ""))
            else:
                lines.append(f"Disk: existing {d.path}")
        if not s.disks:
            lines.append("Disk: none")
        for n in s.nics:
            lines.append(f"Network: {n.kind} {n.source}" + (f" ({n.mode})" if n.kind == "macvtap" else "")
                         + f", {n.model}" + (f", MAC {n.mac}" if n.mac else ""))
        if not s.nics:
            lines.append("Network: none")
        if src.kickstart:
            how = {"oemdrv": "OEMDRV CD-ROM", "initrd": "in the initrd"}.get(src.kickstart.get("delivery"), "?")
            lines.append(f"Kickstart: syntax {src.kickstart.get('version')}, delivered {how}")
        return "\n".join(lines)

    # --- moving between steps -------------------------------------------

    def validate(self, spec: VmSpec | None = None) -> list:
        """The shared rules (same as `vmtui create`): FieldErrors, errors and warnings."""
        return validate_with_context(spec or self.spec, self.service, self.ctx, self.os_info)

    def validate_step(self, step: Step) -> bool:
        errors = step.save()
        if isinstance(step, FinishStep) and step.spec.name:
            self._named_by_user = True
        warnings: dict[str, str] = {}
        for fe in self.validate():
            if not step.owns_field(fe.field):
                continue
            if fe.is_error:
                errors.setdefault(fe.field, fe.message)
            else:
                warnings.setdefault(fe.field, fe.message)
        if errors:
            step.show_errors(errors)
            return False
        # A warning (more vCPUs than host CPUs, a name with spaces...) is shown on
        # its field once; Next again goes on with it.
        fresh = {k: v for k, v in warnings.items() if (k, v) not in self._acknowledged}
        step.show_errors({k: f"Warning: {v} (Next again to go on)" for k, v in fresh.items()})
        self._acknowledged |= set(fresh.items())
        return not fresh

    def action_next(self) -> None:
        step = self.steps[self.index]
        if not self.validate_step(step):
            return
        if self.index == len(self.steps) - 1:
            self.finish()
            return
        self.index += 1
        while not self.steps[self.index].applies():
            self.index += 1
        self.query_one("#steps", ContentSwitcher).current = f"step-{self.index}"
        self.steps[self.index].load()
        self._update_title()
        self.focus_step()

    def action_back(self) -> None:
        if self.index == 0:
            return
        self.steps[self.index].save()
        self.index -= 1
        while self.index > 0 and not self.steps[self.index].applies():
            self.index -= 1
        self.query_one("#steps", ContentSwitcher).current = f"step-{self.index}"
        self.steps[self.index].load()
        self._update_title()
        self.focus_step()

    def action_cancel(self) -> None:
        self.dismiss(None)

    @on(Button.Pressed, "#next")
    def _next(self) -> None:
        self.action_next()

    @on(Button.Pressed, "#back")
    def _back(self) -> None:
        self.action_back()

    @on(Button.Pressed, "#cancel")
    def _cancel(self) -> None:
        self.action_cancel()

    def validate_all(self) -> list[tuple[int, str, str]]:
        out = []
        for fe in self.validate():
            if not fe.is_error:
                continue
            idx = next((i for i, st in enumerate(self.steps) if st.owns_field(fe.field)), len(self.steps) - 1)
            out.append((idx, fe.field, fe.message))
        return out

    def finish(self) -> None:
        if self.steps[-1].customize:
            def done(result: VmSpec | None) -> None:
                if result is not None:
                    self.spec = result
                    self.create()
            self.app.push_screen(CustomizeScreen(self.service, self.spec, self.ctx), done)
        else:
            self.create()

    @work(exclusive=True, group="create")
    async def create(self) -> None:
        from ...core.create.installer import create_vm
        ci = self.spec.install.cloud_init
        if self.spec.install.kind == "cloud" and not (ci and ci.get("user_data")):
            from ...core.provision.seed import default_docs  # cloud images always get a seed
            self.spec.install.cloud_init = default_docs(self.spec.name).to_spec(
                bool(ci and ci.get("detach_after_first_boot")))
        problems = self.validate_all()
        if problems:
            idx, name, msg = problems[0]
            self.notify(f"{name}: {msg}", title="New VM", severity="error", timeout=10)
            return
        progress = CreateProgress(self.spec.name)
        await self.app.push_screen(progress)
        loop = asyncio.get_running_loop()

        def report(message: str, fraction: float | None = None) -> None:
            # called from the loop or from a storage poller thread
            loop.call_soon_threadsafe(progress.update_progress, message, fraction)

        try:
            uuid = await create_vm(self.service, self.spec, osdb=self.ctx.osdb, progress=report)
        except VmtuiError as err:
            progress.dismiss()
            self.notify(err.message, title="New VM", severity="error", timeout=15)
            return
        except Exception as err:  # never a traceback on screen
            log.exception("create failed")
            progress.dismiss()
            self.notify(f"Creating '{self.spec.name}' failed: {err}", title="New VM", severity="error", timeout=15)
            return
        progress.dismiss()
        started = " and started its installation" if self.spec.start_install else ""
        self.notify(f"Created '{self.spec.name}'{started}", title="New VM", timeout=6)
        self.dismiss(uuid)

    def action_save_spec(self) -> None:
        self.steps[self.index].save()

        def chosen(path: str | None) -> None:
            if not path:
                return
            from ...core.files.userfile import UserFileError, write_private_text
            from ...core.create.vmspec_yaml import dump_spec
            try:
                # 0600: the spec may hold password hashes (cloud-init, kickstart)
                write_private_text(Path(path).expanduser(), dump_spec(self.spec))
            except (OSError, UserFileError) as e:
                why = e.reason if isinstance(e, UserFileError) else e.strerror
                self.notify(f"Cannot write {path}: {why}", severity="error")
                return
            self.notify(f"Saved the VM spec to {path}\nCreate it later with: vmtui create --from {path}",
                        title="Save spec", timeout=8)

        default = f"{self.spec.name or 'vm'}.yaml"
        self.app.push_screen(AskPath("Save the answers as a VM spec (YAML)", default), chosen)

    def action_preview(self) -> None:
        self.steps[self.index].save()
        self.app.push_screen(PreviewScreen(self.service, self.spec))


class AskPath(ModalScreen[str | None]):
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, question: str, default: str) -> None:
        super().__init__()
        self.question = question
        self.default = default

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.question, classes="dialog-title")
            yield Input(self.default, id="path")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Save", id="ok", variant="primary")
                yield Button("Cancel", id="no")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    @on(Input.Submitted)
    @on(Button.Pressed, "#ok")
    def _ok(self) -> None:
        self.dismiss(self.query_one(Input).value.strip() or None)

    @on(Button.Pressed, "#no")
    def action_cancel(self) -> None:
        self.dismiss(None)


class CreateProgress(ModalScreen[None]):
    """Shown while volumes are allocated and the domain is defined and started."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.vm_name = name

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(f"Creating '{escape(self.vm_name)}'", classes="dialog-title")
            yield Static("Starting…", id="progress-text")
            yield ProgressBar(total=100, show_eta=False, id="progress-bar")

    def update_progress(self, message: str, fraction: float | None = None) -> None:
        self.query_one("#progress-text", Static).update(escape(message))
        bar = self.query_one(ProgressBar)
        if fraction is None:
            bar.update(total=None)
        else:
            bar.update(total=100, progress=max(0.0, min(1.0, fraction)) * 100)


class PreviewScreen(Screen):
    """The domain XML and the equivalent virt-install command line."""

    BINDINGS = [Binding("escape,q", "app.pop_screen", "Back"), Binding("t", "toggle", "Final/install XML")]

    def __init__(self, service: LibvirtService, spec: VmSpec) -> None:
        super().__init__()
        self.service = service
        self.spec = spec
        self.texts: tuple[str, str, str] | None = None
        self.show_install = False

    def compose(self) -> ComposeResult:
        yield Static(" Preview — virt-install command line and domain XML", classes="screen-title")
        yield TextArea("", read_only=True, id="virt-install", soft_wrap=True)
        yield TextArea("Building…", read_only=True, id="preview-xml", show_line_numbers=True)
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.build()

    @work(exclusive=True)
    async def build(self) -> None:
        from ...core.create.installer import preview
        try:
            self.texts = await preview(self.service, self.spec)
        except (VmtuiError, ValueError) as err:
            self.query_one("#preview-xml", TextArea).load_text(str(err))
            return
        self._show()

    def _show(self) -> None:
        if self.texts is None:
            return
        final, install, cmd = self.texts
        self.query_one("#virt-install", TextArea).load_text(cmd)
        self.query_one("#preview-xml", TextArea).load_text(install if self.show_install else final)
        self.query_one("#preview-xml", TextArea).border_title = (
            "install-time XML" if self.show_install else "persistent (final) XML")

    def action_toggle(self) -> None:
        self.show_install = not self.show_install
        self._show()


# --- customize before install ------------------------------------------------


class CustomizeScreen(Screen["VmSpec | None"]):
    """A details editor on the pending VM; "Begin installation" creates it."""

    BINDINGS = [
        Binding("escape", "cancel", "Back to wizard"),
        Binding("f2", "preview", "XML/virt-install"),
        Binding("alt+i,ctrl+g", "begin", "Begin installation"),
    ]

    def __init__(self, service: LibvirtService, spec: VmSpec, ctx: HostContext,
                 begin_label: str = "Begin installation") -> None:
        super().__init__()
        self.service = service
        self.begin_label = begin_label  # the OVF import says "Define VM"
        self.spec = replace(spec, install=replace(spec.install), disks=[replace(d) for d in spec.disks],
                            nics=[replace(n) for n in spec.nics])
        self.ctx = ctx

    def compose(self) -> ComposeResult:
        s = self.spec
        caps = self.ctx.caps
        kvm = bool(getattr(caps, "kvm_available", False))
        virt_opts = ([("KVM (hardware acceleration)", "kvm")] if kvm else []) + [("QEMU (TCG emulation)", "qemu")]
        secure_ok = bool(getattr(caps, "secure_boot", False))
        yield Static(f" Customize '{escape(s.name)}' before install", classes="screen-title")
        with VerticalScroll(id="customize-body"):
            yield Label("Overview", classes="section")
            yield from labelled("Name", Input(s.name, id="c-name"), "name")
            yield from labelled("Title", Input(s.title, id="c-title"), "title")
            yield from labelled("Description", Input(s.description, id="c-description"), "description")
            yield Label("Hypervisor", classes="section")
            with Horizontal(classes="row"):
                with Vertical():
                    yield from labelled("Virtualization", Select(virt_opts, id="c-virt", allow_blank=False,
                                                                 value=s.virt_type if (s.virt_type == "qemu" or kvm) else "qemu"),
                                        "virt_type")
                with Vertical():
                    yield from labelled("Chipset", Select([("Q35", "q35"), ("i440FX", "pc")], id="c-machine",
                                                          allow_blank=False, value=s.machine), "machine")
                with Vertical():
                    yield from labelled("Firmware", Select([("BIOS", "bios"), ("UEFI", "uefi")], id="c-firmware",
                                                           allow_blank=False, value=s.firmware), "firmware")
            if not kvm:
                yield Static("KVM is not offered: this host's domain capabilities do not list it. "
                             "Guests run under QEMU's TCG emulation (slower).", classes="field-hint")
            yield Checkbox("Secure boot (UEFI)", s.secure_boot, id="c-secure", disabled=not secure_ok)
            yield Label("CPU and memory", classes="section")
            with Horizontal(classes="row"):
                with Vertical():
                    yield from labelled("CPU mode", Select([("host-passthrough", "host-passthrough"),
                                                             ("host-model", "host-model"),
                                                             ("named model", "custom")], id="c-cpu-mode",
                                                            allow_blank=False, value=s.cpu_mode), "cpu_mode")
                with Vertical():
                    yield from labelled("Model (named)", Input(s.cpu_model or "", id="c-cpu-model",
                                                               placeholder="e.g. Skylake-Client"), "cpu_model")
            with Horizontal(classes="row"):
                with Vertical():
                    yield from labelled("vCPUs", Input(str(s.vcpus), id="c-vcpus", type="integer"), "vcpus")
                with Vertical():
                    yield from labelled("Sockets", Input(str(s.sockets or ""), id="c-sockets", type="integer"),
                                        "sockets")
                with Vertical():
                    yield from labelled("Cores", Input(str(s.cores or ""), id="c-cores", type="integer"), "cores")
                with Vertical():
                    yield from labelled("Threads", Input(str(s.threads or ""), id="c-threads", type="integer"),
                                        "threads")
            with Horizontal(classes="row"):
                with Vertical():
                    yield from labelled("Current memory", Input(f"{s.memory_mib}M", id="c-memory"), "memory")
                with Vertical():
                    yield from labelled("Maximum memory", Input(f"{s.max_memory}M", id="c-max-memory"),
                                        "max_memory")
            yield Checkbox("Start at host boot (autostart)", s.autostart, id="c-autostart")
            yield Label("Devices", classes="section")
            bus = s.disks[0].bus if s.disks else "virtio"
            cache = (s.disks[0].cache if s.disks else None) or "default"
            with Horizontal(classes="row"):
                with Vertical():
                    yield from labelled("Disk bus", Select([(b, b) for b in ("virtio", "sata", "scsi", "ide")],
                                                           id="c-disk-bus", allow_blank=False, value=bus),
                                        "disks[0].bus")
                with Vertical():
                    yield from labelled("Disk cache", Select([(c, c) for c in ("default", "none", "writeback",
                                                                               "writethrough", "directsync",
                                                                               "unsafe")],
                                                             id="c-disk-cache", allow_blank=False, value=cache))
                with Vertical():
                    yield from labelled("CD-ROM bus", Select([(b, b) for b in ("sata", "ide", "scsi")],
                                                             id="c-cdrom-bus", allow_blank=False, value=s.cdrom_bus),
                                        "cdrom_bus")
            with Horizontal(classes="row"):
                with Vertical():
                    yield from labelled("NIC model", Select(NIC_MODELS, id="c-nic-model", allow_blank=False,
                                                            value=s.nics[0].model if s.nics else "virtio"))
                with Vertical():
                    yield from labelled("Display", Select([("VNC", "vnc"), ("SPICE", "spice"), ("none", "none")],
                                                          id="c-graphics", allow_blank=False, value=s.graphics))
                with Vertical():
                    yield from labelled("Listen address", Input(s.graphics_listen, id="c-listen"), "graphics_listen")
            yield Checkbox("USB tablet (absolute pointer)", s.tablet, id="c-tablet")
            yield Checkbox("Serial console", s.serial_console, id="c-serial")
            yield Static("", id="step-errors", classes="field-error")
        with Horizontal(classes="wizard-buttons"):
            yield Button(self.begin_label, id="begin", variant="success")
            yield Button("Back", id="c-back")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one("#step-errors").display = False
        self.query_one("#c-name", Input).focus()

    def collect(self) -> dict[str, str]:
        s = self.spec
        errors: dict[str, str] = {}
        v = lambda wid: self.query_one(wid, Input).value.strip()  # noqa: E731
        sel = lambda wid: str(self.query_one(wid, Select).value)  # noqa: E731
        s.name, s.title, s.description = v("#c-name"), v("#c-title"), v("#c-description")
        s.virt_type = sel("#c-virt")  # type: ignore[assignment]
        s.machine = sel("#c-machine")  # type: ignore[assignment]
        s.firmware = sel("#c-firmware")  # type: ignore[assignment]
        s.secure_boot = self.query_one("#c-secure", Checkbox).value and s.firmware == "uefi"
        s.cpu_mode = sel("#c-cpu-mode")  # type: ignore[assignment]
        s.cpu_model = v("#c-cpu-model") or None
        if s.cpu_mode == "custom" and not s.cpu_model:
            errors["cpu_model"] = "A named CPU model is needed for this mode"
        for key, wid in (("vcpus", "#c-vcpus"), ("sockets", "#c-sockets"), ("cores", "#c-cores"),
                         ("threads", "#c-threads")):
            text = v(wid)
            if not text and key != "vcpus":
                setattr(s, key, None)
            elif not text.isdigit() or int(text) < 1:
                errors[key] = "Must be a whole number, 1 or more"
            else:
                setattr(s, key, int(text))
        topo = [s.sockets, s.cores, s.threads]
        if any(topo) and not all(topo):
            errors["sockets"] = "Give sockets, cores and threads together (or none)"
        elif all(topo) and s.sockets * s.cores * s.threads != s.vcpus:  # type: ignore[operator]
            errors["sockets"] = f"sockets × cores × threads must equal the vCPUs ({s.vcpus})"
        for key, attr, wid in (("memory", "memory_mib", "#c-memory"),
                               ("max_memory", "max_memory_mib", "#c-max-memory")):
            try:
                setattr(s, attr, parse_size(v(wid), "M") // (1024 * 1024))
            except ValueError as e:
                errors[key] = str(e)
        if s.max_memory_mib is not None and s.max_memory_mib < s.memory_mib:
            errors["max_memory"] = "The maximum cannot be below the current memory"
        s.autostart = self.query_one("#c-autostart", Checkbox).value
        cache = sel("#c-disk-cache")
        for d in s.disks:
            d.bus = sel("#c-disk-bus")  # type: ignore[assignment]
            d.cache = None if cache == "default" else cache
        s.cdrom_bus = sel("#c-cdrom-bus")  # type: ignore[assignment]
        if s.machine == "q35" and (s.cdrom_bus == "ide" or any(d.bus == "ide" for d in s.disks)):
            errors["cdrom_bus" if s.cdrom_bus == "ide" else "disks[0].bus"] = \
                "Q35 has no IDE controller: use SATA or SCSI (or the i440FX chipset)"
        for n in s.nics:
            n.model = sel("#c-nic-model")
        s.graphics = sel("#c-graphics")  # type: ignore[assignment]
        s.graphics_listen = v("#c-listen") or "127.0.0.1"
        s.tablet = self.query_one("#c-tablet", Checkbox).value
        s.serial_console = self.query_one("#c-serial", Checkbox).value
        return errors

    def action_begin(self) -> None:
        errors = self.collect()
        os_info = self.ctx.osdb.get(self.spec.os) if self.ctx.osdb is not None else None
        for fe in validate_with_context(self.spec, self.service, self.ctx, os_info):
            if fe.is_error:
                errors.setdefault(fe.field, fe.message)
        shown = set()
        for w in self.query(FieldError):
            w.set(errors.get(w.field_name))
            if errors.get(w.field_name):
                shown.add(w.field_name)
        rest = [f"{k}: {m}" for k, m in errors.items() if k not in shown]
        general = self.query_one("#step-errors", Static)
        general.update(escape("\n".join(rest)))
        general.display = bool(rest)
        if not errors:
            self.dismiss(self.spec)

    @on(Button.Pressed, "#begin")
    def _begin(self) -> None:
        self.action_begin()

    @on(Button.Pressed, "#c-back")
    def action_cancel(self) -> None:
        self.dismiss(None)

    def action_preview(self) -> None:
        self.collect()
        self.app.push_screen(PreviewScreen(self.service, self.spec))
