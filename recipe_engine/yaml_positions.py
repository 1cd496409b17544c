"""Safe YAML reading that remembers where every value was written.

We compose with ``yaml.SafeLoader`` (nodes carry marks) and build plain values ourselves,
so no YAML tag can ever construct or import anything: a tag other than the standard
scalar/collection tags is reported and its value dropped.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import yaml
from yaml.nodes import MappingNode, ScalarNode, SequenceNode

from recipe_engine.errors import Origin

MAX_ALIAS_NODES = 10_000  # nodes expanded through aliases, per document (billion-laughs guard)
MAX_DEPTH = 100  # nesting levels of mappings/lists
YAML_TAG = "tag:yaml.org,2002:"
TAG_MESSAGE = "tags are not allowed in recipes; recipes are data, not code"

Path_ = tuple[str | int, ...]


@dataclass
class Node:
    """A value plus where it was written (a mapping entry: its key; a list item: the item).

    ``value`` is ``dict[str, Node]``, ``list[Node]`` or a plain scalar. Nodes are never
    mutated after construction; merges and overrides build new containers.
    """

    value: Any
    origin: Origin


@dataclass
class Problem:
    """A user error found while reading; ``path`` is rendered to a dotted string later."""

    message: str
    path: Path_
    origin: Origin


class _Loader(yaml.SafeLoader):
    """SafeLoader that also reads YAML 1.2 floats such as ``3e-5`` and ``1.0e5`` as floats.

    (YAML 1.1, hence plain PyYAML, reads them as strings: a classic learning-rate trap.)
    """


_Loader.add_implicit_resolver(
    YAML_TAG + "float",
    re.compile(r"^(?:[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+|[-+]?\.[0-9_]+[eE][-+]?[0-9]+)$"),
    list("-+0123456789."),
)

_CONSTRUCTOR = yaml.constructor.SafeConstructor()
_SCALAR_AS_TEXT = {"str", "timestamp", "value", "merge"}  # timestamps stay text: data is plain
_SCALAR_CONVERT = {
    "int": _CONSTRUCTOR.construct_yaml_int,
    "float": _CONSTRUCTOR.construct_yaml_float,
    "bool": _CONSTRUCTOR.construct_yaml_bool,
    "null": _CONSTRUCTOR.construct_yaml_null,
}


def short_tag(tag: str) -> str:
    return "!!" + tag[len(YAML_TAG):] if tag.startswith(YAML_TAG) else tag


def _line_col(text: str, position: int) -> tuple[int, int]:
    before = text[:position]
    line = before.count("\n") + 1
    return line, position - (before.rfind("\n") + 1) + 1


def parse_yaml(text: str, filename: str, source: str) -> tuple[Node | None, list[Problem]]:
    """Compose ``text`` safely and build a positioned tree; never raises for bad input.

    Returns ``(None, problems)`` when nothing usable could be read (syntax error, empty).
    """
    whole = Origin(filename, None, None, source)
    try:
        loader = _Loader(text)
    except yaml.reader.ReaderError as e:  # non-printable characters are checked up front
        line, col = _line_col(text, e.position)
        where = Origin(filename, line, col, source)
        return None, [Problem(f"special character U+{int(e.character):04X} is not allowed in YAML; "
                              "remove it or save the file as plain UTF-8 text", (), where)]
    try:
        root = loader.get_single_node()
    except yaml.MarkedYAMLError as e:
        return None, [_syntax_problem(e, filename, source)]
    except yaml.YAMLError as e:
        return None, [Problem(f"YAML error: {e}; fix the YAML", (), whole)]
    except RecursionError:
        return None, [Problem(f"nesting is too deep to read; a recipe nests at most {MAX_DEPTH} levels", (), whole)]
    finally:
        loader.dispose()
    if root is None or (isinstance(root, ScalarNode) and root.tag == YAML_TAG + "null" and root.value in ("", "~")):
        return None, [Problem("the file is empty; a recipe is a mapping of sections such as name:, model:, data:",
                              (), Origin(filename, 1, 1, source))]
    walker = _Walker(filename, source)
    tree = walker.walk(root, walker.origin(root.start_mark), (), 0)
    return tree, walker.problems


def _syntax_problem(e: yaml.MarkedYAMLError, filename: str, source: str) -> Problem:
    mark = e.problem_mark or e.context_mark
    where = Origin(filename, mark.line + 1, mark.column + 1, source) if mark else Origin(filename, None, None, source)
    problem = (e.problem or "invalid YAML").strip()
    if "another document" in problem:
        return Problem("a recipe is a single YAML document; remove the second '---' document", (), where)
    context = f" ({e.context.strip()})" if e.context else ""
    return Problem(f"YAML syntax error: {problem}{context}; fix the YAML at this position", (), where)


class _Walker:
    """Turns composed nodes into :class:`Node` trees, checking tags, keys, aliases, depth."""

    def __init__(self, filename: str, source: str):
        self.filename, self.source = filename, source
        self.problems: list[Problem] = []
        self._seen: set[int] = set()  # composed nodes walked once: meeting one again means an alias
        self._active: set[int] = set()  # composed nodes on the current walk path (recursive aliases)
        self._alias_depth = 0
        self._alias_nodes = 0
        self._too_many = self._too_deep = False

    def origin(self, mark: yaml.Mark) -> Origin:
        return Origin(self.filename, mark.line + 1, mark.column + 1, self.source)

    def _problem(self, message: str, path: Path_, mark: yaml.Mark) -> None:
        self.problems.append(Problem(message, path, self.origin(mark)))

    def walk(self, node: yaml.Node, origin: Origin, path: Path_, depth: int) -> Node:
        key = id(node)
        via_alias = key in self._seen
        self._seen.add(key)
        if key in self._active:
            self._problem("an alias refers to the value that contains it; remove the recursive alias",
                          path, node.start_mark)
            return Node(None, origin)
        if via_alias:
            self._alias_depth += 1
        try:
            if self._alias_depth:
                self._alias_nodes += 1
                if self._alias_nodes > MAX_ALIAS_NODES:
                    if not self._too_many:
                        self._too_many = True
                        self._problem(f"aliases expand to more than {MAX_ALIAS_NODES} values "
                                      "(a 'billion laughs' document?); write the values out or use fewer aliases",
                                      path, node.start_mark)
                    return Node(None, origin)
            if depth > MAX_DEPTH:
                if not self._too_deep:
                    self._too_deep = True
                    self._problem(f"nesting deeper than {MAX_DEPTH} levels; flatten the recipe", path, node.start_mark)
                return Node(None, origin)
            self._active.add(key)
            try:
                return Node(self._value(node, path, depth), origin)
            finally:
                self._active.discard(key)
        finally:
            if via_alias:
                self._alias_depth -= 1

    def _value(self, node: yaml.Node, path: Path_, depth: int) -> Any:
        if isinstance(node, ScalarNode):
            return self._scalar(node, path)
        expected = YAML_TAG + ("seq" if isinstance(node, SequenceNode) else "map")
        if node.tag != expected:
            self._problem(f"{TAG_MESSAGE}; remove the tag '{short_tag(node.tag)}'", path, node.start_mark)
            return None
        if isinstance(node, SequenceNode):
            return [self.walk(item, self.origin(item.start_mark), path + (i,), depth + 1)
                    for i, item in enumerate(node.value)]
        return self._mapping(node, path, depth)

    def _scalar(self, node: ScalarNode, path: Path_) -> Any:
        tag = node.tag[len(YAML_TAG):] if node.tag.startswith(YAML_TAG) else None
        if tag in _SCALAR_AS_TEXT:
            return node.value
        convert = _SCALAR_CONVERT.get(tag)
        if convert is None:
            self._problem(f"{TAG_MESSAGE}; remove the tag '{short_tag(node.tag)}'", path, node.start_mark)
            return None
        try:
            return convert(node)
        except (ValueError, KeyError, OverflowError):
            if tag == "int" and len(node.value) > 1000:
                fix = "this number has too many digits; quote it or write it as a float (1.0e300)"
            else:
                fix = f"cannot read {node.value[:40]!r} as {short_tag(node.tag)}; write a valid value or remove the tag"
            self._problem(fix, path, node.start_mark)
            return None

    def _key(self, key_node: yaml.Node, path: Path_) -> str | None:
        if isinstance(key_node, ScalarNode) and key_node.tag[len(YAML_TAG):] in _SCALAR_AS_TEXT \
                and key_node.tag.startswith(YAML_TAG):
            return key_node.value  # text, or an implicit timestamp / '=' read as text
        if isinstance(key_node, ScalarNode):
            if key_node.tag.startswith(YAML_TAG) and key_node.tag[len(YAML_TAG):] in _SCALAR_CONVERT:
                self._problem(f"keys must be text, not {short_tag(key_node.tag)[2:]} {key_node.value!r}; "
                              f"put the key in quotes: '{key_node.value}'", path, key_node.start_mark)
            else:
                self._problem(f"{TAG_MESSAGE}; remove the tag '{short_tag(key_node.tag)}'", path, key_node.start_mark)
        else:
            kind = "a list" if isinstance(key_node, SequenceNode) else "a mapping"
            self._problem(f"keys must be text, not {kind}; write a plain key", path, key_node.start_mark)
        return None

    def _mapping(self, node: MappingNode, path: Path_, depth: int) -> dict[str, Node]:
        merged: dict[str, Node] = {}
        explicit: dict[str, Node] = {}
        first_line: dict[str, int] = {}
        for key_node, value_node in node.value:
            if isinstance(key_node, ScalarNode) and key_node.tag == YAML_TAG + "merge":
                self._merge_key(key_node, value_node, path, depth, merged)
                continue
            key = self._key(key_node, path)
            if key is None:
                continue
            line = key_node.start_mark.line + 1
            if key in first_line:
                self._problem(f"duplicate key '{key}' (first at line {first_line[key]}); remove one",
                              path + (key,), key_node.start_mark)
                explicit.pop(key)  # keep the last value, in the last position
            else:
                first_line[key] = line
            explicit[key] = self.walk(value_node, self.origin(key_node.start_mark), path + (key,), depth + 1)
        return {**merged, **explicit}

    def _merge_key(self, key_node: ScalarNode, value_node: yaml.Node, path: Path_, depth: int,
                   merged: dict[str, Node]) -> None:
        """YAML ``<<: *anchor`` (or a list of anchors): earlier sources win, explicit keys win over all."""
        source = self.walk(value_node, self.origin(key_node.start_mark), path, depth + 1)
        sources = source.value if isinstance(source.value, list) else [source]
        for item in sources:
            if not isinstance(item.value, dict):
                self._problem("'<<' merges a mapping or a list of mappings; point it at a mapping anchor",
                              path, key_node.start_mark)
                return
            for key, value in item.value.items():
                merged.setdefault(key, value)


def to_plain(node: Node | None) -> Any:
    """The plain value (dict/list/scalar) of a positioned tree."""
    if node is None:
        return None
    if isinstance(node.value, dict):
        return {k: to_plain(v) for k, v in node.value.items()}
    if isinstance(node.value, list):
        return [to_plain(v) for v in node.value]
    return node.value


def flatten(node: Node) -> tuple[Any, dict[Path_, Origin]]:
    """Plain value plus the origin of every node path (keys and list indices)."""
    origins: dict[Path_, Origin] = {}

    def visit(n: Node, path: Path_) -> Any:
        origins[path] = n.origin
        if isinstance(n.value, dict):
            return {k: visit(v, path + (k,)) for k, v in n.value.items()}
        if isinstance(n.value, list):
            return [visit(v, path + (i,)) for i, v in enumerate(n.value)]
        return n.value

    return visit(node, ()), origins
