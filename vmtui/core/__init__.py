"""vmtui's core: everything that knows libvirt, and nothing of Textual."""
