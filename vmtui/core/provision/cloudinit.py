"""cloud-init NoCloud documents: validation, password hashing and the
``cidata`` seed ISO (the editor's form model is in :mod:`.cloudinit_form`).

Three documents make a NoCloud seed:

* ``user-data`` -- a ``#cloud-config`` YAML document (:func:`validate_user_data`,
  and :func:`plain_password_problems`: passwords must be stored as hashes);
* ``meta-data`` -- ``instance-id`` and ``local-hostname``
  (:func:`validate_meta_data`, :func:`default_meta_data`, :func:`new_instance_id`);
* ``network-config`` -- optional, netplan-like version 2 (version 1 accepted)
  (:func:`validate_network_config`).

:func:`build_seed_iso` packs them into an ISO 9660 image labelled ``cidata``
(Joliet + Rock Ridge, so the guest sees the exact file names).
:func:`check_document` is how the editor and the spec validation check one.

Validation results are :class:`Problem` records with **1-based** line and
column numbers (0 when unknown) and a dotted path into the document
(``users.0.name``; ``""`` for the document itself).

The schema is cloud-init's own (``cloudinit/config/schemas/
schema-cloud-config-v1.json``) when the ``cloudinit`` package is importable,
otherwise ``cloud-config.schema.json`` next to this module, which covers the
common modules. Unknown top-level keys are never errors.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import re
import subprocess
import uuid
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

import jsonschema
import yaml

from ..files import safeyaml
from .iso import small_iso

CLOUD_CONFIG_HEADER = "#cloud-config"
SEED_VOLUME_LABEL = "cidata"

# --------------------------------------------------------------------------
# problems + YAML helpers


@dataclass(frozen=True)
class Problem:
    """One validation finding. ``line``/``column`` are 1-based (0: unknown)."""

    line: int
    column: int
    path: str
    message: str

    def __str__(self) -> str:
        where = f"line {self.line}" + (f", column {self.column}" if self.column else "")
        what = f"{self.path}: " if self.path else ""
        return f"{where}: {what}{self.message}"


def _path_str(path: Iterable[Any]) -> str:
    return ".".join(str(p) for p in path)


def _yaml_error_problem(err: yaml.YAMLError) -> Problem:
    mark = getattr(err, "problem_mark", None) or getattr(err, "context_mark", None)
    if isinstance(err, safeyaml.LimitError):  # an alias bomb, deep nesting, a huge number: not a syntax error
        return Problem(mark.line + 1, mark.column + 1, _path_str(err.path), err.problem)
    if isinstance(err, yaml.MarkedYAMLError):
        parts = [p for p in (err.context, err.problem) if p]
        msg = "; ".join(parts) or str(err)
    else:
        msg = str(err)
    if mark is None:
        return Problem(0, 0, "", f"YAML syntax error: {msg}")
    return Problem(mark.line + 1, mark.column + 1, "", f"YAML syntax error: {msg}")


def parse_yaml(text: str) -> tuple[Any, yaml.Node | None, list[Problem]]:
    """(data, root node, problems). Problems non-empty => data/node unusable.
    Loaded with safeyaml's limits (alias bombs, nesting, huge numbers)."""
    try:
        data, node = safeyaml.load_with_nodes(text)
    except yaml.YAMLError as err:
        return None, None, [_yaml_error_problem(err)]
    return data, node, []


def _node_at(root: yaml.Node | None, path: Iterable[Any]) -> tuple[yaml.Node | None, bool]:
    """The deepest node along ``path``; the flag says whether all of it was found."""
    node = root
    for part in path:
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in reversed(node.value):  # last duplicate wins, as in safe_load
                if isinstance(key_node, yaml.ScalarNode) and key_node.value == str(part):
                    node = value_node
                    break
            else:
                return node, False
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
            node = node.value[part]
        else:
            return node, False
    return node, True


def _mark_of(root: yaml.Node | None, path: Iterable[Any]) -> tuple[int, int]:
    node, _found = _node_at(root, path)
    if node is None:
        return 1, 1
    return node.start_mark.line + 1, node.start_mark.column + 1


