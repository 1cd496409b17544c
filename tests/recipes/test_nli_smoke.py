"""The shipped SNLI recipe runs end to end with a tiny random encoder on a few dozen pairs:
HANS is scored on two classes and its per-heuristic keys reach the metrics file."""
import json
from pathlib import Path

import pytest

from recipe_engine.cli import main

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def test_snli_finetune_smoke(tmp_path, capsys, shared_root):
    recipe = ROOT / "recipes" / "nli" / "snli_finetune.yaml"
    overrides = ["model.name=tiny_bert", "data.params.train_size=32", "data.params.eval_size=16",
                 "data.params.hans_size=60", "data.max_length=16", "data.batch_size=16", "schedule.length.epochs=1",
                 "seeds=[1]", "runtime.progress=false", f"runtime.data_root={shared_root}"]
    assert main(["run", str(recipe), *overrides, "--out", str(tmp_path / "out")]) == 0
    err = capsys.readouterr().err
    assert "pairs truncated to 16 tokens" in err  # SNLI pairs have median 25 word pieces
    run = next(p for p in (tmp_path / "out" / "snli-finetune").iterdir() if p.is_dir())
    m = json.loads((run / "seed-1" / "eval" / "metrics.json").read_text())["metrics"]
    assert {"dev/accuracy", "test/accuracy", "hans/accuracy", "hans/all/non-entailment"} <= set(m)
    assert {f"hans/{h}/{y}" for h in ("lexical_overlap", "subsequence", "constituent")
            for y in ("entailment", "non-entailment")} <= set(m)
    assert not any(k.startswith(("dev/lexical", "dev/all")) for k in m)  # no heuristic column on dev


def test_snli_with_a_confound_runs_group_metrics_cid_and_embedding_tuning(tmp_path, shared_root):
    recipe = tmp_path / "snli_confound.yaml"
    recipe.write_text(f"""\
extends: {ROOT / 'recipes' / 'nli' / 'snli_finetune.yaml'}
name: snli-confound-smoke
seeds: [1]
model: {{name: tiny_bert}}
data:
  params: {{train_size: 48, eval_size: 16, hans_size: 60, confound: lexical_overlap}}
  batch_size: 16
schedule:
  length: {{epochs: 1}}
  phases:
    - id: train
      objectives:
        - {{name: cross_entropy}}
        - {{name: embedding_tuning, weight: 0.1, params: {{probes: 4, k: 2}}}}
evaluation:
  metrics:
    - {{name: group_accuracy, params: {{aligned: {{'0': 1}}}}}}
    - {{name: cid, params: {{probes: 8}}}}
runtime: {{progress: false, data_root: {shared_root}}}
""")
    assert main(["validate", str(recipe)]) == 0
    assert main(["run", str(recipe), "--out", str(tmp_path / "out")]) == 0
    run = next(p for p in (tmp_path / "out" / "snli-confound-smoke").iterdir() if p.is_dir())
    m = json.loads((run / "seed-1" / "eval" / "metrics.json").read_text())["metrics"]
    assert "train/cid" in m and "dev/worst_group" in m and "hans/worst_group" in m
    assert any(k.startswith("dev/group/entailment/lexical_overlap=") for k in m)
    assert "hans/lexical_overlap/non-entailment" in m
