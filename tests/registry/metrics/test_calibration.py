import math

import pytest
import torch

from registry.metrics.calibration import Calibration, reliability_diagram
from registry.types import Predictions


def binary_logits(p1):
    p1 = torch.tensor(p1, dtype=torch.float64)
    return torch.stack([torch.zeros_like(p1), torch.log(p1 / (1 - p1))], dim=1)


def test_ece_nll_brier_by_hand():
    # confidences 0.9, 0.75, 0.7, 0.55; predictions 1, 1, 0, 1; correct: yes, no, yes, no
    logits = binary_logits([0.9, 0.75, 0.3, 0.55])
    labels = torch.tensor([1, 0, 0, 0])
    out = Calibration(Calibration.Params(bins=5)).compute(Predictions("test", logits, labels))
    # bins (0.8,1]: {0.9 ok} gap 0.1; (0.6,0.8]: {0.75 no, 0.7 ok} acc 0.5, conf 0.725; (0.4,0.6]: {0.55 no}
    ece = 0.25 * 0.1 + 0.5 * 0.225 + 0.25 * 0.55
    assert out["ece"] == pytest.approx(100 * ece)
    p_gold = [0.9, 0.25, 0.7, 0.45]
    assert out["nll"] == pytest.approx(-sum(math.log(p) for p in p_gold) / 4)
    assert out["brier"] == pytest.approx(sum(2 * (1 - p) ** 2 for p in p_gold) / 4)


def test_reliability_diagram_bins_and_edges():
    # confidence 0.5 exactly (tie) sits in (0.4, 0.6]; 1.0 in the last bin
    logits = torch.tensor([[0.0, 0.0], [0.0, 100.0], [3.0, 0.0]], dtype=torch.float64)
    labels = torch.tensor([1, 1, 1])
    d = reliability_diagram(logits, labels, bins=5)
    assert d["count"] == [0.0, 0.0, 1.0, 0.0, 2.0]
    assert d["lower"] == pytest.approx([0.0, 0.2, 0.4, 0.6, 0.8])
    assert d["upper"][-1] == 1.0
    assert d["accuracy"][2] == 0.0  # arg-max of a tie is class 0
    assert d["accuracy"][4] == 0.5
    assert math.isnan(d["confidence"][0])


def test_ece_matches_naive_loop():
    g = torch.Generator().manual_seed(3)
    logits = 2 * torch.randn(200, 4, generator=g, dtype=torch.float64)
    labels = torch.randint(0, 4, (200,), generator=g)
    bins = 15
    probs = torch.softmax(logits, -1)
    total = 0.0
    for b in range(bins):
        lo, hi = b / bins, (b + 1) / bins
        members = [i for i in range(200) if lo < probs[i].max() <= hi]
        if members:
            acc = sum(int(probs[i].argmax() == labels[i]) for i in members) / len(members)
            conf = sum(float(probs[i].max()) for i in members) / len(members)
            total += len(members) / 200 * abs(acc - conf)
    out = Calibration().compute(Predictions("dev", logits, labels))
    assert out["ece"] == pytest.approx(100 * total, rel=1e-12)
    assert sum(Calibration().diagram(Predictions("dev", logits, labels))["count"]) == 200
