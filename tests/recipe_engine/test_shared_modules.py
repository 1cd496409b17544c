"""An objective's module shared by two phases (UIMER-DM: the extractor round trains the gate,
the model round reads it): one object, held once in ``extras``, trained by a phase optimizer
over extra-module parameters while the model stays bitwise unchanged, checkpointed once and
resumed to the same metrics."""
import json
import random
from pathlib import Path

import pytest
import torch

from recipe_engine.bundles import load_bundle
from recipe_engine.cli import main
from recipe_engine.feeds import train_batches
from recipe_engine.resolve import resolve
from recipe_engine.train import optimizer_step, segment_train_mode, setup, term_losses
from tests.recipe_engine.tiny_run import WORDS, write_recipe

ROUNDS = """\
schedule:
  unit: epoch
  length: {epochs: 5}
  phases:
    - {id: warmup, for: 1, objectives: [{name: cross_entropy}]}
    - id: rounds
      repeat: 2
      phases:
        - id: extract
          for: 1
          optimizer: {name: adamw, params: {lr: 5.0e-2, weight_decay: 0.0}}
          objectives: [{name: rationale_extractor, params: {role: extractor}}]
        - id: model
          for: 1
          objectives:
            - {name: cross_entropy}
            - {name: rationale_extractor, id: align, weight: 10.0, params: {role: align}}
"""
KEY = "shared__rationale_extractor__extractor"


def _data(root: Path, seed: int = 0) -> Path:
    """A length task whose rationale is the word 'long' or 'short' that says the label."""
    rng = random.Random(seed)
    out = root / "tinyrat"
    out.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", 48), ("dev", 16), ("test", 16)):
        with open(out / f"{split}.jsonl", "w") as f:
            for i in range(n):
                label = i % 2
                words = [rng.choice(WORDS) for _ in range(rng.randint(3, 6) if label == 0 else rng.randint(8, 11))]
                at = rng.randrange(len(words))
                words.insert(at, "long" if label else "short")
                rat = [int(j == at) for j in range(len(words))] if i % 5 else None  # every 5th: no rationale
                f.write(json.dumps({"id": f"{split}-{i}", "text": " ".join(words), "label": label,
                                    "prefix": rng.randint(0, 1), "rat": rat}) + "\n")
    return out


def _recipe(tmp_path: Path) -> Path:
    path = write_recipe(tmp_path / "dm.yaml", _data(tmp_path), seeds=(5,))
    text = path.read_text().replace("confound: prefix}", "confound: prefix, rationale: rat}")
    text = text[:text.index("schedule:")] + ROUNDS + text[text.index("evaluation:"):]
    path.write_text(text.replace("name: tiny-e2e", "name: tiny-dm"))
    return path


def test_one_shared_extractor_in_extras_and_a_phase_optimizer_over_it(tmp_path):
    recipe = resolve(_recipe(tmp_path)).recipe
    run = setup(recipe, load_bundle(recipe, fresh=True), 5, torch.device("cpu"))
    extractor = run.objectives[("extract", "rationale_extractor")]
    align = run.objectives[("model", "align")]
    assert extractor.gate is align.gate  # the same module object in both phases
    assert list(run.extras) == [KEY] and run.extras[KEY] is extractor.gate  # held once
    gate_ids = {id(p) for p in extractor.gate.parameters()}
    extract_params = [p for g in run.optimizers["extract"].optimizer.param_groups for p in g["params"]]
    assert {id(p) for p in extract_params} == gate_ids and len(extract_params) == len(gate_ids)
    main_params = [p for g in run.optimizers["main"].optimizer.param_groups for p in g["params"]]
    assert len({id(p) for p in main_params}) == len(main_params)  # nothing twice
    assert [(s.phase_id, s.optimizer, s.steps) for s in run.timeline.segments] == [
        ("warmup", "main", 6), ("extract", "extract", 6), ("model", "main", 6), ("extract", "extract", 6),
        ("model", "main", 6)]


