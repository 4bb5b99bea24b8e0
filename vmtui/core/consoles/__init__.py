"""Consoles of a running VM: the serial console stream and the graphical
console (screenshots, keys, viewer lines)."""
