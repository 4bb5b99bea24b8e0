"""Work that ends late or keys typed ahead (a slow SSH link delivers them in
one read) must not end the app or close the wrong screen (ui/base.py,
VmtuiApp._handle_exception and _replace_screen)."""

from __future__ import annotations

import asyncio
import logging

import pytest
from textual import work
from textual.app import App
from textual.widgets import Static

import vmtui.ui.app as app_module
from tests.notes import notes_of, run_noted
from vmtui.ui.base import VScreen
from vmtui.ui.dialogs import ConfirmDialog
from vmtui.ui.settings.screen import SettingsScreen

from .conftest import ALPHA, wait_for
from .test_right_vm import make_app, ready


class Slow(VScreen):
    """A screen whose worker reads a widget after ``go`` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.go = asyncio.Event()

    def compose(self):
        yield Static("slow", id="here")

    @work(group="slow")
    async def later(self) -> None:
        await self.go.wait()
        self.query_one("#here", Static).update("done")
        self.query_one("#not-there")  # NoMatches: a bug, or a screen that is gone


async def test_a_screen_under_a_dialog_cannot_close_the_dialog(small_uri):
    app = make_app(small_uri)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app, pilot)
        below = Slow()
        await app.push_screen(below)
        dialog = ConfirmDialog("Sure?", "Really?")
        await app.push_screen(dialog)
        below.dismiss()  # Textual's own would pop the dialog
        await pilot.pause()
        assert app.screen is dialog and below in app.screen_stack
        dialog.dismiss(False)
        await pilot.pause()
        assert app.screen is below
        below.dismiss()
        await pilot.pause()
        assert app.screen is app.list_screen


async def test_two_escapes_on_the_settings_screen_leave_the_list_in_place(small_uri):
    app = make_app(small_uri)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app, pilot)
        screen = SettingsScreen(app.service, ALPHA, "alpha")
        await app.push_screen(screen)
        await wait_for(lambda: screen.state is not None, what="settings read")
        screen.action_back()
        screen.action_back()  # the second Esc of a burst: the screen is already leaving
        await wait_for(lambda: app.screen is app.list_screen, what="back on the list")
        await pilot.pause()
        assert app.is_running and app.screen_stack == [app.list_screen]


async def test_the_late_worker_of_a_closed_screen_is_forgotten(small_uri, caplog):
    caplog.set_level(logging.INFO, logger="vmtui.ui.app")
    app = make_app(small_uri)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app, pilot)
        screen = Slow()
        await app.push_screen(screen)
        screen.later()
        await pilot.pause()
        # the worker wakes while the screen is being taken apart: off the
        # stack, its widgets going, the screen not unmounted yet (when its
        # workers are cancelled)
        screen.go.set()
        app.pop_screen()
        await wait_for(lambda: "late work of a closed Slow failed" in caplog.text, what="logged")
        await pilot.pause()
        assert app.is_running and app.screen is app.list_screen


async def test_a_worker_error_on_a_live_screen_is_told_not_fatal_for_users(small_uri, monkeypatch, caplog):
    monkeypatch.setattr(app_module, "STRICT", False)
    app = make_app(small_uri)
    async with run_noted(app, size=(80, 24)) as pilot:
        await ready(app, pilot)
        screen = Slow()
        await app.push_screen(screen)
        screen.later()
        screen.go.set()
        await wait_for(lambda: notes_of(app).has("NoMatches"), what="told")
        assert notes_of(app).severity_of("NoMatches") == "error"
        assert "unexpected error in Slow" in caplog.text and "Traceback" in caplog.text
        assert app.is_running and app.screen is screen
        assert str(screen.query_one("#here", Static).render()) == "done"  # the work up to the error stands


async def test_under_the_test_suite_a_worker_error_still_fails(small_uri):
    assert app_module.STRICT
    app = make_app(small_uri)
    with pytest.raises(Exception, match="not-there"):
        async with app.run_test(size=(80, 24)) as pilot:
            await ready(app, pilot)
            screen = Slow()
            await app.push_screen(screen)
            screen.later()
            screen.go.set()
            for _ in range(100):
                await pilot.pause()


async def test_a_cancelled_screen_removal_does_not_end_the_app(small_uri, monkeypatch):
    """Textual's removal waits for the screen's tasks; a cancellation that
    reached them (a worker of the screen cancelled at unmount while it
    waited on them) used to end the app's message loop: vmtui quit."""
    calls = []

    async def cancelled(self, screen):
        calls.append(screen)
        raise asyncio.CancelledError

    app = make_app(small_uri)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app, pilot)
        monkeypatch.setattr(App, "_replace_screen", cancelled)
        screen = Slow()
        await app.push_screen(screen)
        app.pop_screen()
        await pilot.pause()
        await pilot.pause()
        assert calls == [screen]
        assert app.is_running and app.screen is app.list_screen
        await pilot.press("down")
        assert app.is_running


async def test_page_down_in_an_option_list_not_laid_out_does_nothing():
    """Ctrl+P then PageDown at once: the palette's list had options but no
    lines yet, and Textual's OptionList raised KeyError (textual_fixes.py)."""
    from textual.widgets import OptionList

    import vmtui.ui.app  # noqa: F401 - applies the fix

    class One(App):
        def compose(self):
            yield OptionList("a", "b", "c", id="opts")

    app = One()
    async with app.run_test(size=(40, 10)) as pilot:
        opts = app.query_one(OptionList)
        opts._line_cache.clear()
        opts.styles.display = "none"  # no region: nothing laid out
        await pilot.pause()
        opts._line_cache.clear()
        opts.highlighted = 0
        opts.action_page_down()
        opts.action_page_up()
        assert opts.highlighted == 0
        opts.styles.display = "block"
        await pilot.pause()
        opts.action_page_down()
        assert opts.highlighted == 2


async def test_the_storage_screen_closed_while_it_reads_the_host(small_uri, monkeypatch):
    """The answer arrives as the screen goes: whether its load is
    cancelled first or resumes among widgets being removed (the screen once
    caught that NoMatches itself; the app now forgets a closed screen's late
    work, test_the_late_worker_of_a_closed_screen_is_forgotten), the app
    goes on and the screen opens again."""
    from vmtui.ui.storage_screen import StorageScreen

    app = make_app(small_uri)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app, pilot)
        svc = app.service
        real_call = svc.call
        gate = asyncio.Event()

        async def held(fn, **kw):
            await gate.wait()
            return await real_call(fn, **kw)

        monkeypatch.setattr(svc, "call", held)
        screen = StorageScreen(svc)
        await app.push_screen(screen)
        await pilot.pause()
        gate.set()  # the answer arrives as the screen goes
        app.pop_screen()
        for _ in range(5):
            await pilot.pause()
        assert app.is_running and app.screen is app.list_screen and not screen.loaded
        monkeypatch.setattr(svc, "call", real_call)
        await pilot.press("S")
        await wait_for(lambda: getattr(app.screen, "loaded", False), what="storage again")
