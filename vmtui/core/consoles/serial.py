"""A domain's serial console through libvirt's console stream.

:class:`ConsoleSession` wraps ``virDomainOpenConsole`` on a non-blocking
``virStream``. Opening is a blocking libvirt call and runs through the
service (``LibvirtService.call``); reading is event driven: libvirt's event
loop (libvirtaio on the "libvirt-events" thread, see :mod:`vmtui.core.connection.eventloop`)
calls us when the stream is readable, and we drain it with ``recv`` until it
says EAGAIN. Consumers get bytes through ``on_data(bytes)`` and the end
through ``on_closed(reason)``, both called **on the libvirt-events thread**:
hand them over to your own loop (``call_soon_threadsafe``,
``App.call_from_thread``).

Besides its one consumer (the console on screen), a session has observers
(:meth:`ConsoleSession.observe`): they get every byte too, whoever watches
or not -- the readiness detector (:mod:`.readiness`) reads the boot this way.

:class:`ConsoleManager` keeps one session and one bounded scroll-back per
domain UUID, so leaving the console and coming back shows what arrived
meanwhile (the session keeps reading while nobody watches); observers given
to it (:meth:`ConsoleManager.observe`) follow the VM's sessions.

Nothing here imports Textual.
"""

from __future__ import annotations

import collections
import datetime
import logging
import os
import re
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

import libvirt

from ..xml import domxml
from ..xml.domain_model import Console, Domain, Serial
from ..errors import VmtuiError, is_connection_lost, libvirt_message
from ..connection.eventloop import ensure_event_impl

if TYPE_CHECKING:  # pragma: no cover
    from ..connection.service import LibvirtService

log = logging.getLogger(__name__)

SCROLLBACK_LIMIT = 1 << 20  # bytes kept per VM
RECV_SIZE = 65536

# Readable close reasons / error states.
VM_NOT_RUNNING = "VM not running"
NO_SERIAL = "no serial device"
IN_USE = "console in use by another client"
VM_SHUT_DOWN = "VM shut down"
CONNECTION_LOST = "connection lost"
CLOSED_BY_USER = "closed"
TAKEN_OVER = "console taken over by another client"


class ConsoleError(VmtuiError):
    """Opening a console failed; ``state`` is one of the readable states above."""

    def __init__(self, obj: str, state: str, cause: str = "", hint: str = "", code: int | None = None):
        self.state = state
        super().__init__("open the console of", obj, cause or state, hint, code)


class ConsoleNotRunning(ConsoleError):
    def __init__(self, obj: str):
        super().__init__(obj, VM_NOT_RUNNING, hint="Start the VM first.")


class ConsoleNoDevice(ConsoleError):
    def __init__(self, obj: str):
        super().__init__(obj, NO_SERIAL, hint="Add a serial device to the VM's definition.")


class ConsoleInUse(ConsoleError):
    """Someone else (virsh console, another vmtui) holds the console;
    opening again with ``force=True`` takes it over."""

    def __init__(self, obj: str, cause: str = ""):
        super().__init__(obj, IN_USE, cause=f"{IN_USE} ({cause})" if cause else IN_USE,
                         hint="Open it with force to take it over (as 'virsh console --force').")


# --------------------------------------------------------------------------
# scroll-back


class ScrollBack:
    """Bounded byte history (thread-safe): a deque of chunks, oldest dropped first."""

    def __init__(self, limit: int = SCROLLBACK_LIMIT) -> None:
        self.limit = limit
        self._chunks: collections.deque[bytes] = collections.deque()
        self._size = 0
        self.total = 0  # bytes ever appended
        self.lock = threading.RLock()

    def append(self, data: bytes) -> None:
        if not data:
            return
        with self.lock:
            if len(data) >= self.limit:
                self._chunks.clear()
                self._size = 0
                data = data[-self.limit:]
            self._chunks.append(data)
            self._size += len(data)
            self.total += len(data)
            while self._size > self.limit:
                extra = self._size - self.limit
                first = self._chunks[0]
                if len(first) <= extra:
                    self._chunks.popleft()
                    self._size -= len(first)
                else:
                    self._chunks[0] = first[extra:]
                    self._size -= extra

    def snapshot(self) -> bytes:
        with self.lock:
            return b"".join(self._chunks)

    def since(self, pos: int) -> bytes:
        """The bytes appended after ``pos`` (a value of :attr:`total`); all
        that is kept when some of them were already dropped."""
        with self.lock:
            start = self.total - self._size
            data = b"".join(self._chunks)
            return data[max(0, pos - start):] if pos >= start else data

    def clear(self) -> None:
        with self.lock:
            self._chunks.clear()
            self._size = 0

    def __len__(self) -> int:
        return self._size


