"""The wizard's screen: the steps in order, moving between them with the
shared validation, and creating the VM (with its progress)."""

from __future__ import annotations

import asyncio
import copy
import logging
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Iterator

from rich.markup import escape
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, ContentSwitcher, Label, ProgressBar, Static

from ...core.connection.service import LibvirtService
from ...core.create.vmspec import DiskSpec, VmSpec
from ...core.errors import VmtuiError
from ...core.sizes import fmt_bytes
from ..base import VModal, VScreen
from ..dialogs import AskText, ConfirmDialog
from ..footer import KeyFooter
from ..forms import FieldError
from .context import (
    HostContext,
    load_context,
    probe_spec_images,
    refresh_pools,
    unknown_volumes,
    validate_with_context,
)
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


#: The wizard's keys. Only keys that reach the app through tmux, GNU screen
#: and a plain SSH session: control keys other than the multiplexers'
#: prefixes (tmux Ctrl+B, screen Ctrl+A), function keys, Esc. Not Alt+letter:
#: a terminal sends Alt+F as ESC f, which Textual reads as Ctrl+Right
#: (tests/test_wizard_honest.py types them into a real tmux).
WIZARD_KEYS = [
    ("escape", "cancel", "Cancel"),
    ("ctrl+r", "back", "Back"),
    ("ctrl+n", "next", "Next"),
    ("ctrl+s", "save_spec", "Save spec"),
    ("f2", "preview", "XML/virt-install"),
]


