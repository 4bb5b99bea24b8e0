"""Several hosts in one list: the app's side of each host (:class:`HostSlot`)
and the keys that work across hosts (:class:`FleetActions`, mixed into
VmtuiApp): marks (Space, ``*``), bulk actions (``b``), migration (``M``),
the connections screen (``H``) and grouping by host (``G``).

The rows, their keys and the marks are kept by core/fleet/model.py; the
bulk runner and the migration are core too (core/fleet/bulk.py,
core/migrate). With one host nothing here shows: no Host column, the
status line of one host.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Callable

from rich.markup import escape
from rich.text import Text

from ..core.connection.rows import DomainInfo, state_counts
from ..core.connection.service import ConnState, LibvirtService
from ..core.fleet.model import Marks, host_state, key_of, row_key

if TYPE_CHECKING:  # pragma: no cover
    from .messages import ServiceBridge

log = logging.getLogger(__name__)

STATE_STYLE = {"connected": "green", "read-only": "bold yellow", "connecting": "yellow"}


def short_uri(uri: str) -> str:
    """A URI as the screens show it: a test-driver host file by its name
    (its directory is of no interest), anything else as it is."""
    if uri.startswith("test:///") and uri.endswith(".xml"):
        return "test:///…/" + uri.rsplit("/", 1)[-1]
    return uri


class HostSlot:
    """One host of the app: its service, its bridge (the typed messages,
    tagged with the host), its serial consoles and its pool warnings."""

    def __init__(self, service: LibvirtService) -> None:
        self.service = service
        self.bridge: ServiceBridge | None = None
        self._consoles = None
        self._guests = None
        self._guest_listener: Callable[[object], None] | None = None
        self.guest_news: Callable[[], object] | None = None  # unsubscribes the app from the watch
        self.storage_warnings: list[str] = []
        self.was_disconnected = False
        self.connect_error = None  # VmtuiError of the last failed connect

    @property
    def name(self) -> str:
        return self.service.name

    # The consoles and the guest watch are made when first needed (a console
    # opened, a VM made or adopted, the Address column shown): starting
    # vmtui imports neither (issue 14).

    @property
    def consoles(self):
        """The host's serial consoles (core/consoles/serial.py)."""
        if self._consoles is None:
            from ..core.consoles.serial import ConsoleManager

            self._consoles = ConsoleManager(self.service)
        return self._consoles

    @consoles.setter
    def consoles(self, manager) -> None:
        self._consoles = manager

    @property
    def guests_made(self) -> bool:
        """The guest watch exists (one that does not watches nothing)."""
        return self._guests is not None

    @property
    def guests(self):
        """Addresses and readiness of running guests (the Address column,
        the state's "(cloud-init)", details); seeds removed after the first
        boot (core/consoles/guests.py)."""
        if self._guests is None:
            from ..core.consoles.guests import GuestWatch

            self._guests = GuestWatch(self.service, self.consoles)
            if self._guest_listener is not None:
                self.guest_news = self._guests.subscribe(self._guest_listener)
        return self._guests

    def listen_guests(self, listener: Callable[[object], None]) -> None:
        """``listener`` hears the guest watch's news (now, or once it is made)."""
        self._guest_listener = listener
        if self._guests is not None:
            self.guest_news = self._guests.subscribe(listener)

    def close_ui(self) -> None:
        if self.bridge is not None:
            self.bridge.close()
            self.bridge = None
        if self.guest_news is not None:
            self.guest_news()
            self.guest_news = None
        if self._guests is not None:
            self._guests.close()
        if self._consoles is not None:
            self._consoles.close_all()
        self.service.shown = None


