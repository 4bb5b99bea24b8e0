"""YAML written by users, loaded with limits: no alias bombs, no runaway
nesting, no numbers Python cannot print.

PyYAML's composer shares the node an alias points to, so a "billion laughs"
document loads quickly -- and then everything that walks the result (line
maps, schema validation, error messages) expands it, for minutes, until
memory runs out. Deep nesting (``[[[[...``) ends in a RecursionError, a
5,000-digit integer in a ValueError, ``2001-02-30`` in another. Here the
composer keeps count while it builds the node tree and stops with a
:class:`LimitError` (a ``MarkedYAMLError``, so every existing
``except yaml.YAMLError`` catches it, with a line) when

* aliases would expand to more than :data:`MAX_ALIAS_NODES` nodes in all,
  or an alias points into the collection that holds it (a recursive structure);
* nesting (aliases expanded) goes deeper than :data:`MAX_DEPTH` levels;
* an integer has more than :data:`MAX_INT_DIGITS` digits.

``LimitError.path`` is the path of keys / list indexes to the offending node.
A value the constructor cannot build (an impossible date such as
``2001-02-30``) is a LimitError too, with its line and path, instead of a
bare ValueError.

Use :class:`SafeLoader` (or a subclass) with :func:`load`, :func:`compose`
or :func:`load_with_nodes`.
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.events import AliasEvent

MAX_DEPTH = 64
MAX_ALIAS_NODES = 100_000
MAX_INT_DIGITS = 1000

_INT_TAG = "tag:yaml.org,2002:int"
_DEPTH_PATH = 3  # a nesting error names the field, not 64 levels of [0]


def _digits(literal: str) -> int:
    body = literal.replace("_", "").lstrip("+-")
    if body[:2].lower() in ("0x", "0b", "0o"):
        body = body[2:]
    return sum(c.isalnum() for c in body)

__all__ = ["SafeLoader", "LimitError", "load", "compose", "load_with_nodes", "MAX_DEPTH", "MAX_ALIAS_NODES",
           "MAX_INT_DIGITS"]


class LimitError(yaml.MarkedYAMLError):
    """A document that exceeds a limit; ``problem`` says which, ``problem_mark``
    where, ``path`` (keys and list indexes) which node."""

    def __init__(self, problem: str, mark: Any, path: tuple = ()) -> None:
        super().__init__(problem=problem, problem_mark=mark)
        self.path = tuple(path)


class SafeLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` with the limits above."""

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self._reset_limits()

    def _reset_limits(self) -> None:
        self._lim_root: yaml.Node | None = None
        self._lim_path: list = []
        self._lim_heights: list[int] = []
        self._lim_info: dict[int, tuple[int, int]] = {}  # id(node) -> (expanded size, height)
        self._lim_total = 0
        self._lim_alias = 0

    def compose_document(self):  # noqa: D102 -- PyYAML API
        self._reset_limits()
        try:
            self._lim_root = super().compose_document()
            return self._lim_root
        finally:
            self._lim_info = {}

    def _path(self) -> tuple:
        return tuple(p for p in self._lim_path if p is not None)

    def _note_height(self, height: int) -> None:
        if self._lim_heights:
            self._lim_heights[-1] = max(self._lim_heights[-1], height)

    def compose_node(self, parent, index):  # noqa: D102 -- PyYAML API
        if isinstance(parent, yaml.MappingNode):
            elem = index.value if isinstance(index, yaml.ScalarNode) else None
        elif isinstance(parent, yaml.SequenceNode):
            elem = index
        else:
            elem = None
        if self.check_event(AliasEvent):
            event = self.peek_event()
            node = super().compose_node(parent, index)
            info = self._lim_info.get(id(node))
            path = self._path() + ((elem,) if elem is not None else ())
            if info is None:
                raise LimitError(f"the alias *{event.anchor} points into the collection that holds it "
                                 "(a recursive structure)", event.start_mark, path)
            size, height = info
            self._lim_alias += size
            self._lim_total += size
            if self._lim_alias > MAX_ALIAS_NODES:
                raise LimitError(f"the aliases expand to more than {MAX_ALIAS_NODES:,} values "
                                 "(an alias bomb?)", event.start_mark, path)
            if len(self._lim_path) + height > MAX_DEPTH:
                raise LimitError(f"nested more than {MAX_DEPTH} levels deep (with the alias *{event.anchor} "
                                 "expanded)", event.start_mark, path[:_DEPTH_PATH])
            self._note_height(height)
            return node
        self._lim_path.append(elem)
        if len(self._lim_path) > MAX_DEPTH:
            raise LimitError(f"nested more than {MAX_DEPTH} levels deep", self.peek_event().start_mark,
                             self._path()[:_DEPTH_PATH])
        self._lim_heights.append(0)
        start = self._lim_total
        self._lim_total += 1
        node = super().compose_node(parent, index)
        height = 1 + self._lim_heights.pop()
        self._lim_info[id(node)] = (self._lim_total - start, height)
        if isinstance(node, yaml.ScalarNode) and node.tag == _INT_TAG:
            digits = _digits(node.value)
            if digits > MAX_INT_DIGITS:
                raise LimitError(f"a number of {digits:,} digits is too long (at most {MAX_INT_DIGITS:,})",
                                 node.start_mark, self._path())
        self._lim_path.pop()
        self._note_height(height)
        return node

    def construct_object(self, node, deep=False):  # noqa: D102 -- PyYAML API
        try:
            return super().construct_object(node, deep=deep)
        except yaml.YAMLError:
            raise
        except (ValueError, OverflowError, TypeError) as err:
            what = {"timestamp": "date", "int": "number", "float": "number", "binary": "base64 data"}.get(
                str(node.tag).rsplit(":", 1)[-1], "value")
            shown = node.value if isinstance(node, yaml.ScalarNode) else ""
            shown = f" {shown[:40]!r}" if shown else ""
            raise LimitError(f"invalid {what}{shown}: {err}", node.start_mark,
                             _path_to(self._lim_root, node)) from None


