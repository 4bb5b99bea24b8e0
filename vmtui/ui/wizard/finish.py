"""Step 5, name, network and finish: the NIC's source (virtual network, bridge,
macvtap), MAC and model, the summary, and whether to customize first."""

from __future__ import annotations


from rich.markup import escape
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.suggester import SuggestFromList
from textual.widgets import Input, Label, Select, Static

from ...core.create.vmspec import NicSpec
from ..forms import FieldError, labelled
from ..toggles import Checkbox
from .step import Step


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
        yield Static("", id="pxe-note", classes="field-hint")
        yield FieldError("nics[0].source")
        with Vertical(id="bridge-box"):
            yield from labelled("Bridge device", Input(id="bridge", placeholder="br0"), "nics[0].bridge")
            yield Static("", id="bridge-list", classes="field-hint")
        with Vertical(id="macvtap-box"):
            with Horizontal(classes="row"):
                with Vertical():
                    yield from labelled("Host interface", Input(id="macvtap-dev", placeholder="eth0"), "nics[0].dev")
                    yield Static("", id="iface-list", classes="field-hint")
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
        old = sel.value
        sel.set_options(opts)
        sel.value = old if any(v == old for _, v in opts) else opts[0][1]
        # the host's interfaces: bridges for a bridge NIC, the others for macvtap
        ifaces = self.ctx.host_interfaces
        bridges = [i.name for i in ifaces if i.is_bridge]
        lowers = [i for i in ifaces if not i.is_bridge]
        self.query_one("#bridge", Input).suggester = SuggestFromList(bridges) if bridges else None
        self.query_one("#macvtap-dev", Input).suggester = (
            SuggestFromList([i.name for i in lowers]) if lowers else None)
        if not ifaces:
            bridge_text = iface_text = "The host's interfaces are not known here: type the name."
        else:
            bridge_text = (f"Bridges on this host: {', '.join(bridges)}" if bridges else
                           "No bridge is listed on this host: use a virtual network or macvtap.")
            iface_text = ("On this host: " + ", ".join(i.label for i in lowers) if lowers else
                          "No interface is listed on this host.")
        self.query_one("#bridge-list", Static).update(escape(bridge_text))
        self.query_one("#iface-list", Static).update(escape(iface_text))
        self._show()

    @property
    def source(self) -> str:
        sel = self.query_one("#net-source", Select)
        return "none:" if sel.is_blank() else str(sel.value)

    @on(Select.Changed, "#net-source")
    def _net_changed(self) -> None:
        self._show()
        self.update_summary()

    def field_for(self, name: str) -> str:
        """A bridge's or macvtap interface's problem goes under its input."""
        if name == "nics[0].source":
            kind = self.source.split(":", 1)[0]
            return {"bridge": "nics[0].bridge", "macvtap": "nics[0].dev"}.get(kind, name)
        return name

    @on(Input.Changed)
    @on(Checkbox.Changed)
    @on(Select.Changed, "#nic-model, #macvtap-mode")
    def _changed(self) -> None:
        self.update_summary()

    def _show(self) -> None:
        kind = self.source.split(":", 1)[0]
        self.query_one("#bridge-box").display = kind == "bridge"
        self.query_one("#macvtap-box").display = kind == "macvtap"
        note = self.query_one("#pxe-note", Static)
        pxe = self.spec.install.kind == "pxe"
        note.update("PXE boots from this network card: the boot network (step 1) follows it." if pxe else "")
        note.display = pxe

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
        if self.spec.install.kind == "pxe":
            # the boot network is this NIC's (step 1 shows the same choice)
            first = self.spec.nics[0] if self.spec.nics else None
            self.spec.install.network = first.source if first is not None and first.kind == "network" else None
            if first is None:
                errors["nics[0].source"] = "PXE boot needs a network interface"
        return errors

    @property
    def customize(self) -> bool:
        return self.query_one("#customize", Checkbox).value

    def update_summary(self) -> None:
        """The summary of the answers with this step's fields as they are now
        -- the spec the preview (F2) and Finish use."""
        if not self.wizard.is_current(self):
            return
        self.query_one("#summary", Static).update(escape(self.wizard.summary_of(self)))