class FleetActions:
    """The app's actions across hosts (VmtuiApp inherits these)."""

    slots: dict[str, HostSlot]

    def _init_fleet(self) -> None:
        self.marks = Marks()

    def _add_slot(self, service: LibvirtService) -> HostSlot:
        slot = HostSlot(service)
        self.slots[service.name] = slot
        service.shown = lambda: self.shown_uuids(service)
        return slot

    def shown_uuids(self, service: LibvirtService) -> list[str]:
        """What the user sees of ``service``'s domains: the list's rows on
        screen and the VM of every screen about one (details, settings,
        XML...). Its stats ticks read these every tick, the rest less often."""
        out: list[str] = []
        for screen in self.screen_stack:
            if getattr(screen, "service", None) is service and isinstance(getattr(screen, "uuid", None), str):
                out.append(screen.uuid)
        out += self._on_screen_by_host().get(service.name, [])
        return out

    @property
    def fleet(self) -> bool:
        """Several hosts (named): the list has a Host column and keys rows by host too."""
        return len(self.slots) > 1 or any(name for name in self.slots)

    # --- titles first for what is on screen ----------------------------------------

    def _on_screen_by_host(self) -> dict[str, list[str]]:
        """The UUIDs of the list's rows on screen now, by host."""
        table = self._list_table()
        if table is None or not table.row_count:
            return {}
        out: dict[str, list[str]] = {}
        domains = table.domains
        for key in table.keys_on_screen():
            d = domains.get(key)
            if d is not None:
                out.setdefault(d.host, []).append(d.uuid)
        return out

    def want_titles(self, host: str | None = None) -> None:
        """Tell the services which rows are on screen: their titles come first."""
        for name, uuids in self._on_screen_by_host().items():
            slot = self.slots.get(name)
            if slot is not None and (host is None or name == host):
                slot.service.prioritize_titles(uuids)

    # --- status line ----------------------------------------------------------------

    def fleet_status(self) -> Text:
        parts: list[Text] = []
        for i, slot in enumerate(self.slots.values()):
            st = host_state(slot.service, slot.connect_error.cause if slot.connect_error else "")
            if st.word == "not connected" and slot.connect_error is None and not self.ready:
                st = type(st)(st.name, "connecting")
            parts.append(Text(" " if i == 0 else " · "))
            parts.append(Text(st.name, style="bold"))
            parts.append(Text(f" {st.word}", style=STATE_STYLE.get(st.word, "bold red")))
        if not self.slots:
            parts.append(Text(" no host: H opens the connections", style="bold yellow"))
        table = self._list_table()
        doms = table.domains.values() if table is not None else ()
        counts = " │ " + state_counts(doms)
        parts.append(Text(counts))
        if self.marks:
            parts.append(Text(f" │ {len(self.marks)} marked", style="bold"))
        warnings = self.storage_warnings
        if warnings:
            parts.append(Text(" │ ! " + "; ".join(warnings), style="bold yellow"))
        if table is not None and (table.state_filter_label != "all" or table.text_filter):
            f = [] if table.state_filter_label == "all" else [table.state_filter_label]
            if table.text_filter:
                f.append(f"'{table.text_filter}'")
            parts.append(Text(" │ showing " + " ".join(f), style="bold cyan"))
        return Text.assemble(*parts)

    # --- choosing a host -------------------------------------------------------------

    def connected_slots(self, writable: bool = False) -> list[HostSlot]:
        return [s for s in self.slots.values() if s.service.state is ConnState.CONNECTED
                and not (writable and s.service.readonly)]

    def choose_host(self, question: str, then: Callable[[LibvirtService | None], object], *,
                    writable: bool = False, prefer_selected: bool = False) -> None:
        """``then(service)`` with the host to work on: the only one, the
        selected VM's (``prefer_selected``), or the one the user picks."""
        slots = self.connected_slots(writable)
        if prefer_selected:
            d = self.table.selected
            if d is not None and (slot := self.slots.get(d.host)) is not None:
                then(slot.service)
                return
        if len(slots) <= 1 or not self.fleet:
            service = slots[0].service if slots else self.primary.service
            then(service)
            return
        from .connections_screen import HostPicker

        self.push_screen(HostPicker(question, [s.service for s in slots]),
                         lambda name: then(self.slots[name].service if name in self.slots else None))

    # --- hosts coming and going -------------------------------------------------------

    def add_host(self, uri: str, name: str = "") -> LibvirtService:
        """Connect one more host (the connections screen): the list becomes a
        fleet list if it was a one-host list."""
        from ..core.connection.hosts import default_name, unique_name
        from ..core.connection.service import normalize_uri

        for slot in self.slots.values():
            if normalize_uri(slot.service.uri) == normalize_uri(uri):
                if slot.service.state is ConnState.CLOSED:
                    self.connect(slot)
                return slot.service
        if not self.fleet and self.primary is not None:
            # the one host gets a name: its rows are keyed by host from now on
            first = self.primary
            saved = {c.uri: c.name for c in self.config.connections}
            first_name = saved.get(first.service.display_uri) or default_name(first.service.display_uri)
            del self.slots[""]
            first.service.rename(first_name)
            self.slots[first_name] = first
            self._marks_rekey(first_name)
        taken = set(self.slots)
        service = LibvirtService(uri, stats_interval=self.config.stats_interval,
                                 reconnect=not uri.startswith("test:"),
                                 name=unique_name(name or default_name(uri), taken))
        slot = self._add_slot(service)
        self.table.set_extra_columns(host=True, marks=bool(self.marks))
        if self._list_mounted() and self.primary is not None:
            # the rows of the hosts there were, under their names
            self.table.reset([d for s in self.slots.values() for d in s.service.domains.values()])
        self._listen(slot)
        self.update_status()
        self.connect(slot)
        return service

    async def remove_host(self, name: str) -> bool:
        """Disconnect a host: its rows, marks, consoles and screens go. The
        last host stays (False): the list needs one; q quits."""
        if name not in self.slots or len(self.slots) == 1:
            return False
        slot = self.slots.pop(name)
        slot.close_ui()
        for screen in list(self.screen_stack[1:]):
            if getattr(screen, "service", None) is slot.service:
                screen.dismiss() if hasattr(screen, "dismiss") else None
        gone = [k for k, d in self.table.domains.items() if d.host == name]
        self.table.drop_many(gone)
        self._marks_forget(gone)
        await slot.service.close()
        self._list_changed()
        return True

    def follow_moved_selection(self) -> bool:
        """The selected VM was removed from its host and is listed on
        another one (a migration): select it there. True when it did."""
        from ..core.fleet.model import split_key

        table = self._list_table()
        lost = table.lost if table is not None else None
        if lost is None or lost.why != "removed" or not self.fleet:
            return False
        host, uuid = split_key(lost.key)
        there = next((k for k, d in table.domains.items() if d.uuid == uuid and d.host != host and k in table.rows),
                     None)
        if there is None:
            return False
        table.select(there)
        self.notify(escape(f"'{lost.name}' moved from {host} to {table.domains[there].host}: selected there."),
                    title="Selection", timeout=5)
        self._list_changed()
        return True

    # --- marks ---------------------------------------------------------------------------

    def _marks_changed(self, keys) -> None:
        self.table.set_extra_columns(host=self.fleet, marks=bool(self.marks))
        self.table.refresh_marks(keys)
        self._list_changed()

    def _marks_forget(self, keys) -> None:
        if self.marks.unmark(keys):
            self._marks_changed([])

    def _marks_follow_rows(self) -> None:
        if self.marks.forget_missing(self.table.domains):
            self._marks_changed([])

    def _marks_rekey(self, host: str) -> None:
        """The one host got a name: its marks follow its rows' new keys."""
        old = self.marks.clear()
        self.marks.mark(key_of(host, k) for k in old)

    def action_toggle_mark(self) -> None:
        """Space: mark or unmark the selected VM, then go to the next row."""
        d = self.table.selected
        if d is None:
            self.explain_disabled("toggle_mark")
            return
        key = row_key(d)
        self.marks.toggle(key)
        self._marks_changed([key])
        if self.table.cursor_row < self.table.row_count - 1:
            self.table.action_cursor_down()

    def action_mark_all(self) -> None:
        """``*``: mark every VM shown; when all shown are marked, unmark them."""
        shown = self.table.visible_keys()
        if not shown:
            self.notify("No VM is shown.", severity="warning", timeout=3)
            return
        if all(k in self.marks for k in shown):
            self.marks.unmark(shown)
            self.notify(f"Unmarked the {len(shown)} VMs shown ({len(self.marks)} still marked).", timeout=3)
        else:
            self.marks.mark(shown)
            self.notify(f"Marked the {len(shown)} VMs shown ({len(self.marks)} marked).", timeout=3)
        self._marks_changed(shown)

    def marked_targets(self) -> list[tuple[LibvirtService, DomainInfo]]:
        """The marked VMs with their hosts' services, in marking order."""
        out = []
        for d in self.marks.marked(self.table.domains):
            slot = self.slots.get(d.host)
            if slot is not None:
                out.append((slot.service, d))
        return out

    # --- bulk actions -----------------------------------------------------------------

    def action_bulk(self) -> None:
        """``b``: an action on every marked VM, after one confirmation."""
        if not self.marks:
            self.notify("No VM is marked: Space marks the selected VM, * every VM shown.",
                        severity="warning", timeout=5)
            return
        self._bulk()

    def _bulk(self) -> None:
        self.run_worker(self._bulk_flow(), group="bulk", exclusive=True)

    async def _bulk_flow(self) -> None:
        from ..core.fleet import bulk
        from .bulk_screens import BulkConfirm, BulkMenu, BulkProgressScreen

        targets = self.marked_targets()
        if not targets:
            return
        name = await self.push_screen_wait(BulkMenu(len(targets)))
        if name is None:
            return
        action = bulk.BY_NAME[name]
        options = bulk.BulkOptions()
        if name == "migrate":
            from .migrate_screen import BulkMigrateDialog

            others = [s.service for s in self.connected_slots(writable=True)]
            chosen = await self.push_screen_wait(BulkMigrateDialog(others))
            if chosen is None:
                return
            options.dest, options.migration = chosen
        report = bulk.plan_bulk(action, targets, options)
        if not await self.push_screen_wait(BulkConfirm(action, report, hidden=self._hidden_count(targets))):
            return
        screen = BulkProgressScreen(action, report)
        self.push_screen(screen)
        await bulk.run_bulk(action, targets, options=options, progress=screen.outcome_changed, report=report)
        screen.finished()
        failed = report.failed
        self.notify(escape(report.summary()), title=f"Bulk: {action.label}",
                    severity="error" if failed else "information", timeout=20 if failed else 8)

    def _hidden_count(self, targets) -> int:
        shown = set(self.table.visible_keys())
        return sum(1 for _, d in targets if row_key(d) not in shown)

    # --- migration -----------------------------------------------------------------------

    def action_migrate(self) -> None:
        """``M``: move the selected VM to another connected host."""
        d = self._selected_or_none("migrate")
        if d is None:
            return
        svc = self.service_of(d)
        others = [s.service for s in self.connected_slots(writable=True) if s.service is not svc]
        if not others:
            self.notify("Migration needs another connected host: H opens the connections "
                        "(or start vmtui with several -c URI).", title="Migrate", severity="warning", timeout=8)
            return
        from .migrate_screen import MigrateScreen

        def done(result) -> None:
            if result is None:
                return
            self.notify(escape(result.summary()), title="Migrate", timeout=10)
            dest = next((s for s in self.slots.values() if s.service.name == result.dest), None)
            if dest is not None:
                self._select_when_listed(key_of(dest.name, result.uuid))

        self.push_screen(MigrateScreen(svc, d, others), done)

    # --- the connections screen, grouping ---------------------------------------------

    def action_connections(self) -> None:
        from .connections_screen import ConnectionsScreen

        if not isinstance(self.screen, ConnectionsScreen):
            self.push_screen(ConnectionsScreen())

    def action_group_hosts(self) -> None:
        if not self.fleet:
            self.notify("One host: there is nothing to group. H connects more hosts.", timeout=4)
            return
        on_ = self.table.toggle_group_by_host()
        self.want_titles()
        self.notify("Grouped by host" if on_ else "Not grouped by host", timeout=2)
