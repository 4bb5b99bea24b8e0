"""The footer every vmtui screen shows: Textual's Footer, without its leak,
and without rebuilding itself when only what applies changed.

* Textual's Footer binds each of its keys to its own ``compact`` setting
  (``data_bind``), which registers a watcher on the Footer that is dropped
  only when ``compact`` changes -- which it never does. The Footer recomposes
  its keys whenever the bindings change (every screen switch, every change of
  what applies to the selected VM), so each recompose kept the old keys alive
  with their styles and caches: about 0.3 MB per screen switch, 100 MB over a
  few hundred. Before composing new keys we drop the watchers of keys that
  are gone.
* When the keys shown are the same ones and only their enabled state (or
  their label) changed -- the cursor moved from a running VM to a shut-off
  one -- the keys are updated in place: no widgets are made, no styles
  worked out for a whole footer on every key press of the list.
* A footer is recomposed at moments its screen does not choose (a screen
  pushed above it and not composed yet is asked too). Should a screen's
  check_action fail then, the footer is left empty until the next change
  and the error goes to the log: a footer never takes the app down.
"""

from __future__ import annotations

import logging

from textual.app import ComposeResult
from textual.widgets import Footer
from textual.widgets._footer import FooterKey


log = logging.getLogger(__name__)


class KeyFooter(Footer):
    def compose(self) -> ComposeResult:
        self._drop_stale_watchers()
        keys = super().compose()  # read lazily: Textual's compose stack orders the key groups
        while True:
            try:
                key = next(keys)
            except StopIteration:
                return
            except Exception:  # a screen's check_action failed: a bug, but not worth the app
                log.exception("the footer of %s could not read its keys", type(self.screen).__name__)
                return
            yield key

    def _drop_stale_watchers(self) -> None:
        watchers = getattr(self, "__watchers", None)
        if not watchers:
            return
        for entries in watchers.values():
            entries[:] = [(node, callback) for node, callback in entries
                          if node is self or (node.is_attached and not getattr(node, "_closing", False))]

    def bindings_changed(self, screen) -> None:
        self._bindings_ready = True
        if not screen.app.app_focus:
            return
        if self.is_attached and screen is self.screen and not self._update_in_place():
            self.call_after_refresh(self.recompose)

    def _wanted(self) -> list[tuple[str, str, str, bool]] | None:
        """(key, action, label, enabled) of the keys compose() would make, in
        order; None when it would make groups (then it recomposes)."""
        active = self.screen.active_bindings
        wanted = []
        for _node, binding, enabled, _tooltip in active.values():
            if not binding.show:
                continue
            if binding.group is not None:
                return None
            wanted.append((binding.key, binding.action, binding.description, enabled))
        # one key per action, as compose() shows them
        seen: set[str] = set()
        out = []
        for item in wanted:
            if item[1] not in seen:
                seen.add(item[1])
                out.append(item)
        if self.show_command_palette and self.app.ENABLE_COMMAND_PALETTE:
            entry = active.get(self.app.COMMAND_PALETTE_BINDING)
            if entry is not None:
                _node, binding, enabled, _tooltip = entry
                out.append((binding.key, binding.action, binding.description, enabled))
        return out

    def _update_in_place(self) -> bool:
        """Same keys as shown: set their enabled state and labels; True if done."""
        try:
            wanted = self._wanted()
        except Exception:  # a Footer of another make: let it recompose
            return False
        keys = list(self.children)
        if wanted is None or not keys or len(keys) != len(wanted):
            return False
        if not all(isinstance(k, FooterKey) and (k.key, k.action) == (w[0], w[1]) for k, w in zip(keys, wanted)):
            return False
        for key, (_k, _a, label, enabled) in zip(keys, wanted):
            if key._disabled == enabled:
                key._disabled = not enabled
                key.set_class(not enabled, "-disabled")
            if key.description != label:
                key.description = label
                key.refresh(layout=True)
        return True
