"""Capture the notifications an app shows, through Textual's message hook.

    notes = Notes()
    async with app.run_test(size=(120, 40), message_hook=notes.hook) as pilot:
        ...
        await wait_for(lambda: notes.has("Cannot start"), what="error told")

Every ``Notify`` message the app received is kept, in order, including
notifications that have expired from the screen since (Textual's own
``app._notifications`` is private and drops them).
"""

from __future__ import annotations

import weakref

from textual.app import App
from textual.message import Message
from textual.notifications import Notification, Notify


class Notes:
    def __init__(self) -> None:
        self.all: list[Notification] = []

    def hook(self, message: Message) -> None:
        if isinstance(message, Notify):
            self.all.append(message.notification)

    @property
    def messages(self) -> list[str]:
        return [str(n.message) for n in self.all]

    def has(self, text: str) -> bool:
        return any(text in m for m in self.messages)

    def find(self, text: str) -> str | None:
        """The first message containing ``text``."""
        return next((m for m in self.messages if text in m), None)

    def severity_of(self, text: str) -> str | None:
        return next((n.severity for n in self.all if text in str(n.message)), None)


_BY_APP: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def run_noted(app: App, **kwargs):
    """``app.run_test(**kwargs)`` with a :class:`Notes` hooked in; read it
    with :func:`notes_of` (for tests whose helpers only get the app)."""
    notes = Notes()
    _BY_APP[app] = notes
    return app.run_test(message_hook=notes.hook, **kwargs)


def notes_of(app: App) -> Notes:
    """The notes of an app started with :func:`run_noted`."""
    return _BY_APP[app]
