"""``show --cost``: pass counts per objective and phase on a hand-computed schedule, the
evaluations, the calibration on a tiny model, and how the estimate scales."""
import math

import pytest
import torch

import registry
from recipe_engine import cost
from recipe_engine.bundles import load_bundle, recipe_timeline
from recipe_engine.cli import main
from recipe_engine.resolve import resolve
from registry.types import PassCounts
from tests.recipe_engine.tiny_run import write_data, write_recipe

# 48 rows, batch 8 -> 6 steps/epoch; budget 8 steps: label 4, round 2, label 4, round 2
ALTERNATION = """\
schedule:
  unit: step
  length: {steps: 8}
  phases:
    - id: alternate
      repeat: until_end
      phases:
        - {id: label, for: 4, objectives: [{name: cross_entropy}]}
        - id: influence
          for: {epochs: 1}
          optimizer: {name: adamw, params: {lr: 1.0e-4}, reset_state: true}
          objectives: [{name: influence_tuning, params: {probes: 4, k: 1, probe_batch: 2}}]
"""


@pytest.fixture
def alternation(tmp_path):
    recipe = write_recipe(tmp_path / "r.yaml", write_data(tmp_path), seeds=(1, 2), epochs=1)
    text = recipe.read_text().replace("schedule:\n  unit: epoch\n  length: {epochs: 1}\n  phases:\n"
                                      "    - {id: train, until: end, objectives: [{name: cross_entropy}]}\n", "")
    recipe.write_text(text.replace("evaluation:\n", ALTERNATION + "evaluation:\n  every: {steps: 3}\n"))
    return str(recipe)


def test_pass_counts_of_a_hand_computed_schedule(alternation):
    recipe = resolve(alternation).recipe
    tl = recipe_timeline(recipe)
    assert [(s.phase_id, s.steps) for s in tl.segments] == [("label", 4), ("influence", 2), ("label", 4), ("influence", 2)]
    label, influence, ev = cost.count_passes(recipe, tl, seq_len=10.0, eval_sizes={"dev": (24, 7.0), "test": (24, 5.0)})
    # cross-entropy: 8 steps x batch 8 rows, one forward and one backward each
    assert (label.phase, label.steps, label.passes) == ("label", 8, PassCounts(64, 64, 0))
    assert label.tokens == PassCounts(640, 640, 0)
    # influence: 4 steps x min(probe_batch 2, probes 4) probes x (1 + 2k = 3) rows, each F, B and double B
    assert (influence.steps, influence.passes) == (4, PassCounts(24, 24, 24))
    # evaluations during training after global steps 3 and 9 (6 is a round's step) on dev; then dev and test
    assert cost.eval_points(tl, 3) == 2
    assert ev.phase == cost.EVALUATION and ev.eval_rows == 2 * 24 + 24 + 24
    assert ev.eval_tokens == 2 * 24 * 7.0 + 24 * 7.0 + 24 * 5.0


@pytest.mark.parametrize("name, params, batch, expected", [
    ("cross_entropy", {}, 8, PassCounts(8, 8, 0)),
    ("adversarial", {}, 8, PassCounts(8, 8, 0)),  # the default: like cross-entropy
    ("ig_variance", {"nodes": 10}, 4, PassCounts(44, 44, 0)),
    ("ig_variance", {"nodes": 10, "mode": "differentiable"}, 4, PassCounts(44, 44, 40)),
    ("rationale_erasure", {"copies": 2}, 4, PassCounts(20, 20, 0)),
    ("rationale_margin", {}, 4, PassCounts(4, 4, 4)),
    ("embedding_tuning", {"probes": 10, "k": 3, "probe_batch": 4}, 99, PassCounts(28, 28, 0)),
    ("influence_tuning", {"probes": 3, "k": 2, "probe_batch": 8}, 99, PassCounts(15, 15, 15)),
    # reference route: + 4 HVPs (2 F, 2 B, 2 double B each) for each of the 3 x 2k = 12 probe-candidate pairs
    ("influence_tuning", {"probes": 3, "k": 2, "probe_batch": 8, "route": "reference"}, 99,
     PassCounts(15 + 96, 15 + 96, 15 + 96)),
])
def test_each_objective_declares_its_passes(name, params, batch, expected):
    assert registry.build("objectives", name, params).cost(batch, 32) == expected


def test_pass_counts_add_and_scale():
    assert PassCounts(1, 2, 3) + PassCounts(1, 1, 1) == PassCounts(2, 3, 4)
    assert 2 * PassCounts(1, 2, 3) == PassCounts(1, 2, 3) * 2 == PassCounts(2, 4, 6)


def test_padded_width_is_the_mean_longest_row_of_a_batch():
    lengths = torch.tensor([1, 2, 3, 4])
    assert cost.padded_width(lengths, 4) == 4.0  # every batch holds the longest row
    assert cost.padded_width(lengths, 1, draws=4000) == pytest.approx(2.5, abs=0.1)  # one row: the mean length
    assert cost.padded_width(torch.tensor([], dtype=torch.long), 8) == 0.0


def test_estimate_is_tokens_times_calibrated_rates_and_scales_with_the_schedule(alternation):
    recipe = resolve(alternation).recipe
    bundle = load_bundle(recipe)
    model = cost.build_model(recipe, bundle, torch.device("cpu"))
    rates = cost.calibrate(recipe, bundle, model, torch.device("cpu"), repeats=1)
    for v in (rates.forward, rates.backward, rates.double_backward, rates.eval_forward, rates.optimizer_step):
        assert math.isfinite(v) and v > 0
    report = cost.estimate(recipe, bundle, recipe_timeline(recipe), model.tokenizer, rates)
    setup, label = report.phases[:2]
    assert setup.phase == cost.SETUP and setup.eval_rows == 48 + 24 + 24  # train, dev, test tokenised every seed
    assert setup.seconds == pytest.approx(rates.model_build + 96 * rates.tokenize_row)
    assert label.seconds == pytest.approx(label.tokens.forward * rates.forward + label.tokens.backward * rates.backward
                                          + 8 * rates.optimizer_step)
    assert report.seconds_per_seed == pytest.approx(sum(p.seconds for p in report.phases))
    assert cost.estimated_seconds(report) == pytest.approx(2 * report.seconds_per_seed)  # two seeds

    longer = resolve(alternation, ["schedule.length.steps=16"]).recipe
    report2 = cost.estimate(longer, bundle, recipe_timeline(longer), model.tokenizer, rates)
    train = lambda r: sum(p.seconds for p in r.phases if p.phase not in (cost.EVALUATION, cost.SETUP))  # noqa: E731
    assert train(report2) == pytest.approx(2 * train(report), rel=1e-9)  # twice the alternations: twice the time
    assert report2.phases[-1].eval_rows > report.phases[-1].eval_rows  # more evaluations along the way


def test_show_cost_prints_a_table_and_run_prints_one_estimate_line(alternation, tmp_path, capsys):
    path = alternation
    assert main(["show", path, "--cost"]) == 0
    out = capsys.readouterr().out
    assert "rows fwd / bwd / double-bwd" in out and "\nlabel " in out and "\ninfluence " in out
    assert "(evaluation)" in out and "total: " in out and "for 2 seed(s) one after another on cpu" in out
    assert main(["run", path, "--out", str(tmp_path / "out"), "--max-steps", "1"]) == 3
    err = capsys.readouterr().err
    assert err.count("estimated time: small (") == 1 and "not calibrated" in err
    assert main(["run", path, "--out", str(tmp_path / "out2"), "--max-steps", "1", "--no-estimate"]) == 3
    assert "estimated time" not in capsys.readouterr().err
