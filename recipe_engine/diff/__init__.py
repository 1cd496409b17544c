"""``recipe-engine diff A B``: a semantic diff of two recipes or run folders (docs/architecture.md, section 5).

The resolved, typed recipes are compared (every default written out), never the text:
phases, objective terms and metrics are matched by identity (``id``, else ``name``), a
component whose ``name`` changed is one replacement, numbers show their ratio, and the
schedules are also compared as compiled timelines.  Changes are grouped method / runtime
/ paths, each with where it was set on both sides.  For two run folders the environment,
the data hashes and a metrics table with a significance test are added.

Exit code: 0 same method (equal fingerprints), 1 the method differs, 2 error.

Loading a side is ``sides``; diffing is ``recipes`` (recipe changes), ``timeline`` (compiled
schedules) and ``run_results`` (environment, data, metrics), put together by ``result``;
``render`` writes the result as text, markdown or JSON.
"""
from __future__ import annotations

from pathlib import Path

from recipe_engine.diff.recipes import recipe_changes
from recipe_engine.diff.render import render
from recipe_engine.diff.result import diff
from recipe_engine.diff.sides import Side, load_side
from recipe_engine.resolve import Resolved


def diff_paths(a: str, b: str, fmt_name: str = "text") -> tuple[str, int]:
    """The whole ``diff`` command: (rendered output, exit code 0 same method / 1 different)."""
    res = diff(a, b)
    return render(res, fmt_name), res.exit_code


def method_changes(run_dir: Path, resolved: Resolved, source: str) -> list[str]:
    """What a resume with ``resolved`` would change in the method of the run in ``run_dir``:
    one line per change, with where it was set (``--resume`` prints them when it refuses)."""
    now = Side("the recipe given now", resolved, None, source)
    return [f"  {c.text}    [run: {c.from_a} | now: {c.from_b}]"
            for c in recipe_changes(load_side(run_dir), now) if c.group == "method"]


__all__ = ["diff", "diff_paths", "method_changes"]
