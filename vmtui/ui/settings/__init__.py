"""The settings of one VM (virt-manager's details pages): ``screen`` holds the
sections, ``general`` the overview, CPUs, memory and boot, ``nics`` the
network interfaces, ``devices`` display, serial ports, guest agent, TPM and
RNG; ``base`` what they share. The edits themselves are
:mod:`vmtui.core.edit`'s."""

from .screen import SECTIONS, SettingsScreen

__all__ = ["SECTIONS", "SettingsScreen"]
