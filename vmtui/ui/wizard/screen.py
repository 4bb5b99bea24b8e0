"""The wizard's screen: the steps in order, moving between them with the
shared validation, and creating the VM (with its progress)."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from pathlib import Path

from rich.markup import escape
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, ContentSwitcher, Label, ProgressBar, Static

from ...core.connection.service import LibvirtService
from ...core.create.vmspec import DiskSpec, VmSpec
from ...core.errors import VmtuiError
from ...core.sizes import fmt_bytes
from ..dialogs import AskText
from ..footer import KeyFooter
from .context import HostContext, load_context, probe_spec_images, validate_with_context
from .customize import CustomizeScreen
from .finish import FinishStep
from .kickstart import KickstartStep, kickstart_applies
from .operating_system import OsStep
from .preview import PreviewScreen
from .resources import ResourcesStep
from .source import SourceStep, cloudinit_summary
from .step import Step
from .storage import StorageStep

log = logging.getLogger(__name__)


STEP_CLASSES = [SourceStep, OsStep, ResourcesStep, StorageStep, KickstartStep, FinishStep]


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
        yield KeyFooter(compact=True)

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
            self.os_info = self.ctx.osdb.get(spec.os) or self.ctx.osdb.fallback_for(spec.os)
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

    def set_os(self, os_, short_id: str | None = None) -> None:
        """A new OS: its recommended memory, CPUs, disk size and devices.
        ``short_id``: an id the host's osinfo-db does not know, built with the
        values of ``os_`` (its generic fallback); the VM is named after it."""
        from ...core.create.osinfo import recommended_defaults
        short_id = short_id or os_.short_id
        changed = self.os_info is None or short_id != self.spec.os or os_ is not self.os_info
        self.os_info = os_
        self.spec.os = short_id
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
            self._fit_overlay()  # never below a cloud image's own size
        virtio = bool(getattr(os_, "virtio", True))
        for d in self.spec.disks:
            d.bus = "virtio" if virtio else "sata"
        for n in self.spec.nics:
            n.model = "virtio" if getattr(os_, "virtio_net", virtio) else "e1000e"
        if getattr(os_, "is_windows", False):
            self.spec.graphics = "spice"
        if not self._named_by_user:
            self.spec.name = self.unique_name(short_id or "vm")

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
        if self.os_info is not None and s.os not in getattr(self.os_info, "short_ids", (s.os,)):
            os_label = f"{s.os} (not in osinfo-db: the values of {self.os_info.label})"
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

    def action_next(self, probed: bool = False) -> None:
        step = self.steps[self.index]
        if isinstance(step, SourceStep) and not probed and not step.save() and self._images_unprobed():
            self.probe_then_next()  # the image's real format and size first: never guessed
            return
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

    def _images_unprobed(self) -> bool:
        """An image of the answers not probed yet, or found wrong last time
        (the file may have been fixed since)."""
        from ...core.create.installer import image_refs
        for ref, _ in image_refs(self.spec):
            facts = self.ctx.images.get(ref)
            if facts is None or facts.problem or facts.read_problem:
                return True
        return False

    @work(exclusive=True, group="wizard-probe")
    async def probe_then_next(self) -> None:
        try:
            await probe_spec_images(self.service, self.spec, self.ctx)
        except VmtuiError as err:
            self.notify(err.message, title="New VM", severity="error", timeout=10)
            return
        self._fit_overlay()
        self.action_next(probed=True)

    def _fit_overlay(self) -> None:
        """A cloud image's overlay is at least as large as the image."""
        src = self.spec.install
        facts = self.ctx.images.get((src.image or "").strip()) if src.kind == "cloud" else None
        capacity = getattr(facts, "capacity", None)
        disk = self.spec.disks[0] if self.spec.disks else None
        if capacity and disk is not None and disk.mode == "new" and 0 < disk.size < capacity:
            disk.size = capacity

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
            docs = default_docs(self.spec.name).to_spec(bool(ci and ci.get("detach_after_first_boot")))
            if ci and ci.get("seed_bus"):
                docs["seed_bus"] = ci["seed_bus"]
            self.spec.install.cloud_init = docs
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
        self.app.push_screen(AskText("Save the answers as a VM spec (YAML)", default, "Save", required=False), chosen)

    def action_preview(self) -> None:
        self.steps[self.index].save()
        self.app.push_screen(PreviewScreen(self.service, self.spec))


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
