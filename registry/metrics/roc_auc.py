"""``roc_auc``: area under the ROC curve of the softmax probabilities (one-vs-rest)."""
from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from pydantic import Field
from sklearn.metrics import roc_auc_score

from registry import StrictParams, register
from registry.base import Metric
from registry.errors import UserError
from registry.types import Predictions


def one_vs_rest_auc(probs: np.ndarray, labels: np.ndarray, cls: int) -> float | None:
    """AUC of ``probs[:, cls]`` for "label == cls" against the rest; ``None`` if one side is empty."""
    positive = labels == cls
    if positive.all() or not positive.any():
        return None
    return float(roc_auc_score(positive, probs[:, cls]))


@register("metric", "roc_auc")
class RocAuc(Metric):
    summary = "ROC AUC (0-1) of the softmax probabilities: binary, one class vs rest, or macro/weighted over classes."
    paper = "Weaver, Variance-Based IG Regularization for Robust NLI, Table 1 (class-1 one-vs-rest AUC)"
    equation = "AUC_c = P(p_c(x+) > p_c(x-)) for x+ of class c, x- of another class; macro = mean_c AUC_c"

    class Params(StrictParams):
        positive_class: int | None = Field(
            None,
            ge=0,
            description=(
                "report the one-vs-rest AUC of this label index (the IG-variance paper uses 1); "
                "default: class 1 for two labels, else the average over classes"
            ),
        )
        average: Literal["macro", "weighted"] = Field(
            "macro",
            description="with more than two labels and no positive_class: unweighted mean ('macro') or "
            "prevalence-weighted mean ('weighted') of the one-vs-rest AUCs",
        )

    def compute(self, preds: Predictions) -> dict[str, float]:
        """The key is omitted when the AUC is undefined (a split with a single class)."""
        num_classes = preds.logits.shape[-1]
        probs = torch.softmax(preds.logits.detach().double(), dim=-1).cpu().numpy()
        labels = preds.labels.detach().long().cpu().numpy()
        cls = self.params.positive_class
        if cls is None and num_classes == 2:
            cls = 1
        if cls is not None:
            if cls >= num_classes:
                raise UserError(
                    f"metric roc_auc: positive_class {cls} is out of range for {num_classes} labels; "
                    f"set its params.positive_class in evaluation.metrics to one of 0..{num_classes - 1}"
                )
            auc = one_vs_rest_auc(probs, labels, cls)
            return {} if auc is None else {"roc_auc": auc}
        aucs, weights = [], []
        for c in range(num_classes):
            auc = one_vs_rest_auc(probs, labels, c)
            if auc is not None:
                aucs.append(auc)
                weights.append(float((labels == c).sum()) if self.params.average == "weighted" else 1.0)
        if not aucs:
            return {}
        return {"roc_auc": float(np.average(aucs, weights=weights))}
