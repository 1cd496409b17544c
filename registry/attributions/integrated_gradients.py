"""``integrated_gradients``: token attributions by integrated gradients on the word embeddings."""
from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field

from registry import register
from registry._lib.integrated_gradients import Forward, Method, integrated_gradients
from registry.attributions._common import AttributionParams, EmbeddingAttribution, token_id, word_embeddings
from registry.types import Classifier


class IntegratedGradientsParams(AttributionParams):
    """IG settings; the defaults are the authors' code (Captum, zero baseline, 10 Gauss-Legendre nodes)."""

    nodes: int = Field(10, ge=1, description="quadrature nodes m (Captum's n_steps; authors: 10)")
    method: Method = Field("gauss_legendre", description="quadrature rule: gauss_legendre (Captum's default), or a "
                                                         "Riemann sum riemann_left|riemann_right|riemann_middle|riemann_trapezoid")
    baseline: Literal["zeros", "pad", "mask"] = Field(
        "zeros", description="the path's start in word-embedding space: zeros (authors), or the [PAD] or [MASK] "
                             "embedding at every position (a constant)")
    internal_batch_size: int | None = Field(
        None, ge=1, description="most path points (node x example rows) per forward pass; null: all m*B at once (authors)")


@register("attributions", "integrated_gradients")
class IntegratedGradients(EmbeddingAttribution):
    """``IG_t = sum_d (x_td - b_td) * sum_k w_k dF_y/dx_td(b + a_k (x - b))`` on ``inputs_embeds``.

    All ``m * B`` path points run as one batch (chunked by ``internal_batch_size``) with one
    ``autograd.grad`` per chunk (``registry/_lib/integrated_gradients.py``).  The batch is trimmed to
    its longest row: padded positions score exactly 0 with this project's classifier and enter
    ``positions: all`` in closed form (``registry/attributions/_common.py``).
    """

    summary = "integrated gradients on the word embeddings (Gauss-Legendre or Riemann nodes), summed over the embedding dimension"
    paper = "Sundararajan et al. 2017, Axiomatic Attribution for Deep Networks (eq. 1)"
    equation = "IG_t = sum_d (x_{t,d} - b_{t,d}) * sum_k w_k dF_y(b + a_k (x - b))/dx_{t,d}"

    Params = IntegratedGradientsParams

    def baseline(self, model: Classifier, x: torch.Tensor) -> torch.Tensor:
        """The constant baseline, broadcastable to ``x``."""
        kind = self.params.baseline
        if kind == "zeros":
            return x.new_zeros(x.shape[-1])
        return word_embeddings(model, self.who()).weight[token_id(model, kind, self.who())].detach()

    def per_dim(self, model: Classifier, forward: Forward, x: torch.Tensor, create_graph: bool) -> torch.Tensor:
        p = self.params
        return integrated_gradients(forward, x, self.baseline(model, x), p.nodes, p.method,
                                    p.internal_batch_size, create_graph)
