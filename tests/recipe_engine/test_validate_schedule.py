"""`validate` compiles the schedule on the data: a declared phase that gets no step is an
error at its line, naming it and why, unless `min_remaining` says it may be skipped."""
from recipe_engine.cli import main
from tests.recipe_engine.tiny_run import write_data, write_recipe


WARMUP_20 = """\
schedule:
  unit: step
  length: {steps: 20}
  phases:
    - {id: warmup, for: 20, objectives: [{name: cross_entropy}]}
"""


def _recipe(tmp_path, schedule: str):
    recipe = write_recipe(tmp_path / "r.yaml", write_data(tmp_path))
    text = recipe.read_text()
    recipe.write_text(text[:text.index("schedule:")] + schedule + text[text.index("evaluation:"):])
    return recipe


def _line_of(path, needle: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if needle in line)


def test_until_end_after_the_budget_is_used_up_is_refused(tmp_path, capsys):
    recipe = _recipe(tmp_path, WARMUP_20 + """\
    - {id: late, until: end, objectives: [{name: cross_entropy}]}
""")
    assert main(["validate", str(recipe)]) == 1
    err = capsys.readouterr().err
    line = _line_of(recipe, "id: late")
    assert err == (f"{recipe}:{line}:7: schedule.phases.late: phase 'late' gets no step: until: end, but the "
                   "schedule length is used up by the phases before it; fix its length, or write "
                   "`min_remaining: 1` if it may be skipped\n")


def test_a_probe_only_phase_until_end_is_refused_and_a_declared_skip_is_not(tmp_path, capsys):
    recipe = _recipe(tmp_path, WARMUP_20 + """\
    - id: probes
      until: end
      objectives: [{name: embedding_tuning, params: {probes: 8, k: 2}}]
""")
    assert main(["validate", str(recipe)]) == 1
    err = capsys.readouterr().err
    assert "schedule.phases.probes: phase 'probes' gets no step: until: end takes the training budget, but every " \
           "term of this phase (embedding_tuning) brings its own data" in err
    # the same phase with min_remaining (the declaration that it may be skipped) is fine
    recipe.write_text(recipe.read_text().replace("      until: end\n", "      for: 5\n      min_remaining: 5\n"))
    assert main(["validate", str(recipe)]) == 0


def test_a_phase_after_a_repeat_that_uses_the_budget(tmp_path, capsys):
    recipe = _recipe(tmp_path, """\
schedule:
  unit: epoch
  length: {epochs: 2}
  phases:
    - id: loop
      repeat: until_end
      phases:
        - {id: label, for: {steps: 4}, objectives: [{name: cross_entropy}]}
    - {id: tail, for: {steps: 3}, objectives: [{name: cross_entropy}]}
""")
    assert main(["validate", str(recipe)]) == 1
    assert ("phase 'tail' gets no step: for: {steps: 3}, but the schedule length is used up by the phases before it"
            in capsys.readouterr().err)


def test_show_schedule_prints_a_joint_phase_and_its_data(tmp_path, capsys):
    recipe = _recipe(tmp_path, """\
schedule:
  unit: step
  length: {steps: 40}
  phases:
    - {id: warmup, for: 20, objectives: [{name: cross_entropy}]}
    - id: joint
      until: end
      objectives:
        - {name: cross_entropy}
        - {name: embedding_tuning, weight: {from: 0.0, to: 1.0, over: 10}, params: {probes: 8, k: 2}}
""")
    assert main(["validate", str(recipe)]) == 0
    assert main(["show", str(recipe), "--schedule"]) == 0
    out = capsys.readouterr().out
    assert "40 train-data steps, 40 optimizer steps in 2 segments" in out
    joint = next(line for line in out.splitlines() if line.startswith("1 "))
    assert "train + embedding_tuning" in joint and "cross_entropy, embedding_tuning x0->1/10" in joint


def test_a_valid_recipe_whose_data_is_missing_is_ok_with_a_note(tmp_path, capsys):
    recipe = _recipe(tmp_path, WARMUP_20)
    for f in (tmp_path / "tiny").iterdir():
        f.unlink()
    assert main(["validate", str(recipe)]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert ": ok (tiny-e2e, fingerprint " in out
    assert "; schedule not compiled here (its steps per epoch need the dataset): " in out


def test_data_that_is_here_but_unusable_is_an_error_at_validate(tmp_path, capsys):
    """Only missing data makes `validate` skip the schedule; a dataset the recipe cannot use as
    written (here a split file that is not JSON lines) is an error of the recipe."""
    recipe = _recipe(tmp_path, WARMUP_20)
    (tmp_path / "tiny" / "train.jsonl").write_text("{not json\n")
    assert main(["validate", str(recipe)]) == 1
    out, err = capsys.readouterr()
    assert "ok" not in out and "train.jsonl" in err
