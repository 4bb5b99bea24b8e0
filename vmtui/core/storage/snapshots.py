"""Domain snapshots: list as a tree, create, revert, delete.

Pure helpers (snapshot XML built and parsed with ElementTree, the tree, the
checks) come first; the blocking functions take a ``libvirt.virConnect``
and run in the service's thread pool.

Kinds of snapshot vmtui makes (``virsh snapshot-create`` equivalents):

* **shut-off VM**: an *internal* disk snapshot, stored inside each qcow2
  image (``qemu-img snapshot``).
* **running VM, with memory**: an *internal* full system checkpoint (QEMU
  ``savevm``): disks and RAM in the qcow2 images; reverting resumes the
  guest where it was.
* **running VM, disk only**: an *external* disk-only snapshot
  (``--disk-only --atomic``): libvirt puts a qcow2 overlay on each disk and
  the VM continues on it. Crash-consistent. libvirt reverts to external
  snapshots only from 9.7 on.

Internal snapshots need every writable disk in qcow2: a raw disk has no
place to keep them, so :func:`snapshot_problem` names it before libvirt is
asked.
"""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

import libvirt

from ..xml import domxml
from ..errors import VmtuiError, failure as _fail, is_connection_lost, lookup_domain as _dom
from ..names import name_problem

__all__ = [
    "SnapshotInfo",
    "snapshot_xml",
    "parse_snapshot",
    "build_tree",
    "validate_name",
    "snapshot_problem",
    "list_snapshots",
    "create_snapshot",
    "revert_snapshot",
    "delete_snapshot",
    "redefine_snapshot",
    "EXTERNAL_REVERT_LIBVIRT",
]

EXTERNAL_REVERT_LIBVIRT = 9_007_000  # libvirt reverts to external snapshots since 9.7


@dataclass
class SnapshotInfo:
    name: str
    parent: str | None = None
    created: int | None = None  # seconds since the epoch
    state: str = ""  # the domain's state when taken: "running", "shutoff", "disk-snapshot", ...
    description: str = ""
    memory: str = "no"  # "internal", "external", "no"
    external: bool = False  # disk snapshots are external overlays
    current: bool = False
    children: list[str] = field(default_factory=list)

    @property
    def kind(self) -> str:
        if self.state == "disk-snapshot" or self.external:
            return "disk-only"
        if self.memory in ("internal", "external"):
            return "disks+memory"
        return "disks"

    @property
    def created_text(self) -> str:
        if self.created is None:
            return "-"
        return time.strftime("%Y-%m-%d %H:%M", time.localtime(self.created))

    @property
    def created_full(self) -> str:
        if self.created is None:
            return "-"
        return time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(self.created))


# ---------------------------------------------------------------------------
# XML
# ---------------------------------------------------------------------------


def snapshot_xml(name: str, description: str = "", *, memory: bool = True,
                 skip_disks: list[str] | tuple[str, ...] = ()) -> str:
    """The ``<domainsnapshot>`` XML for ``snapshotCreateXML``.

    ``skip_disks`` (targets, e.g. read-only CD-ROMs) get ``snapshot='no'``.
    ``memory=False`` on a running VM makes it a disk-only snapshot (pass
    ``VIR_DOMAIN_SNAPSHOT_CREATE_DISK_ONLY`` too)."""
    root = ET.Element("domainsnapshot")
    ET.SubElement(root, "name").text = name
    if description:
        ET.SubElement(root, "description").text = description
    if not memory:
        ET.SubElement(root, "memory", snapshot="no")
    if skip_disks:
        disks = ET.SubElement(root, "disks")
        for target in skip_disks:
            ET.SubElement(disks, "disk", name=target, snapshot="no")
    ET.indent(root, "  ")
    return ET.tostring(root, encoding="unicode")


def parse_snapshot(xml: str, current: bool = False) -> SnapshotInfo:
    root = ET.fromstring(xml)
    if root.tag != "domainsnapshot":
        raise ValueError(f"not a snapshot XML: <{root.tag}>")
    created = root.findtext("creationTime")
    mem = root.find("memory")
    disks = root.findall("disks/disk")
    external = any(d.get("snapshot") == "external" for d in disks)
    return SnapshotInfo(
        name=(root.findtext("name") or "").strip(),
        parent=(root.findtext("parent/name") or "").strip() or None,
        created=int(created) if created and created.strip().isdigit() else None,
        state=(root.findtext("state") or "").strip(),
        description=(root.findtext("description") or "").strip(),
        memory=mem.get("snapshot", "no") if mem is not None else "no",
        external=external,
        current=current,
    )


