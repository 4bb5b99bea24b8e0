"""Changing a VM after it exists: virt-manager's details pages.

* :mod:`.values` -- the sections (overview, CPUs, memory, boot, NICs,
  display, serial ports, guest agent, TPM, RNG) as dataclasses, read from
  the domain XML, and what the host offers (:class:`~.values.Offers`);
* :mod:`.rules` -- each section's checks, field by field, as the wizard's
  :class:`~vmtui.core.create.validation.FieldError`\\ s;
* :mod:`.xmledit` -- the sections written into the persistent definition
  through the domain model (what is not modelled stays);
* :mod:`.pending` -- what the next boot of a running VM will change (its live
  XML against its definition);
* :mod:`.apply` -- the blocking saves (define, then live where libvirt can),
  each returning an :class:`~.result.EditResult` that says what applies now
  and what at the next boot.
"""

from .apply import EditorState, load_editor, pending_of
from .pending import Pending, pending_changes, pending_text
from .result import Applied, EditResult, SettingsError

__all__ = [
    "Applied",
    "EditResult",
    "EditorState",
    "Pending",
    "SettingsError",
    "load_editor",
    "pending_changes",
    "pending_of",
    "pending_text",
]