# --------------------------------------------------------------------------
# the session

DataCallback = Callable[[bytes], None]
ClosedCallback = Callable[[str], None]

_EV_READ = libvirt.VIR_STREAM_EVENT_READABLE
_EV_WRITE = libvirt.VIR_STREAM_EVENT_WRITABLE
_EV_ERR = libvirt.VIR_STREAM_EVENT_ERROR
_EV_HUP = libvirt.VIR_STREAM_EVENT_HANGUP


@dataclass(slots=True)
class _Opened:
    stream: libvirt.virStream
    name: str


def _open_blocking(conn: libvirt.virConnect, uuid: str, dev_name: str | None, force: bool) -> _Opened:
    """Blocking part of opening (runs in the service's pool)."""
    dom = conn.lookupByUUIDString(uuid)
    name = dom.name()
    obj = f"domain '{name}'"
    if not dom.isActive():
        raise ConsoleNotRunning(obj)
    try:
        overview = domxml.parse_domain(dom.XMLDesc(0))
        if not overview.serials:
            raise ConsoleNoDevice(obj)
    except domxml.DomainXMLError:
        pass  # let libvirt decide
    stream = conn.newStream(libvirt.VIR_STREAM_NONBLOCK)
    flags = libvirt.VIR_DOMAIN_CONSOLE_FORCE if force else libvirt.VIR_DOMAIN_CONSOLE_SAFE
    try:
        try:
            dom.openConsole(dev_name, stream, flags)
        except libvirt.libvirtError as err:
            if flags & libvirt.VIR_DOMAIN_CONSOLE_SAFE and err.get_error_code() in (
                    libvirt.VIR_ERR_NO_SUPPORT, libvirt.VIR_ERR_ARGUMENT_UNSUPPORTED,
                    libvirt.VIR_ERR_INVALID_ARG) and "safe" in libvirt_message(err).lower():
                dom.openConsole(dev_name, stream, 0)  # driver without safe-console support
            else:
                raise
    except libvirt.libvirtError as err:
        try:
            stream.abort()
        except libvirt.libvirtError:
            pass
        msg = libvirt_message(err)
        low = msg.lower()
        if "active console session" in low or "in use" in low:
            raise ConsoleInUse(obj, msg) from None
        if "not running" in low or err.get_error_code() == libvirt.VIR_ERR_OPERATION_INVALID and "active" in low:
            raise ConsoleNotRunning(obj) from None
        if "cannot find character device" in low or ("character device" in low and "not" in low):
            raise ConsoleNoDevice(obj) from None
        raise
    return _Opened(stream, name)


def _tell(callback: Callable[[Any], None] | None, what: Any) -> None:
    """Hand ``what`` to a consumer's callback: one that fails is logged,
    never raised into libvirt's event loop."""
    if callback is None:
        return
    try:
        callback(what)
    except Exception:
        log.exception("console consumer failed")