def test_an_extractor_phase_leaves_the_model_bitwise_unchanged(tmp_path):
    recipe = resolve(_recipe(tmp_path)).recipe
    run = setup(recipe, load_bundle(recipe, fresh=True), 5, torch.device("cpu"))
    seg = run.timeline.segments[1]
    terms = [(t, run.objectives[(seg.phase_id, t.id)]) for t in seg.terms]
    run.model.train(segment_train_mode(terms))
    assert run.model.training is False  # the extractor round runs the model in eval mode (DiffMask)
    model_before = {k: v.clone() for k, v in run.model.state_dict().items()}
    gate_before = {k: v.clone() for k, v in run.extras.state_dict().items()}
    stream = train_batches(run.train, recipe.data.batch_size, 5, {"epoch": 0, "batch": 0})
    for step in range(seg.steps):
        parts = term_losses(terms, run.model, next(stream), {}, step)
        optimizer_step(run.optimizers[seg.optimizer], sum(parts.values()))
    assert all(torch.equal(model_before[k], v) for k, v in run.model.state_dict().items())
    assert all(p.grad is None for p in run.model.parameters())  # no weight gradients computed at all
    changed = [k for k, v in run.extras.state_dict().items() if not torch.equal(gate_before[k], v)]
    assert f"{KEY}.mlp.0.weight" in changed and f"{KEY}.placeholder" in changed and f"{KEY}.multiplier" in changed


@pytest.mark.slow
def test_rounds_train_checkpoint_the_gate_once_and_resume_to_the_same_metrics(tmp_path):
    """Killed inside the second extractor round (checkpoint at step 21 of 30), resumed: the
    gate, its optimizer's moments and the gate noise's generator come back."""
    recipe = _recipe(tmp_path)
    assert main(["run", str(recipe), "--out", str(tmp_path / "a")]) == 0
    assert main(["run", str(recipe), "--out", str(tmp_path / "b"), "--max-steps", "22"]) == 3
    run_a = next((tmp_path / "a" / "tiny-dm").iterdir())
    run_b = next((tmp_path / "b" / "tiny-dm").iterdir())
    saved = torch.load(run_b / "seed-5" / "checkpoints" / "last.pt", weights_only=True)
    assert saved["position"]["global_step"] == 21 and saved["position"]["segment"] == 3  # inside extract, round 2
    assert sorted({k.split(".")[0] for k in saved["extras"]}) == [KEY]  # the gate, once
    assert set(saved["optimizers"]) == {"main", "extract"}
    assert main(["run", str(recipe), "--resume", str(run_b)]) == 0
    metrics = [json.loads((r / "seed-5" / "eval" / "metrics.json").read_text())["metrics"] for r in (run_a, run_b)]
    assert metrics[0] == metrics[1]
    logs = []
    for r in (run_a, run_b):
        records = [json.loads(x) for x in (r / "seed-5" / "metrics.jsonl").read_text().splitlines()]
        last = {x["step"]: x for x in records if x["event"] == "train"}
        logs.append({s: {k: v for k, v in x.items() if k != "time"} for s, x in last.items()})
    assert logs[0] == logs[1]
    extract = [x for x in logs[0].values() if x["phase"].endswith("/extract")]
    model = [x for x in logs[0].values() if x["phase"].endswith("/model")]
    assert extract and all("rationale_extractor/kl" in x and "rationale_extractor/multiplier" in x for x in extract)
    assert model and all("align/used" in x and x["weight/align"] == 10.0 for x in model)
    assert any(x["align/skipped"] > 0 for x in model)  # every 5th example has no rationale


def test_a_model_phase_trains_the_model_and_leaves_the_frozen_gate_unchanged(tmp_path):
    recipe = resolve(_recipe(tmp_path)).recipe
    run = setup(recipe, load_bundle(recipe, fresh=True), 5, torch.device("cpu"))
    seg = run.timeline.segments[2]
    assert seg.phase_id == "model" and seg.optimizer == "main"
    terms = [(t, run.objectives[(seg.phase_id, t.id)]) for t in seg.terms]
    run.model.train(segment_train_mode(terms))
    model_before = {k: v.clone() for k, v in run.model.state_dict().items()}
    gate_before = {k: v.clone() for k, v in run.extras.state_dict().items()}
    stream = train_batches(run.train, recipe.data.batch_size, 5, {"epoch": 0, "batch": 0})
    for step in range(seg.steps):
        parts = term_losses(terms, run.model, next(stream), {}, step)
        assert parts["align"].requires_grad
        optimizer_step(run.optimizers[seg.optimizer], sum(parts.values()))
    assert all(torch.equal(gate_before[k], v) for k, v in run.extras.state_dict().items())
    assert not all(torch.equal(model_before[k], v) for k, v in run.model.state_dict().items())
