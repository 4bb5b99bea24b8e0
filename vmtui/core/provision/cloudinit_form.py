"""The cloud-init editor's form as data: the common cloud-config settings
(hostname, users, packages, commands, files ...) read out of a user-data
document and written back into it -- only the keys that changed, every
other line left alone -- and the form's fields as lines of text and back.

Pure Python and PyYAML: no libvirt, no Textual.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import yaml

from ..files import safeyaml
from ..files.yamlout import dump_block
from .cloudinit import CLOUD_CONFIG_HEADER, hash_password, parse_yaml


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
    #: grow the root partition to the disk (cc_growpart; False: ``mode: off``)
    growpart: bool | None = None
    #: grow the root file system to its partition (cc_resizefs)
    resize_rootfs: bool | None = None


#: Top-level keys the form owns, in the order new keys are appended.
FORM_KEYS = (
    "hostname", "fqdn", "locale", "timezone", "users", "packages",
    "package_update", "package_upgrade", "runcmd", "write_files", "ssh_pwauth",
    "growpart", "resize_rootfs",
)

#: What the form writes for growpart on: the root partition, grown
#: whenever the disk is larger (cloud-init's own default, said explicitly so
#: that an image whose configuration turned it off grows anyway).
GROWPART_ON = {"mode": "auto", "devices": ["/"]}
GROWPART_OFF = {"mode": "off"}


def _growpart_of(value: Any) -> bool | None:
    """``growpart:`` as on/off: ``mode: off`` (or false) is off, any other
    mode on; anything else is not the form's business (None)."""
    if not isinstance(value, dict):
        return None
    mode = value.get("mode", "auto")
    return not (mode is False or str(mode).lower() == "off")


def _resize_of(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() == "noblock":
        return True
    return None

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
        growpart=_growpart_of(data.get("growpart")),
        resize_rootfs=_resize_of(data.get("resize_rootfs")),
    )


def form_from_yaml(text: str) -> CloudConfigForm:
    """Read the form's fields out of a user-data document. Raises
    ``ValueError`` when the text is not YAML or not a mapping."""
    data, _root, problems = parse_yaml(text)
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
        elif key == "growpart":
            original = data.get("growpart")
            if new is None:
                value = None
            elif _growpart_of(original) is new:
                value = original  # the form's answer already: keep its other keys
            elif new and isinstance(original, dict):
                value = {k: v for k, v in original.items() if k != "mode"} | {"mode": "auto"}
                value.setdefault("devices", ["/"])
            else:
                value = dict(GROWPART_ON if new else GROWPART_OFF)
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
    data, root, problems = parse_yaml(text)
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
# the fields as text


def render_entry(entry: Any) -> str:
    """One list entry (package, command) as one line."""
    if isinstance(entry, str) and "\n" not in entry and not entry.startswith(('"', "[", "{")):
        return entry
    return json.dumps(entry)


def parse_lines(text: str, originals: list[Any]) -> list[Any]:
    """Lines back to entries: an unchanged line gives back its original entry;
    a line in JSON (``["ls", "-l"]``, ``"a\\nb"``) is parsed; else a string."""
    by_line = {render_entry(o): o for o in originals}
    out: list[Any] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        if line in by_line:
            out.append(by_line[line])
            continue
        if line.lstrip().startswith(('"', "[", "{")):
            try:
                out.append(json.loads(line))
                continue
            except ValueError:
                pass
        out.append(line)
    return out


def tri_value(value: bool | None) -> str:
    """A yes/no/not-set setting as the form's choice: ``unset``, ``yes`` or ``no``."""
    return "unset" if value is None else ("yes" if value else "no")


def tri_from(value: Any) -> bool | None:
    """The form's choice back: True, False, or None for "not set"."""
    return None if value not in ("yes", "no") else value == "yes"


def groups_text(groups: list[str]) -> str:
    """A user's groups on one line, comma-separated (read back by the form model)."""
    return ", ".join(groups)


def sudo_text(sudo: Any) -> str:
    """A user's ``sudo`` setting as one line: a rule, ``false``, or a JSON list of rules."""
    if sudo is None:
        return ""
    if sudo is False:
        return "false"
    if isinstance(sudo, list):
        return json.dumps(sudo)
    return str(sudo)


def sudo_from(text: str) -> Any:
    """The line back: None (not set), False, a list of rules, or one rule."""
    text = text.strip()
    if not text:
        return None
    if text.lower() in ("false", "no"):
        return False
    if text.startswith("["):
        try:
            value = json.loads(text)
            if isinstance(value, list):
                return value
        except ValueError:
            pass
    return text
