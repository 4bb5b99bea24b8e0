"""Give freed memory back to the system after a burst of work, and keep
long-lived objects out of the garbage collector's way.

An event storm or a reconnect builds and drops thousands of short-lived
objects at once. glibc's allocator keeps the freed pages of its heap (they
are fragmented: a few live objects pin each region), so the process's RSS
stays at the storm's high-water mark for good. ``malloc_trim(0)`` returns
every free page to the system; it takes a few milliseconds, so callers run
it once things have calmed down, not per event.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import logging

log = logging.getLogger(__name__)

_trim = None
_looked = False


def trim() -> bool:
    """Return free heap pages to the system (glibc only). True if done."""
    global _trim, _looked
    if not _looked:
        _looked = True
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            _trim = libc.malloc_trim
            _trim.argtypes = [ctypes.c_size_t]
            _trim.restype = ctypes.c_int
        except (OSError, AttributeError):
            log.info("malloc_trim is not available: RSS stays at its high-water mark")
    if _trim is None:
        return False
    _trim(0)
    return True


def settle() -> None:
    """The long-lived objects are made (the list of a big host): collect
    what is garbage now, then move every object there is into the
    collector's permanent generation (gc.freeze). A full collection then
    scans only what was made since, not every domain's record and row again
    -- at 10,000 domains that was 0.1 s of CPU each time, a few times a
    minute at idle.

    Frozen objects are still freed when their last reference goes, but a
    garbage *cycle* among them (a closed screen's widgets, a connection
    given up) is not collected while frozen: each settle first unfreezes
    and collects, so such cycles live at most until the next settle (after
    the next load or heap trim); a connection's teardown calls
    :func:`release` to let the collector at them at once."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()


def release() -> None:
    """Undo :func:`settle` (a connection torn down, the app done): frozen
    garbage cycles can go with the next collection."""
    gc.unfreeze()


_held = False


def hold() -> None:
    """No garbage collection until :func:`resume`: the few hundred ms in
    which the list of a big host is read and drawn make tens of thousands
    of objects, and the collections they trigger walk the whole heap."""
    global _held
    if gc.isenabled():
        gc.disable()
        _held = True


def resume() -> None:
    """Collect again (after :func:`hold`)."""
    global _held
    if _held:
        _held = False
        gc.enable()
