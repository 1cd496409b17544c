"""``calibration``: expected calibration error, negative log-likelihood and Brier score."""
from __future__ import annotations

import torch
from pydantic import Field

from registry import StrictParams, register
from registry.base import Metric
from registry.types import Predictions


def _bin_stats(logits: torch.Tensor, labels: torch.Tensor, bins: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per equal-width confidence bin, in float64: (count, sum of confidences, number correct).

    The confidence of an example is its largest softmax probability; bin ``b`` holds the
    confidences in ``(b/bins, (b+1)/bins]`` (the first bin also holds 0).
    """
    probs = torch.softmax(logits.detach().double().cpu(), dim=-1)
    conf, pred = probs.max(dim=-1)
    correct = pred.eq(labels.detach().long().cpu()).double()
    inner_edges = torch.arange(1, bins, dtype=torch.float64) / bins
    idx = torch.bucketize(conf, inner_edges, right=False)  # edges[b-1] < conf <= edges[b]
    count = torch.bincount(idx, minlength=bins).double()
    return count, torch.bincount(idx, weights=conf, minlength=bins), torch.bincount(idx, weights=correct, minlength=bins)


def reliability_diagram(logits: torch.Tensor, labels: torch.Tensor, bins: int = 15) -> dict[str, list[float]]:
    """Reliability-diagram data (Guo et al. 2017, Sec. 2, Fig. 1) over ``bins`` equal-width bins.

    Lists of length ``bins``: ``lower``, ``upper`` (bin edges), ``confidence`` (mean
    confidence) and ``accuracy`` (share correct), both as fractions 0-1 and NaN for an empty
    bin, and ``count``.
    """
    count, conf_sum, hit_sum = _bin_stats(logits, labels, bins)
    edges = torch.arange(0, bins + 1, dtype=torch.float64) / bins
    return {
        "lower": edges[:-1].tolist(),
        "upper": edges[1:].tolist(),
        "confidence": (conf_sum / count).tolist(),  # 0/0 -> NaN for empty bins
        "accuracy": (hit_sum / count).tolist(),
        "count": count.tolist(),
    }


def expected_calibration_error(logits: torch.Tensor, labels: torch.Tensor, bins: int = 15) -> float:
    """ECE in percent (Guo et al. 2017, Eq. 3): 100 * sum_b |B_b|/n * |acc(B_b) - conf(B_b)|,
    computed as 100/n * sum_b |correct_b - confidence_sum_b|."""
    count, conf_sum, hit_sum = _bin_stats(logits, labels, bins)
    n = count.sum()
    if n == 0:
        return float("nan")
    return 100.0 * float((hit_sum - conf_sum).abs().sum() / n)


def nll_and_brier(logits: torch.Tensor, labels: torch.Tensor) -> tuple[float, float]:
    """Mean negative log-likelihood (nats) and multi-class Brier score (Brier 1950):
    mean_i sum_c (p_ic - [y_i == c])^2, in 0..2."""
    logp = torch.log_softmax(logits.detach().double().cpu(), dim=-1)
    y = labels.detach().long().cpu()
    nll = -logp.gather(1, y[:, None]).mean()
    onehot = torch.nn.functional.one_hot(y, logp.shape[-1]).double()
    brier = (logp.exp() - onehot).pow(2).sum(-1).mean()
    return float(nll), float(brier)


@register("metric", "calibration")
class Calibration(Metric):
    summary = "Expected calibration error (percent, equal-width confidence bins), NLL (nats) and Brier score."
    paper = "Guo et al. 2017, On Calibration of Modern Neural Networks, Eq. 3; used by Weaver (IG variance), Fig. 10"
    equation = "ECE = 100 * sum_b |B_b|/n |acc(B_b) - conf(B_b)|; nll = -mean log p_y; brier = mean sum_c (p_c - y_c)^2"

    class Params(StrictParams):
        bins: int = Field(15, ge=1, description="number of equal-width confidence bins over [0, 1] for ECE")

    def compute(self, preds: Predictions) -> dict[str, float]:
        if preds.labels.numel() == 0:
            return {}
        nll, brier = nll_and_brier(preds.logits, preds.labels)
        return {"ece": expected_calibration_error(preds.logits, preds.labels, self.params.bins), "nll": nll, "brier": brier}

    def diagram(self, preds: Predictions) -> dict[str, list[float]]:
        """Reliability-diagram data of ``preds`` with this metric's bins."""
        return reliability_diagram(preds.logits, preds.labels, self.params.bins)