class ConsoleSession:
    """One open console stream. Create with :meth:`open` (or through a
    :class:`ConsoleManager`).

    ``state`` is "open" or "closed"; ``close_reason`` says why it closed
    (:data:`VM_SHUT_DOWN`, :data:`CONNECTION_LOST`, :data:`TAKEN_OVER`,
    :data:`CLOSED_BY_USER` or libvirt's message).
    """

    def __init__(self, uuid: str, name: str, stream: libvirt.virStream, *,
                 scrollback: ScrollBack | None = None, service: "LibvirtService | None" = None) -> None:
        self.uuid = uuid
        self.name = name
        self.stream = stream
        self.scrollback = scrollback if scrollback is not None else ScrollBack()
        self.service = service
        self.state = "open"
        self.close_reason: str | None = None
        self._lock = threading.RLock()
        self._on_data: DataCallback | None = None
        self._on_closed: ClosedCallback | None = None
        self._observers: list[tuple[DataCallback, ClosedCallback | None]] = []
        self._out = bytearray()
        self._watching_write = False
        self._cb_registered = False
        self.bytes_in = 0
        self.bytes_out = 0

    # -- opening ---------------------------------------------------------

    @classmethod
    async def open(cls, service: "LibvirtService", uuid: str, *, dev_name: str | None = None,
                   force: bool = False, scrollback: ScrollBack | None = None,
                   on_data: DataCallback | None = None, on_closed: ClosedCallback | None = None
                   ) -> "ConsoleSession":
        """Open the console of domain ``uuid`` through ``service``.

        Raises :class:`ConsoleNotRunning`, :class:`ConsoleNoDevice`,
        :class:`ConsoleInUse` or another :class:`VmtuiError`.
        """
        ensure_event_impl()
        d = service.domains.get(uuid)
        obj = f"domain '{d.name}'" if d else f"domain {uuid}"
        holder: dict[str, ConsoleSession] = {}

        def work(conn: libvirt.virConnect) -> ConsoleSession:
            opened = _open_blocking(conn, uuid, dev_name, force)
            session = cls(uuid, opened.name, opened.stream, scrollback=scrollback, service=service)
            holder["s"] = session
            session._on_data, session._on_closed = on_data, on_closed
            session._register()
            return session

        try:
            return await service.call(work, action="open the console of", obj=obj)
        except BaseException:
            s = holder.get("s")
            if s is not None:  # e.g. the call timed out after opening
                s.close()
            raise

    def _register(self) -> None:
        self.stream.eventAddCallback(_EV_READ | _EV_ERR | _EV_HUP, self._event, None)
        self._cb_registered = True

    # -- consumers ---------------------------------------------------------

    def attach(self, on_data: DataCallback | None, on_closed: ClosedCallback | None = None) -> bytes:
        """Become the consumer; returns the scroll-back so far. Atomic with
        respect to incoming data: every byte is either in the returned
        history or passed to ``on_data`` later, never both, never neither.
        If the session is already closed, ``on_closed`` is *not* called;
        check :attr:`state`."""
        with self._lock:
            self._on_data, self._on_closed = on_data, on_closed
            return self.scrollback.snapshot()

    def attach_from(self, pos: int, on_data: DataCallback | None,
                    on_closed: ClosedCallback | None = None) -> tuple[bytes, int]:
        """Like :meth:`attach`, for a consumer that already saw the scroll-back
        up to ``pos`` (a :attr:`ScrollBack.total`): returns only the bytes after
        it, and the new position (count ``len(data)`` of each ``on_data`` on top)."""
        with self._lock:
            self._on_data, self._on_closed = on_data, on_closed
            with self.scrollback.lock:
                return self.scrollback.since(pos), self.scrollback.total

    def detach(self) -> None:
        """Stop delivering to the consumer; the session keeps reading into the scroll-back."""
        with self._lock:
            self._on_data = self._on_closed = None

    def observe(self, on_data: DataCallback, on_closed: ClosedCallback | None = None) -> Callable[[], None]:
        """Get every byte from now on besides the consumer (same thread, same
        rules: hand it over, never block); ``on_closed`` hears the end.
        Returns the function that stops it."""
        entry = (on_data, on_closed)
        with self._lock:
            self._observers.append(entry)

        def stop() -> None:
            with self._lock:
                if entry in self._observers:
                    self._observers.remove(entry)
        return stop

    @property
    def is_open(self) -> bool:
        return self.state == "open"

    # -- stream events (libvirt-events thread) -----------------------------

    def _event(self, stream: libvirt.virStream, events: int, _opaque) -> None:
        try:
            if events & (_EV_READ | _EV_HUP | _EV_ERR):
                self._drain()
            if self.state == "open" and events & _EV_WRITE:
                self._flush()
            if self.state == "open" and events & _EV_HUP:
                self._finish(self._reason_for_eof())
            elif self.state == "open" and events & _EV_ERR:
                self._finish(TAKEN_OVER if not self._service_down() else CONNECTION_LOST)
        except Exception:  # never let an exception escape into libvirt's loop
            log.exception("console event handling failed")
            self._finish("internal error")

    def _drain(self) -> None:
        while self.state == "open":
            try:
                data = self.stream.recv(RECV_SIZE)
            except libvirt.libvirtError as err:
                self._finish(self._reason_for_error(err))
                return
            if data == -2:  # EAGAIN: wait for the next READABLE
                return
            if not isinstance(data, (bytes, bytearray)):
                self._finish(self._reason_for_error(None))
                return
            if not data:  # EOF
                self._finish(self._reason_for_eof())
                return
            data = bytes(data)
            with self._lock:
                self.bytes_in += len(data)
                self.scrollback.append(data)
                _tell(self._on_data, data)
                for observer, _ in self._observers:
                    _tell(observer, data)

    def _service_down(self) -> bool:
        svc = self.service
        if svc is None:
            return False
        from ..connection.service import ConnState  # local: avoids an import cycle at module load
        return svc.state is not ConnState.CONNECTED

    def _reason_for_eof(self) -> str:
        return CONNECTION_LOST if self._service_down() else VM_SHUT_DOWN

    def _reason_for_error(self, err: libvirt.libvirtError | None) -> str:
        if self._service_down() or (err is not None and is_connection_lost(err)):
            return CONNECTION_LOST
        msg = libvirt_message(err).lower() if err is not None else ""
        if err is None or "i/o failure" in msg or "forcibly" in msg or "another" in msg:
            # libvirt aborts our stream when another client opens the console
            # with force; the client side only sees "stream had I/O failure".
            # (A shut-down VM ends the stream with EOF/HANGUP instead.)
            return TAKEN_OVER
        if "shut" in msg or "not running" in msg or "end of file" in msg:
            return VM_SHUT_DOWN
        return libvirt_message(err)

    # -- sending -----------------------------------------------------------

    def send(self, data: bytes) -> None:
        """Queue ``data`` for the guest (any thread; never blocks, never drops).
        The actual ``virStreamSend`` runs on the libvirt-events thread."""
        if not data or self.state != "open":
            return
        with self._lock:
            self._out += data
        impl = ensure_event_impl()
        impl.loop.call_soon_threadsafe(self._flush_safe)

    def _flush_safe(self) -> None:
        try:
            self._flush()
        except Exception:
            log.exception("console send failed")

    def _flush(self) -> None:
        with self._lock:
            while self._out and self.state == "open":
                try:
                    n = self.stream.send(bytes(self._out[:RECV_SIZE]))
                except libvirt.libvirtError as err:
                    self._finish(self._reason_for_error(err))
                    return
                if n == -2 or n is None or n <= 0:
                    break
                del self._out[:n]
                self.bytes_out += n
            want_write = bool(self._out) and self.state == "open"
            if want_write != self._watching_write and self._cb_registered:
                events = _EV_READ | _EV_ERR | _EV_HUP | (_EV_WRITE if want_write else 0)
                try:
                    self.stream.eventUpdateCallback(events)
                    self._watching_write = want_write
                except libvirt.libvirtError:
                    pass

    # -- closing -----------------------------------------------------------

    def _finish(self, reason: str, abort: bool = True) -> None:
        with self._lock:
            if self.state != "open":
                return
            self.state = "closed"
            self.close_reason = reason
            cb = self._on_closed
            watchers = [closed for _, closed in self._observers if closed is not None]
            self._observers = []
            self._out.clear()
        if self._cb_registered:
            try:
                self.stream.eventRemoveCallback()
            except libvirt.libvirtError:
                pass
            self._cb_registered = False
        try:
            if abort:
                self.stream.abort()
            else:
                self.stream.finish()
        except libvirt.libvirtError:
            pass
        _tell(cb, reason)
        for closed in watchers:
            _tell(closed, reason)

    def close(self) -> None:
        """Close the stream (any thread). ``on_closed`` hears :data:`CLOSED_BY_USER`."""
        if self.state != "open":
            return
        impl = ensure_event_impl()
        _t = threading
        if _t.get_ident() == impl.thread_id:
            self._finish(CLOSED_BY_USER)
            return
        done = _t.Event()

        def run() -> None:
            try:
                self._finish(CLOSED_BY_USER)
            finally:
                done.set()

        impl.loop.call_soon_threadsafe(run)
        if not done.wait(5):  # event thread stuck: close from here
            self._finish(CLOSED_BY_USER)


