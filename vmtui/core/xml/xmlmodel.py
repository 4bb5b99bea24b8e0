"""A small typed XML model: each fact of a libvirt XML document is declared once,
with its XPath and its type, and the same object reads, edits and builds it.

The idea is virt-manager's ``virtinst.XMLBuilder`` / ``XMLProperty``, smaller and
typed. A model class wraps one ElementTree element; its facts are descriptors::

    class Loader(XMLModel):
        TAG = "loader"
        path = Str(".")                 # the element's text
        secure = YesNo("@secure")       # secure='yes' / 'no'
        readonly = YesNo("@readonly")

    class OS(XMLModel):
        TAG = "os"
        machine = Str("type/@machine")
        secure_boot_feature = YesNo("firmware/feature[@name='secure-boot']/@enabled")
        boots = Children(Boot, "boot")

Reading follows the path and converts the text (``None`` when it is not there).
Writing creates what is missing along the path -- each new element at libvirt's
place among its siblings (:attr:`XMLModel.ORDER`), indented like its neighbours --
and writing ``None`` removes the value and the elements that only held it. Every
element, attribute, comment and namespace the model does not know stays where it
was, so parse -> edit -> serialize changes only what was edited.

The path language is a subset of XPath: ``a/b/@c`` (attribute), ``a/b`` (element
text), ``.`` (the model's own text), ``{uri}tag`` (namespaced element), and
``tag[@name='value']`` predicates, which a write creates as attributes.

Value types: :class:`Str`, :class:`Int`, :class:`YesNo` (yes/no), :class:`OnOff`
(on/off), :class:`Flag` (an element that is there or not, like ``<readonly/>``) and
:class:`Size` (a number with a libvirt ``unit`` attribute). :class:`Child` is one
nested model, :class:`Children` a list of them with ``add``/``remove``.

Also here, once for all of core: :func:`yes` (libvirt's boolean words),
:func:`to_bytes` (libvirt's unit scaling, ``virScaleInteger``) and the
whitespace-keeping element insert/remove helpers.
"""

from __future__ import annotations

import copy
import functools
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, NamedTuple, Self, TypeVar, overload

__all__ = [
    "XMLError",
    "XMLModel",
    "Str",
    "Int",
    "YesNo",
    "OnOff",
    "Flag",
    "Size",
    "Child",
    "Children",
    "ChildList",
    "yes",
    "parse_int",
    "to_bytes",
    "unit_factor",
    "parse_document",
    "register_namespaces",
    "serialize",
    "insert_child",
    "remove_child",
    "indent_of",
    "namespace_of",
]


class XMLError(ValueError):
    """The XML is malformed, is not the expected document, or holds an unusable value."""


# ---------------------------------------------------------------------------
# values
# ---------------------------------------------------------------------------

_TRUE = frozenset(("yes", "on", "true", "1"))


def yes(value: str | None) -> bool:
    """libvirt's true words: yes / on / true / 1 (any case). Anything else is false."""
    return (value or "").strip().lower() in _TRUE


def parse_int(value: str | None) -> int | None:
    """Lenient integer (decimal or 0x-hex); None when absent or unparsable."""
    if value is None:
        return None
    value = value.strip()
    try:
        return int(value, 0) if value.lower().startswith("0x") else int(value)
    except ValueError:
        return None


# libvirt's virScaleInteger: case-insensitive; "k"/"KiB" = 1024, "KB" = 1000, ...
_UNIT_EXP = {"k": 1, "m": 2, "g": 3, "t": 4, "p": 5, "e": 6}


def unit_factor(unit: str, what: str = "size") -> int:
    """Bytes per ``unit``: b/byte/bytes = 1; KB, MB, GB, TB, PB, EB are powers of
    1000; k/KiB, M/MiB, G/GiB, T/TiB, P/PiB, E/EiB powers of 1024 (libvirt's
    rules, case ignored). XMLError names ``what`` for an unknown unit."""
    low = (unit or "").strip().lower()
    if low in ("b", "byte", "bytes"):
        return 1
    exp = _UNIT_EXP.get(low[:1])
    rest = low[1:]
    if exp is None or rest not in ("", "ib", "b"):
        raise XMLError(f"unknown {what} unit {unit!r}")
    return (1000 if rest == "b" else 1024) ** exp


