"""Every file under recipes/ validates, and its schedule compiles."""
from pathlib import Path

import pytest

from recipe_engine.plan import compile_timeline
from recipe_engine.resolve import resolve

RECIPES = sorted((Path(__file__).resolve().parents[2] / "recipes").rglob("*.yaml"))


def test_there_are_recipes():
    assert len(RECIPES) >= 6


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: str(p.relative_to(p.parents[1])))
def test_recipe_validates_and_compiles(path):
    resolved = resolve(path)
    timeline = compile_timeline(resolved.recipe.schedule, train_steps_per_epoch=24)
    assert timeline.segments, "the schedule compiles to at least one segment"
    assert timeline.train_steps > 0
