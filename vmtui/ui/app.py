"""The Textual application: the live domain list of one libvirt host, or of
several (a fleet: ui/fleet.py), in one list."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from functools import partial
from typing import Any, Awaitable, Callable, Iterable, Sequence

from rich.markup import escape
from rich.text import Text
from textual import on, work
from textual.app import App, ComposeResult, SystemCommand
from textual.css.query import NoMatches
from textual.dom import NoScreen
from textual.screen import Screen
from textual.widgets import Input, Static

from ..core.config import Config
from ..core.connection.rows import DomainInfo, state_counts
from ..core.connection.service import ConnState, LibvirtService
from ..core.errors import VmtuiError
from ..core.fleet.model import key_of
from ..core.sizes import fmt_kib, fmt_percent
from . import keys, textual_fixes
from .base import VScreen
from .domain_table import DomainTable
from .fleet import FleetActions, HostSlot
from .footer import KeyFooter
from .messages import (
    ConnectionStateChanged,
    DomainEventsArrived,
    DomainRowsChanged,
    DomainsLoaded,
    GuestSeedRemoved,
    HostInfoChanged,
    HostObjectChanged,
    ServiceBridge,
)
from .template_actions import TemplateActions, template_action_enabled

log = logging.getLogger(__name__)

textual_fixes.apply()

#: ``VMTUI_STRICT=1`` (set by the test suite): a worker's unexpected error
#: ends the app, as Textual does, instead of a notification.
STRICT = os.environ.get("VMTUI_STRICT", "") not in ("", "0")


def _failing_node(worker_failed: bool):
    """The widget, screen or app whose worker or handler raised (Textual's
    context variables at the time of the error). Only a worker's own error
    is put on the worker: a screen pushed by a worker runs its handlers in
    a copy of that worker's context."""
    from textual._context import active_message_pump
    from textual.worker import active_worker
    if worker_failed:
        try:
            return active_worker.get().node
        except LookupError:
            pass
    try:
        return active_message_pump.get()
    except LookupError:
        return None

MUTATING = {"new_vm", "start", "shutdown", "reboot", "force_off", "pause_resume", "delete", "autostart",
            "import_ovf", "template_mark", "prepare_template", "from_template", "clone", "settings", "migrate"}
NEEDS_DOMAIN = (MUTATING - {"new_vm", "import_ovf"}) | {"details", "xml", "console", "export_ova", "graphics",
                                                     "disks", "snapshots", "settings", "toggle_mark"}
KEYED_ACTIONS = NEEDS_DOMAIN | {"new_vm", "import_ovf"}
STORAGE_CHECK_INTERVAL = 120.0
ADDRESS_INTERVAL = 30.0  # seconds between address reads of the running VMs while the Address column shows
TRIM_CHURN = 200  # rows changed or dropped before the heap is trimmed ...
TRIM_AFTER = 5.0  # ... once this many seconds went by without more
TOAST_CHURN = 20  # what a notification counts as
SCREEN_CHURN = 25  # what coming back to the list from another screen counts as  # seconds between pool warning checks for the status line
_LIST_KEY_ACTIONS = {key: action for key, action, *_ in keys.DOMAIN_LIST_KEYS} | {"delete": "delete"}


def _loaded(module: str):
    """``vmtui.ui.<module>`` if it was imported already, else None: screens
    are imported when first opened, and one never opened has nothing to be told."""
    return sys.modules.get(f"{__package__}.{module}")


def why_not(action: str, d: DomainInfo) -> str:
    """Why ``action`` does not apply to ``d`` (the key is greyed out)."""
    name, state = d.name, d.state
    match action:
        case "start":
            return f"'{name}' is already {state}."
        case "shutdown" | "reboot":
            verb = "shut down" if action == "shutdown" else "reboot"
            return f"'{name}' is {state}: only a running VM can be asked to {verb}."
        case "force_off":
            return f"'{name}' is {state}: there is nothing to force off."
        case "pause_resume":
            return f"'{name}' is {state}: only a running VM can be paused (or a paused one resumed)."
        case "autostart":
            return f"'{name}' is transient (no persistent definition): it cannot start at host boot."
        case "clone":
            return (f"'{name}' is {state}: shut it off to clone it (its disks must not change while "
                    "they are copied).")
        case "export_ova":
            return f"'{name}' is {state}: shut it off to export it (its disks must not change while read)."
        case "template_mark":
            if not d.persistent:
                return f"'{name}' is transient: a template needs a persistent definition."
            return f"'{name}' is {state}: shut it off to mark it as a template."
        case "prepare_template":
            if not d.persistent:
                return f"'{name}' is transient: only a defined VM can be prepared as a template."
            return f"'{name}' is {state}: shut it off to prepare it as a template."
        case "from_template":
            if not d.template:
                return f"'{name}' is not a template: mark one with m first (or clone it with l)."
            return f"Template '{name}' is {state}: shut it off to make VMs from it."
        case "graphics":
            return f"'{name}' is {state}: its screen can be shown while it runs."
        case "migrate":
            return f"'{name}' is {state}: it can migrate once it is running or shut off."
    return f"Not possible for '{name}' while it is {state}."


def release_render_memo() -> None:
    """Textual memoizes ``StylesCache.get_inner_outer`` with an lru_cache of
    1,024 entries keyed by the StylesCache object itself, so the render caches
    of up to 1,024 widgets that are gone (toasts, screens, footer keys) stay
    alive: a few MB per ten reconnects, tens of MB over days. Clearing the
    memo lets them go; it refills at once for the widgets on screen."""
    try:
        from textual._styles_cache import StylesCache
    except ImportError:  # a Textual without it
        return
    memo = getattr(StylesCache, "get_inner_outer", None)
    if hasattr(memo, "cache_clear"):
        memo.cache_clear()