def to_bytes(value: str | None, unit: str | None, *, default_unit: str = "bytes", what: str = "size") -> int:
    """A libvirt scaled integer (``<capacity unit='GiB'>10</capacity>``) in bytes.

    ``default_unit`` applies when ``unit`` is empty (domain memory: KiB; storage
    sizes: bytes). The value must be a non-negative decimal integer."""
    raw = (value or "").strip()
    if not re.fullmatch(r"\d+", raw):
        raise XMLError(f"invalid {what} value {value!r}: expected a non-negative integer")
    u = (unit or "").strip() or default_unit
    return int(raw) * unit_factor(u, what)


# ---------------------------------------------------------------------------
# documents
# ---------------------------------------------------------------------------


class _TreeBuilder(ET.TreeBuilder):
    """TreeBuilder that keeps comments/PIs and records namespace declarations."""

    def __init__(self) -> None:
        super().__init__(insert_comments=True, insert_pis=True)
        self.namespaces: list[tuple[str, str]] = []

    def start_ns(self, prefix: str, uri: str) -> None:
        self.namespaces.append((prefix or "", uri))


def _pretty_tag(tag: str) -> str:
    if tag.startswith("{"):
        uri, _, local = tag[1:].partition("}")
        return f"{local} xmlns='{uri}'"
    return tag


def parse_document(xml: str | bytes, root_tag: str | None = None, *, what: str = "XML",
                   error: type[XMLError] = XMLError) -> tuple[ET.Element, list[tuple[str, str]]]:
    """The root element of ``xml`` (comments and PIs kept) and its namespace
    declarations. ``error`` (naming ``what``) when it is empty, malformed, or its
    root is not ``root_tag``."""
    if not isinstance(xml, (str, bytes)):
        raise error(f"{what} must be str or bytes, not {type(xml).__name__}")
    if not xml.strip():
        raise error(f"{what} is empty")
    builder = _TreeBuilder()
    parser = ET.XMLParser(target=builder)
    try:
        parser.feed(xml)
        root = parser.close()
    except ET.ParseError as e:
        raise error(f"malformed {what}: {e}") from None
    if root_tag is not None and (not isinstance(root.tag, str) or root.tag != root_tag):
        tag = root.tag if isinstance(root.tag, str) else "?"
        raise error(f"not a libvirt {what}: root element is <{_pretty_tag(tag)}>, expected <{root_tag}>")
    return root, builder.namespaces


_GENERATED_PREFIX = re.compile(r"ns\d+$")


def register_namespaces(namespaces: Sequence[tuple[str, str]]) -> None:
    """Make ElementTree serialize the document's own prefixes (e.g. ``qemu:``).

    ElementTree's prefix map is process-global; registering a prefix only affects how
    namespaced names are spelled on output, never what they mean.
    """
    for prefix, uri in namespaces:
        if not prefix or prefix in ("xml", "xmlns") or _GENERATED_PREFIX.match(prefix):
            continue
        try:
            ET.register_namespace(prefix, uri)
        except ValueError:
            pass


def serialize(root: ET.Element) -> str:
    return ET.tostring(root, encoding="unicode")


def namespace_of(el: ET.Element) -> str | None:
    tag = el.tag
    if isinstance(tag, str) and tag.startswith("{"):
        return tag[1:].partition("}")[0]
    return None


# ---------------------------------------------------------------------------
# whitespace-keeping edits
# ---------------------------------------------------------------------------


def _blank(text: str | None) -> bool:
    return not (text or "").strip()


def indent_of(parent: ET.Element, child: ET.Element) -> str | None:
    """The newline+indent preceding ``child`` inside ``parent`` (None if unformatted)."""
    children = list(parent)
    i = children.index(child)
    before = parent.text if i == 0 else children[i - 1].tail
    if before and _blank(before) and "\n" in before:
        return before
    return None


def _parent_map(root: ET.Element) -> dict[ET.Element, ET.Element]:
    return {c: p for p in root.iter() for c in p}


def _own_indent(root: ET.Element | None, el: ET.Element) -> str | None:
    """The indent in front of ``el`` itself (None for the root or an unformatted document)."""
    if root is None or el is root:
        return None
    parent = _parent_map(root).get(el)
    return indent_of(parent, el) if parent is not None else None