def _path_to(root: yaml.Node | None, target: yaml.Node) -> tuple:
    """The keys / indexes from ``root`` to ``target`` (each node visited once)."""
    seen: set[int] = set()
    stack: list[tuple[yaml.Node, tuple]] = [(root, ())] if root is not None else []
    while stack:
        node, path = stack.pop()
        if node is target:
            return path
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                stack.append((k, path))
                stack.append((v, path + ((k.value,) if isinstance(k, yaml.ScalarNode) else ())))
        elif isinstance(node, yaml.SequenceNode):
            stack.extend((v, path + (i,)) for i, v in enumerate(node.value))
    return ()


def _run(text: str, loader: type[SafeLoader], fn):
    ldr = loader(text)
    try:
        return fn(ldr)
    finally:
        ldr.dispose()


def compose(text: str, Loader: type[SafeLoader] = SafeLoader) -> yaml.Node | None:  # noqa: N803 (PyYAML's name)
    """The node tree of a single-document ``text`` (None when empty)."""
    return _run(text, Loader, lambda ldr: ldr.get_single_node())


def load(text: str, Loader: type[SafeLoader] = SafeLoader) -> Any:  # noqa: N803
    """The data of a single-document ``text`` (None when empty)."""
    return _run(text, Loader, lambda ldr: ldr.get_single_data())


def load_with_nodes(text: str, Loader: type[SafeLoader] = SafeLoader) -> tuple[Any, yaml.Node | None]:  # noqa: N803
    """(data, node tree) of a single-document ``text``, composed once."""
    def both(ldr: SafeLoader):
        node = ldr.get_single_node()
        return (ldr.construct_document(node) if node is not None else None), node

    return _run(text, Loader, both)
