"""grad J of influence tuning (Han & Tsvetkov 2021, sec. 4, App. B): every route in float64."""
import pytest
import torch

from registry._lib.influence import influence_gram, influence_loop, influence_loss, influence_reference
from registry._lib.param_sets import select_parameters
from tests.registry._lib.fakes import balanced_data, tiny_classifier

K = 2
# two probes; groups of 1 + 2k rows: probe, A (same label and confound), B (same label, other confound)
ROWS = [0, 1, 2, 4, 5, 12, 13, 14, 8, 9]


def flat(gs):
    return torch.cat([g.reshape(-1) for g in gs])


def gram_grad(model, rows, params):
    res = influence_gram(model, rows, K, params)
    targets = list(model.parameters())
    gs = torch.autograd.grad(res.J, targets, allow_unused=True)
    return res, flat([torch.zeros_like(t) if g is None else g for t, g in zip(targets, gs)])


def J_at(model, rows, params, direction, eps):
    with torch.no_grad():
        off = 0
        for p in model.parameters():
            p.add_(eps * direction[off:off + p.numel()].view_as(p))
            off += p.numel()
    try:
        return influence_gram(model, rows, K, params).J.item()
    finally:
        with torch.no_grad():
            off = 0
            for p in model.parameters():
                p.sub_(eps * direction[off:off + p.numel()].view_as(p))
                off += p.numel()


@pytest.mark.parametrize("spec", ["all", "head", {"last_n_layers": 1}])
def test_gram_route_equals_loop_reference_and_finite_differences(spec):
    m = tiny_classifier()
    rows = balanced_data(4).batch(ROWS)
    params = select_parameters(m, spec)
    targets = list(m.parameters())
    res, fast = gram_grad(m, rows, params)
    res_loop, loop = influence_loop(m, rows, K, params, targets)
    res_ref, ref = influence_reference(m, rows, K, params, targets)
    assert res.J.item() > 1e-4  # a well-conditioned case, not J ~ 0
    torch.testing.assert_close(res.J, res_loop.J, rtol=1e-12, atol=0)
    torch.testing.assert_close(res.J, res_ref.J, rtol=1e-12, atol=0)
    assert ((fast - flat(loop)).norm() / flat(loop).norm()).item() < 1e-8
    assert ((flat(ref) - flat(loop)).norm() / flat(loop).norm()).item() < 1e-8
    gen = torch.Generator().manual_seed(1)
    for _ in range(3):
        v = torch.randn(fast.numel(), generator=gen, dtype=torch.float64)
        v /= v.norm()
        eps = 1e-5
        fd = (J_at(m, rows, params, v, eps) - J_at(m, rows, params, v, -eps)) / (2 * eps)
        assert abs(fd - (fast @ v).item()) <= 1e-5 * abs(fd)


def test_gradient_reaches_parameters_outside_the_influence_set():
    """With the influence over the head only, grad J still moves the encoder (sec. 4.1)."""
    m = tiny_classifier()
    rows = balanced_data(4).batch(ROWS)
    res = influence_gram(m, rows, K, select_parameters(m, "head"))
    g = torch.autograd.grad(res.J, [m.encoder.encoder.layer[0].attention.self.query.weight])[0]
    assert g.abs().sum() > 0


def test_float32_gram_route_matches_float64_loop():
    m64 = tiny_classifier()
    m32 = tiny_classifier(dtype=torch.float32)
    rows = balanced_data(4).batch(ROWS)
    _, fast = gram_grad(m32, rows, select_parameters(m32, "all"))
    _, loop = influence_loop(m64, rows, K, select_parameters(m64, "all"), list(m64.parameters()))
    assert ((fast.double() - flat(loop)).norm() / flat(loop).norm()).item() < 1e-4


def test_influence_loss_by_hand_and_zero_norm_groups():
    # probe 0: cosines A = (1, 0), B = (0, 0) -> diff 0.5; probe 1 has a zero-norm candidate
    dots = torch.tensor([[2.0, 0.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0]], dtype=torch.float64, requires_grad=True)
    sq = torch.tensor([[1.0, 4.0, 1.0, 1.0, 1.0], [1.0, 1.0, 0.0, 1.0, 1.0]], dtype=torch.float64)
    res = influence_loss(dots, sq, 2)
    assert res.valid.tolist() == [True, False]
    assert res.J.item() == pytest.approx(0.25)
    assert res.diff[0].item() == pytest.approx(0.5)
    res.J.backward()
    assert torch.isfinite(dots.grad).all() and dots.grad[1].abs().sum() == 0
