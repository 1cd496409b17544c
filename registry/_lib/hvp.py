"""Hessian-vector products by plain double backward (the fastest standalone HVP on CPU,
docs/performance.md sec. 3), as the influence-tuning reference code computes them."""
from __future__ import annotations

import torch
from torch import nn

from registry._lib.per_example import example_losses
from registry.types import Batch


def loss_grad(model: nn.Module, batch: Batch, params: list[nn.Parameter], create_graph: bool = False) -> list[torch.Tensor]:
    """``grad_params`` of the summed cross-entropy of ``batch`` (zeros for unused params)."""
    loss = example_losses(model, batch).sum()
    gs = torch.autograd.grad(loss, params, create_graph=create_graph, allow_unused=True)
    return [torch.zeros_like(p) if g is None else g for p, g in zip(params, gs)]


def hvp(model: nn.Module, batch: Batch, params: list[nn.Parameter], vec: list[torch.Tensor],
        targets: list[nn.Parameter]) -> list[torch.Tensor]:
    """``grad_targets <grad_params L(batch), vec>``: H v, with the forward recomputed.

    With ``targets == params`` this is the Hessian-vector product; with more targets it is
    the mixed second derivative the influence gradient needs over all trained parameters.
    """
    g = loss_grad(model, batch, params, create_graph=True)
    dot = sum((gi * vi).sum() for gi, vi in zip(g, vec))
    out = torch.autograd.grad(dot, targets, allow_unused=True)
    return [torch.zeros_like(t) if o is None else o for t, o in zip(targets, out)]