def _indent_unit(*elements: ET.Element | None) -> str:
    """The document's indentation step (two spaces when it cannot be told)."""
    for el in elements:
        if el is None:
            continue
        kids = list(el)
        if kids:
            inner, outer = el.text or "", kids[-1].tail or ""
            if "\n" in inner and _blank(inner) and inner.startswith(outer) and len(inner) > len(outer):
                return inner[len(outer):]
    return "  "


def _indent_subtree(el: ET.Element, base: str, unit: str) -> None:
    """Indent ``el``'s descendants one ``unit`` per level below ``base`` (only
    whitespace-only text is touched)."""
    kids = list(el)
    if not kids:
        return
    inner = base + unit
    if _blank(el.text):
        el.text = inner
    for child in kids:
        _indent_subtree(child, inner, unit)
        if _blank(child.tail):
            child.tail = inner
    if _blank(kids[-1].tail):
        kids[-1].tail = base


def insert_child(parent: ET.Element, index: int, new: ET.Element, root: ET.Element | None = None) -> None:
    """Insert ``new`` at ``index`` of ``parent``, indented like its neighbours when
    the document is indented (``root``: the document, to indent into an empty parent)."""
    kids = list(parent)
    index = max(0, min(index, len(kids)))
    inner: str | None = None
    if kids:
        first_ws = parent.text
        if first_ws and _blank(first_ws) and "\n" in first_ws:
            inner = first_ws
            if index == len(kids):
                last = kids[-1]
                new.tail = last.tail
                last.tail = inner
            else:
                new.tail = inner
        elif index == len(kids):
            new.tail, kids[-1].tail = kids[-1].tail, None
        else:
            new.tail = None
    else:
        own = _own_indent(root, parent)
        new.tail = None
        if own is not None and _blank(parent.text):
            inner = own + _indent_unit(root)
            parent.text = inner
            new.tail = own
    if inner is not None:
        _indent_subtree(new, inner, _indent_unit(parent, root))
    parent.insert(index, new)


def remove_child(parent: ET.Element, child: ET.Element) -> None:
    """Remove ``child`` keeping the surrounding indentation tidy."""
    children = list(parent)
    i = children.index(child)
    if i > 0:
        children[i - 1].tail = child.tail
    elif len(children) == 1:
        parent.text = None if _blank(parent.text) else parent.text
    parent.remove(child)


def ordered_index(parent: ET.Element, tag: str, order: Sequence[str] | None) -> int:
    """Where a new ``tag`` child goes: after its last namesake; else at its place
    in ``order`` (libvirt's element order for this parent); else at the end."""
    kids = list(parent)
    same = [i for i, c in enumerate(kids) if c.tag == tag]
    if same:
        return same[-1] + 1
    if not order or tag not in order:
        return len(kids)
    rank = order.index(tag)
    pos = None
    first_later = None
    for i, c in enumerate(kids):
        if not isinstance(c.tag, str) or c.tag not in order:
            continue
        if order.index(c.tag) <= rank:
            pos = i + 1
        elif first_later is None:
            first_later = i
    if pos is not None:
        return pos
    return first_later if first_later is not None else len(kids)


# ---------------------------------------------------------------------------
# paths
# ---------------------------------------------------------------------------


class _Step(NamedTuple):
    tag: str
    preds: tuple[tuple[str, str], ...] = ()

    def matches(self, el: ET.Element) -> bool:
        return el.tag == self.tag and all(el.get(k) == v for k, v in self.preds)

    def new(self) -> ET.Element:
        return ET.Element(self.tag, dict(self.preds))

    @property
    def pattern(self) -> str:
        """The step in ElementTree's path syntax."""
        return self.tag + "".join(f"[@{k}='{v}']" for k, v in self.preds)


_STEP_RE = re.compile(r"((?:\{[^}]*\})?[A-Za-z_][\w.-]*)((?:\[@[\w.:-]+='[^']*'\])*)$")
_PRED_RE = re.compile(r"\[@([\w.:-]+)='([^']*)'\]")


@dataclass(frozen=True)
class _Path:
    steps: tuple[_Step, ...]
    attr: str | None

    @property
    def text(self) -> bool:
        return self.attr is None


def _split(xpath: str) -> list[str]:
    parts, buf, depth = [], "", 0
    for ch in xpath:
        if ch in "{[":
            depth += 1
        elif ch in "}]":
            depth -= 1
        if ch == "/" and depth == 0:
            parts.append(buf)
            buf = ""
        else:
            buf += ch
    parts.append(buf)
    return parts


