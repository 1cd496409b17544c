"""Command-line overrides: set, delete, list items by identity or index, errors."""
from __future__ import annotations

import pytest

from recipe_engine.errors import Origin
from recipe_engine.load import load_text
from recipe_engine.overrides import apply_overrides
from recipe_engine.yaml_positions import parse_yaml, to_plain

RECIPE = """\
name: r
optimizer: {name: adamw, params: {lr: 2.0e-5}}
runtime: {tensorboard: true, device: auto}
seeds: [1, 2, 3]
schedule:
  phases:
    - {id: label, for: 50, objectives: [{name: cross_entropy}, {name: focal, params: {gamma: 2}}]}
    - {id: influence, for: 5}
"""
CLI = Origin(source="cli")


def load(*overrides: str):
    return load_text(RECIPE, "r.yaml", overrides)


def test_set_values_are_yaml_and_come_from_the_command_line():
    loaded = load("optimizer.params.lr=3e-5", "runtime.device=cuda", "seeds=[7]", "optimizer.params.betas=[0.9, 0.99]")
    assert loaded.errors == []
    assert loaded.data["optimizer"]["params"] == {"lr": 3e-5, "betas": [0.9, 0.99]}
    assert loaded.data["runtime"]["device"] == "cuda" and loaded.data["seeds"] == [7]
    assert loaded.origins[("optimizer", "params", "lr")] == CLI
    assert loaded.origins[("optimizer", "params", "betas", 1)] == CLI
    assert loaded.origins[("optimizer", "params")] == Origin("r.yaml", 2, 26, "file")


def test_missing_intermediate_mappings_are_created():
    loaded = load("runtime.logging.every=10", "evaluation.metrics=null")
    assert loaded.errors == []
    assert loaded.data["runtime"]["logging"] == {"every": 10} and loaded.data["evaluation"] == {"metrics": None}
    assert loaded.origins[("runtime", "logging")] == CLI


def test_list_items_by_identity_or_index():
    loaded = load("schedule.phases.label.for=7", "schedule.phases.1.for=3",
                  "schedule.phases.label.objectives.focal.params.gamma=1.5", "seeds.0=9")
    assert loaded.errors == []
    phases = loaded.data["schedule"]["phases"]
    assert phases[0]["for"] == 7 and phases[1]["for"] == 3 and loaded.data["seeds"] == [9, 2, 3]
    assert phases[0]["objectives"][1]["params"]["gamma"] == 1.5
    assert loaded.origins[("schedule", "phases", 0, "id")].source == "file"


def test_deletions():
    loaded = load("~runtime.tensorboard", "~schedule.phases.influence", "~schedule.phases.label.objectives.0")
    assert loaded.errors == []
    assert loaded.data["runtime"] == {"device": "auto"}
    assert loaded.data["schedule"]["phases"] == [
        {"id": "label", "for": 50, "objectives": [{"name": "focal", "params": {"gamma": 2}}]}]


def test_invalid_yaml_value_stays_a_string_and_empty_means_null():
    loaded = load("name=[oops", "runtime.device=")
    assert loaded.errors == [] and loaded.data["name"] == "[oops" and loaded.data["runtime"]["device"] is None


@pytest.mark.parametrize("override, rendered", [
    ("lr", "<command line>: lr: override 'lr' has no '='; write PATH=VALUE to set a value or ~PATH to delete one, "
           "e.g. optimizer.params.lr=3e-5"),
    ("schedule.phases.lable.for=3", "<command line>: schedule.phases.lable.for: no item 'lable' in schedule.phases "
                                    "(ids: label, influence); use an item's id, name or index (did you mean 'label'?)"),
    ("seeds.5=1", "<command line>: seeds.5: no item '5' in seeds (indices 0..2); use an item's id, name or index"),
    ("~runtime.tensorbord", "<command line>: runtime.tensorbord: no 'tensorbord' in runtime to delete; "
                            "check the path (did you mean 'tensorboard'?)"),
    ("optimizer.params.lr.x=1", "<command line>: optimizer.params.lr.x: optimizer.params.lr is a number (2e-05), "
                                "not a mapping or list; cannot set 'x' inside it"),
    ("name=!!python/name:os.system", "<command line>: name: tags are not allowed in recipes; recipes are data, "
                                     "not code; remove the tag from the value"),
    ("a..b=1", "<command line>: a..b: override 'a..b=1' has an empty key in its path; write PATH=VALUE to set a "
               "value or ~PATH to delete one, e.g. optimizer.params.lr=3e-5"),
    ("~a=1", "<command line>: a: override '~a=1' both deletes and sets; write PATH=VALUE to set a value or ~PATH to "
             "delete one, e.g. optimizer.params.lr=3e-5"),
    ("extends=x.yaml", "<command line>: extends: 'extends' cannot be overridden; write a recipe that extends this "
                       "one instead"),
    ("model={~params: null}", "<command line>: model.~params: '~params' deletes nothing: there is no 'params' here; "
                              "remove '~params' or correct the key"),
])
def test_override_errors(override, rendered):
    loaded = load(override)
    assert [e.render() for e in loaded.errors] == [rendered]
    assert loaded.errors[0].origin == CLI


def test_bad_override_leaves_the_recipe_unchanged():
    clean = load()
    assert load("name=!!python/name:os.system", "schedule.phases.nope.for=1").data == clean.data


def test_input_tree_is_not_mutated():
    node, _ = parse_yaml(RECIPE, "r.yaml", "file")
    before = to_plain(node)
    new, errors = apply_overrides(node, ["schedule.phases.label.for=1", "~runtime.device", "seeds.1=5"])
    assert errors == [] and to_plain(node) == before and to_plain(new) != before


def test_ambiguous_identity_needs_an_index():
    loaded = load_text("l: [{name: a, v: 1}, {name: a, v: 2}]\n", "r.yaml", ["l.a.v=3", "l.1.v=4"])
    assert [e.message for e in loaded.errors] == ["several items of l are called 'a'; select one by index"]
    assert loaded.data["l"][1]["v"] == 4
