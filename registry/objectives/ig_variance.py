"""``ig_variance``: cross-entropy plus a penalty on the variance of integrated-gradients token
attributions (Weaver, "Variance-Based Integrated Gradients Regularization for Robust NLI", sec. 2.3)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import Field

from registry import register
from registry._lib.integrated_gradients import counted_variance
from registry._lib.precision import full_precision
from registry.attributions._common import token_id, word_embeddings
from registry.attributions.integrated_gradients import IntegratedGradients, IntegratedGradientsParams
from registry.base import Objective
from registry.types import Batch, Classifier, ObjectiveContext, PassCounts


@register("objectives", "ig_variance")
class IgVariance(Objective):
    """``L = CE + lambda * tanh(alpha * (1/B) sum_i Var_i)`` (paper sec. 2.3: "Total Loss = L_CE +
    lambda tanh(alpha Var_attr)"), where ``Var_i`` is the unbiased variance of example i's token
    attributions ``IG_it`` over its counted positions.

    What the authors' code computes (weavejul/V-BIG ``run_ig.py``), and these params' defaults:
    IG on the word embeddings through ``inputs_embeds`` with a zero baseline, the gold label as
    target, 10 Gauss-Legendre nodes, no token_type_ids in the IG passes, dropout on (train mode),
    all 128 padded positions counted ([CLS], [SEP], [PAD] included), ``tanh`` of the batch mean of
    the variances, lambda 0.1, alpha 10.  Captum's path gradients are constants there, so the
    penalty's gradient reaches only the word-embedding rows of the batch's tokens:
    ``mode: faithful``.  ``mode: differentiable`` differentiates through the path gradients
    (double backward) and so trains the whole encoder: a different, costlier method.
    The padded positions are exact zeros, counted in closed form (the batch is trimmed to its
    longest row first; ``registry/attributions/_common.py``).
    """

    second_order = True
    summary = "cross-entropy + lambda * tanh(alpha * mean variance of integrated-gradients token attributions)"
    paper = "Weaver, Variance-Based Integrated Gradients Regularization for Robust NLI (sec. 2.3); code weavejul/V-BIG"
    equation = ("L = CE + lambda * tanh(alpha * (1/B) sum_i Var_i), Var_i = 1/(n_i-1) sum_t (IG_it - mean_t IG_it)^2 "
                "over the n_i counted positions")

    class Params(IntegratedGradientsParams):
        penalty_weight: float = Field(0.1, ge=0.0, description="lambda, the penalty's weight next to the cross-entropy (authors: 0.1)")
        alpha: float = Field(10.0, gt=0.0, description="alpha, the scale of the mean variance inside tanh (authors: 10)")

    def __init__(self, params: Params | None = None) -> None:
        super().__init__(params)
        self.ig = IntegratedGradients(self.params)
        self.ig.kind, self.ig.name = "objectives", "ig_variance"  # errors name the objective
        self._logs: dict[str, float] = {}

    def bind(self, ctx: ObjectiveContext) -> None:
        """Fail early: the model needs word embeddings (and a [PAD]/[MASK] token for those baselines)."""
        super().bind(ctx)
        who = "objective 'ig_variance'"
        word_embeddings(ctx.model, who)
        if self.params.baseline != "zeros":
            token_id(ctx.model, self.params.baseline, who)

    def cost(self, batch_size: int, seq_len: int) -> PassCounts:
        """CE's forward and backward, plus m path points per row each run forward and backward
        (the IG gradients); ``mode: differentiable`` also double-backwards through the m points."""
        m = self.params.nodes
        dd = batch_size * m if self.params.mode == "differentiable" else 0
        return PassCounts(forward=batch_size * (1 + m), backward=batch_size * (1 + m), double_backward=dd)

    def penalty(self, model: Classifier, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """(``tanh(alpha * mean_i Var_i)``, ``mean_i Var_i``)."""
        r = self.ig.compute(model, batch)
        mean_var = counted_variance(r.scores, r.counted, r.n).mean()
        return torch.tanh(self.params.alpha * mean_var), mean_var

    def loss(self, model: Classifier, batch: Batch) -> torch.Tensor:
        logits = model(**batch.model_inputs()).logits
        ce = F.cross_entropy(full_precision(logits), batch.labels)
        pen, mean_var = self.penalty(model, batch)
        self._logs = {"ce": float(ce.detach()), "variance": float(mean_var.detach()), "penalty": float(pen.detach())}
        return ce + self.params.penalty_weight * pen

    def logs(self) -> dict[str, float]:
        return dict(self._logs)