def _specific_errors(err: jsonschema.ValidationError) -> Iterator[tuple[jsonschema.ValidationError, str]]:
    """For oneOf/anyOf failures, descend into the branch that matched the
    instance's type (the one whose errors go deepest) instead of reporting
    "... is not valid under any of the given schemas"; when no branch's type
    matched, say which types are accepted."""
    if not err.context:
        yield err, err.message
        return
    depth = len(err.absolute_path)
    type_misses = [e for e in err.context if e.validator == "type" and len(e.absolute_path) == depth]
    others = [e for e in err.context if e not in type_misses]
    if not others:
        accepted: list[str] = []
        for e in type_misses:
            vals = e.validator_value if isinstance(e.validator_value, list) else [e.validator_value]
            accepted += [v for v in vals if v not in accepted]
        yield err, f"{err.instance!r} is not of type " + " or ".join(repr(a) for a in accepted)
        return
    branches: dict[Any, list[jsonschema.ValidationError]] = {}
    for e in others:
        branches.setdefault(e.relative_schema_path[0] if e.relative_schema_path else None, []).append(e)
    best = max(branches.values(), key=lambda errs: max(len(e.absolute_path) for e in errs))
    for e in best:
        yield from _specific_errors(e)


def _schema_problems(data: Any, root: yaml.Node | None, schema: dict) -> list[Problem]:
    cls = jsonschema.validators.validator_for(schema)
    validator = cls(schema)
    problems = []
    for err in validator.iter_errors(data):
        for sub, message in _specific_errors(err):
            path = list(sub.absolute_path)
            line, col = _mark_of(root, path)
            if len(message) > 200:  # jsonschema quotes the whole value
                message = message[:199] + "…"
            problem = Problem(line, col, _path_str(path), message)
            if problem not in problems:
                problems.append(problem)
    problems.sort(key=lambda p: (p.line, p.column, p.path))
    return problems


# --------------------------------------------------------------------------
# schemas


def _cloudinit_schema_path() -> Path | None:
    try:
        spec = importlib.util.find_spec("cloudinit")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "config" / "schemas" / "schema-cloud-config-v1.json"
        if candidate.is_file():
            return candidate
    return None


OWN_SCHEMA_PATH = Path(__file__).with_name("cloud-config.schema.json")


@functools.lru_cache(maxsize=None)
def cloud_config_schema() -> tuple[dict, str]:
    """(schema, source): cloud-init's schema if installed, else vmtui's own.
    ``source`` is ``"cloud-init"`` or ``"vmtui"``."""
    path = _cloudinit_schema_path()
    if path is not None:
        try:
            return json.loads(path.read_text(encoding="utf-8")), "cloud-init"
        except (OSError, ValueError):
            pass
    return json.loads(OWN_SCHEMA_PATH.read_text(encoding="utf-8")), "vmtui"


_STR = {"type": "string"}
_BOOL = {"type": "boolean"}
_STR_LIST = {"type": "array", "items": _STR}

META_DATA_SCHEMA: dict = {
    "type": "object",
    "required": ["instance-id"],
    "properties": {
        "instance-id": {"type": "string", "minLength": 1},
        "local-hostname": _STR,
        "hostname": _STR,
        "public-keys": {"oneOf": [_STR, _STR_LIST, {"type": "object"}]},
        "network-interfaces": _STR,
        "dsmode": {"enum": ["local", "net", "disabled"]},
    },
}

_ROUTE = {
    "type": "object",
    "required": ["to"],
    "properties": {
        "to": _STR,
        "via": _STR,
        "metric": {"type": "integer", "minimum": 0},
        "on-link": _BOOL,
        "table": {"type": "integer"},
    },
}

_ETHERNET = {
    "type": "object",
    "properties": {
        "match": {
            "type": "object",
            "properties": {"name": _STR, "macaddress": _STR, "driver": {"oneOf": [_STR, _STR_LIST]}},
        },
        "set-name": _STR,
        "dhcp4": _BOOL,
        "dhcp6": _BOOL,
        "dhcp4-overrides": {"type": "object"},
        "dhcp6-overrides": {"type": "object"},
        "accept-ra": _BOOL,
        "addresses": {"type": "array", "items": {"type": ["string", "object"]}},
        "gateway4": _STR,
        "gateway6": _STR,
        "mtu": {"type": "integer", "minimum": 1},
        "macaddress": _STR,
        "optional": _BOOL,
        "routes": {"type": "array", "items": _ROUTE},
        "nameservers": {
            "type": "object",
            "properties": {"addresses": _STR_LIST, "search": _STR_LIST},
            "additionalProperties": False,
        },
        "wakeonlan": _BOOL,
    },
}

