"""The saved cloud-init configs: named user-data / meta-data / network-config
sets kept in the user's data directory, to reuse across VMs.

Each config is one YAML file ``<data dir>/cloud-init/<name>.yaml``::

    name: web-server
    description: nginx + admin user
    user_data: |
      #cloud-config
      ...
    meta_data: |          # optional, without instance-id / local-hostname
      ...
    network_config: |     # optional
      ...

``instance-id`` and ``local-hostname`` are per VM, so they are never saved:
they are filled in again when a config is used for a VM. Files written by
:func:`export_config` have the same format; :func:`import_config` also takes
a bare user-data file (``#cloud-config`` ...), named after the file.

Errors are :class:`LibraryError` (a VmtuiError: action, object, cause).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import platformdirs
import yaml

from ..files import safeyaml, userfile
from ..errors import VmtuiError
from ..names import name_problem
from ..files.yamlout import dump_block
from .seed import CloudInitDocs

APP_NAME = "vmtui"
MAX_NAME = 100
_PER_VM_KEYS = ("instance-id", "local-hostname")


class LibraryError(VmtuiError):
    """A library operation failed; the message names the config or file."""


@dataclass
class SavedConfig:
    name: str
    docs: CloudInitDocs
    description: str = ""


def default_dir() -> Path:
    return Path(platformdirs.user_data_dir(APP_NAME)) / "cloud-init"


def validate_name(name: str) -> str | None:
    """A problem with ``name`` as a config name, or None."""
    return name_problem(name, empty="Enter a name", forbidden="/\\", no_leading_dot=True, max_len=MAX_NAME)


def strip_per_vm(meta_data: str) -> str:
    """meta-data without its per-VM keys (``""`` when nothing else is left).
    Text that is not a YAML mapping is kept as it is."""
    if not meta_data.strip():
        return ""
    try:
        data = safeyaml.load(meta_data)
    except yaml.YAMLError:
        return meta_data
    if not isinstance(data, dict):
        return meta_data
    rest = {k: v for k, v in data.items() if k not in _PER_VM_KEYS}
    return yaml.safe_dump(rest, sort_keys=False, default_flow_style=False) if rest else ""


def _to_dict(cfg: SavedConfig) -> dict:
    out: dict = {"name": cfg.name}
    if cfg.description:
        out["description"] = cfg.description
    out["user_data"] = cfg.docs.user_data
    meta = strip_per_vm(cfg.docs.meta_data or "")
    if meta:
        out["meta_data"] = meta
    if cfg.docs.network_config and cfg.docs.network_config.strip():
        out["network_config"] = cfg.docs.network_config
    return out


def _dump(cfg: SavedConfig) -> str:
    return dump_block(_to_dict(cfg))


def _from_text(text: str, source: str, fallback_name: str) -> SavedConfig:
    """Parse a library file (or a bare user-data document)."""
    stripped = text.lstrip()
    if stripped.startswith(("#cloud-config", "#!", "#include", "Content-Type:")):
        return SavedConfig(fallback_name, CloudInitDocs(text, ""))
    try:
        data = safeyaml.load(text)
    except safeyaml.LimitError as err:
        mark = err.problem_mark
        raise LibraryError("read", source, f"line {mark.line + 1}: {err.problem}") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise LibraryError("read", source, f"not valid YAML{where}") from None
    if not isinstance(data, dict) or not isinstance(data.get("user_data"), str):
        raise LibraryError("read", source, "not a saved cloud-init config (no 'user_data' text) "
                                           "nor a user-data file starting with '#cloud-config'")
    for key in ("meta_data", "network_config", "description", "name"):
        if data.get(key) is not None and not isinstance(data[key], str):
            raise LibraryError("read", source, f"'{key}' must be text")
    name = data.get("name") or fallback_name
    return SavedConfig(name, CloudInitDocs(data["user_data"], data.get("meta_data") or "",
                                           data.get("network_config") or None),
                       data.get("description") or "")


def _reason(err: userfile.UserFileError) -> str:
    return f"line {err.line}: {err.reason}" if err.line else err.reason


class Library:
    """The saved configs in ``directory`` (default: the platformdirs data dir)."""

    def __init__(self, directory: str | os.PathLike | None = None) -> None:
        self.directory = Path(directory) if directory is not None else default_dir()

    def _path(self, name: str) -> Path:
        problem = validate_name(name)
        if problem:
            raise LibraryError("use the name", repr(name), problem)
        return self.directory / f"{name}.yaml"

    def scan(self) -> tuple[list[SavedConfig], list[str]]:
        """(:meth:`list`, :meth:`problems`) from one read of the files."""
        configs, problems = [], []
        for path in self._files():
            try:
                configs.append(self._read(path))
            except LibraryError as err:
                problems.append(err.message)
        return sorted(configs, key=lambda c: c.name.lower()), problems

    def list(self) -> list[SavedConfig]:
        """Every readable config, sorted by name (broken files are skipped;
        :meth:`problems` lists them)."""
        return self.scan()[0]

    def names(self) -> list[str]:
        return [c.name for c in self.list()]

    def problems(self) -> list[str]:
        return self.scan()[1]

    def _files(self) -> list[Path]:
        try:
            return sorted(p for p in self.directory.glob("*.yaml") if p.is_file())
        except OSError:
            return []

    def _read(self, path: Path) -> SavedConfig:
        try:
            text = userfile.read_text(path, userfile.MAX_CLOUD_INIT)
        except userfile.UserFileError as err:
            raise LibraryError("read", f"'{path}'", _reason(err)) from None
        cfg = _from_text(text, f"'{path}'", path.stem)
        cfg.name = path.stem  # the file name is the name
        return cfg

    def exists(self, name: str) -> bool:
        return self._path(name).is_file()

    def load(self, name: str) -> SavedConfig:
        path = self._path(name)
        if not path.is_file():
            raise LibraryError("load", f"cloud-init config '{name}'", "there is no saved config of that name")
        return self._read(path)

    def save(self, name: str, docs: CloudInitDocs, description: str = "", *, overwrite: bool = True) -> SavedConfig:
        """Save (or replace, unless ``overwrite`` is False) config ``name``."""
        path = self._path(name)
        if not overwrite and path.exists():
            raise LibraryError("save", f"cloud-init config '{name}'", "a config of that name already exists")
        cfg = SavedConfig(name, docs, description)
        try:
            # password hashes inside: the directory and the files are the user's only
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            userfile.write_private_text(path, _dump(cfg))
        except userfile.UserFileError as err:
            raise LibraryError("save", f"cloud-init config '{name}' to '{path}'", err.reason) from None
        except OSError as err:
            raise LibraryError("save", f"cloud-init config '{name}' to '{path}'", err.strerror or str(err)) from None
        return self._read(path)

    def delete(self, name: str) -> None:
        path = self._path(name)
        try:
            path.unlink()
        except FileNotFoundError:
            raise LibraryError("delete", f"cloud-init config '{name}'", "there is no saved config of that name") \
                from None
        except OSError as err:
            raise LibraryError("delete", f"cloud-init config '{name}'", err.strerror or str(err)) from None

    def rename(self, old: str, new: str) -> None:
        src, dst = self._path(old), self._path(new)
        if not src.is_file():
            raise LibraryError("rename", f"cloud-init config '{old}'", "there is no saved config of that name")
        if dst.exists() and dst != src:
            raise LibraryError("rename", f"cloud-init config '{old}' to '{new}'",
                               "a config of that name already exists")
        cfg = self._read(src)
        self.save(new, cfg.docs, cfg.description)
        if dst != src:
            src.unlink()

    def duplicate(self, name: str, new: str | None = None) -> SavedConfig:
        cfg = self.load(name)
        if new is None:
            n = 2
            new = f"{name} (copy)"
            while self.exists(new):
                new = f"{name} (copy {n})"
                n += 1
        return self.save(new, cfg.docs, cfg.description, overwrite=False)

    def import_file(self, path: str | os.PathLike, name: str | None = None, *, overwrite: bool = False) -> SavedConfig:
        """Add the config in file ``path`` (library format or bare user-data)."""
        path = Path(path).expanduser()
        try:
            text = userfile.read_text(path, userfile.MAX_CLOUD_INIT)
        except userfile.UserFileError as err:
            raise LibraryError("import", f"'{path}'", _reason(err)) from None
        cfg = _from_text(text, f"'{path}'", path.stem.removesuffix(".yaml"))
        return self.save(name or cfg.name, cfg.docs, cfg.description, overwrite=overwrite)

    def export_file(self, name: str, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
        """Write config ``name`` to file ``path`` (library format)."""
        cfg = self.load(name)
        path = Path(path).expanduser()
        if path.is_dir():
            path = path / f"{name}.yaml"
        if path.exists() and not overwrite:
            raise LibraryError("export", f"cloud-init config '{name}' to '{path}'", "the file already exists")
        try:
            userfile.write_private_text(path, _dump(cfg))  # 0600: it may hold password hashes
        except userfile.UserFileError as err:
            raise LibraryError("export", f"cloud-init config '{name}' to '{path}'", err.reason) from None
        except OSError as err:
            raise LibraryError("export", f"cloud-init config '{name}' to '{path}'", err.strerror or str(err)) \
                from None
        return path
