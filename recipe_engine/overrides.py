"""Command-line overrides: ``optimizer.params.lr=3e-5`` sets, ``~runtime.tensorboard`` deletes.

Path segments are mapping keys; inside a list a segment picks the item by identity
(``id``, else ``name``) or by integer index. Missing intermediate mappings are created
(the schema reports unknown keys later, with a did-you-mean). A value is read as YAML
(tags refused); text that is not valid YAML stays a string. ``=`` replaces the value
at the path, it does not merge into it.
"""
from __future__ import annotations

from collections.abc import Sequence

from recipe_engine.errors import Origin, RecipeError
from recipe_engine.merge import Merger, did_you_mean, identity
from recipe_engine.yaml_positions import MAX_DEPTH, TAG_MESSAGE, Node, parse_yaml

CLI = Origin(source="cli")
USAGE = "write PATH=VALUE to set a value or ~PATH to delete one, e.g. optimizer.params.lr=3e-5"


class _OverrideError(Exception):
    """Internal: one override cannot be applied (becomes a RecipeError)."""


def apply_overrides(root: Node, overrides: Sequence[str]) -> tuple[Node, list[RecipeError]]:
    """Apply overrides in order; returns the new tree (input untouched) and the errors."""
    errors: list[RecipeError] = []
    for text in overrides:
        text = str(text)
        deleting = text.lstrip().startswith("~")
        raw_path, has_value, raw_value = (text.lstrip()[1:] if deleting else text).partition("=")
        path_text = raw_path.strip()
        try:
            if deleting and has_value:
                raise _OverrideError(f"override '{text}' both deletes and sets; {USAGE}")
            if not deleting and not has_value:
                raise _OverrideError(f"override '{text}' has no '='; {USAGE}")
            segments = _segments(path_text, text)
            if deleting:
                root = _delete(root, segments, 0, [])
            else:
                value, value_errors = _parse_value(raw_value, path_text)
                errors.extend(value_errors)
                if not value_errors:
                    root = _set(root, segments, 0, value, [])
        except _OverrideError as e:
            errors.append(RecipeError(str(e), path_text, CLI))
    return root, errors


def _segments(path_text: str, text: str) -> list[str]:
    segments = path_text.split(".")
    if not path_text or any(not s.strip() for s in segments):
        raise _OverrideError(f"override '{text}' has an empty key in its path; {USAGE}")
    if len(segments) > MAX_DEPTH:
        raise _OverrideError(f"override path is deeper than {MAX_DEPTH} levels; shorten it")
    if any(s.strip().startswith("~") for s in segments):
        raise _OverrideError(f"override '{text}': to delete, put '~' before the whole path (~a.b); {USAGE}")
    if segments[0].strip() == "extends":
        raise _OverrideError("'extends' cannot be overridden; write a recipe that extends this one instead")
    return [s.strip() for s in segments]


def _parse_value(raw: str, path_text: str) -> tuple[Node, list[RecipeError]]:
    """YAML-read the value (tags refused, stray ``~key`` refused); invalid YAML stays a string."""
    tree, problems = parse_yaml(raw, "<command line>", "cli")
    if any(p.message.startswith(TAG_MESSAGE) for p in problems):
        return Node(None, CLI), [RecipeError(f"{TAG_MESSAGE}; remove the tag from the value", path_text, CLI)]
    if tree is None:  # not YAML (or empty): keep the text
        return Node(raw.strip() if raw.strip() else None, CLI), []
    errors = [RecipeError(f"{p.message} (in the value)", path_text, CLI) for p in problems]
    merger = Merger()
    tree = merger.merge(None, _relabel(tree))
    errors += [RecipeError(e.message, f"{path_text}.{e.path}" if e.path else path_text, CLI) for e in merger.errors]
    return tree, errors


def _relabel(node: Node) -> Node:
    """Every node of an override value comes from the command line."""
    if isinstance(node.value, dict):
        return Node({k: _relabel(v) for k, v in node.value.items()}, CLI)
    if isinstance(node.value, list):
        return Node([_relabel(v) for v in node.value], CLI)
    return Node(node.value, CLI)


def _where(labels: list[str]) -> str:
    return ".".join(labels) if labels else "the recipe"


def _is_index(seg: str) -> bool:
    return seg.isascii() and seg.isdigit() and len(seg) < 10


def _find_item(items: list[Node], seg: str, labels: list[str]) -> int:
    """Index of the list item named by ``seg``: identity first, then a non-negative index."""
    ids = [identity(n) for n in items]
    matches = [i for i, ident in enumerate(ids) if ident == seg]
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise _OverrideError(f"several items of {_where(labels)} are called '{seg}'; select one by index")
    if _is_index(seg) and int(seg) < len(items):
        return int(seg)
    known = [i for i in ids if i is not None]
    choices = f"ids: {', '.join(known)}" if known else f"indices 0..{len(items) - 1}" if items else "it is empty"
    raise _OverrideError(f"no item '{seg}' in {_where(labels)} ({choices}); use an item's id, name or index"
                         f"{did_you_mean(seg, known)}")


def _not_container(node: Node, seg: str, labels: list[str], verb: str) -> _OverrideError:
    kind = {bool: "true/false value", int: "number", float: "number", str: "text"}.get(type(node.value), "value")
    return _OverrideError(f"{_where(labels)} is a {kind} ({node.value!r:.40}), not a mapping or list; "
                          f"cannot {verb} '{seg}' inside it")


def _set(node: Node, segs: list[str], i: int, value: Node, labels: list[str]) -> Node:
    """Copy of ``node`` with ``segs[i:]`` set to ``value`` (containers copied along the path only)."""
    if i == len(segs):
        return value
    seg = segs[i]
    current = {} if node.value is None else node.value
    if isinstance(current, dict):
        below = current.get(seg)
        if below is None:
            below = Node({}, CLI) if i + 1 < len(segs) else value
        return Node({**current, seg: _set(below, segs, i + 1, value, labels + [seg])}, node.origin)
    if isinstance(current, list):
        k = _find_item(current, seg, labels)
        items = list(current)
        items[k] = _set(current[k], segs, i + 1, value, labels + [identity(current[k]) or seg])
        return Node(items, node.origin)
    raise _not_container(node, seg, labels, "set")


def _delete(node: Node, segs: list[str], i: int, labels: list[str]) -> Node:
    """Copy of ``node`` without ``segs[i:]``; a missing key is an error with a did-you-mean."""
    seg, last = segs[i], i == len(segs) - 1
    if isinstance(node.value, dict):
        if seg not in node.value:
            raise _OverrideError(f"no '{seg}' in {_where(labels)} to delete; check the path"
                                 f"{did_you_mean(seg, node.value)}")
        if last:
            return Node({k: v for k, v in node.value.items() if k != seg}, node.origin)
        return Node({**node.value, seg: _delete(node.value[seg], segs, i + 1, labels + [seg])}, node.origin)
    if isinstance(node.value, list):
        k = _find_item(node.value, seg, labels)
        items = list(node.value)
        if last:
            del items[k]
        else:
            items[k] = _delete(items[k], segs, i + 1, labels + [identity(items[k]) or seg])
        return Node(items, node.origin)
    raise _not_container(node, seg, labels, "delete")
