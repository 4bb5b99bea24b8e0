"""The connection service: one libvirt connection, driven from asyncio.

* Every blocking libvirt call runs in this service's thread pool with a time
  limit (:meth:`LibvirtService.call`), so a hung libvirtd never freezes the UI.
* State changes arrive as libvirt events, dispatched by ``libvirtaio`` on
  its own event thread ("libvirt-events", see :mod:`.eventloop`) and handed
  to the service's asyncio loop with ``call_soon_threadsafe``; there the
  service keeps ``domains`` (keyed by UUID) current and tells its listeners
  what changed.
* Stats come from one bulk call per tick (plus at most one host call),
  whatever the number of domains: ``getAllDomainStats``, or between sweeps
  ``domainListGetStats`` of the running domains the UI shows; the last few minutes of
  each running domain's figures are kept for graphs (:mod:`.history`).
* When the connection drops, listeners hear "disconnected, retrying", the
  service reconnects with backoff and resyncs everything.

Nothing here imports Textual. Several services (hosts) can run side by side.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import threading
import time
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any, Callable, Iterable

import libvirt

from ..xml import ownmeta
from ..errors import (
    AuthFailed,
    CallTimeout,
    ConnectError,
    Disconnected,
    VmtuiError,
    from_libvirt,
    is_connection_lost,
    is_no_domain,
    libvirt_message,
)
from .eventloop import ensure_event_impl
from .history import StatsHistory, capacity_for
from .link import Link, Opener, RetiredLink
from .rows import EVENT_NAMES, NO_GUEST_FACTS, DomainInfo, DomainStats, GuestFacts, HostInfo, version_string
from .stats import FULL_EVERY, SWEEP_EVERY, StatsState

if TYPE_CHECKING:
    from ..xml import domxml

log = logging.getLogger(__name__)

DEFAULT_URI = "qemu:///system"
DEFAULT_TIMEOUT = 30.0
SLOW_TIMEOUT = 120.0  # s: starting a domain, deleting one with its disks
BACKOFF = (1.0, 2.0, 4.0, 8.0, 15.0, 30.0)
REFRESH_BATCH = 50  # domains re-read per worker call after events
TITLE_CHUNK = 8  # domains whose titles one worker call reads (workers share a screenful)
TITLE_WORKERS = 3  # title calls in flight at once (of the link's 4 threads): on a
#                    remote host each domain costs round trips, which overlap
HANG_LIMIT = 15.0  # s a probe may go unanswered before the connection is declared lost
PROBE_INTERVAL = 5.0  # s without any answer before the daemon is probed


class ConnState(str, Enum):
    CONNECTING = "connecting"
    CONNECTED = "connected"
    DISCONNECTED = "disconnected, retrying"
    CLOSED = "closed"


# --- what listeners hear -------------------------------------------------

@dataclass(slots=True)
class ConnectionChanged:
    state: ConnState
    message: str = ""


@dataclass(slots=True)
class HostChanged:
    host: HostInfo


@dataclass(slots=True)
class DomainsReset:
    """The full list, after (re)connecting."""
    domains: list[DomainInfo]


@dataclass(slots=True)
class DomainsChanged:
    """Rows that changed (an event, an action, a stats tick)."""
    domains: list[DomainInfo]


@dataclass(slots=True)
class DomainRemoved:
    uuid: str
    name: str


@dataclass(slots=True)
class DomainEvent:
    """A raw libvirt domain event, for notifications and logs."""
    uuid: str
    name: str
    event: str
    detail: int = 0


@dataclass(slots=True)
class ObjectEvent:
    """Network or storage-pool lifecycle event."""
    kind: str  # "network" | "pool"
    name: str
    event: int


Listener = Callable[[Any], None]
_NO_STATS = DomainStats()  # a driver that gives no figures (the test driver)


@dataclass(slots=True)
class DeleteResult:
    name: str
    deleted: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@dataclass(slots=True)
class DiskUsage:
    """A disk of a domain, as the delete dialog and details screen need it."""
    disk: "domxml.DiskInfo"
    capacity: int | None = None
    allocation: int | None = None
    volume_key: str | None = None  # set when the path is a managed storage volume
    used_by: list[str] = field(default_factory=list)  # other domains using the same source
    seed: bool = False  # vmtui's cloud-init seed of this VM (core/provision/seed.py): goes with it

    @property
    def deletable(self) -> bool:
        return self.why_not_deletable == ""

    @property
    def why_not_deletable(self) -> str:
        d = self.disk
        if self.used_by:
            return "used by " + ", ".join(self.used_by)
        if self.seed and d.source and self.volume_key is not None:
            return ""
        if d.device in ("cdrom", "floppy"):
            return "removable media"
        if d.readonly:
            return "read-only"
        if d.shareable:
            return "shareable"
        if not d.source:
            return "no source"
        if self.volume_key is None:
            return "not a storage volume"
        return ""


STATS_FLAGS = (libvirt.VIR_DOMAIN_STATS_STATE | libvirt.VIR_DOMAIN_STATS_CPU_TOTAL
               | libvirt.VIR_DOMAIN_STATS_BALLOON | libvirt.VIR_DOMAIN_STATS_VCPU
               | libvirt.VIR_DOMAIN_STATS_INTERFACE | libvirt.VIR_DOMAIN_STATS_BLOCK)

_UNDEFINE_FLAG_SETS = (
    libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE | libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA
    | libvirt.VIR_DOMAIN_UNDEFINE_NVRAM | libvirt.VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA,
    libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE | libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA
    | libvirt.VIR_DOMAIN_UNDEFINE_NVRAM,
    libvirt.VIR_DOMAIN_UNDEFINE_NVRAM,
    0,
)


def _undefine(dom: libvirt.virDomain) -> None:
    """Blocking: undefine with NVRAM/snapshot/checkpoint metadata and managed
    save, dropping flags the driver does not know."""
    last: libvirt.libvirtError | None = None
    for flags in _UNDEFINE_FLAG_SETS:
        try:
            dom.undefineFlags(flags)
            return
        except libvirt.libvirtError as err:
            last = err
            if err.get_error_code() not in (libvirt.VIR_ERR_INVALID_ARG, libvirt.VIR_ERR_NO_SUPPORT,
                                            libvirt.VIR_ERR_ARGUMENT_UNSUPPORTED):
                break
    if last is not None:
        raise last


def _seed_path(xml: str) -> str | None:
    """The path of the cloud-init seed vmtui gave the domain (its record in
    ``<metadata>``, see core/provision/seed.py), or None."""
    from ..xml import domxml

    try:
        el = domxml.get_metadata(xml, ownmeta.NS_SEED)
    except domxml.DomainXMLError:
        return None
    return (el.get("path") or None) if el is not None else None


def _probe(conn: libvirt.virConnect) -> None:
    conn.getLibVersion()  # a round trip to the daemon on remote connections


def _alive(conn: libvirt.virConnect) -> bool:
    try:
        return bool(conn.isAlive())
    except libvirt.libvirtError:
        return False


def _consume(fut: asyncio.Future) -> None:
    """Retrieve a future's outcome so that an answer nobody waits for any
    more (a call that timed out) is not logged as "never retrieved"."""
    if not fut.cancelled():
        fut.exception()


def _pop_first(d: dict) -> Any:
    """Remove and return the first key of an insertion-ordered dict."""
    key = next(iter(d))
    del d[key]
    return key


def normalize_uri(uri: str) -> str:
    """ssh transports must never prompt on our terminal: ask libvirt for no tty."""
    if uri.split(":", 1)[0].endswith("+ssh") and "no_tty=" not in uri:
        uri += ("&" if "?" in uri else "?") + "no_tty=1"
    return uri


class LibvirtService:
    """One libvirt connection, its domain table and its events."""

    def __init__(
        self,
        uri: str = DEFAULT_URI,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        stats_interval: float = 2.0,
        readonly: bool = False,
        reconnect: bool = True,
        open_func: Callable[[str, bool], libvirt.virConnect] | None = None,
        hang_limit: float = HANG_LIMIT,
        probe_interval: float = PROBE_INTERVAL,
        slow_timeout: float = SLOW_TIMEOUT,
        name: str = "",
    ) -> None:
        self.uri = normalize_uri(uri)
        self.display_uri = uri
        #: the host's name in a list of several hosts, stamped on every
        #: DomainInfo (``DomainInfo.host``); "" when it is the only one
        self.name = name
        self.timeout = timeout
        self.stats_interval = stats_interval
        self.want_readonly = readonly
        self.reconnect_enabled = reconnect
        self._open_func = open_func
        self.readonly = readonly
        self.state = ConnState.CLOSED
        self.host = HostInfo(uri=uri)
        self.domains: dict[str, DomainInfo] = {}
        self._listeners: list[Listener] = []
        self._link: Link | None = None
        self._opener = Opener()
        self._connecting = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: set[asyncio.Task] = set()
        self._stats_task: asyncio.Task | None = None
        self._watch_task: asyncio.Task | None = None
        self.hang_limit = hang_limit
        self.slow_timeout = slow_timeout  # limit of calls libvirt may take long on (start, delete)
        self.probe_interval = probe_interval
        self._reconnect_task: asyncio.Task | None = None
        self._titles_task: asyncio.Task | None = None
        self._title_todo: dict[str, None] = {}  # domains whose titles are not read yet, in order
        self._stopped: dict[str, tuple[str, int]] = {}  # stopped, not read again yet: uuid -> (name, detail)
        self._dirty: dict[str, None] = {}  # domains to re-read (ordered set)
        self._refresh_task: asyncio.Task | None = None
        self._stats = StatsState()  # what the stats passes remember (stats.py)
        #: set by the UI: the UUIDs it shows now (the rows on screen, an open
        #: details screen), asked on the loop at each tick. The ticks in
        #: between sweeps read only those (stats.py, SWEEP_EVERY); None: every
        #: tick reads every running domain.
        self.shown: Callable[[], Iterable[str]] | None = None
        #: the last few minutes of the running domains' figures (graphs)
        self.history = StatsHistory(capacity_for(stats_interval))
        self._host_cpu_sample: tuple[int, int] | None = None
        self._host_unsupported: set[str] = set()
        self._tick = itertools.count()
        self._generation = 0
        self.calls = 0  # libvirt calls made through call(); the bench reads it
        #: what ssh needs before it can log in without asking (the last
        #: connect attempt failed for it), else None
        self.auth_problem: str | None = None

    # --- listeners -------------------------------------------------------

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def _emit(self, message: Any) -> None:
        for listener in list(self._listeners):
            try:
                listener(message)
            except Exception:  # a broken listener must not break the service
                log.exception("listener failed on %r", message)

    def _set_state(self, state: ConnState, message: str = "") -> None:
        self.state = state
        self._emit(ConnectionChanged(state, message))

    def rename(self, name: str) -> None:
        """Give the host another name (it joins a list of several hosts):
        every row is stamped again and listeners get the whole list."""
        if name == self.name:
            return
        self.name = name
        for d in self.domains.values():
            d.host = name
        if self.domains or self.state is ConnState.CONNECTED:
            self._emit(DomainsReset(list(self.domains.values())))

    # --- running calls off the loop --------------------------------------

    def _spawn(self, coro) -> asyncio.Task:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    @property
    def conn(self) -> libvirt.virConnect | None:
        """The open connection, if any (for tests and tools; the app goes through call())."""
        link = self._link
        return link.conn if link is not None and not link.retired else None

    async def run(self, fn: Callable, *args, timeout: float | None = None,
                  action: str = "talk to", obj: str = "", link: Link | None = None,
                  probe: bool = False) -> Any:
        """Run ``fn(*args)`` on a worker thread of ``link`` (default: the
        current connection), with a time limit; errors become VmtuiError.

        The wait ends early, with :class:`Disconnected`, when the connection is
        declared lost meanwhile; the thread itself stays in libvirt until
        libvirt lets it go, and the connection is closed only after that.
        """
        link = link or self._link
        if link is None:
            raise Disconnected(action, obj, f"not connected to {self.display_uri}")
        loop = asyncio.get_running_loop()
        self.calls += 1
        cfut = fut = None
        try:
            try:
                cfut = link.submit(fn, *args, probe=probe)
            except RetiredLink:
                raise self._lost_error(action, obj, link) from None
            fut = asyncio.wrap_future(cfut, loop=loop)
            fut.add_done_callback(_consume)  # an answer nobody waits for any more is not an error
            lost = link.lost_future(loop)
            limit = self.timeout if timeout is None else timeout
            done, _ = await asyncio.wait((fut, lost), timeout=limit, return_when=asyncio.FIRST_COMPLETED)
            if fut not in done:
                if lost in done:
                    raise self._lost_error(action, obj, link)
                raise CallTimeout(action, obj, f"libvirt did not answer within {limit:g} s "
                                  f"({self.display_uri})")
            try:
                return fut.result()
            except libvirt.libvirtError as err:
                if is_connection_lost(err):
                    self._connection_lost(libvirt_message(err), link)
                    raise self._lost_error(action, obj, link) from None
                raise from_libvirt(action, obj, err) from None
            except VmtuiError:
                raise
            except Exception as err:  # a bug or odd data: still a message, never a traceback
                log.exception("%s %s failed", action, obj)
                raise VmtuiError(action, obj, f"{type(err).__name__}: {err}") from None
        finally:
            # The traceback of an error raised here keeps this frame, and
            # whoever caught it may keep that a while (a cancelled Textual
            # worker lives on in the context of a cancelled timer until the
            # timer's time): the frame must not keep a given-up connection.
            link = cfut = fut = fn = None
            args = ()

    def _lost_error(self, action: str, obj: str, link: Link) -> Disconnected:
        why = link.why or "connection closed"
        return Disconnected(action, obj, f"connection to {self.display_uri} lost ({why})")

    async def call(self, fn: Callable[[libvirt.virConnect], Any], *, timeout: float | None = None,
                   action: str = "talk to", obj: str = "") -> Any:
        """Run ``fn(conn)`` off the loop; the common way to use the connection."""
        link = self._link
        if link is None or link.retired or self.state is not ConnState.CONNECTED:
            raise Disconnected(action, obj, f"not connected to {self.display_uri} ({self.state.value})")
        try:
            return await self.run(fn, link.conn, timeout=timeout, action=action, obj=obj, link=link)
        finally:
            link = None  # see run(): a traceback keeps this frame

    async def call_with(self, other: "LibvirtService", fn: Callable[[libvirt.virConnect, libvirt.virConnect], Any],
                        *, timeout: float | None = None, action: str = "talk to", obj: str = "") -> Any:
        """Run ``fn(conn, other_conn)`` on a worker of this connection, with
        ``other``'s connection held open meanwhile (a migration calls the
        destination from the source's thread): ``other`` is never closed
        under the call, even if it is declared lost (see link.Link.hold)."""
        olink = other._link
        if olink is None or olink.retired or other.state is not ConnState.CONNECTED:
            raise Disconnected(action, obj, f"not connected to {other.display_uri} ({other.state.value})")

        def work(conn: libvirt.virConnect) -> Any:
            try:
                release = olink.hold()
            except RetiredLink:
                raise Disconnected(action, obj, f"connection to {other.display_uri} lost "
                                   f"({olink.why or 'connection closed'})") from None
            try:
                return fn(conn, olink.conn)
            except libvirt.libvirtError as err:
                if is_connection_lost(err):
                    # which of the two went away? (isAlive asks no daemon)
                    if not _alive(olink.conn):
                        other._post(other._connection_lost, libvirt_message(err), olink)
                    if _alive(conn):  # not ours: this connection is fine
                        raise from_libvirt(action, obj, err) from None
                raise
            finally:
                release()

        return await self.call(work, timeout=timeout, action=action, obj=obj)

    # --- connecting --------------------------------------------------------

    def _open(self) -> tuple[libvirt.virConnect, bool]:
        """Blocking: open read-write, falling back to read-only on permission errors."""
        if self._open_func is not None:
            return self._open_func(self.uri, self.want_readonly), self.want_readonly
        if self.want_readonly:
            return libvirt.openReadOnly(self.uri), True
        try:
            return libvirt.open(self.uri), False
        except libvirt.libvirtError as err:
            msg = libvirt_message(err).lower()
            denied = err.get_error_code() in (libvirt.VIR_ERR_AUTH_FAILED, libvirt.VIR_ERR_AUTH_CANCELLED,
                                              libvirt.VIR_ERR_OPERATION_DENIED) or "permission denied" in msg \
                or "access denied" in msg or "authentication" in msg
            if not denied:
                raise
            try:
                return libvirt.openReadOnly(self.uri), True
            except libvirt.libvirtError:
                raise err from None

    def open_early(self) -> None:
        """Start opening the connection now, on a thread of its own, while
        the caller does something else (the CLI imports the UI meanwhile);
        :meth:`connect` takes the connection over, or the error."""
        ensure_event_impl()  # libvirt's event loop comes before the first connection
        self._opener.start(self._open)

    async def connect(self) -> None:
        """Open the connection and load everything. Raises ConnectError."""
        self._loop = asyncio.get_running_loop()
        ensure_event_impl()
        self._set_state(ConnState.CONNECTING, f"connecting to {self.display_uri}")
        try:
            await self._connect_once()
        except VmtuiError as err:
            self.auth_problem = ssh_problem(self.uri, err.cause)
            self._set_state(ConnState.CLOSED, err.cause)
            cls = AuthFailed if self.auth_problem else ConnectError
            raise cls("connect to", self.display_uri, err.cause, connect_hint(self.uri, err.cause)) from None
        self.auth_problem = None
        if self._stats_task is None:
            self._stats_task = self._spawn(self._stats_loop())
        if self._watch_task is None:
            self._watch_task = self._spawn(self._watch_loop())

    async def _connect_once(self) -> None:
        fut = asyncio.wrap_future(self._opener.start(self._open))
        fut.add_done_callback(_consume)
        try:
            await asyncio.wait_for(asyncio.shield(fut), self.timeout)
        except asyncio.TimeoutError:
            # the attempt keeps its thread; the next one waits for it (link.Opener)
            raise CallTimeout("connect to", self.display_uri, f"no answer within {self.timeout:g} s") from None
        except libvirt.libvirtError as err:
            self._opener.failed()
            raise from_libvirt("connect to", self.display_uri, err) from None
        except Exception as err:  # an open_func of a test, or odd data
            self._opener.failed()
            raise VmtuiError("connect to", self.display_uri, f"{type(err).__name__}: {err}") from None
        (conn, readonly), executor = self._opener.take()
        self._generation += 1
        link = Link(conn, self._generation, readonly, executor)
        self._link = link
        self.readonly = readonly
        self.state = ConnState.CONNECTED
        self._connecting = True
        try:
            await self.run(self._setup_connection, link, action="set up events on", obj=self.display_uri, link=link)
            await self._load_all()
        except VmtuiError:
            self._retire(link, "set-up failed")
            self.state = ConnState.DISCONNECTED
            raise
        finally:
            self._connecting = False
        if link is not self._link or link.retired:  # lost while loading
            raise Disconnected("connect to", self.display_uri, link.why or "connection lost")
        self._set_state(ConnState.CONNECTED, "read-only" if readonly else "")

    def _setup_connection(self, link: Link) -> None:
        """Blocking: keepalive, close callback, event callbacks."""
        conn, gen = link.conn, link.gen
        # No libvirt keepalive: when it fires, libvirt closes the client
        # under the threads waiting in calls, and libvirt 9's client then
        # crashes the process as the daemon answers at last (SIGSTOP/SIGCONT).
        # A hung daemon is found by our own probe instead (_watch_loop).
        try:
            conn.registerCloseCallback(self._on_close, gen)
            link.close_callback = True
        except libvirt.libvirtError:
            pass
        dom_events = [
            (libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE, self._on_lifecycle),
            (libvirt.VIR_DOMAIN_EVENT_ID_REBOOT, self._on_reboot),
            (libvirt.VIR_DOMAIN_EVENT_ID_DEVICE_ADDED, self._on_device),
            (libvirt.VIR_DOMAIN_EVENT_ID_DEVICE_REMOVED, self._on_device),
            (libvirt.VIR_DOMAIN_EVENT_ID_METADATA_CHANGE, self._on_metadata),
        ]
        for event_id, cb in dom_events:
            try:
                link.callback_ids.append(("domain", conn.domainEventRegisterAny(None, event_id, cb, gen)))
            except libvirt.libvirtError as err:
                log.info("domain event %s not available: %s", event_id, libvirt_message(err))
        try:
            link.callback_ids.append(("network", conn.networkEventRegisterAny(
                None, libvirt.VIR_NETWORK_EVENT_ID_LIFECYCLE, self._on_network, gen)))
        except libvirt.libvirtError as err:
            log.info("network events not available: %s", libvirt_message(err))
        try:
            link.callback_ids.append(("pool", conn.storagePoolEventRegisterAny(
                None, libvirt.VIR_STORAGE_POOL_EVENT_ID_LIFECYCLE, self._on_pool, gen)))
        except libvirt.libvirtError as err:
            log.info("pool events not available: %s", libvirt_message(err))

    def _retire(self, link: Link, why: str) -> None:
        """Give ``link`` up: waiting callers hear at once, the connection is
        closed once its last call has returned (link.Link)."""
        if link is self._link:
            self._link = None
        link.retire(why, self._loop)

    async def close(self) -> None:
        for task in (self._stats_task, self._watch_task, self._reconnect_task, self._titles_task,
                     self._refresh_task, *self._tasks):
            if task is not None and not task.done():
                task.cancel()
        self._stats_task = self._watch_task = self._reconnect_task = self._titles_task = None
        self._refresh_task = None
        self._opener.abandon()
        link = self._link
        if link is not None:
            self._retire(link, "closed")
            if link.inflight == 0:  # torn down now: wait a little for it (tests check what is left)
                await asyncio.get_running_loop().run_in_executor(None, link.done.wait, 5)
        self._dirty.clear()
        self.state = ConnState.CLOSED
        self._emit(ConnectionChanged(ConnState.CLOSED, ""))

    # --- losing and regaining the connection -------------------------------

    def _connection_lost(self, why: str, link: Link | None = None) -> None:
        """The connection is gone: retire it (now, for waiting callers), say
        so, and reconnect. ``link``, when given, is the connection a failing
        call was made on: a stale one is ignored."""
        current = self._link
        if current is None or (link is not None and link is not current) or self.state is not ConnState.CONNECTED:
            if link is not None and not link.retired:
                link.retire(why, self._loop)
            return
        self._retire(current, why)
        self.state = ConnState.DISCONNECTED
        if self._connecting:
            return  # _connect_once fails and says so
        if not self.reconnect_enabled:
            self._set_state(ConnState.CLOSED, f"connection lost: {why}")
            return
        self._set_state(ConnState.DISCONNECTED, f"connection lost: {why}")
        if self._reconnect_task is None or self._reconnect_task.done():
            self._reconnect_task = self._spawn(self._reconnect_loop())

    async def _watch_loop(self) -> None:
        """Find a hung daemon: when nothing answered for probe_interval, ask
        for something cheap (one round trip) on a thread of its own; no
        answer within hang_limit means the connection is lost."""
        while True:
            await asyncio.sleep(self.probe_interval)
            link = self._link
            if link is not None and self.state is ConnState.CONNECTED \
                    and time.monotonic() - link.last_answer >= self.probe_interval:
                await self._probe(link)
            # never hold a link while asleep: a link given up meanwhile would
            # live on here, and be frozen by a heap.settle (see core.heap)
            del link

    async def _probe(self, link: Link) -> None:
        try:
            await self.run(_probe, link.conn, timeout=self.hang_limit, action="reach",
                           obj=self.display_uri, link=link, probe=True)
        except CallTimeout:
            self._connection_lost(f"libvirtd did not answer for {self.hang_limit:g} s", link)
        except VmtuiError:
            pass  # run() already handled a lost connection

    async def _reconnect_loop(self) -> None:
        for attempt in itertools.count():
            delay = BACKOFF[min(attempt, len(BACKOFF) - 1)]
            await asyncio.sleep(delay)
            try:
                await self._connect_once()
            except VmtuiError as err:
                self.auth_problem = ssh_problem(self.uri, err.cause)
                self._set_state(ConnState.DISCONNECTED, f"reconnect failed: {err.cause}; "
                                f"next try in {BACKOFF[min(attempt + 1, len(BACKOFF) - 1)]:g} s")
                continue
            self.auth_problem = None
            return

    # --- loading -----------------------------------------------------------

    async def _load_all(self) -> None:
        # The host and the domains are read side by side (the host part can
        # be slow: getHostname resolves the FQDN); listeners still hear
        # HostChanged before DomainsReset.
        doms: dict[str, libvirt.virDomain] = {}
        domains_call = asyncio.ensure_future(
            self.call(lambda c: self._fetch_domains(c, doms), action="list domains on", obj=self.display_uri))
        try:
            host = await self.call(self._fetch_host, action="read host information from", obj=self.display_uri)
        except BaseException:
            domains_call.cancel()
            await asyncio.gather(domains_call, return_exceptions=True)
            raise
        host.readonly = self.readonly
        self.host = host
        self._emit(HostChanged(host))
        domains = await domains_call
        for d in domains:  # what was learned about running guests stays while they run
            old = self.domains.get(d.uuid)
            if old is not None and d.is_active:
                d.guest = old.guest
        self.domains = {d.uuid: d for d in domains}
        self._stats = StatsState()
        self._stopped.clear()
        self.history.clear()
        self._emit(DomainsReset(list(self.domains.values())))
        if self._titles_task is not None and not self._titles_task.done():
            self._titles_task.cancel()
        # in the list's first order (by name): the first screenful comes first
        by_name = sorted(self.domains, key=lambda u: self.domains[u].name.lower())
        self._titles_task = self._spawn(self._load_titles(by_name, doms=doms))

    def busy(self) -> bool:
        """Work started by events or actions is still running (refreshes,
        clean-ups; not the stats and probe loops, which never end)."""
        forever = (self._stats_task, self._watch_task)
        return any(not t.done() for t in self._tasks if t not in forever)

    async def wait_loaded(self) -> None:
        """Wait until the background pass (titles) after a (re)load is done."""
        task = self._titles_task
        if task is not None and not task.done():
            await asyncio.wait([task])

    async def refresh_all(self) -> None:
        await self._load_all()

    def _fetch_host(self, conn: libvirt.virConnect) -> HostInfo:
        info = conn.getInfo()  # [model, memory MiB, cpus, mhz, nodes, sockets, cores, threads]
        host = HostInfo(uri=self.display_uri)
        host.cpu_model, host.memory_total_kib, host.cpus = info[0], int(info[1]) * 1024, int(info[2])
        for attr, fn in (("hostname", conn.getHostname), ("driver", conn.getType)):
            try:
                setattr(host, attr, fn())
            except libvirt.libvirtError:
                pass
        try:
            host.hypervisor_version = version_string(conn.getVersion())
        except libvirt.libvirtError:
            pass
        try:
            host.libvirt_version = version_string(conn.getLibVersion())
        except libvirt.libvirtError:
            pass
        return host

    def _fetch_domains(self, conn: libvirt.virConnect,
                       doms: dict[str, libvirt.virDomain] | None = None) -> list[DomainInfo]:
        """Blocking. A fixed number of calls whatever the number of domains
        (sizes the stats lack are read by the titles pass). ``doms``, if
        given, receives the domain objects by UUID (the titles pass uses
        them: no lookups)."""
        autostart = {d.UUIDString() for d in conn.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_AUTOSTART)}
        transient = {d.UUIDString() for d in conn.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_TRANSIENT)}
        records = conn.getAllDomainStats(libvirt.VIR_DOMAIN_STATS_STATE | libvirt.VIR_DOMAIN_STATS_BALLOON
                                         | libvirt.VIR_DOMAIN_STATS_VCPU, 0)
        out: list[DomainInfo] = []
        for dom, rec in records:
            uuid = dom.UUIDString()
            info = DomainInfo(uuid=uuid, name=dom.name(), id=None,
                              state_code=int(rec.get("state.state", 0)),
                              reason_code=int(rec.get("state.reason", 0)),
                              autostart=uuid in autostart, persistent=uuid not in transient, host=self.name)
            # Drivers whose stats lack the sizes (libvirt's test driver) would
            # need a call per domain here: the titles pass reads them instead.
            self._apply_record(info, rec)
            if info.is_active:
                try:
                    dom_id = dom.ID()
                    info.id = dom_id if dom_id >= 0 else None
                except libvirt.libvirtError:
                    pass
            out.append(info)
            if doms is not None:
                doms[uuid] = dom
        return out

    @staticmethod
    def _apply_record(info: DomainInfo, rec: dict) -> bool:
        """Copy what a bulk stats record says into ``info``; True if it had sizes."""
        if "state.state" in rec:
            info.state_code = int(rec["state.state"])
            info.reason_code = int(rec.get("state.reason", 0))
        complete = True
        if "vcpu.current" in rec:
            info.vcpus = int(rec["vcpu.current"])
        else:
            complete = False
        if "balloon.maximum" in rec:
            info.max_memory_kib = int(rec["balloon.maximum"])
            info.memory_kib = int(rec.get("balloon.current", rec["balloon.maximum"]))
        else:
            complete = False
        return complete

    def _fetch_one(self, conn: libvirt.virConnect, uuid: str) -> DomainInfo | None:
        """Blocking: everything about one domain (after an event or an action)."""
        try:
            dom = conn.lookupByUUIDString(uuid)
            state, reason = dom.state()
            _, maxmem, mem, ncpu, _ = dom.info()
            info = DomainInfo(uuid=uuid, name=dom.name(), id=None, state_code=state, reason_code=reason,
                              vcpus=int(ncpu), memory_kib=int(mem), max_memory_kib=int(maxmem), host=self.name)
            info.persistent = bool(dom.isPersistent())
            if info.persistent:
                info.autostart = bool(dom.autostart())
            if info.is_active:
                dom_id = dom.ID()
                info.id = dom_id if dom_id >= 0 else None
            self._apply_flags(info, self._flags_of(dom, False))
        except libvirt.libvirtError as err:
            if is_no_domain(err):
                return None
            raise
        return info

    @staticmethod
    def _flags_of(dom: libvirt.virDomain, running_persistent: bool = False) -> ownmeta.DomainFlags:
        """Blocking: the title, description and vmtui's flags (template,
        overlays, seed) from the domain's XML: one call (ownmeta.read_flags).
        For a running domain they are those of its live XML; what is done
        when it stops is decided on its definition, read again then
        (:meth:`_after_stopped`). ``running_persistent``: read vmtui's
        records from the persistent definition too (a second call; the
        list's passes never ask for it)."""
        xml = dom.XMLDesc(0)
        try:
            if running_persistent:
                return ownmeta.flags_from_xml(xml, dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
            return ownmeta.read_flags(xml)
        except Exception as err:  # libvirt's own XML: should not happen
            log.warning("domain %s: cannot read its XML: %s", dom.UUIDString(), err)
            return ownmeta.DomainFlags()

    @staticmethod
    def _apply_flags(info: DomainInfo, flags: ownmeta.DomainFlags) -> bool:
        """Copy ``flags`` into ``info`` (and the sizes its listing lacked);
        True if something changed."""
        changed = False
        new = (flags.title, flags.description, flags.template, flags.overlays, flags.seed_cleanup, True)
        if new != (info.title, info.description, info.template, info.overlays, info.seed_cleanup, info.flags_read):
            (info.title, info.description, info.template, info.overlays, info.seed_cleanup,
             info.flags_read) = new
            changed = True
        if not info.vcpus and flags.vcpus:
            info.vcpus, changed = flags.vcpus, True
        if not info.memory_kib and flags.memory_kib:
            info.memory_kib, info.max_memory_kib, changed = flags.memory_kib, flags.max_memory_kib, True
        return changed

    def prioritize_titles(self, uuids: Iterable[str]) -> None:
        """Read the titles and flags of ``uuids`` (the rows on screen) before
        the others still waiting, if the pass after a (re)load has not read
        them yet; the rest follow in their order."""
        todo = self._title_todo
        if not todo:
            return
        first = [u for u in uuids if u in todo]
        if first:
            chosen = set(first)
            rest = [u for u in todo if u not in chosen]
            todo.clear()
            todo.update(dict.fromkeys(first))
            todo.update(dict.fromkeys(rest))

    read_first = prioritize_titles

    async def _load_titles(self, uuids: list[str], chunk: int = TITLE_CHUNK,
                           doms: dict[str, libvirt.virDomain] | None = None, emit_every: float = 0.5,
                           workers: int = TITLE_WORKERS) -> None:
        """Titles, descriptions and vmtui's flags need a call per domain
        (one XMLDesc): read them after the list is on screen, in chunks,
        ``workers`` calls in flight at once (on a remote host the round
        trips overlap), in the order of ``uuids`` (the caller gives the
        list's first order, by name), and update the rows. The domains named
        by :meth:`prioritize_titles` (the rows on screen) go first. ``doms``
        are domain objects from the listing; others are looked up by UUID."""
        gen = self._generation
        doms = doms or {}
        todo = self._title_todo = dict.fromkeys(uuids)  # reordered in place by prioritize_titles

        def fetch(conn: libvirt.virConnect, part: list[str]) -> dict[str, ownmeta.DomainFlags]:
            found = {}
            for uuid in part:
                try:
                    dom = doms.get(uuid) or conn.lookupByUUIDString(uuid)
                    found[uuid] = self._flags_of(dom, False)
                except libvirt.libvirtError as err:
                    if is_connection_lost(err):
                        raise
                    continue  # gone meanwhile: its event removes it
            return found

        # Every DomainsChanged costs the UI a repaint of the list: the first
        # chunk is told at once, later ones together at most every emit_every s.
        loop = asyncio.get_running_loop()
        told: dict[str, ownmeta.DomainFlags] = {}
        told_at: list[float | None] = [None]
        failed = [False]

        def tell() -> None:
            changed = []
            for uuid, flags in told.items():
                d = self.domains.get(uuid)
                if d is not None and self._apply_flags(d, flags):
                    changed.append(d)
            told.clear()
            if changed:
                self._emit(DomainsChanged(changed))

        async def worker() -> None:
            while todo and not failed[0] and gen == self._generation:
                part = list(itertools.islice(todo, chunk))
                for uuid in part:
                    del todo[uuid]
                try:
                    found = await self.call(lambda c, p=part: fetch(c, p), action="read titles on",
                                            obj=self.display_uri)
                except VmtuiError:
                    failed[0] = True
                    return
                if gen != self._generation:
                    return
                told.update(found)
                now = loop.time()
                if told_at[0] is None or now - told_at[0] >= emit_every:
                    tell()
                    told_at[0] = now

        try:
            await asyncio.gather(*(worker() for _ in range(max(1, workers))))
        finally:
            if self._title_todo is todo:
                todo.clear()
            if gen == self._generation:
                tell()

    def set_guest(self, uuid: str, guest: GuestFacts) -> None:
        """Record what was learned about a running guest (addresses,
        readiness) on its row and tell listeners; nothing for a VM that is
        gone. (A row may say "shut off" for a moment after the VM started:
        the facts wait there; they go when the VM stops.)"""
        info = self.domains.get(uuid)
        if info is None or info.guest == guest:
            return
        info.guest = guest
        self._emit(DomainsChanged([info]))

    async def refresh_domain(self, uuid: str) -> DomainInfo | None:
        """Re-read one domain now and tell listeners (removed if it is gone)."""
        await self._refresh([uuid])
        return self.domains.get(uuid)

    async def _refresh(self, uuids: list[str]) -> None:
        """Re-read ``uuids`` in one worker call; one DomainsChanged for all that changed."""
        def fetch(conn: libvirt.virConnect) -> list[tuple[str, DomainInfo | None]]:
            return [(uuid, self._fetch_one(conn, uuid)) for uuid in uuids]

        # stops told before this read began: it shows the domains after them
        stops = {uuid: self._stopped[uuid] for uuid in uuids if uuid in self._stopped}
        try:
            found = await self.call(fetch, action="read", obj=f"{len(uuids)} domain(s) on {self.display_uri}")
        except VmtuiError as err:
            log.info("refresh of %d domain(s) failed: %s", len(uuids), err)
            return
        changed: list[DomainInfo] = []
        stopped: list[tuple[str, DomainInfo | None]] = []
        for uuid, info in found:
            old = self.domains.get(uuid)
            self._stats.forget(uuid, gone=info is None)
            if uuid in stops and self._stopped.get(uuid) is stops[uuid]:
                stopped.append((uuid, info))
            if info is None:
                self.history.drop(uuid)
                if old is not None:
                    del self.domains[uuid]
                    self._emit(DomainRemoved(uuid, old.name))
                continue
            if old is not None:
                info.stats = old.stats if info.is_active else DomainStats()
                info.guest = old.guest if info.is_active else NO_GUEST_FACTS
                if info.is_active:
                    info.history = old.history
            if not info.is_active:
                self._stats.samples.pop(uuid, None)
                self.history.drop(uuid)
            if old != info:
                self.domains[uuid] = info
                changed.append(info)
        if changed:
            self._emit(DomainsChanged(changed))
        for uuid, info in stopped:
            self._after_stopped(uuid, info)

    def _schedule_refresh(self, uuid: str) -> None:
        """Mark a domain to be re-read. Bursts of events coalesce: one task
        reads everything marked, in batches of REFRESH_BATCH domains per
        worker call, until nothing is left (an event that arrives while its
        domain is being read marks it again)."""
        self._dirty[uuid] = None
        if self._refresh_task is None or self._refresh_task.done():
            self._refresh_task = self._spawn(self._refresher())

    async def _refresher(self) -> None:
        while self._dirty and self.state is ConnState.CONNECTED:
            batch = list(itertools.islice(self._dirty, REFRESH_BATCH))
            for uuid in batch:
                del self._dirty[uuid]
            await self._refresh(batch)

    # --- libvirt event callbacks ------------------------------------------------
    # They run on the libvirt event thread: read what is needed from the
    # objects there (name and UUID are cached, no RPC), then hop to our loop.

    def _post(self, fn: Callable, *args) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(fn, *args)
            except RuntimeError:  # loop closed meanwhile
                pass

    def _on_close(self, conn, reason, opaque) -> None:
        if reason != libvirt.VIR_CONNECT_CLOSE_REASON_CLIENT:
            self._post(self._closed, opaque, reason)

    def _closed(self, gen: int, reason: int) -> None:
        if gen != self._generation:
            return
        reasons = {0: "connection error", 1: "end of file from libvirtd", 2: "keepalive timeout"}
        self._connection_lost(reasons.get(reason, "connection closed"))

    def _domain_event(self, gen: int, uuid: str, name: str, event: str, detail: int, refresh: bool) -> None:
        if gen != self._generation:
            return
        self._emit(DomainEvent(uuid, name, event, detail))
        if event == "stopped" and not self.readonly:
            self._stopped[uuid] = (name, detail)  # decided once it is read again (_after_stopped)
            refresh = True
        if refresh:
            self._schedule_refresh(uuid)

    def _after_stopped(self, uuid: str, info: DomainInfo | None) -> None:
        """A VM that stopped was read again (its XML is now its persistent
        definition, where vmtui's records are): empty its vmtui overlays if
        it has any (a first-boot seed goes when the guest watch saw
        cloud-init finish: core/consoles/guests.py). Transient VMs (gone
        when they stop), VMs deleted meanwhile and VMs without such records
        -- other users' included -- are left alone."""
        name, detail = self._stopped.pop(uuid)
        if info is None or not info.persistent or info.is_active:
            return  # gone, or started again (start empties the overlays itself)
        if info.overlays:
            self._spawn(self._reset_nonpersistent(uuid, name))

    async def _reset_nonpersistent(self, uuid: str, name: str) -> None:
        """A VM powered off: empty the overlays of its vmtui-managed
        non-persistent disks (disks.py; libvirt's own <transient/> needs
        nothing). A VM that is gone (deleted meanwhile) has nothing to
        empty; other failures are logged and told, never raised."""
        from ..storage import disks
        try:
            done = await self.call(lambda c: disks.reset_nonpersistent(c, uuid),
                                   action="discard the non-persistent writes of", obj=f"domain '{name}'")
        except VmtuiError as err:
            if err.code == libvirt.VIR_ERR_NO_DOMAIN:
                log.info("domain %s is gone: no non-persistent writes to discard", name)
                return
            log.warning("%s", err.message)
            self._emit(DomainEvent(uuid, name, "non-persistent reset failed", 0))
            return
        if done:
            log.info("domain %s: discarded the writes to %s", name, ", ".join(done))

    def _on_lifecycle(self, conn, dom, event, detail, opaque) -> None:
        self._post(self._domain_event, opaque, dom.UUIDString(), dom.name(),
                   EVENT_NAMES.get(event, str(event)), detail, True)

    def _on_reboot(self, conn, dom, opaque) -> None:
        self._post(self._domain_event, opaque, dom.UUIDString(), dom.name(), "rebooted", 0, False)

    def _on_device(self, conn, dom, dev_alias, opaque) -> None:
        self._post(self._domain_event, opaque, dom.UUIDString(), dom.name(), "device changed", 0, True)

    def _on_metadata(self, conn, dom, mtype, nsuri, opaque) -> None:
        self._post(self._domain_event, opaque, dom.UUIDString(), dom.name(), "metadata changed", 0, True)

    def _object_event(self, gen: int, kind: str, name: str, event: int) -> None:
        if gen == self._generation:
            self._emit(ObjectEvent(kind, name, event))

    def _on_network(self, conn, net, event, detail, opaque) -> None:
        self._post(self._object_event, opaque, "network", net.name(), event)

    def _on_pool(self, conn, pool, event, detail, opaque) -> None:
        self._post(self._object_event, opaque, "pool", pool.name(), event)

    # --- stats ---------------------------------------------------------------

    async def _stats_loop(self) -> None:
        while True:
            await asyncio.sleep(self.stats_interval)
            if self.state is ConnState.CONNECTED:
                try:
                    await self.stats_tick()
                except VmtuiError as err:
                    log.info("stats tick failed: %s", err)
                except Exception:
                    log.exception("stats tick crashed")

    async def stats_tick(self) -> None:
        """One bulk stats call (+ at most one host call). The records are
        read on the worker thread (stats.py): the loop only applies the
        facts of domains that changed, and tells listeners about rows whose
        facts it shows changed."""
        n = next(self._tick)
        full = n % FULL_EVERY == 0
        state = self._stats
        domains = self.domains
        close = None if full or n % SWEEP_EVERY == 0 else self._shown_running()

        def vcpus_of(uuid: str) -> int:
            d = domains.get(uuid)
            return d.vcpus if d is not None else 0

        def work(conn: libvirt.virConnect):
            # the vCPU group has a record per vCPU; the count changes rarely (a full pass reads it)
            groups = STATS_FLAGS if full else STATS_FLAGS & ~libvirt.VIR_DOMAIN_STATS_VCPU
            now = time.monotonic()
            if close is not None:
                doms = state.domains_for(conn, close)
                if doms is not None:  # only the running domains the UI shows
                    records = conn.domainListGetStats(doms, groups) if doms else []
                    return state.run(records, now, False, vcpus_of, listed=False, conn=conn)
            flags = 0 if full else libvirt.VIR_CONNECT_GET_ALL_DOMAINS_STATS_ACTIVE
            # UUID() and ID() read what the virDomain object already holds: no extra calls
            return state.run(conn.getAllDomainStats(groups, flags), now, full, vcpus_of, conn=conn)

        tick = await self.call(work, action="read statistics from", obj=self.display_uri)
        if state is not self._stats:
            return  # reloaded meanwhile: these records are of the list before
        changed: list[DomainInfo] = []
        history = self.history
        history.advance()
        for uuid, facts in tick.changed:
            info = domains.get(uuid)
            if info is None:
                self._schedule_refresh(uuid)  # appeared without an event (missed while reconnecting)
                continue
            before = (info.id, info.state_code, info.reason_code, info.vcpus, info.memory_kib,
                      info.max_memory_kib, info.stats)
            was_active = info.is_active
            if facts.state is not None:
                info.state_code, info.reason_code = facts.state, facts.reason
            if facts.vcpus is not None:
                info.vcpus = facts.vcpus
            if facts.max_memory_kib is not None:
                info.max_memory_kib, info.memory_kib = facts.max_memory_kib, facts.memory_kib
            info.id = facts.id if info.is_active else None
            info.stats = facts.stats
            if info.is_active != was_active:
                self._schedule_refresh(uuid)  # the event is on its way; make sure the rest follows
            if before != (info.id, info.state_code, info.reason_code, info.vcpus, info.memory_kib,
                          info.max_memory_kib, info.stats):
                # the history of the others repeats their last sample (history.py)
                if info.is_active:
                    if info.history is not None or info.stats != _NO_STATS:
                        info.history = history.record(uuid, info.stats)
                elif info.history is not None:
                    history.drop(uuid)
                    info.history = None
                changed.append(info)
        if tick.seen is not None:
            self._check_listed(tick.seen, tick.full)
        if changed:
            self._emit(DomainsChanged(changed))
        await self._host_tick(n)

    def _shown_running(self) -> list[str] | None:
        """The running domains the UI shows (see :attr:`shown`); None when
        the UI does not say (every tick reads every running domain)."""
        shown = self.shown
        if shown is None:
            return None
        try:
            uuids = shown()
        except Exception:  # the UI's answer is a hint: never let it stop the ticks
            log.exception("the shown domains could not be read")
            return None
        domains = self.domains
        out: list[str] = []
        for uuid in dict.fromkeys(uuids):
            d = domains.get(uuid)
            if d is not None and d.is_active:
                out.append(uuid)
        return out

    def _check_listed(self, seen: frozenset[str], full: bool) -> None:
        """The domains a stats call returned changed: re-read those that
        appeared or vanished without an event (every domain on a full pass,
        the running ones otherwise)."""
        domains = self.domains
        for uuid in seen:
            if uuid not in domains:
                self._schedule_refresh(uuid)
        for uuid, d in domains.items():
            if uuid not in seen and (full or d.is_active):
                self._schedule_refresh(uuid)

    def _compute_stats(self, uuid: str, info: DomainInfo, rec: dict, now: float) -> DomainStats:
        """Rates of ``info`` from a stats record (stats.StatsState.compute)."""
        if not info.is_active:
            self._stats.samples.pop(uuid, None)
            return DomainStats()
        return self._stats.compute(uuid, info.vcpus, rec, now)

    async def _host_tick(self, n: int) -> None:
        """Host CPU on even ticks, host memory on odd ones: one call per tick."""
        which = "cpu" if n % 2 == 0 else "mem"
        if which in self._host_unsupported:
            return
        try:
            if which == "cpu":
                cpu = await self.call(lambda c: c.getCPUStats(libvirt.VIR_NODE_CPU_STATS_ALL_CPUS),
                                      action="read host CPU usage of", obj=self.display_uri)
                busy = sum(int(v) for k, v in cpu.items() if k != "idle" and k != "iowait")
                total = busy + int(cpu.get("idle", 0)) + int(cpu.get("iowait", 0))
                if self._host_cpu_sample is not None:
                    db, dt = busy - self._host_cpu_sample[0], total - self._host_cpu_sample[1]
                    if dt > 0:
                        self.host.cpu_percent = round(100.0 * db / dt, 1)
                self._host_cpu_sample = (busy, total)
            elif "memstats" in self._host_unsupported:
                free = await self.call(lambda c: c.getFreeMemory(), action="read host memory of",
                                       obj=self.display_uri)
                self.host.memory_free_kib = int(free) // 1024
            else:
                mem = await self.call(lambda c: c.getMemoryStats(libvirt.VIR_NODE_MEMORY_STATS_ALL_CELLS),
                                      action="read host memory of", obj=self.display_uri)
                free = int(mem.get("free", 0)) + int(mem.get("buffers", 0)) + int(mem.get("cached", 0))
                self.host.memory_free_kib = free
                if mem.get("total"):
                    self.host.memory_total_kib = int(mem["total"])
        except VmtuiError as err:
            if err.code == libvirt.VIR_ERR_NO_SUPPORT:
                # getFreeMemory is the fallback for drivers without memory stats
                self._host_unsupported.add("memstats" if which == "mem" and "memstats" not in self._host_unsupported
                                           else which)
            return
        self._emit(HostChanged(self.host))

    # --- domain actions --------------------------------------------------------

    def _name(self, uuid: str) -> str:
        d = self.domains.get(uuid)
        return f"'{d.name}'" if d else uuid

    async def _domain_op(self, uuid: str, action: str, op: Callable[[libvirt.virDomain], Any],
                         timeout: float | None = None) -> Any:
        result = await self.call(lambda c: op(c.lookupByUUIDString(uuid)), action=action,
                                 obj=f"domain {self._name(uuid)}", timeout=timeout)
        self._schedule_refresh(uuid)  # events do this too; autostart has no event
        return result

    async def start(self, uuid: str) -> None:
        from ..storage import disks

        def start(d: libvirt.virDomain) -> None:
            # a power-off vmtui did not see still leaves overlay writes: drop them
            if not d.isActive() and d.isPersistent():
                disks.reset_overlays(d.connect(), d, d.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
            d.create()
        await self._domain_op(uuid, "start", start, timeout=max(self.timeout, self.slow_timeout))

    async def shutdown(self, uuid: str) -> None:
        await self._domain_op(uuid, "shut down", lambda d: d.shutdown())

    async def reboot(self, uuid: str) -> None:
        await self._domain_op(uuid, "reboot", lambda d: d.reboot(0))

    async def force_off(self, uuid: str) -> None:
        await self._domain_op(uuid, "force off", lambda d: d.destroy())

    async def pause(self, uuid: str) -> None:
        await self._domain_op(uuid, "pause", lambda d: d.suspend())

    async def resume(self, uuid: str) -> None:
        await self._domain_op(uuid, "resume", lambda d: d.resume())

    async def set_autostart(self, uuid: str, enabled: bool) -> None:
        await self._domain_op(uuid, "change autostart of", lambda d: d.setAutostart(1 if enabled else 0))

    async def undefine(self, uuid: str) -> None:
        """Remove the persistent definition (NVRAM, snapshot and checkpoint
        metadata, managed save included); a running VM keeps running as a
        transient one."""

        await self._domain_op(uuid, "undefine", _undefine)

    async def domain_xml(self, uuid: str, inactive: bool = False) -> str:
        flags = libvirt.VIR_DOMAIN_XML_INACTIVE if inactive else 0
        return await self.call(lambda c: c.lookupByUUIDString(uuid).XMLDesc(flags),
                               action="read the XML of", obj=f"domain {self._name(uuid)}")

    async def details(self, uuid: str) -> tuple["domxml.DomainOverview", list[DiskUsage]]:
        """The overview of one domain, with the size of each disk."""
        from ..xml import domxml
        xml = await self.domain_xml(uuid)
        try:
            overview = domxml.parse_domain(xml)
        except domxml.DomainXMLError as err:
            raise VmtuiError("read the details of", f"domain {self._name(uuid)}", str(err)) from None
        seed_path = _seed_path(xml)
        disks = await self.call(lambda c: self._disk_usage(c, uuid, overview.disks, seed_path),
                                action="read the disks of", obj=f"domain {self._name(uuid)}")
        return overview, disks

    @staticmethod
    def _disk_usage(conn: libvirt.virConnect, uuid: str, disks: Iterable["domxml.DiskInfo"],
                    seed_path: str | None = None) -> list[DiskUsage]:
        """Blocking: sizes of each disk, and which other domains use the same
        source; ``seed_path``: the VM's cloud-init seed (vmtui's record)."""
        from .. import storage
        users = storage.volume_users(conn, exclude_uuid=uuid)
        backed: dict[str, list[str]] | None = None
        out = []
        for disk in disks:
            usage = DiskUsage(disk=disk, seed=bool(seed_path) and disk.source == seed_path)
            names: set[str] = set()
            for key in storage.source_keys(disk):
                names |= set(users.get(key, ()))
            usage.used_by = sorted(names)
            try:
                vol = storage.disk_volume(conn, disk)
            except libvirt.libvirtError:
                vol = None
            if vol is not None:
                usage.capacity, usage.allocation, usage.volume_key = vol.capacity, vol.allocation, vol.key
                if disk.device == "disk" and not disk.readonly:
                    # the backing file of a linked clone's overlay (templates)
                    if backed is None:
                        backed = storage.backing_map(conn)
                    overlays = backed.get(vol.path, [])
                    usage.used_by = sorted(set(usage.used_by) | {f"overlay {o}" for o in overlays})
            out.append(usage)
        return out

    async def delete(self, uuid: str, volume_keys: Iterable[str] = ()) -> DeleteResult:
        """Force off (if running), undefine, then delete the chosen volumes.

        A volume still used by another domain is never deleted, even if asked.
        """
        keys = list(volume_keys)
        name = self._name(uuid)
        obj = f"domain {name}"

        def work(conn: libvirt.virConnect) -> DeleteResult:
            from ..xml import domxml
            dom = conn.lookupByUUIDString(uuid)
            result = DeleteResult(name=dom.name())
            xml = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE) if dom.isPersistent() else dom.XMLDesc(0)
            overview = domxml.parse_domain(xml)
            usage = {u.volume_key: u for u in self._disk_usage(conn, uuid, overview.disks, _seed_path(xml))
                     if u.volume_key}
            if dom.isActive():
                dom.destroy()
            if dom.isPersistent():
                _undefine(dom)
            for key in keys:
                u = usage.get(key)
                if u is None:
                    result.errors.append(f"{key}: not a disk of {name}")
                    continue
                if not u.deletable:
                    result.errors.append(f"{u.disk.source}: kept ({u.why_not_deletable})")
                    continue
                try:
                    conn.storageVolLookupByKey(key).delete(0)
                    result.deleted.append(u.disk.source)
                except libvirt.libvirtError as err:
                    result.errors.append(f"{u.disk.source}: {libvirt_message(err)}")
            return result

        result = await self.call(work, action="delete", obj=obj, timeout=max(self.timeout, self.slow_timeout))
        self._schedule_refresh(uuid)
        return result

    # --- long operations ---------------------------------------------------------

    #: run_long's default ``stall``: a long operation that reported no
    #: progress for this many seconds counts as hung and is stopped.
    LONG_STALL = 600.0

    async def run_long(self, fn: Callable[..., Any], *, progress: Callable[..., Any] | None = None,
                       cancel: "threading.Event | None" = None, action: str = "talk to", obj: str = "",
                       timeout: float | None = None, stall: float | None = LONG_STALL) -> Any:
        """Run a long blocking ``fn(conn, progress=report, cancel=event)``
        (an import, an upload, a copy) through :meth:`call`: the same pool
        (it holds one worker while it runs), the same error mapping, and a
        lost connection starts the reconnect.

        * ``report(*args)``, called from the worker thread, reaches
          ``progress(*args)`` on the event loop, in order (never after this
          returned); each call also tells that the work is alive.
        * ``cancel`` (a ``threading.Event``; one is made when not given) is
          what ``fn`` checks to stop early. It is set when the awaiting task
          is cancelled and when a limit below ends the wait.
        * ``stall``: seconds without a report after which the work counts as
          hung (None: no such limit); ``timeout``: an overall limit (None:
          none). Either raises CallTimeout naming the limit; the thread stops
          at its next look at ``cancel``.
        """
        import threading
        import time as _time

        loop = asyncio.get_running_loop()
        token = cancel if cancel is not None else threading.Event()
        alive = [_time.monotonic()]
        over = [False]

        def deliver(args: tuple) -> None:
            if over[0] or progress is None:
                return
            try:
                progress(*args)
            except Exception:  # a broken progress display must not break the work
                log.exception("progress callback of %s %s failed", action, obj)

        def report(*args) -> None:
            alive[0] = _time.monotonic()
            if progress is None or over[0]:
                return
            try:
                loop.call_soon_threadsafe(deliver, args)
            except RuntimeError:  # the loop is gone
                pass

        def work(conn):
            try:
                return fn(conn, progress=report, cancel=token)
            except OSError as err:  # local files (a package, a download target): a sentence
                where = f"{err.filename}: " if getattr(err, "filename", None) else ""
                raise VmtuiError(action, obj, where + (err.strerror or str(err))) from None

        # the limits are kept here (call() gets one it never reaches)
        task = asyncio.ensure_future(self.call(work, timeout=10 * 365 * 86400.0, action=action, obj=obj))
        started = _time.monotonic()
        ok = False
        try:
            while True:
                waits = []
                now = _time.monotonic()
                if stall is not None:
                    waits.append(alive[0] + stall - now)
                if timeout is not None:
                    waits.append(started + timeout - now)
                wait = max(0.0, min(waits)) if waits else None
                done, _ = await asyncio.wait({task}, timeout=wait)
                if task in done:
                    result = task.result()
                    ok = True
                    return result
                now = _time.monotonic()
                if timeout is not None and now - started >= timeout:
                    raise CallTimeout(action, obj, f"not done within {timeout:g} s: stopped")
                if stall is not None and now - alive[0] >= stall:
                    raise CallTimeout(action, obj, f"no progress for {stall:g} s: stopped")
        finally:
            over[0] = True
            if not ok:
                token.set()
                if not task.done():
                    task.cancel()
                task.add_done_callback(lambda t: t.cancelled() or t.exception())


def _ssh_target(uri: str) -> str:
    """``user@host`` (or ``host``) of an ssh URI, for the commands a hint gives."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(uri)
        host = parts.hostname or "HOST"
    except ValueError:
        return "HOST"
    return f"{parts.username}@{host}" if parts.username else host


def ssh_problem(uri: str, cause: str) -> str | None:
    """What ssh needs before vmtui can log in, when ``cause`` (libvirt's
    message, which carries ssh's own words) says it would have asked for a
    password or a host-key confirmation; None for other failures. vmtui runs
    ssh without a terminal (``no_tty=1``: BatchMode), so ssh fails instead
    of painting a prompt over the screen."""
    scheme = uri.split(":", 1)[0]
    if not scheme.endswith("+ssh") and not scheme.endswith("+libssh2") and not scheme.endswith("+libssh"):
        return None
    low = cause.lower()
    target = _ssh_target(uri)
    host = target.rsplit("@", 1)[-1]
    if ("host key verification failed" in low or "host key is known" in low or "identification has changed" in low
            or "host key for" in low or "authenticity of host" in low):
        return (f"ssh does not trust the host key of {host} yet (or it changed). vmtui never answers ssh's "
                f"questions: run 'ssh {target}' once in a terminal to check and accept the key, then connect again.")
    if ("permission denied" in low or "authentication failed" in low or "no more authentication methods" in low
            or "too many authentication failures" in low or "password" in low or "passphrase" in low):
        return (f"ssh could not log in to {target} without a password. vmtui logs in with keys only: "
                f"load your key into the agent ('ssh-add'), or install it on the host ('ssh-copy-id {target}'), "
                "then connect again.")
    return None


def connect_hint(uri: str, cause: str) -> str:
    low = cause.lower()
    ssh = ssh_problem(uri, cause)
    if ssh:
        return ssh
    hints = []
    if "permission denied" in low or "authentication" in low:
        hints.append("run as root or as a member of the 'libvirt' group")
    if "no such file" in low or "failed to connect socket" in low or "connection refused" in low:
        hints.append("is libvirtd running on that host?")
    if "+ssh" in uri:
        hints.append("ssh must log in without a password prompt (use a key / ssh-agent)")
    hints.append("try 'vmtui --demo' for the bundled demo host, or '-c URI' for another host")
    return "Hint: " + "; ".join(hints) + "."
