"""The two sides of a diff: a recipe file, or a run folder (its recipe and its results)."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from recipe_engine.errors import RecipeErrors, UserError
from recipe_engine.resolve import Resolved, resolve
from recipe_engine.runs import RESOLVED_FILE, RunResults, is_run, load_run


@dataclass
class Side:
    arg: str  # what was given on the command line
    resolved: Resolved
    run: RunResults | None = None  # set for a run folder
    source: str = ""  # the file the recipe was read from

    @property
    def kind(self) -> str:
        return "run" if self.run is not None else "recipe"


def load_side(arg: str | os.PathLike) -> Side:
    """A recipe file, or a run folder (its ``resolved.yaml``; provenance from the original recipe
    when that still resolves to exactly the same recipe)."""
    path = Path(arg)
    if path.is_dir():
        if not is_run(path) or not (path / RESOLVED_FILE).is_file():
            raise UserError(f"{path}: not a run folder (no resolved.yaml); give a recipe file or a folder printed by `recipe-engine run`")
        run = load_run(path)
        frozen = resolve(path / RESOLVED_FILE)
        original = run.run_json.get("recipe")
        if original and Path(original).is_file():
            try:
                again = resolve(original, run.run_json.get("overrides") or [])
            except (RecipeErrors, UserError):
                again = None
            if again is not None and again.data == frozen.data:
                return Side(str(arg), again, run, str(original))
        return Side(str(arg), frozen, run, str(path / RESOLVED_FILE))
    if path.is_file():
        return Side(str(arg), resolve(path), None, str(arg))
    raise UserError(f"{arg}: no such recipe file or run folder")
