"""Objectives compose: a phase may hold per-batch and probe terms together (a joint phase);
it draws the training budget, each term gets its data, and the step's gradient is the
weighted sum of the terms' gradients."""
import json
import textwrap
from pathlib import Path

import pytest
import torch

import registry
from recipe_engine.cli import main
from recipe_engine.plan import TRAIN, Term, compile_timeline
from recipe_engine.resolve import resolve_text
from recipe_engine.train import term_losses
from tests.recipe_engine.tiny_run import write_data, write_recipe
from tests.registry._lib.fakes import balanced_data, context, tiny_classifier

PROBE = {"embedding_tuning": {"probes": 8, "k": 2, "probe_batch": 4},
         "influence_tuning": {"probes": 8, "k": 2, "probe_batch": 4, "parameters": {"last_n_layers": 1}},
         "adversarial": {}}

JOINT = """\
schedule:
  unit: step
  length: {{steps: 40}}
  phases:
    - {{id: warmup, for: 20, objectives: [{{name: cross_entropy}}]}}
    - id: joint
      until: end
      objectives:
        - {{name: cross_entropy}}
        - {{name: {name}, weight: {{from: 0.0, to: 1.0, over: 10}}, params: {params}}}
"""


def _joint_recipe(tmp_path: Path, name: str, params: dict | None = None) -> Path:
    recipe = write_recipe(tmp_path / "joint.yaml", write_data(tmp_path), seeds=(5,))
    text = recipe.read_text()
    text = text[:text.index("schedule:")] + JOINT.format(name=name, params=json.dumps(params or PROBE[name])) \
        + text[text.index("evaluation:"):]
    recipe.write_text(text.replace("log_every: 2", "log_every: 1"))
    return recipe


def test_a_joint_phase_draws_the_training_budget():
    recipe = resolve_text(textwrap.dedent("""\
        name: t
        model: {name: tiny_bert}
        data: {name: textlen}
        optimizer: {name: adamw}
        """) + JOINT.format(name="embedding_tuning", params="{}"), "t.yaml").recipe
    tl = compile_timeline(recipe.schedule, 24, lambda term: 3 if term.name == "embedding_tuning" else None)
    assert [(s.phase_id, s.steps, s.source, s.train_step_start) for s in tl.segments] == [
        ("warmup", 20, TRAIN, 0), ("joint", 20, TRAIN, 20)]
    assert tl.train_steps == 40 and not tl.dropped
    joint = tl.segments[1]
    assert joint.joint and [t.own_data for t in joint.terms] == [False, True]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["embedding_tuning", "influence_tuning", "adversarial"])
