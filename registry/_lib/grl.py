"""Gradient reversal layer (Ganin et al. 2016; Pryzant et al. 2018; Han & Tsvetkov 2021 sec. 5.1)."""
from __future__ import annotations

import torch


class GradReverse(torch.autograd.Function):
    """Identity in the forward pass; multiplies the incoming gradient by ``-strength`` backward."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, strength: float) -> torch.Tensor:
        ctx.strength = strength
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        return -ctx.strength * grad_output, None


def grad_reverse(x: torch.Tensor, strength: float = 1.0) -> torch.Tensor:
    """``GRL_lambda(x)``: forward ``x``, backward ``-lambda * grad``."""
    return GradReverse.apply(x, float(strength))
