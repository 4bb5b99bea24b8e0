"""The VM spec as YAML: schema, load/save, and the validation the wizard and the CLI share.

``load_spec(text_or_path)`` reads a YAML spec (documented in docs/vm-spec.md),
checks it against :data:`SPEC_SCHEMA` and the host-independent rules of
:func:`validate_spec`, and returns a :class:`VmSpec`; every problem is a
:class:`SpecIssue` with the field path (``disks[0].size``) and the YAML line,
raised together as one :class:`SpecError`. ``dump_spec(spec)`` writes YAML
that loads back to an equal spec.

``validate_spec(spec, host=..., existing_names=..., pools=..., networks=...,
check_path=...)`` checks a spec against a host; the wizard calls it on every
step, ``vmtui create`` before creating anything. It returns
:class:`FieldError`\\ s (``severity`` "error" blocks creation, "warning" does
not).

Nothing here talks to libvirt or imports Textual.
"""

from __future__ import annotations

import functools
import ipaddress
import os
import re
import reprlib
import stat
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Collection, Iterable, Mapping
from urllib.parse import urlsplit

import jsonschema
import yaml

from ..files import safeyaml, userfile
from ..sizes import parse_size
from .vmspec import DiskSpec, InstallSource, NicSpec, VmSpec
from ..files.yamlout import dump_block

MIB = 1024 ** 2
GIB = 1024 ** 3
SPEC_VERSION = 1
#: Longest domain name we accept, in UTF-8 bytes (libvirt stores <name>.xml
#: and its NVRAM/log files under it; file names stop at 255 bytes).
MAX_NAME_BYTES = 200
URL_SCHEMES = ("http", "https", "ftp")
CACHE_MODES = ("default", "none", "writethrough", "writeback", "directsync", "unsafe")
MAX_IDE_DEVICES = 4

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
        "autostart": {"type": "boolean"},
        "start_install": {"type": "boolean"},
    },
}


# ---------------------------------------------------------------------------
# problems
# ---------------------------------------------------------------------------


@dataclass
class FieldError:
    """One problem with one field of a spec (``field`` is a path like ``disks[0].size``)."""

    field: str
    message: str
    severity: str = "error"  # "error" blocks creation, "warning" does not
    line: int | None = None  # a line inside the field's text (kickstart), 1-based

    @property
    def is_error(self) -> bool:
        return self.severity == "error"

    def __str__(self) -> str:
        tag = "" if self.is_error else "warning: "
        return f"{tag}{self.field}: {self.message}" if self.field else f"{tag}{self.message}"


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
        msg = _clip(err.message)
    return SpecIssue(format_path(path), msg, lines.line(path))


def _clip(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


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
            issues.append(SpecIssue(format_path(path), _clip(str(err)), lines.line(path)))
            return None

    spec = VmSpec(name=data["name"])
    simple = ("title", "description", "os", "arch", "virt_type", "machine", "firmware", "secure_boot",
              "vcpus", "cpu_mode", "cpu_model", "sockets", "cores", "threads", "cdrom_bus", "graphics",
              "graphics_listen", "tablet", "serial_console", "autostart", "start_install")
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


def format_size(n: int) -> str | int:
    """Bytes as the shortest exact size string: 20G, 512M, 64K, or plain bytes."""
    for unit, factor in (("T", 1024 ** 4), ("G", GIB), ("M", MIB), ("K", 1024)):
        if n and n % factor == 0:
            return f"{n // factor}{unit}"
    return int(n)


def format_memory(mib: int) -> str:
    return f"{mib // 1024}G" if mib and mib % 1024 == 0 else f"{mib}M"


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
               tablet=spec.tablet, serial_console=spec.serial_console, autostart=spec.autostart,
               start_install=spec.start_install)
    return out


def dump_spec(spec: VmSpec) -> str:
    """YAML text for ``spec``; ``load_spec(dump_spec(s))`` gives an equal spec."""
    return dump_block(spec_to_dict(spec), width=100)


# ---------------------------------------------------------------------------
# validation
# ---------------------------------------------------------------------------


@dataclass
class PoolFacts:
    """What validation needs to know about one storage pool."""

    volumes: Collection[str] = ()
    available: int | None = None  # bytes free
    active: bool = True
    path: str | None = None