class NewVmWizard(VScreen):
    """`n` on the domain list opens it."""

    BINDINGS = [Binding(key, action, label) for key, action, label in WIZARD_KEYS]

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
        self._pristine: VmSpec | None = None  # the spec before any answer (Esc asks when it changed)
        self._quiet = 0  # > 0: inside trial(), nothing is said
        self._advancing = False
        self._host_read = asyncio.Event()  # set once the host context is in (Next waits for it)

    def compose(self) -> ComposeResult:
        yield Static("", id="wizard-title", classes="screen-title")
        with ContentSwitcher(initial="step-0", id="steps"):
            yield from self.steps
        with Horizontal(classes="wizard-buttons"):  # one line each: the steps get the room at 80x24
            yield Button("Back", id="back", compact=True)
            yield Button("Next", id="next", variant="primary", compact=True)
            yield Button("Cancel", id="cancel", compact=True)
        yield KeyFooter(compact=True)

    def on_mount(self) -> None:
        self._update_title()
        self.focus_step()  # before the first frame: keys typed at once land in the step
        self.load()

    @work(exclusive=True, group="wizard-load")
    async def load(self) -> None:
        try:
            self.ctx = await load_context(self.service)
        except VmtuiError as err:
            self.notify(err.message, title="New VM", severity="error", timeout=12)
            self.ctx = HostContext(host_memory_mib=self.service.host.memory_total_kib // 1024,
                                   host_cpus=self.service.host.cpus)
        try:
            self.apply_host_defaults()
            self._pristine = copy.deepcopy(self.spec)
            self.steps[self.index].save()  # what was typed while the host was read stays
            for step in self.steps:
                step.refresh_context()
            self.steps[self.index].load()
            if self.focused is None or self.steps[self.index] not in self.focused.ancestors:
                self.focus_step()  # never pull the focus from a field the user went to meanwhile
        finally:
            self._host_read.set()

    def apply_host_defaults(self) -> None:
        caps = self.ctx.caps
        spec = self.spec
        if caps is not None:
            from ...core.create.validation import cpu_mode_for
            spec.virt_type = "kvm" if getattr(caps, "kvm_available", False) else "qemu"
            # libvirt refuses host-passthrough under TCG
            spec.cpu_mode, spec.cpu_model = cpu_mode_for(spec.virt_type, spec.cpu_mode,  # type: ignore[assignment]
                                                         spec.cpu_model, caps)
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

    def clear_os(self) -> None:
        """No OS is chosen (a search matched none): Next asks for one."""
        self.os_info = None
        self.spec.os = ""

    def kickstart_changed(self) -> None:
        """The source or OS changed: a kickstart follows the delivery, or goes."""
        ks = self.spec.install.kickstart
        if not ks:
            return
        if not kickstart_applies(self.spec, self.os_info):
            self.spec.install.kickstart = None
            if self._quiet:
                return
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
        """The answers in a few lines, from the spec as the preview (F2) and
        the creation see it: the disks and NICs the VM gets (builder's plan)."""
        from ...core.create.builder import plan_disks, plan_nics
        s = self.spec
        src = s.install
        nics = plan_nics(s)
        if src.kind == "pxe":
            first = nics[0] if nics else None
            on = (f"network '{first.source}'" if first is not None and first.kind == "network" else
                  f"{first.kind} {first.source or '(not set)'}" if first is not None else "no NIC")
            pxe = f"PXE through the first NIC ({on})"
        else:
            pxe = ""
        what = {"iso": f"ISO {src.iso}", "cdrom": f"CD-ROM {src.cdrom}", "url": f"network install {src.url}",
                "import": f"import {src.image}", "pxe": pxe,
                "cloud": f"cloud image {src.image}"}.get(src.kind, src.kind)
        if src.kind == "cloud":
            what += f" + cloud-init seed ({cloudinit_summary(src.cloud_init)})"
        os_label = self.os_info.label if self.os_info is not None else (s.os or "(none chosen)")
        if self.os_info is not None and s.os and s.os not in getattr(self.os_info, "short_ids", (s.os,)):
            os_label = f"{s.os} (not in osinfo-db: the values of {self.os_info.label})"
        cpu = s.cpu_mode if s.cpu_mode != "custom" else f"model {s.cpu_model or 'qemu64'}"
        lines = [f"Install: {what}", f"OS: {os_label}",
                 f"Memory: {fmt_bytes(s.memory_mib * 1024 * 1024)}, CPUs: {s.vcpus} ({cpu})",
                 f"Hypervisor: {'KVM' if s.virt_type == 'kvm' else 'QEMU (TCG)'}, {s.machine}, "
                 f"{'UEFI' if s.firmware == 'uefi' else 'BIOS'}"]
        disks = plan_disks(s) if s.name else s.disks
        for d in disks:
            if d.mode == "new":
                lines.append(f"Disk: new {d.provisioning} {d.format} {fmt_bytes(d.size)} in pool '{d.pool}'"
                             + (f" as {d.name}" if d.name else "")
                             + (f" over {d.backing}" if d.backing else ""))
            else:
                lines.append(f"Disk: existing {d.path}")
        if not disks:
            lines.append("Disk: none")
        for n in nics:
            where = {"network": f"virtual network '{n.source}'", "bridge": f"bridge {n.source or '(not set)'}",
                     "macvtap": f"macvtap on {n.source or '(not set)'} ({n.mode})"}.get(n.kind, n.kind)
            lines.append(f"Network: {where}, {n.model}" + (f", MAC {n.mac}" if n.mac else ""))
        if not nics:
            lines.append("Network: none")
        if src.kickstart:
            how = {"oemdrv": "OEMDRV CD-ROM", "initrd": "in the initrd"}.get(src.kickstart.get("delivery"), "?")
            lines.append(f"Kickstart: syntax {src.kickstart.get('version')}, delivered {how}")
        return "\n".join(lines)

    def summary_of(self, step: Step) -> str:
        """The summary with ``step``'s fields as they are now (not yet saved)."""
        with self.trial():
            step.save()
            return self.summary_text()

    # --- the answers as they stand ------------------------------------------

    @contextmanager
    def trial(self) -> Iterator[VmSpec]:
        """Work on a copy of the spec: a step saved into it, checked, shown
        in the summary -- the real spec untouched, nothing notified."""
        real = self.spec
        self.spec = copy.deepcopy(real)
        self._quiet += 1
        try:
            yield self.spec
        finally:
            self.spec = real
            self._quiet -= 1

    def is_current(self, step: Step) -> bool:
        return self.is_mounted and self.steps[self.index] is step

    def has_answers(self) -> bool:
        """Whether anything was entered: the spec with the current step's
        fields differs from the one the wizard opened with."""
        if self._pristine is None:
            return False
        with self.trial() as spec:
            self.steps[self.index].save()
            return spec != self._pristine

    def problems(self, step: Step) -> tuple[dict[str, str], dict[str, str]]:
        """Save ``step`` and check the spec: (errors, warnings) of its fields."""
        errors = step.save()
        warnings: dict[str, str] = {}
        for fe in self.validate():
            if not step.owns_field(fe.field):
                continue
            if fe.is_error:
                errors.setdefault(fe.field, fe.message)
            else:
                warnings.setdefault(fe.field, fe.message)
        return errors, warnings

    def recheck(self, step: Step) -> None:
        """A field of ``step`` changed: the messages on screen are checked
        again at once (gone when fixed, changed when still wrong); fields
        with no message get theirs on Next, not while typing."""
        shown = step.shown_errors()
        if not shown:
            return
        with self.trial():
            errors, warnings = self.problems(step)
        mapped_err: dict[str, str] = {}
        mapped_warn: dict[str, str] = {}
        for name, msg in errors.items():
            mapped_err.setdefault(step.field_for(name), msg)
        for name, msg in warnings.items():
            mapped_warn.setdefault(step.field_for(name), msg)
        lines = set()
        for w in step.query(FieldError):
            lines.add(w.field_name)
            if w.field_name not in shown:
                continue
            if w.field_name in mapped_err:
                w.set(mapped_err[w.field_name])
            elif w.field_name in mapped_warn:
                w.set(f"Warning: {mapped_warn[w.field_name]} (Next again to go on)")
            else:
                w.set(None)
        if "" in shown:
            rest = [f"{k}: {v}" if k else v for k, v in mapped_err.items() if k not in lines]
            general = step.query_one("#step-errors", Static)
            general.update(escape("\n".join(rest)))
            general.display = bool(rest)

    # --- moving between steps -------------------------------------------

    def validate(self, spec: VmSpec | None = None) -> list:
        """The shared rules (same as `vmtui create`): FieldErrors, errors and warnings."""
        return validate_with_context(spec or self.spec, self.service, self.ctx, self.os_info)

    def validate_step(self, step: Step) -> bool:
        errors, warnings = self.problems(step)
        if isinstance(step, FinishStep) and step.spec.name:
            self._named_by_user = True
        if errors:
            step.show_errors(errors)
            return False
        # A warning (more vCPUs than host CPUs, a name with spaces...) is shown on
        # its field once; Next again goes on with it.
        fresh = {k: v for k, v in warnings.items() if (k, v) not in self._acknowledged}
        step.show_errors({k: f"Warning: {v} (Next again to go on)" for k, v in fresh.items()})
        self._acknowledged |= set(fresh.items())
        return not fresh

    async def learn_new_volumes(self, step: Step | None = None) -> None:
        """Volumes made since the wizard read the host: when the answers
        name a ``pool/volume`` the cached list lacks, read that pool again."""
        if step is not None:
            with self.trial() as spec:
                step.save()
                pools = unknown_volumes(spec, self.ctx)
        else:
            pools = unknown_volumes(self.spec, self.ctx)
        if not pools:
            return
        try:
            await refresh_pools(self.service, self.ctx, pools)
        except VmtuiError as err:
            self.notify(err.message, title="New VM", severity="warning", timeout=8)
            return
        for st in self.steps:
            st.volumes_changed()

    async def action_next(self) -> None:
        if self._advancing:  # a Next already on its way (reading a pool)
            return
        self._advancing = True
        try:
            await self._next()
        finally:
            self._advancing = False

    async def _next(self) -> None:
        # a Next typed while the host is still being read waits for it: the
        # checks need its pools, networks and whether its files are ours
        await self._host_read.wait()
        step = self.steps[self.index]
        await self.learn_new_volumes(step)
        if isinstance(step, SourceStep) and not step.save() and self._images_unprobed():
            # the image's real format and size first: never guessed
            try:
                await probe_spec_images(self.service, self.spec, self.ctx)
            except VmtuiError as err:
                self.notify(err.message, title="New VM", severity="error", timeout=10)
                return
            self._fit_overlay()
        if not self.validate_step(step):
            step.focus_first_error()
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
        """Esc: leave -- after asking, when anything was entered."""
        if not self.has_answers():
            self.dismiss(None)
            return

        def answered(leave: bool | None) -> None:
            if leave:
                self.dismiss(None)

        self.app.push_screen(ConfirmDialog("Leave the New VM wizard?",
                                           "Throw away the answers given so far? Nothing has been created.",
                                           yes="Throw away", danger=True), answered)

    @on(Button.Pressed, "#next")
    async def _next_pressed(self) -> None:
        await self.action_next()

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
        from ...core.create.installer import KvmStartFailed, create_vm
        ci = self.spec.install.cloud_init
        if self.spec.install.kind == "cloud" and not (ci and ci.get("user_data")):
            from ...core.provision.seed import (
                default_docs,  # cloud images always get a seed
            )
            docs = default_docs(self.spec.name).to_spec(bool(ci and ci.get("detach_after_first_boot")))
            if ci and ci.get("seed_bus"):
                docs["seed_bus"] = ci["seed_bus"]
            self.spec.install.cloud_init = docs
        await self.learn_new_volumes()
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
        except KvmStartFailed as err:
            progress.dismiss()
            self.offer_tcg(err)
            return
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

    def offer_tcg(self, err: VmtuiError) -> None:
        """KVM could not start the VM (nothing was left behind): offer to
        make this VM a QEMU (TCG) one and create it again -- no XML to edit."""
        from ...core.create.installer import switch_to_tcg

        def answered(yes: bool | None) -> None:
            if not yes:
                self.notify(err.message, title="New VM", severity="error", timeout=15)
                return
            self.spec = switch_to_tcg(self.spec, self.ctx.caps)
            cpu = self.spec.cpu_mode if self.spec.cpu_mode != "custom" else self.spec.cpu_model
            self.notify(f"'{self.spec.name}' now uses QEMU (TCG) emulation, CPU {cpu}: creating it again.",
                        title="New VM", timeout=8)
            self.create()

        question = (f"KVM could not start '{escape(self.spec.name)}':\n{escape(err.cause)}\n\n"
                    "Switch this VM to QEMU (TCG) emulation -- slower, but it needs no KVM -- "
                    "and create it again?")
        self.app.push_screen(ConfirmDialog("KVM is not usable here", question, yes="Use QEMU (TCG) and retry",
                                           danger=False), answered)

    def action_save_spec(self) -> None:
        self.steps[self.index].save()

        def chosen(path: str | None) -> None:
            if not path:
                return
            from ...core.create.vmspec_yaml import dump_spec
            from ...core.files.userfile import UserFileError, write_private_text
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
        self.app.push_screen(PreviewScreen(self.service, self.spec, osdb=self.ctx.osdb))


class CreateProgress(VModal[None]):
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
