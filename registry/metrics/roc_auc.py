"""``roc_auc``: area under the ROC curve of the softmax probabilities (one-vs-rest).

Keys: ``roc_auc`` (unchanged: the positive class's AUC for two labels or with
``positive_class``, else the macro/weighted mean), plus ``roc_auc/<class>``, the one-vs-rest AUC
of the positive class (``positive_class``, default 1: the IG-variance authors' figure,
``roc_curve(y, p[:, 1], pos_label=1)``), named by its label (``roc_auc/neutral``; ``class_<i>``
when the dataset names no labels), and ``roc_auc/macro``, the unweighted mean of the one-vs-rest
AUCs of the classes present.  For two labels all three coincide.
"""
from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from pydantic import Field
from sklearn.metrics import roc_auc_score

from registry import StrictParams, register
from registry.base import Metric
from registry.errors import UserError
from registry.metrics.group_accuracy import key_part
from registry.types import Predictions


def one_vs_rest_auc(probs: np.ndarray, labels: np.ndarray, cls: int) -> float | None:
    """AUC of ``probs[:, cls]`` for "label == cls" against the rest; ``None`` if one side is empty."""
    positive = labels == cls
    if positive.all() or not positive.any():
        return None
    return float(roc_auc_score(positive, probs[:, cls]))


@register("metric", "roc_auc")
class RocAuc(Metric):
    summary = ("ROC AUC (0-1) of the softmax probabilities: binary, one class vs rest, or macro/weighted over classes; "
               "plus roc_auc/<class> (class 1 vs rest, the IG-variance authors' figure) and roc_auc/macro")
    paper = "Weaver, Variance-Based IG Regularization for Robust NLI, Table 1 (class-1 one-vs-rest AUC)"
    equation = "AUC_c = P(p_c(x+) > p_c(x-)) for x+ of class c, x- of another class; macro = mean_c AUC_c"

    class Params(StrictParams):
        positive_class: int | None = Field(
            None,
            ge=0,
            description=(
                "report the one-vs-rest AUC of this label index as roc_auc and roc_auc/<its label> (the "
                "IG-variance paper uses 1); default: roc_auc is class 1 for two labels, else the average over "
                "classes, and roc_auc/<label of class 1> is reported either way"
            ),
        )
        average: Literal["macro", "weighted"] = Field(
            "macro",
            description="with more than two labels and no positive_class: unweighted mean ('macro') or "
            "prevalence-weighted mean ('weighted') of the one-vs-rest AUCs",
        )

    def compute(self, preds: Predictions) -> dict[str, float]:
        """Keys whose AUC is undefined (a split with a single class) are omitted."""
        num_classes = preds.logits.shape[-1]
        probs = torch.softmax(preds.logits.detach().double(), dim=-1).cpu().numpy()
        labels = preds.labels.detach().long().cpu().numpy()
        cls = self.params.positive_class
        if cls is not None and cls >= num_classes:
            raise UserError(
                f"metric roc_auc: positive_class {cls} is out of range for {num_classes} labels; "
                f"set its params.positive_class in evaluation.metrics to one of 0..{num_classes - 1}"
            )
        per_class = {c: one_vs_rest_auc(probs, labels, c) for c in range(num_classes)}
        defined = {c: a for c, a in per_class.items() if a is not None}
        if not defined:
            return {}
        out: dict[str, float] = {}
        positive = cls if cls is not None else min(1, num_classes - 1)
        if cls is not None or num_classes == 2:
            if per_class[positive] is not None:
                out["roc_auc"] = per_class[positive]
        else:
            weights = [float((labels == c).sum()) if self.params.average == "weighted" else 1.0 for c in defined]
            out["roc_auc"] = float(np.average(list(defined.values()), weights=weights))
        if per_class[positive] is not None:
            out[f"roc_auc/{class_key(preds.label_names, positive)}"] = per_class[positive]
        out["roc_auc/macro"] = float(np.mean(list(defined.values())))
        return out


def class_key(label_names: list[str], cls: int) -> str:
    """How class ``cls`` appears in a key: its label name as a key segment, else ``class_<cls>``
    (also when the name is empty or would read as ``macro``)."""
    name = key_part(label_names[cls]) if cls < len(label_names) else ""
    return name if name and name != "macro" else f"class_{cls}"
