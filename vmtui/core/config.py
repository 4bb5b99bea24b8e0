"""The user's configuration file (YAML in the platformdirs config dir).

A missing file means defaults. A broken one means defaults plus a notice that
names the file and the line — never a crash.

Example::

    stats_interval: 2        # seconds between statistics ticks
    theme: textual-dark
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

import platformdirs
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
    notices: list[str] = field(default_factory=list)

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
    return f", line {mark}" if mark else ""


def _key_lines(text: str) -> dict[str, int]:
    """Line numbers of top-level keys, so notices can point at them."""
    lines: dict[str, int] = {}
    try:
        node = yaml.compose(text)
    except yaml.YAMLError:
        return lines
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            if isinstance(k, yaml.ScalarNode):
                lines[k.value] = k.start_mark.line + 1
    return lines


def load_config(path: Path | str | None = None) -> Config:
    """Read the config; problems become ``notices``, never exceptions."""
    path = Path(path) if path is not None else default_config_path()
    cfg = Config(path=path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return cfg
    except OSError as err:
        cfg.notices.append(f"{path}: cannot read ({err.strerror}); using defaults")
        return cfg
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f", line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or str(err)
        cfg.notices.append(f"{path}{where}: {problem}; using defaults")
        return cfg
    if data is None:
        return cfg
    lines = _key_lines(text)
    if not isinstance(data, dict):
        cfg.notices.append(f"{path}, line 1: expected a mapping of settings; using defaults")
        return cfg

    if "stats_interval" in data:
        value = data["stats_interval"]
        if isinstance(value, (int, float)) and not isinstance(value, bool) and MIN_INTERVAL <= value <= MAX_INTERVAL:
            cfg.stats_interval = float(value)
        else:
            cfg.notices.append(f"{path}{_line_of(lines, 'stats_interval')}: stats_interval must be a number "
                               f"of seconds between {MIN_INTERVAL:g} and {MAX_INTERVAL:g}; using 2")
    if "theme" in data:
        if isinstance(data["theme"], str) and data["theme"].strip():
            cfg.theme = data["theme"].strip()
        else:
            cfg.notices.append(f"{path}{_line_of(lines, 'theme')}: theme must be a name; using {cfg.theme}")
    conns = data.get("connections", [])
    if conns is None:
        conns = []
    if not isinstance(conns, list):
        cfg.notices.append(f"{path}{_line_of(lines, 'connections')}: connections must be a list")
        conns = []
    for i, item in enumerate(conns, 1):
        if not isinstance(item, dict) or not isinstance(item.get("uri"), str) or "://" not in item["uri"]:
            cfg.notices.append(f"{path}{_line_of(lines, 'connections')}: connection #{i} needs a 'uri' "
                               "such as qemu:///system; skipped")
            continue
        cfg.connections.append(SavedConnection(
            name=str(item.get("name") or item["uri"]),
            uri=item["uri"],
            autoconnect=bool(item.get("autoconnect", False)),
        ))
    known = {"stats_interval", "theme", "connections"}
    for key in data:
        if key not in known:
            cfg.notices.append(f"{path}{_line_of(lines, str(key))}: unknown setting '{key}' ignored")
    return cfg


def save_config(cfg: Config, path: Path | None = None) -> Path:
    path = Path(path or cfg.path or default_config_path())
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {
        "stats_interval": cfg.stats_interval,
        "theme": cfg.theme,
        "connections": [{"name": c.name, "uri": c.uri, "autoconnect": c.autoconnect} for c in cfg.connections],
    }
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path
