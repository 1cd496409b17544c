"""rationale_margin (UIMER-GB and its generalisation): both forms by hand on a test-only
attribution, the gradient through a differentiable saliency against finite differences, the
GB form being inert on a BERT (embedding LayerNorm), the params' checks, and `validate`
refusing it on a dataset without rationales."""
from __future__ import annotations

import pytest
import torch

import registry
from registry.data import EncodedSplit
from registry.errors import UserError
from registry.objectives.rationale_margin import RationaleMargin
from registry.types import ObjectiveContext
from tests.registry._lib.fakes import tiny_classifier

from tests.registry._lib.fakes import CLS, PAD, SEP, TOK, TableModel, table_attribution  # noqa: F401  (a fixture)


def _split(ids: list[list[int]], rationale: list[list[int]], labels: list[int]) -> EncodedSplit:
    T = max(map(len, ids))
    input_ids = torch.tensor([r + [PAD] * (T - len(r)) for r in ids])
    att = (torch.arange(T)[None] < torch.tensor([len(r) for r in ids])[:, None]).long()
    rat = torch.tensor([r + [0] * (T - len(r)) for r in rationale], dtype=torch.float)
    n = len(ids)
    return EncodedSplit("train", [str(i) for i in range(n)], input_ids, att, torch.tensor(labels),
                        torch.full((n,), -1), torch.zeros(n, dtype=torch.bool), rationale=rat)


def _bound(model, data, **params) -> RationaleMargin:
    obj = registry.build("objective", "rationale_margin", params)
    obj.bind(ObjectiveContext(model=model, train=data, num_labels=2, num_confounds=1, device=torch.device("cpu"),
                              generator=torch.Generator().manual_seed(0)))
    return obj


ROWS = [[CLS, 10, 11, 12, SEP], [CLS, 13, 14, 15, SEP], [CLS, 16, 17, SEP, PAD], [CLS, 18, 19, SEP]]
RATS = [[0, 1, 0, 0, 0], [0, 1, 1, 0, 0], [0, 1, 0, 0, 0], [0, 0, 0, 0]]  # the 4th row has no rationale
LABELS = [1, 0, 1, 1]
VALUES = {10: 3.0, 11: 1.0, 12: 0.0, 13: 1.0, 14: 0.0, 15: 1.0, 16: 0.2, 17: 0.4, 18: 5.0, 19: -5.0}


def test_margin_by_hand_on_three_examples(table_attribution):
    model, data = TableModel(VALUES), _split(ROWS, RATS, LABELS)
    batch = data.batch(range(4))
    # none / mean, eps 0.5: row 1 A_R 3, A_N (1 + 0)/2 = 0.5 -> max(0, 0.5 - 3 + 0.5) = 0;
    # row 2 A_R (1 + 0)/2 = 0.5, A_N 1 -> 1.0; row 3 A_R 0.2, A_N 0.4 -> 0.7; row 4 skipped
    obj = _bound(model, data, attribution=table_attribution, normalise="none", margin=0.5)
    assert obj.loss(model, batch).item() == pytest.approx((0 + 1.0 + 0.7) / 3, abs=1e-12)
    logs = obj.logs()
    assert (logs["skipped"], logs["used"], logs["active"], logs["no_other"]) == (1.0, 3.0, 2.0, 0.0)
    assert logs["a_rationale"] == pytest.approx((3 + 0.5 + 0.2) / 3) and logs["a_other"] == pytest.approx((0.5 + 1 + 0.4) / 3)
    # l1 (the default): row 1 /4 -> A_R 0.75, A_N 0.125 -> 0; row 2 /2 -> 0.25, 0.5 -> 0.75; row 3 /0.6 -> 1/3, 2/3 -> 5/6
    obj = _bound(model, data, attribution=table_attribution, margin=0.5)
    assert obj.loss(model, batch).item() == pytest.approx((0 + 0.75 + 5 / 6) / 3, abs=1e-12)
    # max normalisation and max aggregate: row 1 /3 -> 1, 1/3 -> 0; row 2 /1 -> 1, 1 -> 0.5; row 3 /0.4 -> 0.5, 1 -> 1.0
    obj = _bound(model, data, attribution=table_attribution, normalise="max", aggregate="max", margin=0.5)
    assert obj.loss(model, batch).item() == pytest.approx((0 + 0.5 + 1.0) / 3, abs=1e-12)


