import pytest
import torch
import torch.nn.functional as F

import registry
from recipe_engine.cli import main
from registry._lib.integrated_gradients import quadrature
from registry.errors import UserError
from tests.registry._lib.fakes import FakeEncodedData, balanced_data, context, tiny_classifier


def objective(**params):
    return registry.build("objectives", "ig_variance", params)


def three_examples():
    return FakeEncodedData([0, 1, 1], [0, 0, 0], seq_len=9, seed=3).batch([0, 1, 2])


def naive_ig(model, batch, nodes=10):
    """One example, one Gauss-Legendre node at a time, on the untrimmed row; summed over the embedding dim."""
    alphas, weights = quadrature(nodes, "gauss_legendre")
    rows = []
    for i in range(len(batch)):
        x = model.input_embeddings()(batch.input_ids[i:i + 1]).detach()
        total = torch.zeros_like(x)
        for a, w in zip(alphas, weights):
            p = (a * x).requires_grad_()
            logit = model(attention_mask=batch.attention_mask[i:i + 1], inputs_embeds=p).logits[0, batch.labels[i]]
            total += w * torch.autograd.grad(logit, p)[0]
        rows.append((x * total).sum(-1)[0])
    return torch.stack(rows)


def test_registered_per_batch_with_the_authors_defaults():
    cls = registry.get("objectives", "ig_variance")
    assert not cls.own_data and cls.train_mode
    p = objective().params
    assert (p.penalty_weight, p.alpha, p.nodes, p.method, p.baseline, p.target) == (0.1, 10.0, 10, "gauss_legendre", "zeros", "gold")
    assert (p.mode, p.positions, p.pad_to, p.token_type_ids, p.dropout) == ("faithful", "all", 128, "drop", "on")
    with pytest.raises(Exception, match="extra"):
        objective(lambda_reg=0.1)


def test_loss_by_hand_on_a_three_example_batch():
    """Var_i over 128 positions (the row's tokens, its padding and the zeros up to 128), unbiased;
    penalty tanh(10 * mean_i Var_i); loss CE + 0.1 * penalty."""
    model = tiny_classifier()
    batch = three_examples()
    batch.token_type_ids = torch.ones_like(batch.input_ids)  # dropped in the IG passes, used by the CE
    obj = objective()
    loss = obj.loss(model, batch)
    scores = naive_ig(model, batch)
    variances = []
    for i in range(3):
        padded = torch.cat([scores[i], scores.new_zeros(128 - scores.shape[1])])
        variances.append(torch.var(padded, unbiased=True))
    mean_var = torch.stack(variances).mean()
    assert mean_var.item() > 1e-4
    ce = F.cross_entropy(model(**batch.model_inputs()).logits, batch.labels)
    expect = ce + 0.1 * torch.tanh(10 * mean_var)
    assert loss.item() == pytest.approx(expect.item(), rel=1e-12)
    logs = obj.logs()
    assert logs["ce"] == pytest.approx(ce.item(), rel=1e-12)
    assert logs["variance"] == pytest.approx(mean_var.item(), rel=1e-10)
    assert logs["penalty"] == pytest.approx(torch.tanh(10 * mean_var).item(), rel=1e-10)
    tokens = objective(positions="tokens", penalty_weight=2.0, alpha=0.5)  # tokens: no special ids but the pad id 0 here
    tokens.loss(model, batch)
    keep = (batch.attention_mask == 1) & (batch.input_ids != 0)
    v = torch.stack([torch.var(scores[i][keep[i]], unbiased=True) for i in range(3)]).mean()
    assert tokens.logs()["variance"] == pytest.approx(v.item(), rel=1e-10)


def test_faithful_penalty_reaches_only_the_batch_word_embedding_rows():
    model = tiny_classifier()
    batch = three_examples()
    pen, _ = objective().penalty(model, batch)
    emb = model.input_embeddings().weight
    named = [(n, p) for n, p in model.named_parameters() if p is not emb]
    grads = torch.autograd.grad(pen, [emb] + [p for _, p in named], allow_unused=True)
    for (name, _), g in zip(named, grads[1:]):
        assert g is None or not g.any(), name
    touched = set((grads[0].abs().sum(1) > 0).nonzero().flatten().tolist())
    assert touched and touched <= set(batch.input_ids.unique().tolist())
    assert 0 not in touched  # the padding row (padding_idx) gets nothing


