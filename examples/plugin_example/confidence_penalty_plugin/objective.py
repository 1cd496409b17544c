"""Confidence penalty: cross-entropy minus beta times the entropy of the predicted distribution.

Pereyra, Tucker, Chorowski, Kaiser & Hinton 2017, "Regularizing neural networks by
penalizing confident output distributions", eq. 2:

    L(theta) = - sum log p_theta(y|x) - beta * H(p_theta(y|x)),   H(p) = - sum_c p_c log p_c

A low-entropy (over-confident) prediction is penalised.  The paper's hinge variant
penalises only entropies below a threshold Gamma: ``+ beta * max(0, Gamma - H)``.

The entry point in ``pyproject.toml`` registers the class under the name
``confidence_penalty``; no ``@register`` decorator is needed in a plugin.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import Field

from registry import StrictParams
from registry.base import Objective
from registry.types import Batch, Classifier


def confidence_penalty_loss(logits: torch.Tensor, labels: torch.Tensor, beta: float,
                            threshold: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Pereyra et al. 2017, eq. 2 (hinge variant when ``threshold`` is set), averaged over the batch.

    Returns ``(loss, entropy)``: the scalar loss and the per-example entropies H (nats).
    """
    log_p = F.log_softmax(logits, dim=-1)
    nll = -log_p.gather(-1, labels.long().unsqueeze(-1)).squeeze(-1)
    entropy = -(log_p.exp() * log_p).sum(-1)
    penalty = -entropy if threshold is None else (threshold - entropy).clamp_min(0.0)
    return (nll + beta * penalty).mean(), entropy


class ConfidencePenalty(Objective):
    summary = "cross-entropy minus beta * entropy of the predicted distribution (penalises confident outputs)"
    paper = ('Pereyra et al. 2017, "Regularizing neural networks by penalizing confident output '
             'distributions", eq. 2')
    equation = "L = 1/|B| sum_i [ -log p(y_i|x_i) - beta * H(p(.|x_i)) ],  H(p) = -sum_c p_c log p_c"
    requires = ()  # text and label only
    _entropy = float("nan")  # mean entropy of the last batch, for logs()

    class Params(StrictParams):
        beta: float = Field(0.1, ge=0.0, allow_inf_nan=False,
                            description="weight of the entropy term; 0 gives plain cross-entropy")
        threshold: float | None = Field(None, gt=0.0, allow_inf_nan=False,
                                        description="hinge variant: penalise only entropies below this "
                                                    "many nats, beta * max(0, threshold - H); null: plain penalty")

    def loss(self, model: Classifier, batch: Batch) -> torch.Tensor:
        logits = model(**batch.model_inputs()).logits.float()
        loss, entropy = confidence_penalty_loss(logits, batch.labels, self.params.beta, self.params.threshold)
        self._entropy = float(entropy.detach().mean())
        return loss

    def logs(self) -> dict[str, float]:
        """Mean predictive entropy (nats) of the last batch."""
        return {"entropy": self._entropy}