@functools.cache
def _parse_path(xpath: str) -> _Path:
    parts = [p for p in _split(xpath) if p not in ("", ".")]
    attr = None
    if parts and parts[-1].startswith("@"):
        attr = parts.pop()[1:]
    steps = []
    for part in parts:
        m = _STEP_RE.match(part)
        if not m or part.startswith("@"):
            raise ValueError(f"unsupported path step {part!r} in {xpath!r}")
        steps.append(_Step(m.group(1), tuple(_PRED_RE.findall(m.group(2)))))
    return _Path(tuple(steps), attr)


@functools.cache
def _pattern(steps: tuple[_Step, ...]) -> str:
    return "/".join(step.pattern for step in steps)


def _find(el: ET.Element | None, steps: tuple[_Step, ...]) -> ET.Element | None:
    """The first element at ``steps`` below ``el`` (ElementTree's own, fast, search)."""
    if el is None or not steps:
        return el
    return el.find(_pattern(steps))


def _find_all(el: ET.Element | None, steps: tuple[_Step, ...]) -> list[ET.Element]:
    """Every element matching the last step, under the first match of the others."""
    if el is None:
        return []
    if not steps:
        return [el]
    parent = _find(el, steps[:-1])
    if parent is None:
        return []
    return parent.findall(_pattern(steps[-1:]))


def _empty(el: ET.Element, step: _Step) -> bool:
    """Nothing left in ``el`` but the attributes its path step put there."""
    return len(el) == 0 and _blank(el.text) and set(el.attrib.items()) <= set(step.preds)


# ---------------------------------------------------------------------------
# models
# ---------------------------------------------------------------------------

M = TypeVar("M", bound="XMLModel")
T = TypeVar("T")


class XMLModel:
    """One element of a document, with its facts as descriptors.

    A model is *standalone* (``Disk()`` makes a ``<disk/>``; ``Disk(el)`` wraps
    one), or *bound* to a path under its parent model (:class:`Child`): then its
    element is looked up on each access and made only when something is written.
    """

    TAG: ClassVar[str] = ""
    #: libvirt's child element order, per parent tag (where new elements go)
    ORDER: ClassVar[Mapping[str, Sequence[str]]] = {}
    #: the error raised for this kind of document, and what it is called in messages
    ERROR: ClassVar[type[XMLError]] = XMLError
    WHAT: ClassVar[str] = "XML"

    __slots__ = ("_el", "_doc", "_parent", "_steps")

    def __init__(self, element: ET.Element | None = None, *, doc: ET.Element | None = None) -> None:
        """Wrap ``element`` (a new empty one when None); ``doc`` is the document
        it belongs to (itself by default), for indenting what is added."""
        if element is None:
            if not self.TAG:
                raise TypeError(f"{type(self).__name__} has no TAG: pass an element")
            element = ET.Element(self.TAG)
        self._el: ET.Element | None = element
        self._doc: ET.Element | None = doc if doc is not None else element
        self._parent: XMLModel | None = None
        self._steps: tuple[_Step, ...] = ()

    # construction -----------------------------------------------------------

    @classmethod
    def parse(cls, xml: str | bytes, *, register: bool = True, skip_namespaces: Sequence[str] = ()) -> Self:
        """Parse a document whose root is this model's element. ``register``:
        serialize its namespace prefixes as they were (except the URIs in
        ``skip_namespaces``)."""
        root, namespaces = parse_document(xml, cls.TAG or None, what=cls.WHAT, error=cls.ERROR)
        if register:
            register_namespaces([(p, u) for p, u in namespaces if u not in skip_namespaces])
        return cls(root)

    @classmethod
    def _bound(cls, parent: XMLModel, steps: tuple[_Step, ...]) -> Self:
        obj = cls.__new__(cls)
        obj._el = None
        obj._doc = None
        obj._parent = parent
        obj._steps = steps
        return obj

    # the element ---------------------------------------------------------------

    def _node(self, create: bool = False) -> ET.Element | None:
        if self._el is not None:
            return self._el
        assert self._parent is not None
        parent = self._parent._node(create)
        if parent is None:
            return None
        if create:
            return self._parent._ensure(parent, self._steps)
        return _find(parent, self._steps)

    @property
    def element(self) -> ET.Element:
        """The element (made, with what leads to it, if it is not there yet)."""
        el = self._node(create=True)
        assert el is not None
        return el

    @property
    def exists(self) -> bool:
        return self._node() is not None

    def _document(self) -> ET.Element | None:
        model: XMLModel | None = self
        while model is not None:
            if model._doc is not None:
                return model._doc
            model = model._parent
        return None

    def _ensure(self, el: ET.Element, steps: Sequence[_Step]) -> ET.Element:
        """Follow ``steps`` from ``el``, making each missing element at its place."""
        doc = self._document()
        for step in steps:
            found = next((c for c in el if step.matches(c)), None)
            if found is None:
                found = step.new()
                insert_child(el, ordered_index(el, step.tag, self.ORDER.get(el.tag)), found, doc)
            el = found
        return el

    def _prune(self, chain: list[tuple[ET.Element, ET.Element, _Step]]) -> None:
        """Remove the elements along a path (innermost first) that hold nothing any more."""
        for parent, el, step in reversed(chain):
            if not _empty(el, step):
                break
            remove_child(parent, el)

    def _chain(self, steps: Sequence[_Step]) -> list[tuple[ET.Element, ET.Element, _Step]] | None:
        """(parent, element, step) along ``steps`` from this model's element, or None."""
        el = self._node()
        chain = []
        for step in steps:
            if el is None:
                return None
            child = next((c for c in el if step.matches(c)), None)
            if child is None:
                return None
            chain.append((el, child, step))
            el = child
        return chain

    # output --------------------------------------------------------------------

    def to_xml(self, pretty: bool = False) -> str:
        """The element as XML text (``pretty``: a copy indented by two spaces)."""
        el = self.element
        if pretty:
            el = copy.deepcopy(el)
            ET.indent(el, "  ")
            el.tail = None
        return serialize(el)

    def __repr__(self) -> str:
        el = self._node()
        return f"<{type(self).__name__} {'(absent)' if el is None else el.tag}>"


