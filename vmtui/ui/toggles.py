"""Radio buttons and check boxes whose on and off differ by more than colour.

Textual draws a toggle as ``▐●▌`` (radio) or ``▐X▌`` (check box) whether it
is on or off; only the colour of the mark tells them apart, so with
``NO_COLOR``, on a monochrome terminal (TERM=vt100) or to a colour-blind
user every choice looks made. Here the mark is drawn only when the toggle is
on: ``▐●▌`` / ``▐ ▌``, ``▐X▌`` / ``▐ ▌``. Every vmtui screen imports
``RadioButton`` and ``Checkbox`` from this module (tests/test_wizard_honest.py
checks), never from ``textual.widgets``.
"""

from __future__ import annotations

from textual.content import Content
from textual.widgets import Checkbox as _Checkbox
from textual.widgets import RadioButton as _RadioButton
from textual.widgets._toggle_button import ToggleButton

OFF_MARK = " "


def _shown(button: ToggleButton) -> Content:
    """Textual's ``_button`` with the mark left out when the toggle is off."""
    drawn = ToggleButton._button.fget(button)  # type: ignore[attr-defined]
    if button.value:
        return drawn
    return Content(drawn.plain.replace(button.BUTTON_INNER, OFF_MARK), spans=list(drawn.spans))


class RadioButton(_RadioButton):
    """Textual's RadioButton, on (``▐●▌``) and off (``▐ ▌``) told apart without colour."""

    @property
    def _button(self) -> Content:
        return _shown(self)


class Checkbox(_Checkbox):
    """Textual's Checkbox, on (``▐X▌``) and off (``▐ ▌``) told apart without colour."""

    @property
    def _button(self) -> Content:
        return _shown(self)


__all__ = ["Checkbox", "OFF_MARK", "RadioButton"]