def test_margin_is_exactly_zero_when_the_rationale_wins_by_the_margin(table_attribution):
    data = _split(ROWS, RATS, LABELS)
    # none / mean, eps 0.5: row 1 3 vs 0.5, row 2 (2 + 1)/2 = 1.5 vs 0.5, row 3 1.0 vs 0.4: all win
    won = TableModel({**VALUES, 13: 2.0, 14: 1.0, 15: 0.5, 16: 1.0})
    obj = _bound(won, data, attribution=table_attribution, normalise="none", margin=0.5)
    loss = obj.loss(won, data.batch(range(4)))
    assert loss.item() == 0.0 and obj.logs()["active"] == 0.0
    # row 3 short by 0.1: A_N - A_R + eps = 0.4 - 1.0 + 0.7 = 0.1
    obj = _bound(won, data, attribution=table_attribution, normalise="none", margin=0.7)
    assert obj.loss(won, data.batch(range(4))).item() == pytest.approx(0.1 / 3, abs=1e-12)
    # the gradient: d/dv17 = +1/3, d/dv16 = -1/3, nothing else
    (g,) = torch.autograd.grad(obj.loss(won, data.batch(range(4))), won.v)
    expected = torch.zeros(32, dtype=torch.float64)
    expected[[16, 17]] = torch.tensor([-1.0, 1.0], dtype=torch.float64) / 3
    torch.testing.assert_close(g, expected)


def test_rows_without_rationale_or_without_other_tokens(table_attribution):
    model = TableModel(VALUES)
    data = _split([[CLS, 10, SEP], [CLS, 18, 19, SEP]], [[0, 1, 0], [0, 0, 0, 0]], [1, 1])
    obj = _bound(model, data, attribution=table_attribution)
    loss = obj.loss(model, data.batch([0, 1]))
    assert loss.item() == 0.0 and not loss.requires_grad
    assert (obj.logs()["skipped"], obj.logs()["no_other"], obj.logs()["used"]) == (1.0, 1.0, 0.0)
    loss = obj.loss(model, data.batch([1]))
    assert loss.item() == 0.0 and obj.logs() == {"skipped": 1.0, "used": 0.0}


def test_ghaeini_by_hand(table_attribution):
    # s_t = -a_t; entries z s > 0 are rationale tokens with a negative score: row 1 none (a 3);
    # row 2 token 14 (a -2: zs 2; token 13 a 1); row 3 token 16 (a -0.5: zs 0.5); non-rationale 15 (a -4) never counts
    model = TableModel({**VALUES, 14: -2.0, 15: -4.0, 16: -0.5})
    data = _split(ROWS, RATS, LABELS)
    obj = _bound(model, data, attribution=table_attribution, form="ghaeini")
    loss = obj.loss(model, data.batch(range(4)))
    assert loss.item() == pytest.approx((2 + 0.5) / 2, abs=1e-12)
    assert (obj.logs()["entries"], obj.logs()["used"], obj.logs()["skipped"]) == (2.0, 3.0, 1.0)
    (g,) = torch.autograd.grad(loss, model.v)
    expected = torch.zeros(32, dtype=torch.float64)
    expected[[14, 16]] = -0.5
    torch.testing.assert_close(g, expected)
    ok = TableModel(VALUES)  # every rationale score >= 0: nothing to penalise
    assert obj.loss(ok, data.batch(range(4))).item() == 0.0 and obj.logs()["entries"] == 0.0


def _bert_batch():
    data = _split([[CLS, 10, 11, 12, 13, SEP], [CLS, 14, 15, 16, SEP, PAD], [CLS, 17, 18, 19, 20, SEP]],
                  [[0, 1, 0, 0, 0, 0], [0, 0, 1, 1, 0, 0], [0, 0, 0, 0, 1, 0]], [0, 1, 1])
    return data, data.batch(range(3))


def test_gradient_through_a_differentiable_saliency_matches_finite_differences():
    model = tiny_classifier(seed=0, vocab=32)
    model.tokenizer = TOK
    data, batch = _bert_batch()
    obj = _bound(model, data, margin=1.0)  # default: saliency l2, differentiable, tokens; eps 1: every hinge active
    loss = obj.loss(model, batch)
    assert obj.logs()["active"] == 3.0 and loss.item() > 0
    layer = model.encoder.encoder.layer[0].attention.self.query.weight
    params = [layer, model.head.weight]
    grads = torch.autograd.grad(loss, params)
    h = 1e-6
    for w, g in zip(params, grads):
        for idx in ((0, 0), (1, 3)):
            with torch.no_grad():
                w[idx] += h
            up = obj.loss(model, batch).item()
            with torch.no_grad():
                w[idx] -= 2 * h
            down = obj.loss(model, batch).item()
            with torch.no_grad():
                w[idx] += h
            assert (up - down) / (2 * h) == pytest.approx(g[idx].item(), rel=1e-5, abs=1e-9)
        assert g.abs().sum() > 0  # reaches the encoder, not only the embedding rows


