"""Evaluation: logits of a model on a split, prediction-level metrics, and mean ± sd over seeds
(the run's summary files are written by ``recipe_engine.runs``)."""
from __future__ import annotations

import contextlib
import math
import statistics
from typing import Any, Iterable, Mapping, Protocol, Sequence

import torch
from torch import nn

from recipe_engine.errors import UserError
from recipe_engine.table import order_keys
from registry._lib.per_example import eval_mode
from registry._lib.ranks import Ranks
from registry.base import Metric
from registry.types import Batch, Classifier, EncodedData, Predictions


class EvalData(Protocol):
    """A tokenized split that can be read in order."""

    labels: torch.Tensor
    confound: torch.Tensor | None

    def loader(self, batch_size: int, shuffle: bool = False) -> Iterable[Batch]: ...


def _logits(output: Any) -> torch.Tensor:
    return output if isinstance(output, torch.Tensor) else output.logits


def predict(
    model: nn.Module,
    data: EvalData,
    batch_size: int,
    device: torch.device | str,
    autocast_dtype: torch.dtype | None = None,
    ranks: Ranks | None = None,
) -> torch.Tensor:
    """Logits ``(N, C)`` on the CPU, row ``i`` for example ``i`` of ``data`` (placed by
    ``batch.index``), computed in eval mode without gradients; half-precision autocast
    logits come back as float32.

    ``ranks`` of a multi-process run: each rank predicts its contiguous share of the examples
    (``data.batch`` of them, ``batch_size`` at a time) and every rank gets all the logits."""
    device = torch.device(device)
    if ranks is not None and ranks.split:
        return _predict_shared(model, data, batch_size, device, autocast_dtype, ranks)
    n = len(data.labels)
    out: torch.Tensor | None = None
    seen = torch.zeros(n, dtype=torch.bool)
    autocast = (
        torch.autocast(device_type=device.type, dtype=autocast_dtype)
        if autocast_dtype is not None
        else contextlib.nullcontext()
    )
    with eval_mode(model), torch.no_grad(), autocast:
        for batch in data.loader(batch_size, shuffle=False):
            batch = batch.to(device)
            logits = _logits(model(**batch.model_inputs())).detach()
            if logits.dtype in (torch.float16, torch.bfloat16):
                logits = logits.float()
            if out is None:
                out = torch.empty((n, logits.shape[-1]), dtype=logits.dtype)
            index = batch.index.cpu()
            out[index] = logits.cpu()
            seen[index] = True
    if out is None or not bool(seen.all()):
        missing = n if out is None else int((~seen).sum())
        raise RuntimeError(f"predict: the loader skipped {missing} of {n} examples")
    return out


def _predict_shared(model: nn.Module, data: Any, batch_size: int, device: torch.device,
                    autocast_dtype: torch.dtype | None, ranks: Ranks) -> torch.Tensor:
    """``predict`` over this rank's share, gathered (see ``predict``)."""
    n = len(data.labels)
    mine = ranks.part(torch.arange(n))
    autocast = (torch.autocast(device_type=device.type, dtype=autocast_dtype) if autocast_dtype is not None
                else contextlib.nullcontext())
    width, dtype = model.head.out_features, model.head.weight.dtype
    dtype = torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype
    rows, index = [torch.zeros((0, width), dtype=dtype, device=device)], [torch.zeros(0, dtype=torch.long, device=device)]
    with eval_mode(model), torch.no_grad(), autocast:
        for chunk in mine.split(batch_size):
            batch = data.batch(chunk).to(device)
            rows.append(_logits(model(**batch.model_inputs())).detach().to(dtype))
            index.append(batch.index.to(device).long())
    logits, index = ranks.gather(torch.cat(rows)).cpu(), ranks.gather(torch.cat(index)).cpu()
    out = torch.empty((n, width), dtype=logits.dtype)
    out[index] = logits
    if index.numel() != n or index.unique().numel() != n:
        raise RuntimeError(f"predict: the ranks predicted {index.unique().numel()} of {n} examples")
    return out


