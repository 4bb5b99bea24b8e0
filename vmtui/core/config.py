"""The user's configuration file (YAML in the platformdirs config dir).

A missing file means defaults. A broken one means defaults plus a notice that
names the file and the line (``FILE:LINE: setting: message``) -- never a
crash: the file is read with :mod:`vmtui.core.files.userfile` (regular files only,
at most 256 KiB of UTF-8 text) and :mod:`vmtui.core.files.safeyaml` (no alias bombs,
no runaway nesting).

Example::

    stats_interval: 2        # seconds between statistics ticks
    theme: textual-dark
    cpu_graph_column: false  # the list's CPU graph column (G shows / hides it)
    connections:
      - name: local
        uri: qemu:///system
        autoconnect: true
      - name: lab
        uri: qemu+ssh://root@lab1/system
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import platformdirs

from .files import userfile

if TYPE_CHECKING:
    import yaml

APP_NAME = "vmtui"
MIN_INTERVAL, MAX_INTERVAL = 0.5, 3600.0


@dataclass(slots=True)
class SavedConnection:
    name: str
    uri: str
    autoconnect: bool = False


@dataclass(slots=True)
class Config:
    path: Path | None = None
    connections: list[SavedConnection] = field(default_factory=list)
    stats_interval: float = 2.0
    theme: str = "textual-dark"
    cpu_graph_column: bool = False
    notices: list[str] = field(default_factory=list)
    #: the file exists but could not be used at all (unreadable, not YAML):
    #: its settings, saved connections included, are unknown
    unusable: bool = False

    @property
    def autoconnect(self) -> list[SavedConnection]:
        """The connections opened at start (several: one list of several hosts)."""
        return [c for c in self.connections if c.autoconnect]

    @property
    def autoconnect_uri(self) -> str | None:
        for c in self.connections:
            if c.autoconnect:
                return c.uri
        return None


def default_config_path() -> Path:
    override = os.environ.get("VMTUI_CONFIG")
    if override:
        return Path(override)
    return Path(platformdirs.user_config_dir(APP_NAME)) / "config.yaml"


def _line_of(node_marks: dict, key: str) -> str:
    mark = node_marks.get(key)
    return f":{mark}" if mark else ""


def _key_lines(node: "yaml.Node | None") -> dict[str, int]:
    """Line numbers of top-level keys, so notices can point at them."""
    import yaml

    lines: dict[str, int] = {}
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            if isinstance(k, yaml.ScalarNode):
                lines[k.value] = k.start_mark.line + 1
    return lines


def _unusable(cfg: Config, notice: str) -> Config:
    cfg.notices.append(notice)
    cfg.unusable = True
    return cfg


def load_config(path: Path | str | None = None) -> Config:
    """Read the config; problems become ``notices``, never exceptions."""
    path = Path(path) if path is not None else default_config_path()
    cfg = Config(path=path)
    try:
        text = userfile.read_text(path, userfile.MAX_CONFIG)
    except userfile.UserFileError as err:
        if err.reason == "no such file":
            return cfg
        where = f":{err.line}" if err.line else ""
        return _unusable(cfg, f"{path}{where}: {err.reason}; using defaults")
    import yaml  # only when there is a file: most starts have none

    from .files import safeyaml

    try:
        data, root = safeyaml.load_with_nodes(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None) or getattr(err, "context_mark", None)
        where = f":{mark.line + 1}" if mark else ""
        problem = getattr(err, "problem", None) or str(err)
        if not isinstance(err, safeyaml.LimitError):
            problem = f"not valid YAML: {problem}"
        setting = ".".join(map(str, getattr(err, "path", ())))
        setting = f"{setting}: " if setting else ""
        return _unusable(cfg, f"{path}{where}: {setting}{problem}; using defaults")
    if data is None:
        return cfg
    lines = _key_lines(root)
    if not isinstance(data, dict):
        return _unusable(cfg, f"{path}:1: expected a mapping of settings; using defaults")

    if "stats_interval" in data:
        value = data["stats_interval"]
        if isinstance(value, (int, float)) and not isinstance(value, bool) and MIN_INTERVAL <= value <= MAX_INTERVAL:
            cfg.stats_interval = float(value)
        else:
            cfg.notices.append(f"{path}{_line_of(lines, 'stats_interval')}: stats_interval: must be a number "
                               f"of seconds between {MIN_INTERVAL:g} and {MAX_INTERVAL:g}; using 2")
    if "theme" in data:
        if isinstance(data["theme"], str) and data["theme"].strip():
            cfg.theme = data["theme"].strip()
        else:
            cfg.notices.append(f"{path}{_line_of(lines, 'theme')}: theme: must be a name; using {cfg.theme}")
    if "cpu_graph_column" in data:
        if isinstance(data["cpu_graph_column"], bool):
            cfg.cpu_graph_column = data["cpu_graph_column"]
        else:
            cfg.notices.append(f"{path}{_line_of(lines, 'cpu_graph_column')}: cpu_graph_column: must be true "
                               "or false; using false")
    conns = data.get("connections", [])
    if conns is None:
        conns = []
    if not isinstance(conns, list):
        cfg.notices.append(f"{path}{_line_of(lines, 'connections')}: connections: must be a list")
        conns = []
    conn_node = _value_node(root, "connections")
    for i, item in enumerate(conns, 1):
        where = _item_line(conn_node, i - 1) or _line_of(lines, "connections")
        if not isinstance(item, dict) or not isinstance(item.get("uri"), str) or "://" not in item["uri"]:
            cfg.notices.append(f"{path}{where}: connections[{i - 1}]: needs a 'uri' "
                               "such as qemu:///system; skipped")
            continue
        problem = uri_problem(item["uri"])
        if problem:
            cfg.notices.append(f"{path}{where}: connections[{i - 1}].uri: {problem}; skipped")
            continue
        cfg.connections.append(SavedConnection(
            name=str(item.get("name") or item["uri"]),
            uri=item["uri"],
            autoconnect=bool(item.get("autoconnect", False)),
        ))
    known = {"stats_interval", "theme", "cpu_graph_column", "connections"}
    for key in data:
        if key not in known:
            shown = str(key) if len(str(key)) <= 60 else str(key)[:59] + "…"
            cfg.notices.append(f"{path}{_line_of(lines, str(key))}: unknown setting '{shown}' ignored")
    return cfg


def _value_node(root: "yaml.Node | None", key: str) -> "yaml.Node | None":
    import yaml

    if isinstance(root, yaml.MappingNode):
        for k, v in root.value:
            if isinstance(k, yaml.ScalarNode) and k.value == key:
                return v
    return None


def _item_line(seq: "yaml.Node | None", index: int) -> str:
    import yaml

    if isinstance(seq, yaml.SequenceNode) and 0 <= index < len(seq.value):
        return f":{seq.value[index].start_mark.line + 1}"
    return ""


def uri_problem(uri: str) -> str | None:
    """A libvirt URI that cannot work: a broken host part or a port out of range."""
    from urllib.parse import urlsplit

    if any(c.isspace() for c in uri):
        return "the URI must not contain spaces"
    try:
        port = urlsplit(uri).port
    except ValueError as err:
        if "Port" in str(err) or "port" in str(err):
            return "the port must be a number from 1 to 65535"
        return f"not a valid URI ({err})"
    if port == 0:
        return "the port must be a number from 1 to 65535"
    return None


def save_config(cfg: Config, path: Path | None = None) -> Path:
    path = Path(path or cfg.path or default_config_path())
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {
        "stats_interval": cfg.stats_interval,
        "theme": cfg.theme,
        "cpu_graph_column": cfg.cpu_graph_column,
        "connections": [{"name": c.name, "uri": c.uri, "autoconnect": c.autoconnect} for c in cfg.connections],
    }
    import yaml

    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path