def _pool_facts(value: Any) -> PoolFacts:
    if isinstance(value, PoolFacts):
        return value
    if isinstance(value, (set, frozenset, list, tuple)):
        return PoolFacts(volumes=value)
    return PoolFacts(volumes=getattr(value, "volumes", ()) or (), available=getattr(value, "available", None),
                     active=getattr(value, "active", True), path=getattr(value, "path", None))


PathChecker = Callable[[str, str], "str | None"]

_SAFE_NAME = re.compile(r"^[A-Za-z0-9._+-]+$")
_MAC = re.compile(r"^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$")


def name_problems(name: str) -> list[FieldError]:
    """libvirt's rules for domain names, plus virt-install's "not only digits".

    libvirt refuses '/' and newlines; '.'/'..' break its state directories;
    control characters, outer spaces and all-digit names (virsh takes them
    for domain IDs) are refused here too. Other characters -- spaces,
    Unicode, XML specials -- are allowed (ElementTree escapes them) but get a
    warning, since shells and virsh need them quoted.
    """
    out: list[FieldError] = []
    if not name or not name.strip():
        return [FieldError("name", "Enter a name for the VM")]
    if "/" in name:
        out.append(FieldError("name", "The name must not contain '/'"))
    if any(unicodedata.category(c) == "Cc" for c in name):
        out.append(FieldError("name", "The name must not contain control characters (newlines, tabs)"))
    if name in (".", ".."):
        out.append(FieldError("name", "The name must not be '.' or '..'"))
    if name != name.strip():
        out.append(FieldError("name", "The name must not start or end with a space"))
    if name.isdigit():
        out.append(FieldError("name", "The name must not be only digits (virsh would take it for an ID)"))
    if len(name.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
        out.append(FieldError("name", f"The name is too long (at most {MAX_NAME_BYTES} bytes)"))
    if not out and not _SAFE_NAME.match(name):
        out.append(FieldError("name", "Allowed, but spaces and special characters need quoting in shells "
                                      "and virsh: letters, digits, '.', '-', '_' are easiest", "warning"))
    return out


def validate_mac(mac: str) -> str | None:
    if not _MAC.match(mac or ""):
        return "Enter a MAC address like 52:54:00:12:34:56"
    if int(mac[:2], 16) & 1:
        return "This is a multicast address: the first byte must be even (e.g. 52:54:00:...)"
    if mac.replace(":", "") == "0" * 12:
        return "00:00:00:00:00:00 is not a usable MAC address"
    return None


def validate_url(url: str) -> str | None:
    if not url or not url.strip():
        return "Enter the URL of the install tree"
    if url != url.strip() or any(c.isspace() for c in url):
        return "The URL must not contain spaces"
    try:
        parts = urlsplit(url)
    except ValueError as err:
        if "[" in url and "]" not in url.split("//", 1)[-1].split("/", 1)[0]:
            return "The URL's host has a '[' without its ']' (an IPv6 address is written http://[::1]/)"
        return f"The URL is not valid: {err}"
    if parts.scheme.lower() not in URL_SCHEMES:
        shown = parts.scheme or "no scheme"
        return f"Unsupported URL ({shown}): use http://, https:// or ftp://"
    try:
        hostname, port = parts.hostname, parts.port
    except ValueError:
        shown = parts.netloc.rsplit(":", 1)[-1] if ":" in parts.netloc else parts.netloc
        return f"The port must be a number from 1 to 65535, not '{_clip(shown, 20)}'"
    if not hostname:
        return "The URL has no host name"
    if port == 0:
        return "The port must be a number from 1 to 65535, not 0"
    if "[" in parts.netloc:
        try:
            ipaddress.IPv6Address(hostname.split("%", 1)[0])
        except ValueError:
            return f"'[{_clip(hostname, 40)}]' is not an IPv6 address"
    return None


def local_path_checker(path: str, kind: str) -> str | None:
    """A ``check_path`` for local hosts: the file must exist (ISOs must be ISO 9660
    images, CD-ROMs block devices)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return f"No such file: {path}"
    except OSError as err:
        return f"Cannot read {path}: {err.strerror or err}"
    if kind == "iso":
        if stat.S_ISDIR(st.st_mode):
            return f"{path} is a directory, not an ISO image"
        if not (stat.S_ISREG(st.st_mode) or stat.S_ISBLK(st.st_mode)):
            return f"{path} is {userfile.describe_mode(st.st_mode)}, not an ISO image"
        from .osinfo import NotAnIsoError, read_iso_ids

        try:
            read_iso_ids(path)
        except NotAnIsoError:
            return f"{path} is not an ISO image (no ISO 9660 volume descriptor)"
        except OSError as err:
            return f"Cannot read {path}: {err.strerror or err}"
    elif kind == "cdrom":
        if not stat.S_ISBLK(st.st_mode):
            return f"{path} is not a CD-ROM device ({userfile.describe_mode(st.st_mode)}, not a block device)"
    else:
        if not (stat.S_ISREG(st.st_mode) or stat.S_ISBLK(st.st_mode)):
            return (f"{path} is not a disk image ({userfile.describe_mode(st.st_mode)}, "
                    "not a file or block device)")
    return None


def _is_volume_ref(text: str | None) -> bool:
    return bool(text) and not text.startswith("/") and "/" in text


def validate_spec(spec: VmSpec, *, host: Any = None, existing_names: Collection[str] = (),
                  pools: Mapping[str, Any] | None = None, networks: Collection[str] | None = None,
                  check_path: PathChecker | None = None, osinfo: Any = None) -> list[FieldError]:
    """Every problem with ``spec``, as FieldErrors keyed by YAML field path.

    ``host``: a :class:`vmtui.core.host.domcaps.HostCaps` or
    :class:`vmtui.core.connection.rows.HostInfo` (``cpus``, ``memory_total_kib``;
    HostCaps adds KVM/UEFI/machine facts). ``existing_names``: domains on the
    host. ``pools``: pool name -> :class:`PoolFacts` (or the volume names).
    ``networks``: virtual network names. ``check_path(path, kind)`` returns
    a message for a bad host path (kind: iso, cdrom, image, disk, backing);
    pass :func:`local_path_checker` when the host is this machine.
    ``osinfo``: the OsInfo of ``spec.os`` for its minimum-resource warnings.
    Anything left None is not checked.
    """
    errs: list[FieldError] = []

    def err(fld: str, msg: str, line: int | None = None) -> None:
        errs.append(FieldError(fld, msg, line=line))

    def warn(fld: str, msg: str) -> None:
        errs.append(FieldError(fld, msg, "warning"))

    pool_facts = {k: _pool_facts(v) for k, v in pools.items()} if pools is not None else None

    def check_ref(fld: str, ref: str, kind: str) -> None:
        if _is_volume_ref(ref):
            pool, vol = ref.split("/", 1)
            if pool_facts is not None:
                facts = pool_facts.get(pool)
                if facts is None:
                    err(fld, f"No storage pool named '{pool}'")
                elif vol not in facts.volumes:
                    err(fld, f"Pool '{pool}' has no volume named '{vol}'")
        elif not ref.startswith("/"):
            err(fld, "Give an absolute path on the host, or pool/volume")
        elif check_path is not None:
            problem = check_path(ref, kind)
            if problem:
                err(fld, problem)

    # --- name, title -------------------------------------------------------
    errs.extend(name_problems(spec.name))
    if spec.name and spec.name in set(existing_names):
        err("name", f"A VM named '{spec.name}' already exists on this host")
    if "\n" in spec.title or "\r" in spec.title:
        err("title", "The title must be a single line (use the description for more)")

    # --- memory, CPUs --------------------------------------------------------
    host_cpus = getattr(host, "cpus", None) if host is not None else None
    host_kib = getattr(host, "memory_total_kib", None) if host is not None else None
    if spec.memory_mib is None or spec.memory_mib < 1:
        err("memory", "Memory must be at least 1 MiB")
    elif host_kib and spec.memory_mib * 1024 > host_kib:
        err("memory", f"{format_memory(spec.memory_mib)} is more than the host's "
                      f"{format_memory(host_kib // 1024)} of memory")
    if spec.max_memory_mib is not None:
        if spec.max_memory_mib < (spec.memory_mib or 0):
            err("max_memory", "The maximum memory must not be less than the memory")
        elif host_kib and spec.max_memory_mib * 1024 > host_kib:
            err("max_memory", f"{format_memory(spec.max_memory_mib)} is more than the host's "
                              f"{format_memory(host_kib // 1024)} of memory")
    if spec.vcpus is None or spec.vcpus < 1:
        err("vcpus", "At least 1 CPU")
    else:
        max_vcpus = getattr(host, "max_vcpus", None) if host is not None else None
        if max_vcpus and spec.vcpus > max_vcpus:
            err("vcpus", f"At most {max_vcpus} CPUs on this hypervisor")
        elif host_cpus and spec.vcpus > host_cpus:
            warn("vcpus", f"More virtual CPUs than the host has ({host_cpus}): slower, not faster")
        counts = [spec.sockets, spec.cores, spec.threads]
        if any(c is not None for c in counts):
            if any(c is not None and c < 1 for c in counts):
                err("sockets", "Sockets, cores and threads must be at least 1")
            elif all(c is not None for c in counts) and spec.sockets * spec.cores * spec.threads != spec.vcpus:
                err("sockets", f"{spec.sockets} sockets × {spec.cores} cores × {spec.threads} threads is "
                               f"{spec.sockets * spec.cores * spec.threads}, not {spec.vcpus} CPUs")
            else:
                known = 1
                for c in counts:
                    known *= c or 1
                if spec.vcpus % known:
                    err("sockets", f"{spec.vcpus} CPUs cannot be split into this topology")
    if osinfo is not None:
        from .osinfo import check_resources

        for msg in check_resources(osinfo, spec.memory_mib, spec.vcpus, arch=spec.arch):
            warn("memory" if "memory" in msg else "vcpus", msg)

    # --- CPU model, virt type, machine, firmware -----------------------------
    if spec.cpu_mode == "custom" and not (spec.cpu_model or "").strip():
        err("cpu_model", "Choose a CPU model for the custom CPU mode")
    if spec.cpu_mode == "host-passthrough" and spec.virt_type == "qemu":
        err("cpu_mode", "QEMU (TCG) cannot pass the host CPU through: use host-model or a custom model")
    elif host is not None and hasattr(host, "cpu_mode_supported") and spec.cpu_mode != "custom":
        if host.cpu_mode_supported(spec.virt_type, spec.cpu_mode) is False:
            err("cpu_mode", f"{spec.cpu_mode} is not supported by {spec.virt_type} on this host")
    if host is not None and hasattr(host, "kvm_available"):
        if spec.virt_type == "kvm" and not host.kvm_available:
            err("virt_type", "KVM is not available on this host: use qemu (slower, but it runs anywhere)")
        if host.arch and spec.arch != host.arch:
            err("arch", f"This host runs {host.arch} guests, not {spec.arch}")
        if getattr(host, "machines", None) and spec.machine not in host.machines:
            err("machine", f"This host does not offer the {spec.machine} machine type")
    if spec.firmware == "uefi" and host is not None and hasattr(host, "uefi") and not host.uefi:
        err("firmware", "This host has no UEFI firmware (install OVMF / edk2-ovmf)")
    if spec.secure_boot:
        if spec.firmware != "uefi":
            err("secure_boot", "Secure Boot needs UEFI firmware")
        elif spec.machine != "q35":
            err("secure_boot", "Secure Boot needs the q35 machine type (it uses SMM)")
        elif host is not None and getattr(host, "secure_boot", True) is False:
            err("secure_boot", "This host has no Secure Boot firmware")

    # --- install source ------------------------------------------------------
    src = spec.install
    kind = src.kind
    if kind == "iso":
        if not (src.iso or "").strip():
            err("install.iso", "Choose the ISO image to install from")
        else:
            check_ref("install.iso", src.iso, "iso")
    elif kind == "cdrom":
        if not (src.cdrom or "").strip():
            err("install.cdrom", "Choose the host's CD-ROM device (e.g. /dev/sr0)")
        elif not src.cdrom.startswith("/"):
            err("install.cdrom", "Give the device path, e.g. /dev/sr0")
        elif check_path is not None:
            problem = check_path(src.cdrom, "cdrom")
            if problem:
                err("install.cdrom", problem)
    elif kind == "url":
        problem = validate_url(src.url or "")
        if problem:
            err("install.url", problem)
    elif kind in ("import", "cloud"):
        if not (src.image or "").strip():
            err("install.image", "Choose the disk image" if kind == "import" else "Choose the cloud image")
        else:
            check_ref("install.image", src.image, "image")
    if src.cloud_init is not None:
        _check_cloud_init(src.cloud_init, kind, err, warn)
    if src.kernel_args and kind != "url":
        warn("install.kernel_args", "Kernel arguments are only used by URL (install tree) installs")
    if kind == "url" and not spec.start_install:
        warn("start_install", "A URL install boots the installer only when it starts now; "
                              "defined only, the VM boots from its (empty) disk")
    if src.kickstart is not None:
        errs.extend(kickstart_problems(spec))
    nic_sources = [n.source for n in spec.nics if n.kind == "network"]
    if kind == "pxe":
        if not spec.nics and not src.network:
            err("install.network", "A PXE install needs a network: add a NIC or choose the network")
        elif src.network and spec.nics and src.network not in nic_sources:
            err("install.network", f"No NIC is on network '{src.network}'")
        if src.network and networks is not None and src.network not in networks:
            err("install.network", f"No virtual network named '{src.network}'")

    # --- disks -----------------------------------------------------------------
    q35 = spec.machine == "q35"
    ide_count = 0
    seen_vols: dict[tuple[str, str], int] = {}
    first_new = next((i for i, d in enumerate(spec.disks) if d.mode == "new"), None)
    for i, d in enumerate(spec.disks):
        p = f"disks[{i}]"
        if d.bus == "ide":
            ide_count += 1
            if q35:
                err(f"{p}.bus", "The q35 machine has no IDE bus: use sata, scsi or virtio")
        if d.cache is not None and d.cache not in CACHE_MODES:
            err(f"{p}.cache", f"Cache must be one of: {', '.join(CACHE_MODES)}")
        if d.mode == "new":
            overlay = bool(d.backing) or (kind == "cloud" and i == first_new)
            if d.size is None or d.size < 0 or (d.size == 0 and not overlay):
                err(f"{p}.size", "The size must be larger than zero")
            elif 0 < d.size < MIB:
                err(f"{p}.size", f"{d.size} bytes is too small (a plain number is bytes: write 20G for 20 GiB)")
            if not (d.pool or "").strip():
                err(f"{p}.pool", "Choose a storage pool")
            if d.name is not None:
                from ..storage import validate_volume_name

                problem = validate_volume_name(d.name)
                if problem:
                    err(f"{p}.name", problem)
            if d.backing and d.format != "qcow2":
                err(f"{p}.format", "A disk on a backing image must be qcow2")
            if overlay and d.provisioning == "thick":
                err(f"{p}.provisioning", "A disk on a backing image cannot be thick")
            if d.backing:
                check_ref(f"{p}.backing", d.backing, "backing")
            if pool_facts is not None and d.pool:
                facts = pool_facts.get(d.pool)
                if facts is None:
                    err(f"{p}.pool", f"No storage pool named '{d.pool}'")
                elif not facts.active:
                    err(f"{p}.pool", f"Pool '{d.pool}' is not active: start it first")
                elif d.provisioning == "thick" and facts.available is not None and d.size > facts.available:
                    err(f"{p}.size", f"{format_size(d.size)} is more than the "
                                     f"{format_size(facts.available)} free in pool '{d.pool}'")
        else:
            if not (d.path or "").strip():
                err(f"{p}.path", "Choose the disk (a path on the host, or pool/volume)")
            else:
                check_ref(f"{p}.path", d.path, "disk")
    # volume names, once defaults are filled in
    from .builder import plan_disks

    planned = plan_disks(spec) if spec.name else []
    offset = len(planned) - len(spec.disks)
    for j, d in enumerate(planned):
        if d.mode != "new" or not d.name:
            continue
        i = j - offset
        fld = f"disks[{i}].name" if i >= 0 else "install.image"
        key = (d.pool, d.name)
        if key in seen_vols:
            err(fld, f"Two disks would both be volume '{d.name}' in pool '{d.pool}'")
        seen_vols[key] = i
        facts = pool_facts.get(d.pool) if pool_facts is not None else None
        if facts is not None and d.name in facts.volumes:
            err(fld, f"Pool '{d.pool}' already has a volume named '{d.name}'")
    has_cdrom = kind in ("iso", "cdrom")
    if has_cdrom and spec.cdrom_bus == "ide":
        ide_count += 1
        if src.kickstart is not None:
            ide_count += 1  # the OEMDRV CD-ROM
        if q35:
            err("cdrom_bus", "The q35 machine has no IDE bus: use sata or scsi for the CD-ROM")
    if ide_count > MAX_IDE_DEVICES:
        err("disks", f"At most {MAX_IDE_DEVICES} IDE devices (disks and CD-ROM)")
    if not planned and kind not in ("iso", "cdrom", "pxe", "url"):
        warn("disks", "The VM has no disk to boot from")

    # --- NICs ------------------------------------------------------------------
    macs: set[str] = set()
    for i, n in enumerate(spec.nics):
        p = f"nics[{i}]"
        if not (n.source or "").strip():
            what = {"network": "virtual network", "bridge": "bridge", "macvtap": "host interface"}[n.kind] \
                if n.kind in ("network", "bridge", "macvtap") else "source"
            err(f"{p}.source", f"Choose the {what}")
        elif n.kind == "network" and networks is not None and n.source not in networks:
            err(f"{p}.source", f"No virtual network named '{n.source}'")
        if n.mac:
            problem = validate_mac(n.mac)
            if problem:
                err(f"{p}.mac", problem)
            elif n.mac.lower() in macs:
                err(f"{p}.mac", "Two NICs have the same MAC address")
            macs.add(n.mac.lower())

    # --- display -----------------------------------------------------------------
    if spec.graphics != "none":
        try:
            addr = ipaddress.ip_address((spec.graphics_listen or "").strip("[]"))
        except ValueError:
            err("graphics_listen", "Enter an IP address to listen on, e.g. 127.0.0.1")
        else:
            if addr.is_unspecified:
                warn("graphics_listen", "The console is reachable from the network, without a password")
    return errs


def _check_cloud_init(ci: Any, kind: str, err: Callable[..., None],
                      warn: Callable[[str, str], None]) -> None:
    """install.cloud_init: the documents of the NoCloud seed (user-data,
    meta-data, network-config), validated like the cloud-init editor does.
    The first problem of a document is its field's error, with its line in
    the document (FieldError.line) and "(and N more)"."""
    from ..provision import cloudinit

    base = "install.cloud_init"
    if not isinstance(ci, dict):
        err(base, "cloud_init must be a mapping with user_data (and meta_data, network_config)")
        return
    if kind in ("iso", "cdrom", "url", "pxe"):
        warn(base, "A cloud-init seed is for cloud images (install kind 'cloud' or 'import'); "
                   "an installer ignores it")
    checks = (("user_data", "user-data", cloudinit.validate_user_data),
              ("meta_data", "meta-data", cloudinit.validate_meta_data),
              ("network_config", "network-config", cloudinit.validate_network_config))
    for key, label, validate in checks:
        text = ci.get(key)
        if text is None or not str(text).strip():
            continue  # filled in when empty: user-data with the hostname, meta-data's instance-id
        if not isinstance(text, str):
            err(f"{base}.{key}", f"{label} must be text")
            continue
        problems = validate(text)
        if key == "user_data":
            from ..provision.seed import plain_password_problems
            problems = sorted(problems + plain_password_problems(text), key=lambda p: (p.line, p.column))
        if problems:
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            err(f"{base}.{key}", f"{label} {problems[0]}{more}", problems[0].line or None)
    detach = ci.get("detach_after_first_boot", False)
    if not isinstance(detach, bool):
        err(f"{base}.detach_after_first_boot", "detach_after_first_boot must be true or false")


@functools.lru_cache(maxsize=16)
def _kickstart_findings(text: str, version: str) -> tuple:
    from ..provision.kickstart import validate_kickstart

    return tuple(validate_kickstart(text, version))


def kickstart_problems(spec: VmSpec) -> list[FieldError]:
    """``install.kickstart``: it must fit the install source, name a known
    syntax version, and parse (pykickstart) -- errors and deprecation
    warnings with their line in the kickstart text (FieldError.line)."""
    from ..provision.kickstart import available_versions, delivery_for

    out: list[FieldError] = []
    ks = spec.install.kickstart
    if not isinstance(ks, dict):
        return [FieldError("install.kickstart", "The kickstart must be a mapping with text, version, delivery")]
    method, why = delivery_for(spec.install.kind)
    if method is None:
        out.append(FieldError("install.kickstart", f"No kickstart here: {why}"))
    elif ks.get("delivery") not in (None, method):
        out.append(FieldError("install.kickstart.delivery",
                              f"A '{spec.install.kind}' install gets its kickstart by {method}, "
                              f"not {ks.get('delivery')}"))
    version = ks.get("version") or ""
    text = ks.get("text") or ""
    if version not in available_versions():
        from pykickstart.version import versionMap

        if version not in versionMap:
            out.append(FieldError("install.kickstart.version",
                                  f"Unknown kickstart syntax version '{version}' (e.g. RHEL9, F40)"))
            return out
    if not text.strip():
        out.append(FieldError("install.kickstart", "The kickstart is empty"))
        return out
    from ..provision.kickstart import plaintext_password_warnings

    findings = _kickstart_findings(text, version)
    foreign = _not_a_kickstart(text, findings)
    if foreign is not None:
        out.append(foreign)
        return out
    for p in findings + tuple(plaintext_password_warnings(text)):
        where = f"line {p.line}: " if p.line else ""
        out.append(FieldError("install.kickstart", f"{where}{p.message}",
                              "error" if p.severity == "error" else "warning", line=p.line or None))
    out.extend(kickstart_disk_warnings(spec, text))
    return out


def _not_a_kickstart(text: str, findings: tuple) -> FieldError | None:
    """One error for a text none of whose lines is a kickstart command (a
    kickstart_file that names /etc/passwd, a script ...), quoting its first
    line only -- instead of an error per line that would echo the whole file."""
    content = [n for n, line in enumerate(text.splitlines(), 1)
               if line.strip() and not line.lstrip().startswith("#")]
    unknown = {p.line for p in findings if p.severity == "error"
               and p.message.startswith(("Unknown command", "cannot split the line"))}
    if len(content) < 2 or any(n not in unknown for n in content):
        return None
    first = content[0]
    quoted = _clip(text.splitlines()[first - 1].strip(), 80)
    return FieldError("install.kickstart", f"line {first}: not a kickstart: none of its {len(content)} lines is a "
                                           f"kickstart command (the first: {quoted!r})", line=first)


_KS_DISK_OPTS = re.compile(r"--(?:only-use|drives|boot-drive|ondisk|ondrive)[= ]\s*['\"]?([^\s'\"]+)")


def kickstart_disk_warnings(spec: VmSpec, text: str) -> list[FieldError]:
    """A kickstart naming disks the VM will not have (``ignoredisk
    --only-use=vda`` on a VM whose disk is SATA, ``sda``) stops the install."""
    from .builder import TargetNames, plan_disks

    targets = TargetNames()
    names = [targets.next(d.bus) for d in (plan_disks(spec) if spec.name else spec.disks)]
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        if line.lstrip().startswith("#"):
            continue
        for m in _KS_DISK_OPTS.finditer(line):
            for disk in m.group(1).split(","):
                disk = disk.removeprefix("/dev/")
                if not disk or "/" in disk or "*" in disk or "?" in disk or disk in names:
                    continue
                have = ", ".join(names) if names else "none"
                out.append(FieldError("install.kickstart", f"line {n}: the VM has no disk '{disk}' "
                                                            f"(its disks: {have})", "warning", line=n))
    return out


def errors_only(found: Iterable[FieldError]) -> list[FieldError]:
    return [e for e in found if e.is_error]


def spec_copy(spec: VmSpec, **changes: Any) -> VmSpec:
    """A deep copy of a spec, with top-level fields changed."""
    import copy

    new = copy.deepcopy(spec)
    for k, v in changes.items():
        setattr(new, k, v)
    return new


__all__ = [
    "SPEC_SCHEMA", "FieldError", "SpecIssue", "SpecError", "SpecDocument", "PoolFacts", "LineMap",
    "load_spec", "parse_spec", "dump_spec", "spec_to_dict", "validate_spec", "name_problems",
    "validate_mac", "validate_url", "local_path_checker", "format_size", "format_memory",
    "format_path", "errors_only", "spec_copy",
]

