"""A new VM: the spec (data, YAML, validation), the OS catalogue, the domain
XML and virt-install line built from it, the spec read back from a domain,
and the installer that creates the VM (with rollback)."""
