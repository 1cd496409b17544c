"""HILDIF's EXPLAIN math on a convex model (logistic regression, float64), where the inverse
Hessian exists: LiSSA and CG against the explicit inverse, influence against leave-one-out
retraining, the kNN pre-filter against brute force, the forward-mode scores against a loop."""
from __future__ import annotations

import pytest
import torch
from scipy.stats import spearmanr
from torch import nn
from torch.func import functional_call, hessian

from registry._lib.explain import ExplainParams, anchor_s_test, candidate_features, explain, loss_directional
from registry._lib.hvp import loss_grad
from registry._lib.ihvp import s_test_cg, s_test_lissa
from registry._lib.knn import nearest_neighbours
from registry._lib.per_example import example_losses, per_example_grads_loop
from registry._lib.param_sets import select_parameters
from registry.errors import UserError
from registry.types import Batch, ClassifierOutput
from tests.registry._lib.fakes import balanced_data, tiny_classifier

LAMBDA = 0.05  # the L2 term that makes the convex problem strongly convex


class LogReg(nn.Module):
    """Softmax regression on real features carried in ``input_ids``; ``pooled`` is the input."""

    def __init__(self, d: int, c: int = 2):
        super().__init__()
        self.head = nn.Linear(d, c).double()

    def forward(self, input_ids, attention_mask=None, token_type_ids=None):
        x = input_ids.double()
        return ClassifierOutput(logits=self.head(x), pooled=x)


def problem(n: int = 40, d: int = 4, seed: int = 0) -> tuple[Batch, Batch]:
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(d, generator=g, dtype=torch.float64)
    x = torch.randn(n + 1, d, generator=g, dtype=torch.float64)
    y = ((x @ w + 0.8 * torch.randn(n + 1, generator=g, dtype=torch.float64)) > 0).long()
    mk = lambda xs, ys: Batch(input_ids=xs, attention_mask=torch.ones(len(xs), 1, dtype=torch.long), labels=ys, index=torch.arange(len(xs)))
    return mk(x[:n], y[:n]), mk(x[n:], y[n:])