# --------------------------------------------------------------------------
# the manager


class ConsoleManager:
    """Open consoles and their scroll-backs, keyed by domain UUID."""

    def __init__(self, service: "LibvirtService", scrollback_limit: int = SCROLLBACK_LIMIT) -> None:
        self.service = service
        self.scrollback_limit = scrollback_limit
        self._sessions: dict[str, ConsoleSession] = {}
        self._scrollbacks: dict[str, ScrollBack] = {}
        self._observers: dict[str, list[tuple[DataCallback, ClosedCallback | None]]] = {}
        self._stops: dict[tuple[str, int], Callable[[], None]] = {}

    def scrollback(self, uuid: str) -> ScrollBack:
        sb = self._scrollbacks.get(uuid)
        if sb is None:
            sb = self._scrollbacks[uuid] = ScrollBack(self.scrollback_limit)
        return sb

    def session(self, uuid: str) -> ConsoleSession | None:
        return self._sessions.get(uuid)

    def sessions(self) -> list[ConsoleSession]:
        return list(self._sessions.values())

    async def open(self, uuid: str, *, force: bool = False, dev_name: str | None = None) -> ConsoleSession:
        """The open session of ``uuid``, or a new one. Its scroll-back
        carries on from earlier sessions of the same VM. Attach with
        :meth:`ConsoleSession.attach` to get the history and the live data."""
        s = self._sessions.get(uuid)
        if s is not None and s.is_open and not force:
            return s
        if s is not None and s.is_open:
            s.close()
        s = await ConsoleSession.open(self.service, uuid, dev_name=dev_name, force=force,
                                      scrollback=self.scrollback(uuid))
        self._sessions[uuid] = s
        for entry in self._observers.get(uuid, ()):
            self._stops[(uuid, id(entry))] = s.observe(*entry)
        return s

    def observe(self, uuid: str, on_data: DataCallback, on_closed: ClosedCallback | None = None
                ) -> Callable[[], None]:
        """Get the bytes of every session of ``uuid`` (the open one and the
        ones opened later), as :meth:`ConsoleSession.observe`. Returns the
        function that stops it."""
        entry = (on_data, on_closed)
        self._observers.setdefault(uuid, []).append(entry)
        s = self._sessions.get(uuid)
        if s is not None and s.is_open:
            self._stops[(uuid, id(entry))] = s.observe(*entry)

        def stop() -> None:
            entries = self._observers.get(uuid, [])
            if entry in entries:
                entries.remove(entry)
            if not entries:
                self._observers.pop(uuid, None)
            unhook = self._stops.pop((uuid, id(entry)), None)
            if unhook is not None:
                unhook()
        return stop

    def close(self, uuid: str) -> None:
        s = self._sessions.pop(uuid, None)
        if s is not None:
            s.close()

    def forget(self, uuid: str) -> None:
        """Close and drop the scroll-back too."""
        self.close(uuid)
        self._scrollbacks.pop(uuid, None)

    def close_all(self) -> None:
        for uuid in list(self._sessions):
            self.close(uuid)


