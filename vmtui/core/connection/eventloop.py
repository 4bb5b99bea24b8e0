"""libvirt's event loop: ``libvirtaio`` on a dedicated asyncio loop thread.

libvirt keeps one event-loop implementation per process, registered once and
never replaced. We run libvirtaio's implementation on its own asyncio loop in a
daemon thread ("libvirt-events"), started on first use. That keeps libvirt's
socket and timer handling independent of whichever loop the UI runs (the
app's, a test's, a snapshot run's), and a slow libvirt callback can never
stall the UI. Services hand events over to their own loop with
``call_soon_threadsafe``.

libvirt calls the add/update/remove functions from whatever thread is making
an API call (our thread pool). libvirtaio performs them directly; the
subclass below then wakes the event loop so a timer armed from another thread
(the test driver queues every event that way) fires at once instead of when
the loop next happens to wake.
"""

from __future__ import annotations

import asyncio
import threading

import libvirt
import libvirtaio

_lock = threading.Lock()
_impl: "_WakingImpl | None" = None
_quiet = False


def _noop() -> None:
    pass


class _WakingImpl(libvirtaio.virEventAsyncIOImpl):
    """libvirtaio, plus a wake-up of its loop when driven from another thread."""

    thread_id: int | None = None

    def _wake(self) -> None:
        if threading.get_ident() != self.thread_id and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(_noop)

    def _add_handle(self, fd, event, cb, opaque):
        iden = super()._add_handle(fd, event, cb, opaque)
        self._wake()
        return iden

    def _update_handle(self, watch, event):
        super()._update_handle(watch, event)
        self._wake()

    def _remove_handle(self, watch):
        ret = super()._remove_handle(watch)
        self._wake()
        return ret

    def _add_timeout(self, timeout, cb, opaque):
        iden = super()._add_timeout(timeout, cb, opaque)
        self._wake()
        return iden

    def _update_timeout(self, timer, timeout):
        super()._update_timeout(timer, timeout)
        self._wake()

    def _remove_timeout(self, timer):
        ret = super()._remove_timeout(timer)
        self._wake()
        return ret


def silence_default_error_handler() -> None:
    """libvirt prints every error to stderr by default; in a TUI that paints
    over the screen. We report errors ourselves."""
    global _quiet
    if not _quiet:
        libvirt.registerErrorHandler(lambda _ctx, _err: None, None)
        _quiet = True


def ensure_event_impl() -> libvirtaio.virEventAsyncIOImpl:
    """Start the libvirt event thread (once per process) and return its impl."""
    global _impl
    silence_default_error_handler()
    with _lock:
        if _impl is not None:
            return _impl
        loop = asyncio.new_event_loop()
        started = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(loop)
            loop.call_soon(started.set)
            loop.run_forever()

        thread = threading.Thread(target=run, name="libvirt-events", daemon=True)
        thread.start()
        started.wait()
        impl = _WakingImpl(loop=loop)
        impl.thread_id = thread.ident
        impl.register()
        _impl = impl
        return impl


def event_thread_alive() -> bool:
    return _impl is not None and not _impl.loop.is_closed() and _impl.loop.is_running()
