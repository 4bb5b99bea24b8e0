"""OVF / OVA import and export (what virt-convert did), one module per job.

Import
    :func:`open_package` (:mod:`.package`) reads an ``.ova`` or an ``.ovf``
    with the files next to it, every name checked (:mod:`.paths`), the
    manifest's digests checked (:mod:`.manifest`) and the envelope parsed
    (:mod:`.envelope`, the OS type mapped by :mod:`.ostypes`) into an
    :class:`OvfPackage`. :func:`import_disks` (:mod:`.importer`) converts its
    disks to qcow2 volumes in a pool with ``qemu-img`` (:mod:`.images`), and
    :func:`to_vmspec` (:mod:`.spec`) maps the package plus the volumes to a
    :class:`VmSpec` that the installer defines.

Export
    :func:`export_ova` (:mod:`.exporter`) writes a shut-off domain as an OVA:
    disks converted to stream-optimized VMDK, an OVF 1.0 envelope
    (:func:`build_envelope`), a SHA256 manifest, the ``.ovf`` first in the tar.

Everything here is blocking (run it in a thread: ``service.call`` for the
libvirt parts, ``asyncio.to_thread`` for the local ones). Nothing imports
Textual.
"""

from __future__ import annotations

from .envelope import OvfDisk, OvfFile, OvfNic, OvfPackage, build_envelope, parse_envelope, parse_units
from .errors import Cancelled, OvfError
from .exporter import ExportDisk, ExportPlan, export_ova, plan_export
from .images import check_source_image, run_qemu_img, source_args
from .importer import ImportedVolume, import_disks, remove_volumes, volume_names
from .manifest import parse_manifest
from .ostypes import map_os
from .package import open_package
from .spec import safe_vm_name, to_vmspec

__all__ = [
    "OvfError", "OvfPackage", "OvfDisk", "OvfNic", "OvfFile", "ImportedVolume", "Cancelled",
    "open_package", "parse_envelope", "parse_manifest", "parse_units", "map_os", "import_disks",
    "remove_volumes", "to_vmspec", "volume_names", "plan_export", "build_envelope", "export_ova",
    "check_source_image", "run_qemu_img", "source_args", "ExportDisk", "ExportPlan", "safe_vm_name",
]