NETWORK_CONFIG_SCHEMA: dict = {
    "type": "object",
    "required": ["version"],
    "properties": {"version": {"enum": [1, 2]}},
    "allOf": [
        {
            "if": {"properties": {"version": {"const": 2}}},
            "then": {
                "properties": {
                    "renderer": {"enum": ["networkd", "NetworkManager"]},
                    "ethernets": {"type": "object", "additionalProperties": _ETHERNET},
                    "bonds": {"type": "object"},
                    "bridges": {"type": "object"},
                    "vlans": {"type": "object"},
                    "wifis": {"type": "object"},
                }
            },
        },
        {
            "if": {"properties": {"version": {"const": 1}}},
            "then": {
                "required": ["config"],
                "properties": {
                    "config": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["type"],
                            "properties": {
                                "type": {
                                    "enum": [
                                        "physical", "bond", "bridge", "vlan",
                                        "nameserver", "route", "infiniband",
                                    ]
                                },
                                "name": _STR,
                                "mac_address": _STR,
                                "mtu": {"type": ["integer", "null"]},
                                "subnets": {
                                    "type": "array",
                                    "items": {
                                        "type": "object",
                                        "required": ["type"],
                                        "properties": {"type": _STR},
                                    },
                                },
                            },
                        },
                    }
                },
            },
        },
    ],
}


# --------------------------------------------------------------------------
# validation


def _header_problem(text: str) -> tuple[Problem | None, bool]:
    """(problem, is_cloud_config). Non-cloud-config user-data types (scripts,
    includes, MIME) are valid but not YAML: is_cloud_config False, no problem."""
    lines = text.splitlines()
    first = lines[0].rstrip() if lines else ""
    if first.lower().startswith("## template:") and len(lines) > 1:
        first = lines[1].rstrip()
    if first == CLOUD_CONFIG_HEADER:
        return None, True
    if first.startswith(("#!", "#include", "#cloud-boothook", "#part-handler", "#upstart-job", "Content-Type:")):
        return None, False
    if first.lower().replace(" ", "") == CLOUD_CONFIG_HEADER:
        msg = f"the first line must be exactly '{CLOUD_CONFIG_HEADER}' (found {first!r})"
    else:
        msg = f"user-data must start with a '{CLOUD_CONFIG_HEADER}' line; cloud-init ignores it otherwise"
    return Problem(1, 1, "", msg), True


def validate_user_data(text: str) -> list[Problem]:
    """YAML syntax, the ``#cloud-config`` header, then the cloud-config schema.

    A YAML syntax error stops there (one problem). Shell-script and other
    non-cloud-config user-data (``#!``, ``#include`` ...) is accepted as is.
    """
    header, is_cloud_config = _header_problem(text)
    if not is_cloud_config:
        return []
    data, root, problems = parse_yaml(text)
    if problems:
        return problems
    problems = [header] if header else []
    if data is None:
        return problems
    if not isinstance(data, dict):
        return problems + [Problem(*_mark_of(root, []), "", "cloud-config must be a mapping of module settings")]
    schema, _source = cloud_config_schema()
    return problems + _schema_problems(data, root, schema)


def _validate_mapping_doc(text: str, schema: dict, what: str, allow_empty: bool) -> list[Problem]:
    data, root, problems = parse_yaml(text)
    if problems:
        return problems
    if data is None:
        return [] if allow_empty else [Problem(1, 1, "", f"{what} is empty")]
    if not isinstance(data, dict):
        return [Problem(*_mark_of(root, []), "", f"{what} must be a mapping")]
    return _schema_problems(data, root, schema)


def validate_meta_data(text: str) -> list[Problem]:
    """meta-data: a mapping with a non-empty ``instance-id`` (and usually
    ``local-hostname``)."""
    return _validate_mapping_doc(text, META_DATA_SCHEMA, "meta-data", allow_empty=False)


def validate_network_config(text: str) -> list[Problem]:
    """network-config: version 2 (netplan-like: ``ethernets`` with
    ``match``/``dhcp4``/``addresses``/``gateway4``/``routes``/``nameservers``)
    or version 1 (``config:`` list). An empty document is fine (no
    network-config). A top-level ``network:`` wrapper is accepted."""
    data, root, problems = parse_yaml(text)
    if problems:
        return problems
    if data is None:
        return []
    if isinstance(data, dict) and set(data) == {"network"} and isinstance(data["network"], dict):
        sub = _node_at(root, ["network"])[0]
        return [
            Problem(p.line, p.column, _path_str(["network", p.path] if p.path else ["network"]), p.message)
            for p in _schema_problems(data["network"], sub, NETWORK_CONFIG_SCHEMA)
        ]
    return _validate_mapping_doc(text, NETWORK_CONFIG_SCHEMA, "network-config", allow_empty=True)


