"""Early stopping on a dev metric: the best model is what the final evaluation sees, and an
``until: converged`` phase hands over to the next phase when early stopping first fires."""
import hashlib
import json
import math

import pytest
import torch

from recipe_engine.cli import main
from recipe_engine.early_stopping import EarlyStopper
from recipe_engine.errors import UserError
from recipe_engine.resolve import resolve
from recipe_engine.schema import METHOD_SECTIONS, EarlyStopping
from tests.recipe_engine.tiny_run import write_data, write_recipe


def _stopper(tmp_path, **spec) -> EarlyStopper:
    return EarlyStopper(EarlyStopping(**{"metric": "dev/accuracy", **spec}), tmp_path / "best.pt")


def test_patience_counts_evaluations_without_improvement(tmp_path):
    s = _stopper(tmp_path, patience=2, min_delta=0.5)
    model = torch.nn.Linear(2, 1)
    assert [s.update({"dev/accuracy": v}, step, {"model": model}) for step, v in
            enumerate([50.0, 50.4, 51.0, 51.2, 51.4], 1)] == [False, False, False, False, True]
    assert (s.best, s.best_step) == (51.0, 3)  # 50.4 and 51.2 are within min_delta
    s.reset_patience()
    assert s.update({"dev/accuracy": 40.0}, 6, {"model": model}) is False  # counting starts again
    assert s.update({"dev/accuracy": 40.0}, 7, {"model": model}) is True


def test_min_mode_and_state_round_trip(tmp_path):
    s = _stopper(tmp_path, metric="dev/loss", mode="min", patience=1)
    model = torch.nn.Linear(2, 1)
    assert s.update({"dev/loss": 1.0}, 1, {"model": model}) is False
    again = _stopper(tmp_path, metric="dev/loss", mode="min", patience=1)
    again.load_state_dict(s.state_dict())
    assert (again.best, again.best_step, again.bad) == (1.0, 1, 0)
    assert again.update({"dev/loss": 1.5}, 2, {"model": model}) is True
    assert math.isinf(_stopper(tmp_path).best)


def test_the_best_weights_are_restored(tmp_path):
    s = _stopper(tmp_path, patience=5)
    model = torch.nn.Linear(2, 1)
    s.update({"dev/accuracy": 60.0}, 1, {"model": model})
    best = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        model.weight.add_(1.0)
    s.update({"dev/accuracy": 55.0}, 2, {"model": model})
    assert s.restore_best({"model": model}, torch.device("cpu"))
    assert all(torch.equal(model.state_dict()[k], v) for k, v in best.items())


def test_a_metric_that_is_not_evaluated_is_a_clear_error(tmp_path):
    with pytest.raises(UserError, match="dev/acc.*not among the metrics evaluated during training.*dev/accuracy"):
        _stopper(tmp_path, metric="dev/acc").update({"dev/accuracy": 1.0}, 1, {})


def _recipe(tmp_path, schedule: str, evaluation: str, lr: float = 1e-3):
    recipe = write_recipe(tmp_path / "r.yaml", write_data(tmp_path), seeds=(5,))
    text = recipe.read_text().replace("lr: 1.0e-3", f"lr: {lr}")
    recipe.write_text(text[:text.index("schedule:")] + schedule + evaluation + text[text.index("runtime:"):])
    return recipe


CONVERGED = """\
schedule:
  unit: step
  length: {steps: 30}
  phases:
    - {id: warmup, for: 20, until: converged, objectives: [{name: cross_entropy}]}
    - {id: tail, for: 6, objectives: [{name: cross_entropy}]}
"""
STOP_ON_DEV = """\
evaluation:
  splits: [dev, test]
  metrics: [{name: accuracy}]
  every: {steps: 2}
  early_stopping: {metric: dev/accuracy, patience: 3}
"""


@pytest.mark.parametrize("schedule, evaluation, message", [
    (CONVERGED, STOP_ON_DEV.replace("  early_stopping: {metric: dev/accuracy, patience: 3}\n", ""),
     "until: converged ends the phase when early stopping fires; declare evaluation.early_stopping"),
    (CONVERGED, STOP_ON_DEV.replace("  every: {steps: 2}\n", ""), "early stopping watches evaluations during training; set evaluation.every"),
    (CONVERGED, STOP_ON_DEV.replace("metric: dev/accuracy", "metric: train/accuracy"),
     "metric 'train/accuracy' must be <split>/<metric> with the split among evaluation.splits (dev, test)"),
    (CONVERGED.replace("for: 20, until: converged", "until: converged"), STOP_ON_DEV,
     "until: converged needs 'for: N', the most the phase may take"),
])
def test_validate_refuses_an_incomplete_early_stopping_setup(tmp_path, capsys, schedule, evaluation, message):
    assert main(["validate", str(_recipe(tmp_path, schedule, evaluation))]) == 1
    assert message in capsys.readouterr().err


