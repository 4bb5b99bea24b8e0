"""The VM spec as YAML: its schema, loading with the line of every problem,
and saving. The rules a spec must follow are :mod:`.validation`'s.

``load_spec(text_or_path)`` reads a YAML spec (documented in docs/vm-spec.md),
checks it against :data:`SPEC_SCHEMA` and the host-independent rules of
:func:`~.validation.validate_spec`, and returns a :class:`VmSpec`; every
problem is a :class:`SpecIssue` with the field path (``disks[0].size``) and
the YAML line, raised together as one :class:`SpecError`. ``dump_spec(spec)``
writes YAML that loads back to an equal spec.

Nothing here talks to libvirt or imports Textual.
"""

from __future__ import annotations

import os
import re
import reprlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import jsonschema
import yaml

from ..files import safeyaml, userfile
from ..files.yamlout import dump_block
from ..sizes import format_memory, format_size, parse_size
from .validation import CACHE_MODES, FieldError, clip, validate_spec
from .vmspec import SEED_BUSES, DiskSpec, InstallSource, NicSpec, VmSpec

MIB = 1024 ** 2
SPEC_VERSION = 1

_SIZE = {"anyOf": [{"type": "integer", "minimum": 0}, {"type": "string", "minLength": 1}]}
_OPT_STR = {"type": ["string", "null"]}
_OPT_COUNT = {"type": ["integer", "null"], "minimum": 1}

#: JSON schema of the YAML form (sizes may be "20G" strings or integers:
#: bytes for disks, MiB for memory).
SPEC_SCHEMA: dict = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "vmtui VM spec",
    "type": "object",
    "additionalProperties": False,
    "required": ["name"],
    "properties": {
        "version": {"type": "integer", "enum": [SPEC_VERSION]},
        "name": {"type": "string"},
        "title": {"type": "string"},
        "description": {"type": "string"},
        "os": {"type": "string", "minLength": 1},
        "arch": {"type": "string", "minLength": 1},
        "virt_type": {"enum": ["kvm", "qemu"]},
        "machine": {"enum": ["pc", "q35"]},
        "firmware": {"enum": ["bios", "uefi"]},
        "secure_boot": {"type": "boolean"},
        "memory": _SIZE,
        "max_memory": {"anyOf": [_SIZE, {"type": "null"}]},
        "vcpus": {"type": "integer", "minimum": 1},
        "cpu_mode": {"enum": ["host-passthrough", "host-model", "custom"]},
        "cpu_model": _OPT_STR,
        "sockets": _OPT_COUNT,
        "cores": _OPT_COUNT,
        "threads": _OPT_COUNT,
        "install": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "kind": {"enum": ["iso", "cdrom", "url", "import", "pxe", "cloud", "none"]},
                "iso": _OPT_STR,
                "cdrom": _OPT_STR,
                "url": _OPT_STR,
                "kernel_args": {"type": ["string", "null"]},
                "image": _OPT_STR,
                "network": _OPT_STR,
                "cloud_init": {
                    "type": ["object", "null"],
                    "additionalProperties": False,
                    "required": ["user_data"],
                    "properties": {
                        "user_data": {"type": "string"},
                        "meta_data": {"type": ["string", "null"]},
                        "network_config": {"type": ["string", "null"]},
                        "detach_after_first_boot": {"type": "boolean"},
                        "seed_bus": {"enum": list(SEED_BUSES)},
                    },
                },
                "kickstart": {"anyOf": [
                    {"type": ["string", "null"]},
                    {"type": "object", "additionalProperties": False,
                     "properties": {"text": {"type": "string"}, "file": {"type": "string", "minLength": 1},
                                    "version": {"type": "string", "minLength": 1},
                                    "delivery": {"enum": ["oemdrv", "initrd"]}}},
                ]},
                "kickstart_file": {"type": ["string", "null"]},
            },
        },
        "disks": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "mode": {"enum": ["new", "existing"]},
                    "pool": {"type": "string", "minLength": 1},
                    "name": _OPT_STR,
                    "size": _SIZE,
                    "format": {"enum": ["qcow2", "raw"]},
                    "provisioning": {"enum": ["thin", "thick"]},
                    "path": _OPT_STR,
                    "backing": _OPT_STR,
                    "bus": {"enum": ["virtio", "sata", "scsi", "ide"]},
                    "cache": {"enum": [*CACHE_MODES, None]},
                    "readonly": {"type": "boolean"},
                },
            },
        },
        "nics": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "kind": {"enum": ["network", "bridge", "macvtap"]},
                    "source": {"type": "string"},
                    "mode": {"enum": ["bridge", "vepa", "private", "passthrough"]},
                    "mac": _OPT_STR,
                    "model": {"type": "string", "minLength": 1},
                },
            },
        },
        "cdrom_bus": {"enum": ["sata", "ide", "scsi"]},
        "graphics": {"enum": ["vnc", "spice", "none"]},
        "graphics_listen": {"type": "string"},
        "tablet": {"type": "boolean"},
        "serial_console": {"type": "boolean"},
        "guest_agent": {"type": "boolean"},
        "autostart": {"type": "boolean"},
        "start_install": {"type": "boolean"},
    },
}


