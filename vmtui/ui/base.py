"""The screens vmtui's own screens are made of.

Textual's ``Screen.dismiss()`` pops whatever screen is on top. Work that
ends late -- a worker of a screen the user has already left, the second of
two Esc keys typed at once on a slow link -- would then close another
screen (a dialog, the list) or raise ScreenStackError with only the list
left. A vmtui screen dismisses only itself: when it is not the screen on
top, its dismiss does nothing (and says so in the log).
"""

from __future__ import annotations

import logging
from typing import TypeVar

from textual.await_complete import AwaitComplete
from textual.screen import ModalScreen, Screen

log = logging.getLogger(__name__)

R = TypeVar("R")


class _ClosesOnlyItself:
    """``dismiss()`` pops the screen on top only when that is this screen."""

    def dismiss(self, result=None) -> AwaitComplete:  # noqa: D102 - Textual's, but only itself
        try:
            top = self.app.screen
        except Exception:  # noqa: BLE001 - no app, or an empty stack: nothing to pop
            return AwaitComplete.nothing()
        if top is not self:
            log.debug("%s asked to close while %s is on top: not closed", type(self).__name__, type(top).__name__)
            return AwaitComplete.nothing()
        return super().dismiss(result)


class VScreen(_ClosesOnlyItself, Screen[R]):
    """A full screen of vmtui."""


class VModal(_ClosesOnlyItself, ModalScreen[R]):
    """A dialog of vmtui."""
