"""vmtui: a keyboard-first terminal UI for libvirt."""

__version__ = "0.1.0"
