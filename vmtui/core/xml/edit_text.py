"""A domain's persistent XML edited as text, like ``virsh edit``.

* :func:`check_edit` -- before libvirt hears of it: the text must be
  well-formed ``<domain>`` XML with the same name and UUID (an edit that
  changed them would define a second VM, or fail against the first); the
  unified diff of what changed.
* :func:`define_edited_xml` -- define it with ``VIR_DOMAIN_DEFINE_VALIDATE``
  (libvirt checks it against its schema; without the flag libvirt silently
  drops elements it does not know), or a plain define where the driver has
  no such flag. A refusal is an :class:`XmlEditError` naming the line
  libvirt's message points at. Defining is all or nothing: when it fails,
  nothing changed.
* :func:`error_line` -- that line: the one libvirt names, else the changed
  line holding what its message quotes, else the first changed line.

Blocking; the UI runs :func:`define_edited_xml` through ``service.call``.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from xml.parsers import expat

import libvirt

from ..errors import VmtuiError, failure, libvirt_message, lookup_domain

ACTION = "define"


class XmlEditError(VmtuiError):
    """The edited XML was refused (by vmtui's checks or by libvirt).

    ``line`` (1-based, in the edited text) is where the problem is, or None;
    ``line_text`` that line, stripped; ``how`` says how the line was found:
    "named" (by the parser or libvirt), "quoted" (the changed line holding
    what libvirt's message quotes), "changed" (the first changed line)."""

    def __init__(self, action: str, obj: str, cause: str, *, line: int | None = None,
                 line_text: str = "", how: str = "named", code: int | None = None) -> None:
        self.line = line
        self.line_text = line_text
        self.how = how
        super().__init__(action, obj, cause, _where(line, line_text, how), code)


class XmlEditConflict(VmtuiError):
    """The persistent definition changed on the host after the editor opened."""


def _where(line: int | None, text: str, how: str) -> str:
    if line is None:
        return ""
    shown = text if len(text) <= 100 else text[:99] + "…"
    lead = {"named": f"Line {line}", "quoted": f"Line {line}",
            "changed": f"Line {line} (your first change; libvirt names no line)"}[how]
    return f"{lead}: {shown}" if shown else lead


@dataclass(frozen=True, slots=True)
class EditPlan:
    """What an edit would change: the unified diff, empty when nothing did."""

    name: str
    diff: str

    @property
    def changed(self) -> bool:
        return bool(self.diff)


@dataclass(frozen=True, slots=True)
class Defined:
    """An edit libvirt accepted."""

    name: str
    xml: str  # the persistent definition libvirt holds now
    running: bool  # the VM runs: the changes apply at its next boot
    changed: bool = True


@dataclass(slots=True)
class _Facts:
    root: str = ""
    name: str | None = None
    name_line: int = 0
    uuid: str | None = None
    uuid_line: int = 0


def _facts(text: str, obj: str) -> _Facts:
    """The root tag, name and UUID of ``text`` with their lines; XmlEditError
    (with the line) when it is not well-formed XML."""
    facts = _Facts()
    parser = expat.ParserCreate()
    depth = 0
    current: str | None = None
    parts: list[str] = []

    def start(tag: str, attrs: dict) -> None:
        nonlocal depth, current
        depth += 1
        if depth == 1:
            facts.root = tag
        elif depth == 2 and tag in ("name", "uuid") and getattr(facts, tag) is None and current is None:
            current = tag
            parts.clear()
            setattr(facts, f"{tag}_line", parser.CurrentLineNumber)

    def end(tag: str) -> None:
        nonlocal depth, current
        if depth == 2 and current == tag:
            setattr(facts, tag, "".join(parts))
            current = None
        depth -= 1

    def chars(data: str) -> None:
        if current is not None and depth == 2:
            parts.append(data)

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = chars
    if not text.strip():
        raise XmlEditError(ACTION, obj, "the XML is empty")
    try:
        parser.Parse(text, True)
    except expat.ExpatError as err:
        line = err.lineno
        raise XmlEditError(ACTION, obj, f"not well-formed XML: {expat.errors.messages[err.code]} "
                           f"(line {line}, column {err.offset + 1})",
                           line=line, line_text=_line(text, line)) from None
    if facts.root != "domain":
        raise XmlEditError(ACTION, obj, f"the root element is <{facts.root}>, not <domain>",
                           line=1, line_text=_line(text, 1))
    return facts


def _line(text: str, line: int) -> str:
    lines = text.splitlines()
    return lines[line - 1].strip() if 0 < line <= len(lines) else ""


def _uuid_key(value: str) -> str:
    """UUIDs compare as libvirt reads them: hex digits, any dashes and case."""
    return "".join(value.split()).replace("-", "").lower()


def check_edit(original: str, edited: str, obj: str = "") -> EditPlan:
    """Check ``edited`` against ``original`` (the persistent definition it
    was made from) before it goes to libvirt. Raises XmlEditError for text
    that is not well-formed domain XML and for a changed name or UUID."""
    was = _facts(original, obj or "the domain")
    obj = obj or f"domain '{was.name}'"
    now = _facts(edited, obj)
    if now.name is None:
        raise XmlEditError(ACTION, obj, f"the <name> element is gone: put <name>{was.name}</name> back")
    if now.name != was.name:
        raise XmlEditError(
            ACTION, obj,
            f"the name changed from {was.name!r} to {now.name!r}: an edit cannot rename a VM (defining it "
            f"would make a second VM named {now.name!r} next to {was.name!r}). Change it back; renaming is "
            "virsh domrename, on a shut-off VM",
            line=now.name_line, line_text=_line(edited, now.name_line))
    if was.uuid is not None:
        if now.uuid is None:
            raise XmlEditError(
                ACTION, obj, f"the <uuid> element is gone: without it libvirt would give the definition a new "
                f"UUID, which is another VM. Put <uuid>{was.uuid}</uuid> back")
        if _uuid_key(now.uuid) != _uuid_key(was.uuid):
            raise XmlEditError(
                ACTION, obj,
                f"the UUID changed from {was.uuid} to {now.uuid.strip()}: the UUID is what makes this VM this VM "
                "(another UUID is another VM, which libvirt refuses under the same name). Change it back; "
                "to copy a VM, clone it (l on the list)",
                line=now.uuid_line, line_text=_line(edited, now.uuid_line))
    return EditPlan(name=was.name or "", diff=unified_diff(original, edited))


def unified_diff(original: str, edited: str, context: int = 3) -> str:
    """``diff -u`` of the two texts (empty when they are the same)."""
    return "".join(difflib.unified_diff(
        _keep_ends(original), _keep_ends(edited), fromfile="persistent definition", tofile="edited",
        n=context))


def _keep_ends(text: str) -> list[str]:
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    return lines


def changed_lines(original: str, edited: str) -> list[int]:
    """Lines of ``edited`` (1-based) that are new or changed; where only
    lines were removed, the line after them."""
    out: list[int] = []
    matcher = difflib.SequenceMatcher(None, original.splitlines(), edited.splitlines(), autojunk=False)
    for op, _i1, _i2, j1, j2 in matcher.get_opcodes():
        if op in ("replace", "insert"):
            out.extend(range(j1 + 1, j2 + 1))
        elif op == "delete":
            out.append(j1 + 1)
    return out


_NAMED_LINE = re.compile(r"(?:\([^)]*\)|\[[^\]]*\]|\S+\.xml):(\d+):|\bline (\d+)\b", re.IGNORECASE)
_QUOTED = re.compile(r"(?<!\w)'([^'\n]{1,200})'(?!\w)|(?<!\w)\"([^\"\n]{1,200})\"(?!\w)")
_ELEMENT = re.compile(r"\b[Ee]lement <?([A-Za-z_][\w.:-]*)>?|<([A-Za-z_][\w.:-]*)>")


def error_line(message: str, original: str, edited: str) -> tuple[int, str] | None:
    """The line of ``edited`` libvirt's ``message`` points at, and how it was
    found ("named", "quoted", "changed"); None when nothing changed."""
    lines = edited.splitlines()
    m = _NAMED_LINE.search(message)
    if m:
        n = int(m.group(1) or m.group(2))
        if 0 < n <= len(lines):
            return n, "named"
    changed = [n for n in changed_lines(original, edited) if 0 < n <= len(lines)]
    if not changed:
        return None
    quoted = [a or b for a, b in _QUOTED.findall(message)]
    elements = [a or b for a, b in _ELEMENT.findall(message)]
    needles = [q for q in quoted if q.strip()] + [f"<{e}" for e in elements]
    best, score = None, 0
    for n in changed:
        text = lines[n - 1]
        s = sum(1 for needle in needles if needle in text)
        if s > score:
            best, score = n, s
    if best is not None:
        return best, "quoted"
    return changed[0], "changed"


def _unsupported_flag(err: libvirt.libvirtError) -> bool:
    """The driver does not know the validate flag (or defineXMLFlags)."""
    code = err.get_error_code()
    msg = libvirt_message(err).lower()
    return (code == libvirt.VIR_ERR_NO_SUPPORT and "definexmlflags" in msg.replace(" ", "")) or (
        code == libvirt.VIR_ERR_INVALID_ARG and "unsupported flags" in msg)


def define_edited_xml(conn: libvirt.virConnect, uuid: str, edited: str,
                      expected: str | None = None) -> Defined:
    """Blocking: define ``edited`` as the persistent definition of domain
    ``uuid``. ``expected``: the definition the edit started from; when the
    host holds another one now (someone changed it meanwhile),
    XmlEditConflict, and nothing is defined. Raises XmlEditError when the
    edit is refused (see :func:`check_edit`) or libvirt refuses it, with the
    line; nothing changed then."""
    dom, obj = lookup_domain(conn, uuid, ACTION)
    try:
        if not dom.isPersistent():
            raise VmtuiError(ACTION, obj, "it is transient: there is no persistent definition to edit")
        current = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
        running = bool(dom.isActive())
    except libvirt.libvirtError as err:
        raise failure(ACTION, obj, err) from None
    if expected is not None and current != expected:
        raise XmlEditConflict(ACTION, obj, "its definition changed on the host since the editor opened "
                              "(another tool or window)")
    plan = check_edit(current, edited, obj)
    if not plan.changed:
        return Defined(plan.name, current, running, changed=False)
    try:
        try:
            new = conn.defineXMLFlags(edited, libvirt.VIR_DOMAIN_DEFINE_VALIDATE)
        except libvirt.libvirtError as err:
            if not _unsupported_flag(err):
                raise
            new = conn.defineXML(edited)
    except libvirt.libvirtError as err:
        mapped = failure(ACTION, obj, err)
        if not isinstance(mapped, VmtuiError):
            raise mapped from None  # the connection is lost: the service reconnects
        # libvirt's schema errors are one finding a line: keep them so
        cause = "\n".join(" ".join(line.split()) for line in (err.get_error_message() or str(err)).splitlines()
                          if line.strip()) or libvirt_message(err)
        found = error_line(cause, current, edited)
        line, how = found if found else (None, "named")
        raise XmlEditError(ACTION, obj, cause, line=line, line_text=_line(edited, line) if line else "",
                           how=how, code=err.get_error_code()) from None
    try:
        xml = new.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
    except libvirt.libvirtError as err:
        raise failure("read the new definition of", obj, err) from None
    return Defined(plan.name, xml, running)
