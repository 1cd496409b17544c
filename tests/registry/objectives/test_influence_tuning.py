import math

import pytest
import torch

import registry
from registry._lib.influence import influence_loop
from registry._lib.param_sets import select_parameters
from registry.errors import UserError
from registry.objectives.influence_tuning import InfluenceTuning
from tests.registry._lib.fakes import FakeEncodedData, balanced_data, context, tiny_classifier


def bound(params=None, data=None, model=None, seed=0):
    model = model or tiny_classifier()
    data = data or balanced_data(4)
    obj = registry.build("objectives", "influence_tuning", params or {"probes": 6, "k": 2, "probe_batch": 4})
    obj.bind(context(model, data, seed))
    return obj, model, data


def grads(model):
    return torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1) for p in model.parameters()])


def test_registered_with_metadata():
    cls = registry.get("objectives", "influence_tuning")
    assert cls is InfluenceTuning and cls.requires == ("confound",) and cls.train_mode is False
    assert "App. B" in cls.paper and cls.summary
    p = cls.Params()
    assert (p.probes, p.k, p.probe_batch, p.parameters, p.exclude_self, p.route) == (75, 5, 64, "all", False, "gram")


def test_rounds_batches_and_rows():
    obj, _, data = bound()
    assert obj.steps_per_epoch() == 2
    assert registry.build("objectives", "influence_tuning", {"probes": 75, "probe_batch": 64}).steps_per_epoch() == 2
    obj.start_round()
    batches = list(obj.batches(0))
    assert [len(b) for b in batches] == [4, 2]
    probes = torch.cat([b.index for b in batches])
    assert probes.unique().numel() == 6
    rows, skipped = obj.sample_rows(batches[0])
    assert skipped == 0 and rows.shape == (4, 5)
    for r in rows:
        p, a, b = r[0], r[1:3], r[3:]
        assert (data.labels[r] == data.labels[p]).all()
        assert (data.confound[a] == data.confound[p]).all() and (data.confound[b] != data.confound[p]).all()


def test_loss_value_is_J_and_backward_is_the_exact_gradient():
    obj, model, data = bound(seed=3)
    obj.start_round()
    batch = next(iter(obj.batches(0)))
    gen_state = obj.ctx.generator.get_state()
    model.train()  # the objective must take its gradients in eval mode anyway
    loss = obj.loss(model, batch)
    assert model.training
    loss.backward()
    got = grads(model)
    # same draws again, through the oracle
    obj.ctx.generator.set_state(gen_state)
    rows, _ = obj.sample_rows(batch)
    model.eval()
    targets = list(model.parameters())
    res, ref = influence_loop(model, data.batch(rows.reshape(-1)), 2, select_parameters(model, "all"), targets)
    assert loss.item() == pytest.approx(res.J.item(), rel=1e-12)
    ref = torch.cat([g.reshape(-1) for g in ref])
    assert ((got - ref).norm() / ref.norm()).item() < 1e-8
    logs = obj.logs()
    assert logs["J"] == pytest.approx(res.J.item()) and logs["skipped_probes"] == 0
    assert logs["influence_diff"] == pytest.approx(res.diff.mean().item())


@pytest.mark.parametrize("route", ["loop", "reference"])
def test_oracle_routes_give_the_same_surrogate(route):
    out = {}
    for r in ("gram", route):
        obj, model, _ = bound({"probes": 2, "k": 2, "probe_batch": 2, "route": r}, seed=5)
        obj.start_round()
        loss = obj.loss(model, next(iter(obj.batches(0))))
        loss.backward()
        out[r] = (loss.item(), grads(model))
    assert out[route][0] == pytest.approx(out["gram"][0], rel=1e-10)
    assert ((out[route][1] - out["gram"][1]).norm() / out["gram"][1].norm()).item() < 1e-8


def test_probe_without_a_partner_is_skipped_and_counted():
    # label 1 has only confound 1 visible: its probes have no B group
    data = FakeEncodedData([0, 0, 0, 0, 1, 1, 1], [0, 0, 1, 1, 1, 1, 1])
    obj, model, _ = bound({"probes": 7, "k": 1, "probe_batch": 7}, data=data)
    obj.start_round()
    loss = obj.loss(model, next(iter(obj.batches(0))))
    assert obj.logs()["skipped_probes"] == 3
    assert math.isfinite(loss.item())
    only_label1 = data.batch([4, 5])
    loss = obj.loss(model, only_label1)
    assert loss.item() == 0 and obj.logs()["skipped_probes"] == 2
    loss.backward()  # a zero loss with no gradient, never a crash


def test_exclude_self_never_draws_the_probe():
    data = FakeEncodedData([0, 0, 0, 0], [0, 0, 1, 1])
    obj, model, _ = bound({"probes": 4, "k": 3, "probe_batch": 4, "exclude_self": True}, data=data)
    rows, skipped = obj.sample_rows(data.batch([0, 1, 2, 3]))
    assert skipped == 0
    for r in rows:
        assert (r[1:4] != r[0]).all()


def test_only_visible_confounds_are_sampled():
    data = FakeEncodedData([0] * 8, [0, 0, 0, 0, 1, 1, 1, 1], visible=[True, True, False, False, True, True, False, False])
    obj, _, _ = bound({"probes": 8, "k": 4, "probe_batch": 8}, data=data)
    obj.start_round()
    batch = next(iter(obj.batches(0)))
    assert set(batch.index.tolist()) == {0, 1, 4, 5}
    rows, _ = obj.sample_rows(batch)
    assert set(rows.reshape(-1).tolist()) <= {0, 1, 4, 5}


def test_bad_data_fails_at_bind():
    with pytest.raises(UserError, match="no training example has a visible confound.*confound_access"):
        bound(data=FakeEncodedData([0, 1, 0, 1], [0, 1, 1, 0], visible=[False] * 4))
    with pytest.raises(UserError, match="same confound value"):
        bound(data=FakeEncodedData([0, 1, 0, 1], [1, 1, 1, 1]))
    with pytest.raises(UserError, match="no label has visible training examples with two different"):
        bound(data=FakeEncodedData([0, 0, 1, 1], [0, 0, 1, 1]))


def test_non_finite_J_names_the_objective():
    obj, model, _ = bound()
    with torch.no_grad():
        model.head.weight.fill_(float("nan"))
    obj.start_round()
    with pytest.raises(UserError, match="objective 'influence_tuning'.*not finite"):
        obj.loss(model, next(iter(obj.batches(0))))


def test_unsupported_parameter_for_gram_route_is_a_user_error():
    model = tiny_classifier()
    model.extra = torch.nn.Conv1d(1, 1, 1).double()
    obj = registry.build("objectives", "influence_tuning", {"parameters": {"glob": "extra.*"}})
    with pytest.raises(UserError, match="route 'gram'.*Conv1d.*route: loop"):
        obj.bind(context(model, balanced_data(2)))


def test_probe_chunks_do_not_change_J_or_its_gradient():
    out = {}
    for chunk in (2, 8):
        obj, model, _ = bound({"probes": 6, "k": 2, "probe_batch": 6, "chunk": chunk}, seed=7)
        obj.start_round()
        loss = obj.loss(model, next(iter(obj.batches(0))))
        loss.backward()
        out[chunk] = (loss.item(), grads(model), obj.logs())
    assert out[2][0] == pytest.approx(out[8][0], rel=1e-12)
    assert ((out[2][1] - out[8][1]).norm() / out[8][1].norm()).item() < 1e-12
    assert out[2][2] == pytest.approx(out[8][2])
