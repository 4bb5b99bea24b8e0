"""A new VM, described as data: what the wizard collects and `vmtui create --from` reads.

The same dataclasses are filled by the New-VM wizard, saved as YAML (the "VM
spec", schema in ``vmspec_yaml.py``, documented in docs/vm-spec.md) and read
back by ``vmtui create``; ``validation.py`` holds the rules a spec follows.
Sizes are bytes, memory is MiB. Nothing here talks to libvirt.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

SourceKind = Literal["iso", "cdrom", "url", "import", "pxe", "cloud", "none"]
DiskMode = Literal["new", "existing"]
NicKind = Literal["network", "bridge", "macvtap"]
#: Where a cloud-init seed can be attached (``install.cloud_init.seed_bus``):
#: a read-only virtio disk, or a CD-ROM on virtio-scsi, SATA or IDE.
SEED_BUSES = ("virtio", "scsi", "sata", "ide")


@dataclass
class InstallSource:
    """Where the installer (or the ready-made disk) comes from.

    kind:
      iso     -- ``iso``: a path on the host, or ``pool/volume`` of an ISO volume
      cdrom   -- ``cdrom``: the host's CD-ROM device, e.g. /dev/sr0
      url     -- ``url``: an HTTP/HTTPS/FTP install tree; ``kernel_args`` appended
      import  -- ``image``: an existing disk image (path or ``pool/volume``) used as the boot disk
      pxe     -- ``network``: boot from the network, on this libvirt network
      cloud   -- ``image``: a qcow2/raw cloud image used as a backing file of a new
                 overlay disk; ``cloud_init``: the NoCloud seed, a dict of
                 ``user_data``, ``meta_data``, ``network_config``,
                 ``detach_after_first_boot`` and ``seed_bus`` (where the seed
                 is attached: see :data:`SEED_BUSES`; absent = next to the boot disk)
    kickstart -- for iso/cdrom/url installs of Anaconda-based OSes: None or
                 ``{"text": str, "version": str, "delivery": "oemdrv" | "initrd"}``
                 (pykickstart syntax version, e.g. ``RHEL9``; ``oemdrv`` for
                 iso/cdrom -- a second CD-ROM labelled OEMDRV --, ``initrd`` for
                 url -- ks.cfg appended to the installer's initrd)
      none    -- no install media: define the VM as it is and boot it from its disks
                 (``vmtui export`` of a domain vmtui did not create, blank VMs)
    """

    kind: SourceKind = "iso"
    iso: str | None = None
    cdrom: str | None = None
    url: str | None = None
    kernel_args: str = ""
    image: str | None = None
    network: str | None = None
    cloud_init: dict | None = None  # filled by the bootstrapping feature
    kickstart: dict | None = None  # {"text", "version", "delivery"}: see above


@dataclass
class DiskSpec:
    """One disk. ``mode='new'`` creates a volume, ``'existing'`` attaches one."""

    mode: DiskMode = "new"
    pool: str = "default"
    name: str | None = None  # new volume name; default "<vm>.qcow2" / "<vm>.img"
    size: int = 20 * 1024 ** 3  # bytes (new disks)
    format: Literal["qcow2", "raw"] = "qcow2"
    provisioning: Literal["thin", "thick"] = "thin"
    path: str | None = None  # existing: a path or "pool/volume"
    backing: str | None = None  # new qcow2 overlay on this image (cloud images, linked clones)
    bus: Literal["virtio", "sata", "scsi", "ide"] = "virtio"
    cache: str | None = None  # None = hypervisor default; "none", "writeback", ...
    readonly: bool = False


@dataclass
class NicSpec:
    kind: NicKind = "network"
    source: str = "default"  # network name, bridge name, or host interface (macvtap)
    mode: Literal["bridge", "vepa", "private", "passthrough"] = "bridge"  # macvtap only
    mac: str | None = None  # None: libvirt generates one
    model: str = "virtio"


@dataclass
class VmSpec:
    name: str
    title: str = ""
    description: str = ""
    os: str = "generic"  # osinfo short-id, e.g. "debian12", "win2k22", or "generic"
    arch: str = "x86_64"
    virt_type: Literal["kvm", "qemu"] = "kvm"
    machine: Literal["pc", "q35"] = "q35"
    firmware: Literal["bios", "uefi"] = "bios"
    secure_boot: bool = False
    memory_mib: int = 2048  # current memory
    max_memory_mib: int | None = None  # None: same as memory_mib
    vcpus: int = 2
    cpu_mode: Literal["host-passthrough", "host-model", "custom"] = "host-passthrough"
    cpu_model: str | None = None  # for cpu_mode "custom"
    sockets: int | None = None  # topology; None: libvirt's default (all sockets)
    cores: int | None = None
    threads: int | None = None
    install: InstallSource = field(default_factory=InstallSource)
    disks: list[DiskSpec] = field(default_factory=lambda: [DiskSpec()])
    nics: list[NicSpec] = field(default_factory=lambda: [NicSpec()])
    cdrom_bus: Literal["sata", "ide", "scsi"] = "sata"
    graphics: Literal["vnc", "spice", "none"] = "vnc"
    graphics_listen: str = "127.0.0.1"
    tablet: bool = True
    serial_console: bool = True
    guest_agent: bool = True  # the QEMU guest agent's virtio channel (addresses, clean shutdown)
    autostart: bool = False
    start_install: bool = True  # "Begin installation" at the end (False: define only)

    @property
    def max_memory(self) -> int:
        return self.max_memory_mib or self.memory_mib