# ---------------------------------------------------------------------------
# problems
# ---------------------------------------------------------------------------


@dataclass
class SpecIssue:
    """A problem in a YAML spec, with the line it is on (1-based; None if unknown)."""

    path: str
    message: str
    line: int | None = None
    severity: str = "error"
    source: str | None = None  # another file than the spec (a kickstart file)

    def format(self, source: str | None = None) -> str:
        where = self.source or source or "<spec>"
        if self.line is not None:
            where += f":{self.line}"
        head = f"{where}: " + ("" if self.severity == "error" else "warning: ")
        return head + (f"{self.path}: {self.message}" if self.path else self.message)


class SpecError(ValueError):
    """A spec that cannot be used. ``errors`` lists every problem found;
    ``path``/``message``/``line`` are those of the first one."""

    def __init__(self, path: str, message: str, line: int | None = None, *,
                 source: str | None = None, errors: Iterable[SpecIssue] | None = None) -> None:
        self.errors = list(errors) if errors is not None else [SpecIssue(path, message, line)]
        first = self.errors[0] if self.errors else SpecIssue(path, message, line)
        self.path, self.message, self.line = first.path, first.message, first.line
        self.source = source
        super().__init__(self.text())

    def text(self) -> str:
        return "\n".join(e.format(self.source) for e in self.errors)


# ---------------------------------------------------------------------------
# paths and lines
# ---------------------------------------------------------------------------


def format_path(parts: Iterable[Any]) -> str:
    out = ""
    for p in parts:
        if isinstance(p, int):
            out += f"[{p}]"
        else:
            out += ("." if out else "") + str(p)
    return out


_PATH_TOKEN = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def parse_path(path: str) -> tuple:
    return tuple(int(m.group(2)) if m.group(2) is not None else m.group(1)
                 for m in _PATH_TOKEN.finditer(path or ""))


class LineMap:
    """YAML line (1-based) of each field path, from the composed node tree."""

    def __init__(self, root: yaml.Node | None) -> None:
        self.lines: dict[tuple, int] = {}
        self.key_lines: dict[tuple, int] = {}
        self.duplicates: list[tuple[tuple, int]] = []
        if root is not None:
            self._walk(root, ())

    def _walk(self, node: yaml.Node, path: tuple) -> None:
        self.lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            seen = set()
            for key, value in node.value:
                k = key.value if isinstance(key, yaml.ScalarNode) else str(key.value)
                sub = path + (k,)
                if k in seen:
                    self.duplicates.append((sub, key.start_mark.line + 1))
                seen.add(k)
                self.key_lines[sub] = key.start_mark.line + 1
                self.lines[sub] = value.start_mark.line + 1
                self._walk(value, sub)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                self._walk(item, path + (i,))

    def line(self, path: tuple | str, key: bool = False) -> int | None:
        parts = parse_path(path) if isinstance(path, str) else tuple(path)
        while True:
            found = (self.key_lines.get(parts) if key else None) or self.lines.get(parts)
            if found is not None or not parts:
                return found
            parts = parts[:-1]


# ---------------------------------------------------------------------------
# loading
# ---------------------------------------------------------------------------