# --------------------------------------------------------------------------
# passwords

_SALT_CHARS = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def _crypt_module():
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            import crypt  # deprecated (PEP 594), removed in Python 3.13
    except ImportError:
        return None
    return crypt


def _random_salt(n: int = 16) -> str:
    import secrets

    return "".join(secrets.choice(_SALT_CHARS) for _ in range(n))


def hash_password(plain: str, salt: str | None = None) -> str:
    """SHA-512 crypt (``$6$salt$hash``) of ``plain``, as /etc/shadow wants.

    ``salt`` may be bare salt characters or a ``$6$salt`` prefix; a random
    16-character salt is used otherwise. Uses the libc ``crypt`` module when
    present, else ``openssl passwd -6`` (the password goes through a pipe,
    never the command line). The plain password is never stored.
    """
    if salt is None:
        salt = _random_salt()
    elif salt.startswith("$6$"):
        salt = salt[3:].split("$", 1)[0]
    if not salt or any(c not in _SALT_CHARS for c in salt):
        raise ValueError("salt must be 1-16 characters from [./0-9A-Za-z]")
    salt = salt[:16]
    crypt = _crypt_module()
    if crypt is not None:
        hashed = crypt.crypt(plain, f"$6${salt}")
        if hashed and hashed.startswith("$6$"):
            return hashed
    try:
        out = subprocess.run(
            ["openssl", "passwd", "-6", "-salt", salt, "-stdin"],
            input=plain + "\n", capture_output=True, text=True, check=True,
        )
    except (OSError, subprocess.CalledProcessError) as err:
        raise RuntimeError("no SHA-512 crypt implementation available (crypt module or openssl)") from err
    return out.stdout.strip()


def is_password_hash(value: str) -> bool:
    """True for crypt(3) hashes in the modular format (``$id$...``)."""
    return bool(re.match(r"^\$(1|2[abxy]?|5|6|y|gy|7|sha1)\$", value or ""))


# --------------------------------------------------------------------------
# meta-data


def new_instance_id() -> str:
    """A fresh, unique instance-id; cloud-init re-runs per-instance modules
    whenever it changes."""
    return f"iid-vmtui-{uuid.uuid4().hex[:12]}"


def default_meta_data(hostname: str, instance_id: str | None = None) -> str:
    """meta-data for a NoCloud seed."""
    data = {"instance-id": instance_id or new_instance_id(), "local-hostname": hostname}
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False)


# --------------------------------------------------------------------------
# passwords in user-data, and one document checked


_NOT_A_HASH = "not a password hash: type the password in the editor's form, which stores its SHA-512 hash"
_PLAIN = "a password in plain text (anyone who can read the seed can read it)"
_PLAIN_USER = f"{_PLAIN}: use passwd with its SHA-512 hash (type the password in the editor's form)"
_PLAIN_CHPASSWD = f"{_PLAIN}: use type: hash with its SHA-512 hash (mkpasswd -m sha-512)"
_PLAIN_LIST = f"{_PLAIN}: write user:HASH with its SHA-512 hash (mkpasswd -m sha-512)"


def _problem(node: yaml.Node, path: str, message: str) -> Problem:
    return Problem(node.start_mark.line + 1, node.start_mark.column + 1, path, message)


def _items(node: yaml.Node) -> list[tuple[str, yaml.Node]]:
    if not isinstance(node, yaml.MappingNode):
        return []
    return [(k.value, v) for k, v in node.value if isinstance(k, yaml.ScalarNode)]


def _set(v: yaml.Node) -> bool:
    return isinstance(v, yaml.ScalarNode) and bool(v.value) and v.tag != "tag:yaml.org,2002:null"