def test_warmup_then_joint_trains_every_declared_step(tmp_path, name, capsys):
    recipe = _joint_recipe(tmp_path, name)
    assert main(["run", str(recipe), "--out", str(tmp_path / "out")]) == 0
    assert "40 training steps" in capsys.readouterr().err  # the totals, before the first step
    run = next((tmp_path / "out" / "tiny-e2e").iterdir())
    records = [json.loads(x) for x in (run / "seed-5" / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in records if r["event"] == "train"]
    assert [r["step"] for r in train] == list(range(1, 41))
    assert all(r["phase"] == "warmup" and set(k for k in r if k.startswith("loss/")) == {"loss/cross_entropy"}
               for r in train[:20])
    joint = train[20:]
    assert all(r["phase"] == "joint" and f"loss/{name}" in r and "loss/cross_entropy" in r for r in joint)
    assert [round(r[f"weight/{name}"], 12) for r in joint] == [min(i / 10, 1.0) for i in range(20)]
    for r in joint:  # the step's loss is the weighted sum of the terms
        assert r["loss"] == pytest.approx(r["loss/cross_entropy"] + r[f"loss/{name}"], rel=1e-5, abs=1e-7)
    # at weight 0 (the ramp's first step) the term is not computed: its part is 0 and it logs nothing
    assert joint[0][f"loss/{name}"] == 0.0 and not any(k.startswith(f"{name}/") for k in joint[0])
    if name != "adversarial":  # the probe term logged its own quantities at every other joint step
        assert all(f"{name}/J" in r for r in joint[1:])
        assert any(r[f"{name}/J"] > 0 for r in joint[1:])


def _flat(model, loss):
    grads = torch.autograd.grad(loss, list(model.parameters()), allow_unused=True)
    return torch.cat([(torch.zeros_like(p) if g is None else g).reshape(-1) for p, g in zip(model.parameters(), grads)])


@pytest.mark.parametrize("name", ["embedding_tuning", "influence_tuning", "adversarial"])
def test_joint_gradient_is_the_weighted_sum_of_the_terms(name):
    """float64, tiny model: the engine's step loss (CE x 0.7 + ramped term) has the gradient
    0.7 grad CE + w grad term, each term computed alone from the same generator state."""
    model = tiny_classifier()
    data = balanced_data(4)
    ctx = context(model, data)
    ce = registry.build("objectives", "cross_entropy", {})
    other = registry.build("objectives", name, PROBE[name])
    for obj in (ce, other):
        obj.bind(ctx)
    weight = resolve_text(textwrap.dedent(f"""\
        name: t
        model: {{name: tiny_bert}}
        data: {{name: textlen}}
        optimizer: {{name: adamw}}
        """) + JOINT.format(name=name, params="{}"), "t.yaml").recipe.schedule.phases[1].objectives[1].weight
    own = other.own_data
    terms = [(Term("cross_entropy", "cross_entropy", 0.7, None), ce), (Term(name, name, weight, None, own), other)]
    batch = data.batch(torch.arange(8))
    if own:
        other.start_round()
        probe_batch = next(iter(other.batches(0)))
    state = ctx.generator.get_state()
    step = 3  # ramp weight 0.3
    parts = term_losses(terms, model, batch, {name: probe_batch} if own else {}, step)
    joint = _flat(model, sum(parts.values()))
    ctx.generator.set_state(state)
    g_ce = _flat(model, ce.loss(model, batch))
    ctx.generator.set_state(state)
    g_other = _flat(model, other.loss(model, probe_batch if own else batch))
    expected = 0.7 * g_ce + weight.at(step) * g_other
    assert weight.at(step) == pytest.approx(0.3)
    assert g_other.norm() > 0 and g_ce.norm() > 0
    assert ((joint - expected).norm() / expected.norm()).item() < 1e-12


@pytest.mark.slow
def test_a_run_killed_inside_a_joint_phase_resumes_to_the_same_metrics(tmp_path):
    """Checkpoints inside a joint phase keep the probe term's round and stream position: 12
    probes, 4 per step, so the checkpoint at step 28 falls inside a pass over a round's probes."""
    recipe = _joint_recipe(tmp_path, "embedding_tuning", {"probes": 12, "k": 2, "probe_batch": 4})
    recipe.write_text(recipe.read_text().replace("checkpoint_every: 3", "checkpoint_every: 4"))
    assert main(["run", str(recipe), "--out", str(tmp_path / "a")]) == 0
    assert main(["run", str(recipe), "--out", str(tmp_path / "b"), "--max-steps", "31"]) == 3  # checkpoint at 28
    run_a = next((tmp_path / "a" / "tiny-e2e").iterdir())
    run_b = next((tmp_path / "b" / "tiny-e2e").iterdir())
    assert main(["run", str(recipe), "--resume", str(run_b)]) == 0
    metrics = [json.loads((r / "seed-5" / "eval" / "metrics.json").read_text())["metrics"] for r in (run_a, run_b)]
    assert metrics[0] == metrics[1]
    logs = []
    for r in (run_a, run_b):
        records = [json.loads(x) for x in (r / "seed-5" / "metrics.jsonl").read_text().splitlines()]
        last = {x["step"]: x for x in records if x["event"] == "train"}  # resumed steps overwrite the replayed ones
        logs.append({s: {k: v for k, v in x.items() if k != "time"} for s, x in last.items()})
    assert logs[0] == logs[1]
