"""YAML output for files people read and edit: block style, mappings in the
order given, multi-line strings as ``|`` literals.

Pure PyYAML (safe dumper): no libvirt, no Textual.
"""

from __future__ import annotations

from typing import Any

import yaml

__all__ = ["BlockDumper", "dump_block"]


class BlockDumper(yaml.SafeDumper):
    """Block style; multi-line strings as ``|`` literals."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


BlockDumper.add_representer(str, _represent_str)


def dump_block(data: Any, *, width: int = 4096) -> str:
    """``data`` as block-style YAML, keys in their order, non-ASCII kept as is."""
    return yaml.dump(data, Dumper=BlockDumper, sort_keys=False, default_flow_style=False,
                     allow_unicode=True, width=width)
