"""Create a VM from a VmSpec, like virt-install; preview it; export one back to a spec.

:func:`create_vm` runs these steps, reporting ``progress(message, fraction)``
on the event loop:

1. validate the spec against the host (:func:`validation.validate_spec`),
   with the images it builds on probed (:func:`probe_images`: their real
   format, size and whether QEMU may read them as they are);
2. find the existing storage it names (ISO, images, ``pool/volume``);
3. create each new volume (thin/thick; a qcow2 overlay for cloud images);
4. ``url`` installs: fetch the installer's kernel and initrd from the tree
   (``.treeinfo``, osinfo-db, well-known layouts) and upload them into the
   pool as volumes, so remote hosts work too; a kickstart is appended to
   the initrd (a newc cpio holding ``/ks.cfg``) and the kernel gets
   ``inst.ks=file:/ks.cfg``;
4b. iso/cdrom installs with a kickstart: a small ISO labelled ``OEMDRV``
   holding ``ks.cfg`` is uploaded into the pool and attached as a second
   CD-ROM of the install run (Anaconda reads it by itself);
5. with ``install.cloud_init``: build the NoCloud seed ISO and upload it
   as ``<name>-cidata.iso`` into the first new disk's pool
   (:func:`vmtui.core.provision.seed.upload_seed`); define the final XML
   (``defineXML``), which has the seed device and vmtui's seed record
   (:func:`builder.build_domain_xml`); set autostart;
6. start: the install XML with the same name and UUID as a transient run
   over the definition (``createXML``) for iso/cdrom/url/pxe sources, or the
   definition itself (``dom.create()``) for import/cloud/none; the uploaded
   kernel/initrd volumes and the OEMDRV volume are deleted once QEMU has
   opened them (a VM defined only keeps its OEMDRV CD-ROM and volume for
   its first start).

If any step fails, everything made so far is removed again (the domain
destroyed and undefined, the volumes deleted) and a :class:`VmtuiError`
names the step and the cause.

Nothing here imports Textual.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import tempfile
import threading
import urllib.error
import urllib.parse
import urllib.request
import uuid as uuidlib
from dataclasses import dataclass, field, replace
from typing import Any, Callable

import libvirt

from . import builder, spec_from_xml, virt_install
from .. import storage
from ..provision import kickstart
from .builder import ResolvedDisk
from ..host import networks
from ..host.domcaps import HostCaps, host_caps
from ..errors import VmtuiError, libvirt_message
from ..provision import seed
from ..storage.images import ImageProbe, is_local_uri, probe_image, qemu_ids, qemu_read_problem
from .vmspec import DiskSpec, VmSpec
from .validation import FieldError, ImageFacts, PoolFacts, cpu_mode_for, local_path_checker, validate_spec

log = logging.getLogger(__name__)

Progress = Callable[[str, "float | None"], None]

FETCH_TIMEOUT = 30.0  # seconds per HTTP/FTP request
LONG_CALL = 3600.0  # time limit for volume creation/upload calls

#: Where installers keep kernel + initrd in their trees (x86_64), tried in order
#: after ``.treeinfo`` and osinfo-db.
KNOWN_TREE_LAYOUTS: tuple[tuple[str, str], ...] = (
    ("images/pxeboot/vmlinuz", "images/pxeboot/initrd.img"),  # Fedora, RHEL and rebuilds
    ("current/images/netboot/debian-installer/amd64/linux",  # Debian/Ubuntu .../installer-amd64/
     "current/images/netboot/debian-installer/amd64/initrd.gz"),
    ("install.amd/vmlinuz", "install.amd/initrd.gz"),  # Debian DVD tree
    ("casper/vmlinuz", "casper/initrd"),  # Ubuntu live tree
    ("boot/x86_64/loader/linux", "boot/x86_64/loader/initrd"),  # SUSE
    ("isolinux/vmlinuz", "isolinux/initrd.img"),
    ("vmlinuz", "initrd.img"),
)


class InvalidSpec(VmtuiError):
    """The spec does not fit the host; ``errors`` are the FieldErrors."""

    def __init__(self, name: str, errors: list[FieldError]) -> None:
        self.errors = errors
        lines = "; ".join(str(e) for e in errors)
        super().__init__("create", f"VM '{name}'", lines)


#: What QEMU and libvirt say when a KVM guest cannot use KVM after all (the
#: capabilities offered it): no access to /dev/kvm, the module not loaded...
KVM_START_ERRORS = ("could not access kvm kernel module", "failed to initialize kvm",
                    "kvm is not available", "/dev/kvm")


def is_kvm_start_error(message: str) -> bool:
    low = message.lower()
    return any(marker in low for marker in KVM_START_ERRORS)


class KvmStartFailed(VmtuiError):
    """A KVM guest was made but QEMU could not use KVM to start it
    ("Could not access KVM kernel module"); everything made was removed
    again, so the same spec under QEMU (TCG) -- :func:`switch_to_tcg` --
    can be created at once."""


def switch_to_tcg(spec: VmSpec, caps: HostCaps | None = None) -> VmSpec:
    """The same VM under QEMU's TCG emulation: virt type ``qemu`` and a CPU
    mode TCG can run (:func:`validation.cpu_mode_for`)."""
    mode, model = cpu_mode_for("qemu", spec.cpu_mode, spec.cpu_model, caps)
    return replace(spec, virt_type="qemu", cpu_mode=mode, cpu_model=model)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------
# host facts
# ---------------------------------------------------------------------------


@dataclass
class HostFacts:
    """What validation needs from the host (one blocking round of calls)."""

    existing_names: set[str] = field(default_factory=set)
    pools: dict[str, PoolFacts] = field(default_factory=dict)
    networks: set[str] = field(default_factory=set)
    interfaces: dict[str, str] = field(default_factory=dict)  # host interface -> kind; empty: not known
    local: bool = False  # host paths can be checked on this machine
    #: the images the spec builds on, probed (:func:`probe_images`); None: not asked
    images: dict[str, ImageFacts] | None = None
    probes: dict[str, ImageProbe] = field(default_factory=dict)


def image_refs(spec: VmSpec) -> list[tuple[str, bool]]:
    """(reference, is a shared base) of each image the spec builds on: a
    cloud image and the backing files of overlays (bases, which libvirt must
    not relabel), an imported image (the VM's own disk)."""
    out: list[tuple[str, bool]] = []
    src = spec.install
    if src.kind in ("cloud", "import") and (src.image or "").strip():
        out.append((src.image.strip(), src.kind == "cloud"))
    for d in spec.disks:
        if d.mode == "new" and (d.backing or "").strip() and d.backing.strip() not in [r for r, _ in out]:
            out.append((d.backing.strip(), True))
    return out


def probe_images(conn: libvirt.virConnect, spec: VmSpec, *, local: bool | None = None,
                 virt_type: str | None = None) -> tuple[dict[str, ImageFacts], dict[str, ImageProbe]]:
    """Blocking: each image of :func:`image_refs` probed
    (:func:`vmtui.core.storage.images.probe_image`): its facts for
    validation (or why it could not be probed), and the probes."""
    facts: dict[str, ImageFacts] = {}
    probes: dict[str, ImageProbe] = {}
    refs = image_refs(spec)
    if not refs:
        return facts, probes
    if local is None:
        local = is_local_uri(conn.getURI())
    ids = None
    for ref, base in refs:
        try:
            probe = probe_image(conn, ref, local=local)
        except VmtuiError as err:
            facts[ref] = ImageFacts(problem=f"Cannot tell the image's format: {err.cause}"
                                            + (f" ({err.hint})" if err.hint else ""))
            continue
        problem = None
        if base:
            if ids is None:
                ids = qemu_ids(conn, virt_type or spec.virt_type) or (0, 0)
            problem = qemu_read_problem(probe, ids, local=local)
        probes[ref] = probe
        facts[ref] = ImageFacts(format=probe.format, capacity=probe.capacity, path=probe.path,
                                read_problem=problem, how=probe.how)
    return facts, probes


def gather_facts(conn: libvirt.virConnect, spec: VmSpec | None = None) -> HostFacts:
    """Blocking: domain names, pools with their volume names, network names;
    with ``spec``, the images it builds on (:func:`probe_images`)."""
    facts = HostFacts()
    facts.existing_names = {d.name() for d in conn.listAllDomains(0)}
    for pool in conn.listAllStoragePools(0):
        try:
            active = bool(pool.isActive())
            vols = [v.name() for v in pool.listAllVolumes(0)] if active else []
            info = pool.info()  # [state, capacity, allocation, available]
            facts.pools[pool.name()] = PoolFacts(volumes=set(vols), available=int(info[3]) if active else 0,
                                                 active=active)
        except libvirt.libvirtError as err:
            if err.get_error_code() != libvirt.VIR_ERR_NO_STORAGE_POOL:
                raise
    try:
        facts.networks = {n.name() for n in conn.listAllNetworks(0)}
    except libvirt.libvirtError as err:
        if err.get_error_code() != libvirt.VIR_ERR_NO_SUPPORT:
            raise
    facts.interfaces = {i.name: i.kind for i in networks.host_interfaces(conn)}
    try:
        facts.local = is_local_uri(conn.getURI())
    except libvirt.libvirtError:
        facts.local = False
    if spec is not None:
        facts.images, facts.probes = probe_images(conn, spec, local=facts.local)
    return facts


async def host_facts(service: Any, spec: VmSpec | None = None) -> HostFacts:
    return await service.call(lambda c: gather_facts(c, spec), action="read the storage and networks of",
                              obj=getattr(service, "display_uri", ""), timeout=max(getattr(service, "timeout", 30),
                                                                                    120))


def os_for(spec: VmSpec, osdb: Any) -> Any:
    """The OsInfo the VM is built for: ``spec.os``, or for an id this host's
    osinfo-db does not know, the generic entry it falls back to."""
    if osdb is None:
        return None
    found = osdb.get(spec.os)
    if found is None and hasattr(osdb, "fallback_for"):
        found = osdb.fallback_for(spec.os)
    return found


def _validate(spec: VmSpec, caps: Any, facts: HostFacts, osdb: Any) -> list[FieldError]:
    return validate_spec(spec, host=caps, existing_names=facts.existing_names, pools=facts.pools,
                         networks=facts.networks, check_path=local_path_checker if facts.local else None,
                         osinfo=osdb.get(spec.os) if osdb is not None else None, osdb=osdb, images=facts.images,
                         interfaces=facts.interfaces or None)


async def check_spec(service: Any, spec: VmSpec, *, osdb: Any = None, caps: HostCaps | None = None,
                     facts: HostFacts | None = None) -> list[FieldError]:
    """validate_spec against the host behind ``service`` (errors and warnings)."""
    caps = caps or await host_caps(service, spec.arch)
    facts = facts or await host_facts(service, spec)
    return _validate(spec, caps, facts, osdb)


# ---------------------------------------------------------------------------
# resolving storage
# ---------------------------------------------------------------------------


def _pool_path(conn: libvirt.virConnect, pool: str) -> str | None:
    try:
        return storage.pool_info(conn, pool).path
    except libvirt.libvirtError:
        return None


def _ref_path(conn: libvirt.virConnect, ref: str) -> tuple[str, str | None, storage.VolumeInfo | None]:
    """A path or ``pool/volume`` -> (host path, format, volume)."""
    vol = storage.find_volume(conn, ref) if ref else None
    if vol is not None:
        return vol.path, vol.format, vol
    if builder.is_volume_ref(ref):
        raise VmtuiError("find", f"volume '{ref}'", "no such storage volume")
    return ref, None, None


def resolve_storage(conn: libvirt.virConnect, spec: VmSpec, *, for_preview: bool = False,
                    probes: dict[str, ImageProbe] | None = None) -> list[ResolvedDisk]:
    """Blocking: ResolvedDisks for the disks of :func:`builder.plan_disks` (new
    ones where they will be created) plus the install media. ``probes``: the
    images of :func:`probe_images` (probed here when None): an overlay's
    backing chain and an imported image's format come from them."""
    out: list[ResolvedDisk] = []
    paths: dict[str, str | None] = {}
    if probes is None:
        probes = probe_images(conn, spec)[1]
    for d in builder.plan_disks(spec):
        if d.mode == "new":
            if d.pool not in paths:
                paths[d.pool] = _pool_path(conn, d.pool)
            base = paths[d.pool] or builder.DEFAULT_POOL_PATHS.get(d.pool, f"/var/lib/libvirt/images/{d.pool}")
            rd = ResolvedDisk(f"{base.rstrip('/')}/{d.name}", d.format, pool=d.pool, volume=d.name,
                              capacity=d.size or None)
            if d.backing:
                probe = probes.get(d.backing.strip())
                if probe is not None:
                    rd.backing, rd.backing_chain = probe.path, probe.chain
                elif not for_preview:
                    raise VmtuiError("find", f"image '{d.backing}'", "its format could not be probed")
                else:
                    rd.backing = d.backing
            out.append(rd)
        else:
            try:
                path, fmt, vol = _ref_path(conn, d.path or "")
            except VmtuiError:
                if not for_preview:
                    raise
                path, fmt, vol = d.path or "", None, None
            probe = probes.get((d.path or "").strip())
            if probe is not None:
                fmt = probe.format  # an imported image: what it really is
            fmt = fmt if fmt in ("qcow2", "raw") else d.format
            dtype = (vol.type if vol is not None and vol.type == "block" else
                     "block" if path.startswith("/dev/") else "file")
            out.append(ResolvedDisk(path, fmt, type=dtype, pool=vol.pool if vol else None,
                                    volume=vol.name if vol else None, capacity=vol.capacity if vol else None,
                                    key=vol.key if vol else None))
    src = spec.install
    if src.kind == "iso" and src.iso:
        try:
            path = _ref_path(conn, src.iso)[0]
        except VmtuiError:
            if not for_preview:
                raise
            path = src.iso
        out.append(ResolvedDisk(path, "raw", device="cdrom"))
    elif src.kind == "cdrom" and src.cdrom:
        out.append(ResolvedDisk(src.cdrom, "raw", type="block", device="cdrom"))
    return out


def boot_pool(spec: VmSpec, facts: HostFacts | None = None) -> str:
    """Where the installer's kernel/initrd are uploaded: the first new disk's pool."""
    for d in spec.disks:
        if d.mode == "new" and d.pool:
            return d.pool
    if facts is not None:
        if "default" in facts.pools:
            return "default"
        active = [name for name, p in facts.pools.items() if p.active]
        if active:
            return sorted(active)[0]
    return "default"


# ---------------------------------------------------------------------------
# fetching the installer from a tree
# ---------------------------------------------------------------------------


def _tree_url(base: str, rel: str) -> str:
    return urllib.parse.urljoin(base.rstrip("/") + "/", rel.lstrip("/"))


def _open(url: str, timeout: float):
    req = urllib.request.Request(url, headers={"User-Agent": "vmtui"})
    return urllib.request.urlopen(req, timeout=timeout)  # noqa: S310 - scheme checked by validate_url


def _exists(url: str, timeout: float) -> bool:
    try:
        with _open(url, timeout) as resp:
            return getattr(resp, "status", 200) < 400
    except urllib.error.HTTPError:
        return False
    except urllib.error.URLError as err:
        if isinstance(err.reason, str) and ("550" in err.reason or "No such file" in err.reason):
            return False  # FTP: file not found
        raise


def find_tree_boot_files(url: str, *, osinfo: Any = None, arch: str = "x86_64",
                         timeout: float = FETCH_TIMEOUT) -> tuple[str, str]:
    """Blocking: the (kernel, initrd) paths inside the tree at ``url``.

    ``.treeinfo`` first (Fedora/RHEL/SUSE publish one), then the OS's tree
    rules in osinfo-db, then :data:`KNOWN_TREE_LAYOUTS`. Raises VmtuiError.
    """
    from .osinfo import parse_treeinfo

    candidates: list[tuple[str, str]] = []
    for name in (".treeinfo", "treeinfo"):
        try:
            with _open(_tree_url(url, name), timeout) as resp:
                text = resp.read(1024 * 1024).decode("utf-8", "replace")
        except urllib.error.HTTPError:
            continue
        except urllib.error.URLError as err:
            reason = err.reason if isinstance(err.reason, str) else getattr(err.reason, "strerror", None)
            if isinstance(err.reason, str) and ("550" in err.reason or "No such file" in err.reason):
                continue
            raise VmtuiError("fetch", f"install tree {url}", str(reason or err)) from None
        except OSError as err:  # timeouts, resets
            raise VmtuiError("fetch", f"install tree {url}", str(err)) from None
        try:
            info = parse_treeinfo(text)
        except ValueError:
            continue
        if info.kernel and info.initrd:
            candidates.append((info.kernel, info.initrd))
        break
    if osinfo is not None:
        for rule in getattr(osinfo, "trees_for", lambda a: [])(arch):
            k, i = getattr(rule, "kernel", None), getattr(rule, "initrd", None)
            if k and i and (k, i) not in candidates:
                candidates.append((k, i))
    candidates += [c for c in KNOWN_TREE_LAYOUTS if c not in candidates]
    for kernel, initrd in candidates:
        try:
            if _exists(_tree_url(url, kernel), timeout) and _exists(_tree_url(url, initrd), timeout):
                return kernel, initrd
        except urllib.error.URLError as err:
            reason = err.reason if isinstance(err.reason, str) else getattr(err.reason, "strerror", None)
            raise VmtuiError("fetch", f"install tree {url}", str(reason or err)) from None
        except OSError as err:  # timeouts, resets
            raise VmtuiError("fetch", f"install tree {url}", str(err)) from None
    raise VmtuiError("fetch", f"install tree {url}",
                     "no installer kernel/initrd found (no .treeinfo, and none of the known layouts)")


def download(url: str, dest: str, *, timeout: float = FETCH_TIMEOUT,
             progress: Callable[[int, int | None], None] | None = None) -> int:
    """Blocking: ``url`` -> local file ``dest``; returns the bytes written."""
    got = 0
    try:
        with _open(url, timeout) as resp, open(dest, "wb") as fh:
            total = resp.headers.get("Content-Length") if hasattr(resp, "headers") else None
            total_n = int(total) if total and str(total).isdigit() else None
            while True:
                chunk = resp.read(1024 * 1024)
                if not chunk:
                    break
                fh.write(chunk)
                got += len(chunk)
                if progress is not None:
                    progress(got, total_n)
    except urllib.error.HTTPError as err:
        raise VmtuiError("download", url, f"HTTP {err.code} {err.reason}") from None
    except urllib.error.URLError as err:
        raise VmtuiError("download", url, str(err.reason)) from None
    except OSError as err:
        raise VmtuiError("download", url, err.strerror or str(err)) from None
    return got


# ---------------------------------------------------------------------------
# the steps (module-level so tests can replace one)
# ---------------------------------------------------------------------------


def _create_volume(conn: libvirt.virConnect, d: DiskSpec, rd: ResolvedDisk,
                   progress: Callable[[int, int], None] | None) -> storage.VolumeInfo:
    size = d.size or None
    return storage.create_volume(conn, d.pool, d.name, size, d.format, d.provisioning,
                                 backing=rd.backing if d.backing else None, progress=progress,
                                 backing_format=rd.backing_format if d.backing else None)


def _upload(conn: libvirt.virConnect, pool: str, name: str, path: str,
            progress: Callable[[int, int], None] | None) -> storage.VolumeInfo:
    return storage.upload_file(conn, pool, name, path, "raw", progress)


def _upload_seed(conn: libvirt.virConnect, pool: str, volume: str, docs: Any) -> storage.VolumeInfo:
    return seed.upload_seed(conn, pool, volume, docs)


def _write_oemdrv(path: str, ks_text: str) -> None:
    try:
        with open(path, "wb") as fh:
            fh.write(kickstart.build_oemdrv_iso(ks_text))
    except OSError as err:
        raise VmtuiError("write", f"the kickstart ISO {path}", err.strerror or str(err)) from None


def append_kickstart(initrd_path: str, ks_text: str) -> None:
    """Append a newc cpio holding ``/ks.cfg`` to the initrd file in place
    (on a 4-byte boundary), as :func:`kickstart.inject_into_initrd` does."""
    try:
        with open(initrd_path, "r+b") as fh:
            fh.seek(0, os.SEEK_END)
            fh.write(kickstart.initrd_suffix(fh.tell(), ks_text))
    except OSError as err:
        raise VmtuiError("add the kickstart to", f"the initrd {initrd_path}", err.strerror or str(err)) from None


def _define(conn: libvirt.virConnect, xml: str) -> libvirt.virDomain:
    return conn.defineXML(xml)


def _set_autostart(dom: libvirt.virDomain) -> None:
    dom.setAutostart(1)


def _unsupported(err: libvirt.libvirtError) -> bool:
    return err.get_error_code() in (libvirt.VIR_ERR_INVALID_ARG, libvirt.VIR_ERR_NO_SUPPORT,
                                    libvirt.VIR_ERR_ARGUMENT_UNSUPPORTED)


def _start_install(conn: libvirt.virConnect, xml: str, flags: int = 0) -> libvirt.virDomain:
    try:
        return conn.createXML(xml, flags)
    except libvirt.libvirtError as err:  # a driver that cannot start paused starts it running
        if not flags or not _unsupported(err):
            raise
    return conn.createXML(xml, 0)


def _start(dom: libvirt.virDomain, flags: int = 0) -> None:
    if not flags:
        dom.create()
        return
    try:
        dom.createWithFlags(flags)
    except libvirt.libvirtError as err:
        if not _unsupported(err):
            raise
        dom.create()


_UNDEFINE_FLAGS = (
    libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE | libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA
    | libvirt.VIR_DOMAIN_UNDEFINE_NVRAM | libvirt.VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA,
    libvirt.VIR_DOMAIN_UNDEFINE_NVRAM,
    0,
)


def _remove_domain(conn: libvirt.virConnect, dom_uuid: str) -> None:
    """Blocking: destroy and undefine the domain, whatever state it is in."""
    try:
        dom = conn.lookupByUUIDString(dom_uuid)
    except libvirt.libvirtError as err:
        if err.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
            return
        raise
    try:
        if dom.isActive():
            dom.destroy()
    except libvirt.libvirtError as err:
        if err.get_error_code() != libvirt.VIR_ERR_NO_DOMAIN:
            raise
    try:
        persistent = dom.isPersistent()
    except libvirt.libvirtError as err:
        if err.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
            return
        raise
    if not persistent:
        return
    last: libvirt.libvirtError | None = None
    for flags in _UNDEFINE_FLAGS:
        try:
            dom.undefineFlags(flags)
            return
        except libvirt.libvirtError as err:
            last = err
            if err.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                return
    if last is not None:
        raise last


def _delete_volume(conn: libvirt.virConnect, key: str) -> None:
    storage.delete_volume(conn, key, force=True)


# ---------------------------------------------------------------------------
# create
# ---------------------------------------------------------------------------


class _Step:
    def __init__(self) -> None:
        self.name = "validate the spec"


def _threadsafe(progress: Progress | None) -> Callable[[str, float | None], None]:
    """A progress function callable from any thread; ``progress`` always runs on
    the loop (at once when called there, else scheduled)."""
    loop = asyncio.get_running_loop()
    loop_thread = threading.get_ident()

    def call(message: str, fraction: float | None) -> None:
        if progress is None:
            return

        def run() -> None:
            try:
                progress(message, fraction)
            except Exception:  # a broken progress display must not break the work
                log.exception("progress callback failed")

        if threading.get_ident() == loop_thread:
            run()
            return
        try:
            loop.call_soon_threadsafe(run)
        except RuntimeError:
            pass

    return call


async def create_vm(service: Any, spec: VmSpec, *, osdb: Any = None, progress: Progress | None = None,
                    caps: HostCaps | None = None, facts: HostFacts | None = None,
                    domain_uuid: str | None = None, paused: bool = False) -> str:
    """Create the VM ``spec`` describes on ``service``'s host; return its UUID.

    ``progress(message, fraction)`` is called on the event loop (fraction
    0..1 of the whole job, None when unknown). ``paused``: start it paused
    (``VIR_DOMAIN_START_PAUSED``; a driver that cannot starts it running);
    the caller resumes it, e.g. once it reads the serial console, so that
    nothing the guest prints is missed (``vmtui create --wait``). Raises
    :class:`InvalidSpec`
    when the spec does not fit the host (nothing was created), or
    :class:`VmtuiError` naming the failed step after removing everything
    created so far.
    """
    report = _threadsafe(progress)
    name = spec.name
    obj = f"VM '{name}'"
    step = _Step()

    # 1. validate
    report("Checking the spec", 0.0)
    caps = caps or await host_caps(service, spec.arch)
    facts = facts or await host_facts(service, spec)
    if facts.images is None:  # facts given without the images: probe them now
        facts.images, facts.probes = await service.call(
            lambda c: probe_images(c, spec, local=facts.local), action="probe the images of",
            obj=f"VM '{spec.name}'", timeout=max(getattr(service, "timeout", 30), 120))
    osinfo = os_for(spec, osdb)
    problems = _validate(spec, caps, facts, osdb)
    errors = [e for e in problems if e.is_error]
    seed_pool = boot_pool(spec, facts)
    if spec.install.cloud_init:
        seed_facts = facts.pools.get(seed_pool)
        seed_name = seed.seed_volume_name(name)
        if seed_facts is not None and seed_name in (getattr(seed_facts, "volumes", None) or ()):
            errors.append(FieldError("install.cloud_init", f"Pool '{seed_pool}' already has a volume named "
                                                           f"'{seed_name}' (the seed ISO's name): delete it first"))
    if errors:
        raise InvalidSpec(name, errors)

    dom_uuid = domain_uuid or str(uuidlib.uuid4())
    start_flags = libvirt.VIR_DOMAIN_START_PAUSED if paused else 0
    planned = builder.plan_disks(spec)
    created_keys: list[str] = []  # volumes to delete on failure
    boot_keys: list[str] = []  # uploaded kernel/initrd
    defined = False
    tmpdir: str | None = None

    async def call(fn: Callable[[libvirt.virConnect], Any], timeout: float | None = None) -> Any:
        return await service.call(fn, action=step.name, obj="", timeout=timeout)

    try:
        # 2. resolve existing storage
        step.name = "find the storage"
        resolved = await call(lambda c: resolve_storage(c, spec, probes=facts.probes))
        hard = [r for r in resolved if r.device != "cdrom"]

        # 3. new volumes
        new = [(d, r) for d, r in zip(planned, hard) if d.mode == "new"]
        for k, (d, rd) in enumerate(new):
            step.name = f"create disk {k + 1} of {len(new)} ({d.pool}/{d.name})"
            label = f"Creating disk {k + 1} of {len(new)}"
            base, span = 0.05 + 0.65 * k / max(1, len(new)), 0.65 / max(1, len(new))
            report(label, base)

            def vol_progress(done: int, total: int, label=label, base=base, span=span) -> None:
                report(label, base + span * (min(done, total) / total if total else 1.0))

            info = await call(lambda c, d=d, rd=rd, cb=vol_progress: _create_volume(c, d, rd, cb),
                              timeout=max(getattr(service, "timeout", 30), LONG_CALL))
            created_keys.append(info.key)
            rd.path, rd.key, rd.created = info.path, info.key, True
            rd.format = info.format if info.format in ("qcow2", "raw") else d.format

        # 4. installer kernel/initrd for URL installs
        kernel_path = initrd_path = None
        if spec.install.kind == "url" and spec.start_install:
            url = spec.install.url or ""
            step.name = f"find the installer in {url}"
            report("Looking for the installer kernel", 0.72)
            loop = asyncio.get_running_loop()
            rel_kernel, rel_initrd = await loop.run_in_executor(
                None, lambda: find_tree_boot_files(url, osinfo=osinfo, arch=spec.arch))
            tmpdir = tempfile.mkdtemp(prefix="vmtui-tree-")
            pool = boot_pool(spec, facts)
            tag = dom_uuid.split("-")[0]
            uploaded = []
            for what, rel, frac in (("kernel", rel_kernel, 0.74), ("initrd", rel_initrd, 0.8)):
                step.name = f"download the installer {what} ({_tree_url(url, rel)})"
                report(f"Downloading the installer {what}", frac)
                local = os.path.join(tmpdir, what)
                await loop.run_in_executor(None, lambda u=_tree_url(url, rel), p=local: download(u, p))
                if what == "initrd" and builder.kickstart_delivery(spec) == "initrd":
                    step.name = "add the kickstart to the installer initrd"
                    await loop.run_in_executor(None, lambda p=local: append_kickstart(
                        p, spec.install.kickstart["text"]))
                step.name = f"upload the installer {what} to pool '{pool}'"
                report(f"Uploading the installer {what}", frac + 0.03)
                vol_name = f"vmtui-{name}-{tag}-{what}"
                info = await call(lambda c, n=vol_name, p=local: _upload(c, pool, n, p, None),
                                  timeout=max(getattr(service, "timeout", 30), LONG_CALL))
                boot_keys.append(info.key)
                uploaded.append(info.path)
            kernel_path, initrd_path = uploaded

        # 4b. the kickstart on an OEMDRV CD-ROM
        oemdrv_path = None
        if builder.kickstart_delivery(spec) == "oemdrv":
            pool = boot_pool(spec, facts)
            vol_name = kickstart.oemdrv_volume_name(name, dom_uuid.split("-")[0])
            step.name = f"upload the kickstart ISO (OEMDRV) to pool '{pool}'"
            report("Uploading the kickstart (OEMDRV ISO)", 0.86)
            tmpdir = tmpdir or tempfile.mkdtemp(prefix="vmtui-tree-")
            local = os.path.join(tmpdir, "oemdrv.iso")
            await asyncio.to_thread(_write_oemdrv, local, spec.install.kickstart["text"])
            info = await call(lambda c, n=vol_name, p=local: _upload(c, pool, n, p, None),
                              timeout=max(getattr(service, "timeout", 30), LONG_CALL))
            (boot_keys if spec.start_install else created_keys).append(info.key)
            oemdrv_path = info.path

        # 5a. cloud-init: the NoCloud seed, uploaded before the definition that has it
        seed_plan = None
        if spec.install.cloud_init:
            step.name = f"upload the cloud-init seed (pool '{seed_pool}')"
            report("Uploading the cloud-init seed", 0.86)
            docs = seed.complete_docs(seed.CloudInitDocs.from_spec(spec.install.cloud_init), name)
            seed_name = seed.seed_volume_name(name)
            info = await call(lambda c: _upload_seed(c, seed_pool, seed_name, docs),
                              timeout=max(getattr(service, "timeout", 30), 120))
            created_keys.append(info.key)
            seed_plan = builder.SeedPlan(info.path, seed_pool, seed_name)

        # 5. define
        step.name = "define the domain"
        report("Defining the VM", 0.88)
        final_xml = builder.build_domain_xml(spec, caps, resolved, phase="final", os=osinfo, uuid=dom_uuid,
                                             install_oemdrv=oemdrv_path, seed=seed_plan)
        await call(lambda c: _define(c, final_xml))
        defined = True
        if spec.autostart:
            step.name = "set autostart"
            await call(lambda c: _set_autostart(c.lookupByUUIDString(dom_uuid)))

        # 6. start
        if spec.start_install:
            if builder.has_install_phase(spec):
                step.name = "start the installation"
                report("Starting the installation", 0.94)
                install_xml = builder.build_domain_xml(
                    spec, caps, resolved, phase="install", os=osinfo, uuid=dom_uuid,
                    install_kernel=kernel_path, install_initrd=initrd_path, install_oemdrv=oemdrv_path,
                    seed=seed_plan)
                await call(lambda c: _start_install(c, install_xml, start_flags),
                           timeout=max(getattr(service, "timeout", 30), 120))
            else:
                step.name = "start the VM"
                report("Starting the VM", 0.94)
                await call(lambda c: (_start(c.lookupByUUIDString(dom_uuid), start_flags) if start_flags
                                      else _start(c.lookupByUUIDString(dom_uuid))),
                           timeout=max(getattr(service, "timeout", 30), 120))
    except BaseException as err:
        cause = err.cause if isinstance(err, VmtuiError) else (
            libvirt_message(err) if isinstance(err, Exception) else type(err).__name__)
        hint = err.hint if isinstance(err, VmtuiError) else ""
        leftovers = await _cleanup(service, dom_uuid if defined else None, created_keys + boot_keys)
        if tmpdir:
            shutil.rmtree(tmpdir, ignore_errors=True)
        if isinstance(err, (asyncio.CancelledError, KeyboardInterrupt)):
            raise
        tail = " Everything created so far was removed." if not leftovers else \
            " Could not remove: " + "; ".join(leftovers)
        kind = VmtuiError
        if (spec.virt_type == "kvm" and step.name in ("start the installation", "start the VM")
                and not leftovers and is_kvm_start_error(str(cause))):
            kind = KvmStartFailed
        raise kind("create", obj, f"{step.name} failed: {cause}.{tail}", hint,
                   getattr(err, "code", None)) from None

    # the installer has loaded its kernel/initrd (and opened the OEMDRV ISO):
    # the uploaded copies can go
    if tmpdir:
        shutil.rmtree(tmpdir, ignore_errors=True)
    for key in boot_keys:
        try:
            await service.call(lambda c, k=key: _delete_volume(c, k), action="delete the installer copy",
                               obj=key)
        except VmtuiError as err:
            log.warning("cannot delete %s: %s", key, err)
    report("Done", 1.0)
    refresh = getattr(service, "refresh_domain", None)
    if refresh is not None:
        await refresh(dom_uuid)
    return dom_uuid


async def _cleanup(service: Any, dom_uuid: str | None, keys: list[str]) -> list[str]:
    """Remove what a failed create made; returns what could not be removed."""
    left: list[str] = []
    if dom_uuid is not None:
        try:
            await service.call(lambda c: _remove_domain(c, dom_uuid), action="remove", obj=f"domain {dom_uuid}")
        except VmtuiError as err:
            left.append(f"domain {dom_uuid} ({err.cause})")
    for key in reversed(keys):
        try:
            await service.call(lambda c, k=key: _delete_volume(c, k), action="delete", obj=key,
                               timeout=max(getattr(service, "timeout", 30), 120))
        except VmtuiError as err:
            left.append(f"{key} ({err.cause})")
    return left


# ---------------------------------------------------------------------------
# preview
# ---------------------------------------------------------------------------


async def preview(service: Any, spec: VmSpec, *, osdb: Any = None,
                  caps: HostCaps | None = None) -> tuple[str, str, str]:
    """(final XML, install XML, virt-install command line) for the summary screen.

    The install XML is what gets started first: for import/cloud/none
    sources (no install phase) it is the final XML itself. Nothing is
    created; new volumes are shown where they will be, a URL install's
    kernel/initrd where they would be uploaded.
    """
    caps = caps or await host_caps(service, spec.arch)
    osinfo = os_for(spec, osdb)
    try:
        resolved = await service.call(lambda c: resolve_storage(c, spec, for_preview=True),
                                      action="read the storage of", obj=getattr(service, "display_uri", ""),
                                      timeout=max(getattr(service, "timeout", 30), 120))
        pool_dir = await service.call(lambda c: _pool_path(c, boot_pool(spec)), action="read pool",
                                      obj=boot_pool(spec))
    except VmtuiError:
        resolved, pool_dir = builder.offline_disks(spec), None
    oemdrv = builder.default_oemdrv_path(spec, pool_dir) if builder.kickstart_delivery(spec) == "oemdrv" else None
    seed_plan = builder.default_seed_plan(spec, boot_pool(spec), pool_dir) if spec.install.cloud_init else None
    final_xml = builder.build_domain_xml(spec, caps, resolved, phase="final", os=osinfo, install_oemdrv=oemdrv,
                                         seed=seed_plan)
    install_xml = final_xml
    if builder.has_install_phase(spec):
        kernel = initrd = None
        if spec.install.kind == "url":
            base = (pool_dir or builder.DEFAULT_POOL_PATHS["default"]).rstrip("/")
            kernel, initrd = f"{base}/vmtui-{spec.name}-kernel", f"{base}/vmtui-{spec.name}-initrd"
        install_xml = builder.build_domain_xml(spec, caps, resolved, phase="install", os=osinfo,
                                               install_kernel=kernel, install_initrd=initrd, install_oemdrv=oemdrv,
                                               seed=seed_plan)
    uri = getattr(service, "display_uri", None)
    cmdline = virt_install.virt_install_cmdline(spec, resolved, os=osinfo, uri=uri, oemdrv=oemdrv)
    return final_xml, install_xml, cmdline


# ---------------------------------------------------------------------------
# export
# ---------------------------------------------------------------------------


def export_spec(conn: libvirt.virConnect, domain_name: str, *, osdb: Any = None) -> VmSpec:
    """Blocking: a spec that recreates domain ``domain_name`` under another name.

    Disks that are storage volumes become ``mode: new`` disks of the same
    pool, size, format and provisioning (names are left to the new VM);
    other disks stay ``existing`` (they would be shared). MACs are dropped.
    An ``import`` VM's spec imports the same image again: point
    ``install.image`` at a copy before creating from it.
    """
    dom = conn.lookupByName(domain_name)
    xml = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE) if dom.isPersistent() else dom.XMLDesc(0)
    spec = spec_from_xml.spec_from_domain_xml(xml, osdb=osdb)
    try:
        spec.autostart = bool(dom.autostart())
    except libvirt.libvirtError:
        spec.autostart = False
    cloud_image = spec.install.image if spec.install.kind == "cloud" else None
    if spec.install.kind == "import" and spec.install.image:
        # the imported image is the boot disk: plan_disks attaches it again
        image = storage.find_volume(conn, spec.install.image)
        image_paths = {spec.install.image} | ({image.path} if image is not None else set())
        spec.disks = [d for d in spec.disks if d.path not in image_paths]
    disks = []
    first_overlay = True
    for d in spec.disks:
        vol = storage.find_volume(conn, d.path) if d.path else None
        if vol is None or (vol.format not in ("qcow2", "raw") and not vol.backing):
            disks.append(d)
            continue
        nd = DiskSpec(mode="new", pool=vol.pool, size=vol.capacity,
                      format=vol.format if vol.format in ("qcow2", "raw") else "qcow2",
                      provisioning="thin" if vol.thin else "thick", bus=d.bus, cache=d.cache,
                      readonly=d.readonly)
        if vol.backing:
            nd.provisioning = "thin"
            if cloud_image and first_overlay:
                first_overlay = False  # plan_disks puts the cloud image back
            else:
                nd.backing = vol.backing
        disks.append(nd)
    spec.disks = disks
    return spec


async def export_domain(service: Any, domain_name: str, *, osdb: Any = None) -> VmSpec:
    return await service.call(lambda c: export_spec(c, domain_name, osdb=osdb), action="export",
                              obj=f"domain '{domain_name}'")


__all__ = [
    "HostFacts", "InvalidSpec", "KNOWN_TREE_LAYOUTS", "KvmStartFailed", "check_spec", "create_vm", "download",
    "export_domain", "export_spec", "find_tree_boot_files", "gather_facts", "host_facts", "image_refs",
    "is_kvm_start_error", "is_local_uri", "os_for", "preview", "probe_images", "resolve_storage", "switch_to_tcg",
]