# --------------------------------------------------------------------------
# adding a serial console to a definition


class SerialAlreadyPresent(VmtuiError):
    pass


def has_serial_console(xml: str | bytes) -> bool:
    """True when the domain XML has a <serial> or a <console> device."""
    return _has_serial(Domain.parse(xml, register=False))


def _has_serial(dom: Domain) -> bool:
    return bool(dom.devices.serials) or bool(dom.devices.consoles)


def add_serial_console_xml(xml: str | bytes) -> str:
    """``xml`` with ``<serial type='pty'><target port='0'/></serial>`` and
    ``<console type='pty'><target type='serial' port='0'/></console>`` added
    to ``<devices>`` (what ``virt-install --serial pty`` gives), at libvirt's
    place for them and indented like their neighbours. Everything else is kept
    as it was, including elements vmtui does not model, comments and namespaced
    metadata. Raises :class:`domxml.DomainXMLError` when the domain already has
    a serial or console device."""
    dom = Domain.parse(xml)
    if _has_serial(dom):
        raise domxml.DomainXMLError("the domain already has a serial or console device")
    dom.devices.serials.add(Serial.new("pty", port=0))
    dom.devices.consoles.add(Console.new("pty", target_type="serial", port=0))
    return dom.to_xml()


@dataclass(slots=True)
class SerialAdded:
    name: str
    running: bool  # True: takes effect at the next boot (shut down + start)


