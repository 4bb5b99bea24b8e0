"""What a host offers VMs besides storage: its virtual networks and
interfaces, what it can run (domain capabilities), and a one-pass inventory
of pools, volumes and networks for the forms."""
