import math

import pytest
import torch
from torch import nn

from recipe_engine.errors import UserError
from recipe_engine.evaluate import aggregate_seeds, evaluate_predictions, predict, predictions
from recipe_engine.table import format_table, results_table
from registry.base import Metric
from registry.metrics.accuracy import Accuracy
from registry.metrics.group_accuracy import GroupAccuracy
from registry.types import Batch, ClassifierOutput, Predictions


class BagModel(nn.Module):
    """Logits = embedding bag of the token ids, through dropout (so eval mode matters)."""

    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(10, 2)
        self.drop = nn.Dropout(0.5)

    def forward(self, input_ids, attention_mask, token_type_ids=None):
        pooled = (self.emb(input_ids) * attention_mask[..., None]).sum(1)
        return ClassifierOutput(logits=self.drop(pooled), pooled=pooled)


class ReversedData:
    """Yields batches last-to-first, to check that rows are placed by ``batch.index``."""

    def __init__(self, n=7):
        g = torch.Generator().manual_seed(0)
        self.input_ids = torch.randint(0, 10, (n, 4), generator=g)
        self.labels = torch.randint(0, 2, (n,), generator=g)
        self.confound = torch.tensor([0, 1, -1, 1, 0, 0, 1])[:n]

    def loader(self, batch_size, shuffle=False):
        assert not shuffle
        starts = list(range(0, len(self.labels), batch_size))[::-1]
        for s in starts:
            idx = torch.arange(s, min(s + batch_size, len(self.labels)))
            yield Batch(self.input_ids[idx], torch.ones(len(idx), 4), self.labels[idx], idx)


def test_predict_in_eval_mode_in_order_without_grad():
    torch.manual_seed(0)
    model, data = BagModel().train(), ReversedData()
    model.emb.eval()  # a submodule kept in eval mode stays so
    logits = predict(model, data, batch_size=3, device="cpu")
    expected = model.emb(data.input_ids).sum(1)  # dropout off
    torch.testing.assert_close(logits, expected.detach())
    assert not logits.requires_grad and model.training and model.drop.training and not model.emb.training
    half = predict(model, data, batch_size=3, device="cpu", autocast_dtype=torch.bfloat16)
    assert half.dtype == torch.float32
    torch.testing.assert_close(half, expected.detach(), atol=0.05, rtol=0.05)


def test_predictions_and_prefixed_metrics():
    model, data = BagModel(), ReversedData()
    preds = predictions(model, data, "test", batch_size=4, device="cpu", label_names=["short", "long"])
    assert preds.split == "test" and preds.label_names == ["short", "long"]
    assert torch.equal(preds.labels, data.labels) and torch.equal(preds.confound, data.confound)
    out = evaluate_predictions(preds, [Accuracy(), GroupAccuracy()])
    correct = (preds.logits.argmax(-1) == data.labels).double()
    assert out["test/accuracy"] == pytest.approx(100 * correct.mean().item())
    assert "test/worst_group" in out and all(k.startswith("test/") for k in out)


def test_group_keys_name_the_confound_values_of_the_data():
    model, data = BagModel(), ReversedData()
    data.confound_names, data.confound_column = ["Negative.", "Positive."], "prefix"  # as an EncodedSplit has them
    preds = predictions(model, data, "test", batch_size=4, device="cpu", label_names=["short", "long"])
    assert (preds.confound_names, preds.confound_column) == (["Negative.", "Positive."], "prefix")
    groups = {k for k in evaluate_predictions(preds, [GroupAccuracy()]) if "/group/" in k}
    assert groups and all(k.split("/")[-1] in ("prefix=Negative", "prefix=Positive") for k in groups)
    given = predictions(model, data, "test", batch_size=4, device="cpu", confound_names=["a", "b"], confound_column="c")
    assert (given.confound_names, given.confound_column) == (["a", "b"], "c")


def test_duplicate_keys_are_an_error_and_model_metrics_skipped():
    class ModelLevel(Metric):
        name = "cid"
        needs_model = True

    preds = Predictions("dev", torch.eye(2), torch.tensor([0, 1]))
    assert evaluate_predictions(preds, [Accuracy(), ModelLevel()]) == {"dev/accuracy": 100.0}
    with pytest.raises(UserError, match="both report 'dev/accuracy'"):
        evaluate_predictions(preds, [Accuracy(), Accuracy()])


