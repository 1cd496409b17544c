import pytest
import torch
import torch.nn.functional as F

import registry
from registry.errors import UserError
from tests.registry._lib.fakes import FakeEncodedData, balanced_data, context, tiny_classifier


def bound(params=None, data=None, num_confounds=2):
    model = tiny_classifier()
    data = data or balanced_data(3)
    obj = registry.build("objectives", "adversarial", params or {})
    obj.bind(context(model, data, num_confounds=num_confounds))
    return obj, model, data


def test_params_and_extra_module():
    obj, model, _ = bound(num_confounds=3)
    assert (obj.params.grl_lambda, obj.params.confound_weight) == (0.3, 1.0)
    head = obj.extra_modules()["confound_head"]
    assert head.in_features == model.hidden_size and head.out_features == 3
    assert registry.get("objectives", "adversarial").requires == ("confound",)


def test_loss_and_reversed_gradient_match_a_hand_computation():
    obj, model, data = bound({"grl_lambda": 0.7, "confound_weight": 2.0})
    batch = data.batch(list(range(12)))
    batch.confound_visible[::3] = False  # hidden confounds do not enter the confound loss
    keep = batch.confound_visible
    model.eval()  # no dropout: deterministic
    enc = [p for p in model.encoder.parameters()]
    head_c = obj.confound_head
    loss = obj.loss(model, batch)
    g_enc = torch.autograd.grad(loss, enc + list(head_c.parameters()), allow_unused=True)

    out = model(**batch.model_inputs())
    task = F.cross_entropy(out.logits, batch.labels)
    conf = F.cross_entropy(head_c(out.pooled[keep]), batch.confound[keep])
    assert loss.item() == pytest.approx((task + 2.0 * conf).item(), rel=1e-12)
    g_task = torch.autograd.grad(task, enc, retain_graph=True, allow_unused=True)
    g_conf = torch.autograd.grad(conf, enc + list(head_c.parameters()), allow_unused=True)
    z = lambda g, p: torch.zeros_like(p) if g is None else g  # noqa: E731
    for p, got, t, c in zip(enc, g_enc, g_task, g_conf):
        torch.testing.assert_close(z(got, p), z(t, p) - 0.7 * 2.0 * z(c, p), rtol=1e-10, atol=1e-14)
    for i, p in enumerate(head_c.parameters()):  # the confound head itself is trained, not reversed
        torch.testing.assert_close(g_enc[len(enc) + i], 2.0 * g_conf[len(enc) + i])
    assert set(obj.logs()) == {"task_loss", "confound_loss", "confound_accuracy"}


def test_batch_without_visible_confound_is_the_task_loss():
    obj, model, data = bound()
    batch = data.batch([0, 1, 2])
    batch.confound_visible[:] = False
    out = model(**batch.model_inputs())
    assert obj.loss(model, batch).item() == pytest.approx(F.cross_entropy(out.logits, batch.labels).item())
    assert obj.logs()["confound_loss"] == 0.0


def test_bad_data_fails_at_bind():
    with pytest.raises(UserError, match="objective 'adversarial': no training example has a visible confound"):
        bound(data=FakeEncodedData([0, 1], [0, 1], visible=[False, False]))
    with pytest.raises(UserError, match="single value"):
        bound(data=FakeEncodedData([0, 1], [1, 1]))
