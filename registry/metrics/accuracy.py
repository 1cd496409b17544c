"""``accuracy``: the share of examples whose arg-max prediction is the gold label, in percent."""
from __future__ import annotations

import torch

from registry import register
from registry.base import Metric
from registry.types import Predictions


def accuracy_percent(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """100 * mean(argmax_c logits == label)."""
    correct = logits.argmax(dim=-1).eq(labels.to(logits.device))
    return 100.0 * correct.double().mean().item()


@register("metric", "accuracy")
class Accuracy(Metric):
    summary = "Accuracy of the arg-max prediction, in percent (0-100)."
    paper = "Han & Tsvetkov 2021, Influence Tuning, Tables 2-3 (accuracy on train/dev/test)"
    equation = "acc = 100 * mean_i [argmax_c z_ic == y_i]"

    def compute(self, preds: Predictions) -> dict[str, float]:
        """Empty for an empty split (accuracy undefined)."""
        if preds.labels.numel() == 0:
            return {}
        return {"accuracy": accuracy_percent(preds.logits, preds.labels)}
