"""Copies of VMs: cloning (virt-clone) and templates (the marker,
"prepare as template", and which clones a template's disks back)."""