class _Loader(safeyaml.SafeLoader):
    """SafeLoader without YAML 1.1's base-60 numbers: ``mac: 52:54:00:12:34:56``
    and ``12:30`` stay strings (as in YAML 1.2) instead of becoming integers.
    With safeyaml's limits (alias bombs, nesting, huge numbers)."""


_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in (_INT, _FLOAT)]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    _INT, re.compile(r"^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+)$"),
    list("-+0123456789"))
_Loader.add_implicit_resolver(
    _FLOAT, re.compile(r"^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9_]+(?:[eE][-+][0-9]+)?"
                       r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"),
    list("-+0123456789."))


_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = 60
_REPR.maxlist = _REPR.maxdict = _REPR.maxset = 4
_REPR.maxlevel = 2


def _shown(value: Any) -> str:
    """A value in a message: short, whatever its size."""
    return _REPR.repr(value)


def _describe_type(types: Any) -> str:
    names = {"string": "a string", "integer": "a whole number", "boolean": "true or false",
             "object": "a mapping", "array": "a list", "null": "empty", "number": "a number"}
    if isinstance(types, str):
        types = [types]
    return " or ".join(names.get(t, t) for t in types)


def _schema_issue(err: jsonschema.ValidationError, lines: LineMap) -> SpecIssue:
    path = tuple(err.absolute_path)
    kind = err.validator
    if kind == "additionalProperties":
        allowed = set(err.schema.get("properties", {}))
        extra = [k for k in err.instance if k not in allowed] if isinstance(err.instance, dict) else []
        key = extra[0] if extra else "?"
        sub = path + (key,)
        close = _closest(str(key), allowed)
        hint = f" (did you mean '{close}'?)" if close else ""
        return SpecIssue(format_path(sub), f"unknown key '{key}'{hint}", lines.line(sub, key=True))
    if kind == "required":
        missing = err.message.split("'")[1] if "'" in err.message else err.message
        return SpecIssue(format_path(path + (missing,)), "missing (required)", lines.line(path))
    if kind == "enum":
        choices = ", ".join(str(c) for c in err.validator_value if c is not None)
        msg = f"must be one of: {choices} (not {_shown(err.instance)})"
    elif kind == "type":
        msg = f"must be {_describe_type(err.validator_value)}, not {_shown(err.instance)}"
    elif kind == "anyOf" and path[-1:] == ("kickstart",):
        msg = ("must be the kickstart text, or a mapping of text (or file), version (e.g. RHEL9) and "
               "delivery (oemdrv or initrd)")
    elif kind == "anyOf":
        msg = f"must be a size such as 20G or 512M, or a whole number, not {_shown(err.instance)}"
    elif kind == "minimum":
        msg = f"must be at least {err.validator_value}, not {_shown(err.instance)}"
    elif kind == "minLength":
        msg = "must not be empty"
    else:
        msg = clip(err.message)
    return SpecIssue(format_path(path), msg, lines.line(path))


def _closest(word: str, choices: Iterable[str]) -> str | None:
    import difflib

    found = difflib.get_close_matches(word, sorted(choices), n=1, cutoff=0.7)
    return found[0] if found else None


def _mib_from(value: Any, what: str) -> int:
    """Memory: an int is MiB, a string a size ("2G", "2048M", "2048" = MiB)."""
    if isinstance(value, bool):
        raise ValueError(f"{what} must be a size such as 2G or 2048M")
    if isinstance(value, int):
        return value
    n = parse_size(str(value), default_unit="M")
    if n % MIB:
        raise ValueError(f"{value!r} is not a whole number of MiB")
    return n // MIB


def _bytes_from(value: Any) -> int:
    """Disk sizes: an int is bytes, a string a size ("20G"; no unit = bytes)."""
    if isinstance(value, bool):
        raise ValueError("must be a size such as 20G")
    if isinstance(value, int):
        return value
    return parse_size(str(value))


@dataclass
class SpecDocument:
    """A parsed spec with the line of each field (for messages)."""

    spec: VmSpec
    lines: LineMap
    source: str | None = None
    data: dict = field(default_factory=dict)
    #: where the kickstart text is: (its file, 0) or (None, YAML line before its first line)
    kickstart_origin: tuple[str | None, int] | None = None
    #: field -> YAML line before the first line of its text, for texts written
    #: as literal blocks (``user_data: |``), whose lines map one to one
    text_origins: dict[str, int] = field(default_factory=dict)

    def issue(self, fe: FieldError) -> SpecIssue:
        if fe.line and fe.field == "install.kickstart" and self.kickstart_origin is not None:
            ks_file, offset = self.kickstart_origin
            message = re.sub(r"^line \d+: ", "", fe.message)
            if ks_file:
                return SpecIssue(fe.field, message, fe.line, fe.severity, source=ks_file)
            return SpecIssue(fe.field, message, offset + fe.line, fe.severity)
        if fe.line and fe.field in self.text_origins:
            # "user-data line 4, column 13: users.0.passwd: ..." -> the spec's line, "user-data: users.0..."
            message = re.sub(r"^(\S+) line \d+(?:, column \d+)?: ", r"\1: ", fe.message)
            return SpecIssue(fe.field, message, self.text_origins[fe.field] + fe.line, fe.severity)
        return SpecIssue(fe.field, fe.message, self.lines.line(fe.field), fe.severity)

    def issues(self, errors: Iterable[FieldError]) -> list[SpecIssue]:
        return [self.issue(fe) for fe in errors]


def _read(text_or_path: str | os.PathLike, is_text: bool = False) -> tuple[str, str | None]:
    if isinstance(text_or_path, os.PathLike):
        p = Path(text_or_path)
        try:
            return userfile.read_text(p, userfile.MAX_SPEC), str(p)
        except userfile.UserFileError as err:
            raise SpecError("", f"cannot read the spec: {err.reason}", err.line, source=str(p)) from None
    text = str(text_or_path)
    if not is_text and "\n" not in text and len(text) < 4096 and os.path.isfile(text):
        return _read(Path(text))
    return text, None


def parse_spec(text_or_path: str | os.PathLike, *, source: str | None = None, is_text: bool = False) -> SpecDocument:
    """Parse and schema-check a YAML spec (no semantic checks); raises SpecError.
    A ``str`` that names a file is read from it, unless ``is_text``."""
    text, src = _read(text_or_path, is_text)
    source = source or src
    if len(text) > userfile.MAX_SPEC:
        raise SpecError("", f"the spec is too large (more than {userfile.format_bytes(userfile.MAX_SPEC)})",
                        source=source)
    try:
        data, root = safeyaml.load_with_nodes(text, Loader=_Loader)
    except safeyaml.LimitError as err:
        raise SpecError(format_path(err.path), err.problem, err.problem_mark.line + 1, source=source) from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None) or getattr(err, "context_mark", None)
        problem = getattr(err, "problem", None) or str(err)
        raise SpecError("", f"not valid YAML: {problem}", mark.line + 1 if mark else None,
                        source=source) from None
    lines = LineMap(root)
    if data is None:
        raise SpecError("", "the spec is empty", 1, source=source)
    if not isinstance(data, dict):
        raise SpecError("", f"the spec must be a mapping of keys (name: ..., memory: ...), "
                            f"not {type(data).__name__}", 1, source=source)
    issues = [SpecIssue(format_path(p), "duplicate key (the last one would win)", line)
              for p, line in lines.duplicates]
    validator = jsonschema.Draft202012Validator(SPEC_SCHEMA)
    for err in sorted(validator.iter_errors(data), key=lambda e: (lines.line(tuple(e.absolute_path)) or 0,
                                                                   list(map(str, e.absolute_path)))):
        issues.append(_schema_issue(err, lines))
    if issues:
        raise SpecError("", "", errors=issues, source=source)
    spec, conv = _to_spec(data, lines)
    origin = _read_kickstart(spec, data, root, lines, source, conv)
    if conv:
        raise SpecError("", "", errors=conv, source=source)
    texts = {}
    for key in ("user_data", "meta_data", "network_config"):
        node = _node_at(root, ("install", "cloud_init", key))
        if isinstance(node, yaml.ScalarNode) and node.style == "|":
            texts[f"install.cloud_init.{key}"] = node.start_mark.line + 1
    return SpecDocument(spec, lines, source, data, kickstart_origin=origin, text_origins=texts)


