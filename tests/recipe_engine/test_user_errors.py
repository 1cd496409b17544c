"""Run-time mistakes a user can make: one clear message (file, setting, fix), no traceback."""
import json
import textwrap

from recipe_engine.cli import main
from tests.recipe_engine.tiny_run import write_data, write_recipe


def test_missing_data_file(tmp_path, capsys):
    data = write_data(tmp_path)
    (data / "dev.jsonl").unlink()
    recipe = write_recipe(tmp_path / "r.yaml", data)
    assert main(["run", str(recipe), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert str(data / "dev.jsonl") in err and "data.params" in err


def test_missing_data_root_names_the_setting(tmp_path, capsys):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(textwrap.dedent(f"""\
        name: r
        model: {{name: tiny_bert}}
        data: {{name: msgs}}
        optimizer: {{name: adamw}}
        schedule: {{phases: [{{id: a, for: 1, objectives: [{{name: cross_entropy}}]}}]}}
        runtime: {{data_root: {tmp_path / 'nowhere'}}}
    """))
    assert main(["run", str(recipe)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "runtime.data_root" in err and "msgs" in err


def test_objective_needing_a_confound_column(tmp_path, capsys):
    data = write_data(tmp_path)
    recipe = write_recipe(tmp_path / "r.yaml", data).read_text()
    recipe = recipe.replace("columns: {text: text, label: label, confound: prefix}", "columns: {text: text, label: label}")
    recipe = recipe.replace("objectives: [{name: cross_entropy}]", "objectives: [{name: adversarial}]")
    recipe = recipe.replace("{name: group_accuracy}, ", "")
    path = tmp_path / "noconf.yaml"
    path.write_text(recipe)
    assert main(["validate", str(path)]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert ("objective 'adversarial' requires a 'confound' column, which dataset 'files' does not provide "
            "(it has: label, text); use a dataset with one, or map one in data.params.columns.confound") in err
    assert err.startswith(f"{path}:")


def test_wrong_column_mapping(tmp_path, capsys):
    data = write_data(tmp_path)
    recipe = write_recipe(tmp_path / "r.yaml", data)
    recipe.write_text(recipe.read_text().replace("confound: prefix", "confound: prefx"))
    assert main(["run", str(recipe), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert "prefx" in err and "data.params.columns.confound" in err and "prefix" in err


def test_non_finite_loss_names_step_and_phase_and_saves_nothing_after(tmp_path, capsys):
    data = write_data(tmp_path)
    recipe = write_recipe(tmp_path / "r.yaml", data, seeds=(1,))
    text = recipe.read_text().replace("params: {lr: 1.0e-3}", "params: {lr: 1.0e+30}\n  clip_grad_norm: null")
    recipe.write_text(text.replace("checkpoint_every: 3", "checkpoint_every: 100"))
    assert main(["run", str(recipe), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert "non-finite loss at step" in err and "phase 'train', terms cross_entropy" in err
    assert "lower the learning rate" in err
    run = next((tmp_path / "o" / "tiny-e2e").iterdir())
    assert not (run / "seed-1" / "checkpoints" / "last.pt").exists()  # no NaN weights were saved


def test_non_finite_policy_stop_names_the_term_and_the_last_finite_values(tmp_path, capsys):
    recipe = write_recipe(tmp_path / "r.yaml", write_data(tmp_path), seeds=(1,), epochs=4)
    text = recipe.read_text().replace("params: {lr: 1.0e-3}", "params: {lr: 1.0e+30}\n  clip_grad_norm: null")
    recipe.write_text(text.replace("log_every: 2", "log_every: 1"))
    assert main(["run", str(recipe), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "terms cross_entropy: cross_entropy was non-finite); the last finite values (step 2): loss=0.69" in err
    assert "loss/cross_entropy=" in err and "or set runtime.nonfinite: skip" in err


def test_non_finite_policy_skip_counts_the_skipped_steps_and_finishes(tmp_path, capsys):
    recipe = write_recipe(tmp_path / "r.yaml", write_data(tmp_path), seeds=(1,), epochs=1)
    text = recipe.read_text().replace("params: {lr: 1.0e-3}", "params: {lr: 1.0e+30}\n  clip_grad_norm: null")
    recipe.write_text(text.replace("log_every: 2", "log_every: 1, nonfinite: skip"))
    assert main(["run", str(recipe), "--out", str(tmp_path / "o")]) == 0
    run = next((tmp_path / "o" / "tiny-e2e").iterdir())
    records = [json.loads(x) for x in (run / "seed-1" / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in records if r["event"] == "train"]
    assert len(train) == 6 and train[-1]["skipped_steps"] >= 1
    assert all("skipped_steps" not in r or r["skipped_steps"] <= i for i, r in enumerate(train, 1))