def test_ghaeini_is_numerically_inert_on_a_bert():
    """The finding: the gradient summed over the hidden dimension is 0 through the embedding
    LayerNorm, so UIMER-GB's loss (and its gradient) is rounding noise on BERT-like models."""
    model = tiny_classifier(seed=0, vocab=32)
    model.tokenizer = TOK
    data, batch = _bert_batch()
    gb = _bound(model, data, form="ghaeini")
    assert gb.params.attribution.params["reduction"] == "sum"
    loss = gb.loss(model, batch)
    scale = _bound(model, data).attribution().attribute(model, batch).scores.max().item()  # l2 saliency
    assert scale > 1e-2
    assert abs(gb.logs()["gradient_sum_rationale"]) < 1e-12 * scale and loss.item() < 1e-12 * scale
    head = torch.autograd.grad(loss, model.head.weight, allow_unused=True)[0]
    assert head is None or head.abs().max().item() < 1e-12


def test_params_defaults_and_checks():
    p = RationaleMargin.Params()
    assert (p.form, p.aggregate, p.normalise, p.margin) == ("margin", "mean", "l1", 0.1)
    assert p.attribution.name == "saliency"
    assert {k: p.attribution.params[k] for k in ("mode", "positions", "pad_to", "reduction")} == {
        "mode": "differentiable", "positions": "tokens", "pad_to": None, "reduction": "l2"}
    assert RationaleMargin.requires == ("rationale",) and RationaleMargin.own_data is False
    with pytest.raises(Exception, match="mode: faithful has constant scores"):
        RationaleMargin.Params(attribution="saliency")
    with pytest.raises(Exception, match="set attribution.params.reduction: sum"):
        RationaleMargin.Params(form="ghaeini", attribution={"name": "saliency", "params": {"mode": "differentiable"}})
    again = RationaleMargin.Params.model_validate(RationaleMargin.Params(form="ghaeini").model_dump())
    assert again.attribution.params["reduction"] == "sum"  # a resolved recipe re-validates


def test_an_attribution_without_a_graph_is_refused_at_the_first_step():
    model = tiny_classifier(seed=0, vocab=32)
    model.tokenizer = TOK
    data, batch = _bert_batch()
    obj = _bound(model, data, attribution={"name": "gradient_x_input", "params": {"positions": "tokens", "pad_to": None}})
    assert obj.loss(model, batch).requires_grad  # faithful gradient x input: a graph to the embedding rows
    for p in model.parameters():
        p.requires_grad_(False)
    with pytest.raises(UserError, match="returned scores without a graph"):
        obj.loss(model, batch)


def test_validate_refuses_it_on_a_dataset_without_rationales(tmp_path):
    from tests.recipe_engine.tiny_run import validate_without_rationales

    code, path, err = validate_without_rationales(tmp_path, "{name: rationale_margin, weight: 0.5}")
    assert code == 1
    assert "Traceback" not in err and err.startswith(f"{path}:")
    assert ("objective 'rationale_margin' requires a 'rationale' column, which dataset 'files' does not provide "
            "(it has: confound, label, text); use a dataset with one, or map one in data.params.columns.rationale") in err


def test_validate_refuses_a_faithful_saliency_with_the_fix(tmp_path, capsys):
    from recipe_engine.cli import main
    from tests.recipe_engine.tiny_run import write_data, write_recipe

    data = write_data(tmp_path)
    recipe = write_recipe(tmp_path / "r.yaml", data).read_text()
    recipe = recipe.replace("objectives: [{name: cross_entropy}]",
                            "objectives: [{name: cross_entropy}, {name: rationale_margin, params: {attribution: saliency}}]")
    path = tmp_path / "faithful.yaml"
    path.write_text(recipe)
    assert main(["validate", str(path)]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.startswith(f"{path}:")
    assert ("attribution saliency with mode: faithful has constant scores (no graph), so the loss could not train the "
            "model; set attribution.params.mode: differentiable") in err
