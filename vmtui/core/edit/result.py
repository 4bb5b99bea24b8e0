"""What an edit did: each change, and whether the running VM has it now or
gets it at the next boot (virt-manager's "changes take effect after the
next guest shutdown")."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import VmtuiError

__all__ = ["Applied", "EditResult", "SettingsError"]


@dataclass(frozen=True)
class Applied:
    """One change: ``what`` ("Memory"), its new ``value`` in words, and
    ``live``: the running VM has it now (a change of a host property such as
    autostart is always now). ``note``: why it waits for the next boot
    (libvirt's own words when it refused), or what the guest still has to do."""

    what: str
    value: str
    live: bool = False
    note: str = ""

    def describe(self) -> str:
        text = f"{self.what} {self.value}".strip()
        return f"{text} ({self.note})" if self.note else text


@dataclass
class EditResult:
    """The changes one save made to one VM."""

    domain: str
    running: bool
    changes: list[Applied] = field(default_factory=list)

    @property
    def now(self) -> list[Applied]:
        return [c for c in self.changes if c.live]

    @property
    def next_boot(self) -> list[Applied]:
        return [c for c in self.changes if not c.live]

    @property
    def changed(self) -> bool:
        return bool(self.changes)

    def summary(self) -> str:
        """What happened, in one or two sentences."""
        if not self.changes:
            return f"Nothing changed in '{self.domain}'."
        parts = []
        if self.now:
            parts.append("Applied now: " + "; ".join(c.describe() for c in self.now) + ".")
        if self.next_boot:
            items = "; ".join(c.describe() for c in self.next_boot)
            if self.running:
                parts.append(f"At the next boot of '{self.domain}': {items}.")
            else:
                parts.append(f"Saved: {items}. '{self.domain}' uses it when it starts.")
        return " ".join(parts)


class SettingsError(VmtuiError):
    """The values of a section break its rules: ``errors`` maps each field
    (as the rules name it) to its message."""

    def __init__(self, action: str, obj: str, errors: dict[str, str]) -> None:
        self.errors = dict(errors)
        super().__init__(action, obj, "; ".join(errors.values()))
