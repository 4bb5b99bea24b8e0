"""Step 1, the install source: ISO, CD-ROM, network install tree, disk image,
PXE, or a cloud image with its cloud-init seed."""

from __future__ import annotations


from dataclasses import replace

from rich.markup import escape
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.suggester import SuggestFromList
from textual.widget import Widget
from textual.widgets import Button, Input, Label, RadioSet, Select, Static
from textual.widgets.select import InvalidSelectValueError

from ...core.create.vmspec import InstallSource, NicSpec
from ..forms import FieldError, labelled
from ..toggles import Checkbox, RadioButton
from .step import Step


SOURCES = [
    ("iso", "Local install media: an ISO file or an ISO volume of a pool"),
    ("cdrom", "The host's CD-ROM / DVD drive"),
    ("url", "Network install: HTTP, HTTPS or FTP install tree"),
    ("import", "Import an existing disk image"),
    ("pxe", "PXE boot from a network"),
    ("cloud", "Cloud image (qcow2/raw) with a cloud-init seed"),
]


#: Where the seed goes (``install.cloud_init.seed_bus``; "auto": left out of the spec).
SEED_BUS_CHOICES = [
    ("Next to the boot disk (a read-only virtio disk beside a virtio disk)", "auto"),
    ("Read-only virtio disk", "virtio"),
    ("CD-ROM on virtio-scsi", "scsi"),
    ("CD-ROM on SATA (kernels without AHCI cannot see it)", "sata"),
    ("CD-ROM on IDE (i440fx only)", "ide"),
]


def cloudinit_widgets() -> list[Widget]:
    """The cloud-init part of the cloud-image source (the seed the VM gets)."""
    return [Label("cloud-init seed (NoCloud: users, SSH keys, hostname, packages…)", classes="field-label"),
            Horizontal(Button("Edit cloud-init…", id="cloudinit-edit"),
                       Static("default: the VM name as hostname", id="cloudinit-summary"), classes="row"),
            Checkbox("Remove the seed after the first boot", id="cloudinit-detach"),
            FieldError("install.cloud_init"),
            *labelled("Seed device", Select(SEED_BUS_CHOICES, id="seed-bus", allow_blank=False, value="auto"),
                      "install.cloud_init.seed_bus"),
            Checkbox("QEMU guest agent channel (addresses, clean shutdown)", id="guest-agent", value=True)]


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
    bus = step.query_one("#seed-bus", Select).value
    if ci is None and (detach or bus != "auto"):  # default documents, filled in at creation
        ci = {"user_data": "", "meta_data": "", "network_config": None}
    if ci is None:
        return None
    out = dict(ci, detach_after_first_boot=detach)
    out.pop("seed_bus", None)
    if bus != "auto":
        out["seed_bus"] = bus
    return out


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
            yield from labelled("Network to boot from", Select([], id="pxe-network", allow_blank=True),
                                "install.network",
                                "The VM's network card goes on it (step 5 shows it; changing it there "
                                "changes this too).")
        with Vertical(id="src-cloud-box", classes="src-box"):
            yield from labelled("Cloud image path or pool/volume", Input(id="cloud-image"), "install.image",
                                "The new disk is a thin qcow2 overlay on this image (the image, its owner and "
                                "mode are not changed).")
            yield from cloudinit_widgets()
        yield self.compose_errors()

    def on_mount(self) -> None:
        self.refresh_context()
        self._show_box()

    def refresh_context(self) -> None:
        self.volumes_changed()
        nets = [(n.label, f"net:{n.name}") for n in self.ctx.networks]
        nets.append(("A host bridge or macvtap interface (chosen in step 5)", "host:"))
        sel = self.query_one("#pxe-network", Select)
        old = sel.value
        sel.set_options(nets)
        values = [v for _, v in nets]
        if old in values:
            sel.value = old
        elif self.ctx.networks:  # the network the VM's NIC is on, else the first
            nic = self.spec.nics[0] if self.spec.nics else None
            mine = f"net:{nic.source}" if nic is not None and nic.kind == "network" else None
            sel.value = mine if mine in values else values[0]

    def volumes_changed(self) -> None:
        isos = self.ctx.iso_volumes
        self.query_one("#iso", Input).suggester = SuggestFromList(isos, case_sensitive=False) if isos else None
        images = self.ctx.image_volumes
        for wid in ("#image", "#cloud-image"):
            self.query_one(wid, Input).suggester = SuggestFromList(images, case_sensitive=False) if images else None

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
            self.query_one("#seed-bus", Select).value = (src.cloud_init or {}).get("seed_bus") or "auto"
            self.query_one("#guest-agent", Checkbox).value = self.spec.guest_agent
        else:
            self.query_one("#image", Input).value = src.image or ""
        if src.kind == "pxe":
            nic = self.spec.nics[0] if self.spec.nics else None
            want = (f"net:{src.network}" if src.network else
                    "host:" if nic is not None and nic.kind in ("bridge", "macvtap") else None)
            sel = self.query_one("#pxe-network", Select)
            if want is not None:
                try:
                    sel.value = want
                except InvalidSelectValueError:  # a network that is gone: keep the choice shown
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
            # the boot network is the first NIC's: picked here, kept in step with step 5
            sel = self.query_one("#pxe-network", Select)
            choice = "" if sel.is_blank() else str(sel.value)
            nics = self.spec.nics
            first = nics[0] if nics else NicSpec()
            if choice.startswith("net:"):
                src.network = choice[4:]
                nics[:1] = [replace(first, kind="network", source=src.network)]
            elif choice == "host:":
                if first.kind == "network" or not nics:
                    nics[:1] = [replace(first, kind="bridge", source="")]
            else:
                errors["install.network"] = "Choose the network to boot from"
        elif kind == "cloud":
            src.image = val("#cloud-image") or None
            if not src.image:
                errors["install.image"] = "Give the cloud image to start from"
            self.spec.guest_agent = self.query_one("#guest-agent", Checkbox).value
        src.cloud_init = cloudinit_save(self) if kind == "cloud" else None
        src.kickstart = self.spec.install.kickstart
        self.spec.install = src
        self.wizard.source_changed()
        return errors