def build_tree(snaps: list[SnapshotInfo]) -> list[tuple[int, SnapshotInfo]]:
    """Depth-first order with depths: roots and siblings by creation time.
    A snapshot whose parent is missing is shown as a root."""
    by_name = {s.name: s for s in snaps}
    kids: dict[str | None, list[SnapshotInfo]] = {}
    for s in snaps:
        parent = s.parent if s.parent in by_name else None
        kids.setdefault(parent, []).append(s)
    def key(s: SnapshotInfo):
        return (s.created or 0, s.name)

    for s in snaps:
        s.children = [c.name for c in sorted(kids.get(s.name, []), key=key)]

    out: list[tuple[int, SnapshotInfo]] = []
    seen: set[str] = set()

    def walk(parent: str | None, depth: int) -> None:
        for s in sorted(kids.get(parent, []), key=key):
            if s.name in seen:
                continue
            seen.add(s.name)
            out.append((depth, s))
            walk(s.name, depth + 1)

    walk(None, 0)
    for s in sorted(snaps, key=key):  # cycles (should not happen): still listed
        if s.name not in seen:
            seen.add(s.name)
            out.append((0, s))
    return out


def tree_prefixes(tree: list[tuple[int, SnapshotInfo]]) -> list[str]:
    """The branch drawing before each name of :func:`build_tree`'s rows
    ("├ ", "└ ", "│ " like ``virsh snapshot-list --tree``); roots get ""."""
    depths = [d for d, _ in tree]

    def is_last(i: int) -> bool:
        for j in range(i + 1, len(depths)):
            if depths[j] < depths[i]:
                return True
            if depths[j] == depths[i]:
                return False
        return True

    last = [is_last(i) for i in range(len(depths))]
    out = []
    ancestors: list[int] = []  # index of the row at each depth on the current path
    for i, d in enumerate(depths):
        del ancestors[d:]
        ancestors.append(i)
        if d == 0:
            out.append("")
            continue
        parts = ["  " if last[ancestors[level]] else "│ " for level in range(1, d)]
        parts.append("└ " if last[i] else "├ ")
        out.append("".join(parts))
    return out


def descendants(tree: list[tuple[int, SnapshotInfo]], name: str) -> list[str]:
    by_name = {s.name: s for _, s in tree}
    out: list[str] = []
    todo = list(by_name[name].children) if name in by_name else []
    while todo:
        n = todo.pop(0)
        out.append(n)
        todo.extend(by_name[n].children if n in by_name else [])
    return out


def validate_name(name: str, existing: list[str] | set[str] = ()) -> str | None:
    """None when ``name`` is a usable snapshot name, else the field's message."""
    problem = name_problem(name, empty="Enter a name for the snapshot")
    if problem:
        return problem
    if name in existing:
        return f"A snapshot named '{name}' already exists"
    return None


def snapshot_problem(domain_xml: str, *, running: bool, memory: bool) -> str | None:
    """Why libvirt would refuse this snapshot, naming the disk; None if fine."""
    disks = domxml.disk_sources(domain_xml)
    from .disks import overlay_disks
    for target in overlay_disks(domain_xml):
        return (f"disk {target} is non-persistent (a vmtui overlay that is emptied at each power-off): "
                f"a snapshot of it would be lost. Make {target} persistent first.")
    for d in disks:
        if d.transient:
            return (f"disk {d.target} is non-persistent (<transient/>): libvirt takes no snapshots "
                    f"of a VM with non-persistent disks. Make {d.target} persistent first.")
    if running and not memory:
        return None  # external overlays work on any format
    for d in disks:
        if d.device in ("cdrom", "floppy") or d.readonly:
            continue
        if d.type not in ("file", "block", "volume"):
            return f"disk {d.target} ({d.type}) cannot hold an internal snapshot"
        fmt = d.driver_type or "raw"
        if fmt != "qcow2":
            return (f"disk {d.target} ({d.source or 'no source'}) is {fmt}: internal snapshots are "
                    f"stored inside the image and need qcow2. Convert it (qemu-img convert -O qcow2) "
                    f"or, on a running VM, take a disk-only snapshot.")
    return None


def _skip_disks(domain_xml: str) -> list[str]:
    return [d.target for d in domxml.disk_sources(domain_xml)
            if (d.device in ("cdrom", "floppy") or d.readonly) and d.target]


# ---------------------------------------------------------------------------
# blocking operations
# ---------------------------------------------------------------------------


def list_snapshots(conn: libvirt.virConnect, uuid: str) -> list[tuple[int, SnapshotInfo]]:
    """The domain's snapshots as a tree (see :func:`build_tree`)."""
    dom = conn.lookupByUUIDString(uuid)
    out = []
    for snap in dom.listAllSnapshots(0):
        try:
            xml = snap.getXMLDesc(0)
            current = bool(snap.isCurrent(0))
        except libvirt.libvirtError as err:
            if is_connection_lost(err):
                raise
            continue  # deleted meanwhile
        out.append(parse_snapshot(xml, current))
    return build_tree(out)


