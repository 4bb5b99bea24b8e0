"""Checks shared by the fields that name a libvirt object or a saved file.

Pure standard library: no libvirt, no Textual.
"""

from __future__ import annotations

__all__ = ["name_problem"]


def name_problem(name: str | None, *, empty: str, forbidden: str = "/", no_leading_dot: bool = False,
                 max_len: int | None = None) -> str | None:
    """None when ``name`` passes the common checks, else the field's message.

    In this order: ``empty`` when blank, no leading/trailing space, none of the
    characters in ``forbidden``, no leading '.' (with ``no_leading_dot``), no
    control characters, at most ``max_len`` characters.
    """
    if not name or not name.strip():
        return empty
    if name != name.strip():
        return "The name must not start or end with a space"
    if any(c in name for c in forbidden):
        return "The name must not contain " + " or ".join(f"'{c}'" for c in forbidden)
    if no_leading_dot and name.startswith("."):
        return "The name must not start with '.'"
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        return "The name must not contain control characters"
    if max_len is not None and len(name) > max_len:
        return f"The name is too long (at most {max_len} characters)"
    return None
