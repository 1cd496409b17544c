"""Surrogate losses: a tensor whose value is one number and whose gradient is another."""
from __future__ import annotations

import torch
from torch import nn


def surrogate(value: torch.Tensor, params: list[nn.Parameter], grads: list[torch.Tensor]) -> torch.Tensor:
    """A scalar whose value is ``value`` and whose gradient w.r.t. ``params`` is ``grads``.

    ``value + sum_p <p - p.detach(), g_p>``: the added term is exactly 0 in value (not a
    difference of two large sums, which would cost digits of a small ``value``) and has
    gradient ``g_p``.  Lets an objective that computed an exact gradient itself (e.g. the
    influence-tuning loop or reference routes) hand it to an ordinary ``loss.backward()``.
    """
    out = value.detach()
    for p, g in zip(params, grads):
        out = out + ((p - p.detach()) * g.detach()).sum().to(out.dtype)
    return out