def _node_at(root: yaml.Node | None, path: tuple) -> yaml.Node | None:
    node = root
    for key in path:
        if not isinstance(node, yaml.MappingNode):
            return None
        node = next((v for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value == key), None)
    return node


def _read_kickstart(spec: VmSpec, data: dict, root: yaml.Node | None, lines: LineMap, source: str | None,
                    issues: list[SpecIssue]) -> tuple[str | None, int] | None:
    """Fill ``spec.install.kickstart`` from ``install.kickstart`` (text, or a
    mapping with ``text``/``file``, ``version``, ``delivery``) or
    ``install.kickstart_file``; return where its lines are. Relative files
    are relative to the spec file's directory."""
    from ..provision.kickstart import delivery_for, version_for_os

    inst = data.get("install") or {}
    ks = inst.get("kickstart")
    ks_file = inst.get("kickstart_file")
    if ks is None and not ks_file:
        spec.install.kickstart = None
        return None
    opts = ks if isinstance(ks, dict) else {}
    text_path: tuple = ("install", "kickstart") if isinstance(ks, str) else ("install", "kickstart", "text")
    file_key: tuple = ("install", "kickstart", "file") if opts.get("file") else ("install", "kickstart_file")
    file_name = opts.get("file") or ks_file
    origin: tuple[str | None, int] | None = None
    text = ks if isinstance(ks, str) else opts.get("text")
    if file_name and text is not None:
        issues.append(SpecIssue(format_path(file_key), "give the kickstart text or a file, not both",
                                lines.line(file_key)))
        return None
    if file_name:
        path = Path(file_name).expanduser()
        if not path.is_absolute() and source and os.path.exists(source):
            path = Path(source).resolve().parent / path
        try:
            text = userfile.read_text(path, userfile.MAX_KICKSTART)
        except userfile.UserFileError as err:
            issues.append(SpecIssue(format_path(file_key), f"cannot read the kickstart file {path}: {err.reason}",
                                    lines.line(file_key)))
            return None
        origin = (str(path), 0)
    elif text is not None:
        node = _node_at(root, text_path)
        start = lines.line(text_path) or 0
        # block scalars (| or >) start on the line after the indicator
        origin = (None, start if node is not None and node.style in ("|", ">") else start - 1)
    else:
        issues.append(SpecIssue(format_path(("install", "kickstart")), "give the kickstart text or a file",
                                lines.line(("install", "kickstart"))))
        return None
    delivery = opts.get("delivery") or delivery_for(spec.install.kind)[0]
    spec.install.kickstart = {"text": text, "version": opts.get("version") or version_for_os(short_id=spec.os),
                              "delivery": delivery}
    return origin