def add_serial_console_blocking(conn: libvirt.virConnect, uuid: str) -> SerialAdded:
    """Add a serial console to the persistent definition of domain ``uuid``
    (blocking; run it through :meth:`LibvirtService.call`)."""
    dom = conn.lookupByUUIDString(uuid)
    name = dom.name()
    obj = f"domain '{name}'"
    if not dom.isPersistent():
        raise VmtuiError("add a serial console to", obj, "it is a transient VM: it has no persistent definition",
                         "Define it first (virsh dumpxml NAME > f.xml; virsh define f.xml).")
    # SECURE: keep VNC/SPICE passwords in the definition we write back
    xml = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE | libvirt.VIR_DOMAIN_XML_SECURE)
    try:
        new = add_serial_console_xml(xml)
    except domxml.DomainXMLError as err:
        raise SerialAlreadyPresent("add a serial console to", obj, str(err)) from None
    conn.defineXML(new)
    return SerialAdded(name, bool(dom.isActive()))


async def add_serial_console(service: "LibvirtService", uuid: str) -> SerialAdded:
    d = service.domains.get(uuid)
    obj = f"domain '{d.name}'" if d else f"domain {uuid}"
    return await service.call(lambda conn: add_serial_console_blocking(conn, uuid),
                              action="add a serial console to", obj=obj)


async def definition_has_serial(service: "LibvirtService", uuid: str) -> bool | None:
    """Whether the persistent definition has a serial/console device (None: unknown)."""
    def work(conn: libvirt.virConnect) -> bool | None:
        dom = conn.lookupByUUIDString(uuid)
        if not dom.isPersistent():
            return None
        return has_serial_console(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
    try:
        return await service.call(work, action="read the definition of", obj=f"domain {uuid}")
    except (VmtuiError, domxml.DomainXMLError):
        return None


# --------------------------------------------------------------------------
# saving the scroll-back

_ESCAPES = re.compile(
    rb"\x1b\[[0-?]*[ -/]*[@-~]"          # CSI ... final
    rb"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"  # OSC ... BEL/ST
    rb"|\x1b[PX^_][^\x1b]*(?:\x1b\\)?"     # DCS/SOS/PM/APC ... ST
    rb"|\x1b[()*+][0-9A-Za-z]"             # charset designation
    rb"|\x1b[#%][0-9A-Za-z@]"
    rb"|\x1b[ -~]"                         # any other 2-byte escape
    rb"|\x9b[0-?]*[ -/]*[@-~]")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def scrollback_text(data: bytes) -> str:
    """Console bytes as plain text: escape sequences removed, CR LF -> LF, a
    lone CR overwrites its line (progress bars), backspaces applied."""
    text = _ESCAPES.sub(b"", data).decode("utf-8", "replace")
    out = []
    for line in text.replace("\r\n", "\n").split("\n"):
        if "\r" in line:
            parts = [p for p in line.split("\r")]
            cur = ""
            for p in parts:  # CR returns to column 0: later text overwrites
                cur = p + cur[len(p):]
            line = cur
        if "\b" in line:
            buf: list[str] = []
            for ch in line:
                if ch == "\b":
                    if buf:
                        buf.pop()
                else:
                    buf.append(ch)
            line = "".join(buf)
        out.append(_CONTROL.sub("", line).rstrip())
    return "\n".join(out)


def default_log_path(vm_name: str, when: datetime.datetime | None = None, directory: str | None = None) -> str:
    """``<cwd>/<vm>-console-YYYYmmdd-HHMMSS.log``."""
    when = when or datetime.datetime.now()
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", vm_name).strip("._") or "vm"
    return os.path.join(directory or os.getcwd(), f"{safe}-console-{when:%Y%m%d-%H%M%S}.log")


def write_scrollback(path: str, data: bytes, *, raw: bool = False, overwrite: bool = False) -> int:
    """Write the scroll-back to ``path`` (plain text, or the raw bytes with
    their escape sequences for ``less -R``). Returns the bytes written.
    Raises :class:`VmtuiError` naming the path and the cause."""
    path = os.path.expanduser(path.strip())
    obj = f"file '{path}'"
    if not path:
        raise VmtuiError("save the console to", "a file", "no file name given")
    if os.path.isdir(path):
        raise VmtuiError("save the console to", obj, "it is a directory", "Give a file name.")
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise VmtuiError("save the console to", obj, f"the directory {parent} does not exist")
    if os.path.exists(path) and not overwrite:
        raise FileExistsError(path)
    payload = data if raw else (scrollback_text(data) + "\n").encode("utf-8")
    try:
        with open(path, "wb") as f:
            f.write(payload)
    except OSError as err:
        raise VmtuiError("save the console to", obj, err.strerror or str(err),
                         "Choose a directory you can write to.") from None
    return len(payload)
