"""``hans_accuracy``: accuracy per HANS heuristic and gold label (HILDIF Figure 1c's cells)."""
from __future__ import annotations

import torch

from registry import register
from registry.base import Metric
from registry.metrics.group_accuracy import key_part
from registry.types import Predictions

#: McCoy et al. 2019's three heuristics, in the paper's order (LO, SUB, CON)
HEURISTICS = ("lexical_overlap", "subsequence", "constituent")


@register("metric", "hans_accuracy")
class HansAccuracy(Metric):
    summary = "Accuracy per HANS heuristic x gold label (hans/lexical_overlap/non-entailment, ...), in percent"
    paper = "McCoy et al. 2019 (HANS), Table/Figure 1; Zylberajch et al. 2021 (HILDIF), Figure 1c"
    equation = ("acc(h, y) = 100 * mean_{i: heuristic_i = h, y_i = y} [argmax_c z_ic == y], keys <heuristic>/<label> "
                "and all/<label>; nothing on a split without a 'heuristic' meta column")

    def compute(self, preds: Predictions) -> dict[str, float]:
        heuristic = preds.meta.get("heuristic")
        if heuristic is None or preds.labels.numel() == 0:
            return {}
        labels = preds.labels.long().cpu()
        correct = preds.logits.argmax(dim=-1).cpu().eq(labels)
        names = list(preds.label_names)
        found = [h for h in HEURISTICS if h in set(heuristic)] + sorted(set(heuristic) - set(HEURISTICS))
        heur = torch.tensor([found.index(h) for h in heuristic])
        out: dict[str, float] = {}
        for y in sorted(set(labels.tolist())):
            label = key_part(names[y]) if y < len(names) else str(y)
            of_label = labels.eq(y)
            for k, h in enumerate(found):
                mask = of_label & heur.eq(k)
                if mask.any():
                    out[f"{key_part(str(h))}/{label}"] = 100.0 * correct[mask].double().mean().item()
            out[f"all/{label}"] = 100.0 * correct[of_label].double().mean().item()
        return out
