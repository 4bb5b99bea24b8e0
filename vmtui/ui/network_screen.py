"""The networks screen: libvirt virtual networks and their DHCP leases
(virt-manager's Virtual Networks tab, virsh net-*)."""

from __future__ import annotations

import time

from rich.markup import escape
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import DataTable, Input, Label, Select, Static

from ..core.host import networks
from ..core.errors import VmtuiError
from ..core.connection.service import LibvirtService
from .footer import KeyFooter
from .forms import FieldError, FormDialog, HostObjectScreen, KeyHelp, bindings, labelled

NETWORK_KEYS: list[tuple[str, str, str, str, bool]] = [
    ("s", "net_start", "Start", "Start the selected network (virsh net-start)", True),
    ("x", "net_stop", "Stop", "Stop the network; VMs on it lose their link (virsh net-destroy)", True),
    ("a", "net_autostart", "Autostart", "Toggle start at host boot (virsh net-autostart)", True),
    ("n", "net_define", "New", "Define a NAT or isolated network (virsh net-define, net-start)", True),
    ("D", "net_undefine", "Undefine", "Stop and remove the network (virsh net-destroy, net-undefine)", True),
    ("r", "reload", "Reload", "Read networks and leases again (virsh net-list, net-dhcp-leases)", False),
    ("question_mark", "net_help", "Help", "Show the keys of this screen", True),
    ("escape", "close", "Back", "Back to the domain list", True),
]


def fmt_expiry(expiry: int | None, now: float | None = None) -> str:
    if not expiry:
        return "never"
    left = int(expiry - (time.time() if now is None else now))
    if left <= 0:
        return "expired"
    h, rest = divmod(left, 3600)
    m = rest // 60
    return f"in {h}h{m:02d}m" if h else f"in {m}m"


def dhcp_label(rng: tuple[str, str] | None) -> str:
    """('192.168.122.2', '192.168.122.254') -> '192.168.122.2–.254' (narrow screens)."""
    if not rng:
        return "-"
    start, end = rng
    a, b = start.split("."), end.split(".")
    if len(a) == 4 and len(b) == 4:
        same = 0
        while same < 3 and a[same] == b[same]:
            same += 1
        return f"{start}–." + ".".join(b[same:]) if same else f"{start}–{end}"
    return f"{start}–{end}"


class DefineNetworkDialog(FormDialog):
    title_text = "New virtual network (virsh net-define)"
    ok_label = "Define"

    def __init__(self, service: LibvirtService, existing: list[networks.NetworkInfo]) -> None:
        super().__init__(service)
        self.existing = existing

    def fields(self) -> ComposeResult:
        yield from labelled("Name", Input(placeholder="lab", compact=True, id="name"), "name")
        yield Label("Mode", classes="field-label")
        yield Select([("NAT: guests reach outside through the host", "nat"),
                      ("isolated: guests and host only", "isolated")],
                     value="nat", allow_blank=False, compact=True, id="mode")
        yield from labelled("IPv4 network (CIDR)", Input(self._free_cidr(), compact=True, id="cidr"), "cidr",
                            "the host takes the first address, e.g. 192.168.100.1")
        yield Label("DHCP range (empty: every address after the host's)", classes="field-label")
        with Horizontal(classes="form-row"):
            yield Input(placeholder="DHCP start", compact=True, id="dhcp_start")
            yield Input(placeholder="DHCP end", compact=True, id="dhcp_end")
        yield FieldError("dhcp_start")
        yield FieldError("dhcp_end")

    def _free_cidr(self) -> str:
        """The first 192.168.N.0/24 no network uses."""
        for n in range(100, 255):
            cidr = f"192.168.{n}.0/24"
            if "cidr" not in networks.plan_network("x", "nat", cidr, existing=self.existing).errors:
                return cidr
        return ""

    def changed(self) -> None:
        rng = networks.default_dhcp_range(self.field("cidr"))
        start, end = self.query_one("#dhcp_start", Input), self.query_one("#dhcp_end", Input)
        start.placeholder = rng[0] if rng else "DHCP start"
        end.placeholder = rng[1] if rng else "DHCP end"

    async def submit(self):
        mode = str(self.query_one("#mode", Select).value)
        plan = networks.plan_network(self.field("name"), mode, self.field("cidr"), self.field("dhcp_start"),
                                     self.field("dhcp_end"), self.existing)
        self.set_errors(plan.errors)
        if plan.xml is None:
            return None
        name = self.field("name")
        self.status(f"Defining network '{name}'…")
        return await self.service.call(lambda c: networks.define_network(c, plan.xml),
                                       action="define network", obj=f"'{name}'")


