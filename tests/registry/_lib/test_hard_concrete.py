"""The hard-concrete gate in float64: the stretched and clamped sample by hand, and its
expected L0 against the closed form and a Monte Carlo estimate."""
import math

import pytest
import torch

from registry._lib import hard_concrete as hc

T, L, R = 0.2, -0.2, 1.0


def test_sample_is_the_stretched_clamped_binary_concrete():
    log_alpha = torch.tensor([-3.0, -0.1, 0.0, 0.4, 2.5], dtype=torch.float64)
    u = torch.tensor([0.3, 0.5, 0.9, 0.2, 0.9], dtype=torch.float64)
    z = hc.sample(log_alpha, u, T, L, R)
    for i in range(5):
        s = 1 / (1 + math.exp(-(math.log(u[i] / (1 - u[i])) + log_alpha[i].item()) / T))
        assert z[i].item() == pytest.approx(min(1.0, max(0.0, L + (R - L) * s)), rel=0, abs=1e-14)
    assert z[0].item() == 0.0  # rectified: exact zeros (with r = 1.0 the top is reached only in the limit)
    assert 1 - 1e-9 < z[4].item() <= 1.0
    assert hc.sample(torch.tensor([3.0], dtype=torch.float64), torch.tensor([0.9], dtype=torch.float64), T, L, 1.1).item() == 1.0
    assert 0.0 < z[1].item() < 1.0


def test_sample_gradient_flows_inside_the_interval_only():
    log_alpha = torch.tensor([-3.0, 0.1, 2.5], dtype=torch.float64, requires_grad=True)
    u = torch.tensor([0.3, 0.5, 0.01], dtype=torch.float64)
    hc.sample(log_alpha, u, T, L, R).sum().backward()
    g = log_alpha.grad
    assert g[0].item() == 0.0 and g[2].item() == 0.0 and g[1].item() > 0.0
    s = 1 / (1 + math.exp(-(math.log(1.0) + 0.1) / T))
    assert g[1].item() == pytest.approx((R - L) * s * (1 - s) / T, rel=1e-12)


def test_expected_l0_closed_form_and_monte_carlo():
    log_alpha = torch.tensor([-1.0, 0.0, 0.7], dtype=torch.float64)
    closed = torch.sigmoid(log_alpha - T * math.log(-L / R))
    assert torch.allclose(hc.expected_l0(log_alpha, T, L, R), closed, rtol=0, atol=1e-15)
    assert torch.allclose(hc.log_expected_l0(log_alpha, T, L, R), closed.log(), rtol=0, atol=1e-14)
    g = torch.Generator().manual_seed(0)
    u = torch.rand((400_000, 3), generator=g, dtype=torch.float64).clamp(1e-12, 1 - 1e-12)
    nonzero = (hc.sample(log_alpha.expand(400_000, 3), u, T, L, R) > 0).double().mean(0)
    assert torch.allclose(nonzero, closed, atol=4e-3)  # 400k draws: sd < 1e-3


def test_log_expected_l0_stays_finite_far_out():
    out = hc.log_expected_l0(torch.tensor([-200.0, 200.0], dtype=torch.float64), T, L, R)
    assert torch.isfinite(out).all() and out[1].item() == pytest.approx(0.0, abs=1e-80) and out[0].item() < -150


def test_uniforms_are_reproducible_and_inside():
    like = torch.zeros((), dtype=torch.float32)
    a = hc.uniforms((4, 5), torch.Generator().manual_seed(3), like)
    b = hc.uniforms((4, 5), torch.Generator().manual_seed(3), like)
    assert torch.equal(a, b) and a.dtype == torch.float32 and bool(((a > 0) & (a < 1)).all())
