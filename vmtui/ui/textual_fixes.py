"""A fix to Textual (8.2.8), applied when vmtui's app is imported.

``OptionList._move_page`` (PageUp / PageDown) reads the line of the
highlighted option, but an option list that has not been laid out yet has
no lines: KeyError, and the app ends. The command palette's list is in that
state just after Ctrl+P, so Ctrl+P then PageDown typed at once (a slow SSH
link delivers them in one read) ended vmtui. Until the list is laid out
there is no page to move by: the key does nothing.
"""

from __future__ import annotations

from textual.widgets import OptionList

_move_page = OptionList._move_page


def _move_page_when_laid_out(self: OptionList, direction: int) -> None:
    if self.option_count and (self.highlighted or 0) not in self._index_to_line:
        return
    _move_page(self, direction)


def apply() -> None:
    if getattr(OptionList._move_page, "__wrapped__", None) is None:
        _move_page_when_laid_out.__wrapped__ = _move_page  # type: ignore[attr-defined]
        OptionList._move_page = _move_page_when_laid_out  # type: ignore[method-assign]
