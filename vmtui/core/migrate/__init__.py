"""Moving a VM to another host: the checks before, and what libvirt is asked.

:func:`precheck` (blocking, two connections) looks at the VM and both hosts
before anything starts and returns a :class:`MigrationPlan`: the flags and
parameters for libvirt, the disks that will be copied and where to, and the
problems found -- errors stop the migration, warnings do not:

* the VM's state fits the kind of migration (live: running or paused;
  offline: shut off and defined);
* source and destination are not the same host (their host UUIDs, else
  their URIs);
* no other VM of that name (or that UUID) on the destination;
* the destination can run it: the virtualization type and machine
  (domain capabilities) and the guest CPU (``compareHypervisorCPU``;
  host-passthrough: the hosts' own CPUs);
* every disk is either on storage the destination has too (a volume of
  one of its pools at the same path: shared storage) or copied
  (``--copy-storage-all``) into a pool of the destination, where no
  volume of that name exists yet;
* enough free memory on the destination (a warning).

:mod:`.job` runs the plan with progress and cancel. Nothing here imports
Textual.
"""

from __future__ import annotations

import logging
import posixpath
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import libvirt

from ..errors import libvirt_message
from ..sizes import fmt_kib
from ..xml.domain_model import Domain

log = logging.getLogger(__name__)


@dataclass
class MigrationOptions:
    """What the user chose (virsh migrate's options; virt-manager's defaults)."""

    live: bool = True  # False: offline (moves the definition of a shut-off VM)
    copy_storage: bool = False  # --copy-storage-all: non-shared disks are copied
    persistent: bool = True  # --persistent: defined on the destination
    undefine_source: bool = True  # --undefinesource
    tunnelled: bool = False  # --p2p --tunnelled: the data goes through libvirtd's own connection
    bandwidth_mib: int | None = None  # MiB/s; None: no limit
    max_downtime_ms: int | None = None  # the most the guest may stand still at the end
    migrate_uri: str | None = None  # --migrateuri: where the destination's QEMU listens
    dest_pool: str | None = None  # the pool copied disks go to (default: the pool of the same name)


@dataclass
class Problem:
    message: str
    error: bool = True


@dataclass
class CopiedDisk:
    target: str  # vda
    source: str  # path on the source host
    dest: str  # path on the destination host
    pool: str  # destination pool
    capacity: int = 0


@dataclass
class MigrationPlan:
    uuid: str
    name: str
    source: str  # host names, for messages
    dest: str
    live: bool
    flags: int = 0
    params: dict = field(default_factory=dict)
    dest_uri: str = ""  # for peer-to-peer (tunnelled)
    problems: list[Problem] = field(default_factory=list)
    copied: list[CopiedDisk] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    max_downtime_ms: int | None = None
    memory_kib: int = 0

    @property
    def errors(self) -> list[str]:
        return [p.message for p in self.problems if p.error]

    @property
    def warnings(self) -> list[str]:
        return [p.message for p in self.problems if not p.error]

    @property
    def ok(self) -> bool:
        return not self.errors

    def error(self, message: str) -> None:
        self.problems.append(Problem(message, True))

    def warn(self, message: str) -> None:
        self.problems.append(Problem(message, False))


def is_local_uri(uri: str) -> bool:
    """No host part: the daemon is on this machine (a unix socket)."""
    try:
        return not urlsplit(uri).hostname
    except ValueError:
        return False


def _host_uuid(conn: libvirt.virConnect) -> str | None:
    try:
        return ET.fromstring(conn.getCapabilities()).findtext("host/uuid") or None
    except (libvirt.libvirtError, ET.ParseError):
        return None


def _host_cpu_xml(conn: libvirt.virConnect) -> str | None:
    try:
        cpu = ET.fromstring(conn.getCapabilities()).find("host/cpu")
    except (libvirt.libvirtError, ET.ParseError):
        return None
    return ET.tostring(cpu, encoding="unicode") if cpu is not None else None


def _unsupported(err: libvirt.libvirtError) -> bool:
    return err.get_error_code() in (libvirt.VIR_ERR_NO_SUPPORT, libvirt.VIR_ERR_ARGUMENT_UNSUPPORTED)


