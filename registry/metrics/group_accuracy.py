"""``group_accuracy``: accuracy per (label, confound) group, worst group, aligned vs conflicting.

A group's key is ``group/<label>/<confound>=<value>`` (TextLen: ``group/long/prefix=Positive``)
when the dataset names its confound values, else ``group/<label>/<index>``."""
from __future__ import annotations

import re
from typing import Literal

import torch
from pydantic import Field

from registry import StrictParams, register
from registry.base import Metric
from registry.errors import UserError
from registry.types import Predictions


def alignment(
    labels: torch.Tensor, confound: torch.Tensor, aligned: str | dict[int, int]
) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Bool masks (aligned, conflicting): does an example's confound agree with its label?

    ``"equal"``: aligned iff confound == label index.  A mapping ``{label: confound}`` names
    the agreeing confound value per label; examples of labels it does not list are in
    neither mask.  ``"none"`` returns ``None``.
    """
    if aligned == "none":
        return None
    if aligned == "equal":
        agree = confound.eq(labels)
        return agree, ~agree
    table = torch.full((int(labels.max().item()) + 1,), -2, dtype=torch.long)
    for lab, conf in aligned.items():
        if 0 <= lab < table.numel():
            table[lab] = conf
    expected = table[labels]
    listed = expected.ne(-2)
    agree = expected.eq(confound)
    return agree & listed, ~agree & listed


def confound_keys(names: list[str], column: str | None, n: int) -> list[str]:
    """How confound values ``0..n-1`` appear in metric keys: ``<column>=<name>`` (TextLen:
    ``prefix=Positive``) when the dataset names them, else the index."""
    parts = [key_part(v) for v in names[:n]]
    if len(parts) < n or not all(parts) or len(set(parts)) < n:
        return [str(c) for c in range(n)]
    column = key_part(column or "") or "confound"
    return [f"{column}={p}" for p in parts]


def key_part(text: str) -> str:
    """``text`` as one segment of a metric key: every run of characters other than letters,
    digits, ``_`` and ``-`` becomes ``_``, trimmed at both ends (``"Positive."`` -> ``Positive``)."""
    return re.sub(r"[^\w-]+", "_", text).strip("_")


@register("metric", "group_accuracy")
class GroupAccuracy(Metric):
    summary = "Accuracy per (label, confound) group, worst group, aligned vs conflicting and their gap, in percent."
    paper = "Han & Tsvetkov 2021, Influence Tuning, Sec. 5 (TextLen/MSGS: accuracy when the confound disagrees)"
    equation = (
        "acc_g = 100 * mean_{i in g} [yhat_i == y_i] for g = (y, c); worst_group = min_g acc_g; "
        "gap = acc(aligned) - acc(conflicting)"
    )
    requires = ("confound",)

    class Params(StrictParams):
        aligned: Literal["equal", "none"] | dict[int, int] = Field(
            "equal",
            description=(
                "which confound value agrees with each label: 'equal' (confound == label index; "
                "TextLen prefix_positive, MSGS surface feature), a mapping {label: confound} "
                "(unlisted labels count as neither), or 'none' to report only per-group and "
                "worst-group accuracy"
            ),
        )

    def compute(self, preds: Predictions) -> dict[str, float]:
        if preds.confound is None:
            raise UserError(
                f"metric group_accuracy: split {preds.split!r} has no confound column; "
                "remove group_accuracy from evaluation.metrics or use a dataset that provides a confound"
            )
        labels = preds.labels.long().cpu()
        confound = preds.confound.long().cpu()
        correct = preds.logits.argmax(dim=-1).cpu().eq(labels)
        known = confound >= 0  # -1 = unknown (registry.types.MISSING_CONFOUND)
        labels, confound, correct = labels[known], confound[known], correct[known]
        if labels.numel() == 0:
            return {}
        out: dict[str, float] = {}
        n_conf = int(confound.max().item()) + 1
        gid = labels * n_conf + confound
        size = torch.bincount(gid)
        hits = torch.bincount(gid, weights=correct.double())
        present = torch.nonzero(size).flatten()
        accs = 100.0 * hits[present] / size[present].double()
        conf_names = confound_keys(preds.confound_names, preds.confound_column, n_conf)
        for g, acc in zip(present.tolist(), accs.tolist()):
            lab, conf = divmod(g, n_conf)
            name = preds.label_names[lab] if lab < len(preds.label_names) else str(lab)
            out[f"group/{name}/{conf_names[conf]}"] = acc
        out["worst_group"] = float(accs.min().item())
        masks = alignment(labels, confound, self.params.aligned)
        if masks is not None:
            for key, mask in zip(("aligned", "conflicting"), masks):
                if mask.any():
                    out[key] = 100.0 * correct[mask].double().mean().item()
            if "aligned" in out and "conflicting" in out:
                out["gap"] = out["aligned"] - out["conflicting"]
        return out
