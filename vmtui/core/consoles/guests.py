"""Guests you can reach: their addresses and readiness, kept for the UI, and
the wait of ``vmtui create --wait``.

Two users, one set of pieces (:mod:`vmtui.core.host.addresses`,
:mod:`.readiness`, :func:`vmtui.core.provision.seed.remove_seed`):

* :class:`GuestWatch`, for the UI: a cache of each running guest's addresses
  (read on demand, after a start, and on a slow cadence for the running VMs
  when the list shows them -- one worker call for all, never per stats
  tick), and a readiness detector on the serial console of the VMs this UI
  created or started (their console session is opened in the background,
  never forced away from another client). What it learns goes onto the rows
  (``LibvirtService.set_guest``). When cloud-init reports that it finished
  with the seed of a VM whose seed is to go after the first boot, the watch
  removes it -- only for VMs it was told to watch that way (``adopt``).
* :func:`wait_until_ready`, for the command line: one VM, from its start to
  "ready" (cloud-init finished and an address known, or a login prompt for
  a guest without cloud-init), an error, its stop, or the time limit.

Everything that talks to libvirt runs through ``service.call``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Awaitable, Callable

from ..connection.rows import NO_GUEST_FACTS, GuestFacts
from ..errors import VmtuiError
from ..host import addresses as A
from . import readiness as R

if TYPE_CHECKING:  # pragma: no cover
    from ..connection.service import LibvirtService
    from ..provision.seed import SeedRemoval
    from .serial import ConsoleManager, ConsoleSession

log = logging.getLogger(__name__)

#: After a VM starts, its addresses are read again this many seconds later
#: (DHCP takes a while); then on the slow cadence.
AFTER_START = (5.0, 15.0, 40.0)
ADDRESS_TTL = 20.0  # s a cached report is fresh enough for the details screen


@dataclass(slots=True)
class GuestView:
    """Everything known about one watched (or asked-about) guest."""

    uuid: str
    name: str
    detector: R.ReadinessDetector = field(default_factory=R.ReadinessDetector)
    addresses: A.AddressReport | None = None
    addresses_at: float = 0.0
    watched: bool = False  # its console feeds the detector
    remove_seed: bool = False  # its seed goes when cloud-init finished with it (this process waits)
    seed: "SeedRemoval | None" = None
    seed_error: str = ""
    console_note: str = ""  # why the console is not read ("" when it is)
    stop_observing: Callable[[], None] | None = None

    @property
    def readiness(self) -> R.Readiness:
        return self.detector.state

    def facts(self) -> GuestFacts:
        st = self.detector.state
        report = self.addresses
        ips = tuple(report.ips) if report is not None else ()
        source = report.addresses[0].source if report is not None and report.addresses else ""
        return GuestFacts(addresses=ips, address_source=source, readiness=st.phase,
                          readiness_detail=st.detail)


Listener = Callable[[Any], None]


@dataclass(slots=True)
class SeedRemoved:
    """The watch removed a seed (``removal``) or failed to (``error``)."""

    uuid: str
    name: str
    removal: "SeedRemoval | None" = None
    error: str = ""


class GuestWatch:
    """The UI's addresses and readiness of running guests (see the module)."""

    def __init__(self, service: "LibvirtService", consoles: "ConsoleManager | None" = None,
                 *, clock: Callable[[], float] = time.monotonic) -> None:
        self.service = service
        self.consoles = consoles
        self.clock = clock
        self.views: dict[str, GuestView] = {}
        self._listeners: list[Listener] = []
        self._tasks: set[asyncio.Task] = set()
        self._removing: set[str] = set()
        self.after_start = AFTER_START  # s after a start at which the addresses are read

    # -- listeners ------------------------------------------------------------

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def _tell(self, news: Any) -> None:
        for listener in list(self._listeners):
            try:
                listener(news)
            except Exception:
                log.exception("guest watch listener failed on %r", news)

    def _spawn(self, coro: Awaitable) -> asyncio.Task:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for view in self.views.values():
            if view.stop_observing is not None:
                view.stop_observing()
                view.stop_observing = None

    # -- views ----------------------------------------------------------------

    def view(self, uuid: str) -> GuestView | None:
        return self.views.get(uuid)

    def _view(self, uuid: str) -> GuestView:
        v = self.views.get(uuid)
        if v is None:
            d = self.service.domains.get(uuid)
            v = self.views[uuid] = GuestView(uuid, d.name if d is not None else uuid)
        return v

    def _push(self, view: GuestView) -> None:
        self.service.set_guest(view.uuid, view.facts())

    # -- addresses ------------------------------------------------------------

    async def addresses(self, uuid: str, *, max_age: float = 0.0) -> A.AddressReport:
        """The addresses of ``uuid``: the cached report when younger than
        ``max_age`` seconds, else read now. Raises VmtuiError."""
        view = self._view(uuid)
        if view.addresses is not None and max_age and self.clock() - view.addresses_at < max_age:
            return view.addresses
        report = await self.service.call(lambda c: A.guest_addresses(c, uuid), action="read the addresses of",
                                         obj=f"domain '{view.name}'")
        self._store(view, report)
        return report

    def _store(self, view: GuestView, report: A.AddressReport) -> None:
        view.addresses, view.addresses_at = report, self.clock()
        self._push(view)

    async def refresh_addresses(self, uuids: list[str] | None = None) -> None:
        """Read the addresses of the running VMs (or of ``uuids`` among
        them) in one worker call; failures are logged, never raised."""
        try:
            found = await self.service.call(lambda c: A.running_addresses(c, uuids),
                                            action="read the guests' addresses on", obj=self.service.display_uri)
        except VmtuiError as err:
            log.info("address refresh failed: %s", err)
            return
        for uuid, report in found.items():
            self._store(self._view(uuid), report)

    def _later(self, uuid: str) -> None:
        async def run() -> None:
            waited = 0.0
            for delay in self.after_start:
                await asyncio.sleep(delay - waited)
                waited = delay
                d = self.service.domains.get(uuid)
                if d is None or not d.is_active:
                    return
                try:
                    await self._read(uuid)
                except VmtuiError as err:
                    log.info("addresses of %s: %s", uuid, err)
                    return
        self._spawn(run())

    async def _read(self, uuid: str) -> None:
        """The addresses; for a followed boot whose console cannot be read
        (another client holds it), cloud-init's state from the guest agent too."""
        view = self._view(uuid)
        if not (view.watched and view.console_note and not view.readiness.finished):
            await self.addresses(uuid)
            return
        report, agent, _note = await self.service.call(lambda c: _probe(c, uuid, True),
                                                       action="read the addresses of", obj=f"domain '{view.name}'")
        if agent is not None and view.detector.merge_agent(agent):
            self._maybe_remove_seed(view)
        self._store(view, report)

    # -- readiness ----------------------------------------------------------------

    async def adopt(self, uuid: str) -> None:
        """This UI made the VM (or gave it its seed): watch its boot, and
        remove its seed when cloud-init finished with it, if the seed was
        asked to go after the first boot."""
        from ..provision import seed

        view = self._view(uuid)

        def due(conn) -> bool:
            import libvirt
            dom = conn.lookupByUUIDString(uuid)
            if not dom.isPersistent():
                return False
            status = seed.seed_status(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
            return status is not None and status.attached and status.remove_after_first_boot
        try:
            view.remove_seed = await self.service.call(due, action="read the cloud-init seed of",
                                                       obj=f"domain '{view.name}'")
        except VmtuiError as err:
            log.info("seed of %s: %s", view.name, err)
        await self.watch(uuid)

    async def watch(self, uuid: str, running: bool | None = None) -> None:
        """Read the boot of ``uuid`` on its serial console (opened in the
        background if it runs -- ``running``: it does, whatever its row says
        yet; never taken from another client), from now on, this run and the
        next ones."""
        view = self._view(uuid)
        if self.consoles is None:
            return
        if view.stop_observing is None:
            loop = asyncio.get_running_loop()

            def on_data(data: bytes) -> None:  # the libvirt-events thread
                try:
                    loop.call_soon_threadsafe(self._feed, view, data)
                except RuntimeError:  # the loop is closed
                    pass
            view.stop_observing = self.consoles.observe(uuid, on_data)
        view.watched = True
        if running is None:
            d = self.service.domains.get(uuid)
            running = d is not None and d.is_active
        if running:
            await self._open_console(view)
            self._later(uuid)

    async def _open_console(self, view: GuestView) -> None:
        from .serial import ConsoleError
        session = self.consoles.session(view.uuid) if self.consoles is not None else None
        if session is not None and session.is_open:
            view.console_note = ""
            return
        try:
            await self.consoles.open(view.uuid)
            view.console_note = ""
        except ConsoleError as err:
            view.console_note = err.state
        except VmtuiError as err:
            view.console_note = err.cause
        if view.console_note:
            log.info("not reading the console of %s: %s", view.name, view.console_note)

    def _feed(self, view: GuestView, data: bytes) -> None:
        if view.detector.feed(data):
            self._push(view)
            self._maybe_remove_seed(view)

    def _maybe_remove_seed(self, view: GuestView) -> None:
        if not (view.remove_seed and view.readiness.seed_read) or view.uuid in self._removing:
            return
        from ..provision import seed
        self._removing.add(view.uuid)

        async def run() -> None:
            try:
                removal = await self.service.call(lambda c: seed.remove_seed(c, view.uuid),
                                                  action="remove the cloud-init seed of", obj=f"domain '{view.name}'")
            except VmtuiError as err:
                view.seed_error = err.message
                self._tell(SeedRemoved(view.uuid, view.name, error=err.message))
            else:
                view.seed, view.remove_seed = removal, False
                if removal is not None:
                    self._tell(SeedRemoved(view.uuid, view.name, removal))
            finally:
                self._removing.discard(view.uuid)
        self._spawn(run())

    # -- lifecycle ------------------------------------------------------------------

    def expect_start(self, uuid: str) -> None:
        """The user starts this VM here: read its boot when it starts."""
        self._view(uuid).watched = True

    def started(self, uuid: str, addresses: bool = False) -> None:
        """A VM started (an event). One this UI watches (made, started or
        gave a seed) gets its console read from the first line and its
        addresses read a few times while it boots; others get the
        addresses read so when ``addresses`` (the list shows them)."""
        view = self.views.get(uuid)
        if view is not None and view.watched:
            self._spawn(self.watch(uuid, running=True))
        elif addresses:
            self._later(uuid)

    def stopped(self, uuid: str) -> None:
        """A VM stopped: what was known about its run is gone."""
        view = self.views.get(uuid)
        if view is None:
            return
        view.addresses, view.addresses_at = None, 0.0
        boots = view.detector.state.boots
        view.detector = R.ReadinessDetector()
        view.detector.state.boots = boots
        self.service.set_guest(uuid, NO_GUEST_FACTS)

    def removed(self, uuid: str) -> None:
        view = self.views.pop(uuid, None)
        if view is not None and view.stop_observing is not None:
            view.stop_observing()


# --------------------------------------------------------------------------
# waiting for one VM (vmtui create --wait)


@dataclass(slots=True)
class WaitOutcome:
    ready: bool
    why: str  # a sentence: what made it ready, or what went wrong
    readiness: R.Readiness
    addresses: A.AddressReport | None = None
    tail: list[str] = field(default_factory=list)  # the console's last lines
    seed: "SeedRemoval | None" = None
    seed_error: str = ""
    console_note: str = ""  # why the console could not be read ("" it was)


def _probe(conn, uuid: str, agent: bool) -> tuple[A.AddressReport, R.AgentResult | None, str]:
    """Blocking: the addresses, and cloud-init's state from the guest agent
    when ``agent`` and the agent is connected."""
    import libvirt
    dom = conn.lookupByUUIDString(uuid)
    if not dom.isActive():
        return A.AddressReport(dom.name(), running=False), None, ""
    xml = dom.XMLDesc(0)
    report = A.domain_addresses(dom, A.SOURCES, xml=xml)
    result, note = None, ""
    if agent and A.agent_state(xml) == "connected":
        try:
            result = R.agent_cloud_init(dom)
        except libvirt.libvirtError as err:
            note = str(err)
    return report, result, note


async def wait_until_ready(service: "LibvirtService", uuid: str, *, cloud_init: bool, timeout: float,
                           open_console: Callable[[], Awaitable["ConsoleSession | None"]],
                           remove_seed: bool = False, restarts: int = 0,
                           progress: Callable[[str], None] | None = None,
                           poll: tuple[float, ...] = (2.0, 3.0, 5.0, 10.0)) -> WaitOutcome:
    """Wait until VM ``uuid`` is ready, an error shows, it stops or
    ``timeout`` seconds went by.

    Ready: with ``cloud_init`` (the VM has a seed), cloud-init finished (its
    console line, or its result file read by the guest agent) and, if the VM
    has NICs, an address is known; without, a login prompt (or cloud-init's
    finished line). ``open_console()`` gives the console session to read (or
    None: then only the guest agent and the addresses tell); it is called
    again after a restart. ``restarts``: how many times a VM that stops is
    started again from its definition (1 after an install phase, as
    virt-install does). ``remove_seed``: once cloud-init finished with the
    seed, remove it (:func:`vmtui.core.provision.seed.remove_seed`).
    ``progress(text)`` hears each change of the readiness.
    """
    from ..provision import seed as seed_mod

    loop = asyncio.get_running_loop()
    det = R.ReadinessDetector()
    changed = asyncio.Event()
    outcome = WaitOutcome(False, "", det.state)
    name = service.domains[uuid].name if uuid in service.domains else uuid
    deadline = loop.time() + timeout
    stop_observing: list[Callable[[], None]] = []

    def on_data(data: bytes) -> None:  # libvirt-events thread
        try:
            loop.call_soon_threadsafe(feed, data)
        except RuntimeError:
            pass

    def feed(data: bytes) -> None:
        if det.feed(data):
            changed.set()

    def on_closed(reason: str) -> None:
        try:
            loop.call_soon_threadsafe(changed.set)
        except RuntimeError:
            pass

    async def attach() -> None:
        try:
            session = await open_console()
        except VmtuiError as err:
            outcome.console_note = getattr(err, "state", "") or err.cause
            return
        if session is None:
            outcome.console_note = outcome.console_note or "no console"
            return
        outcome.console_note = ""
        stop_observing.append(session.observe(on_data, on_closed))
        # what arrived before (the session may have been opened a moment ago)
        det.feed(session.scrollback.snapshot())

    def running() -> bool:
        d = service.domains.get(uuid)
        return d is not None and d.is_active

    told = ["", ""]
    polls = iter(poll)
    interval = next(polls)
    next_probe = loop.time()
    seed_done = False
    await attach()
    try:
        while True:
            st = det.state
            if (st.phase, st.detail) != tuple(told) and st.phase and progress is not None:
                told[:] = [st.phase, st.detail]
                progress(st.detail or st.phase)
            # the seed goes as soon as cloud-init finished with it, whatever comes next
            if remove_seed and st.seed_read and not seed_done:
                seed_done = True
                try:
                    outcome.seed = await service.call(lambda c: seed_mod.remove_seed(c, uuid),
                                                      action="remove the cloud-init seed of", obj=f"domain '{name}'")
                except VmtuiError as err:
                    outcome.seed_error = err.message
            now = loop.time()
            if now >= next_probe and (running() or outcome.addresses is None):
                merged = False
                try:
                    report, agent, _note = await service.call(
                        lambda c: _probe(c, uuid, cloud_init and not det.state.finished),
                        action="read the addresses of", obj=f"domain '{name}'")
                    outcome.addresses = report
                    merged = agent is not None and det.merge_agent(agent)
                except VmtuiError as err:
                    log.info("probe of %s: %s", name, err)
                next_probe = loop.time() + interval
                interval = next(polls, interval)
                if merged:
                    continue  # judge the new state (and the seed) first
            st = det.state
            report = outcome.addresses
            has_address = report is not None and bool(report.addresses)
            needs_address = report is None or report.nics > 0
            if st.phase == R.ERROR:
                outcome.why = st.detail
                return outcome
            if cloud_init and st.finished and (has_address or not needs_address):
                outcome.ready = True
                outcome.why = st.detail
                return outcome
            if not cloud_init and st.phase == R.READY:
                outcome.ready = True
                outcome.why = st.detail
                return outcome
            if not running():
                if restarts > 0:
                    restarts -= 1
                    if progress is not None:
                        progress(f"'{name}' stopped after its installation: starting it from its disk")
                    try:
                        await service.start(uuid)
                        await service.refresh_domain(uuid)  # the row says "running" before we look again
                    except VmtuiError as err:
                        outcome.why = f"the VM stopped and could not be started again: {err.cause}"
                        return outcome
                    for stop in stop_observing:
                        stop()
                    stop_observing.clear()
                    await attach()
                    continue
                d = service.domains.get(uuid)
                outcome.why = f"the VM stopped ({d.state}, {d.reason})" if d is not None else "the VM is gone"
                return outcome
            left = deadline - loop.time()
            if left <= 0:
                st = det.state
                where = st.detail or ("nothing on its console" if not outcome.console_note
                                      else f"its console could not be read: {outcome.console_note}")
                if cloud_init and st.finished and not has_address:
                    where += f"; no address known ({report.explain() if report else 'not read'})"
                outcome.why = f"not ready within {timeout:g} s: {where}"
                return outcome
            changed.clear()
            try:
                await asyncio.wait_for(changed.wait(), timeout=max(0.05, min(left, next_probe - loop.time())))
            except asyncio.TimeoutError:
                pass
    finally:
        outcome.tail = det.tail(20)
        outcome.readiness = det.state
        for stop in stop_observing:
            stop()


# --------------------------------------------------------------------------
# the user to ssh as


_DEFAULT_USERS = (  # osinfo id prefix -> the cloud images' default user
    ("debian", "debian"), ("ubuntu", "ubuntu"), ("fedora", "fedora"), ("centos", "cloud-user"),
    ("rhel", "cloud-user"), ("rocky", "rocky"), ("almalinux", "almalinux"), ("opensuse", "opensuse"),
    ("sle", "sles"), ("alpine", "alpine"), ("archlinux", "arch"),
)


def login_user(user_data: str | None, os_id: str = "") -> str | None:
    """The user to ssh in as: the first user ``user_data`` creates (other
    than cloud-init's "default"), its ``system_info.default_user``, else the
    default user of the distribution's cloud images (by osinfo id), else None."""
    from ..files import safeyaml

    data: Any = None
    if user_data and user_data.lstrip().startswith("#cloud-config"):
        try:
            data = safeyaml.load(user_data)
        except Exception:  # the spec was checked; a user-data that fails here names no user
            data = None
    if isinstance(data, dict):
        users = data.get("users")
        if isinstance(users, str):
            users = [u.strip() for u in users.split(",")]
        default_listed = users is None
        for u in users if isinstance(users, list) else ():
            name = u.get("name") if isinstance(u, dict) else u if isinstance(u, str) else None
            if name == "default":
                default_listed = True
            elif isinstance(name, str) and name:
                return name
        info = data.get("system_info")
        default = info.get("default_user") if isinstance(info, dict) else None
        if isinstance(default, dict) and isinstance(default.get("name"), str):
            return default["name"]
        if not default_listed:
            return None
    for prefix, user in _DEFAULT_USERS:
        if os_id.startswith(prefix):
            return user
    return None


__all__ = ["GuestView", "GuestWatch", "SeedRemoved", "WaitOutcome", "login_user", "wait_until_ready"]
