"""`extends:` merging with provenance, ``~key`` deletion, and list-item identities.

Rules (docs/architecture.md, "Recipes are data"): mappings deep-merge; a list whose items (in parent and child)
are all mappings with a unique ``id`` or ``name`` merges item by item (same identity:
deep-merge in the parent's position; new: appended); any other list, and an empty child
list, replaces. ``~key`` in a child deletes ``key``; ``{~id: X}`` (or ``{~name: X}``) in a
child list removes the item X. Writing ``~key`` and ``key`` side by side replaces the
parent's value instead of merging into it. When a component's ``name`` changes, the
parent's ``params`` are dropped (with a notice).
"""
from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any

from recipe_engine.errors import Origin, RecipeError
from recipe_engine.yaml_positions import Node

IDENTITY_KEYS = ("id", "name")
DELETE_ITEM_KEYS = ("~id", "~name")


def did_you_mean(word: str, candidates: Iterable[Any]) -> str:
    """`` (did you mean 'x'?)`` for the closest candidate, or ``""``."""
    close = difflib.get_close_matches(str(word), [str(c) for c in candidates], n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _identity_value(value: Any) -> str | None:
    return str(value) if isinstance(value, (str, int)) and not isinstance(value, bool) else None


def plain_identity(item: Any) -> str | None:
    """Identity of a plain list item: its ``id`` if present, else its ``name`` (as text)."""
    if not isinstance(item, dict):
        return None
    for key in IDENTITY_KEYS:
        if item.get(key) is not None:  # a resolved recipe writes `id: null` when none was given
            return _identity_value(item[key])
    return None


def identity(item: Node) -> str | None:
    """Identity of a positioned list item (see :func:`plain_identity`)."""
    if not isinstance(item.value, dict):
        return None
    for key in IDENTITY_KEYS:
        if key in item.value:
            return _identity_value(item.value[key].value)
    return None


def dotted(path: tuple[str | int, ...], data: dict | None = None) -> str:
    """``schedule.phases.label.for``: list items by their id (or name) when ``data`` shows one, else index."""
    parts: list[str] = []
    current: Any = data
    for seg in path:
        if isinstance(current, list) and isinstance(seg, int) and not isinstance(seg, bool) and 0 <= seg < len(current):
            current = current[seg]
            label = plain_identity(current)
            parts.append(label if label is not None else str(seg))
        elif isinstance(current, dict) and seg in current:
            current = current[seg]
            parts.append(str(seg))
        else:
            current = None
            parts.append(str(seg))
    return ".".join(parts)


def is_present(data: Any, path: tuple[str | int, ...]) -> bool:
    """Does the plain tree ``data`` hold a value at ``path`` (written there, not a default)?"""
    cur = data
    for p in path:
        if isinstance(cur, dict) and p in cur:
            cur = cur[p]
        elif isinstance(cur, list) and isinstance(p, int) and 0 <= p < len(cur):
            cur = cur[p]
        else:
            return False
    return True


def _deleted_identity(item: Node) -> tuple[bool, str | None]:
    """``(is a deletion item, identity it deletes)`` for ``{~id: X}`` / ``{~name: X}``."""
    if not isinstance(item.value, dict):
        return False, None
    for key in DELETE_ITEM_KEYS:
        if key in item.value:
            return True, _identity_value(item.value[key].value)
    return False, None


def _unique_identities(items: list[Node]) -> list[str] | None:
    ids = [identity(n) for n in items]
    if any(i is None for i in ids) or len(set(ids)) != len(ids):
        return None
    return ids  # type: ignore[return-value]


class Merger:
    """Merges positioned trees (parent first, child on top), collecting errors and notices."""

    def __init__(self) -> None:
        self.errors: list[RecipeError] = []
        self.notices: list[str] = []

    def _error(self, message: str, where: tuple[str, ...], origin: Origin) -> None:
        self.errors.append(RecipeError(message, ".".join(where), origin))

    def merge(self, parent: Node | None, child: Node, where: tuple[str, ...] = ()) -> Node:
        """``child`` on top of ``parent`` (``None``: nothing below; stray deletions are errors)."""
        if isinstance(child.value, dict):
            below = parent.value if parent is not None and isinstance(parent.value, dict) else None
            return Node(self._mapping(below, child.value, where), child.origin)
        if isinstance(child.value, list):
            below = parent.value if parent is not None and isinstance(parent.value, list) else None
            return Node(self._list(below, child.value, where), child.origin)
        return child

    def _mapping(self, parent: dict[str, Node] | None, child: dict[str, Node], where: tuple[str, ...]) -> dict[str, Node]:
        result = dict(parent) if parent is not None else {}
        deleted: set[str] = set()
        for key, node in child.items():
            if not key.startswith("~"):
                continue
            target = key[1:]
            if target in result:
                del result[target]
                deleted.add(target)
            else:
                siblings = [k for k in result if not k.startswith("~")]
                self._error(f"'{key}' deletes nothing: there is no '{target}' here; remove '{key}' "
                            f"or correct the key{did_you_mean(target, siblings)}", where + (key,), node.origin)
        if where and parent is not None and "params" in result and "name" in child and "name" in parent:
            old, new = parent["name"].value, child["name"].value
            if old != new:
                del result["params"]
                deleted.add("params")
                self.notices.append(f"{'.'.join(where)}: name changed {old}->{new}; parent params dropped")
        for key, node in child.items():
            if key.startswith("~"):
                continue
            below = result.get(key) if key not in deleted else None
            result[key] = self.merge(below, node, where + (key,))
        return result

    def _list(self, parent: list[Node] | None, child: list[Node], where: tuple[str, ...]) -> list[Node]:
        deletions = [(n, ident) for n in child for is_del, ident in [_deleted_identity(n)] if is_del]
        items = [n for n in child if not _deleted_identity(n)[0]]
        parent_ids = _unique_identities(parent) if parent else None
        child_ids = _unique_identities(items)
        if parent is None or parent_ids is None or child_ids is None or not child:
            for node, ident in deletions:
                reason = ("there is no list here to delete from" if not parent else
                          "the items of this list have no unique 'id' or 'name' to find it by")
                self._error(f"'~id: {ident}' deletes nothing: {reason}; write the whole list instead",
                            where, node.origin)
            return [self.merge(None, n, where + (ident if ident is not None else str(i),))
                    for i, (n, ident) in enumerate((n, identity(n)) for n in items)]
        position = {ident: i for i, ident in enumerate(parent_ids)}
        removed: set[int] = set()
        for node, ident in deletions:
            self._check_deletion(node, ident, position, removed, where)
        result: list[Node | None] = list(parent)
        appended: list[Node] = []
        for node, ident in zip(items, child_ids):
            i = position.get(ident)
            if i is None or i in removed:
                appended.append(self.merge(None, node, where + (ident,)))
            else:
                result[i] = self.merge(parent[i], node, where + (ident,))
        return [n for i, n in enumerate(result) if i not in removed and n is not None] + appended

    def _check_deletion(self, node: Node, ident: str | None, position: dict[str, int], removed: set[int],
                        where: tuple[str, ...]) -> None:
        key = next(k for k in DELETE_ITEM_KEYS if k in node.value)
        if len(node.value) > 1:
            self._error(f"a deletion item holds only '{key}: ...'; move the other keys to a separate item",
                        where, node.origin)
        if ident is None or ident not in position or position[ident] in removed:
            self._error(f"'{key}: {ident}' deletes nothing: no item '{ident}' here; remove it or correct the "
                        f"id{did_you_mean(ident or '', position)}", where, node.origin)
            return
        removed.add(position[ident])