def predictions(
    model: nn.Module,
    data: EvalData,
    split: str,
    batch_size: int,
    device: torch.device | str,
    label_names: list[str] | None = None,
    autocast_dtype: torch.dtype | None = None,
    meta: dict[str, list[Any]] | None = None,
    confound_names: list[str] | None = None,
    confound_column: str | None = None,
    ranks: Ranks | None = None,
) -> Predictions:
    """``predict`` plus the split's labels, confound (``None`` if absent) and meta columns.

    ``meta``, ``confound_names`` and ``confound_column`` default to those of ``data`` (an
    ``EncodedSplit`` has them from its split).  A split with ``label_groups`` (HANS: entailment
    vs neutral + contradiction) is scored on its own classes: the logits become the groups'
    log-probabilities, ``logsumexp`` of the model's log-softmax over each group (so softmax of
    them is the summed, still calibrated, probability), and the label names are the split's."""
    logits = predict(model, data, batch_size, device, autocast_dtype, ranks)
    groups = getattr(data, "label_groups", None)
    if groups:
        logp = torch.log_softmax(logits.double(), dim=-1)
        logits = torch.stack([torch.logsumexp(logp[:, g], dim=-1) for g in groups], dim=-1).to(logits.dtype)
        label_names = getattr(data, "label_names", None) or [str(k) for k in range(len(groups))]
    confound = getattr(data, "confound", None)
    if confound_names is None:
        confound_names = getattr(data, "confound_names", None)
    return Predictions(
        split=split,
        logits=logits,
        labels=data.labels.detach().cpu().long(),
        confound=None if confound is None else confound.detach().cpu().long(),
        meta=dict(meta if meta is not None else getattr(data, "meta", {}) or {}),
        label_names=list(label_names or []),
        confound_names=list(confound_names or []),
        confound_column=confound_column if confound_column is not None else getattr(data, "confound_column", None),
        label_groups=[list(g) for g in groups] if groups else None,
    )


def evaluate_predictions(preds: Predictions, metrics: Iterable[Metric]) -> dict[str, float]:
    """Every prediction-level metric on ``preds`` as ``{"<split>/<key>": value}``.

    Model-level metrics (``needs_model``) are skipped: the caller runs ``compute_model``.
    Two metrics reporting the same key is an error.
    """
    out: dict[str, float] = {}
    owner: dict[str, str] = {}
    for metric in metrics:
        if metric.needs_model:
            continue
        for key, value in metric.compute(preds).items():
            full = f"{preds.split}/{key}"
            if full in out:
                raise UserError(
                    f"metrics {owner[full]!r} and {metric.name!r} both report {full!r}; "
                    "remove one of them from evaluation.metrics"
                )
            out[full], owner[full] = float(value), metric.name
    return out


def evaluate_split_metrics(model: Classifier, data: EncodedData, split: str, metrics: Sequence[Metric],
                           device: torch.device | str, taken: Mapping[str, Any] | None = None) -> dict[str, float]:
    """The per-split model-level metrics (``needs_model`` and ``per_split``) on one evaluation
    split, in eval mode, as ``{"<split>/<key>": value}``; other metrics are skipped.

    A key that another metric reports (among these, or in ``taken``) is an error."""
    out: dict[str, float] = {}
    owner: dict[str, str] = {}
    with eval_mode(model):
        for metric in metrics:
            if not (metric.needs_model and metric.per_split):
                continue
            for key, value in metric.compute_split(model, data, torch.device(device)).items():
                full = f"{split}/{key}"
                if full in out or full in (taken or {}):
                    other = owner.get(full, "another metric")
                    raise UserError(f"metrics {other!r} and {metric.name!r} both report {full!r}; "
                                    "remove one of them from evaluation.metrics")
                out[full], owner[full] = float(value), metric.name
    return out


def aggregate_seeds(per_seed: Mapping[int, Mapping[str, float]]) -> dict[str, dict[str, Any]]:
    """``{key: {"mean", "sd", "n", "values": {seed: value}}}`` over the seeds that report ``key``.

    ``sd`` is the sample standard deviation (ddof = 1), 0.0 for a single seed (NaN if its
    value is NaN).  Keys come in
    ``order_keys`` order, seeds ascending.
    """
    values: dict[str, dict[int, float]] = {}
    for seed in sorted(per_seed):
        for key, v in per_seed[seed].items():
            values.setdefault(key, {})[seed] = float(v)
    result = {}
    for key in order_keys(values):
        vals = list(values[key].values())
        result[key] = {
            "mean": statistics.fmean(vals),
            "sd": statistics.stdev(vals) if len(vals) > 1 else (0.0 if math.isfinite(vals[0]) else math.nan),
            "n": len(vals),
            "values": values[key],
        }
    return result
