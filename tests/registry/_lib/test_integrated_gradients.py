import pytest
import torch

from registry._lib.integrated_gradients import (METHODS, counted_variance, input_gradient, integrated_gradients,
                                                path_gradients, quadrature)
from tests.registry._lib.fakes import FakeEncodedData, tiny_classifier


def setup(n: int = 3, seq_len: int = 8, seed: int = 0):
    """A float64 eval-mode tiny BERT, a batch, the word embeddings x and the target-logit forward."""
    model = tiny_classifier(seed=seed)
    batch = FakeEncodedData([0, 1, 1, 0][:n], [0] * n, seq_len=seq_len, seed=seed).batch(list(range(n)))
    x = model.input_embeddings()(batch.input_ids).detach()
    mask, target = batch.attention_mask, batch.labels

    def forward(points, rows):
        return model(attention_mask=mask[rows], inputs_embeds=points).logits.gather(1, target[rows, None]).squeeze(1)

    return model, batch, x, forward


@pytest.mark.parametrize("method", METHODS)
def test_quadrature_rules_integrate_on_the_unit_interval(method):
    a, w = quadrature(6, method)
    assert a.dtype == torch.float64 and a.shape == w.shape == (6,)
    assert float(w.sum()) == pytest.approx(1.0, abs=1e-15)
    assert bool(((a >= 0) & (a <= 1)).all())
    exact = {"gauss_legendre": 11, "riemann_middle": 1, "riemann_trapezoid": 1, "riemann_left": 0, "riemann_right": 0}
    deg = exact[method]
    assert float((w * a ** deg).sum()) == pytest.approx(1.0 / (deg + 1), abs=1e-14)  # exact up to its degree


def test_quadrature_rejects_bad_input():
    with pytest.raises(ValueError, match="nodes must be >= 1"):
        quadrature(0)
    with pytest.raises(ValueError, match="unknown quadrature method"):
        quadrature(3, "simpson")


def test_completeness_within_the_quadrature_error_and_gauss_legendre_beats_riemann():
    """sum_j IG_j = F(x) - F(b) (Sundararajan et al. 2017, Prop. 1) up to the rule's error."""
    model, batch, x, forward = setup()
    rows = torch.arange(len(batch))
    with torch.no_grad():
        gap = forward(x, rows) - forward(torch.zeros_like(x), rows)
    assert float(gap.abs().max()) > 1e-1  # the check is not vacuous
    err = {}
    for method in ("gauss_legendre", "riemann_right", "riemann_trapezoid", "riemann_middle"):
        ig = integrated_gradients(forward, x, torch.zeros(x.shape[-1], dtype=x.dtype), nodes=20, method=method)
        err[method] = float((ig.sum((1, 2)) - gap).abs().max())
    assert err["gauss_legendre"] < 1e-6 * float(gap.abs().max())
    assert err["gauss_legendre"] < err["riemann_middle"] < err["riemann_right"]
    assert err["gauss_legendre"] * 100 < err["riemann_trapezoid"]


@pytest.mark.parametrize("internal_batch_size", [None, 1, 4, 7])
def test_batched_equals_a_loop_over_nodes_and_examples(internal_batch_size):
    model, batch, x, forward = setup()
    base = model.input_embeddings().weight[0].detach()  # a non-zero baseline
    alphas, weights = quadrature(5, "gauss_legendre")
    ref = torch.zeros_like(x)
    for i in range(len(batch)):  # naive: one example, one node at a time
        for a, w in zip(alphas, weights):
            p = (base + a * (x[i:i + 1] - base)).requires_grad_()
            (g,) = torch.autograd.grad(forward(p, torch.tensor([i])).sum(), p)
            ref[i] += w * g[0]
    ref = (x - base) * ref
    got = integrated_gradients(forward, x, base, nodes=5, internal_batch_size=internal_batch_size)
    torch.testing.assert_close(got, ref, rtol=1e-12, atol=1e-14)


def test_input_gradient_is_the_per_example_gradient():
    model, batch, x, forward = setup()
    ref = []
    for i in range(len(batch)):
        p = x[i:i + 1].clone().requires_grad_()
        ref.append(torch.autograd.grad(forward(p, torch.tensor([i])).sum(), p)[0][0])
    torch.testing.assert_close(input_gradient(forward, x), torch.stack(ref), rtol=1e-12, atol=1e-14)


def test_constant_path_gradients_reach_only_x_and_differentiable_ones_match_finite_differences():
    model, batch, x, forward = setup(n=2, seq_len=6)
    zero = torch.zeros(x.shape[-1], dtype=x.dtype)
    w = model.encoder.encoder.layer[0].attention.self.query.weight
    xs = x.clone().requires_grad_()
    faithful = integrated_gradients(forward, xs, zero, nodes=4)
    assert faithful.grad_fn is not None
    assert torch.autograd.grad(faithful.pow(2).sum(), w, allow_unused=True)[0] is None
    torch.testing.assert_close(torch.autograd.grad(faithful.pow(2).sum(), xs)[0],
                               2 * faithful.detach() * path_gradients(forward, x, zero, nodes=4))

    def value() -> torch.Tensor:
        return integrated_gradients(forward, xs, zero, nodes=4, create_graph=True).sum(-1).pow(2).sum()

    got_w, got_x = torch.autograd.grad(value(), [w, xs])
    eps = 1e-6
    for param, got, idx in ((w, got_w, (3, 5)), (w, got_w, (0, 1)), (xs, got_x, (1, 2, 7))):
        with torch.no_grad():
            old = param[idx].item()
            param[idx] = old + eps
            up = value().item()
            param[idx] = old - eps
            down = value().item()
            param[idx] = old
        fd = (up - down) / (2 * eps)
        assert abs(fd) > 1e-6
        assert got[idx].item() == pytest.approx(fd, rel=1e-6)


def test_counted_variance_counts_the_zeros_it_does_not_materialise():
    g = torch.Generator().manual_seed(0)
    scores = torch.randn(3, 5, generator=g, dtype=torch.float64)
    counted = torch.tensor([[1, 1, 1, 1, 1], [1, 0, 1, 1, 0], [1, 1, 0, 0, 0]], dtype=torch.bool)
    n = torch.tensor([9, 3, 2])
    got = counted_variance(scores, counted, n)
    for i in range(3):
        kept = scores[i][counted[i]]
        full = torch.cat([kept, kept.new_zeros(int(n[i]) - kept.numel())])
        assert got[i].item() == pytest.approx(torch.var(full, unbiased=True).item(), rel=1e-13)
    one = counted_variance(scores[:1], torch.tensor([[1, 0, 0, 0, 0]], dtype=torch.bool), torch.tensor([1]))
    assert one.item() == 0.0  # a single position has no spread