def create_snapshot(conn: libvirt.virConnect, uuid: str, name: str, description: str = "", *,
                    memory: bool = True) -> SnapshotInfo:
    """Take a snapshot (see the module doc for which kind). ``memory`` only
    matters for a running VM."""
    action = f"create snapshot '{name}' of"
    dom, obj = _dom(conn, uuid, action)
    try:
        existing = [s.getName() for s in dom.listAllSnapshots(0)]
        problem = validate_name(name, existing)
        if problem:
            raise VmtuiError(action, obj, problem)
        running = dom.isActive()
        xml = dom.XMLDesc(0)
        problem = snapshot_problem(xml, running=bool(running), memory=memory)
        if problem:
            raise VmtuiError(action, obj, problem)
        flags = 0
        if running and not memory:
            flags |= libvirt.VIR_DOMAIN_SNAPSHOT_CREATE_DISK_ONLY | libvirt.VIR_DOMAIN_SNAPSHOT_CREATE_ATOMIC
        snap = dom.snapshotCreateXML(snapshot_xml(name, description, memory=memory or not running,
                                                  skip_disks=_skip_disks(xml)), flags)
        return parse_snapshot(snap.getXMLDesc(0), bool(snap.isCurrent(0)))
    except (libvirt.libvirtError, domxml.DomainXMLError) as err:
        raise _fail(action, obj, err) from None


def revert_snapshot(conn: libvirt.virConnect, uuid: str, name: str, after: str = "as taken") -> None:
    """Revert the domain to snapshot ``name``. ``after``: "as taken" (the
    state the snapshot recorded), "running" or "paused"."""
    action = f"revert to snapshot '{name}' of"
    dom, obj = _dom(conn, uuid, action)
    flags = {"as taken": 0, "running": libvirt.VIR_DOMAIN_SNAPSHOT_REVERT_RUNNING,
             "paused": libvirt.VIR_DOMAIN_SNAPSHOT_REVERT_PAUSED}.get(after)
    if flags is None:
        raise ValueError(f"after must be 'as taken', 'running' or 'paused', not {after!r}")
    try:
        snap = dom.snapshotLookupByName(name, 0)
        info = parse_snapshot(snap.getXMLDesc(0))
        if info.external and conn.getLibVersion() < EXTERNAL_REVERT_LIBVIRT:
            raise VmtuiError(action, obj, "it is an external (disk-only) snapshot: this libvirt "
                             "cannot revert to those (libvirt 9.7 and later can)")
        dom.revertToSnapshot(snap, flags)
    except (libvirt.libvirtError, ValueError) as err:
        raise _fail(action, obj, err) from None


def delete_snapshot(conn: libvirt.virConnect, uuid: str, name: str, *, children: bool = False) -> None:
    """Delete snapshot ``name``; its children are kept (libvirt gives them
    its parent) unless ``children``, which deletes them too."""
    action = f"delete snapshot '{name}' of"
    dom, obj = _dom(conn, uuid, action)
    try:
        snap = dom.snapshotLookupByName(name, 0)
        snap.delete(libvirt.VIR_DOMAIN_SNAPSHOT_DELETE_CHILDREN if children else 0)
    except libvirt.libvirtError as err:
        raise _fail(action, obj, err) from None


def redefine_snapshot(dom: libvirt.virDomain, info: SnapshotInfo, *, current: bool = False) -> None:
    """Define snapshot metadata without taking a snapshot (``virsh
    snapshot-create --redefine``): restores metadata after a host move, and
    lets the demo host and the tests show a tree with fixed times. The
    domain's current XML is stored as the snapshot's domain."""
    root = ET.Element("domainsnapshot")
    ET.SubElement(root, "name").text = info.name
    if info.description:
        ET.SubElement(root, "description").text = info.description
    ET.SubElement(root, "state").text = info.state or "shutoff"
    if info.parent:
        ET.SubElement(ET.SubElement(root, "parent"), "name").text = info.parent
    if info.created is not None:
        ET.SubElement(root, "creationTime").text = str(int(info.created))
    ET.SubElement(root, "memory", snapshot=info.memory or "no")
    root.append(ET.fromstring(dom.XMLDesc(0)))
    flags = libvirt.VIR_DOMAIN_SNAPSHOT_CREATE_REDEFINE
    if current:
        flags |= libvirt.VIR_DOMAIN_SNAPSHOT_CREATE_CURRENT
    dom.snapshotCreateXML(ET.tostring(root, encoding="unicode"), flags)
