"""The "pending changes" line other screens show (the details screen)."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from ...core.connection.service import LibvirtService
from ...core.edit import pending_of, pending_text
from ...core.errors import VmtuiError


async def pending_line(service: LibvirtService, uuid: str, name: str, line: Static) -> None:
    """Fill ``line`` with what the next boot of a running VM will change
    (libvirt's live XML against its definition); hidden when nothing is."""
    try:
        changes = await service.call(lambda c: pending_of(c, uuid), action="compare the live and saved settings of",
                                     obj=f"domain '{name}'")
    except VmtuiError as err:
        changes, text = [], Text(err.message, style="red")
    else:
        text = Text(pending_text(changes) + " (e: settings)", style="bold yellow") if changes else Text("")
    if line.is_mounted:
        line.update(text)
        line.display = bool(text.plain)
