"""``saliency``: the gradient of the target logit with respect to each token's word embedding."""
from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field

from registry import register
from registry._lib.integrated_gradients import Forward, input_gradient
from registry.attributions._common import AttributionParams, EmbeddingAttribution
from registry.types import Classifier


class SaliencyParams(AttributionParams):
    reduction: Literal["l2", "l1", "sum"] = Field(
        "l2", description="how the gradient's embedding dimensions become one score: l2 norm (default), l1 norm, or "
                          "the plain sum (0 up to rounding for any model whose word embeddings enter a LayerNorm "
                          "first, e.g. BERT, MiniLM, ELECTRA: LayerNorm's gradient sums to 0 over the dimension)")


@register("attributions", "saliency")
class Saliency(EmbeddingAttribution):
    """``s_t = ||dF_y/dx_t||_2`` (or ``_1``, or ``sum_d``) at the input, taken positionally on
    ``inputs_embeds`` (never on the embedding table: a token id that occurs twice gets two scores).

    The plain sum over the embedding dimension vanishes on BERT-style models (the embedding
    LayerNorm is invariant to a shift along the all-ones direction, so its input gradient sums to
    0), hence the ``l2`` default.  In ``faithful`` mode the scores are constants (a loss on them
    has no gradient); ``differentiable`` keeps the graph.
    """

    summary = "norm (or sum) of the gradient of the target logit w.r.t. each token's word embedding"
    paper = "Simonyan et al. 2014, Deep Inside Convolutional Networks (sec. 3); Li et al. 2016 for text"
    equation = "s_t = ||dF_y(x)/dx_t||_2 (reduction l1: ||.||_1, sum: sum_d), x = E[input_ids] (inputs_embeds)"

    Params = SaliencyParams

    def per_dim(self, model: Classifier, forward: Forward, x: torch.Tensor, create_graph: bool) -> torch.Tensor:
        return input_gradient(forward, x, create_graph)

    def reduce(self, per_dim: torch.Tensor) -> torch.Tensor:
        r = self.params.reduction
        if r == "l2":
            return per_dim.norm(dim=-1)
        return per_dim.abs().sum(-1) if r == "l1" else per_dim.sum(-1)
