"""An imported package as a :class:`VmSpec` with an ``import`` install
source, so the normal validation and the installer define the domain."""

from __future__ import annotations

import re
from typing import Iterable

from ..create.vmspec import DiskSpec, InstallSource, NicSpec, VmSpec
from .envelope import OvfPackage
from .importer import ImportedVolume


_NIC_MODELS = {"e1000": "e1000", "e1000e": "e1000e", "vmxnet3": "virtio", "vmxnet": "virtio",
               "vmxnet2": "virtio", "pcnet32": "e1000", "virtio": "virtio", "rtl8139": "rtl8139"}


def safe_vm_name(name: str) -> str:
    """A domain name made of the package's name (letters, digits, ``_.+-``)."""
    name = re.sub(r"[^A-Za-z0-9_.+-]+", "-", name.strip()).strip("-.")
    return name[:60] or "imported-vm"


def to_vmspec(pkg: OvfPackage, volumes: list[ImportedVolume], *, name: str | None = None,
              host_networks: Iterable[str] = (), virtio: bool | None = None,
              virt_type: str = "kvm", start: bool = False) -> VmSpec:
    """A VmSpec defining the imported VM: the first volume is the ``import``
    image (boot disk), the others are attached as existing disks.

    ``virtio``: paravirtual disk/NIC; default: yes for a Linux or unknown
    guest type that osinfo calls virtio-capable, i.e. anything not Windows.
    NICs go to the host network of the same name, else ``default``, else
    the first network; without networks on the host the VM gets none.
    """
    os_id = pkg.osinfo or "generic"
    windows = os_id.startswith("win")
    if virtio is None:
        virtio = not windows and os_id != "generic" or any("virtio" in n.model.lower() for n in pkg.nics)
    bus = "virtio" if virtio else "sata"
    disks = [DiskSpec(mode="existing", path=v.ref, format="qcow2", bus=bus) for v in volumes]
    nets = list(host_networks)
    nics = []
    for n in pkg.nics:
        if n.network in nets:
            src = n.network
        elif "default" in nets:
            src = "default"
        elif nets:
            src = nets[0]
        else:
            continue
        model = "virtio" if virtio else _NIC_MODELS.get(n.model.lower(), "e1000e")
        if model == "virtio" and not virtio:
            model = "e1000e"
        nics.append(NicSpec(kind="network", source=src, model=model, mac=n.mac))
    spec = VmSpec(
        name=name or safe_vm_name(pkg.name),
        description=pkg.description,
        os=os_id,
        firmware="uefi" if pkg.firmware == "uefi" else "bios",
        secure_boot=pkg.firmware == "uefi" and pkg.secure_boot,
        memory_mib=pkg.memory_mib,
        vcpus=pkg.vcpus,
        virt_type="qemu" if virt_type == "qemu" else "kvm",
        cpu_mode="host-model" if virt_type == "qemu" else "host-passthrough",  # TCG refuses passthrough
        install=InstallSource(kind="import", image=volumes[0].ref if volumes else None),
        disks=disks,
        nics=nics,
        start_install=start,
    )
    if not volumes:
        spec.install = InstallSource(kind="none")
    return spec