# ---------------------------------------------------------------------------
# properties
# ---------------------------------------------------------------------------


class Prop(Generic[T]):
    """One fact at one path. Subclasses convert between text and values."""

    def __init__(self, xpath: str, doc: str = "") -> None:
        self.xpath = xpath
        self.path = _parse_path(xpath)
        self.__doc__ = doc or xpath
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    # conversions
    def decode(self, obj: XMLModel, raw: str, el: ET.Element) -> T | None:
        raise NotImplementedError

    def encode(self, obj: XMLModel, value: T, el: ET.Element) -> str:
        return str(value)

    # access
    def raw(self, obj: XMLModel) -> str | None:
        """The text as it is in the document (None when absent)."""
        el = _find(obj._node(), self.path.steps)
        if el is None:
            return None
        if self.path.attr is not None:
            return el.get(self.path.attr)
        return el.text or ""

    @overload
    def __get__(self, obj: None, owner: type) -> Prop[T]: ...
    @overload
    def __get__(self, obj: XMLModel, owner: type) -> T | None: ...

    def __get__(self, obj: XMLModel | None, owner: type) -> Any:
        if obj is None:
            return self
        el = _find(obj._node(), self.path.steps)
        if el is None:
            return None
        if self.path.attr is not None:
            raw = el.get(self.path.attr)
            return None if raw is None else self.decode(obj, raw, el)
        return self.decode(obj, el.text or "", el)

    def __set__(self, obj: XMLModel, value: T | None) -> None:
        if value is None:
            self._remove(obj)
            return
        el = obj._ensure(obj.element, self.path.steps)
        text = self.encode(obj, value, el)
        if self.path.attr is not None:
            el.set(self.path.attr, text)
        else:
            for sub in list(el):
                el.remove(sub)
            el.text = text
            self._drop_namesakes(obj, el)

    def _drop_namesakes(self, obj: XMLModel, el: ET.Element) -> None:
        """A text fact is one element: duplicates of it go."""
        if not self.path.steps:
            return
        parent = _find(obj._node(), self.path.steps[:-1])
        if parent is None:
            return
        for other in [c for c in parent if c is not el and self.path.steps[-1].matches(c)]:
            remove_child(parent, other)

    def _remove(self, obj: XMLModel) -> None:
        steps = self.path.steps
        if self.path.attr is not None:
            chain = obj._chain(steps)
            if chain is None:
                return
            target = chain[-1][1] if chain else obj._node()
            if target is None:
                return
            target.attrib.pop(self.path.attr, None)
            obj._prune(chain)
            return
        if not steps:  # the model's own text
            el = obj._node()
            if el is not None:
                el.text = None
            return
        chain = obj._chain(steps[:-1])
        if chain is None:
            return
        parent = chain[-1][1] if chain else obj._node()
        if parent is None:
            return
        for el in [c for c in parent if steps[-1].matches(c)]:
            remove_child(parent, el)
        obj._prune(chain)


