import pytest
import torch

import registry
from registry.errors import UserError
from registry.metrics.cid import CID, pick_probes
from tests.registry._lib.fakes import FakeEncodedData, context, tiny_classifier

LABELS = [0, 0, 0, 1, 1, 1, 0]
CONFOUND = [0, 0, 1, 1, 1, 0, -1]  # the 7th example has an unknown confound: never a probe or candidate


def hand_cid(model, data, exclude_self):
    """Per-example gradients one by one, cosines and group means written out by hand."""
    grads = []
    for i in range(6):
        b = data.batch([i])
        loss = torch.nn.functional.cross_entropy(model(**b.model_inputs()).logits, b.labels)
        grads.append(torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss, list(model.parameters()))]))
    cos = [[float(grads[i] @ grads[j] / (grads[i].norm() * grads[j].norm())) for j in range(6)] for i in range(6)]
    diffs = []
    for p in range(6):
        a = [cos[p][j] for j in range(6) if LABELS[j] == LABELS[p] and CONFOUND[j] == CONFOUND[p] and not (exclude_self and j == p)]
        b = [cos[p][j] for j in range(6) if LABELS[j] == LABELS[p] and CONFOUND[j] != CONFOUND[p]]
        if a and b:
            diffs.append(sum(a) / len(a) - sum(b) / len(b))
    return sum(diffs) / len(diffs)


@pytest.mark.parametrize("route", ["gram", "vmap"])
@pytest.mark.parametrize("exclude_self", [False, True])
def test_cid_equals_a_hand_computed_value(route, exclude_self):
    model = tiny_classifier()
    data = FakeEncodedData(LABELS, CONFOUND, visible=[False] * 7)  # visibility does not matter to the metric
    metric = registry.build("metrics", "cid", {"probes": 40, "selection": "first", "route": route,
                                               "exclude_self": exclude_self, "chunk": 4})
    got = metric.compute_model(model.train(), context(model, data))
    assert model.training  # mode restored
    assert got["cid"] == pytest.approx(hand_cid(model.eval(), data, exclude_self), rel=1e-10, abs=1e-13)


def test_metadata_and_probe_selection():
    assert registry.get("metrics", "cid") is CID and CID.needs_model and CID.requires == ("confound",)
    confound = torch.tensor([-1, 0, 1, 0, -1, 1, 0, 1])
    assert pick_probes(confound, 3, "first", 0).tolist() == [1, 2, 3]
    drawn = pick_probes(confound, 3, "random", 7)
    assert torch.equal(drawn, pick_probes(confound, 3, "random", 7)) and (confound[drawn] >= 0).all()


def test_without_known_confounds_or_groups_it_is_a_user_error():
    model = tiny_classifier()
    metric = registry.build("metrics", "cid", {})
    with pytest.raises(UserError, match="metric 'cid': no training example has a known confound"):
        metric.compute_model(model, context(model, FakeEncodedData([0, 1], [-1, -1])))
    with pytest.raises(UserError, match="metric 'cid': no probe has"):
        metric.compute_model(model, context(model, FakeEncodedData([0, 1], [0, 1])))


def test_candidate_subset_is_seeded_and_bounded():
    model = tiny_classifier()
    data = FakeEncodedData([0, 1] * 10, [0, 0, 1, 1] * 5)
    ctx = context(model, data)
    a = registry.build("metrics", "cid", {"probes": 4, "candidates": 8}).compute_model(model, ctx)
    b = registry.build("metrics", "cid", {"probes": 4, "candidates": 8}).compute_model(model, ctx)
    full = registry.build("metrics", "cid", {"probes": 4}).compute_model(model, ctx)
    assert a == b and a["cid"] != full["cid"]
