"""The errors of an OVF import or export."""

from __future__ import annotations

from ..errors import VmtuiError


class OvfError(VmtuiError):
    """Something is wrong with an OVF package: ``what`` went wrong, ``where``."""

    def __init__(self, what: str, where: str, hint: str = "") -> None:
        self.what = what
        self.where = where
        super().__init__("import", where, what, hint)


class Cancelled(VmtuiError):
    def __init__(self, action: str, obj: str) -> None:
        super().__init__(action, obj, "cancelled")