def fit(model: LogReg, train: Batch) -> LogReg:
    """argmin mean CE + LAMBDA/2 |theta|^2 (L-BFGS to machine precision)."""
    opt = torch.optim.LBFGS(model.parameters(), lr=1, max_iter=500, tolerance_grad=1e-13, tolerance_change=1e-15,
                            line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = example_losses(model, train).mean() + LAMBDA / 2 * sum((p ** 2).sum() for p in model.parameters())
        loss.backward()
        return loss

    opt.step(closure)
    return model


def full_hessian(model: LogReg, train: Batch) -> torch.Tensor:
    """The dense Hessian of the mean CE over all parameters (flattened in parameter order)."""
    names = [n for n, _ in model.named_parameters()]
    sizes = [p.numel() for p in model.parameters()]
    flat0 = torch.cat([p.detach().flatten() for p in model.parameters()])

    def loss(flat):
        parts = dict(zip(names, [t.view_as(p) for t, p in zip(flat.split(sizes), model.parameters())]))
        logits = functional_call(model, parts, (train.input_ids,)).logits
        return torch.nn.functional.cross_entropy(logits, train.labels)

    return hessian(loss)(flat0).detach()


def explicit_inverse(model: LogReg, train: Batch, v: list[torch.Tensor], shift: float) -> torch.Tensor:
    """(H + shift I)^-1 v with H the Hessian of the mean CE, by a dense solve."""
    h = full_hessian(model, train)
    return torch.linalg.solve(h + shift * torch.eye(len(h), dtype=h.dtype), torch.cat([x.flatten() for x in v]))


def flat(xs: list[torch.Tensor]) -> torch.Tensor:
    return torch.cat([x.flatten() for x in xs])


def full_batches(train: Batch):
    while True:
        yield train


def test_lissa_matches_the_explicit_inverse_hessian_vector_product():
    train, test = problem()
    model = fit(LogReg(4), train)
    params = list(model.parameters())
    v = loss_grad(model, test, params)
    damping, scale = 0.01, 5.0  # LiSSA's fixed point: (H + damping * scale I)^-1 v
    got = flat(s_test_lissa(model, v, params, full_batches(train), damping=damping, scale=scale, depth=3000))
    want = explicit_inverse(model, train, v, damping * scale)
    assert torch.linalg.norm(got - want) <= 1e-3 * torch.linalg.norm(want)
    cg = flat(s_test_cg(model, v, params, [train], damping=damping * scale, iterations=50))
    assert torch.allclose(cg, want, rtol=1e-8, atol=1e-10)


def test_influence_agrees_with_leave_one_out_retraining():
    train, test = problem(n=40)
    model = fit(LogReg(4), train)
    params = list(model.parameters())
    test_loss = float(example_losses(model, test)[0].detach())
    s = s_test_cg(model, loss_grad(model, test, params), params, [train], damping=LAMBDA, iterations=100)
    influence = -loss_directional(model, train, list(model.named_parameters()), s).detach()
    actual = []
    for i in range(len(train)):
        keep = torch.tensor([j for j in range(len(train)) if j != i])
        loo = LogReg(4)
        loo.load_state_dict(model.state_dict())
        actual.append(float(example_losses(fit(loo, train.select(keep)), test)[0].detach()) - test_loss)
    # removing z changes the test loss by about -I(z)/n (Koh & Liang 2017, eq. 2)
    rho = spearmanr((-influence).tolist(), actual).statistic
    assert rho > 0.8, rho
    assert torch.corrcoef(torch.stack([-influence / len(train), torch.tensor(actual)]))[0, 1] > 0.9


def test_forward_mode_scores_equal_a_loop_of_per_example_gradients():
    model = tiny_classifier(seed=2)
    data = balanced_data(3)
    batch = data.batch(torch.arange(len(data)))
    params = select_parameters(model, {"last_n_layers": 1})
    d = [torch.randn_like(p) for _, p in params]
    got = loss_directional(model, batch, params, d)
    loop = per_example_grads_loop(model, batch, [p for _, p in params])
    want = torch.stack([sum((g * di).sum() for g, di in zip(gs, d)) for gs in loop])
    assert torch.allclose(got, want, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("metric", ["l2", "cosine"])
def test_knn_returns_the_true_nearest_neighbours(metric):
    g = torch.Generator().manual_seed(0)
    keys, queries = torch.randn(500, 8, generator=g, dtype=torch.float64), torch.randn(7, 8, generator=g, dtype=torch.float64)
    dist, idx = nearest_neighbours(queries, keys, 20, metric, chunk=64)
    if metric == "l2":
        full = torch.cdist(queries, keys) ** 2
        want = torch.argsort(full, dim=1)[:, :20]
    else:
        full = torch.nn.functional.normalize(queries, dim=1) @ torch.nn.functional.normalize(keys, dim=1).T
        want = torch.argsort(full, dim=1, descending=True)[:, :20]
    assert torch.equal(idx, want)
    assert torch.allclose(dist, full.gather(1, want))
    assert nearest_neighbours(queries, keys[:5], 20, metric)[1].shape == (7, 5)  # k capped
    wide_dist, wide_idx = nearest_neighbours(queries, keys, 300, metric, chunk=64)  # k above the chunk size
    want_wide = torch.argsort(full, dim=1, descending=metric == "cosine")[:, :300]
    assert torch.equal(wide_idx, want_wide) and torch.allclose(wide_dist, full.gather(1, want_wide))


@pytest.mark.parametrize("method", ["lissa", "cg", "cosine"])
def test_explain_scores_exactly_the_candidates_it_returns(method):
    """Returned rows are kNN candidates, sorted most helpful first, each with its own score:
    -grad L(z) . s_test (s_test recomputed here on the same Hessian batch) or -cos."""
    model = tiny_classifier(seed=4)
    data = balanced_data(6)
    params = select_parameters(model, {"last_n_layers": 1})
    plist = [p for _, p in params]
    settings = ExplainParams(method=method, parameters={"last_n_layers": 1}, knn_k=10, depth=5, scale=100.0,
                             damping=0.01, cg_iterations=5, cg_batches=2, hessian_batch_size=8, chunk=4)
    anchors = data.batch(torch.tensor([0, 13]))
    hess = data.batch(torch.arange(8))
    found = explain(model, anchors, data.batch, len(data), params, settings=settings, top=4,
                    hessian_batches=iter(lambda: hess, None))
    assert [e.anchor_index for e in found] == [0, 1]
    feats = model(**data.batch(torch.arange(len(data))).model_inputs()).pooled.detach()
    for e in found:
        near = nearest_neighbours(feats[[0, 13][e.anchor_index]][None], feats, 10)[1][0].tolist()
        assert len(e.candidate_indices) == 4 and set(e.candidate_indices) <= set(near)
        assert e.scores == sorted(e.scores)  # most helpful (most negative) first
        v = loss_grad(model, anchors.select(torch.tensor([e.anchor_index])), plist)
        if method == "lissa":
            s = s_test_lissa(model, v, plist, iter(lambda: hess, None), damping=0.01, scale=100.0, depth=5)
        elif method == "cg":
            s = s_test_cg(model, v, plist, [hess, hess], damping=0.01 * 100.0, iterations=5)  # damping x scale
        else:
            s = [x / torch.sqrt(sum((y ** 2).sum() for y in v)) for x in v]
        grads = per_example_grads_loop(model, data.batch(torch.tensor(near)), plist)
        dots = torch.stack([sum((g * si).sum() for g, si in zip(gs, s)) for gs in grads])
        if method == "cosine":
            dots = dots / torch.stack([torch.sqrt(sum((g ** 2).sum() for g in gs)) for gs in grads])
        want = dict(zip(near, (-dots).tolist()))
        assert e.scores == pytest.approx([want[c] for c in e.candidate_indices], rel=1e-6, abs=1e-12)
        assert e.scores[-1] <= min(v for c, v in want.items() if c not in e.candidate_indices)


def test_lissa_with_too_small_a_scale_stops_with_a_message_naming_the_setting():
    train, test = problem()
    model = fit(LogReg(4), train)
    params = list(model.parameters())
    v = loss_grad(model, test, params)
    lam_max = float(torch.linalg.eigvalsh(full_hessian(model, train))[-1])
    with pytest.raises(UserError, match=r"LiSSA diverged at recursion step \d+ of 500 .*raise the explain setting 'scale'"):
        s_test_lissa(model, v, params, full_batches(train), damping=0.01, scale=lam_max / 3, depth=500)


def test_cg_takes_one_batch_or_several_and_stops_on_negative_curvature():
    train, test = problem()
    model = fit(LogReg(4), train)
    params = list(model.parameters())
    v = loss_grad(model, test, params)
    one = flat(s_test_cg(model, v, params, train, damping=0.1, iterations=50))
    assert torch.equal(one, flat(s_test_cg(model, v, params, [train], damping=0.1, iterations=50)))
    assert torch.allclose(one, explicit_inverse(model, train, v, 0.1), rtol=1e-8, atol=1e-10)
    # a shift far below -lambda_max makes H - shift I negative definite: no step is taken
    assert torch.equal(flat(s_test_cg(model, v, params, train, damping=-1e3, iterations=50)), torch.zeros(10, dtype=torch.float64))


def test_cg_and_lissa_estimate_the_same_s_test():
    """Both solve (H + damping x scale I) s = v, LiSSA's fixed point: switching method changes
    the estimator, not the regulariser."""
    train, test = problem()
    model = fit(LogReg(4), train)
    params = list(model.parameters())
    common = dict(damping=0.01, scale=5.0, depth=3000, cg_iterations=50, cg_batches=1)
    lissa = flat(anchor_s_test(model, test, params, ExplainParams(method="lissa", **common), full_batches(train)))
    cg = flat(anchor_s_test(model, test, params, ExplainParams(method="cg", **common), full_batches(train)))
    want = explicit_inverse(model, train, loss_grad(model, test, params), 0.01 * 5.0)
    assert torch.allclose(cg, want, rtol=1e-8, atol=1e-10)
    assert torch.linalg.norm(lissa - cg) <= 1e-3 * torch.linalg.norm(cg)


def test_cg_that_takes_no_step_is_an_error_not_zero_influence():
    """Training features span dims 0-2 only and the anchor lies along dim 3: with the weights as
    the parameter set the Hessian is 0 along the anchor's gradient, so without damping CG stops
    before its first step; that is reported, never returned as all-zero scores."""
    train, test = problem()
    train.input_ids[:, 3] = 0.0
    test.input_ids[:] = torch.tensor([[0.0, 0.0, 0.0, 2.0]], dtype=torch.float64)
    model = fit(LogReg(4), train)
    params = [model.head.weight]
    settings = ExplainParams(method="cg", damping=0.0, cg_batches=1)
    with pytest.raises(UserError, match="conjugate gradient took no step.*raise the explain setting 'damping'"):
        anchor_s_test(model, test, params, settings, full_batches(train))
    s = flat(anchor_s_test(model, test, params, ExplainParams(method="cg", damping=1e-3, cg_batches=1), full_batches(train)))
    assert s.abs().sum() > 0


@pytest.mark.parametrize("method", ["lissa", "cosine"])
def test_chunking_by_length_changes_neither_the_rows_nor_the_scores(method):
    """``lengths`` only regroups candidates into chunks of similar length: features come back in
    row order and every explanation is the one computed without it (float rounding aside)."""
    model = tiny_classifier(seed=5)
    data = balanced_data(6)
    params = select_parameters(model, {"last_n_layers": 1})
    lengths = data.batch(torch.arange(len(data))).attention_mask.sum(1)
    assert lengths.unique().numel() > 1  # the regrouping is exercised
    feats = candidate_features(model, data.batch, len(data), 5, lengths)
    assert torch.allclose(feats, candidate_features(model, data.batch, len(data), 5), rtol=1e-9, atol=1e-12)
    settings = ExplainParams(method=method, parameters={"last_n_layers": 1}, knn_k=12, depth=3, scale=100.0, chunk=5)
    hess = data.batch(torch.arange(8))
    run = lambda **kw: explain(model, data.batch(torch.tensor([1, 7])), data.batch, len(data), params, settings=settings,  # noqa: E731
                               top=6, hessian_batches=iter(lambda: hess, None), **kw)
    plain, grouped = run(), run(lengths=lengths, features=feats)
    for a, b in zip(plain, grouped):
        assert a.candidate_indices == b.candidate_indices
        assert b.scores == pytest.approx(a.scores, rel=1e-9, abs=1e-12)