def test_differentiable_penalty_gradient_matches_finite_differences():
    model = tiny_classifier()
    batch = three_examples()
    obj = objective(mode="differentiable", nodes=4, alpha=1.0)

    def value() -> torch.Tensor:
        return obj.penalty(model, batch)[0]

    probes = [(model.encoder.encoder.layer[1].attention.output.dense.weight, (2, 3)),
              (model.encoder.embeddings.position_embeddings.weight, (1, 4)),
              (model.encoder.pooler.dense.bias, (5,)),
              (model.head.weight, (1, 7)),
              (model.input_embeddings().weight, (int(batch.input_ids[0, 2]), 0))]
    grads = torch.autograd.grad(value(), [p for p, _ in probes])
    eps = 1e-6
    for (param, idx), g in zip(probes, grads):
        with torch.no_grad():
            old = param[idx].item()
            param[idx] = old + eps
            up = value().item()
            param[idx] = old - eps
            down = value().item()
            param[idx] = old
        fd = (up - down) / (2 * eps)
        assert abs(fd) > 1e-7
        assert g[idx].item() == pytest.approx(fd, rel=1e-5, abs=1e-10)


def test_training_mode_dropout_and_chunking_keep_the_value():
    model = tiny_classifier()
    batch = three_examples()
    a = objective().loss(model, batch).item()
    b = objective(internal_batch_size=4).loss(model, batch).item()
    assert a == pytest.approx(b, rel=1e-12)
    model.train()
    objective(dropout="off").loss(model, batch)
    assert model.training


def test_user_errors_at_bind():
    class NoWords(torch.nn.Module):
        def input_embeddings(self):
            return torch.nn.Linear(2, 2)

    data = balanced_data(2)
    with pytest.raises(UserError, match="objective 'ig_variance' needs a model with word embeddings .* NoWords has Linear"):
        objective().bind(context(NoWords(), data))
    with pytest.raises(UserError, match="objective 'ig_variance': baseline 'mask' needs a \\[MASK\\] token"):
        objective(baseline="mask").bind(context(tiny_classifier(), data))
    objective().bind(context(tiny_classifier(), data))  # a BERT binds


def test_explain_reads_well(capsys):
    assert main(["explain", "ig_variance"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("ig_variance  (objective, built-in: registry.objectives.ig_variance)")
    assert "L = CE + lambda * tanh(alpha * (1/B) sum_i Var_i)" in out
    assert "Weaver" in out and "per-batch" in out
    for line in ("penalty_weight: float (default 0.1)", "alpha: float (default 10.0)", "nodes: int (default 10)",
                 'mode: ', '(default "faithful")', "pad_to: int | None (default 128)"):
        assert line in out


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["faithful", "differentiable"])
def test_a_recipe_trains_with_ig_variance_in_place_of_cross_entropy(tmp_path, mode):
    import json

    from tests.recipe_engine.tiny_run import write_data, write_recipe

    recipe = write_recipe(tmp_path / "r.yaml", write_data(tmp_path, n_train=16, n_eval=8), seeds=(1,), epochs=1)
    text = recipe.read_text().replace("objectives: [{name: cross_entropy}]",
                                      f"objectives: [{{name: ig_variance, params: {{mode: {mode}, nodes: 3}}}}]")
    recipe.write_text(text)
    assert main(["run", str(recipe), "--out", str(tmp_path / "out")]) == 0
    seed_dir = next((tmp_path / "out" / "tiny-e2e").iterdir()) / "seed-1"
    records = [json.loads(line) for line in (seed_dir / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in records if r["event"] == "train"]
    assert train and all({"ig_variance/ce", "ig_variance/variance", "ig_variance/penalty"} <= set(r) for r in train)
    assert all(0.0 <= r["ig_variance/penalty"] < 1.0 for r in train)
