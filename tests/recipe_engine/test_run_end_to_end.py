"""`recipe-engine run` on a tiny model: run folder, determinism, resume (marked slow)."""
import json
from pathlib import Path

import pytest

from recipe_engine.cli import main
from tests.recipe_engine.tiny_run import write_data, write_recipe

pytestmark = pytest.mark.slow


def _only_run(out: Path) -> Path:
    runs = [p for p in (out / "tiny-e2e").iterdir() if p.is_dir()]
    assert len(runs) == 1
    return runs[0]


def _metrics(run: Path, seed: int) -> dict:
    return json.loads((run / f"seed-{seed}" / "eval" / "metrics.json").read_text())["metrics"]


def test_two_seed_run_folder(tmp_path, capsys):
    recipe = write_recipe(tmp_path / "r.yaml", write_data(tmp_path))
    assert main(["run", str(recipe), "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "test" in out and "accuracy" in out and "mean ± sd" in out
    run = _only_run(tmp_path / "out")
    for name in ("recipe.yaml", "resolved.yaml", "run.json", "summary.json", "summary.md", ".complete"):
        assert (run / name).is_file(), name
    info = json.loads((run / "run.json").read_text())
    assert info["seeds"] == [1, 2] and len(info["fingerprint"]) == 64
    assert set(info["environment"]["versions"]) >= {"torch", "transformers", "python"}
    assert all(len(h) == 64 for h in info["data_hashes"].values()) and len(info["data_hashes"]) == 3
    for seed in (1, 2):
        d = run / f"seed-{seed}"
        assert (d / "checkpoints" / "last.pt").is_file()
        assert any((d / "tb").iterdir())
        records = [json.loads(line) for line in (d / "metrics.jsonl").read_text().splitlines()]
        assert records and all("loss" in r for r in records if r["event"] == "train")
        times = [r["time"] for r in records]  # wall-clock stamps: throughput can be read off the log
        assert times == sorted(times) and times[0] > 1.7e9
        assert json.loads((d / "eval" / "metrics.json").read_text())["final_eval_seconds"] >= 0
        m = _metrics(run, seed)
        assert 0 <= m["test/accuracy"] <= 100 and "test/worst_group" in m and "dev/aligned" in m
    summary = json.loads((run / "summary.json").read_text())
    assert summary["aggregate"]["test/accuracy"]["n"] == 2


def test_same_seed_same_metrics_and_resume(tmp_path):
    data = write_data(tmp_path)
    recipe = write_recipe(tmp_path / "r.yaml", data, seeds=(7,), epochs=3)
    assert main(["run", str(recipe), "--out", str(tmp_path / "a")]) == 0
    assert main(["run", str(recipe), "--out", str(tmp_path / "b")]) == 0
    a, b = _metrics(_only_run(tmp_path / "a"), 7), _metrics(_only_run(tmp_path / "b"), 7)
    assert a == b
    # killed after 10 of 18 steps (checkpoint at 9), then resumed
    assert main(["run", str(recipe), "--out", str(tmp_path / "c"), "--max-steps", "10"]) == 3
    run_c = _only_run(tmp_path / "c")
    assert not (run_c / ".complete").exists()
    assert main(["run", str(recipe), "--resume", str(run_c)]) == 0
    assert _metrics(run_c, 7) == a


def test_resume_refuses_changed_method(tmp_path, capsys):
    recipe = write_recipe(tmp_path / "r.yaml", write_data(tmp_path), seeds=(3,), epochs=1)
    assert main(["run", str(recipe), "--out", str(tmp_path / "o"), "--max-steps", "2"]) == 3
    run = _only_run(tmp_path / "o")
    assert main(["run", str(recipe), "--resume", str(run), "optimizer.params.lr=0.5"]) == 2
    assert "method changed" in capsys.readouterr().err


def test_resume_prints_what_changed_and_allows_runtime_changes(tmp_path, capsys):
    recipe = write_recipe(tmp_path / "r.yaml", write_data(tmp_path), seeds=(3,), epochs=1)
    assert main(["run", str(recipe), "--out", str(tmp_path / "o"), "--max-steps", "2"]) == 3
    run = _only_run(tmp_path / "o")
    capsys.readouterr()
    assert main(["run", str(recipe), "--resume", str(run), "optimizer.params.lr=0.5"]) == 2
    err = capsys.readouterr().err
    assert "What changed:\n  optimizer.params.lr: 0.001 -> 0.5 (x500)    [run: " in err
    assert "| now: command line]" in err
    # a runtime-only change (threads, the progress bar) is no change of method
    assert main(["run", str(recipe), "--resume", str(run), "runtime.threads=1", "runtime.log_every=1"]) == 0
    assert (run / ".complete").exists()


def test_resume_of_a_finished_run_says_it_is_finished(tmp_path, capsys):
    recipe = write_recipe(tmp_path / "r.yaml", write_data(tmp_path), seeds=(3,), epochs=1)
    assert main(["run", str(recipe), "--out", str(tmp_path / "o")]) == 0
    run = _only_run(tmp_path / "o")
    before = {p: p.stat().st_mtime_ns for p in run.rglob("*") if p.is_file()}
    capsys.readouterr()
    assert main(["run", str(recipe), "--resume", str(run)]) == 0
    assert f"{run} is already complete" in capsys.readouterr().out
    assert {p: p.stat().st_mtime_ns for p in run.rglob("*") if p.is_file()} == before  # nothing rewritten
