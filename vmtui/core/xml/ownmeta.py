"""vmtui's own elements in a domain's ``<metadata>``, and the flags the
domain list keeps for every domain, read from one ``XMLDesc``.

Three parts of vmtui each keep a record under a namespace of their own:

* :mod:`vmtui.core.clones.templates` -- the template marker (:data:`NS_TEMPLATE`);
* :mod:`vmtui.core.storage.disks` -- the vmtui overlays of non-persistent disks, emptied at
  each power-off (:data:`NS_DISKS`);
* :mod:`vmtui.core.provision.seed` -- the cloud-init seed, and whether it goes after
  the first boot (:data:`NS_SEED`).

The service reads :func:`flags_from_xml` for each domain (one XMLDesc,
two for a running persistent domain; the title and description come from
the same XML, where three metadata calls read them and the template
marker before), so that work done when a VM stops -- emptying overlays,
removing a seed -- only touches the VMs that have something to do. Those modules take their namespace from here:
the service can read the flags without importing them (the seed module
pulls in the cloud-init schema). Nothing here talks to libvirt.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass

from . import domxml
from .xmlmodel import yes

NS_TEMPLATE = "https://vmtui.dev/xmlns/template/1"
NS_DISKS = "https://vmtui.dev/xmlns/vmtui-disks/1"
NS_SEED = "https://vmtui.dev/xmlns/cloudinit/1"

_OURS = (NS_TEMPLATE, NS_DISKS, NS_SEED)


@dataclass(frozen=True, slots=True)
class DomainFlags:
    """What the domain list knows about a domain beyond its state."""

    title: str = ""
    description: str = ""
    template: bool = False  # marked as a template
    overlays: bool = False  # has vmtui overlays (non-persistent disks) to empty at power-off
    seed_cleanup: bool = False  # its cloud-init seed is to go after the first boot


def own_elements(root: ET.Element) -> dict[str, ET.Element]:
    """Our elements under ``<metadata>``, by namespace (the first of each)."""
    out: dict[str, ET.Element] = {}
    meta = root.find("metadata")
    if meta is None:
        return out
    for child in meta:
        tag = child.tag
        if isinstance(tag, str) and tag.startswith("{"):
            ns = tag[1:].partition("}")[0]
            if ns in _OURS and ns not in out:
                out[ns] = child
    return out


def overlay_elements(el: ET.Element | None) -> list[ET.Element]:
    """The ``<overlay target base base-format overlay>`` records of our
    disks element (:func:`vmtui.core.storage.disks.overlay_disks` reads them), complete ones only."""
    if el is None:
        return []
    return [d for d in el.iter(f"{{{NS_DISKS}}}overlay")
            if d.get("target") and d.get("base") and d.get("overlay")]


def _has_live_overlay(root: ET.Element, el: ET.Element | None) -> bool:
    """A recorded overlay that the disk still reads: a record copied into a
    clone, or a disk pointed elsewhere by hand, has nothing to empty."""
    records = {(d.get("target"), d.get("overlay")) for d in overlay_elements(el)}
    if not records:
        return False
    for disk in root.iterfind("devices/disk"):
        info = domxml.parse_disk(disk)
        if (info.target, info.path) in records:
            return True
    return False


def seed_cleanup_due(el: ET.Element | None) -> bool:
    """Our seed element asks for the seed to go after the first boot."""
    return el is not None and yes(el.get("detach_after_first_boot"))


def flags_from_xml(xml: str | bytes, config_xml: str | bytes | None = None) -> DomainFlags:
    """The title, description and vmtui's flags of a domain from its XML.
    ``config_xml``, for a running persistent domain, is its persistent
    definition: vmtui's records are read there (the overlays are emptied
    and the seed removed from the definition once it stops; a record
    written while it ran may be missing from the live XML), the title from
    ``xml``. Raises domxml.DomainXMLError when the XML is not domain XML."""
    root = domxml.parse_xml(xml)
    records = domxml.parse_xml(config_xml) if config_xml is not None else root
    own = own_elements(records)
    template = own.get(NS_TEMPLATE)
    return DomainFlags(
        title=root.findtext("title") or "",
        description=root.findtext("description") or "",
        template=template is not None and yes(template.get("marked")),
        overlays=_has_live_overlay(records, own.get(NS_DISKS)),
        seed_cleanup=seed_cleanup_due(own.get(NS_SEED)),
    )


__all__ = ["DomainFlags", "NS_DISKS", "NS_SEED", "NS_TEMPLATE", "flags_from_xml", "overlay_elements",
           "own_elements", "seed_cleanup_due"]
