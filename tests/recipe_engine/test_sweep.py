import json
from pathlib import Path

import pytest

import recipe_engine.runner as runner
from recipe_engine.cli import main
from recipe_engine.errors import UserError
from recipe_engine.sweep import combinations, parse_grid, split_values
from tests.recipe_engine.tiny_run import write_data, write_recipe


def test_split_values_respects_brackets_and_quotes():
    assert split_values("1e-5,3e-5") == ["1e-5", "3e-5"]
    assert split_values("[1,2],[3], 4") == ["[1,2]", "[3]", "4"]
    assert split_values('"a,b",c') == ['"a,b"', "c"]


def test_parse_grid_and_combinations():
    grid = parse_grid(["optimizer.params.lr=1e-5,3e-5", "seeds=[1,2],[3]"])
    assert grid == {"optimizer.params.lr": ["1e-5", "3e-5"], "seeds": ["[1,2]", "[3]"]}
    assert combinations(grid) == [
        {"optimizer.params.lr": "1e-5", "seeds": "[1,2]"}, {"optimizer.params.lr": "1e-5", "seeds": "[3]"},
        {"optimizer.params.lr": "3e-5", "seeds": "[1,2]"}, {"optimizer.params.lr": "3e-5", "seeds": "[3]"}]
    for bad, msg in ((["lr"], "write KEY=A,B"), (["a=1", "a=2"], "given twice"), (["a=1,,2"], "an empty value"),
                     (["a=1,1"], "listed twice")):
        with pytest.raises(UserError, match=msg):
            parse_grid(bad)


@pytest.fixture
def tiny(tmp_path):
    return write_recipe(tmp_path / "r.yaml", write_data(tmp_path), seeds=(1,), epochs=1)


