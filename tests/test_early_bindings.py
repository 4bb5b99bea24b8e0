"""A screen just pushed is not composed yet, but Textual already asks its
check_action: the footer of the screen below is recomposed then, and its
bindings chain ends in the new screen (``screen.copy_text``). CI once saw
the networks screen raise NoMatches there. Every screen must answer
before its widgets exist."""

from __future__ import annotations

import pytest

from vmtui.ui.cloudinit_editor import CloudInitLibraryScreen
from vmtui.ui.console_screen import ConsoleScreen
from vmtui.ui.kickstart_editor import KickstartEditorScreen
from vmtui.ui.network_screen import NetworkScreen
from vmtui.ui.settings.screen import SettingsScreen
from vmtui.ui.storage_screen import StorageScreen

from .conftest import ALPHA
from .test_right_vm import make_app, ready


def _screens(app):
    svc = app.service
    return {
        "networks": lambda: NetworkScreen(svc),
        "storage": lambda: StorageScreen(svc),
        "settings": lambda: SettingsScreen(svc, ALPHA, "alpha"),
        "cloud-init library": lambda: CloudInitLibraryScreen(svc, domain_name="alpha", domain_uuid=ALPHA),
        "kickstart": lambda: KickstartEditorScreen(install_kind="url"),
        "consoles": lambda: ConsoleScreen(app.consoles),
    }


@pytest.mark.parametrize("which", ["networks", "storage", "settings", "cloud-init library", "kickstart",
                                   "consoles"])
async def test_a_screen_pushed_but_not_composed_answers_its_bindings(small_uri, which):
    app = make_app(small_uri)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app, pilot)
        below = app.screen
        screen = _screens(app)[which]()
        every = [b.action for _, b in screen._bindings] + ["copy_text", "apply", "revert", "attach"]
        for action in every:  # before it is even pushed
            screen.check_action(action, ())
        app.push_screen(screen)  # on the stack; compose comes later
        assert app.screen is screen
        below.active_bindings  # what the list's footer reads: it ends in screen.check_action
        screen.active_bindings
        await pilot.pause()
        assert app.screen is screen and app.is_running


def test_every_screen_with_a_check_action_is_covered_above():
    import importlib
    import pkgutil

    from textual.screen import Screen

    import vmtui.ui

    for mod in pkgutil.walk_packages(vmtui.ui.__path__, "vmtui.ui."):
        importlib.import_module(mod.name)
    covered = {NetworkScreen, StorageScreen, SettingsScreen, CloudInitLibraryScreen, KickstartEditorScreen,
               ConsoleScreen}
    found, todo = set(), [Screen]
    while todo:
        for sub in todo.pop().__subclasses__():
            todo.append(sub)
            if sub.__module__.startswith("vmtui.") and "check_action" in vars(sub):
                found.add(sub)
    assert found - covered == set(), "add these screens to _screens above"


async def test_a_check_action_that_fails_leaves_the_footer_empty_not_the_app_dead(small_uri, caplog):
    from textual.screen import Screen

    from vmtui.ui.footer import KeyFooter

    class Broken(Screen):
        BINDINGS = [("x", "thing", "Thing")]

        def compose(self):
            yield KeyFooter()

        def check_action(self, action, parameters):
            raise RuntimeError("a bug in check_action")

    app = make_app(small_uri)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app, pilot)
        await app.push_screen(Broken())
        await pilot.pause()
        assert app.is_running and isinstance(app.screen, Broken)
        assert not list(app.screen.query_one(KeyFooter).children)
        assert "could not read its keys" in caplog.text and "a bug in check_action" in caplog.text
        app.pop_screen()
        await pilot.pause()
        assert app.screen is app.list_screen and len(app.list_screen.query_one(KeyFooter).children) > 3
