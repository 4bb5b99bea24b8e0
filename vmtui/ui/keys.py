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
    ("g", "graphics", "Screen", "Graphical console: the VM's screen in the terminal, send keys, "
     "VNC/SPICE connection lines (virt-viewer)", False),
    ("C", "consoles", "Consoles", "Open consoles: switch, save scroll-back, send size (stty), close", False),
    ("enter", "details", "Details", "Overview of the VM: live figures and graphs, OS, firmware, CPU, memory, "
     "disks, NICs, graphics", True),
    ("e", "settings", "Settings", "Change the VM's settings: overview, CPUs, memory, boot, NICs, display, "
     "devices; live where libvirt can (virt-manager's details pages, virsh setvcpus / setmem / edit)", False),
    ("x", "xml", "XML", "Show the domain XML (virsh dumpxml); e there edits it (virsh edit)", False),
    ("d", "disks", "Disks", "Disks of the VM: add, remove, grow, persistent/non-persistent, CD-ROM media "
     "(virsh attach-disk, blockresize, change-media)", False),
    ("z", "snapshots", "Snapshots", "Snapshots of the VM as a tree: create, revert, delete (virsh snapshot-*)",
     False),
    ("slash", "filter", "Filter", "Filter the list by name or title", True),
    ("t", "state_filter", "States", "Cycle the state filter: all, running, shut off, paused, templates", False),
    ("o", "sort", "Sort", "Cycle the sort column (name, state, CPU%, memory, ...)", False),
    ("A", "addresses", "Addresses", "Show or hide the Address column: the running guests' IP addresses "
     "(DHCP lease, guest agent, ARP table; virsh domifaddr)", False),
    ("O", "reverse_sort", "Reverse", "Reverse the sort order", False),
    ("G", "graph_column", "CPU graph", "Show or hide the CPU graph column (CPU % of the last 20 s; "
     "cpu_graph_column in the config file)", False),
    ("I", "import_ovf", "Import OVF", "Import an OVF/OVA appliance: disks to qcow2, review, define (virt-convert)",
     False),
    ("E", "export_ova", "Export OVA", "Export a shut-off VM as an OVA (OVF 1.0 + stream-optimized VMDK)", False),
    ("m", "template_mark", "Template", "Mark or unmark a shut-off VM as a template (kept in its metadata)", False),
    ("T", "prepare_template", "Prepare template",
     "Prepare as template: reset SSH host keys, machine-id, net rules... (virt-sysprep)", False),
    ("u", "from_template", "From template", "New VM from the selected template: clone, cloud-init, start", False),
    ("l", "clone", "Clone", "Clone a shut-off VM or template: full copy or linked overlay (virt-clone)", False),
    ("space", "toggle_mark", "Mark", "Mark or unmark the selected VM for a bulk action (marks survive filtering)",
     False),
    ("asterisk", "mark_all", "Mark all", "Mark every VM shown; when all are marked, unmark them", False),
    ("b", "bulk", "Bulk", "Act on every marked VM, across hosts: start, shut down, force off, pause, resume, "
     "autostart, snapshot, migrate, delete (one confirmation lists them)", False),
    ("M", "migrate", "Migrate", "Move the selected VM to another connected host, live or offline, with its "
     "disks or not (virsh migrate)", False),
    ("H", "connections", "Hosts", "Connections: add, edit, remove, test, connect and disconnect hosts "
     "(several in one list)", False),
    ("v", "group_hosts", "Group", "Group the list by host (several hosts)", False),
    ("S", "storage", "Storage", "Storage pools and volumes (virsh pool-list, vol-list)", False),
    ("N", "networks", "Networks", "Virtual networks and DHCP leases (virsh net-list, net-dhcp-leases)", False),
    ("i", "cloudinit_library", "cloud-init", "Saved cloud-init configs: new, edit, duplicate, delete, "
     "import/export; attach one as a NoCloud seed to the selected VM", False),
    ("k", "kickstart", "Kickstart", "Kickstart editor: write and check an Anaconda kickstart file (pykickstart)",
     False),
    ("question_mark", "help", "Help", "Show all keys", True),
    ("q", "quit", "Quit", "Leave vmtui", False),
]

#: Footer and command-palette labels that follow the selected VM: the label
#: of an action when that VM is paused (``p`` resumes it then).
PAUSED_LABELS = {"pause_resume": "Resume"}

KEY_NAMES = {"slash": "/", "question_mark": "?", "enter": "Enter", "space": "Space", "asterisk": "*"}


def label_for(action: str, label: str, *, paused: bool) -> str:
    """The footer label of ``action`` for the selected VM (paused or not)."""
    return PAUSED_LABELS.get(action, label) if paused else label


def display_key(key: str) -> str:
    return KEY_NAMES.get(key, key)


def bindings() -> list[Binding]:
    """Bindings of the list screen; they run the app's actions."""
    out = [Binding(key, f"app.{action}", label, show=show, tooltip=desc)
           for key, action, label, desc, show in DOMAIN_LIST_KEYS]
    out.append(Binding("delete", "app.delete", "Delete", show=False))
    out.append(Binding("f1", "app.help", "Help", show=False))
    return out