class _Line(Static):
    """A one-line bar: a new text repaints it (no layout: its size is
    fixed); the same text again does nothing."""

    _shown: Text | str | None = None

    def show(self, text: Text | str) -> None:
        if text != self._shown:
            self._shown = text
            self.update(text, layout=False)


class StatusBar(_Line):
    """Host, URI, connection state, counts by state, host CPU and memory."""


class SelectionBar(_Line):
    """The selected VM in full: name, title, state and reason, flags."""


class DomainListScreen(VScreen):
    """The main screen. Its keys call the app's actions ("app.start", ...)."""

    BINDINGS = keys.bindings()

    def compose(self) -> ComposeResult:
        yield StatusBar(id="status")
        yield Input(placeholder="filter by name or title — Enter keeps it, Esc clears", id="filter")
        yield DomainTable(id="domains")
        yield SelectionBar(id="selection")
        yield KeyFooter(compact=True)

    def on_screen_resume(self) -> None:
        self.app._churned(SCREEN_CHURN)  # another screen's widgets were just dropped

    @property
    def active_bindings(self):
        """Textual's, with the labels that follow the selected VM (``p``
        says Resume on a paused VM: keys.PAUSED_LABELS)."""
        from dataclasses import replace
        found = super().active_bindings
        try:
            selected = self.query_one(DomainTable).selected
        except NoMatches:
            return found
        if selected is None or not selected.is_paused:
            return found
        for key, active in list(found.items()):
            action = active.binding.action.removeprefix("app.")
            label = keys.label_for(action, active.binding.description, paused=True)
            if label != active.binding.description:
                found[key] = active._replace(binding=replace(active.binding, description=label))
        return found

    def on_mount(self) -> None:
        self.query_one("#filter", Input).display = False
        self.query_one(DomainTable).focus()
        self.app.start_service()

    def on_key(self, event) -> None:
        """Keys that reach the list itself (another screen's keys never do)."""
        box = self.query_one("#filter", Input)
        if event.key == "escape":
            if box.display:  # Esc clears the filter
                box.value = ""
                box.display = False
                self.query_one(DomainTable).focus()
                event.stop()
            return
        if self.focused is box:
            return  # typed into the filter
        action = _LIST_KEY_ACTIONS.get(event.key)
        if action == "bulk" and not self.app.action_enabled(action):
            self.app.action_bulk()  # says what to mark first
            event.stop()
            return
        if action in NEEDS_DOMAIN and not self.app.action_enabled(action):
            # a greyed binding does not run: say why instead of doing nothing
            if action == "graphics":
                self.app.action_graphics()
            else:
                self.app.explain_disabled(action)
            event.stop()


