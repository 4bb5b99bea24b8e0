"""cloud-init NoCloud documents: validation, a form model, password hashing
and the ``cidata`` seed ISO.

Three documents make a NoCloud seed:

* ``user-data`` -- a ``#cloud-config`` YAML document (:func:`validate_user_data`,
  :class:`CloudConfigForm`, :func:`form_from_yaml`, :func:`apply_form`);
* ``meta-data`` -- ``instance-id`` and ``local-hostname``
  (:func:`validate_meta_data`, :func:`default_meta_data`, :func:`new_instance_id`);
* ``network-config`` -- optional, netplan-like version 2 (version 1 accepted)
  (:func:`validate_network_config`).

:func:`build_seed_iso` packs them into an ISO 9660 image labelled ``cidata``
(Joliet + Rock Ridge, so the guest sees the exact file names).

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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

import jsonschema
import yaml

from ..files import safeyaml
from ..files.yamlout import dump_block
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


def _parse_yaml(text: str) -> tuple[Any, yaml.Node | None, list[Problem]]:
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
    data, root, problems = _parse_yaml(text)
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
    data, root, problems = _parse_yaml(text)
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
    data, root, problems = _parse_yaml(text)
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
# the form


@dataclass
class UserForm:
    """One entry of ``users:``. ``password`` is a plain password typed into
    the form: :func:`apply_form` hashes it into ``password_hash`` and drops
    it. ``extra`` holds the entry's keys the form does not model (kept)."""

    name: str = ""
    groups: list[str] = field(default_factory=list)
    sudo: Any = None  # str, list[str], False or None as cloud-init accepts
    shell: str | None = None
    ssh_keys: list[str] = field(default_factory=list)
    password_hash: str | None = None
    password: str | None = field(default=None, repr=False)
    extra: dict = field(default_factory=dict)
    #: bookkeeping for faithful round trips (not compared)
    password_key: str = field(default="passwd", compare=False, repr=False)
    from_string: bool = field(default=False, compare=False, repr=False)


@dataclass
class WriteFileForm:
    """One entry of ``write_files:``; ``extra`` keeps other keys (append, defer...)."""

    path: str = ""
    content: str = ""
    permissions: str | None = None
    owner: str | None = None
    encoding: str | None = None
    extra: dict = field(default_factory=dict)


@dataclass
class CloudConfigForm:
    """The common cloud-config settings. ``None``/empty means "not set": the
    key is removed from (or not added to) the YAML."""

    hostname: str | None = None
    fqdn: str | None = None
    locale: str | None = None
    timezone: str | None = None
    users: list[UserForm] = field(default_factory=list)
    packages: list[Any] = field(default_factory=list)  # str or [name, version]
    package_update: bool | None = None
    package_upgrade: bool | None = None
    runcmd: list[Any] = field(default_factory=list)  # str or argv list
    write_files: list[WriteFileForm] = field(default_factory=list)
    ssh_pwauth: bool | None = None


#: Top-level keys the form owns, in the order new keys are appended.
FORM_KEYS = (
    "hostname", "fqdn", "locale", "timezone", "users", "packages",
    "package_update", "package_upgrade", "runcmd", "write_files", "ssh_pwauth",
)

_USER_KEYS = {"name", "groups", "sudo", "shell", "ssh_authorized_keys"}  # + the password key
_WRITE_FILE_KEYS = {"path", "content", "permissions", "owner", "encoding"}


def _as_str_list(value: Any) -> list[str]:
    if value is None or value is False:
        return []
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    if isinstance(value, list):
        return [str(v) for v in value]
    return [str(value)]


def _user_from(entry: Any) -> UserForm:
    if isinstance(entry, str):
        return UserForm(name=entry, from_string=True)
    if not isinstance(entry, dict):
        return UserForm(name=str(entry), extra={"__raw__": entry})
    keys = entry.get("ssh_authorized_keys")
    pw_key = "passwd" if "passwd" in entry or "hashed_passwd" not in entry else "hashed_passwd"
    return UserForm(
        name=str(entry.get("name", "")),
        groups=_as_str_list(entry.get("groups")),
        sudo=entry.get("sudo"),
        shell=entry.get("shell"),
        ssh_keys=[keys] if isinstance(keys, str) else list(keys or []),
        password_hash=entry.get(pw_key),
        extra={k: v for k, v in entry.items() if k not in _USER_KEYS and k != pw_key},
        password_key=pw_key,
    )