class NetworkScreen(HostObjectScreen):
    """Networks (top) and the DHCP leases of the highlighted one (bottom)."""

    actions_group = "network-actions"
    object_kind = "network"

    BINDINGS = bindings(NETWORK_KEYS)

    def __init__(self, service: LibvirtService) -> None:
        super().__init__(service)
        self.networks: list[networks.NetworkInfo] = []
        self.leases: list[networks.Lease] = []
        self._leases_of: str | None = None

    def compose(self) -> ComposeResult:
        yield Static(" Virtual networks", id="networks-title", classes="screen-title")
        table = DataTable(id="networks", cursor_type="row")
        table.add_columns("Network", "Mode", "State", "Auto", "IPv4", "DHCP range", "Bridge",
                          "Persistent", "VMs")
        yield table
        yield Static("", id="leases-title")
        leases = DataTable(id="leases", cursor_type="row")
        leases.add_columns("MAC", "IP address", "Hostname", "Expires", "VM")
        yield leases
        yield KeyFooter(compact=True)

    def on_mount(self) -> None:
        self.query_one("#networks", DataTable).focus()
        self.reload()

    @property
    def selected(self) -> networks.NetworkInfo | None:
        return self.item_at_cursor("#networks", self.networks)

    @work(exclusive=True, group="networks-load")
    async def reload(self) -> None:
        await self._reload()

    async def _reload(self) -> None:
        try:
            nets = await self.service.call(networks.list_networks, action="list networks of",
                                           obj=self.service.display_uri)
            users = await self.service.call(networks.network_users, action="read the NICs of the VMs on",
                                            obj=self.service.display_uri)
        except VmtuiError as err:
            self.notify(err.message, title="Networks", severity="error", timeout=12)
            return
        self.users = users
        table = self.query_one("#networks", DataTable)
        current = self.selected.name if self.selected else self._leases_of
        self.networks = nets
        table.clear()
        for n in nets:
            dhcp = dhcp_label(n.dhcp)
            table.add_row(*map(Text, (n.name, n.mode_label, "active" if n.active else "inactive",
                                      "yes" if n.autostart else "no", n.ipv4 or "-", dhcp, n.bridge or "-",
                                      "yes" if n.persistent else "no", str(len(users.get(n.name, []))))),
                          key=n.name)
        self.keep_cursor(table, [n.name for n in nets], current)
        await self.load_leases()
        self.loaded = True
        self.refresh_bindings()

    async def load_leases(self) -> None:
        net = self.selected
        title = self.query_one("#leases-title", Static)
        table = self.query_one("#leases", DataTable)
        self._leases_of = net.name if net else None
        if net is None:
            table.clear()
            self.leases = []
            title.update(" No virtual networks: n defines one")
            return
        try:
            leases, note = await self.service.call(lambda c: networks.network_clients(c, net.name),
                                                   action="read DHCP leases of network", obj=f"'{net.name}'")
        except VmtuiError as err:
            table.clear()
            self.leases = []
            title.update(f" DHCP leases of '{escape(net.name)}': {escape(err.message)}")
            return
        if self._leases_of != net.name:
            return
        if not net.dhcp and note is None:
            note = "no DHCP on this network"
        self.show_leases(net.name, leases, note)

    def show_leases(self, name: str, leases: list[networks.Lease], note: str | None = None) -> None:
        table = self.query_one("#leases", DataTable)
        table.clear()
        self.leases = leases
        for lease in leases:
            table.add_row(*map(Text, (lease.mac, lease.address or "-", lease.hostname or "-",
                                      fmt_expiry(lease.expiry) if lease.ip else "no lease",
                                      lease.owner or "(not a VM here)")))
        n = sum(1 for lease in leases if lease.ip)
        vms = sum(1 for lease in leases if lease.owner)
        text = (f" On '{escape(name)}': {n} DHCP lease{'s' if n != 1 else ''}, "
                f"{vms} VM NIC{'s' if vms != 1 else ''}")
        if note:
            text += f" ({escape(note)})"
        self.query_one("#leases-title", Static).update(text)

    @on(DataTable.RowHighlighted, "#networks")
    def _highlighted(self) -> None:
        net = self.selected
        if net is not None and net.name != self._leases_of:
            self._leases_worker()
        self.refresh_bindings()

    @work(exclusive=True, group="networks-leases")
    async def _leases_worker(self) -> None:
        await self.load_leases()

    def check_action(self, action: str, parameters) -> bool | None:
        net = self.selected
        ro = self.service.readonly
        match action:
            case "net_start":
                return None if ro or net is None or net.active else True
            case "net_stop":
                return None if ro or net is None or not net.active else True
            case "net_autostart":
                return None if ro or net is None or not net.persistent else True
            case "net_define":
                return None if ro else True
            case "net_undefine":
                return None if ro or net is None else True
        return True

    def _net(self, action: str) -> networks.NetworkInfo | None:
        net = self.selected
        if net is None or self.check_action(action, ()) is None:
            return None
        return net

    def action_net_start(self) -> None:
        if n := self._net("net_start"):
            self._run("Start network", lambda c: networks.start_network(c, n.name),
                      f"Started network '{n.name}'", n.name)

    def action_net_stop(self) -> None:
        n = self._net("net_stop")
        if n is None:
            return
        users = self.users.get(n.name, [])
        from .dialogs import ConfirmDialog
        extra = (f" {', '.join(users)} {'has' if len(users) == 1 else 'have'} a NIC on it and lose"
                 f"{'s' if len(users) == 1 else ''} the link." if users else "")

        def answered(yes: bool | None) -> None:
            if yes:
                self._run("Stop network", lambda c: networks.stop_network(c, n.name),
                          f"Stopped network '{n.name}'", n.name)

        self.app.push_screen(ConfirmDialog("Stop network", f"Stop network '{escape(n.name)}'?{escape(extra)} "
                                           "(virsh net-destroy)", yes="Stop"), answered)

    def action_net_autostart(self) -> None:
        if n := self._net("net_autostart"):
            on_ = not n.autostart
            self._run("Network autostart", lambda c: networks.set_network_autostart(c, n.name, on_),
                      f"Network '{n.name}' will {'now' if on_ else 'no longer'} start at host boot", n.name)

    def action_net_define(self) -> None:
        if self.check_action("net_define", ()) is None:
            return

        def done(info) -> None:
            if info is not None:
                self.notify(f"Defined and started network '{info.name}' ({info.mode_label}, {info.ipv4}, "
                            f"bridge {info.bridge})", title="New network", timeout=6)
                self._leases_of = info.name
                self.reload()

        self.app.push_screen(DefineNetworkDialog(self.service, self.networks), done)

    def action_net_undefine(self) -> None:
        n = self._net("net_undefine")
        if n is None:
            return
        users = self.users.get(n.name, [])
        from .dialogs import ConfirmDialog
        warn = ""
        if users:
            warn = (f" It is used by {', '.join(users)}: their NICs point to a network that will no "
                    "longer exist, and they will not start until you change them.")

        def answered(yes: bool | None) -> None:
            if yes:
                self._run("Undefine network", lambda c: networks.undefine_network(c, n.name),
                          f"Removed network '{n.name}'", n.name)

        self.app.push_screen(ConfirmDialog("Undefine network", f"Stop and remove network '{escape(n.name)}'?"
                                           f"{escape(warn)} (virsh net-destroy, net-undefine)", yes="Undefine"),
                             answered)

    def action_reload(self) -> None:
        self.reload()

    def action_net_help(self) -> None:
        self.app.push_screen(KeyHelp("Networks — keys", NETWORK_KEYS))