def same_host(src: libvirt.virConnect, dst: libvirt.virConnect, src_uri: str, dst_uri: str) -> bool:
    a, b = _host_uuid(src), _host_uuid(dst)
    if a and b:
        return a == b
    return src_uri == dst_uri


def _lookup_path(conn: libvirt.virConnect, path: str) -> libvirt.virStorageVol | None:
    try:
        return conn.storageVolLookupByPath(path)
    except libvirt.libvirtError:
        return None


def _pool_path(pool: libvirt.virStoragePool) -> str | None:
    try:
        return ET.fromstring(pool.XMLDesc(0)).findtext("target/path")
    except (libvirt.libvirtError, ET.ParseError):
        return None


def _pool(conn: libvirt.virConnect, name: str) -> libvirt.virStoragePool | None:
    try:
        return conn.storagePoolLookupByName(name)
    except libvirt.libvirtError:
        return None


def _check_state(plan: MigrationPlan, dom: libvirt.virDomain, opts: MigrationOptions) -> None:
    active, persistent = bool(dom.isActive()), bool(dom.isPersistent())
    name = plan.name
    if opts.live and not active:
        plan.error(f"'{name}' is shut off: only a running (or paused) VM migrates live. "
                   "Choose an offline migration to move its definition.")
    if not opts.live and active:
        plan.error(f"'{name}' is running: an offline migration moves the definition of a shut-off VM. "
                   "Migrate it live, or shut it off first.")
    if not opts.live and not persistent:
        plan.error(f"'{name}' is transient (no definition): there is nothing to move offline.")
    if not opts.live and opts.copy_storage:
        plan.error("libvirt copies disks only during a live migration: start the VM and migrate it live "
                   "with copy storage, or copy its disks to the destination first.")
    if not opts.persistent and not opts.live:
        plan.error("An offline migration always defines the VM on the destination: keep 'persistent' on.")
    if opts.tunnelled and opts.migrate_uri:
        plan.error("A tunnelled migration goes through libvirtd's own connection: leave the migration "
                   "address empty.")


def _check_name(plan: MigrationPlan, dst: libvirt.virConnect, uuid: str) -> None:
    try:
        there = dst.lookupByName(plan.name)
    except libvirt.libvirtError:
        there = None
    if there is not None:
        if there.UUIDString() != uuid:
            plan.error(f"A VM named '{plan.name}' already exists on {plan.dest} (UUID {there.UUIDString()}): "
                       "rename or remove one of them first.")
            return
        if there.isActive():
            plan.error(f"'{plan.name}' is already running on {plan.dest}.")
        else:
            plan.notes.append(f"{plan.dest} has a definition of '{plan.name}' already: it is replaced.")
        return
    try:
        other = dst.lookupByUUIDString(uuid)
    except libvirt.libvirtError:
        return
    plan.error(f"{plan.dest} already has a VM with the UUID of '{plan.name}' ({uuid}), named "
               f"'{other.name()}'.")


def _check_can_run(plan: MigrationPlan, src: libvirt.virConnect, dst: libvirt.virConnect, model: Domain,
                   live: bool) -> None:
    """Virtualization type, machine and CPU: errors for a live migration
    (the guest must go on running), warnings for an offline one (it must
    start there later)."""
    say = plan.error if live else plan.warn
    arch, machine = model.os.arch, model.os.machine
    virt = model.type or None
    try:
        dst.getDomainCapabilities(None, arch, machine, virt, 0)
    except libvirt.libvirtError as err:
        if not _unsupported(err):
            say(f"{plan.dest} cannot run '{plan.name}' ({virt or '?'} guest, machine {machine or '?'}, "
                f"{arch or '?'}): {libvirt_message(err)}")
            return
    cpu = model.cpu
    mode = cpu.effective_mode
    if mode in ("host-passthrough", "maximum"):
        host_cpu = _host_cpu_xml(src)
        if host_cpu is None:
            return
        try:
            result = dst.compareCPU(host_cpu, 0)
        except libvirt.libvirtError as err:
            if not _unsupported(err):
                plan.warn(f"Could not compare the CPUs of {plan.source} and {plan.dest}: {libvirt_message(err)}")
            return
        if result == libvirt.VIR_CPU_COMPARE_INCOMPATIBLE:
            say(f"'{plan.name}' uses the host's own CPU ({mode}), and the CPU of {plan.dest} lacks features "
                f"of the CPU of {plan.source}: the guest would fail there. Use a CPU model both hosts have.")
        return
    el = cpu._node()
    if el is None or el.find("model") is None:
        return  # the hypervisor's default CPU
    try:
        result = dst.compareHypervisorCPU(None, arch, machine, virt, ET.tostring(el, encoding="unicode"), 0)
    except libvirt.libvirtError as err:
        if _unsupported(err):
            return
        if err.get_error_code() == libvirt.VIR_ERR_CPU_INCOMPATIBLE:
            say(f"The CPU of '{plan.name}' ({cpu.model}) cannot run on {plan.dest}: {libvirt_message(err)}")
        else:
            plan.warn(f"Could not check the CPU of '{plan.name}' on {plan.dest}: {libvirt_message(err)}")
        return
    if result == libvirt.VIR_CPU_COMPARE_INCOMPATIBLE:
        say(f"The CPU of '{plan.name}' ({cpu.model}) cannot run on {plan.dest}: its hypervisor lacks features "
            "the guest uses.")


