"""vmtui's own elements in a domain's ``<metadata>``, and the flags the
domain list keeps for every domain.

Three parts of vmtui each keep a record under a namespace of their own:

* :mod:`vmtui.core.clones.templates` -- the template marker (:data:`NS_TEMPLATE`);
* :mod:`vmtui.core.storage.disks` -- the vmtui overlays of non-persistent disks, emptied at
  each power-off (:data:`NS_DISKS`);
* :mod:`vmtui.core.provision.seed` -- the cloud-init seed, and whether it goes after
  the first boot (:data:`NS_SEED`).

The list reads a domain's title, description and these flags from one
``XMLDesc`` (:func:`read_flags`: one round trip, where a metadata() call
per namespace plus the title would take four; records written by any
version of vmtui are read the same way). For a running domain that is its
live XML: a record written to its persistent definition while it runs
shows once it stops, when the service reads the domain again before it
empties overlays or removes a seed. Those modules take their namespace
from here: the service can read the flags without importing them (the
seed module pulls in the cloud-init schema). Nothing here talks to libvirt.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass


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
    # the sizes the XML says (0: not said); the list takes them where the
    # driver's bulk stats do not give them (libvirt's test driver)
    vcpus: int = 0
    memory_kib: int = 0  # current (currentMemory)
    max_memory_kib: int = 0


def _kib(el: ET.Element | None) -> int:
    if el is None or not (el.text or "").strip():
        return 0
    unit = el.get("unit")
    try:
        if unit in (None, "KiB", "k", "K"):
            return int(el.text)
        from .domxml import parse_memory
        return parse_memory(el.text.strip(), unit)
    except ValueError:
        return 0


def _sizes(root: ET.Element) -> dict[str, int]:
    vcpu = root.find("vcpu")
    count = 0
    if vcpu is not None:
        try:
            count = int(vcpu.get("current") or vcpu.text or 0)
        except ValueError:
            count = 0
    maximum = _kib(root.find("memory"))
    return {"vcpus": count, "memory_kib": _kib(root.find("currentMemory")) or maximum, "max_memory_kib": maximum}


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
    from . import domxml
    for disk in root.iterfind("devices/disk"):
        info = domxml.parse_disk(disk)
        if (info.target, info.path) in records:
            return True
    return False


def yes(value: str | None) -> bool:
    from .xmlmodel import yes as model_yes  # the model's words, imported on first use
    return model_yes(value)


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
    from . import domxml
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
        **_sizes(root),
    )


# what libvirt writes before <memory> (anything of it after: read the whole document)
_HEAD_ONLY = ("<title>", "<description>", "<metadata>", "https://vmtui.dev/xmlns/")


def read_flags(xml: str) -> DomainFlags:
    """:func:`flags_from_xml` of one domain's XML as libvirt writes it,
    reading only its head -- the elements before ``<os>``: name, UUID,
    title, description, metadata, memory, vCPUs -- unless an overlay record
    needs the disks. A few KiB of devices are not parsed for each of
    thousands of domains. Anything unexpected falls back to the full parse."""
    text = xml.decode() if isinstance(xml, bytes) else xml
    start = text.find(">") + 1
    memory = text.find("<memory", start)
    end = min((i for i in (text.find("<os>", memory), text.find("<os ", memory)) if i >= 0), default=-1)
    if (not text.startswith("<domain") or start <= 0 or memory < 0 or end < 0 or NS_DISKS in text[start:memory]
            or any(text.find(mark, memory) >= 0 for mark in _HEAD_ONLY)):
        return flags_from_xml(text)  # not in libvirt's order, or an overlay record to check
    try:
        root = ET.fromstring("<domain>" + text[start:end] + "</domain>")
    except ET.ParseError:
        return flags_from_xml(text)
    own = own_elements(root)
    template = own.get(NS_TEMPLATE)
    return DomainFlags(
        title=root.findtext("title") or "",
        description=root.findtext("description") or "",
        template=template is not None and yes(template.get("marked")),
        overlays=False,
        seed_cleanup=seed_cleanup_due(own.get(NS_SEED)),
        **_sizes(root),
    )


__all__ = ["DomainFlags", "NS_DISKS", "NS_SEED", "NS_TEMPLATE", "flags_from_xml", "overlay_elements",
           "own_elements", "read_flags", "seed_cleanup_due"]