def plain_password_problems(text: str) -> list[Problem]:
    """Passwords in user-data that are not crypt hashes, wherever cloud-init
    takes one: ``users[].passwd``/``hashed_passwd`` (cloud-init would take
    plain text for a hash: no login), ``users[].plain_text_passwd``, the
    top-level ``password``, ``chpasswd.users[].password`` (``type: text``, or
    a non-hash with the default ``type: hash``) and the old ``chpasswd.list``
    (``user:password`` lines). Plain text must not sit in the documents; the
    editor's form hashes typed passwords. Lines are those of ``text``."""
    try:
        root = safeyaml.compose(text)
    except yaml.YAMLError:
        return []
    out = []
    for key, value in _items(root):
        if key == "users" and isinstance(value, yaml.SequenceNode):
            for i, entry in enumerate(value.value):
                for k, v in _items(entry):
                    if k in ("passwd", "hashed_passwd") and _set(v) and not is_password_hash(v.value):
                        out.append(_problem(v, f"users.{i}.{k}", _NOT_A_HASH))
                    elif k == "plain_text_passwd" and _set(v):
                        out.append(_problem(v, f"users.{i}.{k}", _PLAIN_USER))
        elif key == "password" and _set(value):
            out.append(_problem(value, "password", _PLAIN_USER))
        elif key == "chpasswd":
            for ck, cv in _items(value):
                if ck == "users" and isinstance(cv, yaml.SequenceNode):
                    for i, entry in enumerate(cv.value):
                        fields = dict(_items(entry))
                        pw, kind = fields.get("password"), fields.get("type")
                        kind_text = kind.value if isinstance(kind, yaml.ScalarNode) else "hash"
                        if pw is None or not _set(pw) or kind_text == "RANDOM":
                            continue
                        path = f"chpasswd.users.{i}.password"
                        if kind_text == "text":
                            out.append(_problem(pw, path, _PLAIN_CHPASSWD))
                        elif not is_password_hash(pw.value):
                            out.append(_problem(pw, path, "not a password hash (type: hash is the default): give "
                                                          "its SHA-512 hash (mkpasswd -m sha-512), or type: text"
                                                          " -- which is plain text, refused too"))
                elif ck == "list":
                    out.extend(_chpasswd_list_problems(cv))
    return out


def _chpasswd_list_problems(node: yaml.Node) -> list[Problem]:
    """``chpasswd.list``: ``user:password`` entries (a list, or lines of a
    string); R/RANDOM and crypt hashes are fine, anything else is plain text."""
    entries: list[tuple[yaml.Node, str, int]] = []  # node, entry, line offset inside the node
    if isinstance(node, yaml.SequenceNode):
        entries = [(item, item.value, 0) for item in node.value if isinstance(item, yaml.ScalarNode)]
    elif isinstance(node, yaml.ScalarNode):
        block = node.style in ("|", ">")
        entries = [(node, line, n + (1 if block else 0)) for n, line in enumerate(node.value.splitlines())]
    out = []
    for i, (item, entry, offset) in enumerate(entries):
        _user, sep, pw = entry.strip().partition(":")
        if not sep or not pw or pw in ("R", "RANDOM") or is_password_hash(pw):
            continue
        line = item.start_mark.line + 1 + offset
        out.append(Problem(line, 0 if offset else item.start_mark.column + 1, f"chpasswd.list.{i}",
                           _PLAIN_LIST))
    return out


#: The documents of a NoCloud seed, as the seed names them.
DOCUMENTS = ("user-data", "meta-data", "network-config")


def check_document(name: str, text: str) -> list[Problem]:
    """The problems of one seed document (``name`` is one of
    :data:`DOCUMENTS`): its validator's, and for user-data the passwords not
    stored as hashes, in the order of their places in the text. The editor
    and the spec validation both check a document with this."""
    if name == "user-data":
        return sorted(validate_user_data(text) + plain_password_problems(text), key=lambda p: (p.line, p.column))
    if name == "meta-data":
        return validate_meta_data(text)
    if name == "network-config":
        return validate_network_config(text)
    raise ValueError(f"not a seed document: {name!r}")


# --------------------------------------------------------------------------
# seed ISO


def _to_bytes(value: str | bytes) -> bytes:
    return value.encode("utf-8") if isinstance(value, str) else value


def build_seed_iso(user_data: str | bytes, meta_data: str | bytes, network_config: str | bytes | None = None) -> bytes:
    """A NoCloud seed: ISO 9660 labelled ``cidata`` with ``user-data``,
    ``meta-data`` and (if given) ``network-config`` -- exact names in Joliet
    and Rock Ridge (the plain ISO 9660 names are 8.3-mangled)."""
    files = [("USERDATA.", "user-data", _to_bytes(user_data)), ("METADATA.", "meta-data", _to_bytes(meta_data))]
    if network_config is not None:
        files.append(("NETWORKC.", "network-config", _to_bytes(network_config)))
    return small_iso(SEED_VOLUME_LABEL, files)
