"""Before training, a run checks the data it uses: empty splits, duplicate ids and a confound
without two known values are clear errors (or a note when nothing relies on the confound)."""
import json

import pytest

from recipe_engine.data_checks import check_bundle
from recipe_engine.errors import UserError
from recipe_engine.resolve import resolve
from registry.types import DatasetBundle, Split
from tests.recipe_engine.tiny_run import write_data, write_recipe


def _bundle(train_confound, dev_rows=2):
    train = Split("train", ["a", "b", "c"], ["x", "y", "z"], [0, 1, 0], confound=train_confound)
    dev = Split("dev", [f"d{i}" for i in range(dev_rows)], ["x"] * dev_rows, [0] * dev_rows)
    test = Split("test", ["t"], ["x"], [1])
    return DatasetBundle({"train": train, "dev": dev, "test": test}, label_names=["n", "p"],
                         confound_names=["negative", "positive"])


@pytest.fixture
def recipe(tmp_path):
    return resolve(write_recipe(tmp_path / "r.yaml", write_data(tmp_path))).recipe


def test_a_confound_with_one_value_is_a_note_when_nothing_needs_it(recipe):
    assert check_bundle(recipe, _bundle([0, 1, 0])) == []
    assert check_bundle(recipe, _bundle([1, 1, -1])) == [
        "train: every row with a known confound has the same value ('positive'); group metrics and confound "
        "objectives cannot contrast groups"]
    assert "every row's confound is unknown" in check_bundle(recipe, _bundle([-1, -1, -1]))[0]


def test_a_confound_objective_refuses_a_confound_without_two_values(tmp_path):
    recipe = write_recipe(tmp_path / "r.yaml", write_data(tmp_path))
    adv = resolve(recipe, ["schedule.phases.train.objectives=[{name: adversarial}]"]).recipe
    with pytest.raises(UserError, match="every row's confound is unknown, so adversarial cannot contrast confound groups"):
        check_bundle(adv, _bundle([-1, -1, -1]))


def test_an_empty_evaluation_split_and_duplicate_ids_are_errors(recipe):
    with pytest.raises(UserError, match="split 'dev' of dataset 'files' is empty; fix: give it rows, or leave it out"):
        check_bundle(recipe, _bundle([0, 1, 0], dev_rows=0))
    bundle = _bundle([0, 1, 0])
    bundle.splits["train"].ids = ["a", "a", "c"]
    with pytest.raises(UserError, match="split 'train': id 'a' is used by 2 rows"):
        check_bundle(recipe, bundle)


def test_run_reports_bad_data_before_it_makes_a_run_folder(tmp_path, capsys):
    from recipe_engine.cli import main

    data = write_data(tmp_path)
    rows = [json.loads(x) for x in (data / "train.jsonl").read_text().splitlines()]
    (data / "train.jsonl").write_text("".join(json.dumps(dict(r, prefix=1)) + "\n" for r in rows))
    recipe = write_recipe(tmp_path / "r.yaml", data, extra="")
    assert main(["run", str(recipe), "--out", str(tmp_path / "o"), "schedule.phases.train.objectives=[{name: adversarial}]"]) == 2
    assert "so adversarial cannot contrast confound groups" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
