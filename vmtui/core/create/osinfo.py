"""The operating-system catalogue for the New-VM wizard, read from osinfo-db.

osinfo-db (the Debian package ``osinfo-db``) is a directory of XML files, one
per OS release: ``<db>/os/<vendor>/<os>.xml``. This module reads them with
ElementTree (no libosinfo/GObject needed) into :class:`OsInfo` records, and
implements the parts of libosinfo the wizard uses:

* a sorted, searchable list (:meth:`OsDb.all`, :meth:`OsDb.search`);
* "detect from media": match an ISO's primary volume descriptor
  (:func:`read_iso_ids`) or an install tree's ``.treeinfo``
  (:func:`parse_treeinfo`) against the database's ``<media>`` / ``<tree>``
  rules (:meth:`OsDb.detect_iso`, :meth:`OsDb.detect_tree`);
* the resources an OS wants (:func:`recommended_defaults`,
  :func:`check_resources`).

Inheritance: ``<derives-from>`` and ``<clones>`` parents supply what an entry
does not say itself. Resources are inherited per kind (minimum, recommended,
maximum) and per architecture (an own ``<resources arch="all"
inherit="true"/>`` is the parent's); a recommended value below the resolved
minimum is raised to it. Devices and firmware are the parents' sets with the
entry's own additions and ``supported="false"`` removals applied on top (as
libosinfo does). Media and tree rules are never inherited: they identify
exactly one release.

Matching follows libosinfo: every rule field is a regular expression searched
(unanchored, case-sensitive, as GLib's PCRE ``g_regex_match_simple``) in the
corresponding ISO/treeinfo field; a rule with no field to compare matches
nothing, and a rule's ``<volume-size>`` must equal the ISO's when both are
known. libosinfo takes the first match in file order; we collect every match
and rank them instead: volume size agreement, then rules whose every pattern
matches its whole value, then regular releases before catch-all ones
(rolling, pre-release, "-unknown", testing/rawhide: :attr:`OsInfo.is_fallback`),
then how much of the values the patterns
cover, then the requested architecture. That makes the result independent of
file order and keeps "CentOS" (a CentOS 6 netinstall rule) from beating
"CentOS-Stream-9-BaseOS-x86_64".

When no database is found :meth:`OsDb.load` returns a short built-in list
(generic, Generic Linux, Generic Windows) with :attr:`OsDb.note` explaining
why. This module never imports Textual or Rich.
"""

from __future__ import annotations

import configparser
import datetime as _dt
import difflib
import functools
import logging
import math
import os
import re
import struct
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar, Iterable, Iterator

from vmtui.core.sizes import fmt_bytes
from vmtui.core.xml.xmlmodel import yes

log = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_ARCH",
    "Detection",
    "IsoIds",
    "MediaRule",
    "NotAnIsoError",
    "OsDb",
    "OsInfo",
    "ResourceSet",
    "Resources",
    "TreeInfo",
    "TreeRule",
    "builtin_oses",
    "check_resources",
    "default_db",
    "default_paths",
    "parse_treeinfo",
    "read_iso_ids",
    "recommended_defaults",
]

DEFAULT_ARCH = "x86_64"
ENV_PATH = "VMTUI_OSINFO_PATH"

MIB = 1024 ** 2
GIB = 1024 ** 3

# PCI ids (vendor 1af4 = Red Hat/virtio) that osinfo-db lists under <devices>.
VIRTIO_BLOCK_IDS = frozenset({
    "http://pcisig.com/pci/1af4/1001",  # virtio-block (transitional)
    "http://pcisig.com/pci/1af4/1042",  # virtio1.0-block
})
VIRTIO_NET_IDS = frozenset({
    "http://pcisig.com/pci/1af4/1000",  # virtio-net (transitional)
    "http://pcisig.com/pci/1af4/1041",  # virtio1.0-net
})

# Distros whose installer is Anaconda (kickstart), besides any OS whose
# install scripts are kickstart ones.
_ANACONDA_DISTROS = frozenset({
    "fedora", "rhel", "centos", "almalinux", "rocky", "ol", "oel",
    "scientificlinux", "circle", "miraclelinux", "eurolinux",
})
_ANACONDA_PXEBOOT = ("images/pxeboot/vmlinuz", "images/pxeboot/initrd.img")
_WINDOWS_FAMILIES = frozenset({"winnt", "win9x", "win16"})
_FALLBACK_STATUSES = frozenset({"prerelease", "rolling", "snapshot"})

_XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"


# --------------------------------------------------------------------------
# Data


@dataclass(frozen=True)
class Resources:
    """One set of figures: memory in MiB, virtual CPUs, disk in bytes.

    Any field may be None when the database does not say.
    """

    ram_mib: int | None = None
    vcpus: int | None = None
    storage_bytes: int | None = None

    @property
    def empty(self) -> bool:
        return self.ram_mib is None and self.vcpus is None and self.storage_bytes is None


_NO_RESOURCES = Resources()


@dataclass(frozen=True)
class ResourceSet:
    """The minimum, recommended and maximum resources for one architecture."""

    minimum: Resources = _NO_RESOURCES
    recommended: Resources = _NO_RESOURCES
    maximum: Resources = _NO_RESOURCES


@dataclass(frozen=True)
class IsoIds:
    """The identifiers of an ISO 9660 primary volume descriptor, padding stripped.

    ``volume_size`` is the volume space size times the logical block size in
    bytes (what osinfo-db's ``<volume-size>`` compares against), None if unknown.
    """

    volume_id: str = ""
    system_id: str = ""
    publisher_id: str = ""
    application_id: str = ""
    volume_size: int | None = None


@dataclass(frozen=True)
class TreeInfo:
    """What identifies an install tree, from its ``.treeinfo`` file.

    ``kernel``/``initrd`` are paths relative to the tree root, for ``arch``
    (None when the file lists no images).
    """

    family: str | None = None
    version: str | None = None
    variant: str | None = None
    arch: str | None = None
    kernel: str | None = None
    initrd: str | None = None


def _efi(firmware: dict[tuple[str, str], bool], arch: str) -> bool:
    found = firmware.get((arch, "efi"))
    return firmware.get(("all", "efi"), False) if found is None else found


def _compile(pattern: str | None) -> re.Pattern | None:
    if pattern is None:
        return None
    try:
        return re.compile(pattern)
    except re.error as exc:
        log.debug("osinfo: cannot compile %r: %s", pattern, exc)
        return _NEVER


_NEVER = re.compile(r"(?!)")


