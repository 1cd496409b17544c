"""Every difference of two resolved recipes, as changes grouped method / runtime / paths.

Phases, objective terms and metrics are matched by identity (``id``, else ``name``), a
component whose ``name`` changed is one replacement, numbers show their ratio, and each
change says where its value was set on both sides (file:line, base, command line, default).
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from recipe_engine.diff.sides import Side
from recipe_engine.load import origin_of
from recipe_engine.merge import is_present, plain_identity
from recipe_engine.schema import METHOD_SECTIONS

GROUPS = ("method", "runtime", "paths")
#: list keys whose items are matched by identity (``id``, else ``name``)
ID_LISTS = ("phases", "objectives", "metrics")
PATH_SETTINGS = {("name",), ("description",), ("runtime", "data_root"), ("runtime", "output_dir")}
ABSENT = "-"


@dataclass
class Change:
    group: str  # method | runtime | paths
    path: str  # dotted, list items by id
    kind: str  # changed | added | removed | replaced | reordered
    a: Any
    b: Any
    text: str  # one-line rendering, without provenance
    from_a: str
    from_b: str
    ratio: float | None = None


def group_of(path: tuple) -> str:
    if tuple(path[:2]) in PATH_SETTINGS or tuple(path[:1]) in PATH_SETTINGS:
        return "paths"
    return "method" if path and path[0] in METHOD_SECTIONS else "runtime"


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def show(v: Any) -> str:
    """A value in one line: floats as their shortest repr, mappings and lists in flow style."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "null"
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, (int, str)):
        return str(v) if isinstance(v, int) or (v and v.strip() == v and ":" not in v and "," not in v) else json.dumps(v)
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}: {show(x)}" for k, x in v.items()) + "}"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(show(x) for x in v) + "]"
    return str(v)


def ratio(a: Any, b: Any) -> float | None:
    if _is_number(a) and _is_number(b) and a != 0 and a != b:
        r = b / a
        return r if math.isfinite(r) else None
    return None


def _ratio_text(r: float | None) -> str:
    return "" if r is None else f" (x{r:.3g})"


def _raw(side: Side, path: tuple) -> Any:
    cur: Any = side.resolved.loaded.data
    for p in path:
        cur = cur[p]
    return cur


def provenance(side: Side, path: tuple | None) -> str:
    """Where the value at ``path`` (an index path) was set: file:line, base, command line, or default."""
    if path is None:
        return ABSENT
    if not is_present(side.resolved.loaded.data, path):
        return "default"
    return str(origin_of(side.resolved.loaded, path))


def _written(side: Side, path: tuple, resolved_value: Any) -> Any:
    """What the recipe wrote at ``path`` (compact), else the resolved value."""
    return _raw(side, path) if is_present(side.resolved.loaded.data, path) else resolved_value


def _identity(item: Any) -> str | None:
    if not isinstance(item, dict):
        return None
    value = item.get("id") if item.get("id") is not None else item.get("name")
    return plain_identity({"id": value}) if value is not None else None


def _id_list(key: Any, a: list, b: list) -> bool:
    if key not in ID_LISTS:
        return False
    for items in (a, b):
        ids = [_identity(x) for x in items]
        if any(i is None for i in ids) or len(set(ids)) != len(ids):
            return False
    return True


def _is_component(v: Any) -> bool:
    return isinstance(v, dict) and "name" in v and "params" in v


class _Differ:
    def __init__(self, a: Side, b: Side) -> None:
        self.a, self.b = a, b
        self.changes: list[Change] = []

    def add(self, kind: str, disp: tuple, a: Any, b: Any, pa: tuple | None, pb: tuple | None, text: str,
            r: float | None = None) -> None:
        ref = pa if pa is not None else pb
        self.changes.append(Change(group_of(ref), ".".join(map(str, disp)), kind, a, b, text,
                                   provenance(self.a, pa), provenance(self.b, pb), r))

    def walk(self, a: Any, b: Any, pa: tuple, pb: tuple, disp: tuple) -> None:
        if a == b:
            return
        name = ".".join(map(str, disp))
        if _is_component(a) and _is_component(b) and a["name"] != b["name"]:
            self.add("replaced", disp, {"name": a["name"], "params": a["params"]}, {"name": b["name"], "params": b["params"]},
                     pa + ("name",), pb + ("name",),
                     f"{name}: {a['name']} {show(a['params'])} -> {b['name']} {show(b['params'])}")
            a = {k: v for k, v in a.items() if k not in ("name", "params")}
            b = {k: v for k, v in b.items() if k not in ("name", "params")}
        if isinstance(a, dict) and isinstance(b, dict):
            for key in list(a) + [k for k in b if k not in a]:
                if key not in b:
                    self.add("removed", disp + (key,), a[key], None, pa + (key,), None, f"{name}.{key}: removed {show(a[key])}")
                elif key not in a:
                    self.add("added", disp + (key,), None, b[key], None, pb + (key,), f"{name}.{key}: added {show(b[key])}")
                else:
                    self.walk(a[key], b[key], pa + (key,), pb + (key,), disp + (key,))
            return
        if isinstance(a, list) and isinstance(b, list) and _id_list(disp[-1] if disp else None, a, b):
            self.walk_id_list(a, b, pa, pb, disp)
            return
        r = ratio(a, b)
        self.add("changed", disp, a, b, pa, pb, f"{name}: {show(a)} -> {show(b)}{_ratio_text(r)}", r)

    def walk_id_list(self, a: list, b: list, pa: tuple, pb: tuple, disp: tuple) -> None:
        name = ".".join(map(str, disp))
        ids_a, ids_b = [_identity(x) for x in a], [_identity(x) for x in b]
        gone = [i for i, x in enumerate(ids_a) if x not in ids_b]
        new = [j for j, x in enumerate(ids_b) if x not in ids_a]
        # an item without an explicit id whose name changed in place is one replacement, not remove + add
        for i in list(gone):
            j = next((j for j in new if j == i and a[i].get("id") is None and b[j].get("id") is None), None)
            if j is not None:
                gone.remove(i)
                new.remove(j)
                self.walk(a[i], b[j], pa + (i,), pb + (j,), disp + (ids_a[i],))
        common_a = [x for x in ids_a if x in ids_b]
        common_b = [x for x in ids_b if x in ids_a]
        if common_a != common_b:
            self.add("reordered", disp, common_a, common_b, pa, pb, f"{name}: order {show(common_a)} -> {show(common_b)}")
        for i in gone:
            shown = _written(self.a, pa + (i,), a[i])
            self.add("removed", disp + (ids_a[i],), a[i], None, pa + (i,), None, f"{name}.{ids_a[i]}: removed {show(shown)}")
        for j, ident in enumerate(ids_b):  # in B's order: additions where they were inserted
            if j in new:
                shown = _written(self.b, pb + (j,), b[j])
                self.add("added", disp + (ident,), None, b[j], None, pb + (j,), f"{name}.{ident}: added {show(shown)}")
            elif ident in ids_a:
                i = ids_a.index(ident)
                self.walk(a[i], b[j], pa + (i,), pb + (j,), disp + (ident,))


def recipe_changes(a: Side, b: Side) -> list[Change]:
    """Every difference of the resolved recipes, method first, then runtime, then paths."""
    differ = _Differ(a, b)
    differ.walk(a.resolved.data, b.resolved.data, (), (), ())
    return sorted(differ.changes, key=lambda c: GROUPS.index(c.group))