def _to_spec(data: dict, lines: LineMap) -> tuple[VmSpec, list[SpecIssue]]:
    issues: list[SpecIssue] = []

    def convert(path: tuple, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except ValueError as err:
            issues.append(SpecIssue(format_path(path), clip(str(err)), lines.line(path)))
            return None

    spec = VmSpec(name=data["name"])
    simple = ("title", "description", "os", "arch", "virt_type", "machine", "firmware", "secure_boot",
              "vcpus", "cpu_mode", "cpu_model", "sockets", "cores", "threads", "cdrom_bus", "graphics",
              "graphics_listen", "tablet", "serial_console", "guest_agent", "autostart", "start_install")
    for key in simple:
        if key in data:
            setattr(spec, key, data[key])
    if "cpu_mode" not in data and spec.virt_type == "qemu":
        spec.cpu_mode = "host-model"  # QEMU (TCG) cannot pass the host CPU through
    if "memory" in data:
        mib = convert(("memory",), lambda: _mib_from(data["memory"], "memory"))
        if mib is not None:
            spec.memory_mib = mib
    if data.get("max_memory") is not None:
        spec.max_memory_mib = convert(("max_memory",), lambda: _mib_from(data["max_memory"], "max_memory"))
    inst = data.get("install") or {}
    spec.install = InstallSource(**{k: v for k, v in inst.items()
                                    if (v is not None or k == "cloud_init") and k not in ("kickstart", "kickstart_file")})
    if spec.install.kernel_args is None:
        spec.install.kernel_args = ""
    if "disks" in data:
        disks = []
        for i, d in enumerate(data["disks"] or []):
            d = dict(d)
            if "size" in d:
                size = convert(("disks", i, "size"), lambda v=d["size"]: _bytes_from(v))
                d["size"] = size if size is not None else DiskSpec().size
            if d.get("cache") is None:
                d.pop("cache", None)
            disks.append(DiskSpec(**d))
        spec.disks = disks
    if "nics" in data:
        spec.nics = [NicSpec(**n) for n in (data["nics"] or [])]
    return spec, issues


def load_spec(text_or_path: str | os.PathLike, *, source: str | None = None) -> VmSpec:
    """Read a YAML spec (text, or a path to a file) into a VmSpec.

    Raises :class:`SpecError` listing every schema error and every
    host-independent error of :func:`validate_spec`, with line numbers.
    Warnings do not raise.
    """
    doc = parse_spec(text_or_path, source=source)
    errors = [e for e in validate_spec(doc.spec) if e.is_error]
    if errors:
        raise SpecError("", "", errors=doc.issues(errors), source=doc.source)
    return doc.spec


# ---------------------------------------------------------------------------
# saving
# ---------------------------------------------------------------------------


def spec_to_dict(spec: VmSpec) -> dict:
    """The YAML form of a spec (defaults written out, empty values left out)."""
    out: dict[str, Any] = {"version": SPEC_VERSION, "name": spec.name}
    if spec.title:
        out["title"] = spec.title
    if spec.description:
        out["description"] = spec.description
    out.update(os=spec.os, arch=spec.arch, virt_type=spec.virt_type, machine=spec.machine,
               firmware=spec.firmware)
    if spec.secure_boot:
        out["secure_boot"] = True
    out["memory"] = format_memory(spec.memory_mib)
    if spec.max_memory_mib and spec.max_memory_mib != spec.memory_mib:
        out["max_memory"] = format_memory(spec.max_memory_mib)
    out["vcpus"] = spec.vcpus
    out["cpu_mode"] = spec.cpu_mode
    for key in ("cpu_model", "sockets", "cores", "threads"):
        if getattr(spec, key) is not None:
            out[key] = getattr(spec, key)
    src = spec.install
    inst: dict[str, Any] = {"kind": src.kind}
    for key in ("iso", "cdrom", "url", "kernel_args", "image", "network", "cloud_init"):
        value = getattr(src, key)
        if value:
            inst[key] = value
    if src.kickstart:
        ks = src.kickstart
        inst["kickstart"] = {k: ks[k] for k in ("version", "delivery", "text") if ks.get(k) is not None}
    out["install"] = inst
    disks = []
    for d in spec.disks:
        dd: dict[str, Any] = {"mode": d.mode}
        if d.mode == "new":
            dd["pool"] = d.pool
            if d.name:
                dd["name"] = d.name
            dd["size"] = format_size(d.size)
            dd["format"] = d.format
            dd["provisioning"] = d.provisioning
            if d.backing:
                dd["backing"] = d.backing
        else:
            dd["path"] = d.path
            dd["format"] = d.format
        dd["bus"] = d.bus
        if d.cache:
            dd["cache"] = d.cache
        if d.readonly:
            dd["readonly"] = True
        disks.append(dd)
    out["disks"] = disks
    nics = []
    for n in spec.nics:
        nd: dict[str, Any] = {"kind": n.kind, "source": n.source}
        if n.kind == "macvtap":
            nd["mode"] = n.mode
        if n.mac:
            nd["mac"] = n.mac
        nd["model"] = n.model
        nics.append(nd)
    out["nics"] = nics
    out.update(cdrom_bus=spec.cdrom_bus, graphics=spec.graphics, graphics_listen=spec.graphics_listen,
               tablet=spec.tablet, serial_console=spec.serial_console, guest_agent=spec.guest_agent,
               autostart=spec.autostart,
               start_install=spec.start_install)
    return out


def dump_spec(spec: VmSpec) -> str:
    """YAML text for ``spec``; ``load_spec(dump_spec(s))`` gives an equal spec."""
    return dump_block(spec_to_dict(spec), width=100)


__all__ = [
    "SPEC_SCHEMA", "SpecIssue", "SpecError", "SpecDocument", "LineMap", "load_spec", "parse_spec", "dump_spec",
    "spec_to_dict", "format_path",
]