def _match_score(pairs: Iterable[tuple[re.Pattern | None, str | None]]) -> tuple[bool, float] | None:
    """Score a rule against values, libosinfo-style: None if any pattern fails.

    A rule without any pattern matches nothing. Otherwise the score is
    (every pattern matches its whole value, sum over patterns of the share of
    the value the match covers): "CentOS-Stream-9-BaseOS-x86_64" is a better
    match for that exact pattern than for the pattern "CentOS".
    """
    complete = True
    coverage = 0.0
    used = 0
    for rx, value in pairs:
        if rx is None:
            continue
        if not value:
            return None
        m = rx.search(value)
        if m is None:
            return None
        used += 1
        if rx.fullmatch(value) is not None:
            coverage += 1.0
        else:
            complete = False
            coverage += (m.end() - m.start()) / len(value)
    return (complete, coverage) if used else None


class _PatternRule:
    """A rule of patterns (regexes from osinfo-db) matched against the
    attributes of what was found: ``PATTERNS`` pairs each pattern attribute
    of the rule with the attribute of the found thing it is matched with."""

    PATTERNS: ClassVar[tuple[tuple[str, str], ...]] = ()
    _regexes: tuple | None

    @property
    def regexes(self) -> tuple[re.Pattern | None, ...]:
        """The compiled patterns, in ``PATTERNS`` order (None: not compared)."""
        if self._regexes is None:
            self._regexes = tuple(_compile(getattr(self, name)) for name, _found in self.PATTERNS)
        return self._regexes

    def score(self, found: Any) -> tuple[bool, float] | None:
        """How well ``found`` matches this rule (higher is better), None if not at all."""
        return _match_score(zip(self.regexes, (getattr(found, attr) for _name, attr in self.PATTERNS)))


@dataclass(eq=False)
class MediaRule(_PatternRule):
    """One ``<media>`` element: the regexes an ISO must match, and what is on it.

    ``volume_id`` etc. are the pattern strings (None = not compared);
    :attr:`regexes` are their compiled forms, built on first use.
    ``kernel``/``initrd`` are paths inside the ISO (for direct kernel boot).
    """

    arch: str = "all"
    volume_id: str | None = None
    system_id: str | None = None
    publisher_id: str | None = None
    application_id: str | None = None
    kernel: str | None = None
    initrd: str | None = None
    live: bool = False
    volume_size: int | None = None
    url: str | None = None
    variant: str | None = None
    installer: bool = True
    installer_script: bool = True
    _regexes: tuple | None = field(default=None, init=False, repr=False)

    PATTERNS = (("volume_id", "volume_id"), ("system_id", "system_id"), ("publisher_id", "publisher_id"),
                ("application_id", "application_id"))

    def matches(self, ids: IsoIds) -> bool:
        return self.score(ids) is not None and (
            self.volume_size is None or ids.volume_size is None or self.volume_size == ids.volume_size)


@dataclass(eq=False)
class TreeRule(_PatternRule):
    """One ``<tree>`` element: the ``.treeinfo`` regexes and the boot files.

    ``family``/``variant``/``version``/``treeinfo_arch`` are patterns matched
    against the tree's ``.treeinfo``; ``arch`` is the element's architecture.
    ``kernel``/``initrd`` are paths relative to ``url`` (network install).
    """

    arch: str = "all"
    family: str | None = None
    variant: str | None = None
    version: str | None = None
    treeinfo_arch: str | None = None
    url: str | None = None
    kernel: str | None = None
    initrd: str | None = None
    variant_id: str | None = None
    _regexes: tuple | None = field(default=None, init=False, repr=False)

    PATTERNS = (("family", "family"), ("variant", "variant"), ("version", "version"), ("treeinfo_arch", "arch"))


@dataclass(eq=False)
class OsInfo:
    """One operating system release, with inherited values resolved.

    ``minimum``/``recommended``/``maximum`` are for :data:`DEFAULT_ARCH`;
    :meth:`resources_for` gives them for another architecture. ``virtio``,
    ``virtio_net`` and ``uefi`` likewise describe x86_64. ``is_anaconda``:
    a kickstart install script (own or inherited) or a Fedora/RHEL-family
    distro. Two OsInfo are equal when their ``id`` is.
    """

    id: str
    short_id: str
    short_ids: tuple[str, ...]
    name: str
    vendor: str | None = None
    family: str | None = None
    distro: str | None = None
    version: str | None = None
    release_date: str | None = None
    eol_date: str | None = None
    minimum: Resources = _NO_RESOURCES
    recommended: Resources = _NO_RESOURCES
    maximum: Resources = _NO_RESOURCES
    virtio: bool = False
    virtio_net: bool = False
    uefi: bool = False
    is_anaconda: bool = False
    media: list[MediaRule] = field(default_factory=list)
    trees: list[TreeRule] = field(default_factory=list)
    derives_from: str | None = None
    clones: str | None = None
    codename: str | None = None
    release_status: str | None = None
    devices: frozenset[str] = frozenset()
    firmware: dict[tuple[str, str], bool] = field(default_factory=dict)
    install_scripts: tuple[str, ...] = ()
    resources_by_arch: dict[str, ResourceSet] = field(default_factory=dict, repr=False)
    builtin: bool = False
    _search_text: tuple | None = field(default=None, init=False, repr=False)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, OsInfo) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)

    @property
    def label(self) -> str:
        """'Debian 12 (debian12)'."""
        return f"{self.name} ({self.short_id})" if self.short_id and self.short_id != self.name else self.name

    @property
    def is_windows(self) -> bool:
        return self.family in _WINDOWS_FAMILIES

    @property
    def is_linux(self) -> bool:
        return self.family == "linux"

    @property
    def eol(self) -> bool:
        """True once the end-of-life date has passed (False when none is known)."""
        return bool(self.eol_date) and self.eol_date < _dt.date.today().isoformat()

    @property
    def is_fallback(self) -> bool:
        """A catch-all or moving entry rather than one release.

        Rolling, pre-release and snapshot entries, the "-unknown" ones and
        those without a numeric version (testing, rawhide, factory). Their
        media rules lose to a regular release's, and search lists them after
        the regular releases.
        """
        return (self.release_status in _FALLBACK_STATUSES
                or self.id.endswith("unknown") or self.short_id.endswith("unknown")
                or not any(c.isdigit() for c in self.version or ""))

    def resources_for(self, arch: str | None = None) -> ResourceSet:
        """Minimum/recommended/maximum for ``arch`` (falling back to "all")."""
        arch = arch or DEFAULT_ARCH
        found = self.resources_by_arch.get(arch) or self.resources_by_arch.get("all")
        return found or ResourceSet()

    def supports_uefi(self, arch: str | None = None) -> bool:
        """Whether the database lists EFI firmware for ``arch`` (own or inherited)."""
        return _efi(self.firmware, arch or DEFAULT_ARCH)

    def media_for(self, arch: str | None = None) -> list[MediaRule]:
        arch = arch or DEFAULT_ARCH
        return [m for m in self.media if m.arch in (arch, "all")]

    def trees_for(self, arch: str | None = None) -> list[TreeRule]:
        arch = arch or DEFAULT_ARCH
        return [t for t in self.trees if t.arch in (arch, "all")]


