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
