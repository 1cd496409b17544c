"""``class_accuracy``: accuracy per gold class (recall of each class), in percent."""
from __future__ import annotations

import torch

from registry import register
from registry.base import Metric
from registry.metrics.group_accuracy import key_part
from registry.types import Predictions


@register("metric", "class_accuracy")
class ClassAccuracy(Metric):
    summary = "Accuracy per gold class (accuracy/<label name>), in percent; classes absent from the split are left out"
    paper = "Chen, Jiang & Tu 2024, UIMER (per-intent analysis of SNIPS)"
    equation = "acc_c = 100 * mean_{i: y_i = c} [argmax_k z_ik == c]"

    def compute(self, preds: Predictions) -> dict[str, float]:
        labels = preds.labels.long().cpu()
        if labels.numel() == 0:
            return {}
        correct = preds.logits.argmax(dim=-1).cpu().eq(labels).double()
        size = torch.bincount(labels)
        hits = torch.bincount(labels, weights=correct)
        out: dict[str, float] = {}
        for c in torch.nonzero(size).flatten().tolist():
            name = key_part(preds.label_names[c]) if c < len(preds.label_names) else ""
            out[f"accuracy/{name or c}"] = 100.0 * hits[c].item() / size[c].item()
        return out
