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


def test_validated_recipe_is_an_instance_of_the_static_types():
    """``Recipe`` and its sections, declared at module level, are what signatures name; the
    model ``recipe_model()`` builds for the registry subclasses them, section by section."""
    from recipe_engine import schema
    from recipe_engine.resolve import resolve

    recipe = resolve(Path(__file__).resolve().parents[2] / "recipes" / "textlen" / "influence_tuning.yaml").recipe
    assert isinstance(recipe, schema.Recipe) and type(recipe) is not schema.Recipe
    assert isinstance(recipe.data, schema.DataRef) and recipe.data.batch_size > 0
    assert isinstance(recipe.optimizer, schema.OptimizerRef) and isinstance(recipe.schedule, schema.Schedule)
    assert isinstance(recipe.evaluation, schema.Evaluation) and isinstance(recipe.runtime, schema.Runtime)
    assert all(isinstance(m, schema.MetricRef) for m in recipe.evaluation.metrics)

    def leaves(phases):
        for ph in phases:
            assert isinstance(ph, schema.Phase)
            yield from leaves(ph.phases) if ph.phases else [ph]

    terms = [t for ph in leaves(recipe.schedule.phases) for t in ph.objectives]
    assert {t.name for t in terms} == {"cross_entropy", "influence_tuning"}
    assert all(isinstance(t, schema.Term) for t in terms)
    # a slot's params are the named component's own Params model, not the static placeholder
    assert type(recipe.model.params).__qualname__.endswith(".Params")
