import math

import torch

from registry import REGISTRY
from registry.metrics.accuracy import Accuracy
from registry.types import Predictions


def test_accuracy_percent_on_hand_case():
    logits = torch.tensor([[2.0, 1.0], [0.0, 3.0], [1.0, 0.5], [0.2, 0.1], [-1.0, 1.0]])
    labels = torch.tensor([0, 1, 1, 0, 0])  # correct: yes, yes, no, yes, no
    out = Accuracy().compute(Predictions("test", logits, labels))
    assert out == {"accuracy": 60.0}


def test_accuracy_multiclass_and_registered():
    logits = torch.eye(3)[[0, 1, 2, 2]]
    labels = torch.tensor([0, 1, 2, 1])
    assert math.isclose(Accuracy().compute(Predictions("dev", logits, labels))["accuracy"], 75.0)
    assert REGISTRY.get("metrics", "accuracy") is Accuracy


def test_accuracy_empty_split_reports_nothing():
    assert Accuracy().compute(Predictions("test", torch.zeros(0, 2), torch.zeros(0, dtype=torch.long))) == {}
