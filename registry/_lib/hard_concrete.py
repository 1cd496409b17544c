"""The hard-concrete (stretched and rectified binary concrete) distribution of a gate
(Louizos, Welling & Kingma 2018, sec. 4; DiffMask, De Cao et al. 2020, sec. 3).

With location ``log_alpha``, temperature ``beta`` and stretch interval ``(l, r)``, ``l < 0 < 1 <= r``:

    s = sigmoid((log u - log(1 - u) + log_alpha) / beta),  u ~ U(0, 1)   (binary concrete)
    z = min(1, max(0, l + (r - l) s))                                     (stretched, rectified)
    E[L0] = P(z != 0) = sigmoid(log_alpha - beta log(-l / r))

``z`` is exactly 0 or 1 with positive probability and differentiable in ``log_alpha`` in between.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def sample(log_alpha: torch.Tensor, u: torch.Tensor, temperature: float, left: float, right: float) -> torch.Tensor:
    """A reparametrised draw ``z`` given uniforms ``u`` in (0, 1) of ``log_alpha``'s shape."""
    s = torch.sigmoid((torch.log(u) - torch.log1p(-u) + log_alpha) / temperature)
    return (left + (right - left) * s).clamp(0.0, 1.0)


def log_expected_l0(log_alpha: torch.Tensor, temperature: float, left: float, right: float) -> torch.Tensor:
    """``log P(z != 0) = -softplus(beta log(-l / r) - log_alpha)`` (finite for any log_alpha)."""
    return -F.softplus(temperature * math.log(-left / right) - log_alpha)


def expected_l0(log_alpha: torch.Tensor, temperature: float, left: float, right: float) -> torch.Tensor:
    """``P(z != 0)``: the expected L0 norm of one gate, a deterministic gate value in (0, 1)."""
    return log_expected_l0(log_alpha, temperature, left, right).exp()


def uniforms(shape: tuple[int, ...], generator: torch.Generator, like: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """``U(eps, 1 - eps)`` drawn from a CPU ``generator`` (kept in the checkpoint), moved to ``like``."""
    u = torch.rand(shape, generator=generator, dtype=torch.float64)
    return (eps + (1 - 2 * eps) * u).to(device=like.device, dtype=like.dtype)
