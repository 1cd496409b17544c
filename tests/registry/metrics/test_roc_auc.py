import math

import pytest
import torch
from sklearn.metrics import roc_auc_score

from registry.errors import UserError
from registry.metrics.roc_auc import RocAuc
from registry.types import Predictions


def binary_logits(p1):
    p1 = torch.tensor(p1, dtype=torch.float64)
    return torch.stack([torch.zeros_like(p1), torch.log(p1 / (1 - p1))], dim=1)  # softmax[:, 1] == p1


def metric(**params):
    return RocAuc(RocAuc.Params(**params))


def test_binary_auc_by_hand():
    # positives score 0.9, 0.4; negatives 0.5, 0.4, 0.1
    # pairs (pos > neg): 0.9 beats all 3; 0.4 loses to 0.5, ties 0.4 (1/2), beats 0.1 -> 4.5 / 6
    logits = binary_logits([0.9, 0.4, 0.5, 0.4, 0.1])
    labels = torch.tensor([1, 1, 0, 0, 0])
    assert metric().compute(Predictions("test", logits, labels))["roc_auc"] == pytest.approx(0.75)


def test_multiclass_one_vs_rest_class_by_hand_and_macro_against_sklearn():
    probs = torch.tensor([[0.7, 0.2, 0.1], [0.2, 0.5, 0.3], [0.1, 0.3, 0.6], [0.3, 0.4, 0.3], [0.5, 0.1, 0.4], [0.25, 0.15, 0.6]], dtype=torch.float64)
    labels = torch.tensor([0, 1, 2, 1, 0, 1])
    p = Predictions("dev", probs.log(), labels)
    # class 1 scores: positives 0.5, 0.4, 0.15; negatives 0.2, 0.3, 0.1
    # 0.5 beats 3; 0.4 beats 3; 0.15 beats only 0.1 -> 7 / 9
    assert metric(positive_class=1).compute(p)["roc_auc"] == pytest.approx(7 / 9)
    for average in ("macro", "weighted"):
        scores = torch.softmax(p.logits, -1).numpy()  # the metric's own probabilities (same ties)
        expected = roc_auc_score(labels.numpy(), scores, multi_class="ovr", average=average)
        assert metric(average=average).compute(p)["roc_auc"] == pytest.approx(expected)


def test_undefined_auc_is_omitted_and_bad_class_is_user_error():
    p = Predictions("test", binary_logits([0.2, 0.7]), torch.tensor([1, 1]))
    assert metric().compute(p) == {}
    with pytest.raises(UserError, match="positive_class 2 is out of range for 2 labels"):
        metric(positive_class=2).compute(p)


def test_binary_default_equals_positive_class_one():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(40, 2, generator=g, dtype=torch.float64)
    labels = torch.randint(0, 2, (40,), generator=g)
    p = Predictions("test", logits, labels)
    expected = roc_auc_score(labels.numpy(), torch.softmax(logits, -1)[:, 1].numpy())
    assert math.isclose(metric().compute(p)["roc_auc"], expected, rel_tol=1e-12)
    assert metric(positive_class=1).compute(p) == metric().compute(p)


def test_class_one_and_macro_keys_three_classes_by_hand_and_against_sklearn():
    # no ties within a column (float rounding would decide them); NLI-style names: class 1 is "neutral"
    probs = torch.tensor([[0.7, 0.2, 0.1], [0.2, 0.5, 0.3], [0.1, 0.3, 0.6], [0.3, 0.45, 0.25], [0.4, 0.05, 0.55],
                          [0.22, 0.13, 0.65]], dtype=torch.float64)
    labels = torch.tensor([0, 1, 2, 1, 0, 1])
    p = Predictions("dev", probs.log(), labels, label_names=["entailment", "neutral", "contradiction"])
    out = metric().compute(p)
    # class 1: positives 0.5, 0.45, 0.13; negatives 0.2, 0.3, 0.05 -> 3 + 3 + 1 = 7 of 9 pairs
    assert out["roc_auc/neutral"] == pytest.approx(7 / 9)
    # class 0: positives 0.7, 0.4 beat all of 0.2, 0.1, 0.3, 0.22 -> 1; class 2: positive 0.6 beats
    # 0.1, 0.3, 0.25, 0.55, not 0.65 -> 4/5
    assert out["roc_auc/macro"] == pytest.approx((1.0 + 7 / 9 + 0.8) / 3)
    scores = torch.softmax(p.logits, -1).numpy()
    assert out["roc_auc/macro"] == pytest.approx(roc_auc_score(labels.numpy(), scores, multi_class="ovr", average="macro"))
    assert out["roc_auc/neutral"] == pytest.approx(roc_auc_score(labels.numpy() == 1, scores[:, 1]))
    assert out["roc_auc"] == pytest.approx(out["roc_auc/macro"])  # the existing key is unchanged
    weighted = metric(average="weighted").compute(p)
    assert weighted["roc_auc/macro"] == out["roc_auc/macro"] and weighted["roc_auc"] != out["roc_auc"]
    # positive_class names its own key; without label names the key is class_<i>
    chosen = metric(positive_class=2).compute(Predictions("dev", probs.log(), labels))
    assert chosen == {"roc_auc": pytest.approx(0.8), "roc_auc/class_2": pytest.approx(0.8),
                      "roc_auc/macro": pytest.approx(out["roc_auc/macro"])}


def test_binary_new_keys_coincide_with_roc_auc():
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(30, 2, generator=g, dtype=torch.float64)
    labels = torch.randint(0, 2, (30,), generator=g)
    out = metric().compute(Predictions("test", logits, labels, label_names=["short", "long"]))
    assert set(out) == {"roc_auc", "roc_auc/long", "roc_auc/macro"}
    assert out["roc_auc/long"] == out["roc_auc"] and out["roc_auc/macro"] == pytest.approx(out["roc_auc"], abs=1e-12)
