"""What the forms that place a VM or a disk need to know about a host —
its pools, their volumes, its networks and interfaces — read in one blocking
pass (run it through ``service.call``) and handed back as data.

Nothing here imports Textual.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import libvirt

from . import networks
from .. import storage
from ..errors import is_connection_lost


@dataclass
class HostInventory:
    pools: list[storage.PoolInfo] = field(default_factory=list)
    #: volumes by pool name, for the active pools that could be read
    volumes: dict[str, list[storage.VolumeInfo]] = field(default_factory=dict)
    networks: list[networks.NetworkInfo] = field(default_factory=list)
    interfaces: list[str] = field(default_factory=list)  # host interfaces (bridges, NICs): their names
    host_interfaces: list[networks.HostInterface] = field(default_factory=list)  # the same, with their kinds
    bridges: list[str] = field(default_factory=list)  # the host's bridges (read by read_networking)

    @property
    def active_pools(self) -> list[storage.PoolInfo]:
        return [p for p in self.pools if p.active]

    @property
    def all_volumes(self) -> list[storage.VolumeInfo]:
        return [v for vols in self.volumes.values() for v in vols]

    def volume_names(self) -> dict[str, list[str]]:
        """``{pool: [volume name, ...]}`` of the pools read."""
        return {pool: [v.name for v in vols] for pool, vols in self.volumes.items()}

    @property
    def iso_volumes(self) -> list[str]:
        """``pool/volume`` of the ISO images (install media)."""
        return [f"{p}/{v.name}" for p, vols in self.volumes.items() for v in vols if is_iso(v)]

    @property
    def image_volumes(self) -> list[str]:
        """``pool/volume`` of everything else (disk images)."""
        return [f"{p}/{v.name}" for p, vols in self.volumes.items() for v in vols if not is_iso(v)]

    @property
    def network_names(self) -> list[str]:
        return [n.name for n in self.networks]


def is_iso(vol: storage.VolumeInfo) -> bool:
    return vol.format == "iso" or vol.name.lower().endswith(".iso")


def read_inventory(conn: libvirt.virConnect, *, with_networks: bool = True,
                   with_interfaces: bool = True) -> HostInventory:
    """Blocking: the pools and the volumes of the active ones (a pool that
    cannot be read is left out, the others still count), plus the networks
    and host interfaces unless told not to. A lost connection is raised as
    libvirt said it, so the service reconnects."""
    inv = HostInventory(pools=storage.list_pools(conn))
    for p in inv.active_pools:
        try:
            inv.volumes[p.name] = storage.list_volumes(conn, p.name)
        except Exception as err:  # an unreadable pool must not hide the others
            if is_connection_lost(err):
                raise
    if with_networks:
        inv.networks = networks.list_networks(conn)
    if with_interfaces:
        inv.host_interfaces = networks.host_interfaces(conn)
        inv.interfaces = [i.name for i in inv.host_interfaces]
    return inv


def read_networking(conn: libvirt.virConnect) -> HostInventory:
    """Blocking: the networks, host interfaces and bridges, no storage (for
    the forms that plug in a NIC)."""
    return HostInventory(networks=networks.list_networks(conn),
                         interfaces=networks.list_host_interfaces(conn),
                         bridges=networks.list_host_bridges(conn))


def refresh_pool_volumes(conn: libvirt.virConnect, pool: str) -> list[storage.VolumeInfo]:
    """Blocking: the volumes of ``pool`` now -- the pool refreshed first
    (virsh pool-refresh), so files copied into its directory count too."""
    storage.refresh_pool(conn, pool)
    return storage.list_volumes(conn, pool)


def read_storage(conn: libvirt.virConnect) -> HostInventory:
    """Blocking: :func:`read_inventory` without networks and interfaces."""
    return read_inventory(conn, with_networks=False, with_interfaces=False)


__all__ = ["HostInventory", "is_iso", "read_inventory", "read_networking", "read_storage", "refresh_pool_volumes"]