class Str(Prop[str]):
    """Text. ``strip``: leading/trailing whitespace is not part of the value
    (names, paths); titles and descriptions keep it."""

    def __init__(self, xpath: str, doc: str = "", *, strip: bool = True) -> None:
        super().__init__(xpath, doc)
        self.strip = strip

    def decode(self, obj: XMLModel, raw: str, el: ET.Element) -> str | None:
        return raw.strip() if self.strip and self.path.attr is None else raw


class Int(Prop[int]):
    """An integer (decimal or 0x-hex). Unparsable text reads as None, unless
    ``strict`` -- then it is the model's error, with ``strict`` as the message
    (``{raw}`` is the text)."""

    def __init__(self, xpath: str, doc: str = "", *, strict: str | None = None) -> None:
        super().__init__(xpath, doc)
        self.strict = strict

    def decode(self, obj: XMLModel, raw: str, el: ET.Element) -> int | None:
        n = parse_int(raw)
        if n is None and self.strict:
            raise obj.ERROR(self.strict.format(raw=raw.strip()))
        return n

    def encode(self, obj: XMLModel, value: int, el: ET.Element) -> str:
        return str(int(value))


class YesNo(Prop[bool]):
    """A boolean written yes/no (read: any of libvirt's words, see :func:`yes`)."""

    words = ("yes", "no")

    def decode(self, obj: XMLModel, raw: str, el: ET.Element) -> bool | None:
        return yes(raw)

    def encode(self, obj: XMLModel, value: bool, el: ET.Element) -> str:
        return self.words[0] if value else self.words[1]


class OnOff(YesNo):
    """A boolean written on/off."""

    words = ("on", "off")


class Flag(Prop[bool]):
    """An element that is there (True) or not (False), like ``<readonly/>``."""

    def __init__(self, xpath: str, doc: str = "") -> None:
        super().__init__(xpath, doc)
        if self.path.attr is not None or not self.path.steps:
            raise ValueError(f"a Flag is an element path, not {xpath!r}")

    def __get__(self, obj: XMLModel | None, owner: type) -> Any:
        if obj is None:
            return self
        return _find(obj._node(), self.path.steps) is not None

    def __set__(self, obj: XMLModel, value: bool | None) -> None:
        if value:
            obj._ensure(obj.element, self.path.steps)
        else:
            self._remove(obj)


