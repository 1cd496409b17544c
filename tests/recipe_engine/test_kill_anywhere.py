"""Kill a run anywhere with SIGKILL and resume it: the result equals an uninterrupted run's.

Tiny runs (two seeds; label phases, an influence round and an embedding round, each with
its own optimizer) are killed 20 times in chains: a launch either sets ``RECIPE_ENGINE_FAULT``
so the process kills itself (SIGKILL, no cleanup) at a point drawn with a seed (after an
optimizer step, inside a checkpoint write, inside an atomic file write, in the middle of a
metrics line, between seeds), or is sent SIGKILL by this process at a seeded moment; the
next launch resumes.  A run that ends before its fault fires is checked and a new one starts.  After every kill every file of the
run folder must parse (a torn last metrics line is allowed: resume drops it); at the end the
metrics must equal the uninterrupted run's, bitwise.
"""
import json
import os
import random
import shutil
import subprocess
import time
import sys
from pathlib import Path

import pytest
import torch

from tests.recipe_engine.tiny_run import write_data, write_recipe

ROOT = Path(__file__).resolve().parents[2]
KILLS = 20

SCHEDULE = """
schedule:
  unit: step
  ~length:
  length: {steps: 24}
  phases:
    - {~id: train}
    - id: alt
      repeat: until_end
      phases:
        - {id: label, for: 4, objectives: [{name: cross_entropy}]}
        - id: influence
          for: {epochs: 1}
          min_remaining: 2
          optimizer: {name: adamw, params: {lr: 1.0e-3, no_decay: []}, reset_state: all}
          objectives: [{name: influence_tuning, params: {probes: 6, k: 2, probe_batch: 2}}]
        - {id: label2, for: 4, objectives: [{name: cross_entropy}]}
        - id: embedding
          for: {epochs: 1}
          min_remaining: 2
          optimizer: {name: adamw, params: {lr: 1.0e-3, no_decay: []}, reset_state: all}
          objectives: [{name: embedding_tuning, params: {probes: 6, k: 2, probe_batch: 2}}]
runtime: {progress: false, log_every: 1, checkpoint_every: 3, threads: 1, tensorboard: false}
"""


def _launch(args: list[str], fault: str | None, full_run_s: float = 0.0) -> subprocess.CompletedProcess:
    """Run the CLI; ``fault`` is ``<site>:<n>`` (the process kills itself there) or
    ``time:<fraction>`` (this process sends it SIGKILL after that fraction of ``full_run_s``, the
    uninterrupted run's wall time, wherever it is: relative, so a fast machine cannot outrun it)."""
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "PYTHONPATH": str(ROOT)}
    env.pop("RECIPE_ENGINE_FAULT", None)
    after = None
    if fault and fault.startswith("time:"):
        after = float(fault.split(":", 1)[1]) * full_run_s
    elif fault:
        env["RECIPE_ENGINE_FAULT"] = fault
    proc = subprocess.Popen([sys.executable, "-m", "recipe_engine", "run", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = proc.communicate(timeout=after if after is not None else 300)
    except subprocess.TimeoutExpired:
        proc.kill()  # SIGKILL from the parent, mid-whatever it was doing
        out, err = proc.communicate()
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def _faults(rng: random.Random) -> list[str]:
    """20 kill points: 4 inside checkpoint writes, 2 in atomic writes, 3 mid-line, 1 between
    seeds, 5 after optimizer steps, and 5 SIGKILLs from this process at a seeded moment (in
    the middle of a step, a round, an evaluation or start-up), in a seeded order."""
    points = ([f"checkpoint:{rng.randint(1, 2)}" for _ in range(4)] + [f"write:{rng.randint(1, 2)}" for _ in range(2)]
              + [f"append:{rng.randint(1, 6)}" for _ in range(3)] + ["seed:1"]
              + [f"step:{rng.randint(1, 4)}" for _ in range(5)]
              + [f"time:{rng.uniform(0.3, 0.9):.2f}" for _ in range(KILLS - 15)])
    rng.shuffle(points)
    return points


def _check_parses(run: Path) -> None:
    """Every file of the run folder is whole: JSON parses, checkpoints load with weights_only,
    metrics.jsonl parses but for a torn last line (dropped on resume)."""
    for path in run.rglob("*"):
        if not path.is_file() or path.name.endswith(".tmp"):
            continue  # temp files are never renamed into place when the writer dies; resume deletes them
        if path.suffix == ".json":
            json.loads(path.read_text())
        elif path.suffix == ".jsonl":
            lines = path.read_text().split("\n")
            for line in lines[:-1]:
                json.loads(line)
        elif path.suffix == ".pt":
            torch.load(path, weights_only=True)


def _results(run: Path) -> dict:
    out = {p.parent.parent.name: json.loads(p.read_text())["metrics"] for p in run.glob("seed-*/eval/metrics.json")}
    out["summary"] = json.loads((run / "summary.json").read_text())
    return out


@pytest.mark.slow
def test_a_run_killed_at_20_points_resumes_to_the_uninterrupted_result(tmp_path):
    base = write_recipe(tmp_path / "base.yaml", write_data(tmp_path), seeds=(5, 6))
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"extends: {base.name}\n" + SCHEDULE)
    started = time.monotonic()
    ref = _launch([str(recipe), "--out", str(tmp_path / "ref")], None)
    full_run_s = time.monotonic() - started
    assert ref.returncode == 0, ref.stderr
    reference = next((tmp_path / "ref" / "tiny-e2e").iterdir())

    killed, finished, run, outran = 0, [], None, 0
    faults = _faults(random.Random(20261205))
    while faults:
        fault = faults[0]
        args = [str(recipe), "--out", str(tmp_path / f"k{len(finished)}")] if run is None else [str(recipe), "--resume", str(run)]
        proc = _launch(args, fault, full_run_s)
        if run is None:
            run = next((tmp_path / f"k{len(finished)}" / "tiny-e2e").glob("*/run.json"), None)
            run = run.parent if run is not None else None
        if proc.returncode == 0:  # this run ended before the fault's count: check it, go on with a fresh run
            finished.append(run)
            run, outran = None, outran + 1
            assert outran <= 10, f"{fault}: ten runs in a row finished before the fault fired"
            continue
        outran = 0
        assert proc.returncode == -9, f"{fault}: exit {proc.returncode}\n{proc.stderr}"
        faults.pop(0)
        killed += 1
        if run is None:  # killed before the run folder was written (start-up): nothing to resume, nothing lost
            shutil.rmtree(tmp_path / f"k{len(finished)}", ignore_errors=True)
            continue
        _check_parses(run)
    if run is not None:
        proc = _launch([str(recipe), "--resume", str(run)], None)
        assert proc.returncode == 0, proc.stderr
        finished.append(run)
    assert killed == KILLS
    for run in finished:
        assert not list(run.rglob("*.tmp"))
        _check_parses(run)
        assert _results(run) == _results(reference)
    for seed in ("seed-5", "seed-6"):  # the training log ends the same (resumed steps replace replayed ones)
        logs = []
        for r in (reference, *finished):
            records = [json.loads(x) for x in (r / seed / "metrics.jsonl").read_text().splitlines()]
            last = {(x["event"], x["step"]): {k: v for k, v in x.items() if k != "time"} for x in records}
            logs.append(last)
        assert all(log == logs[0] for log in logs[1:])
