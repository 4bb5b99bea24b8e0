"""The key table of the domain list: one place for bindings, help and README.

Each entry: (key, action, footer label, description, shown in footer).
"""

from __future__ import annotations

from textual.binding import Binding

DOMAIN_LIST_KEYS: list[tuple[str, str, str, str, bool]] = [
    ("n", "new_vm", "New", "Create a new VM: virt-manager's wizard (virt-install)", True),
    ("s", "start", "Start", "Start the selected VM (virsh start)", True),
    ("h", "shutdown", "Shutdown", "Ask the guest to shut down: ACPI power button (virsh shutdown)", True),
    ("r", "reboot", "Reboot", "Ask the guest to reboot (virsh reboot)", False),
    ("F", "force_off", "Force off", "Pull the plug, after confirming (virsh destroy)", False),
    ("p", "pause_resume", "Pause", "Pause a running VM, resume a paused one (virsh suspend/resume)", True),
    ("D", "delete", "Delete", "Delete the VM, optionally with its storage (virsh undefine)", True),
    ("a", "autostart", "Autostart", "Toggle start at host boot (virsh autostart)", False),
    ("c", "console", "Console", "Serial console inside vmtui; Ctrl+] leaves it (virsh console)", True),
    ("C", "consoles", "Consoles", "Open consoles: switch, save scroll-back, send size (stty), close", False),
    ("enter", "details", "Details", "Overview of the VM: OS, firmware, CPU, memory, disks, NICs, graphics", True),
    ("x", "xml", "XML", "Show the domain XML (virsh dumpxml)", False),
    ("slash", "filter", "Filter", "Filter the list by name or title", True),
    ("t", "state_filter", "States", "Cycle the state filter: all, running, shut off, paused", False),
    ("o", "sort", "Sort", "Cycle the sort column (name, state, CPU%, memory, ...)", False),
    ("O", "reverse_sort", "Reverse", "Reverse the sort order", False),
    ("question_mark", "help", "Help", "Show all keys", True),
    ("q", "quit", "Quit", "Leave vmtui", False),
]

KEY_NAMES = {"slash": "/", "question_mark": "?", "enter": "Enter"}


def display_key(key: str) -> str:
    return KEY_NAMES.get(key, key)


def bindings() -> list[Binding]:
    """Bindings of the list screen; they run the app's actions."""
    out = [Binding(key, f"app.{action}", label, show=show, tooltip=desc)
           for key, action, label, desc, show in DOMAIN_LIST_KEYS]
    out.append(Binding("delete", "app.delete", "Delete", show=False))
    out.append(Binding("f1", "app.help", "Help", show=False))
    return out