class Size(Prop[int]):
    """A scaled integer with a ``unit`` attribute, as a count of ``base`` units
    (rounded up, like libvirt). Missing unit: ``default_unit``. Written in the
    first of ``units`` that holds the value exactly."""

    def __init__(self, xpath: str, doc: str = "", *, base: str = "bytes", default_unit: str | None = None,
                 units: Sequence[str] = ("bytes",), what: str = "size") -> None:
        super().__init__(xpath, doc)
        if self.path.attr is not None:
            raise ValueError(f"a Size is an element path, not {xpath!r}")
        self.base = base
        self.default_unit = default_unit or base
        self.units = tuple(units)
        self.what = what

    def decode(self, obj: XMLModel, raw: str, el: ET.Element) -> int | None:
        try:
            n = to_bytes(raw, el.get("unit"), default_unit=self.default_unit, what=self.what)
        except XMLError as e:
            tag = self.path.steps[-1].tag if self.path.steps else el.tag
            raise obj.ERROR(f"<{tag}>: {e}") from None
        factor = unit_factor(self.base)
        return -(-n // factor)

    def __set__(self, obj: XMLModel, value: int | None) -> None:
        if value is None:
            self._remove(obj)
            return
        total = int(value) * unit_factor(self.base)
        unit = next((u for u in self.units if total % unit_factor(u) == 0), "bytes")
        el = obj._ensure(obj.element, self.path.steps)
        el.text = str(total // unit_factor(unit))
        el.set("unit", unit)


# ---------------------------------------------------------------------------
# nested models
# ---------------------------------------------------------------------------


class _Nested(Generic[M]):
    def __init__(self, cls: type[M], xpath: str | None = None) -> None:
        self.cls = cls
        self.path = _parse_path(xpath or cls.TAG)
        if self.path.attr is not None or not self.path.steps:
            raise ValueError(f"nested models need an element path, not {xpath!r}")


class Child(_Nested[M]):
    """One nested model at ``xpath`` (default: its TAG), made when something in it is written."""

    @overload
    def __get__(self, obj: None, owner: type) -> Child[M]: ...
    @overload
    def __get__(self, obj: XMLModel, owner: type) -> M: ...

    def __get__(self, obj: XMLModel | None, owner: type) -> Any:
        if obj is None:
            return self
        return self.cls._bound(obj, self.path.steps)

    def __set__(self, obj: XMLModel, value: M | None) -> None:
        """Replace the element (None: remove it)."""
        chain = obj._chain(self.path.steps)
        parent = obj._ensure(obj.element, self.path.steps[:-1]) if value is not None else (
            chain[-1][0] if chain else None)
        if chain:
            old = chain[-1][1]
            if value is not None:
                idx = list(parent).index(old)
                remove_child(parent, old)
                insert_child(parent, idx, value.element, obj._document())
            else:
                remove_child(parent, old)
                obj._prune(chain[:-1])
        elif value is not None:
            assert parent is not None
            step = self.path.steps[-1]
            insert_child(parent, ordered_index(parent, step.tag, obj.ORDER.get(parent.tag)), value.element,
                         obj._document())
        if value is not None:
            value._doc = obj._document()


class Children(_Nested[M]):
    """The list of nested models at ``xpath`` (default: their TAG; the last step names the items)."""

    @overload
    def __get__(self, obj: None, owner: type) -> Children[M]: ...
    @overload
    def __get__(self, obj: XMLModel, owner: type) -> ChildList[M]: ...

    def __get__(self, obj: XMLModel | None, owner: type) -> Any:
        if obj is None:
            return self
        return ChildList(obj, self)


class ChildList(Generic[M]):
    """A live view of the matching child elements, as models."""

    __slots__ = ("_owner", "_spec")

    def __init__(self, owner: XMLModel, spec: Children[M]) -> None:
        self._owner = owner
        self._spec = spec

    def _container(self, create: bool = False) -> ET.Element | None:
        steps = self._spec.path.steps[:-1]
        if create:
            return self._owner._ensure(self._owner.element, steps)
        return _find(self._owner._node(), steps)

    def _elements(self) -> list[ET.Element]:
        return _find_all(self._owner._node(), self._spec.path.steps)

    def _wrap(self, el: ET.Element) -> M:
        return self._spec.cls(el, doc=self._owner._document())

    def __iter__(self) -> Iterator[M]:
        return iter([self._wrap(el) for el in self._elements()])

    def __len__(self) -> int:
        return len(self._elements())

    def __bool__(self) -> bool:
        return bool(self._elements())

    def __getitem__(self, index: int) -> M:
        return self._wrap(self._elements()[index])

    def add(self, item: M | None = None, *, append: bool = False) -> M:
        """Put ``item`` (a new empty one when None) into the document: after the
        last item, else at libvirt's place for it; ``append``: at the very end of
        the parent. Returns the item, now part of the document."""
        item = item if item is not None else self._spec.cls()
        el = item.element
        step = self._spec.path.steps[-1]
        for k, v in step.preds:
            el.set(k, v)
        parent = self._container(create=True)
        assert parent is not None
        pos = len(parent) if append else ordered_index(parent, step.tag, self._owner.ORDER.get(parent.tag))
        insert_child(parent, pos, el, self._owner._document())
        item._doc = self._owner._document()
        item._parent = None
        return item

    def remove(self, item: M) -> None:
        """Take ``item`` out of the document (it stays usable, standalone)."""
        el = item._node()
        parent = self._container()
        if el is None or parent is None or not any(c is el for c in parent):
            raise ValueError(f"{item!r} is not in this list")
        remove_child(parent, el)
        el.tail = None
        item._doc = el

    def clear(self) -> None:
        for item in list(self):
            self.remove(item)

    def find(self, **attrs: Any) -> M | None:
        """The first item whose properties have the given values."""
        for item in self:
            if all(getattr(item, k) == v for k, v in attrs.items()):
                return item
        return None