@dataclass
class Detection:
    """The OS an ISO or install tree was identified as.

    Exactly one of ``media`` (ISO) and ``tree`` (install tree) is set.
    ``kernel``/``initrd`` are paths inside the media or relative to the tree
    root (None if the database does not know them). ``exact_arch`` is False
    when the matching rule is for another architecture than the one asked for.
    """

    os: OsInfo
    media: MediaRule | None = None
    tree: TreeRule | None = None
    kernel: str | None = None
    initrd: str | None = None
    arch: str | None = None
    exact_arch: bool = True
    ids: IsoIds | None = None
    treeinfo: TreeInfo | None = None

    @property
    def live(self) -> bool:
        return bool(self.media and self.media.live)


class NotAnIsoError(ValueError):
    """The file is not an ISO 9660 image."""


# --------------------------------------------------------------------------
# ISO volume descriptors and .treeinfo

_SECTOR = 2048
_VD_FIRST = 16
_VD_MAX = 64


def _id_text(raw: bytes) -> str:
    return raw.decode("latin-1").strip(" \x00")


def read_iso_ids(path: str | os.PathLike) -> IsoIds:
    """Read the primary volume descriptor of an ISO 9660 image.

    Reads only the volume descriptors (a few KiB at offset 32 KiB), like
    libosinfo, so it is instant even for a multi-GiB DVD image; the field
    layout is ECMA-119's (the same one pycdlib parses).

    Raises FileNotFoundError for a missing file and :class:`NotAnIsoError`
    for anything that has no ISO 9660 volume descriptor.
    """
    import errno

    from ..files.userfile import UserFileError, open_regular

    p = Path(path)
    try:
        # a FIFO would block, a character device never end: refused on open (never waits)
        f = open_regular(p, allow_block=True)
    except UserFileError as err:
        if err.errno == errno.ENOENT:
            raise FileNotFoundError(f"{p}: no such file") from None
        if err.errno is not None and err.errno != errno.EISDIR:
            raise OSError(err.errno, os.strerror(err.errno), str(p)) from None
        raise NotAnIsoError(f"{p} is {err.reason.replace(', not a file', '').replace(', not a regular file', '')}"
                            ", not an ISO 9660 image") from None
    with f:
        for index in range(_VD_FIRST, _VD_FIRST + _VD_MAX):
            try:
                f.seek(index * _SECTOR)
                vd = f.read(_SECTOR)
            except OSError as exc:
                raise NotAnIsoError(f"{p} is not an ISO 9660 image ({exc.strerror or exc})") from None
            if len(vd) < _SECTOR or vd[1:6] != b"CD001":
                break
            vd_type = vd[0]
            if vd_type == 1:
                space_size = struct.unpack_from("<I", vd, 80)[0]
                block_size = struct.unpack_from("<H", vd, 128)[0]
                return IsoIds(
                    volume_id=_id_text(vd[40:72]),
                    system_id=_id_text(vd[8:40]),
                    publisher_id=_id_text(vd[318:446]),
                    application_id=_id_text(vd[574:702]),
                    volume_size=(space_size * block_size) or None,
                )
            if vd_type == 255:  # set terminator: no primary descriptor
                break
    raise NotAnIsoError(f"{p} is not an ISO 9660 image")


def parse_treeinfo(text: str) -> TreeInfo:
    """Parse a ``.treeinfo`` file, old style or productmd style.

    Old style: ``[general]`` family/version/variant/arch, and
    ``[images-<arch>]`` kernel/initrd. productmd (Fedora 24+, RHEL 8+):
    ``[release]`` name/version, ``[tree]`` arch/variants, ``[variant-*]`` and
    the same ``[images-<arch>]``; productmd files usually repeat a compatible
    ``[general]`` section, which wins when present.

    Raises ValueError when the text is not a treeinfo file.
    """
    cp = configparser.ConfigParser(interpolation=None, strict=False, delimiters=("=",))
    try:
        cp.read_string(text)
    except configparser.Error as exc:
        raise ValueError(f"not a .treeinfo file: {exc.message.splitlines()[0]}") from None

    def get(section: str, key: str) -> str | None:
        if cp.has_section(section):
            value = cp.get(section, key, fallback="").strip()
            return value or None
        return None

    family = get("general", "family") or get("release", "name")
    version = get("general", "version") or get("release", "version")
    arch = get("general", "arch") or get("tree", "arch")
    variant = get("general", "variant")
    if variant is None:
        variants = get("tree", "variants")
        if variants:
            variant = variants.split(",")[0].strip() or None
    if variant is None:
        for section in cp.sections():
            if section.startswith("variant-"):
                variant = get(section, "id") or get(section, "uid") or section[len("variant-"):]
                break
    if family is None and version is None and arch is None:
        raise ValueError("not a .treeinfo file: no [general] or [release] section")

    kernel = initrd = None
    image_sections = [f"images-{arch}"] if arch else []
    image_sections += [s for s in cp.sections() if s.startswith("images-") and s not in image_sections
                       and s != "images-xen"]
    for section in image_sections:
        if get(section, "kernel"):
            kernel, initrd = get(section, "kernel"), get(section, "initrd")
            break
    return TreeInfo(family=family, version=version, variant=variant, arch=arch,
                    kernel=kernel, initrd=initrd)


# --------------------------------------------------------------------------
# Loading the XML


@dataclass
class _RawResources:
    inherit: bool = False
    kinds: dict[str, Resources] = field(default_factory=dict)


@dataclass
class _RawOs:
    """One <os> element as written, before inheritance is resolved."""

    id: str
    short_ids: list[str] = field(default_factory=list)
    name: str | None = None
    vendor: str | None = None
    family: str | None = None
    distro: str | None = None
    version: str | None = None
    codename: str | None = None
    release_date: str | None = None
    eol_date: str | None = None
    release_status: str | None = None
    derives_from: list[str] = field(default_factory=list)
    clones: list[str] = field(default_factory=list)
    resources: dict[str, _RawResources] = field(default_factory=dict)
    devices_add: set[str] = field(default_factory=set)
    devices_remove: set[str] = field(default_factory=set)
    firmware: dict[tuple[str, str], bool] = field(default_factory=dict)
    scripts: list[str] = field(default_factory=list)
    media: list[MediaRule] = field(default_factory=list)
    trees: list[TreeRule] = field(default_factory=list)


