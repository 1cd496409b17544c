"""Gradient-cosine influence between probes and many training examples (Han & Tsvetkov 2021,
sec. 2: ``I(z_trn, z_prb) = cos(grad L(z_trn), grad L(z_prb))``), batched over the training
examples in chunks.  First order, eval mode, no autocast; dots and norms summed in float64.

Routes: ``gram`` (from activations and output gradients, registry._lib.gram: per-token
Linear layers materialise their per-example gradients, which is cheaper for all pairs, while
embeddings use the token-equality Gram and never form a vocabulary-sized gradient) and ``vmap`` (per-example gradients of a chunk
by vmap(grad), stacked probe gradients, one matrix product per parameter tensor).
An example with a zero gradient has cosine 0 with everything (it has no influence).
"""
from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from registry._lib.gram import Factors, capture, whole
from registry._lib.per_example import by_length, eval_mode, exact_math, example_losses, per_example_grads, trim_padding
from registry.types import Batch, EncodedData

Route = Literal["gram", "vmap"]


def _gram_factors(model: nn.Module, batch: Batch, params: list[tuple[str, nn.Parameter]]) -> Factors:
    batch = trim_padding(batch)
    n = len(batch)
    with capture(model, params, n) as sites:
        losses = example_losses(model, batch)
    return Factors.from_loss(sites, losses.sum(), n, create_graph=False).densified()


def _cosines(dots: torch.Tensor, sq_prb: torch.Tensor, sq_trn: torch.Tensor) -> torch.Tensor:
    denom = torch.sqrt(sq_prb[:, None] * sq_trn[None, :])
    return torch.where(denom > 0, dots / denom.clamp_min(torch.finfo(torch.float64).tiny), torch.zeros_like(dots))


def gradient_cosines(model: nn.Module, data: EncodedData, probes: torch.Tensor, candidates: torch.Tensor,
                     params: list[tuple[str, nn.Parameter]], device: torch.device | str,
                     route: Route = "gram", chunk: int = 64) -> torch.Tensor:
    """(P, C) float64 matrix ``cos(g_candidate, g_probe)`` over the parameter set ``params``
    (candidates in length-sorted chunks of ``chunk`` rows; columns in ``candidates`` order)."""
    out = []
    chunks, undo = by_length(data, candidates, chunk)
    with eval_mode(model), exact_math(device):
        prb = data.batch(probes).to(device)
        if route == "gram":
            f_prb = _gram_factors(model, prb, params)
            sq_prb = f_prb.sq_norms()
            for idx in chunks:
                f = _gram_factors(model, data.batch(idx).to(device), params)
                dots = f_prb.cross(f, whole, whole)[0]
                out.append(_cosines(dots, sq_prb, f.sq_norms()))
        else:
            g_prb = [g.reshape(len(probes), -1) for g in per_example_grads(model, prb, params)]
            sq_prb = sum((g.double() ** 2).sum(1) for g in g_prb)
            for idx in chunks:
                g = [x.reshape(len(idx), -1) for x in per_example_grads(model, data.batch(idx).to(device), params)]
                dots = sum((a @ b.T).double() for a, b in zip(g_prb, g))
                out.append(_cosines(dots, sq_prb, sum((x.double() ** 2).sum(1) for x in g)))
    return torch.cat(out, 1)[:, undo] if out else torch.zeros(len(probes), 0, dtype=torch.float64)
