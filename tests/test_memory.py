"""What screens and toasts leave behind is released (issue 10.4).

Textual keeps two things alive that vmtui lets go of: the footer's key
widgets (a data-binding watcher per key on the Footer, pruned only when the
bound value changes, which it never does) and, through an lru_cache keyed by
StylesCache objects, the render caches of widgets that are gone.
"""

from __future__ import annotations

import gc

from textual._styles_cache import StylesCache
from textual.widgets._footer import FooterKey

from tests.conftest import wait_for
from vmtui.core.config import Config
from vmtui.core.connection.service import LibvirtService
from vmtui.ui.app import VmtuiApp, release_render_memo


def footer_keys() -> set[int]:
    gc.collect()
    return {id(o) for o in gc.get_objects() if isinstance(o, FooterKey)}


def detached_footer_keys(ignore: set[int]) -> tuple[int, int]:
    gc.collect()
    keys = [o for o in gc.get_objects() if isinstance(o, FooterKey) and id(o) not in ignore]
    return len(keys), sum(1 for k in keys if not k.is_attached)


async def test_screen_switches_leave_no_footer_keys_behind(small_uri):
    before = footer_keys()  # earlier tests' apps may not be collected yet
    app = VmtuiApp(LibvirtService(small_uri, reconnect=False, stats_interval=3600), Config())
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(lambda: app.ready, what="list loaded")
        await pilot.pause()
        for _ in range(15):  # each return to the list recomposes its footer
            await pilot.press("question_mark")
            await pilot.pause()
            await pilot.press("escape")
            await pilot.pause()
        total, detached = detached_footer_keys(before)
        assert detached == 0
        assert total < 40  # the list's keys (and at most one other screen's)


def styles_caches() -> int:
    gc.collect()
    return sum(1 for o in gc.get_objects() if isinstance(o, StylesCache))


async def test_a_closed_screen_leaves_no_render_caches_behind(small_uri):
    """Each widget drawn has a StylesCache (its rendered lines); Textual's
    render memo kept those of up to 1,024 closed widgets alive (+20 MiB of
    RSS after a few hundred screens opened and closed in a row)."""
    app = VmtuiApp(LibvirtService(small_uri, reconnect=False, stats_interval=3600), Config())
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(lambda: app.ready, what="list loaded")
        await pilot.press("question_mark", "escape")
        await pilot.pause()
        before = styles_caches()
        for _ in range(40):  # the help screen has 8 widgets: 320 caches if they stayed
            await pilot.press("question_mark")
            await pilot.pause()
            await pilot.press("escape")
            await pilot.pause()
        assert styles_caches() - before < 8  # less than one help screen's


async def test_trim_releases_the_render_memo(small_uri):
    app = VmtuiApp(LibvirtService(small_uri, reconnect=False, stats_interval=3600), Config())
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(lambda: app.ready, what="list loaded")
        for i in range(12):
            app.notify(f"toast {i}", timeout=0.1)
        await pilot.pause()
        assert app._trim_timer is not None  # toasts count as churn: a trim is due once calm
        assert StylesCache.get_inner_outer.cache_info().currsize > 0
        app._trim_heap()
        assert StylesCache.get_inner_outer.cache_info().currsize == 0 and app._churn == 0
    release_render_memo()  # harmless when nothing is cached


def test_a_cycle_frozen_by_settle_goes_at_the_next_settle():
    """heap.settle freezes what exists (gc.freeze); a garbage cycle among
    the frozen objects (a closed screen, a connection given up) must not
    live for the rest of the session: the next settle collects it."""
    import gc
    import weakref

    from vmtui.core import heap

    class Node:
        pass

    a, b = Node(), Node()
    a.other, b.other = b, a  # a cycle: only the collector frees it
    gone = weakref.ref(a)
    try:
        heap.settle()
        del a, b
        gc.collect()
        assert gone() is not None  # frozen: not collected (what settle is for)
        heap.settle()
        assert gone() is None
    finally:
        heap.release()
