"""``gradient_x_input``: each token's word embedding times the target logit's gradient there."""
from __future__ import annotations

import torch

from registry import register
from registry._lib.integrated_gradients import Forward, input_gradient
from registry.attributions._common import EmbeddingAttribution
from registry.types import Classifier


@register("attributions", "gradient_x_input")
class GradientXInput(EmbeddingAttribution):
    """``s_t = sum_d x_td dF_y/dx_td`` on ``inputs_embeds``.  ``faithful``: the gradient is a constant,
    so a loss on the scores reaches only the batch's word-embedding rows (through ``x``);
    ``differentiable``: it reaches every weight."""

    summary = "word embedding times the target logit's gradient, summed over the embedding dimension"
    paper = "Shrikumar et al. 2016, Not Just a Black Box; Denil et al. 2014"
    equation = "s_t = sum_d x_{t,d} * dF_y(x)/dx_{t,d}, x = E[input_ids] (inputs_embeds)"

    def per_dim(self, model: Classifier, forward: Forward, x: torch.Tensor, create_graph: bool) -> torch.Tensor:
        return x * input_gradient(forward, x, create_graph)
