import torch

from registry import REGISTRY
from registry.metrics.class_accuracy import ClassAccuracy
from registry.types import Predictions


def test_accuracy_per_gold_class_by_hand():
    logits = torch.eye(3)[[0, 0, 1, 2, 2, 1, 0]]  # predictions 0 0 1 2 2 1 0
    labels = torch.tensor([0, 1, 1, 2, 2, 2, 0])  # class 0: 2/2, class 1: 1/2, class 2: 2/3
    out = ClassAccuracy().compute(Predictions("dev", logits, labels, label_names=["GetWeather", "PlayMusic", "Rate Book!"]))
    assert out == {"accuracy/GetWeather": 100.0, "accuracy/PlayMusic": 50.0, "accuracy/Rate_Book": 200.0 / 3}
    assert REGISTRY.get("metrics", "class_accuracy") is ClassAccuracy


def test_absent_classes_and_unnamed_labels():
    logits = torch.eye(4)[[3, 1]]
    out = ClassAccuracy().compute(Predictions("test", logits, torch.tensor([3, 3])))
    assert out == {"accuracy/3": 50.0}  # no names: the index; classes 0-2 absent: left out
    assert ClassAccuracy().compute(Predictions("test", torch.zeros(0, 2), torch.zeros(0, dtype=torch.long))) == {}
