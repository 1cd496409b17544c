"""HILDIF's SELECT ANCHORS: misclassified, random or by id, seeded."""
import pytest
import torch

from registry._lib.anchors import predicted_labels, select_anchors
from registry.errors import UserError
from tests.registry._lib.fakes import FakeEncodedData, tiny_classifier


def data(n: int = 24) -> FakeEncodedData:
    d = FakeEncodedData([i % 2 for i in range(n)], [0] * n, seed=3)
    d.ids = [f"ex-{i}" for i in range(n)]
    d.name = "dev"
    return d


def test_misclassified_anchors_are_wrong_predictions_and_seeded():
    model, d = tiny_classifier(seed=1), data()
    pred = predicted_labels(model, d, batch_size=5)
    wrong = set(torch.nonzero(pred != d.labels).flatten().tolist())
    assert 2 <= len(wrong) < len(d)  # the check below means something
    rows, p = select_anchors(model, d, how="misclassified", n=2, ids=None, generator=torch.Generator().manual_seed(0))
    assert len(rows) == 2 and set(rows.tolist()) <= wrong
    assert torch.equal(p, pred[rows]) and bool((p != d.labels[rows]).all())
    again, _ = select_anchors(model, d, how="misclassified", n=2, ids=None, generator=torch.Generator().manual_seed(0))
    assert torch.equal(rows, again)
    every, _ = select_anchors(model, d, how="misclassified", n=100, ids=None, generator=torch.Generator().manual_seed(0))
    assert set(every.tolist()) == wrong  # n larger than the pool: all of it


def test_predictions_do_not_depend_on_the_batching():
    model, d = tiny_classifier(seed=1), data()
    assert torch.equal(predicted_labels(model, d, batch_size=3), predicted_labels(model, d, batch_size=64))


def test_anchors_by_id_keep_their_order_and_unknown_ids_are_named():
    model, d = tiny_classifier(seed=1), data()
    rows, _ = select_anchors(model, d, how="ids", n=5, ids=["ex-7", "ex-2"], generator=torch.Generator())
    assert rows.tolist() == [7, 2]
    with pytest.raises(UserError, match=r"anchor ids not in split 'dev': ex-99; .*keep_ids"):
        select_anchors(model, d, how="ids", n=5, ids=["ex-2", "ex-99"], generator=torch.Generator())


def test_no_misclassified_example_is_a_clear_error():
    model, d = tiny_classifier(seed=1), data()
    d.labels = predicted_labels(model, d)
    with pytest.raises(UserError, match="no misclassified example in split 'dev'"):
        select_anchors(model, d, how="misclassified", n=2, ids=None, generator=torch.Generator())


def test_mistakes_between_groups_ignore_swaps_inside_a_group():
    """With classes grouped as the paper's two-class MNLI ({0}, {1, 2}), a 1 <-> 2 confusion is
    no mistake; a mistake across the groups is."""
    model = tiny_classifier(seed=1, num_labels=3)
    d = FakeEncodedData([i % 3 for i in range(30)], [0] * 30, seed=3)
    d.ids, d.name = [f"ex-{i}" for i in range(30)], "dev"
    pred = predicted_labels(model, d)
    group = torch.tensor([0, 1, 1])
    across = set(torch.nonzero(group[pred] != group[d.labels]).flatten().tolist())
    inside = set(torch.nonzero((pred != d.labels) & (group[pred] == group[d.labels])).flatten().tolist())
    assert across and inside  # both kinds occur, so the check below means something
    rows, p = select_anchors(model, d, how="misclassified", n=100, ids=None, generator=torch.Generator().manual_seed(0),
                             group_of=[0, 1, 1])
    assert set(rows.tolist()) == across
