"""The deconfounding recipes' mechanics through the real loop, on a tiny model (slow)."""
import json
from pathlib import Path

import pytest

from recipe_engine.cli import main
from tests.recipe_engine.tiny_run import write_data, write_recipe

pytestmark = pytest.mark.slow

ALTERNATION = """
schedule:
  unit: step
  ~length:
  length: {steps: 12}
  phases:
    - {~id: train}
    - id: alt
      repeat: until_end
      phases:
        - {id: label, for: 6, objectives: [{name: cross_entropy}]}
        - id: round
          for: {epochs: 2}
          min_remaining: 3
          optimizer: {name: adamw, params: {lr: 1.0e-3, no_decay: []}, reset_state: all}
          objectives: [{name: %s, params: {probes: 6, k: 2, probe_batch: 4}}]
evaluation:
  every: {steps: 6}
  metrics: [{name: accuracy}, {name: group_accuracy}, {name: cid, params: {probes: 6}}]
"""


def _run(tmp_path: Path, extra: str) -> tuple[Path, list[dict], dict]:
    base = write_recipe(tmp_path / "base.yaml", write_data(tmp_path), seeds=(5,))
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"extends: {base.name}\n" + extra)
    assert main(["run", str(recipe), "--out", str(tmp_path / "o")]) == 0
    run = next((tmp_path / "o" / "tiny-e2e").iterdir())
    records = [json.loads(x) for x in (run / "seed-5" / "metrics.jsonl").read_text().splitlines()]
    metrics = json.loads((run / "seed-5" / "eval" / "metrics.json").read_text())["metrics"]
    return run, records, metrics


@pytest.mark.parametrize("objective", ["influence_tuning", "embedding_tuning"])
def test_alternation_runs_rounds_with_their_own_optimizer(tmp_path, objective):
    run, records, metrics = _run(tmp_path, ALTERNATION % objective)
    phases = [r["phase"] for r in records if r["event"] == "train"]
    assert any(p.endswith("/round") for p in phases) and any(p.endswith("/label") for p in phases)
    rounds = [r for r in records if r["event"] == "train" and r["phase"].endswith("/round")]
    assert all(f"loss/{objective}" in r for r in rounds)
    assert any(f"{objective}/influence_diff" in r for r in rounds)
    evals = [r for r in records if r["event"] == "eval"]
    assert [r["step"] for r in evals] == [6, 12] and all("train/cid" in r for r in evals)  # the CID curve
    assert -1.0 <= metrics["train/cid"] <= 1.0
    assert (run / "report.html").is_file()


def test_adversarial_trains_a_confound_head(tmp_path):
    extra = """
schedule:
  phases:
    - id: train
      objectives: [{~name: cross_entropy}, {name: adversarial, params: {grl_lambda: 0.3}}]
"""
    run, records, metrics = _run(tmp_path, extra)
    import torch

    state = torch.load(run / "seed-5" / "checkpoints" / "last.pt", weights_only=False)
    assert any("confound_head" in k for k in state["extras"])
    assert "test/accuracy" in metrics
