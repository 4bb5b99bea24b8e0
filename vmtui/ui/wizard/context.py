"""What the wizard knows about the host (loaded once, off the loop), and the
spec checked against it with the rules ``vmtui create`` uses."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any


from ...core.connection.service import LibvirtService
from ...core.create.vmspec import VmSpec


@dataclass
class HostContext:
    """What the wizard knows about the host, loaded once off the loop."""

    pools: list = field(default_factory=list)  # storage.PoolInfo
    iso_volumes: list[str] = field(default_factory=list)  # "pool/volume" of ISO volumes
    image_volumes: list[str] = field(default_factory=list)  # "pool/volume" of disk images
    networks: list = field(default_factory=list)  # networks.NetworkInfo
    interfaces: list[str] = field(default_factory=list)
    host_interfaces: list = field(default_factory=list)  # networks.HostInterface: name, kind (bridge...)
    caps: Any = None  # domcaps.HostCaps
    osdb: Any = None  # osinfo.OsDb
    existing_names: set[str] = field(default_factory=set)
    pool_volumes: dict[str, list[str]] = field(default_factory=dict)
    host_memory_mib: int = 0
    host_cpus: int = 0
    local: bool = True  # the host's files are this machine's files
    #: images the spec builds on, probed when the source step is left (ref -> ImageFacts)
    images: dict = field(default_factory=dict)


async def probe_spec_images(service: LibvirtService, spec: VmSpec, ctx: HostContext) -> None:
    """Probe the images the spec builds on that are not probed yet (format,
    size, whether QEMU may read them): the validation's ``images``."""
    from ...core.create.installer import image_refs, probe_images

    if all(ref in ctx.images and not (ctx.images[ref].problem or ctx.images[ref].read_problem)
           for ref, _ in image_refs(spec)):
        return
    facts, _probes = await service.call(lambda c: probe_images(c, spec, local=ctx.local),
                                        action="probe the disk images of", obj=f"VM '{spec.name}'",
                                        timeout=max(getattr(service, "timeout", 30), 120))
    ctx.images.update(facts)


async def load_context(service: LibvirtService) -> HostContext:
    from ...core.host import inventory
    from ...core.create import osinfo
    from ...core.host.domcaps import host_caps
    from ...core.create.installer import is_local_uri

    ctx = HostContext()
    ctx.existing_names = {d.name for d in service.domains.values()}
    ctx.host_memory_mib = service.host.memory_total_kib // 1024
    ctx.host_cpus = service.host.cpus
    ctx.local = is_local_uri(service.uri)
    inv = await service.call(inventory.read_inventory, action="read pools and networks of",
                             obj=service.display_uri)
    ctx.pools, ctx.networks, ctx.interfaces = inv.pools, inv.networks, inv.interfaces
    ctx.host_interfaces = inv.host_interfaces
    ctx.iso_volumes, ctx.image_volumes = inv.iso_volumes, inv.image_volumes
    ctx.pool_volumes = inv.volume_names()
    ctx.caps = await host_caps(service)
    ctx.osdb = await asyncio.to_thread(osinfo.default_db)
    return ctx


def validate_with_context(spec: VmSpec, service: LibvirtService, ctx: HostContext, os_info=None) -> list:
    from ...core.create.validation import PoolFacts, local_path_checker, validate_spec
    pools = {p.name: PoolFacts(volumes=ctx.pool_volumes.get(p.name, ()), available=p.available, active=p.active,
                               path=p.path) for p in ctx.pools}
    return validate_spec(spec, host=ctx.caps or service.host, existing_names=ctx.existing_names,
                         pools=pools or None, networks=[n.name for n in ctx.networks] or None,
                         check_path=local_path_checker if ctx.local else None, osinfo=os_info,
                         osdb=ctx.osdb, images=ctx.images, interfaces=ctx.host_interfaces or None)


def unknown_volumes(spec: VmSpec, ctx: HostContext) -> set[str]:
    """The pools whose cached volume list lacks a ``pool/volume`` the spec
    names (install media, image, existing disks, backing files): volumes
    made since the wizard read the host."""
    from ...core.create.builder import is_volume_ref
    src = spec.install
    refs = [src.iso if src.kind == "iso" else None, src.image if src.kind in ("import", "cloud") else None]
    refs += [d.path for d in spec.disks if d.mode == "existing"] + [d.backing for d in spec.disks]
    pools = set()
    for ref in refs:
        if ref and is_volume_ref(ref):
            pool, vol = ref.split("/", 1)
            if pool in ctx.pool_volumes and vol not in ctx.pool_volumes[pool]:
                pools.add(pool)
    return pools


async def refresh_pools(service: LibvirtService, ctx: HostContext, pools: set[str]) -> None:
    """Read these pools' volumes again (the pools refreshed first) into ``ctx``."""
    from ...core.host import inventory
    for pool in sorted(pools):
        vols = await service.call(lambda c, p=pool: inventory.refresh_pool_volumes(c, p),
                                  action="refresh pool", obj=f"'{pool}'")
        ctx.pool_volumes[pool] = [v.name for v in vols]
        prefix = f"{pool}/"
        ctx.iso_volumes = [r for r in ctx.iso_volumes if not r.startswith(prefix)] + \
            [prefix + v.name for v in vols if inventory.is_iso(v)]
        ctx.image_volumes = [r for r in ctx.image_volumes if not r.startswith(prefix)] + \
            [prefix + v.name for v in vols if not inventory.is_iso(v)]
