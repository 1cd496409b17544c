"""A run stopped by SIGTERM at a step boundary resumes to the same result; files honour the
umask; a torn last line of metrics.jsonl is dropped on resume."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from recipe_engine.cli import main
from recipe_engine.outputs import append_jsonl, atomic_write_text, drop_torn_tail
from recipe_engine.run_log import RunLog
from tests.recipe_engine.tiny_run import write_data, write_recipe

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_written_files_honour_the_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        atomic_write_text(tmp_path / "a.json", "{}\n")
        append_jsonl(tmp_path / "m.jsonl", {"step": 1})
    finally:
        os.umask(old)
    assert (tmp_path / "a.json").stat().st_mode & 0o777 == mode
    assert (tmp_path / "m.jsonl").stat().st_mode & 0o777 == mode


def test_a_torn_last_line_is_dropped_when_the_log_is_reopened(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 1}\n{"step": 2}\n{"step": 3, "lo')
    log = RunLog(tmp_path, seed=1, total_steps=3, done_steps=2, tensorboard=False, progress=False)
    assert log.repaired
    assert path.read_text() == '{"step": 1}\n{"step": 2}\n'
    assert drop_torn_tail(path) is False  # whole lines are left alone


def test_a_shorter_segment_shrinks_the_progress_bar_total(tmp_path):
    log = RunLog(tmp_path, seed=1, total_steps=100, done_steps=10, tensorboard=False, progress=True)
    log.fewer_steps(30)
    assert (log.bar.n, log.bar.total) == (10, 70)
    log.fewer_steps(500)  # never below the steps already done
    assert log.bar.total == 10
    log.close()


@pytest.mark.slow
def test_sigterm_stops_at_a_step_boundary_and_the_run_resumes_to_the_same_metrics(tmp_path):
    recipe = write_recipe(tmp_path / "r.yaml", write_data(tmp_path, n_train=96), seeds=(3,), epochs=6)
    assert main(["run", str(recipe), "--out", str(tmp_path / "a")]) == 0
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE", "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "recipe_engine", "run", str(recipe), "--out", str(tmp_path / "b")],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not list((tmp_path / "b").glob("*/*/seed-3/metrics.jsonl")) and time.time() < deadline:
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 3, err
    assert "stopped by SIGTERM after step" in err and "checkpoint saved; continue with: recipe-engine run" in err
    run_a, run_b = (next((tmp_path / d / "tiny-e2e").iterdir()) for d in ("a", "b"))
    assert not (run_b / "seed-3" / "eval" / "metrics.json").exists()  # it did stop before the end
    assert main(["run", str(recipe), "--resume", str(run_b)]) == 0
    metrics = [json.loads((r / "seed-3" / "eval" / "metrics.json").read_text())["metrics"] for r in (run_a, run_b)]
    assert metrics[0] == metrics[1]
    for line in (run_b / "seed-3" / "metrics.jsonl").read_text().splitlines():
        json.loads(line)
