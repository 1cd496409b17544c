import pytest
import torch

from registry.errors import UserError
from registry.metrics.group_accuracy import GroupAccuracy, confound_keys
from registry.types import Predictions

LABELS = [0, 0, 0, 1, 1, 1, 1, 1, 0]
CONFOUND = [0, 0, 1, 1, 1, 0, 0, -1, -1]
PRED = [0, 1, 1, 1, 1, 0, 1, 0, 0]


def preds(labels=LABELS, confound=CONFOUND, pred=PRED, names=("short", "long")):
    logits = torch.nn.functional.one_hot(torch.tensor(pred), 2).float()
    return Predictions("test", logits, torch.tensor(labels), torch.tensor(confound), label_names=list(names))


def metric(**params):
    return GroupAccuracy(GroupAccuracy.Params(**params))


def test_groups_worst_aligned_conflicting_gap_by_hand():
    out = metric().compute(preds())
    # known rows 0..6; (short,0): [ok, no]; (short,1): [no]; (long,1): [ok, ok]; (long,0): [no, ok]
    assert out["group/short/0"] == 50.0
    assert out["group/short/1"] == 0.0
    assert out["group/long/1"] == 100.0
    assert out["group/long/0"] == 50.0
    assert out["worst_group"] == 0.0
    assert out["aligned"] == 75.0  # rows 0, 1, 3, 4
    assert out["conflicting"] == pytest.approx(100.0 / 3)  # rows 2, 5, 6
    assert out["gap"] == pytest.approx(75.0 - 100.0 / 3)
    assert len(out) == 8


def test_empty_group_is_omitted():
    keep = [0, 1, 3, 4, 5, 6]
    out = metric().compute(preds([LABELS[i] for i in keep], [CONFOUND[i] for i in keep], [PRED[i] for i in keep]))
    assert "group/short/1" not in out
    assert out["worst_group"] == 50.0
    assert out["conflicting"] == 50.0


def test_unknown_confound_only_reports_nothing():
    assert metric().compute(preds([0, 1], [-1, -1], [0, 0])) == {}


def test_mapping_alignment_and_none():
    out = metric(aligned={1: 0}).compute(preds())
    assert out["aligned"] == 50.0  # label 1 with confound 0: rows 5, 6
    assert out["conflicting"] == 100.0  # label 1 with confound 1: rows 3, 4; label 0 unlisted
    assert out["gap"] == -50.0
    out = metric(aligned="none").compute(preds())
    assert not {"aligned", "conflicting", "gap"} & set(out)
    assert out["worst_group"] == 0.0


def test_label_index_when_no_names():
    out = metric().compute(preds(names=()))
    assert out["group/1/0"] == 50.0


def test_missing_confound_column_is_a_user_error():
    p = Predictions("dev", torch.eye(2), torch.tensor([0, 1]))
    with pytest.raises(UserError, match="split 'dev' has no confound column"):
        metric().compute(p)


def test_named_confound_values_in_keys():
    p = preds()
    p.confound_names, p.confound_column = ["Negative.", "Positive."], "prefix"
    out = metric().compute(p)
    assert {k for k in out if k.startswith("group/")} == {
        "group/short/prefix=Negative", "group/short/prefix=Positive", "group/long/prefix=Negative", "group/long/prefix=Positive"}
    assert out["group/short/prefix=Negative"] == 50.0 and out["group/long/prefix=Positive"] == 100.0
    assert {k: v for k, v in out.items() if not k.startswith("group/")} == {
        k: v for k, v in metric().compute(preds()).items() if not k.startswith("group/")}


@pytest.mark.parametrize("names, column, expected", [
    (["no", "yes"], None, ["confound=no", "confound=yes"]),  # a dataset that names values but not the confound
    (["the before a", "a/b"], "surface feature", ["surface_feature=the_before_a", "surface_feature=a_b"]),
    ([], "prefix", ["0", "1"]),  # names unknown: the index
    (["+", "-"], "sign", ["0", "1"]),  # nothing left of the names
    (["x.", "x"], "c", ["0", "1"]),  # names that would clash
    (["only"], "c", ["0", "1"]),  # fewer names than values
])
def test_confound_keys(names, column, expected):
    assert confound_keys(names, column, 2) == expected