def test_aggregate_seeds_sample_sd():
    agg = aggregate_seeds({2: {"test/accuracy": 2.0}, 1: {"test/accuracy": 1.0, "dev/nll": 0.5}, 4: {"test/accuracy": 4.0}})
    acc = agg["test/accuracy"]
    assert acc["mean"] == pytest.approx(7 / 3)
    assert acc["sd"] == pytest.approx(math.sqrt(7 / 3))  # ddof=1: (16/9 + 1/9 + 25/9) / 2
    assert acc["n"] == 3 and list(acc["values"].items()) == [(1, 1.0), (2, 2.0), (4, 4.0)]
    assert agg["dev/nll"] == {"mean": 0.5, "sd": 0.0, "n": 1, "values": {1: 0.5}}
    assert list(agg) == ["test/accuracy", "dev/nll"]  # test split first


def test_format_table_aligns_columns():
    out = format_table([["accuracy", "81.00"], ["gap", "5.5"]], ["metric", "value"])
    assert out.splitlines() == ["metric    value", "--------  -----", "accuracy  81.00", "gap         5.5"]
    with pytest.raises(ValueError):
        format_table([["a"]], ["x", "y"])


def test_results_table_groups_by_split():
    agg = aggregate_seeds({
        1: {"dev/accuracy": 70.0, "test/gap": 10.0, "test/accuracy": 80.0, "test/aligned": 90.0, "test/group/long/1": 99.0},
        2: {"dev/accuracy": 72.0, "test/gap": 12.0, "test/accuracy": 82.0, "test/aligned": 91.0, "test/group/long/1": 97.0},
    })
    lines = results_table(agg).splitlines()
    assert lines[0].split() == ["split", "metric", "mean", "±", "sd", "n"]
    assert [line.split()[0] for line in lines[2:]] == ["test", "aligned", "gap", "group/long/1", "dev"]
    assert lines[2].split() == ["test", "accuracy", "81.00", "±", "1.41", "2"]
    only = results_table(agg, keys=["accuracy"]).splitlines()
    assert len(only) == 4 and "dev" in only[3]


class FixedLogits(nn.Module):
    """Logits looked up per token id 0..3 (first token), 3 classes."""

    table = torch.tensor([[2.0, 1.0, 0.5], [0.0, 1.0, 1.5], [1.0, 0.9, 0.9], [-1.0, 3.0, -2.0]])

    def forward(self, input_ids, attention_mask, token_type_ids=None):
        logits = self.table[input_ids[:, 0]]
        return ClassifierOutput(logits=logits, pooled=logits)


class GroupedData(ReversedData):
    """Four rows scored entailment (0) vs non-entailment (1 = neutral + contradiction), HANS-style."""

    label_groups = [[0], [1, 2]]
    label_names = ["entailment", "non-entailment"]
    meta = {"heuristic": ["lexical_overlap", "lexical_overlap", "subsequence", "constituent"]}

    def __init__(self):
        self.input_ids = torch.arange(4)[:, None].repeat(1, 4)
        self.labels = torch.tensor([0, 1, 0, 1])
        self.confound = None


def test_label_groups_collapse_to_group_log_probabilities():
    from registry.metrics.calibration import Calibration
    from registry.metrics.hans_accuracy import HansAccuracy
    from registry.metrics.roc_auc import RocAuc

    data = GroupedData()
    preds = predictions(FixedLogits(), data, "hans", batch_size=3, device="cpu",
                        label_names=["entailment", "neutral", "contradiction"])
    p3 = FixedLogits.table.double().softmax(-1)
    expected = torch.stack([p3[:, 0], p3[:, 1] + p3[:, 2]], dim=-1)
    assert preds.logits.shape == (4, 2) and preds.label_groups == [[0], [1, 2]]
    torch.testing.assert_close(preds.logits.double().exp(), expected, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(preds.logits.softmax(-1).double(), expected, rtol=1e-6, atol=1e-6)
    assert preds.label_names == ["entailment", "non-entailment"]
    # row 2: 3-way argmax is entailment (1.0 > 0.9) but P(non-entailment) = 0.62 wins after the collapse
    assert preds.logits.argmax(-1).tolist() == [0, 1, 1, 1]
    out = evaluate_predictions(preds, [Accuracy(), RocAuc(), Calibration(), HansAccuracy()])
    assert out["hans/accuracy"] == 75.0
    assert out["hans/lexical_overlap/entailment"] == 100.0 and out["hans/subsequence/entailment"] == 0.0
    assert out["hans/constituent/non-entailment"] == 100.0
    assert any(k.startswith("hans/roc_auc") for k in out) and any("ece" in k for k in out)