class VmtuiApp(FleetActions, TemplateActions, App):
    TITLE = "vmtui"
    CSS_PATH = "vmtui.tcss"

    def __init__(self, service: LibvirtService | Sequence[LibvirtService], config: Config | None = None, *,
                 exit_on_connect_failure: bool = True) -> None:
        """``service``: the host to show, or several (a list of services,
        each named: ``LibvirtService.name``) in one list."""
        super().__init__()
        services = list(service) if isinstance(service, (list, tuple)) else [service]
        self.slots: dict[str, HostSlot] = {}
        for svc in services:
            self._add_slot(svc)
        self.config = config or Config()
        self.exit_on_connect_failure = exit_on_connect_failure
        self._keys_for: object = None  # what the footer's keys were last worked out for
        self._churn = 0  # rows changed or dropped since the heap was last trimmed
        self._trim_timer = None
        self.ready = False  # first full list shown
        self._init_fleet()

    # --- hosts ----------------------------------------------------------------------

    @property
    def primary(self) -> HostSlot | None:
        return next(iter(self.slots.values()), None)

    @property
    def service(self) -> LibvirtService:
        """The service of the selected VM's host; with nothing selected, the
        first host's. Actions take the service of their VM (service_of) at
        key time instead."""
        d = self.table.selected if self._list_mounted() else None
        slot = self.slots.get(d.host) if d is not None else None
        return (slot or self.primary).service  # type: ignore[union-attr]

    def service_of(self, d: DomainInfo) -> LibvirtService:
        """The service of the host ``d`` lives on."""
        slot = self.slots.get(d.host)
        return slot.service if slot is not None else self.primary.service  # type: ignore[union-attr]

    def slot_of(self, d: DomainInfo) -> HostSlot:
        return self.slots.get(d.host) or self.primary  # type: ignore[return-value]

    @property
    def consoles(self):
        """The serial consoles of the first host (each host has its own: HostSlot.consoles)."""
        return self.primary.consoles  # type: ignore[union-attr]

    @consoles.setter
    def consoles(self, manager) -> None:
        self.primary.consoles = manager  # type: ignore[union-attr]

    @property
    def guests(self):
        """The guest watch of the first host (each host has its own: HostSlot.guests)."""
        return self.primary.guests  # type: ignore[union-attr]

    def guests_of(self, service: LibvirtService):
        """The guest watch of ``service``'s host."""
        slot = next((s for s in self.slots.values() if s.service is service), None)
        return (slot or self.primary).guests  # type: ignore[union-attr]

    def _listen(self, slot: HostSlot) -> None:
        """The host's news as messages: its bridge, and its guest watch's."""
        slot.bridge = ServiceBridge(self, slot.service)
        slot.listen_guests(lambda news, s=slot: self.post_message(GuestSeedRemoved(news, s.service.name)))

    @property
    def connect_error(self) -> VmtuiError | None:
        """Why the hosts could not be reached at start (the first host's reason)."""
        errors = [s.connect_error for s in self.slots.values()]
        return errors[0] if errors and all(errors) else None

    @property
    def storage_warnings(self) -> list[str]:
        """Pool nearly full / thin overcommit, for the status line (per host in a fleet)."""
        if not self.fleet:
            return list(self.primary.storage_warnings) if self.primary else []
        return [f"{name}: {w}" for name, slot in self.slots.items() for w in slot.storage_warnings]

    def _list_mounted(self) -> bool:
        screen = getattr(self, "list_screen", None)
        return screen is not None and screen.is_mounted

    # --- layout ---------------------------------------------------------------

    def get_default_screen(self) -> Screen:
        self.list_screen = DomainListScreen()
        return self.list_screen

    @property
    def table(self) -> DomainTable:
        return self.list_screen.query_one(DomainTable)

    def on_mount(self) -> None:
        if self.config.theme in self.available_themes:
            self.theme = self.config.theme
        for notice in self.config.notices:
            self.notify(notice, title="Configuration", severity="warning", timeout=15)

    def start_service(self) -> None:
        """Called by the list screen once it is mounted: listen, then connect
        (each host on its own: one slow host never holds up another)."""
        from ..core import heap
        heap.hold()  # until the first frame with the rows (_domains_loaded; connect() when it fails)
        self.table.marks = self.marks
        if self.fleet:
            self.table.set_extra_columns(host=True, marks=bool(self.marks))
        if self.config.cpu_graph_column:
            self.table.show_column("graph", True)
        for slot in self.slots.values():
            self._listen(slot)
        self.update_status()
        for slot in list(self.slots.values()):
            self.connect(slot)
        self.set_interval(STORAGE_CHECK_INTERVAL, self.check_storage)
        self.set_interval(self.service.stats_interval, self._graphs_tick)
        self.set_interval(ADDRESS_INTERVAL, self._address_tick)

    def _graphs_tick(self) -> None:
        table = self._list_table()
        if table is not None:
            table.refresh_graphs()

    async def on_unmount(self) -> None:
        import asyncio

        from ..core import heap
        heap.resume()
        heap.release()
        for slot in self.slots.values():
            slot.close_ui()
        await asyncio.gather(*(slot.service.close() for slot in self.slots.values()), return_exceptions=True)

    def connect(self, slot: HostSlot | None = None) -> None:
        slot = slot or self.primary
        if slot is not None:
            self.run_worker(partial(self._connect, slot), group=f"connect-{slot.name}", exclusive=True)

    async def _connect(self, slot: HostSlot) -> None:
        slot.connect_error = None
        try:
            await slot.service.connect()
        except VmtuiError as err:
            from ..core import heap
            heap.resume()
            slot.connect_error = err
            if self.exit_on_connect_failure and self.connect_error is not None and not self.ready:
                # no host at all: say why and leave (several: every reason)
                text = "\n".join(s.connect_error.message for s in self.slots.values() if s.connect_error)
                self.exit(return_code=1, message=text)
                return
            where = f"{slot.name}: " if self.fleet else ""
            self.notify(escape(where + err.message), title="Connection", severity="error", timeout=30)
            if self._list_table() is not None:
                self.update_status()

    # --- what the service says ----------------------------------------------------
    # The ServiceBridge (messages.py) turns the service's news into these
    # messages; row changes arrive in batches, at most one per frame.

    def _list_table(self) -> DomainTable | None:
        try:
            return self.table
        except NoMatches:  # shutting down: the list is already gone
            return None

    @on(ConnectionStateChanged)
    def _connection_changed(self, message: ConnectionStateChanged) -> None:
        slot = self.slots.get(message.host)
        if slot is None:
            return  # a host closed meanwhile
        consoles = _loaded("console_screen")  # none open if the module is not even loaded
        if consoles is not None:
            consoles.forward_connection_state(self, message.state, slot.consoles)  # open consoles reconnect / say so
        if self._list_table() is None:
            return
        where = slot.service.display_uri if not self.fleet else f"{slot.name} ({slot.service.display_uri})"
        if message.state is ConnState.DISCONNECTED:
            if not slot.was_disconnected:
                self.notify(escape(f"{where}: {message.message}"), title="Disconnected",
                            severity="warning", timeout=8)
            slot.was_disconnected = True
        elif message.state is ConnState.CONNECTED and slot.was_disconnected:
            slot.was_disconnected = False
            self.notify(escape(f"{where}: connected again"), title="Reconnected", timeout=4)
        self._list_changed()

    @on(HostInfoChanged)
    def _host_changed(self, message: HostInfoChanged) -> None:
        # host CPU/memory figures: only the status line shows them; the
        # selection and the enabled keys cannot have changed
        if self._list_table() is not None:
            self.update_status()

    @on(DomainsLoaded)
    def _domains_loaded(self, message: DomainsLoaded) -> None:
        table = self._list_table()
        if table is None or message.host not in self.slots:
            return
        if self.fleet:
            # this host's rows are replaced, the other hosts' stay
            rows = [d for d in table.domains.values() if d.host != message.host and d.host in self.slots]
            table.reset(rows + list(message.domains))
        else:
            table.reset(message.domains)
        self._marks_follow_rows()
        self.want_titles(message.host)
        self.ready = True
        self.call_after_refresh(self._first_rows_shown)
        self._list_changed()
        self._churned(len(message.domains) + TRIM_CHURN)
        self._settle_heap()

    def _first_rows_shown(self) -> None:
        from ..core import heap
        heap.resume()
        self.check_storage()

    @work(exclusive=True, group="settle")
    async def _settle_heap(self) -> None:
        """Once the titles are in, the list's objects live until the next
        reload: out of the garbage collector's way with them (core.heap)."""
        import asyncio

        await asyncio.gather(*(slot.service.wait_loaded() for slot in list(self.slots.values())))
        from ..core import heap
        heap.settle()

    @on(DomainRowsChanged)
    def _rows_changed(self, message: DomainRowsChanged) -> None:
        for screen in self.screen_stack[1:]:  # screens about one VM follow it (details: live figures)
            forward = getattr(screen, "domain_rows_changed", None)
            if forward is not None:
                forward(message)
        table = self._list_table()
        if table is None:
            return
        if message.removed:
            gone = [key_of(message.host, uuid) for uuid in message.removed]
            table.drop_many(gone)
            self._marks_forget(gone)
        if message.changed:
            table.upsert(message.changed)
            if table.lost is not None and table.lost.why == "removed":
                self.follow_moved_selection()
        self._list_changed()
        self._churned(len(message.changed) + len(message.removed))

    def notify(self, message, *args, **kwargs) -> None:  # noqa: D102 - Textual's, counted
        super().notify(message, *args, **kwargs)
        self._churned(TOAST_CHURN)  # a toast is a few widgets made and dropped

    def _churned(self, rows: int) -> None:
        """Count rows (and widgets) built and dropped; once many went by,
        release what Textual still holds of them and give the freed memory
        back when things have been calm for a while (core.heap)."""
        self._churn += rows
        if self._churn < TRIM_CHURN:
            return
        if self._trim_timer is not None:
            self._trim_timer.stop()
        self._trim_timer = self.set_timer(TRIM_AFTER, self._trim_heap)

    def _trim_heap(self) -> None:
        from ..core import heap
        self._churn, self._trim_timer = 0, None
        release_render_memo()
        heap.trim()
        heap.settle()

    @on(DomainEventsArrived)
    def _domain_events(self, message: DomainEventsArrived) -> None:
        consoles = _loaded("console_screen")  # none open if the module is not even loaded
        slot = self.slots.get(message.host)
        if slot is None:
            return  # a host closed meanwhile
        listed = self._list_table() is not None
        where = f" on {slot.name}" if self.fleet else ""
        for event in message.events:
            if consoles is not None:
                consoles.forward_domain_event(self, event.uuid, event.event, slot.consoles)
            if not listed:
                continue
            if event.event == "crashed":
                self.notify(escape(f"Domain '{event.name}'{where} crashed"), severity="error", timeout=10)
                if slot.guests_made:
                    slot.guests.stopped(event.uuid)
            elif event.event == "non-persistent reset failed":
                self.notify(escape(f"Could not discard what '{event.name}'{where} wrote to its non-persistent "
                                   "disks (see the log): they keep those writes until the next power-off."),
                            severity="warning", timeout=15)
            elif event.event == "stopped":
                if slot.guests_made:
                    slot.guests.stopped(event.uuid)
            elif event.event == "started":
                if slot.guests_made or self.table.column_shown("address"):
                    slot.guests.started(event.uuid, addresses=self.table.column_shown("address"))
            elif event.event == "undefined":
                if slot.guests_made:
                    slot.guests.removed(event.uuid)

    @on(GuestSeedRemoved)
    def _seed_removed(self, message: GuestSeedRemoved) -> None:
        news = message.news
        where = f" on {message.host}" if message.host else ""
        if news.error:
            self.notify(escape(f"cloud-init finished on '{news.name}'{where}, but its seed stays: {news.error}"),
                        title="cloud-init", severity="warning", timeout=12)
        elif news.removal is not None:
            self.notify(escape(f"First boot of '{news.name}'{where} done. {news.removal.describe()}"),
                        title="cloud-init", timeout=8)

    def adopt_vm(self, uuid: str, service: LibvirtService | None = None) -> None:
        """This UI made the VM (on ``service``'s host, default the first) or
        gave it its cloud-init seed: watch its boot (its row says how far it
        got) and remove the seed once cloud-init finished with it, if it was
        to go after the first boot."""
        slot = next((s for s in self.slots.values() if s.service is service), None) or self.primary
        if slot is not None:
            self.run_worker(slot.guests.adopt(uuid), group="guests")

    def _address_tick(self) -> None:
        """The slow cadence of the Address column: one worker call per host
        for its running VMs, only while the column shows."""
        if self.list_screen.is_mounted and self.table.column_shown("address"):
            self._refresh_addresses()

    def _refresh_addresses(self) -> None:
        for slot in list(self.slots.values()):
            if slot.service.state is ConnState.CONNECTED:
                self.run_worker(slot.guests.refresh_addresses(), group=f"addresses-{slot.name}", exclusive=True)

    @on(HostObjectChanged)
    def _host_object_changed(self, message: HostObjectChanged) -> None:
        slot = self.slots.get(message.host)
        if self._list_table() is not None and slot is not None:
            self._object_event(message, slot)

    def _list_changed(self) -> None:
        """After the list changed: status line, selection bar, and the keys
        (the footer is recomposed only when what it shows can have changed)."""
        self.update_status()
        self.update_selection()
        self._refresh_keys()

    def _refresh_keys(self) -> None:
        """Recompose the footer only when the set of keys that apply changed
        (not on every highlight or stats tick)."""
        enabled = frozenset(a for a in KEYED_ACTIONS if self.action_enabled(a))
        d = self.table.selected
        if d is not None and d.is_paused:
            enabled |= {"@paused"}  # the labels that follow a paused VM (Resume)
        if enabled != self._keys_for:
            self._keys_for = enabled
            self.refresh_bindings()

    # --- status lines ---------------------------------------------------------

    def update_status(self) -> None:
        if self.fleet:
            self.list_screen.query_one(StatusBar).show(self.fleet_status())
            return
        s = self.primary.service
        host = s.host
        state = s.state
        parts: list[Text] = []
        name = host.hostname or "?"
        parts.append(Text(f" {name}", style="bold"))
        style = {"connected": "green", "connecting": "yellow"}.get(state.value, "bold red")
        label = state.value if state is not ConnState.CLOSED or not self.connect_error else "not connected"
        parts.append(Text(f" {label}", style=style))
        if s.readonly:
            parts.append(Text(" [read-only]", style="bold yellow"))
        doms = self.table.domains.values() if self.is_mounted else ()
        counts = " │ " + state_counts(doms, templates=True)
        parts.append(Text(counts))
        if self.storage_warnings:
            parts.append(Text(" │ ! " + "; ".join(self.storage_warnings), style="bold yellow"))
        host_bits = []
        if host.cpu_percent is not None:
            host_bits.append(f"CPU {fmt_percent(host.cpu_percent)}")
        if host.memory_total_kib:
            if host.memory_free_kib is not None:
                used = max(0, host.memory_total_kib - host.memory_free_kib)
                host_bits.append(f"mem {fmt_kib(used)}/{fmt_kib(host.memory_total_kib)}")
            else:
                host_bits.append(f"mem {fmt_kib(host.memory_total_kib)}")
        if host_bits:
            parts.append(Text(" │ host " + ", ".join(host_bits)))
        filt = self.table.state_filter_label if self.is_mounted else "all"
        if filt != "all" or (self.is_mounted and self.table.text_filter):
            f = [] if filt == "all" else [filt]
            if self.table.text_filter:
                f.append(f"'{self.table.text_filter}'")
            parts.append(Text(" │ showing " + " ".join(f), style="bold cyan"))
        uri = s.display_uri
        if uri.startswith("test:///") and uri.endswith(".xml"):
            name = uri.rsplit("/", 1)[-1]
            uri = "demo (test driver)" if name == "demo-host.xml" else f"test driver: {name}"
        parts.append(Text(f" │ {uri}", style="dim"))
        self.list_screen.query_one(StatusBar).show(Text.assemble(*parts))

    def lost_text(self) -> str:
        """What became of the VM that was selected (see DomainTable.lost)."""
        lost = self.table.lost
        if lost is None:
            return ""
        if lost.why == "removed":
            return f"'{lost.name}' was removed (undefined on the host)"
        d = self.table.domains.get(lost.key)
        state = f" is {d.state} now and" if d is not None else ""
        return f"'{lost.name}'{state} no longer matches the filter ({self.filter_text()})"

    def filter_text(self) -> str:
        t = self.table
        f = [] if t.state_filter_label == "all" else [t.state_filter_label]
        if t.text_filter:
            f.append(f"'{t.text_filter}'")
        return "showing " + " ".join(f) if f else "showing all"

    def update_selection(self) -> None:
        d = self.table.selected
        bar = self.list_screen.query_one(SelectionBar)
        if d is None:
            if self.table.lost is not None:
                bar.show(Text.assemble((f" {self.lost_text()}", "bold yellow"),
                                       " — no VM selected; ↑/↓ selects one"))
                return
            bar.show(" no VM selected" if self.ready else " loading…")
            return
        bits = [Text(f" {d.name}", style="bold")]
        if d.host:
            bits.append(Text(f" on {d.host}", style="cyan"))
        if d.title:
            bits.append(Text(f" — {d.title}", style="italic"))
        bits.append(Text(f"  {d.state}" + (f" ({d.reason})" if d.reason != "unknown" else "")))
        flags = []
        if d.autostart:
            flags.append("autostart")
        if not d.persistent:
            flags.append("transient")
        if d.template:
            flags.append("template")
        if d.id is not None:
            flags.append(f"id {d.id}")
        if d.is_active and d.guest.addresses:
            flags.append(f"{d.guest.addresses[0]} ({d.guest.address_source})")
        if flags:
            bits.append(Text("  " + ", ".join(flags), style="dim"))
        bar.show(Text.assemble(*bits))

    @on(DomainTable.RowHighlighted)
    def _row_highlighted(self, event: DomainTable.RowHighlighted) -> None:
        try:
            self.update_selection()
        except NoMatches:  # shutting down: the list is already gone
            return
        self._refresh_keys()

    def on_domain_table_selection_lost(self, event: DomainTable.SelectionLost) -> None:
        """The selected VM left the list: say so; nothing is selected until
        the cursor moves (no key acts on the row that slid under it). A VM
        that left its host for another one in the list (migrated) is
        selected there instead."""
        if self.follow_moved_selection():
            return
        self.notify(f"{escape(self.lost_text())}. No VM is selected now: move the cursor to select one.",
                    title="Selection", severity="warning", timeout=8)
        try:
            self.update_selection()
        except NoMatches:
            return
        self._refresh_keys()

    @on(DomainTable.RowSelected)
    def _row_selected(self, event: DomainTable.RowSelected) -> None:
        self.action_details()

    # --- which actions apply ------------------------------------------------------

    def action_enabled(self, action: str) -> bool:
        if action in ("new_vm", "import_ovf"):
            return any(s.service.state is ConnState.CONNECTED and not s.service.readonly
                       for s in self.slots.values())
        if action == "bulk":
            return bool(self.marks)
        if action not in NEEDS_DOMAIN:
            return True
        try:
            d = self.table.selected
        except NoMatches:  # the list is not composed yet
            return False
        if d is None:
            return False
        if action == "toggle_mark":
            return True
        service = self.service_of(d)
        if service.state is not ConnState.CONNECTED:
            return False
        if action in MUTATING and service.readonly:
            return False
        match action:
            case "start":
                return not d.is_active
            case "shutdown" | "reboot":
                return d.is_running
            case "force_off":
                return d.is_active
            case "pause_resume":
                return d.is_running or d.is_paused
            case "autostart":
                return d.persistent
            case "console":
                return True  # a shut-off VM gets the offer to start it
            case "export_ova":
                return not d.is_active
            case "graphics":
                return d.is_active  # a screenshot needs a running (or paused) VM
            case "migrate":
                return d.is_active or d.persistent
        ours = template_action_enabled(action, d)
        return True if ours is None else ours

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("command_palette", "quit") and getattr(self.screen, "captures_keys", lambda: False)():
            return False  # Ctrl+P / Ctrl+Q typed in a console are for the guest
        return True if self.action_enabled(action) else None

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        if screen is not self.screen_stack[0]:
            return
        selected = self.table.selected
        paused = selected is not None and selected.is_paused
        for key, action, label, desc, _show in keys.DOMAIN_LIST_KEYS:
            if action in ("quit", "help") or not self.action_enabled(action):
                continue
            label = keys.label_for(action, label, paused=paused)
            yield SystemCommand(f"{label} ({keys.display_key(key)})", desc,
                                lambda a=action: self.run_action(a))

    # --- running actions ----------------------------------------------------------

    def _run(self, title: str, job: Callable[[], Awaitable[Any]], done: str | None = None) -> None:
        async def runner() -> None:
            try:
                await job()
            except VmtuiError as err:
                self.notify(err.message, title=title, severity="error", timeout=12)
            except Exception as err:  # never a traceback on screen
                log.exception("%s failed", title)
                self.notify(f"{title} failed: {err}", title=title, severity="error", timeout=12)
            else:
                if done:
                    self.notify(done, title=title, timeout=4)
        self.run_worker(runner(), group="actions")

    def _selected_or_none(self, action: str) -> DomainInfo | None:
        """The selected VM if ``action`` applies to it, read once, at key
        time: the action and its dialogs use this one, whatever the list
        does meanwhile. Otherwise None, and the user hears why."""
        if not self.action_enabled(action):
            self.explain_disabled(action)
            return None
        return self.table.selected

    def explain_disabled(self, action: str) -> None:
        """Say why a key of the list does nothing."""
        d = self.table.selected
        service = self.service_of(d) if d is not None else self.service
        if service.state is not ConnState.CONNECTED:
            where = f"{service.name} ({service.display_uri})" if self.fleet else service.display_uri
            self.notify(escape(f"Not connected to {where} ({service.state.value})."),
                        severity="warning", timeout=4)
            return
        if d is None:
            lost = self.lost_text()
            self.notify(f"{escape(lost)}: no VM is selected. Move the cursor to select one." if lost
                        else "No VM is selected.", severity="warning", timeout=5)
            return
        if action in MUTATING and service.readonly:
            self.notify("Read-only connection: vmtui cannot change VMs here.", severity="warning", timeout=4)
            return
        self.notify(escape(why_not(action, d)), severity="warning", timeout=6)

    def action_start(self) -> None:
        if d := self._selected_or_none("start"):
            self.slot_of(d).guests.expect_start(d.uuid)  # its boot is read from its console when it starts
            self.start_checked(d)  # a template or a linked clone's source asks first

    def action_shutdown(self) -> None:
        if d := self._selected_or_none("shutdown"):
            svc = self.service_of(d)
            self._run("Shutdown", lambda: svc.shutdown(d.uuid), f"Asked '{d.name}' to shut down")

    def action_reboot(self) -> None:
        if d := self._selected_or_none("reboot"):
            svc = self.service_of(d)
            self._run("Reboot", lambda: svc.reboot(d.uuid), f"Asked '{d.name}' to reboot")

    def action_force_off(self) -> None:
        d = self._selected_or_none("force_off")
        if d is None:
            return
        svc = self.service_of(d)

        def answered(yes: bool | None) -> None:
            if yes:
                self._run("Force off", lambda: svc.force_off(d.uuid), f"Forced off '{d.name}'")

        from .dialogs import ConfirmDialog
        self.push_screen(ConfirmDialog(
            "Force off", f"Force off '{escape(d.name)}'? This is like pulling the power cord: "
            "unsaved data in the guest is lost.", yes="Force off"), answered)

    def action_pause_resume(self) -> None:
        d = self._selected_or_none("pause_resume")
        if d is None:
            return
        svc = self.service_of(d)
        if d.is_paused:
            self._run("Resume", lambda: svc.resume(d.uuid), f"Resumed '{d.name}'")
        else:
            self._run("Pause", lambda: svc.pause(d.uuid), f"Paused '{d.name}'")

    def action_autostart(self) -> None:
        if d := self._selected_or_none("autostart"):
            on_ = not d.autostart
            svc = self.service_of(d)
            self._run("Autostart", lambda: svc.set_autostart(d.uuid, on_),
                      f"'{d.name}' will {'now' if on_ else 'no longer'} start at host boot")

    def action_delete(self) -> None:
        d = self._selected_or_none("delete")
        if d is None:
            return
        self._open_delete_dialog(d)

    @work(group="delete")
    async def _open_delete_dialog(self, d: DomainInfo) -> None:
        svc = self.service_of(d)
        try:
            _overview, disks = await svc.details(d.uuid)
        except VmtuiError as err:
            self.notify(err.message, title="Delete", severity="error", timeout=12)
            return
        from .dialogs import DeleteDialog
        keys_ = await self.push_screen_wait(DeleteDialog(d, disks))
        if keys_ is None:
            return
        try:
            result = await svc.delete(d.uuid, keys_)
        except VmtuiError as err:
            self.notify(err.message, title="Delete", severity="error", timeout=12)
            return
        msg = f"Deleted domain '{result.name}'"
        if result.deleted:
            msg += " and " + ", ".join(result.deleted)
        if result.errors:
            self.notify(msg + "\nNot deleted: " + "; ".join(result.errors), title="Delete",
                        severity="warning", timeout=15)
        else:
            self.notify(msg, title="Delete", timeout=6)

    def _create_then_select(self, action: str, verb: str, screen: Callable[[LibvirtService], Screen]) -> None:
        """Open a screen that makes a VM (dismissed with its UUID) and select
        the new VM in the list. With several hosts, which host comes first."""
        if not self.action_enabled(action):
            self.notify(f"Connect read-write to {verb} VMs.", severity="warning", timeout=4)
            return

        def go(svc: LibvirtService | None) -> None:
            if svc is None:
                return

            def done(uuid: str | None) -> None:
                if uuid:
                    self.adopt_vm(uuid, svc)
                    self._select_when_listed(key_of(svc.name, uuid))

            self.push_screen(screen(svc), done)

        self.choose_host(f"{verb.capitalize()} the VM on which host?", go, writable=True)

    def action_new_vm(self) -> None:
        from .wizard import NewVmWizard
        self._create_then_select("new_vm", "create", NewVmWizard)

    def action_import_ovf(self) -> None:
        from .ovf_screens import ImportOvfScreen
        self._create_then_select("import_ovf", "import", ImportOvfScreen)

    def action_export_ova(self) -> None:
        if d := self._selected_or_none("export_ova"):
            from .ovf_screens import ExportOvaScreen
            self.push_screen(ExportOvaScreen(self.service_of(d), d.name, uuid=d.uuid))

    def action_console(self) -> None:
        if d := self._selected_or_none("console"):
            from .console_screen import show_console
            show_console(self, d.uuid, d.name, self.slot_of(d).consoles, host=d.host)

    def action_consoles(self) -> None:
        from .console_screen import show_console_list
        show_console_list(self)

    def action_graphics(self) -> None:
        d = self.table.selected
        if d is not None and not self.action_enabled("graphics") and self.service_of(d).state is ConnState.CONNECTED:
            self.notify(f"'{d.name}' is {d.state}: its screen can be shown while it runs. Start it with s.",
                        title="Screen", severity="warning", timeout=5)
            return
        if d := self._selected_or_none("graphics"):
            self._open_graphics(d)

    @work(group="graphics")
    async def _open_graphics(self, d: DomainInfo) -> None:
        from ..core.consoles import graphics
        from .graphics_screen import GraphicsScreen
        svc = self.service_of(d)
        try:
            displays = await svc.call(lambda c: graphics.displays_of(c, d.uuid),
                                               action="read the displays of", obj=f"domain '{d.name}'")
        except VmtuiError as err:
            self.notify(err.message, title="Screen", severity="error", timeout=12)
            return
        if not displays:
            self.notify(f"'{d.name}' has no VNC or SPICE display, so there is no screen to show. "
                        "Its serial console is on c.", title="Screen", severity="warning", timeout=8)
            return
        self.push_screen(GraphicsScreen(svc, d.uuid, d.name, displays=displays))

    def action_details(self) -> None:
        if d := self._selected_or_none("details"):
            from .screens import DetailsScreen
            self.push_screen(DetailsScreen(self.service_of(d), d.uuid, d.name))

    def action_settings(self) -> None:
        if d := self._selected_or_none("settings"):
            from .settings import SettingsScreen
            self.push_screen(SettingsScreen(self.service, d.uuid, d.name))

    def action_xml(self) -> None:
        if d := self._selected_or_none("xml"):
            from .screens import XmlScreen
            self.push_screen(XmlScreen(self.service_of(d), d.uuid, d.name))

    def action_disks(self) -> None:
        if d := self._selected_or_none("disks"):
            from .disks_screen import DisksScreen
            self.push_screen(DisksScreen(self.service_of(d), d.uuid, d.name))

    def action_snapshots(self) -> None:
        if d := self._selected_or_none("snapshots"):
            from .snapshots_screen import SnapshotsScreen
            self.push_screen(SnapshotsScreen(self.service_of(d), d.uuid, d.name))

    # --- storage and networks screens (S, N), per host ------------------------------

    def action_storage(self) -> None:
        from .storage_screen import StorageScreen
        if not isinstance(self.screen, StorageScreen):
            self.choose_host("Storage of which host?", lambda svc: svc and self.push_screen(StorageScreen(svc)),
                             prefer_selected=True)

    def action_networks(self) -> None:
        from .network_screen import NetworkScreen
        if not isinstance(self.screen, NetworkScreen):
            self.choose_host("Networks of which host?", lambda svc: svc and self.push_screen(NetworkScreen(svc)),
                             prefer_selected=True)

    def _object_event(self, event: HostObjectChanged, slot: HostSlot) -> None:
        if event.kind == "pool":
            self.check_storage(slot)
        for screen in self.screen_stack:
            forward = getattr(screen, "on_object_event", None)
            # a screen about one host's objects hears that host only
            if forward is not None and getattr(screen, "service", slot.service) is slot.service:
                forward(event.kind, event.name)

    def set_storage_warnings(self, warnings: list[str], slot: HostSlot | None = None) -> None:
        slot = slot or self.primary
        if slot is not None and warnings != slot.storage_warnings:
            slot.storage_warnings = list(warnings)
            if self.list_screen.is_mounted:
                self.update_status()

    def check_storage(self, slot: HostSlot | None = None) -> None:
        """Pool warnings for the status line: on connect, on pool events and
        every few minutes (volumes fill up without events), never per stats tick."""
        for one in ([slot] if slot is not None else list(self.slots.values())):
            self.run_worker(partial(self._check_storage, one), group=f"storage-check-{one.name}", exclusive=True)

    async def _check_storage(self, slot: HostSlot) -> None:
        service = slot.service
        if service.state is not ConnState.CONNECTED:
            return
        from ..core import storage
        try:
            pools = await service.call(storage.list_pools, action="list storage pools of", obj=service.display_uri)
        except VmtuiError as err:
            log.info("storage check failed: %s", err)
            return
        self.set_storage_warnings(storage.pool_warnings(pools, short=True), slot)

    def action_cloudinit_library(self) -> None:
        from .cloudinit_editor import CloudInitLibraryScreen
        d = self.table.selected
        svc = self.service_of(d) if d is not None else self.service
        if svc.state is not ConnState.CONNECTED:
            d = None
        self.push_screen(CloudInitLibraryScreen(svc, domain_name=d.name if d else None,
                                                domain_uuid=d.uuid if d else None))

    def action_kickstart(self) -> None:
        from .kickstart_editor import KickstartEditorScreen

        if not isinstance(self.screen, KickstartEditorScreen):
            self.push_screen(KickstartEditorScreen())

    # --- errors nobody caught -------------------------------------------------------

    def _handle_exception(self, error: Exception) -> None:
        """Textual's last stop for an error no handler caught: it ends the
        app with a traceback. Two kinds are not worth that:

        * work of a screen the user has already left (its worker ended after
          the screen closed, keys typed ahead reached it as it went): the
          screen is gone, so is what it would have shown -- logged, nothing
          else;
        * a worker's error elsewhere: the worker is over and nothing else
          depends on it -- logged with its traceback, and the user is told
          where.

        Anything else (an error in a message handler stops that widget's
        message loop) still ends the app. With ``VMTUI_STRICT=1`` (the test
        suite) only the first kind is absorbed: a bug fails its test."""
        from textual.worker import WorkerFailed

        cause = error.error if isinstance(error, WorkerFailed) else error
        node = _failing_node(isinstance(error, WorkerFailed))
        if node is not None and self._left_behind(node):
            log.info("late work of a closed %s failed (ignored): %r", type(node).__name__, cause,
                     exc_info=cause)
            return
        if isinstance(error, WorkerFailed) and not STRICT:
            log.error("unexpected error in %s", type(node).__name__ if node else "a worker", exc_info=cause)
            from ..core.connection import logs
            where = logs.log_path()
            self.notify(f"{type(cause).__name__}: {cause}" + (f"\nDetails in {where}." if where else ""),
                        title="Something went wrong inside vmtui", severity="error", timeout=20, markup=False)
            return
        super()._handle_exception(error)

    def _left_behind(self, node) -> bool:
        """``node`` belongs to a screen no longer shown or kept (popped, or
        removed with its screen)."""
        if node is self:  # (the app's own .screen is the screen on top)
            return False
        try:
            screen = node.screen  # a screen's is itself
        except NoScreen:  # removed from its screen
            return True
        return screen not in self.screen_stack and screen not in self._installed_screens.values()

    async def _replace_screen(self, screen: Screen) -> Screen:
        """Textual's (a screen leaves the stack and is removed), minus a
        stray cancellation. The removal waits for the screen's widgets'
        tasks; when a worker that was itself waiting on them is cancelled
        (its screen unmounts as keys typed ahead close it), the cancellation
        reaches those tasks and then this wait, which runs in the app's own
        message loop: the loop ended and vmtui quit without a word. Only a
        cancellation of the app's own task goes on."""
        try:
            return await super()._replace_screen(screen)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise
            log.info("the removal of %s was cancelled under it; the screen is gone", type(screen).__name__)
            return screen

    def pop_screen(self):  # noqa: D102 - Textual's, plus the memo
        # The screen going away drew through Textual's render memo, which
        # keeps its widgets' render caches alive (release_render_memo): let
        # them go with it, not once 1,024 dead widgets' caches have piled up
        # (20 MiB of high-water mark after a few hundred screens in a row).
        done = super().pop_screen()
        release_render_memo()
        return done

    def action_help(self) -> None:
        from .screens import HelpScreen
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    # --- filter and sort ----------------------------------------------------------

    def action_filter(self) -> None:
        box = self.list_screen.query_one("#filter", Input)
        box.display = True
        box.focus()

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.table.set_text_filter(event.value.strip())
        self.update_status()
        self.update_selection()
        self.want_titles()

    @on(Input.Submitted, "#filter")
    def _filter_done(self, event: Input.Submitted) -> None:
        box = self.list_screen.query_one("#filter", Input)
        if not box.value:
            box.display = False
        self.table.focus()

    def action_state_filter(self) -> None:
        label = self.table.cycle_state_filter()
        self.want_titles()
        self.notify(f"Showing {label}", timeout=2)
        self.update_status()
        self.update_selection()
        self._refresh_keys()

    def action_sort(self) -> None:
        label = self.table.cycle_sort()
        self.notify(f"Sorted by {label}", timeout=2)
        self.want_titles()

    def action_reverse_sort(self) -> None:
        self.table.reverse_sort()
        self.want_titles()

    def action_graph_column(self) -> None:
        shown = not self.table.column_shown("graph")
        self.table.show_column("graph", shown)
        self.notify("CPU graph column shown (CPU % of the last 20 s)" if shown else "CPU graph column hidden",
                    timeout=2)

    def action_addresses(self) -> None:
        shown = not self.table.column_shown("address")
        self.table.show_column("address", shown)
        if shown:
            self.notify("Address column: the running guests' addresses, read now and every "
                        f"{ADDRESS_INTERVAL:g} s (details, Enter, read them at once)", timeout=4)
            self._refresh_addresses()
        else:
            self.notify("Address column hidden", timeout=2)