def _check_disks(plan: MigrationPlan, src: libvirt.virConnect, dst: libvirt.virConnect, model: Domain,
                 opts: MigrationOptions) -> bool:
    """Each disk is shared, copied, or a problem. True when a copied disk's
    path changes (the destination gets its own XML)."""
    changed = False
    for disk in model.devices.disks:
        path = disk.path
        target = disk.target_dev or "?"
        if disk.kind == "network" or not path:
            if disk.kind == "volume":
                plan.warn(f"Disk {target} is a pool volume ({disk.source}): the destination needs a pool and "
                          "volume of the same names.")
            continue  # network storage (shared), or an empty CD-ROM
        removable = disk.device_kind in ("cdrom", "floppy")
        there = _lookup_path(dst, path)
        if removable or disk.readonly or disk.shareable:
            if there is None:
                what = f"the medium of {target}" if removable else f"the {'read-only' if disk.readonly else 'shareable'} disk {target}"
                plan.error(f"{path}, {what}, is not in a storage pool of {plan.dest}: libvirt does not copy it. "
                           + ("Eject it first, or make it available there." if removable
                              else "Make it available there first."))
            continue
        if not opts.copy_storage:
            if there is None:
                plan.error(f"Disk {target} ({path}) is not on {plan.dest}'s storage and would not be copied: tick "
                           "copy storage, or put the disk on storage both hosts share (a pool at the same path).")
            continue
        # copied: where to
        vol = _lookup_path(src, path)
        src_pool = None
        capacity = 0
        if vol is not None:
            try:
                src_pool = vol.storagePoolLookupByVolume().name()
                capacity = int(vol.info()[1])
            except libvirt.libvirtError:
                pass
        pool_name = opts.dest_pool or src_pool
        if pool_name is None:
            plan.error(f"Disk {target} ({path}) is in no storage pool of {plan.source}: choose the destination "
                       f"pool to copy it into.")
            continue
        pool = _pool(dst, pool_name)
        if pool is None:
            plan.error(f"{plan.dest} has no storage pool '{pool_name}' to copy disk {target} into: choose "
                       "another pool, or define it there.")
            continue
        try:
            active = pool.isActive()
        except libvirt.libvirtError:
            active = False
        base = _pool_path(pool) if active else None
        if not active or not base:
            plan.error(f"Pool '{pool_name}' of {plan.dest} is not active (or has no directory): start it, or "
                       "choose another pool.")
            continue
        dest = posixpath.join(base, posixpath.basename(path))
        if _lookup_path(dst, dest) is not None or _volume_named(pool, posixpath.basename(path)):
            plan.error(f"{plan.dest} already has {dest} in pool '{pool_name}': copying disk {target} would "
                       "overwrite it. If that is shared storage, migrate without copying storage.")
            continue
        if dest != path:
            changed = True
            if disk.kind == "block":
                disk.source_dev = dest
            else:
                disk.source_file = dest
        plan.copied.append(CopiedDisk(target, path, dest, pool_name, capacity))
    return changed