def _records(run):
    return [json.loads(x) for x in (run / "seed-5" / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_a_converged_phase_hands_over_when_early_stopping_first_fires(tmp_path, capsys):
    """lr 1e-9: dev accuracy never improves after the first evaluation (step 2), so with patience 3
    the warm-up converges at step 8 and the tail's 6 steps follow; then patience starts again."""
    recipe = _recipe(tmp_path, CONVERGED, STOP_ON_DEV, lr=1e-9)
    assert main(["show", str(recipe), "--schedule"]) == 0
    assert "<=20" in capsys.readouterr().out
    assert main(["run", str(recipe), "--out", str(tmp_path / "out")]) == 0
    err = capsys.readouterr().err
    assert "seed 5: phase 'warmup' converged at step 8 (best dev/accuracy" in err
    assert "at step 2); the next phase starts" in err
    assert "seed 5: early stopping at step 14" in err  # the tail's 3rd evaluation without improvement
    run = next((tmp_path / "out" / "tiny-e2e").iterdir())
    train = [r for r in _records(run) if r["event"] == "train"]
    assert [r["phase"] for r in train if r["step"] <= 8] == ["warmup"] * 4
    assert [(r["step"], r["phase"]) for r in train if r["step"] > 8] == [(10, "tail"), (12, "tail"), (14, "tail")]


@pytest.mark.slow
def test_the_final_evaluation_is_made_at_the_best_dev_step(tmp_path, capsys):
    schedule = CONVERGED.replace("for: 20, until: converged", "for: 20").replace("for: 6, ", "for: 4, ")
    recipe = _recipe(tmp_path, schedule, STOP_ON_DEV.replace("every: {steps: 2}", "every: {steps: 1}")
                     .replace("patience: 3", "patience: 100"), lr=3e-3)
    assert main(["run", str(recipe), "--out", str(tmp_path / "out")]) == 0
    run = next((tmp_path / "out" / "tiny-e2e").iterdir())
    evals = [r for r in _records(run) if r["event"] == "eval"]
    assert len(evals) == 24
    best = max(evals, key=lambda r: (r["dev/accuracy"], -r["step"]))
    final = json.loads((run / "seed-5" / "eval" / "metrics.json").read_text())["metrics"]
    assert final["dev/accuracy"] == best["dev/accuracy"]
    assert f"final evaluation of the model at its best evaluation (best dev/accuracy {best['dev/accuracy']:.4g} " \
           f"at step {best['step']})" in capsys.readouterr().err
    assert (run / "seed-5" / "checkpoints" / "best.pt").is_file()


@pytest.mark.slow
def test_a_run_killed_after_convergence_resumes_to_the_same_metrics(tmp_path):
    recipe = _recipe(tmp_path, CONVERGED, STOP_ON_DEV, lr=1e-9)
    recipe.write_text(recipe.read_text().replace("checkpoint_every: 3", "checkpoint_every: 1"))
    assert main(["run", str(recipe), "--out", str(tmp_path / "a")]) == 0
    assert main(["run", str(recipe), "--out", str(tmp_path / "b"), "--max-steps", "11"]) == 3
    run_a, run_b = (next((tmp_path / d / "tiny-e2e").iterdir()) for d in ("a", "b"))
    assert main(["run", str(recipe), "--resume", str(run_b)]) == 0
    metrics = [json.loads((r / "seed-5" / "eval" / "metrics.json").read_text())["metrics"] for r in (run_a, run_b)]
    assert metrics[0] == metrics[1]
    steps = [sorted({r["step"] for r in _records(r) if r["event"] == "train"}) for r in (run_a, run_b)]
    assert steps[0] == steps[1] == [2, 4, 6, 8, 10, 12, 14]


def test_an_unset_early_stopping_leaves_the_fingerprint_as_it_was(tmp_path):
    recipe = write_recipe(tmp_path / "r.yaml", write_data(tmp_path), seeds=(5,))
    plain = resolve(recipe)
    method = {k: plain.recipe.model_dump(mode="json", by_alias=True)[k] for k in METHOD_SECTIONS}
    assert method["evaluation"].pop("early_stopping") is None
    assert method["evaluation"].pop("attributions") is None  # the other setting added later
    assert plain.fingerprint == hashlib.sha256(json.dumps(method, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    set_ = resolve(recipe, ["evaluation.every={steps: 2}", "evaluation.early_stopping={metric: dev/accuracy}"])
    only_every = resolve(recipe, ["evaluation.every={steps: 2}"])
    assert only_every.fingerprint != set_.fingerprint != plain.fingerprint
