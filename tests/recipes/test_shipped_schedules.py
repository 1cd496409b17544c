"""Shipped recipes keep their meaning: each compiles to the timeline recorded in
``tests/recipes/schedules/`` (the `show --schedule` text), and the archived TextLen runs'
fingerprints still match their recipes."""
import json
from pathlib import Path

import pytest

from recipe_engine.cli import schedule_text
from recipe_engine.resolve import resolve

ROOT = Path(__file__).resolve().parents[2]
RECIPES = sorted((ROOT / "recipes").rglob("*.yaml"))
GOLDEN = Path(__file__).parent / "schedules"
ARCHIVED = sorted((ROOT / "docs" / "results").glob("*/*/*/run.json"))


def _golden(path: Path) -> Path:
    return GOLDEN / (str(path.relative_to(ROOT / "recipes")).replace("/", "_")[:-len(".yaml")] + ".txt")


def test_every_shipped_recipe_has_a_recorded_timeline():
    assert sorted(p.name for p in GOLDEN.iterdir()) == sorted(_golden(p).name for p in RECIPES)


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: str(p.relative_to(ROOT / "recipes")))
def test_schedule_is_the_recorded_one(path, shared_root):
    assert schedule_text(resolve(path)) + "\n" == _golden(path).read_text()


def test_there_are_archived_runs():
    assert len(ARCHIVED) >= 5


@pytest.mark.parametrize("run_json", ARCHIVED, ids=lambda p: p.parent.parent.name)
def test_archived_fingerprint_matches_its_recipe(run_json):
    info = json.loads(run_json.read_text())
    recipe = ROOT / "recipes" / info["recipe"].split("/recipes/", 1)[1]
    assert resolve(recipe, info["overrides"]).fingerprint == info["fingerprint"]
