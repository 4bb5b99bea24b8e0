"""vmtui's Textual user interface. It gets its LibvirtService by injection."""
