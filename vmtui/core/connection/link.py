"""One opened libvirt connection, its worker threads and the calls in flight.

libvirt's remote client is not safe against a connection being closed while
another thread is still inside a call on it: when the daemon answers at last
(a SIGSTOPped libvirtd that gets SIGCONT), that thread wakes up inside freed
client state and the process dies (SIGSEGV in libvirt.so or GLib). So a
:class:`Link` counts every call from the moment it is queued to the moment it
returns, and once the link is *retired* (the connection was declared lost, or
the service closes) it is torn down -- callbacks deregistered, ``close()`` --
by whichever thread finishes the last call, never earlier.

Each link has its own thread pool: calls stuck on a hung daemon keep their
threads, and the next connection starts with fresh ones.

Callers waiting for a call can stop waiting as soon as the link is declared
lost (:attr:`Link.lost`), without waiting out their time limit; the worker
thread stays where it is until libvirt lets it go, and only then does the
teardown happen.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import queue
import threading
import time
from typing import Any, Callable

import libvirt

from .. import heap

log = logging.getLogger(__name__)

WORKERS = 4


class Link:
    """A ``virConnect`` plus its thread pool and in-flight accounting.

    ``gen`` is the generation number handed to libvirt callbacks as their
    opaque value, so events of a link that was replaced are ignored.
    """

    def __init__(self, conn: Any, gen: int, readonly: bool,
                 executor: DaemonPool | None = None) -> None:
        self.conn = conn
        self.gen = gen
        self.readonly = readonly
        self.executor = executor or new_executor()
        self.probe_executor = DaemonPool(1, "libvirt-probe")
        self.last_answer = time.monotonic()  # when a call last returned
        self.callback_ids: list[tuple[str, int]] = []
        self.close_callback = False
        self._lock = threading.Lock()
        self._inflight = 0
        self._retired = False
        self._torn_down = False
        self.done = threading.Event()  # set once the teardown ran
        self.why = ""  # why it was retired
        self._lost: asyncio.Future | None = None

    # --- calls ---------------------------------------------------------------

    @property
    def inflight(self) -> int:
        with self._lock:
            return self._inflight

    @property
    def retired(self) -> bool:
        return self._retired

    def lost_future(self, loop: asyncio.AbstractEventLoop) -> asyncio.Future:
        """A future on ``loop`` that completes (with the reason) when the link is retired."""
        if self._lost is None or self._lost.get_loop() is not loop:
            self._lost = loop.create_future()
            if self._retired:
                self._lost.set_result(self.why)
        return self._lost

    def submit(self, fn: Callable, *args, probe: bool = False) -> concurrent.futures.Future:
        """Queue ``fn(*args)`` on this link's threads, counted as in flight
        until it returns (or is cancelled before it started). ``probe``
        calls run on a thread of their own, so that calls stuck in the pool
        never hold up the check that the daemon answers.

        Raises :class:`RetiredLink` when the link is retired already.
        """
        with self._lock:
            if self._retired:
                raise RetiredLink(self.why)
            self._inflight += 1
        pool = self.probe_executor if probe else self.executor
        try:
            fut = pool.submit(fn, *args)
        except RuntimeError:  # the pool was shut down meanwhile
            self._release()
            raise RetiredLink(self.why or "connection closed") from None
        fut.add_done_callback(self._answered)
        return fut

    def hold(self) -> Callable[[], None]:
        """Count one more use in flight (a call made on this connection from
        another link's thread); the returned function ends it, once. The
        connection is not torn down while held. Raises RetiredLink."""
        with self._lock:
            if self._retired:
                raise RetiredLink(self.why)
            self._inflight += 1
        done = [False]

        def release() -> None:
            if not done[0]:
                done[0] = True
                self._release()
        return release

    def _answered(self, fut: concurrent.futures.Future) -> None:
        if not fut.cancelled():
            self.last_answer = time.monotonic()
        self._release()

    def _release(self) -> None:
        with self._lock:
            self._inflight -= 1
            due = self._retired and self._inflight == 0 and not self._torn_down
            if due:
                self._torn_down = True
        if due:
            self._start_teardown()

    # --- retiring --------------------------------------------------------------

    def retire(self, why: str, loop: asyncio.AbstractEventLoop | None = None) -> None:
        """No new calls; waiting callers are told at once; the connection is
        closed after the last call in flight has returned."""
        with self._lock:
            if self._retired:
                return
            self._retired = True
            self.why = why
            due = self._inflight == 0 and not self._torn_down
            if due:
                self._torn_down = True
        lost = self._lost
        if lost is not None and not lost.done():
            target = lost.get_loop()
            if loop is target:
                lost.set_result(why)
            else:
                target.call_soon_threadsafe(lambda: lost.done() or lost.set_result(why))
        # Calls still queued (not started) need not run at all: cancelling
        # them releases them (their done callbacks run).
        self.executor.shutdown(wait=False, cancel_futures=True)
        self.probe_executor.shutdown(wait=False, cancel_futures=True)
        if due:
            self._start_teardown()

    def _start_teardown(self) -> None:
        # A thread of its own: the last call may finish on the asyncio loop's
        # thread (a cancelled future), and teardown talks to libvirt.
        threading.Thread(target=self._teardown, name="libvirt-teardown", daemon=True).start()

    def _teardown(self) -> None:
        conn = self.conn
        try:
            for kind, cid in self.callback_ids:
                try:
                    if kind == "domain":
                        conn.domainEventDeregisterAny(cid)
                    elif kind == "network":
                        conn.networkEventDeregisterAny(cid)
                    else:
                        conn.storagePoolEventDeregisterAny(cid)
                except libvirt.libvirtError:
                    pass
            self.callback_ids = []
            if self.close_callback:
                try:
                    conn.unregisterCloseCallback()
                except libvirt.libvirtError:
                    pass
            try:
                conn.close()
            except libvirt.libvirtError:
                pass
        except Exception:  # never let a teardown thread print a traceback
            log.exception("closing the connection failed")
        finally:
            self.conn = None
            self._lost = None  # its waiters are long told
            self.done.set()
            # what was made around this connection (tracebacks of the calls
            # it failed, their frames) may sit in cycles that a heap.settle
            # froze: let the collector at them (settled again after a reload)
            heap.release()


class RetiredLink(Exception):
    """A call was made on a link that is retired (the connection is gone)."""


class DaemonPool:
    """A small pool of daemon threads: the ``submit``/``shutdown`` part of
    :class:`concurrent.futures.ThreadPoolExecutor`.

    The standard pool joins its threads when the interpreter exits, so one
    thread stuck in a call to a hung libvirtd would keep vmtui from quitting.
    These threads are daemons: quitting never waits for libvirt.
    """

    def __init__(self, max_workers: int = WORKERS, name: str = "libvirt") -> None:
        self._max = max_workers
        self._name = name
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads = 0
        self._idle = 0  # threads waiting for work
        self._shutdown = False
        self._pending: set[concurrent.futures.Future] = set()

    def submit(self, fn: Callable, *args) -> concurrent.futures.Future:
        fut: concurrent.futures.Future = concurrent.futures.Future()
        with self._lock:
            if self._shutdown:
                raise RuntimeError("cannot schedule new calls after shutdown")
            self._pending.add(fut)
            start = len(self._pending) > self._idle and self._threads < self._max
            if start:
                self._threads += 1
        self._queue.put((fut, fn, args))
        if start:
            threading.Thread(target=self._work, name=f"{self._name}-worker", daemon=True).start()
        return fut

    def _work(self) -> None:
        while True:
            with self._lock:
                self._idle += 1
            item = self._queue.get()
            with self._lock:
                self._idle -= 1
                if item is None:
                    self._threads -= 1
                    return
                self._pending.discard(item[0])
            fut, fn, args = item
            del item
            if fut.set_running_or_notify_cancel():
                try:
                    result = fn(*args)
                except BaseException as err:  # noqa: BLE001 - handed to the waiter
                    fut.set_exception(err)
                else:
                    fut.set_result(result)
            del fut, fn, args

    def shutdown(self, wait: bool = False, cancel_futures: bool = False) -> None:
        """No new calls; threads end once idle; ``cancel_futures`` cancels
        what has not started. Never waits: ``wait`` is accepted and ignored."""
        with self._lock:
            first = not self._shutdown
            self._shutdown = True
            pending = list(self._pending) if cancel_futures else []
            if cancel_futures:
                # the futures' done callbacks point back at the link that owns
                # this pool: keep no cycle (a frozen one outlives its link)
                self._pending.clear()
            threads = self._threads
        for fut in pending:
            fut.cancel()
        if first:
            for _ in range(threads):
                self._queue.put(None)


def new_executor() -> DaemonPool:
    return DaemonPool()


class Opener:
    """Opens connections in threads, one attempt at a time.

    An open that outlives its time limit (a hung daemon accepts the socket
    but never answers) keeps its thread; the next attempt waits for that
    same open instead of starting another, so a daemon hung for hours costs
    one thread, not one per retry, and an open that succeeded after its
    caller stopped waiting is taken by the next attempt. :meth:`abandon`
    closes whatever an attempt still in progress opens.
    """

    def __init__(self) -> None:
        self._pending: concurrent.futures.Future | None = None
        self._executor: DaemonPool | None = None

    def start(self, fn: Callable[[], Any]) -> concurrent.futures.Future:
        """The attempt in progress (or succeeded and not taken yet), else a new one."""
        fut = self._pending
        if fut is not None and (not fut.done() or (not fut.cancelled() and fut.exception() is None)):
            return fut
        self._drop()
        self._executor = new_executor()
        self._pending = self._executor.submit(fn)
        return self._pending

    def take(self) -> tuple[Any, DaemonPool]:
        """The result of the attempt that succeeded, with the thread pool it
        ran on (which becomes the link's pool)."""
        fut, executor = self._pending, self._executor
        self._pending = self._executor = None
        assert fut is not None and executor is not None
        return fut.result(), executor

    def failed(self) -> None:
        """The attempt raised: forget it (its thread is free)."""
        self._drop()

    def _drop(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False)
        self._pending = self._executor = None

    def abandon(self) -> None:
        """Forget any attempt; if it succeeds (or did), close the connection."""
        fut = self._pending
        self._drop()
        if fut is None:
            return

        def close_late(f: concurrent.futures.Future) -> None:
            if f.cancelled() or f.exception() is not None:
                return
            result = f.result()
            conn = result[0] if isinstance(result, tuple) else result
            try:
                conn.close()
            except Exception:  # noqa: BLE001 - best effort on a connection nobody wants
                pass

        fut.add_done_callback(close_late)
