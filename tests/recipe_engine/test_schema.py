"""`recipe-engine schema`: a draft-07 JSON Schema that accepts every shipped recipe file as
written (bases and partial children alike) and flags typos, wrong types and unknown names."""
import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from recipe_engine.cli import main
from recipe_engine.schema import json_schema

RECIPES = sorted((Path(__file__).resolve().parents[2] / "recipes").rglob("*.yaml"))


@pytest.fixture(scope="module")
def validator():
    schema = json_schema()
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.name)
def test_shipped_recipes_pass_the_editor_schema(validator, path):
    assert [e.message for e in validator.iter_errors(yaml.safe_load(path.read_text()))] == []


@pytest.mark.parametrize("bad", [
    {"name": "x", "model": {"name": "tiny_bert", "params": {"layerz": 2}}},  # typo in params
    {"name": "x", "model": {"name": "tiny_bertt"}},  # unknown component
    {"name": "x", "optimizer": {"name": "adamw", "params": {"lr": "fast"}}},  # wrong type
    {"name": "x", "runtime": {"devise": "cpu"}},  # typo in a section
])
def test_editor_schema_flags_mistakes(validator, bad):
    assert list(validator.iter_errors(bad))


def test_schema_command_writes_a_file(tmp_path):
    out = tmp_path / "recipe.schema.json"
    assert main(["schema", "--out", str(out)]) == 0
    schema = json.loads(out.read_text())
    assert schema["$schema"].startswith("http://json-schema.org/draft-07")
    assert "influence_tuning" in out.read_text()