def _text(el: ET.Element | None) -> str | None:
    if el is None or el.text is None:
        return None
    value = el.text.strip()
    return value or None


def _int(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return None


def _true(value: str | None, default: bool) -> bool:
    return default if value is None else yes(value)


def _parse_resources(el: ET.Element) -> _RawResources:
    raw = _RawResources(inherit=_true(el.get("inherit"), False))
    for kind in ("minimum", "recommended", "maximum"):
        k = el.find(kind)
        if k is None:
            continue
        ram = _int(_text(k.find("ram")))
        res = Resources(
            ram_mib=ram // MIB if ram is not None else None,
            vcpus=_int(_text(k.find("n-cpus"))),
            storage_bytes=_int(_text(k.find("storage"))),
        )
        if not res.empty:
            raw.kinds[kind] = res
    return raw


def _rule_parts(el: ET.Element, inner: str) -> tuple[Callable[[str], str | None], dict[str, str | None], str | None]:
    """What ``<media>`` and ``<tree>`` share: a reader of the texts of their
    inner element (``<iso>``, ``<treeinfo>``), their arch, url, kernel and
    initrd, and the id of their ``<variant>``."""
    box = el.find(inner)
    get = (lambda tag: _text(box.find(tag))) if box is not None else (lambda tag: None)
    variant = el.find("variant")
    common = {"arch": el.get("arch", "all"), "url": _text(el.find("url")), "kernel": _text(el.find("kernel")),
              "initrd": _text(el.find("initrd"))}
    return get, common, variant.get("id") if variant is not None else None


def _parse_media(el: ET.Element) -> MediaRule:
    get, common, variant = _rule_parts(el, "iso")
    return MediaRule(
        **common,  # type: ignore[arg-type]
        volume_id=get("volume-id"),
        system_id=get("system-id"),
        publisher_id=get("publisher-id"),
        application_id=get("application-id"),
        volume_size=_int(get("volume-size")),
        live=_true(el.get("live"), False),
        installer=_true(el.get("installer"), True),
        installer_script=_true(el.get("installer-script"), True),
        variant=variant,
    )


def _parse_tree(el: ET.Element) -> TreeRule:
    get, common, variant = _rule_parts(el, "treeinfo")
    return TreeRule(**common, family=get("family"), variant=get("variant"), version=get("version"),  # type: ignore[arg-type]
                    treeinfo_arch=get("arch"), variant_id=variant)


def _parse_os(el: ET.Element) -> _RawOs | None:
    os_id = el.get("id")
    if not os_id:
        return None
    raw = _RawOs(id=os_id)
    for child in el:
        tag = child.tag
        if tag == "short-id":
            value = _text(child)
            if value and value not in raw.short_ids:
                raw.short_ids.append(value)
        elif tag in ("name", "vendor"):
            if _XML_LANG not in child.attrib and getattr(raw, tag) is None:
                setattr(raw, tag, _text(child))
        elif tag in ("family", "distro", "version", "codename"):
            setattr(raw, tag, _text(child))
        elif tag == "release-date":
            raw.release_date = _text(child)
        elif tag == "eol-date":
            raw.eol_date = _text(child)
        elif tag == "release-status":
            raw.release_status = _text(child)
        elif tag == "derives-from":
            if child.get("id"):
                raw.derives_from.append(child.get("id"))
        elif tag == "clones":
            if child.get("id"):
                raw.clones.append(child.get("id"))
        elif tag == "resources":
            arch = child.get("arch", "all")
            parsed = _parse_resources(child)
            existing = raw.resources.get(arch)
            if existing is not None:  # two blocks for one arch: merge
                existing.kinds.update(parsed.kinds)
                existing.inherit = existing.inherit or parsed.inherit
            else:
                raw.resources[arch] = parsed
        elif tag == "devices":
            for dev in child.iterfind("device"):
                dev_id = dev.get("id")
                if not dev_id:
                    continue
                if _true(dev.get("supported"), True):
                    raw.devices_add.add(dev_id)
                    raw.devices_remove.discard(dev_id)
                else:
                    raw.devices_remove.add(dev_id)
                    raw.devices_add.discard(dev_id)
        elif tag == "firmware":
            fw_type = child.get("type")
            if fw_type:
                raw.firmware[(child.get("arch", "all"), fw_type)] = _true(child.get("supported"), True)
        elif tag == "installer":
            raw.scripts.extend(s.get("id") for s in child.iterfind("script") if s.get("id"))
        elif tag == "media":
            media = _parse_media(child)
            raw.media.append(media)
            inst = child.find("installer")
            if inst is not None:
                raw.scripts.extend(s.get("id") for s in inst.iterfind("script") if s.get("id"))
        elif tag == "tree":
            raw.trees.append(_parse_tree(child))
    return raw


def _os_files(root: Path) -> Iterator[Path]:
    """``root/os/**/*.xml``, skipping ``*.d`` extension directories.

    The ``<os>.d/`` directories only add Windows driver lists to an entry
    defined elsewhere, which this module does not use.
    """
    os_dir = root / "os"
    for dirpath, dirnames, filenames in os.walk(os_dir):
        dirnames[:] = sorted(d for d in dirnames if not d.endswith(".d"))
        for name in sorted(filenames):
            if name.endswith(".xml"):
                yield Path(dirpath) / name


def _load_raw(roots: list[Path], errors: list[str]) -> dict[str, _RawOs]:
    """Parse every OS file; a later root replaces an earlier root's entry."""
    raws: dict[str, _RawOs] = {}
    for root in roots:
        for path in _os_files(root):
            try:
                tree = ET.parse(path)
            except (ET.ParseError, OSError) as exc:
                errors.append(f"{path}: {exc}")
                continue
            top = tree.getroot()
            elements = [top] if top.tag == "os" else top.findall("os")
            for el in elements:
                raw = _parse_os(el)
                if raw is not None:
                    raws[raw.id] = raw
    return raws


def _at_least(res: Resources, floor: Resources) -> Resources:
    """``res`` with each known field raised to ``floor``'s.

    An inherited recommendation can be older than the entry's own minimum
    (Windows 11 inherits Windows 7's 1 GiB "recommended" but needs 4 GiB).
    """
    def pick(value: int | None, low: int | None) -> int | None:
        return max(value, low) if value is not None and low is not None else value

    if res.empty or floor.empty:
        return res
    return Resources(ram_mib=pick(res.ram_mib, floor.ram_mib), vcpus=pick(res.vcpus, floor.vcpus),
                     storage_bytes=pick(res.storage_bytes, floor.storage_bytes))


class _Resolver:
    """Resolves derives-from/clones inheritance, memoised, cycle-safe."""

    def __init__(self, raws: dict[str, _RawOs]):
        self.raws = raws
        self._devices: dict[str, frozenset[str]] = {}
        self._firmware: dict[str, dict[tuple[str, str], bool]] = {}
        self._scripts: dict[str, frozenset[str]] = {}
        self._kind: dict[tuple[str, str, str], Resources | None] = {}
        self._arches: dict[str, frozenset[str]] = {}

    def parents(self, raw: _RawOs) -> list[_RawOs]:
        return [self.raws[p] for p in raw.derives_from + raw.clones if p in self.raws and p != raw.id]

    def _walk(self, raw: _RawOs, memo: dict, compute, stack: frozenset = frozenset()):
        if raw.id in memo:
            return memo[raw.id]
        if raw.id in stack:  # a cycle in the data: stop here
            return compute(raw, [])
        stack = stack | {raw.id}
        inherited = [self._walk(p, memo, compute, stack) for p in self.parents(raw)]
        memo[raw.id] = value = compute(raw, inherited)
        return value

    def devices(self, raw: _RawOs) -> frozenset[str]:
        def compute(r: _RawOs, inherited: list[frozenset[str]]) -> frozenset[str]:
            result: set[str] = set().union(*inherited) if inherited else set()
            return frozenset((result | r.devices_add) - r.devices_remove)
        return self._walk(raw, self._devices, compute)

    def firmware(self, raw: _RawOs) -> dict[tuple[str, str], bool]:
        def compute(r: _RawOs, inherited: list[dict]) -> dict:
            result: dict[tuple[str, str], bool] = {}
            for parent in reversed(inherited):  # derives-from wins over clones
                result.update(parent)
            result.update(r.firmware)
            return result
        return self._walk(raw, self._firmware, compute)

    def scripts(self, raw: _RawOs) -> frozenset[str]:
        def compute(r: _RawOs, inherited: list[frozenset[str]]) -> frozenset[str]:
            return frozenset(r.scripts).union(*inherited)
        return self._walk(raw, self._scripts, compute)

    def arches(self, raw: _RawOs) -> frozenset[str]:
        def compute(r: _RawOs, inherited: list[frozenset[str]]) -> frozenset[str]:
            return frozenset(r.resources).union(*inherited)
        return self._walk(raw, self._arches, compute)

    def kind(self, raw: _RawOs, arch: str, kind: str, stack: frozenset = frozenset()) -> Resources | None:
        """The nearest ``kind`` resources for ``arch``: own (arch, then "all"), then parents'."""
        key = (raw.id, arch, kind)
        if key in self._kind:
            return self._kind[key]
        found: Resources | None = None
        for a in (arch, "all"):
            block = raw.resources.get(a)
            if block is not None and not block.inherit and kind in block.kinds:
                found = block.kinds[kind]
                break
        if found is None and raw.id not in stack:
            for parent in self.parents(raw):
                found = self.kind(parent, arch, kind, stack | {raw.id})
                if found is not None:
                    break
        self._kind[key] = found
        return found

    def resource_sets(self, raw: _RawOs) -> dict[str, ResourceSet]:
        out: dict[str, ResourceSet] = {}
        for arch in sorted(self.arches(raw) | {"all", DEFAULT_ARCH}):
            minimum = self.kind(raw, arch, "minimum") or _NO_RESOURCES
            recommended = _at_least(self.kind(raw, arch, "recommended") or _NO_RESOURCES, minimum)
            rs = ResourceSet(
                minimum=minimum,
                recommended=recommended,
                maximum=self.kind(raw, arch, "maximum") or _NO_RESOURCES,
            )
            if rs != ResourceSet():
                out[arch] = rs
        return out

    def build(self, raw: _RawOs) -> OsInfo:
        devices = self.devices(raw)
        firmware = self.firmware(raw)
        scripts = tuple(sorted(self.scripts(raw)))
        by_arch = self.resource_sets(raw)
        main = by_arch.get(DEFAULT_ARCH) or by_arch.get("all") or ResourceSet()
        short_ids = tuple(raw.short_ids) or (raw.id.rstrip("/").rsplit("/", 1)[-1],)
        return OsInfo(
            id=raw.id,
            short_id=short_ids[0],
            short_ids=short_ids,
            name=raw.name or short_ids[0],
            vendor=raw.vendor,
            family=raw.family,
            distro=raw.distro,
            version=raw.version,
            codename=raw.codename,
            release_date=raw.release_date,
            eol_date=raw.eol_date,
            release_status=raw.release_status,
            minimum=main.minimum,
            recommended=main.recommended,
            maximum=main.maximum,
            resources_by_arch=by_arch,
            devices=devices,
            virtio=bool(devices & VIRTIO_BLOCK_IDS),
            virtio_net=bool(devices & VIRTIO_NET_IDS),
            firmware=firmware,
            uefi=_efi(firmware, DEFAULT_ARCH),
            install_scripts=scripts,
            is_anaconda=(raw.distro in _ANACONDA_DISTROS
                         or any("/kickstart/" in s for s in scripts)),
            media=list(raw.media),
            trees=list(raw.trees),
            derives_from=raw.derives_from[0] if raw.derives_from else None,
            clones=raw.clones[0] if raw.clones else None,
        )


# --------------------------------------------------------------------------
# Built-in entries

GENERIC_ID = "http://libosinfo.org/unknown"
GENERIC_LINUX_ID = "http://libosinfo.org/linux/2022"
GENERIC_WINDOWS_ID = "http://microsoft.com/win/10"

_VIRTIO_DEVICES = frozenset(VIRTIO_BLOCK_IDS | VIRTIO_NET_IDS)


def _builtin(os_id: str, short_ids: tuple[str, ...], name: str, family: str | None,
             recommended: Resources, minimum: Resources, virtio: bool, uefi: bool,
             distro: str | None = None, version: str | None = None) -> OsInfo:
    rs = ResourceSet(minimum=minimum, recommended=recommended)
    return OsInfo(
        id=os_id, short_id=short_ids[0], short_ids=short_ids, name=name, vendor=None,
        family=family, distro=distro, version=version, minimum=minimum, recommended=recommended,
        resources_by_arch={"all": rs}, devices=_VIRTIO_DEVICES if virtio else frozenset(),
        virtio=virtio, virtio_net=virtio, uefi=uefi,
        firmware={(DEFAULT_ARCH, "efi"): True} if uefi else {}, builtin=True,
    )


def builtin_oses() -> list[OsInfo]:
    """The generic entries: used alone without osinfo-db, and always for "generic"."""
    return [
        _builtin(GENERIC_ID, ("generic", "unknown"), "Generic or unknown OS", None,
                 recommended=Resources(2048, 2, 20 * GIB), minimum=Resources(),
                 virtio=False, uefi=False),
        _builtin(GENERIC_LINUX_ID, ("linux2022", "linux"), "Generic Linux", "linux",
                 recommended=Resources(2048, 2, 20 * GIB), minimum=Resources(512, 1, 5 * GIB),
                 virtio=True, uefi=True, version="2022"),
        _builtin(GENERIC_WINDOWS_ID, ("win10", "windows"), "Generic Windows", "winnt",
                 recommended=Resources(4096, 2, 64 * GIB), minimum=Resources(2048, 1, 32 * GIB),
                 virtio=False, uefi=True, distro="win", version="10.0"),
    ]


def _generic_defaults(os_info: OsInfo | None) -> Resources:
    if os_info is not None and os_info.is_windows:
        return Resources(4096, 2, 64 * GIB)
    return Resources(2048, 2, 20 * GIB)


# --------------------------------------------------------------------------
# Sorting and search


def _version_key(version: str | None) -> tuple:
    """Numeric parts of a version; words ("rawhide", "testing") sort as newest."""
    if not version:
        return (-1,)
    parts = re.findall(r"\d+", version)
    if not parts:
        return (math.inf,)
    return tuple(int(p) for p in parts)


def _sort_key(o: OsInfo) -> tuple:
    generic = 0 if o.builtin or o.id.startswith("http://libosinfo.org/") else 1
    vendor = (o.vendor or "").casefold()
    distro = (o.distro or o.family or "").casefold()
    # Newest first: negate the version numbers and the date.
    version = tuple(-p for p in _version_key(o.version))
    digits = re.sub(r"\D", "", o.release_date or "")
    date = -int(digits) if digits else 0
    return (generic, vendor, distro, version, date, o.name.casefold())


_WORD_SPLIT = re.compile(r"[\s_/()\-,]+")


def _search_fields(o: OsInfo) -> tuple:
    if o._search_text is None:
        short = tuple(s.casefold() for s in o.short_ids)
        name = o.name.casefold()
        others = [x.casefold() for x in (o.vendor, o.distro, o.codename, o.family) if x]
        words = set(w for w in _WORD_SPLIT.split(" ".join([name] + others)) if w)
        version = (o.version or "").casefold()
        blob = " ".join((name, version) + short + tuple(others))
        o._search_text = (short, name, words, version, blob)
    return o._search_text


def _token_score(token: str, fields: tuple) -> int:
    short, name, words, version, blob = fields
    if token in short:
        return 100
    if token == version:
        return 60
    if version.startswith(token) and version[len(token)] in ".-":
        return 55  # "9" for 9.1, "22" for 22.04
    if token in words:
        return 50
    if any(s.startswith(token) for s in short):
        return 40
    if any(w.startswith(token) for w in words) or version.startswith(token):
        return 30
    if token in blob:
        return 10
    return 0


def _split_version(short_id: str) -> tuple[str, float | None]:
    """``debian12`` -> ("debian", 12.0), ``rhel9.1`` -> ("rhel", 9.001),
    ``win2k22`` -> ("win", 2.022), ``centos-stream9`` -> ("centos-stream", 9.0),
    ``debiantesting`` -> ("debiantesting", None)."""
    m = re.search(r"\d", short_id)
    if not m:
        return short_id, None
    name = short_id[:m.start()].rstrip("-_.")
    parts = [int(p) for p in re.findall(r"\d+", short_id[m.start():])]
    return name, sum(p / 1000 ** i for i, p in enumerate(parts))


# --------------------------------------------------------------------------
# The database


def default_paths() -> list[Path]:
    """Where osinfo-db may live, lowest priority first (later ones override).

    /usr/share/osinfo (or ``$OSINFO_SYSTEM_DIR``), /usr/share/osinfo-db,
    /etc/osinfo (or ``$OSINFO_LOCAL_DIR``), ~/.config/osinfo (or
    ``$OSINFO_USER_DIR``), then each entry of ``$VMTUI_OSINFO_PATH``
    (``os.pathsep``-separated).
    """
    env = os.environ
    paths = [
        Path(env.get("OSINFO_SYSTEM_DIR") or "/usr/share/osinfo"),
        Path("/usr/share/osinfo-db"),
        Path(env.get("OSINFO_LOCAL_DIR") or "/etc/osinfo"),
        Path(env.get("OSINFO_USER_DIR") or Path.home() / ".config" / "osinfo"),
    ]
    paths += [Path(p) for p in env.get(ENV_PATH, "").split(os.pathsep) if p]
    return paths


class OsDb:
    """The OS catalogue. Build it with :meth:`load` (or :func:`default_db`)."""

    def __init__(self, oses: Iterable[OsInfo], *, available: bool = True, note: str = "",
                 paths: Iterable[Path] = (), version: str | None = None,
                 errors: Iterable[str] = (), load_seconds: float = 0.0):
        self.available = available
        self.note = note
        self.paths = list(paths)
        self.version = version
        self.errors = list(errors)
        self.load_seconds = load_seconds
        self._oses = sorted(oses, key=_sort_key)
        self._by_id: dict[str, OsInfo] = {}
        self._by_short: dict[str, OsInfo] = {}
        for o in self._oses:
            self._by_id[o.id] = o
            for s in o.short_ids:
                self._by_short.setdefault(s.casefold(), o)

    # -- construction --------------------------------------------------------

    @classmethod
    def load(cls, paths: Iterable[str | os.PathLike] | None = None) -> "OsDb":
        """Read osinfo-db from ``paths`` (default :func:`default_paths`).

        Never raises: unreadable files are skipped and listed in
        :attr:`errors`; without any OS entry the built-in generic list is
        returned with :attr:`available` False and a :attr:`note` saying why.
        """
        started = time.perf_counter()
        candidates = [Path(p).expanduser() for p in (default_paths() if paths is None else paths)]
        roots = [p for p in candidates if (p / "os").is_dir()]
        errors: list[str] = []
        try:
            raws = _load_raw(roots, errors)
            resolver = _Resolver(raws)
            oses = [resolver.build(raw) for raw in raws.values()]
        except Exception as exc:  # never let a broken database break the wizard
            log.exception("osinfo: loading %s failed", roots)
            errors.append(f"{exc.__class__.__name__}: {exc}")
            oses = []
        where = str(candidates[0]) if candidates else "(no path)"
        if not oses:
            note = (f"osinfo-db in {roots[0]} has no readable OS entries: showing a generic list"
                    if roots else f"osinfo-db not found in {where}: showing a generic list")
            return cls(builtin_oses(), available=False, note=note, paths=roots, errors=errors,
                       load_seconds=time.perf_counter() - started)
        oses = cls._with_builtins(oses)
        version = None
        for root in roots:
            try:
                version = (root / "VERSION").read_text().strip() or version
            except OSError:
                pass
        return cls(oses, available=True, note="", paths=roots, version=version, errors=errors,
                   load_seconds=time.perf_counter() - started)

    @staticmethod
    def _with_builtins(oses: list[OsInfo]) -> list[OsInfo]:
        """Add the generic entries the database lacks; alias "linux"/"windows"."""
        by_id = {o.id: o for o in oses}
        generic, linux, windows = builtin_oses()
        by_id[GENERIC_ID] = generic  # always ours: a nicer name and real defaults
        taken = {s for o in by_id.values() for s in o.short_ids}
        linuxes = sorted((o for o in by_id.values() if o.id.startswith("http://libosinfo.org/linux/")),
                         key=lambda o: _version_key(o.version))
        if linuxes:
            newest = linuxes[-1]
            if "linux" not in taken:
                newest.short_ids = newest.short_ids + ("linux",)
        else:
            linux.short_ids = tuple(s for s in linux.short_ids if s not in taken) or ("linux-generic",)
            linux.short_id = linux.short_ids[0]
            by_id[linux.id] = linux
        if windows.id in by_id:
            if "windows" not in taken:
                by_id[windows.id].short_ids = by_id[windows.id].short_ids + ("windows",)
        else:
            windows.short_ids = tuple(s for s in windows.short_ids if s not in taken) or ("windows",)
            windows.short_id = windows.short_ids[0]
            by_id[windows.id] = windows
        return list(by_id.values())

    @classmethod
    def builtin(cls, note: str = "") -> "OsDb":
        """Only the generic entries."""
        return cls(builtin_oses(), available=False, note=note)

    # -- queries -------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._oses)

    def __iter__(self) -> Iterator[OsInfo]:
        return iter(self._oses)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self.get(key) is not None

    def all(self, include_eol: bool = True) -> list[OsInfo]:
        """Every OS: generic entries first, then by vendor and distro, newest first."""
        return [o for o in self._oses if include_eol or not o.eol]

    def get(self, short_id_or_id: str | None) -> OsInfo | None:
        """By id URI or by any short id (case-insensitive)."""
        if not short_id_or_id:
            return None
        return self._by_id.get(short_id_or_id) or self._by_short.get(short_id_or_id.strip().casefold())

    @property
    def generic(self) -> OsInfo:
        return self._by_id[GENERIC_ID]

    def search(self, text: str, include_eol: bool = True) -> list[OsInfo]:
        """Entries matching every word of ``text``, best first.

        Words are matched case-insensitively against the name, short ids,
        vendor, distro, codename and version. An exact short id ranks highest,
        then an exact version, a version's first component, a whole word, a
        prefix and a substring. Ties put regular releases before
        rolling/"unknown" entries, supported releases before EOL ones, then
        keep :meth:`all`'s order (newest first).
        """
        tokens = [t for t in (text or "").casefold().split() if t]
        pool = self.all(include_eol)
        if not tokens:
            return pool
        scored = []
        for index, o in enumerate(pool):
            fields = _search_fields(o)
            total = 0
            for token in tokens:
                s = _token_score(token, fields)
                if not s:
                    break
                total += s
            else:
                scored.append((-total, o.is_fallback, o.eol, index, o))
        scored.sort(key=lambda t: t[:4])
        return [t[4] for t in scored]

    # -- unknown ids -----------------------------------------------------------

    def suggest(self, short_id: str, n: int = 3) -> list[OsInfo]:
        """The known entries closest to an id this database lacks: the same
        name with the nearest versions first (``debian12`` -> debian11,
        debian10 ...), then names that look alike (a typo: ``ubunut22.04`` ->
        ubuntu22.04)."""
        word = (short_id or "").strip().casefold()
        if not word:
            return []
        name, version = _split_version(word)
        scored: dict[str, tuple] = {}
        for o in self._oses:
            if o.builtin:
                continue
            for sid in o.short_ids:
                cname, cversion = _split_version(sid.casefold())
                if not cname:
                    continue
                if cname.startswith(name) or name.startswith(cname):
                    likeness = 1.0 if cname == name else 0.9
                else:
                    likeness = difflib.SequenceMatcher(None, name, cname).ratio()
                if likeness < 0.75:
                    continue
                distance = abs(version - cversion) if version is not None and cversion is not None else math.inf
                key = (-round(likeness, 2), distance, -(cversion or 0), o.eol)
                if o.id not in scored or key < scored[o.id][0]:
                    scored[o.id] = (key, o)
        found = [o for _, o in sorted(scored.values(), key=lambda t: t[0])]
        if not found:
            ids = {sid.casefold(): o for o in self._oses if not o.builtin for sid in o.short_ids}
            found = [ids[m] for m in difflib.get_close_matches(word, sorted(ids), n=n, cutoff=0.75)]
        out: list[OsInfo] = []
        for o in found:
            if o not in out:
                out.append(o)
        return out[:n]

    def fallback_for(self, short_id: str) -> OsInfo:
        """The generic entry an unknown id is built with, as virt-install does
        (``--osinfo detect=on,require=off`` gives ``linux2022`` for a Linux
        it cannot name): the newest generic Linux when the id looks like a
        Linux distribution's, the generic Windows for Windows, else the
        generic entry."""
        near = self.suggest(short_id, 1)
        family = near[0].family if near else None
        if family == "linux":
            linuxes = sorted((o for o in self._oses if o.id.startswith("http://libosinfo.org/linux/")
                              or o.id == GENERIC_LINUX_ID), key=lambda o: _version_key(o.version))
            if linuxes:
                return linuxes[-1]
        if family in _WINDOWS_FAMILIES:
            windows = self.get("windows") or self._by_id.get(GENERIC_WINDOWS_ID)
            if windows is not None:
                return windows
        return self.generic

    def unknown_id_message(self, short_id: str) -> str:
        """What to tell about an ``os`` id this database lacks."""
        known = f" osinfo-db {self.version}" if self.version else " OS list"
        near = self.suggest(short_id)
        fallback = self.fallback_for(short_id)
        closest = (f"; the closest ids it knows: {', '.join(o.short_id for o in near)}" if near
                   else "; no similar id (osinfo-query os lists them)")
        return (f"'{short_id}' is not in this host's{known} (newer than it, or a typo){closest}. "
                f"The VM gets the values of {fallback.name} ({fallback.short_id})")

    # -- detection -----------------------------------------------------------

    def detect_iso(self, path: str | os.PathLike, arch: str | None = DEFAULT_ARCH) -> Detection | None:
        """Identify the OS on an ISO image (see :func:`read_iso_ids` for errors)."""
        return self.detect_iso_ids(read_iso_ids(path), arch)

    def detect_iso_ids(self, ids: IsoIds, arch: str | None = DEFAULT_ARCH) -> Detection | None:
        """Identify the OS from ISO identifiers; None if nothing matches.

        Rules for another architecture still match (the volume id usually
        names the architecture anyway), but rank below the asked-for ``arch``
        on a tie; :attr:`Detection.exact_arch` tells which.
        """
        best = None
        best_key = None
        for o in self._oses:
            fallback = o.is_fallback
            for rule in o.media:
                score = rule.score(ids)
                if score is None:
                    continue
                if rule.volume_size is None or ids.volume_size is None:
                    size_ok, size_exact = True, False
                else:
                    size_ok = size_exact = rule.volume_size == ids.volume_size
                arch_ok = arch is None or rule.arch in (arch, "all")
                complete, coverage = score
                key = (size_ok, size_exact, complete, not fallback, coverage, arch_ok)
                if best_key is None or key > best_key:
                    best, best_key = (o, rule), key
        if best is None:
            return None
        o, rule = best
        return Detection(os=o, media=rule, kernel=rule.kernel, initrd=rule.initrd,
                         arch=rule.arch, exact_arch=best_key[-1], ids=ids)

    def detect_tree(self, treeinfo_text: str, arch: str | None = DEFAULT_ARCH) -> Detection | None:
        """Identify the OS of an install tree from its ``.treeinfo`` text.

        Raises ValueError if the text is not a treeinfo file; returns None if
        no rule matches. The kernel/initrd paths come from the treeinfo's own
        ``[images-<arch>]`` section when it has one, else from the database,
        else (Anaconda trees on x86_64/aarch64) ``images/pxeboot/``.
        """
        info = parse_treeinfo(treeinfo_text)
        match_info = info if info.arch or not arch else TreeInfo(
            info.family, info.version, info.variant, arch, info.kernel, info.initrd)
        want_arch = info.arch or arch
        best = None
        best_key = None
        for o in self._oses:
            fallback = o.is_fallback
            for rule in o.trees:
                score = rule.score(match_info)
                if score is None:
                    continue
                arch_ok = want_arch is None or rule.arch in (want_arch, "all")
                complete, coverage = score
                key = (complete, not fallback, coverage, arch_ok)
                if best_key is None or key > best_key:
                    best, best_key = (o, rule), key
        if best is None:
            return None
        o, rule = best
        kernel, initrd = info.kernel or rule.kernel, info.initrd or rule.initrd
        if kernel is None and o.is_anaconda and (want_arch or rule.arch) in ("x86_64", "aarch64"):
            kernel, initrd = _ANACONDA_PXEBOOT  # where every Anaconda tree keeps them
        return Detection(os=o, tree=rule, kernel=kernel, initrd=initrd, arch=rule.arch,
                         exact_arch=best_key[-1], treeinfo=info)


@functools.lru_cache(maxsize=1)
def default_db() -> OsDb:
    """The host's database, loaded once (``default_db.cache_clear()`` to reload)."""
    return OsDb.load()


# --------------------------------------------------------------------------
# Resources for the wizard

HOST_RESERVE_MIB = 1024


def recommended_defaults(os_info: OsInfo | None, host_memory_mib: int | None, host_cpus: int | None,
                         arch: str | None = None) -> Resources:
    """Memory, vCPUs and disk size to pre-fill for ``os_info`` on this host.

    * Memory: the OS's recommended value, else its minimum, else a generic
      default (2 GiB, Windows 4 GiB); capped at half the host's memory. When
      half is below the OS's minimum, the minimum is used if it still leaves
      1 GiB to the host, else half the host's memory (check_resources warns).
    * vCPUs: the recommended count, else 2; never below the OS's minimum;
      capped at the host's CPU count.
    * Disk: recommended, else minimum, else 20 GiB (Windows 64 GiB); not
      capped (free pool space is the disk step's business).

    Unknown host figures (None or 0) leave the values uncapped.
    """
    generic = _generic_defaults(os_info)
    rs = os_info.resources_for(arch) if os_info is not None else ResourceSet()
    rec, minimum = rs.recommended, rs.minimum

    ram = rec.ram_mib or minimum.ram_mib or generic.ram_mib
    if host_memory_mib and host_memory_mib > 0:
        half = max(host_memory_mib // 2, 1)
        if ram > half:
            floor = minimum.ram_mib or 0
            ram = floor if half < floor <= host_memory_mib - HOST_RESERVE_MIB else half

    vcpus = rec.vcpus or generic.vcpus
    if minimum.vcpus:
        vcpus = max(vcpus, minimum.vcpus)
    if host_cpus and host_cpus > 0:
        vcpus = min(vcpus, host_cpus)

    storage = rec.storage_bytes or minimum.storage_bytes or generic.storage_bytes
    return Resources(ram_mib=int(ram), vcpus=int(vcpus), storage_bytes=int(storage))


def check_resources(os_info: OsInfo | None, ram_mib: int | None, vcpus: int | None,
                    storage_bytes: int | None = None, arch: str | None = None) -> list[str]:
    """Warnings for values below the OS's minimum (or above its maximum memory)."""
    if os_info is None:
        return []
    rs = os_info.resources_for(arch)
    minimum, maximum = rs.minimum, rs.maximum
    out: list[str] = []
    if ram_mib is not None and minimum.ram_mib and ram_mib < minimum.ram_mib:
        out.append(f"{os_info.name} needs at least {fmt_bytes(minimum.ram_mib * MIB)} of memory")
    if ram_mib is not None and maximum.ram_mib and ram_mib > maximum.ram_mib:
        out.append(f"{os_info.name} supports at most {fmt_bytes(maximum.ram_mib * MIB)} of memory")
    if vcpus is not None and minimum.vcpus and vcpus < minimum.vcpus:
        plural = "s" if minimum.vcpus != 1 else ""
        out.append(f"{os_info.name} needs at least {minimum.vcpus} CPU{plural}")
    if vcpus is not None and maximum.vcpus and vcpus > maximum.vcpus:
        out.append(f"{os_info.name} supports at most {maximum.vcpus} CPUs")
    if storage_bytes is not None and minimum.storage_bytes and storage_bytes < minimum.storage_bytes:
        out.append(f"{os_info.name} needs at least {fmt_bytes(minimum.storage_bytes)} of disk space")
    return out
