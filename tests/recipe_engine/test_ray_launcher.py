"""``run --launcher ray``: one Ray task per (seed, grid point) on a local cluster, the same
study layout as the sequential path, retry once, report failures, ``--resume`` only what is missing."""
import builtins
import json
from pathlib import Path

import pytest

from recipe_engine import launch_ray
from recipe_engine.cli import main
from recipe_engine.errors import UserError
from recipe_engine.studies import load_study
from tests.recipe_engine.tiny_run import write_data, write_recipe

GRID = ["--grid", "optimizer.params.lr=1e-3,3e-3", "--grid", "data.batch_size=8,6"]
SAME = ["runtime.threads=1"]  # one thread in both paths, so their floats agree bit for bit


def test_missing_ray_says_how_to_install(tmp_path, monkeypatch, capsys):
    real_import = builtins.__import__

    def no_ray(name, *a, **k):
        if name == "ray" or name.startswith("ray."):
            raise ImportError("No module named 'ray'")
        return real_import(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    with pytest.raises(UserError, match=r"pip install 'recipe-engine\[ray\]'"):
        launch_ray.import_ray()
    recipe = write_recipe(tmp_path / "r.yaml", write_data(tmp_path), seeds=(1,), epochs=1)
    out = tmp_path / "out"
    assert main(["run", str(recipe), "--launcher", "ray", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --launcher ray needs Ray, which is not installed here") and "recipe-engine[ray]" in err
    assert not out.exists()  # nothing was made before the message


@pytest.fixture(scope="module")
def ray_cluster():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING", log_to_driver=False)
    yield ray
    ray.shutdown()


def _children(study: Path) -> dict[str, dict[int, dict[str, float]]]:
    """{combo label: {seed: metrics}} of a study folder."""
    return {run.label: run.per_seed for run in load_study(study).children}


def _only(path: Path) -> Path:
    (found,) = list(path.iterdir())
    return found


@pytest.mark.slow
def test_grid_on_ray_equals_sequential_and_compare_reads_it(ray_cluster, tmp_path, capsys):
    recipe = write_recipe(tmp_path / "r.yaml", write_data(tmp_path), seeds=(1, 2), epochs=1)
    seq_out, ray_out = tmp_path / "seq", tmp_path / "ray"
    assert main(["run", str(recipe), "--out", str(seq_out), *GRID, *SAME]) == 0
    assert main(["run", str(recipe), "--out", str(ray_out), "--launcher", "ray", "--cpus-per-run", "1", *GRID, *SAME]) == 0
    seq_study, ray_study = _only(seq_out / "tiny-e2e"), _only(ray_out / "tiny-e2e")
    seq, par = _children(seq_study), _children(ray_study)
    assert len(par) == 4 and all(sorted(seeds) == [1, 2] for seeds in par.values())
    assert par == seq  # every child's every metric, exactly

    info = json.loads((ray_study / "study.json").read_text())
    assert [c["status"] for c in info["children"]] == ["complete"] * 4
    for child in info["children"]:
        run = ray_study / child["run_dir"]
        assert (run / ".complete").is_file() and (run / "summary.json").is_file() and (run / "report.html").is_file()
        assert json.loads((run / "run.json").read_text())["overrides"] == child["overrides"]
    capsys.readouterr()
    assert main(["compare", str(ray_study), "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert sorted(r["label"] for r in rows) == sorted(par) and sum(r["note"] == "selected" for r in rows) == 1


def flaky_task(marker_dir: str):
    """A task that fails the first time it meets each seed (a marker file records it), then works."""

    def task(recipe_path, overrides, run_dir, seed, **kw):
        marker = Path(marker_dir) / f"seed-{seed}"
        if not marker.exists():
            marker.touch()
            raise RuntimeError(f"injected failure for seed {seed}")
        return launch_ray.seed_task(recipe_path, overrides, run_dir, seed, **kw)

    return task


def broken_seed_task(bad_seed: int):
    def task(recipe_path, overrides, run_dir, seed, **kw):
        if seed == bad_seed:
            raise RuntimeError(f"seed {seed} always fails")
        return launch_ray.seed_task(recipe_path, overrides, run_dir, seed, **kw)

    return task


@pytest.mark.slow
def test_failed_task_is_retried_once(ray_cluster, tmp_path, monkeypatch, capsys):
    recipe = write_recipe(tmp_path / "r.yaml", write_data(tmp_path), seeds=(1, 2), epochs=1)
    (tmp_path / "markers").mkdir()
    real = launch_ray.run_jobs
    monkeypatch.setattr(launch_ray, "run_jobs", lambda jobs, **kw: real(jobs, task=flaky_task(str(tmp_path / "markers")), **kw))
    assert main(["run", str(recipe), "--out", str(tmp_path / "out"), "--launcher", "ray", *SAME]) == 0
    err = capsys.readouterr().err
    assert err.count("retrying once") == 2 and "injected failure for seed 1" in err and "(attempt 2)" in err
    run = _only(tmp_path / "out" / "tiny-e2e")
    assert (run / ".complete").is_file()
    assert sorted(json.loads((run / "summary.json").read_text())["per_seed"]) == ["1", "2"]


@pytest.mark.slow
def test_a_task_failing_twice_is_reported_the_others_go_on_and_resume_runs_only_it(ray_cluster, tmp_path, monkeypatch,
                                                                                     capsys):
    recipe = write_recipe(tmp_path / "r.yaml", write_data(tmp_path), seeds=(1, 2), epochs=1)
    real = launch_ray.run_jobs
    calls: list = []

    def run_jobs(jobs, **kw):
        calls.append([(Path(j.run_dir).name, j.seed) for j in jobs])
        return real(jobs, task=broken_seed_task(2) if len(calls) == 1 else launch_ray.seed_task, **kw)

    monkeypatch.setattr(launch_ray, "run_jobs", run_jobs)
    out = tmp_path / "out"
    grid = ["--grid", "optimizer.params.lr=1e-3,3e-3"]
    assert main(["run", str(recipe), "--out", str(out), "--launcher", "ray", *grid, *SAME]) == launch_ray.EXIT_FAILED
    err = capsys.readouterr().err
    assert "2 task(s) failed (a failure is retried once); the others finished:" in err and "2 attempt(s)" in err
    assert "RuntimeError: seed 2 always fails" in err and "--launcher ray --resume" in err
    study = _only(out / "tiny-e2e")
    info = json.loads((study / "study.json").read_text())
    assert [c["status"] for c in info["children"]] == ["failed", "failed"]
    for child in info["children"]:  # seed 1 of both children finished; seed 2 did not
        run = study / child["run_dir"]
        assert (run / "seed-1" / "eval" / "metrics.json").is_file() and not (run / "seed-2" / "eval" / "metrics.json").is_file()

    assert main(["run", str(recipe), "--launcher", "ray", "--resume", str(study)]) == 0
    assert sorted(seed for _, seed in calls[1]) == [2, 2]  # only what was missing
    info = json.loads((study / "study.json").read_text())
    assert [c["status"] for c in info["children"]] == ["complete", "complete"]
    assert all(sorted(seeds) == [1, 2] for seeds in _children(study).values())


def test_bad_resources_are_a_user_error(tmp_path):
    pytest.importorskip("ray")
    recipe = write_recipe(tmp_path / "r.yaml", write_data(tmp_path), seeds=(1,), epochs=1)
    with pytest.raises(UserError, match="--cpus-per-run must be > 0"):
        main(["--debug", "run", str(recipe), "--launcher", "ray", "--cpus-per-run", "0"])


@pytest.mark.slow
def test_a_deliberate_stop_is_reported_not_retried(ray_cluster, tmp_path, capsys):
    recipe = write_recipe(tmp_path / "r.yaml", write_data(tmp_path), seeds=(1,), epochs=1)
    out = tmp_path / "out"
    assert main(["run", str(recipe), "--out", str(out), "--launcher", "ray", "--max-steps", "3", *SAME]) == launch_ray.EXIT_FAILED
    err = capsys.readouterr().err
    assert "retrying" not in err and "1 attempt(s)): stopped early: stopped after 3 steps (--max-steps)" in err
    run = _only(out / "tiny-e2e")
    assert (run / "seed-1" / "checkpoints" / "last.pt").is_file() and not (run / ".complete").exists()
