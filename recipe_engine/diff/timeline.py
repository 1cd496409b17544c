"""The schedules of two recipes as compiled timelines, side by side; the phase structure
when the data (needed for the number of steps per epoch) cannot be loaded."""
from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any

from recipe_engine.bundles import recipe_timeline
from recipe_engine.diff.recipes import show
from recipe_engine.diff.sides import Side
from recipe_engine.plan import describe, walk_phases
from recipe_engine.schema import Recipe


@dataclass
class TimelineDiff:
    identical: bool
    header: list[str]
    rows: list[list[str]]  # side by side, first cell "" or a marker
    note: str = ""
    compiled: bool = True  # False: data unavailable, the phase structure is compared instead


def _segment_rows(side: Side) -> tuple[list[list[str]], str]:
    tl = recipe_timeline(side.resolved.recipe)
    rows = [[r[1], r[3], r[4], r[5], r[6]] for r in describe(tl)]
    return rows, f"{tl.steps_per_epoch} steps/epoch, {tl.train_steps} train-data steps, {tl.total_steps} optimizer steps"


def _length_text(ph: dict[str, Any]) -> str:
    if ph.get("until"):
        return "until end"
    spec = ph.get("for")
    if isinstance(spec, dict):
        return " ".join(f"{v} {k}" for k, v in spec.items() if v is not None)
    return str(spec)


def _phase_rows(recipe: Recipe) -> list[list[str]]:
    """The phase structure (when the data is unavailable): one row per phase, nested ones indented."""
    rows: list[list[str]] = []
    for node in walk_phases(recipe.schedule.phases):
        ph = node.phase.model_dump(mode="json", by_alias=True)
        pad = "  " * node.depth
        if not node.is_leaf:
            rows.append([f"{pad}{ph['id']}", f"repeat {ph['repeat']}", "", "", ""])
            continue
        terms = ", ".join((t.get("id") or t["name"]) + ("" if t.get("weight") == 1.0 else f" x{show(t.get('weight'))}")
                          for t in ph.get("objectives") or [])
        opt = ph.get("optimizer")
        opt_text = "main" if not opt else f"{opt['name']} {show(opt['params'])}" + (" (reset after)" if opt.get("reset_state") else "")
        rows.append([f"{pad}{ph['id']}", _length_text(ph), "", terms, opt_text])
    return rows


def timeline_diff(a: Side, b: Side) -> TimelineDiff:
    """The two schedules as compiled timelines, aligned side by side (``difflib`` on the segments)."""
    note, compiled = "", True
    try:
        rows_a, info_a = _segment_rows(a)
        rows_b, info_b = _segment_rows(b)
        note = f"A: {info_a}; B: {info_b}"
    except Exception as exc:  # noqa: BLE001 - data missing or unreadable: fall back to the phase structure
        reason = str(exc).split(";")[0]
        rows_a, rows_b = _phase_rows(a.resolved.recipe), _phase_rows(b.resolved.recipe)
        note, compiled = f"data unavailable ({reason}); the phase structure is compared instead", False
    header = ["", "A phase", "steps", "data", "terms", "optimizer", "B phase", "steps", "data", "terms", "optimizer"]
    blank = [""] * 5
    rows: list[list[str]] = []
    # align on what a segment is (phase, data, terms, optimizer), then mark length changes with "~"
    shape = lambda r: (r[0], r[2], r[3], r[4])  # noqa: E731
    matcher = difflib.SequenceMatcher(a=[shape(r) for r in rows_a], b=[shape(r) for r in rows_b], autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        left, right = rows_a[i1:i2], rows_b[j1:j2]
        for k in range(max(len(left), len(right))):
            la = left[k] if k < len(left) else blank
            rb = right[k] if k < len(right) else blank
            if la is blank or rb is blank:
                mark = "+" if la is blank else "-"
            else:
                mark = "" if la == rb else "~"
            rows.append([mark, *la, *rb])
    identical = rows_a == rows_b
    return TimelineDiff(identical, header, rows, note, compiled)
