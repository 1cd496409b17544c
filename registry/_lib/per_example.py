"""Per-example loss gradients: batched (``torch.func`` vmap of grad) and a plain loop.

The influence score of Han & Tsvetkov 2021 (sec. 2, gradient cosine) is built on the
per-example gradient ``g_i = grad_theta L(z_i)`` of the cross-entropy loss, taken with dropout
off (the reference code's ``model.eval()``).
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad, vmap

from registry.types import Batch, EncodedData


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Dropout off inside the block (``model.eval()``); every submodule's previous mode is
    restored after it.  The one eval-mode switch of the project (objectives, metrics, evaluation)."""
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for m, training in modes:
            m.training = training


@contextmanager
def exact_math(device: torch.device | str) -> Iterator[None]:
    """Autocast off (second-order math in the model's own dtype) and autograd on."""
    dev = torch.device(device).type
    with torch.autocast(dev, enabled=False), torch.enable_grad():
        yield


def trim_padding(batch: Batch) -> Batch:
    """Drop trailing columns that are padding in every row (exact: they never get attended)."""
    used = batch.attention_mask.bool().any(0)
    if bool(used.all()):
        return batch
    last = int(used.nonzero().max().item()) + 1 if bool(used.any()) else 1
    out = Batch(**batch.__dict__)
    for key in ("input_ids", "attention_mask", "token_type_ids", "rationale"):
        val = getattr(batch, key)
        if isinstance(val, torch.Tensor) and val.dim() == 2:
            setattr(out, key, val[:, :last])
    return out


def by_length(data: EncodedData, index: torch.Tensor, size: int) -> tuple[list[torch.Tensor], torch.Tensor]:
    """``index`` as chunks of at most ``size`` rows sorted by length, and the permutation
    that undoes the sort: ``torch.cat(results_per_chunk)[undo]`` is in ``index`` order.

    A batch pads to its longest row, so a random draw of TextLen rows (17-52 tokens) computes
    about twice the tokens it needs; sorted chunks pad little.  Exact: padding is never
    attended, and rows do not interact in eval mode.
    """
    index = torch.as_tensor(index, dtype=torch.long).reshape(-1)
    lengths = data.batch(index).attention_mask.sum(1).cpu()
    order = torch.sort(lengths, stable=True).indices
    return list(index[order].split(size)), torch.argsort(order)


def example_losses(model: nn.Module, batch: Batch) -> torch.Tensor:
    """(N,) cross-entropy of each example: ``L(z_i) = -log softmax(f(x_i))_{y_i}``."""
    logits = model(**batch.model_inputs()).logits
    if logits.dtype not in (torch.float32, torch.float64):
        logits = logits.float()
    return F.cross_entropy(logits, batch.labels, reduction="none")


def per_example_grads(model: nn.Module, batch: Batch, params: list[tuple[str, nn.Parameter]]) -> list[torch.Tensor]:
    """``[g[:, *p.shape] for p in params]``: first-order per-example gradients by vmap(grad).

    Exact (first-order vmap has no LayerNorm batching issue; docs/performance.md sec. 2); costs
    N x P memory, so callers chunk N.  Not differentiable with respect to the parameters.
    """
    names = [n for n, _ in params]
    values = {n: p.detach() for n, p in params}
    tt = batch.token_type_ids

    def loss_one(pdict, ids, mask, tok, y):
        kwargs = {"attention_mask": mask[None]}
        if tok is not None:
            kwargs["token_type_ids"] = tok[None]
        logits = functional_call(model, pdict, (ids[None],), kwargs).logits
        return F.cross_entropy(logits, y[None])

    in_dims = (None, 0, 0, 0 if tt is not None else None, 0)
    out = vmap(grad(loss_one), in_dims=in_dims)(values, batch.input_ids, batch.attention_mask, tt, batch.labels)
    return [out[n] for n in names]


def per_example_grads_loop(model: nn.Module, batch: Batch, params: list[nn.Parameter], create_graph: bool = False) -> list[list[torch.Tensor]]:
    """One ``autograd.grad`` per example (batch size 1): the naive reference."""
    grads = []
    for i in range(len(batch)):
        loss = example_losses(model, batch.select(torch.tensor([i], device=batch.labels.device)))[0]
        grads.append(list(torch.autograd.grad(loss, params, create_graph=create_graph, allow_unused=True)))
        grads[-1] = [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads[-1])]
    return grads