def test_invalid_combinations_are_reported_before_training(tiny, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(runner, "execute", lambda *a, **k: pytest.fail("nothing may train"))
    out = tmp_path / "out"
    code = main(["run", str(tiny), "--out", str(out), "--grid", "optimizer.params.lr=1e-3,-1,-2",
                 "--grid", "data.batch_size=4,0"])
    assert code == 1
    err = capsys.readouterr().err
    assert "5 of 6 grid combinations are invalid; nothing was trained" in err
    assert "optimizer.params.lr=1e-3,data.batch_size=0" in err
    assert "<command line>: optimizer.params.lr: " in err and "<command line>: data.batch_size: " in err
    assert not out.exists()


def test_unknown_grid_key_gets_did_you_mean(tiny, tmp_path, capsys):
    assert main(["run", str(tiny), "--out", str(tmp_path / "out"), "--grid", "optimizer.params.lrr=1,2"]) == 1
    err = capsys.readouterr().err
    assert "[all combinations]" in err and "'lr'" in err


def fake_execute(made, stop_at=None):
    """A stand-in for runner.execute that writes a finished run folder by hand."""

    def execute(resolved, recipe_path, overrides, *, out_root, max_steps=None, quiet=False, run_dir=None):
        i = len(made)
        made.append(overrides)
        run = Path(out_root) / resolved.recipe.name / f"20240101-00000{i}-{resolved.fingerprint[:8]}"
        run.mkdir(parents=True)
        (run / "run.json").write_text(json.dumps({"fingerprint": resolved.fingerprint, "overrides": overrides}))
        if stop_at is not None and i == stop_at:
            return 3
        lr = resolved.recipe.optimizer.params.lr
        per_seed = {str(s): {"dev/accuracy": 50 + 1e4 * lr + s, "test/accuracy": 60 + 1e4 * lr + s} for s in (1, 2)}
        (run / "summary.json").write_text(json.dumps({"meta": {"recipe": resolved.recipe.name}, "per_seed": per_seed}))
        (run / "resolved.yaml").write_text(f"name: {resolved.recipe.name}\n")
        return 0

    return execute


def test_study_folder_layout(tiny, tmp_path, capsys, monkeypatch):
    made: list = []
    monkeypatch.setattr(runner, "execute", fake_execute(made))
    assert main(["run", str(tiny), "--out", str(tmp_path / "out"), "--grid", "optimizer.params.lr=1e-3,2e-3",
                 "runtime.log_every=3"]) == 0
    assert made == [["runtime.log_every=3", "optimizer.params.lr=1e-3"], ["runtime.log_every=3", "optimizer.params.lr=2e-3"]]
    (study,) = (tmp_path / "out" / "tiny-e2e").iterdir()
    assert study.name.endswith("-study")
    info = json.loads((study / "study.json").read_text())
    assert info["grid"] == {"optimizer.params.lr": ["1e-3", "2e-3"]} and info["select"] == "dev/accuracy"
    assert [c["status"] for c in info["children"]] == ["complete", "complete"]
    assert [c["overrides"][-1] for c in info["children"]] == ["optimizer.params.lr=1e-3", "optimizer.params.lr=2e-3"]
    assert all((study / c["run_dir"] / "summary.json").is_file() for c in info["children"])
    summary = (study / "summary.md").read_text()
    assert "- selected: lr=2e-3 (best dev/accuracy)" in summary and "| lr=2e-3 * | 2 | 71.50 ± 0.71 |" in summary
    assert 'id="plot-selection"' in (study / "report.html").read_text()
    out = capsys.readouterr().out
    assert "lr=2e-3 *" in out and f"study folder: {study}" in out


def test_interrupted_child_stops_the_study(tiny, tmp_path, capsys, monkeypatch):
    made: list = []
    monkeypatch.setattr(runner, "execute", fake_execute(made, stop_at=1))
    assert main(["run", str(tiny), "--out", str(tmp_path / "out"), "--grid", "optimizer.params.lr=1e-3,2e-3,3e-3"]) == 3
    assert len(made) == 2
    (study,) = (tmp_path / "out" / "tiny-e2e").iterdir()
    info = json.loads((study / "study.json").read_text())
    assert [c["status"] for c in info["children"]] == ["complete", "interrupted", "pending"]
    assert "No child" not in (study / "summary.md").read_text()
    assert "the study is incomplete" in capsys.readouterr().err


def test_grid_resume_needs_a_study_folder(tiny, tmp_path, capsys):
    assert main(["run", str(tiny), "--grid", "optimizer.params.lr=1e-3", "--resume", str(tmp_path)]) == 2
    assert "not a study folder (no study.json)" in capsys.readouterr().err


def test_resumed_study_runs_only_the_unfinished_children(tiny, tmp_path, capsys, monkeypatch):
    made: list = []
    monkeypatch.setattr(runner, "execute", fake_execute(made, stop_at=1))
    grid = ["--grid", "optimizer.params.lr=1e-3,2e-3,3e-3"]
    assert main(["run", str(tiny), "--out", str(tmp_path / "out"), *grid]) == 3
    (study,) = (tmp_path / "out" / "tiny-e2e").iterdir()
    for child in json.loads((study / "study.json").read_text())["children"][:1]:
        (study / child["run_dir"] / ".complete").write_text("done\n")
    resumed: list = []

    def execute(resolved, recipe_path, overrides, *, out_root, run_dir=None, **kw):
        resumed.append((overrides[-1], run_dir))
        return fake_execute(made)(resolved, recipe_path, overrides, out_root=out_root or study) if run_dir is None else 0

    monkeypatch.setattr(runner, "execute", execute)
    assert main(["run", str(tiny), "--resume", str(study)]) == 0
    info = json.loads((study / "study.json").read_text())
    assert [o for o, _ in resumed] == ["optimizer.params.lr=2e-3", "optimizer.params.lr=3e-3"]
    assert resumed[0][1] == study / info["children"][1]["run_dir"] and resumed[1][1] is None  # continued, then new
    assert [c["status"] for c in info["children"]] == ["complete"] * 3
    assert main(["run", str(tiny), "--resume", str(study), "--grid", "optimizer.params.lr=1e-3"]) == 2
    assert "--grid differs from the study's grid" in capsys.readouterr().err


@pytest.mark.slow
def test_real_tiny_study(tiny, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["run", str(tiny), "--out", str(out), "--grid", "optimizer.params.lr=1e-3,3e-3"]) == 0
    (study,) = (out / "tiny-e2e").iterdir()
    info = json.loads((study / "study.json").read_text())
    for child in info["children"]:
        run = study / child["run_dir"]
        assert (run / ".complete").is_file() and (run / "report.html").is_file()
        assert json.loads((run / "run.json").read_text())["overrides"] == child["overrides"]
    capsys.readouterr()
    assert main(["compare", str(study), "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert [r["label"] for r in rows] == ["lr=1e-3", "lr=3e-3"] and sum(r["note"] == "selected" for r in rows) == 1
    assert main(["diff", str(study / info["children"][0]["run_dir"]), str(study / info["children"][1]["run_dir"])]) == 1
    assert "optimizer.params.lr: 0.001 -> 0.003 (x3)" in capsys.readouterr().out
