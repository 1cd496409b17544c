"""``evaluation.attributions``: token attributions of the first examples of each split, computed
after the final evaluation and saved as ``seed-<n>/eval/attributions.json`` (the report draws
them as heat maps).

The layout (docs/architecture.md, section 3)::

    {"seed": 2021, "step": 120,
     "attribution": {"name": "integrated_gradients", "params": {...}},
     "label_names": ["entailment", "neutral", "contradiction"],
     "split_label_names": {"hans": ["entailment", "non-entailment"]},   (only when a split has its own)
     "splits": {"dev": [{"id", "row", "tokens", "special", "scores", "counted",
                         "label", "prediction", "target"}, ...], ...}}

Per example: the tokenizer's tokens of the row (special tokens included, padding excluded),
``special`` (is each a special token), ``scores`` and ``counted`` at those positions (6
significant digits), and the gold ``label``, the model's ``prediction`` and the attributed
``target`` as label indices into ``label_names``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn

import registry
from recipe_engine.runs import write_attributions
from recipe_engine.schema import AttributionDump
from registry._lib.per_example import eval_mode
from registry.data import EncodedSplit
from registry.types import Predictions


def _tokens(tokenizer: Any, ids: list[int]) -> tuple[list[str], list[bool]]:
    """The tokens of ``ids`` and whether each is a special token ([CLS], [SEP], ...)."""
    if tokenizer is None:
        return [str(i) for i in ids], [False] * len(ids)
    special = set(getattr(tokenizer, "all_special_ids", None) or [])
    return [str(t) for t in tokenizer.convert_ids_to_tokens(ids)], [i in special for i in ids]


def _round(values: list[float]) -> list[float]:
    return [float(f"{v:.6g}") for v in values]


def split_attributions(dump: AttributionDump, model: nn.Module, data: EncodedSplit, preds: Predictions,
                       device: torch.device, batch_size: int) -> list[dict[str, Any]]:
    """The first ``dump.examples`` rows of ``data``, attributed in eval mode, ``batch_size`` rows a call."""
    attribution = registry.build("attributions", dump.name, dump.params)
    rows = torch.arange(min(dump.examples, len(data)))
    out: list[dict[str, Any]] = []
    tokenizer = getattr(model, "tokenizer", None)
    with eval_mode(model):
        for chunk in rows.split(batch_size):
            batch = data.batch(chunk).to(device)
            attr = attribution.attribute(model, batch)
            scores, counted = attr.scores.detach().float().cpu(), attr.counted.cpu()
            lengths = batch.attention_mask.sum(1).cpu()
            for b, row in enumerate(chunk.tolist()):
                n = int(lengths[b])  # right padding: the first n positions are the row's tokens
                tokens, special = _tokens(tokenizer, batch.input_ids[b, :n].cpu().tolist())
                out.append({
                    "id": data.ids[row] if row < len(getattr(data, "ids", [])) else str(row),
                    "row": row,
                    "tokens": tokens,
                    "special": special,
                    "scores": _round(scores[b, :n].tolist()),
                    "counted": counted[b, :n].tolist(),
                    "label": int(preds.labels[row]),
                    "prediction": int(preds.logits[row].argmax()),
                    "target": int(attr.target[b]),
                })
    return out


def save_attributions(dump: AttributionDump, model: nn.Module, evals: Mapping[str, EncodedSplit],
                      preds: Mapping[str, Predictions], device: torch.device, batch_size: int,
                      label_names: list[str], seed_dir: Path, seed: int, step: int) -> Path:
    """Attribute every split of ``dump.splits`` (default: every evaluated split) and write
    ``seed_dir/eval/attributions.json`` atomically; return its path."""
    splits = dump.splits if dump.splits is not None else list(evals)
    record = {
        "seed": seed,
        "step": step,
        "attribution": {"name": dump.name, "params": dump.params.model_dump(mode="json")},
        "label_names": list(label_names),
        "splits": {s: split_attributions(dump, model, evals[s], preds[s], device, batch_size) for s in splits},
    }
    # a split scored on its own classes (HANS: entailment / non-entailment): its label and
    # prediction index these names; target always indexes the model's label_names
    own = {s: list(preds[s].label_names) for s in splits if preds[s].label_names and list(preds[s].label_names) != list(label_names)}
    if own:
        record["split_label_names"] = own
    return write_attributions(seed_dir, record)