def _write_file_from(entry: Any) -> WriteFileForm:
    if not isinstance(entry, dict):
        return WriteFileForm(extra={"__raw__": entry})
    return WriteFileForm(
        path=str(entry.get("path", "")),
        content=entry.get("content", "") if isinstance(entry.get("content", ""), str) else str(entry["content"]),
        permissions=None if entry.get("permissions") is None else str(entry["permissions"]),
        owner=entry.get("owner"),
        encoding=entry.get("encoding"),
        extra={k: v for k, v in entry.items() if k not in _WRITE_FILE_KEYS},
    )


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


def _opt_bool(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def _form_from_data(data: dict) -> CloudConfigForm:
    users = data.get("users")
    if isinstance(users, str):
        users = [u.strip() for u in users.split(",") if u.strip()]
    write_files = data.get("write_files")
    return CloudConfigForm(
        hostname=_opt_str(data.get("hostname")),
        fqdn=_opt_str(data.get("fqdn")),
        locale=_opt_str(data.get("locale")) if data.get("locale") is not False else None,
        timezone=_opt_str(data.get("timezone")),
        users=[_user_from(u) for u in users] if isinstance(users, list) else [],
        packages=list(data.get("packages") or []) if isinstance(data.get("packages"), list) else [],
        package_update=_opt_bool(data.get("package_update")),
        package_upgrade=_opt_bool(data.get("package_upgrade")),
        runcmd=list(data.get("runcmd") or []) if isinstance(data.get("runcmd"), list) else [],
        write_files=[_write_file_from(w) for w in write_files] if isinstance(write_files, list) else [],
        ssh_pwauth=_opt_bool(data.get("ssh_pwauth")),
    )


def form_from_yaml(text: str) -> CloudConfigForm:
    """Read the form's fields out of a user-data document. Raises
    ``ValueError`` when the text is not YAML or not a mapping."""
    data, _root, problems = _parse_yaml(text)
    if problems:
        raise ValueError(str(problems[0]))
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ValueError("cloud-config must be a mapping")
    return _form_from_data(data)


def _user_to(user: UserForm, original: Any) -> Any:
    if "__raw__" in user.extra:
        return user.extra["__raw__"]
    pw_hash = user.password_hash
    extra = user.extra
    if original is not None and _user_from(original) == user:
        return original  # unchanged: keep its exact representation
    bare = not (user.groups or user.sudo is not None or user.shell or user.ssh_keys or pw_hash or extra)
    if bare and (user.from_string or user.name == "default"):
        return user.name  # "default" = the distro's default user
    out: dict = {"name": user.name}
    if user.groups:
        out["groups"] = list(user.groups)
    if user.sudo is not None:
        out["sudo"] = user.sudo
    if user.shell:
        out["shell"] = user.shell
    if user.ssh_keys:
        out["ssh_authorized_keys"] = list(user.ssh_keys)
    if pw_hash:
        out[user.password_key or "passwd"] = pw_hash
    # keep the unmodelled keys, in their original order relative to each other
    out.update(extra)
    return out


def _write_file_to(wf: WriteFileForm, original: Any) -> Any:
    if "__raw__" in wf.extra:
        return wf.extra["__raw__"]
    if original is not None and _write_file_from(original) == wf:
        return original
    out: dict = {"path": wf.path}
    if wf.content:
        out["content"] = wf.content
    if wf.permissions:
        out["permissions"] = wf.permissions
    if wf.owner:
        out["owner"] = wf.owner
    if wf.encoding:
        out["encoding"] = wf.encoding
    out.update(wf.extra)
    return out


_DELETE = object()


def _form_values(form: CloudConfigForm, old: CloudConfigForm, data: dict) -> dict[str, Any]:
    """Top-level key -> new value (or _DELETE) for every form key that changed."""
    changes: dict[str, Any] = {}
    for user in form.users:
        if user.password:
            # hash now and forget the plain text, so that applying the form
            # again gives the same document
            user.password_hash = hash_password(user.password)
            user.password = None
            user.extra.setdefault("lock_passwd", False)  # a locked password cannot log in
    for key in FORM_KEYS:
        new = getattr(form, key)
        if new == getattr(old, key):
            continue
        if key == "users":
            originals = data.get("users") if isinstance(data.get("users"), list) else []
            value = [
                _user_to(u, originals[i] if i < len(originals) else None) for i, u in enumerate(new)
            ]
        elif key == "write_files":
            originals = data.get("write_files") if isinstance(data.get("write_files"), list) else []
            value = [
                _write_file_to(w, originals[i] if i < len(originals) else None) for i, w in enumerate(new)
            ]
        elif isinstance(new, list):
            value = list(new)
        else:
            value = new
        if value is None or value == "" or value == []:
            changes[key] = _DELETE
        else:
            changes[key] = value
    return changes


def _dump(data: Any) -> str:
    return dump_block(data)


def _is_blank_or_comment(line: str) -> bool:
    s = line.strip()
    return not s or (line.startswith("#") and not line.startswith("#!"))


def _patch_text(text: str, root: yaml.MappingNode, changes: dict[str, Any]) -> str:
    """Replace/delete/append top-level keys in ``text``, leaving every other
    line (comments, formatting, unknown keys) untouched."""
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    entries = root.value
    spans: dict[str, tuple[int, int]] = {}
    for i, (key_node, value_node) in enumerate(entries):
        start = key_node.start_mark.line
        if i + 1 < len(entries):
            end = entries[i + 1][0].start_mark.line
        else:
            end = value_node.end_mark.line + (1 if value_node.end_mark.column > 0 else 0)
            end = min(max(end, start + 1), len(lines))
        while end > start + 1 and _is_blank_or_comment(lines[end - 1]):
            end -= 1  # trailing comments/blank lines belong to what follows
        spans[key_node.value] = (start, end)
    edits = []
    appended = []
    for key, value in changes.items():
        snippet = "" if value is _DELETE else _dump({key: value})
        if key in spans:
            edits.append((*spans[key], snippet))
        elif value is not _DELETE:
            appended.append(snippet)
    for start, end, snippet in sorted(edits, reverse=True):
        lines[start:end] = [snippet]
    out = "".join(lines)
    if appended:
        out += "".join(appended)
    return out


def apply_form(text: str, form: CloudConfigForm) -> str:
    """Write the form's values into the user-data document ``text``.

    Only keys whose value the form changed are rewritten; every other key
    (including unknown modules), their order and comments stay as they were.
    Plain passwords in ``form.users[*].password`` are hashed (SHA-512 crypt)
    on the way in: the form is updated in place (``password_hash`` set,
    ``password`` cleared, ``lock_passwd: false`` added unless the entry says
    otherwise), so applying the same form again is stable. Raises ``ValueError`` when ``text`` is not a YAML mapping
    (fix the syntax errors first).
    """
    if not text.strip():
        text = CLOUD_CONFIG_HEADER + "\n"
    data, root, problems = _parse_yaml(text)
    if problems:
        raise ValueError(str(problems[0]))
    if data is None:
        data, root = {}, None
    if not isinstance(data, dict):
        raise ValueError("cloud-config must be a mapping")
    changes = _form_values(form, _form_from_data(data), data)
    expected = dict(data)
    for key, value in changes.items():
        if value is _DELETE:
            expected.pop(key, None)
        else:
            expected[key] = value
    if not changes:
        return text
    result = None
    patchable = root is None
    if isinstance(root, yaml.MappingNode) and not root.flow_style:
        keys = [k.value for k, _v in root.value if isinstance(k, yaml.ScalarNode)]
        patchable = len(keys) == len(root.value) and len(keys) == len(set(keys))
    if patchable:
        try:
            candidate = _patch_text(text, root, changes) if root is not None else text + (
                "" if text.endswith("\n") else "\n"
            ) + "".join(_dump({k: v}) for k, v in changes.items() if v is not _DELETE)
            if (safeyaml.load(candidate) or {}) == expected:
                result = candidate
        except yaml.YAMLError:
            result = None
    if result is None:  # fall back to a full re-dump (comments are lost)
        result = CLOUD_CONFIG_HEADER + "\n" + (_dump(expected) if expected else "")
    return result


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
