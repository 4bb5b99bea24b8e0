""""Customize configuration before install": a details editor on the pending
VM; "Begin installation" (or the OVF import's "Define VM") creates it."""

from __future__ import annotations

from dataclasses import replace

from rich.markup import escape
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Button, Input, Label, Select, Static

from ...core.connection.service import LibvirtService
from ...core.create.vmspec import VmSpec
from ...core.sizes import parse_size
from ..base import VScreen
from ..footer import KeyFooter
from ..forms import FieldError, labelled
from ..toggles import Checkbox
from .context import HostContext, validate_with_context
from .finish import NIC_MODELS
from .preview import PreviewScreen


class CustomizeScreen(VScreen["VmSpec | None"]):
    """A details editor on the pending VM; "Begin installation" creates it."""

    BINDINGS = [  # keys that reach the app in tmux, screen and SSH (see screen.WIZARD_KEYS)
        Binding("escape", "cancel", "Back to wizard"),
        Binding("f2", "preview", "XML/virt-install"),
        Binding("ctrl+g", "begin", "Begin installation"),
    ]

    def __init__(self, service: LibvirtService, spec: VmSpec, ctx: HostContext,
                 begin_label: str = "Begin installation") -> None:
        super().__init__()
        self.service = service
        self.begin_label = begin_label  # the OVF import says "Define VM"
        self.spec = replace(spec, install=replace(spec.install), disks=[replace(d) for d in spec.disks],
                            nics=[replace(n) for n in spec.nics])
        self.ctx = ctx
        self._cpu_before_tcg: tuple[str, str | None] | None = None  # the CPU a switch to TCG replaced

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
            yield Static("", id="c-cpu-note", classes="field-hint")
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
            yield Button(self.begin_label, id="begin", variant="success", compact=True)
            yield Button("Back", id="c-back", compact=True)
        yield KeyFooter(compact=True)

    def on_mount(self) -> None:
        self.query_one("#step-errors").display = False
        self.query_one("#c-cpu-note").display = False
        self.query_one("#c-name", Input).focus()

    @on(Select.Changed, "#c-virt")
    def _virt_changed(self, event: Select.Changed) -> None:
        """The CPU mode follows the virtualization: QEMU (TCG) cannot pass
        the host CPU through (host-model, else the named model qemu64);
        back on KVM, the CPU the switch replaced comes back."""
        from ...core.create.validation import cpu_mode_for
        mode_sel = self.query_one("#c-cpu-mode", Select)
        model_in = self.query_one("#c-cpu-model", Input)
        note = self.query_one("#c-cpu-note", Static)
        mode, model = str(mode_sel.value), model_in.value.strip() or None
        if event.value == "qemu":
            new_mode, new_model = cpu_mode_for("qemu", mode, model, self.ctx.caps)
            if (new_mode, new_model) != (mode, model):
                self._cpu_before_tcg = (mode, model)
                mode_sel.value = new_mode
                model_in.value = new_model or ""
                shown = new_mode if new_mode != "custom" else f"the named model {new_model}"
                note.update(escape(f"CPU mode set to {shown}: QEMU (TCG) cannot pass the host CPU through."))
                note.display = True
        elif self._cpu_before_tcg is not None:
            mode_sel.value, model_in.value = self._cpu_before_tcg[0], self._cpu_before_tcg[1] or ""
            self._cpu_before_tcg = None
            note.display = False

    @on(Input.Changed)
    @on(Select.Changed)
    @on(Checkbox.Changed)
    def _recheck(self) -> None:
        """A message on screen follows its field: checked again at each change."""
        shown = {w.field_name for w in self.query(FieldError) if w.display}
        general = self.query_one("#step-errors", Static)
        if not shown and not general.display:
            return
        errors = self.problems()
        lines = set()
        for w in self.query(FieldError):
            lines.add(w.field_name)
            if w.field_name in shown:
                w.set(errors.get(w.field_name))
        if general.display:
            rest = [f"{k}: {m}" for k, m in errors.items() if k not in lines]
            general.update(escape("\n".join(rest)))
            general.display = bool(rest)

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

    def problems(self) -> dict[str, str]:
        """The fields read into the spec, and every error by field."""
        errors = self.collect()
        os_info = self.ctx.osdb.get(self.spec.os) if self.ctx.osdb is not None else None
        for fe in validate_with_context(self.spec, self.service, self.ctx, os_info):
            if fe.is_error:
                errors.setdefault(fe.field, fe.message)
        return errors

    def action_begin(self) -> None:
        errors = self.problems()
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
        self.app.push_screen(PreviewScreen(self.service, self.spec, osdb=self.ctx.osdb))
