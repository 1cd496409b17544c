"""hans_accuracy: per heuristic x gold label accuracy, hand-computed."""
from __future__ import annotations

import pytest
import torch

from registry.metrics.hans_accuracy import HansAccuracy
from registry.types import Predictions


def _preds(meta: dict) -> Predictions:
    # predicted class = argmax: 0 0 1 1 0 1 0 1
    logits = torch.tensor([[2.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 3.0], [5.0, 1.0], [0.0, 2.0], [1.0, 0.0], [0.0, 1.0]])
    labels = torch.tensor([0, 0, 0, 1, 1, 1, 0, 1])
    return Predictions(split="hans", logits=logits, labels=labels, meta=meta, label_names=["entailment", "non-entailment"])


def test_cells_hand_computed():
    heur = ["lexical_overlap"] * 3 + ["lexical_overlap"] * 2 + ["subsequence", "constituent", "constituent"]
    out = HansAccuracy().compute(_preds({"heuristic": heur}))
    assert out == {
        "lexical_overlap/entailment": pytest.approx(100 * 2 / 3),   # rows 0, 1 right, 2 wrong
        "constituent/entailment": 100.0,             # row 6
        "all/entailment": 75.0,                      # rows 0, 1, 6 of 0, 1, 2, 6
        "lexical_overlap/non-entailment": 50.0,      # row 3 right, 4 wrong
        "subsequence/non-entailment": 100.0,         # row 5
        "constituent/non-entailment": 100.0,         # row 7
        "all/non-entailment": 75.0,
    }
    assert list(out)[:2] == ["lexical_overlap/entailment", "constituent/entailment"]  # paper order LO, SUB, CON


def test_empty_without_heuristic_column():
    assert HansAccuracy().compute(_preds({})) == {}