def _volume_named(pool: libvirt.virStoragePool, name: str) -> bool:
    try:
        pool.refresh(0)
    except libvirt.libvirtError:
        pass
    try:
        pool.storageVolLookupByName(name)
        return True
    except libvirt.libvirtError:
        return False


def precheck(src: libvirt.virConnect, dst: libvirt.virConnect, uuid: str, opts: MigrationOptions, *,
             source: str, dest: str, src_uri: str = "", dst_uri: str = "") -> MigrationPlan:
    """Blocking: look before migrating domain ``uuid`` from ``src`` to
    ``dst`` (``source`` and ``dest`` name the hosts in messages). Raises
    libvirtError only when the domain cannot be read at all."""
    dom = src.lookupByUUIDString(uuid)
    plan = MigrationPlan(uuid=uuid, name=dom.name(), source=source, dest=dest, live=opts.live,
                         max_downtime_ms=opts.max_downtime_ms, dest_uri=dst_uri)
    _check_state(plan, dom, opts)
    if same_host(src, dst, src_uri, dst_uri):
        plan.error(f"{source} and {dest} are the same host: there is nowhere to migrate to.")
        return plan
    _check_name(plan, dst, uuid)
    active = bool(dom.isActive())
    flags_xml = libvirt.VIR_DOMAIN_XML_MIGRATABLE
    xml = dom.XMLDesc(flags_xml if active else flags_xml | libvirt.VIR_DOMAIN_XML_INACTIVE)
    model = Domain.parse(xml, register=False)
    plan.memory_kib = model.memory_kib or 0
    _check_can_run(plan, src, dst, model, opts.live)
    changed = _check_disks(plan, src, dst, model, opts)
    if opts.live and active and plan.memory_kib:
        try:
            free_kib = int(dst.getFreeMemory()) // 1024
        except libvirt.libvirtError:
            free_kib = None
        if free_kib and free_kib < plan.memory_kib:  # 0: the driver does not know
            plan.warn(f"{dest} has {fmt_kib(free_kib)} of free memory; '{plan.name}' has {fmt_kib(plan.memory_kib)}.")
    # flags and parameters
    flags = 0
    params: dict = {}
    if opts.live:
        flags |= libvirt.VIR_MIGRATE_LIVE
    else:
        flags |= libvirt.VIR_MIGRATE_OFFLINE | libvirt.VIR_MIGRATE_PERSIST_DEST
    if opts.persistent:
        flags |= libvirt.VIR_MIGRATE_PERSIST_DEST
    if opts.undefine_source and dom.isPersistent():
        flags |= libvirt.VIR_MIGRATE_UNDEFINE_SOURCE
    if opts.tunnelled:
        flags |= libvirt.VIR_MIGRATE_PEER2PEER | libvirt.VIR_MIGRATE_TUNNELLED
    if plan.copied:
        flags |= libvirt.VIR_MIGRATE_NON_SHARED_DISK
        params[libvirt.VIR_MIGRATE_PARAM_MIGRATE_DISKS] = [c.target for c in plan.copied]
    if changed:
        params[libvirt.VIR_MIGRATE_PARAM_DEST_XML] = model.to_xml()
        if opts.persistent and active and dom.isPersistent():
            # the persistent definition follows the same paths
            inactive = Domain.parse(dom.XMLDesc(flags_xml | libvirt.VIR_DOMAIN_XML_INACTIVE), register=False)
            moved = {c.target: c.dest for c in plan.copied}
            for disk in inactive.devices.disks:
                if disk.target_dev in moved:
                    if disk.kind == "block":
                        disk.source_dev = moved[disk.target_dev]
                    else:
                        disk.source_file = moved[disk.target_dev]
            params[libvirt.VIR_MIGRATE_PARAM_PERSIST_XML] = inactive.to_xml()
    if opts.bandwidth_mib:
        params[libvirt.VIR_MIGRATE_PARAM_BANDWIDTH] = int(opts.bandwidth_mib)
    uri = opts.migrate_uri
    if not uri and not opts.tunnelled and opts.live and dst_uri and is_local_uri(dst_uri):
        uri = "tcp://127.0.0.1"  # both daemons on this machine: never the host name's address
    if uri and opts.live:
        params[libvirt.VIR_MIGRATE_PARAM_URI] = uri
    plan.flags, plan.params = flags, params
    return plan
