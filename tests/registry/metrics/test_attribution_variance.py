import pytest
import torch
from pydantic import ValidationError

import registry
from recipe_engine.evaluate import evaluate_split_metrics
from registry.base import Attribution
from registry.errors import UserError
from registry.metrics.attribution_variance import AttributionSpec, AttributionVariance, row_variances, sample_rows
from registry.types import TokenAttributions
from tests.registry._lib.fakes import TEST_ATTRIBUTION, FakeEncodedData, registered_attribution, tiny_classifier  # noqa: F401


def metric(**params):
    return AttributionVariance(AttributionVariance.Params(**params))


def test_row_variance_by_hand():
    scores = torch.tensor([[1.0, 2.0, 6.0, 0.0], [3.0, 0.0, 0.0, 0.0], [0.5, -0.5, 0.0, 0.0]])
    counted = torch.tensor([[True, True, True, False], [True, False, False, False], [True, True, True, True]])
    v = row_variances(TokenAttributions(scores, counted, torch.zeros(3, dtype=torch.long)))
    # row 0: mean 3, squares 4 + 1 + 9 = 14, / 2 = 7; row 1: one position -> 0;
    # row 2: four positions (zeros counted), mean 0, squares 0.25 + 0.25 = 0.5, / 3
    torch.testing.assert_close(v, torch.tensor([7.0, 0.0, 0.5 / 3], dtype=torch.float64))
    assert v[0] == torch.tensor([1.0, 2.0, 6.0]).double().var(unbiased=True)


def test_sample_rows_is_seeded_and_sorted():
    a, b = sample_rows(50, 8, seed=3), sample_rows(50, 8, seed=3)
    assert torch.equal(a, b) and torch.equal(a, a.sort().values) and len(set(a.tolist())) == 8
    assert not torch.equal(a, sample_rows(50, 8, seed=4))
    assert torch.equal(sample_rows(5, 8, seed=0), torch.arange(5))


def test_metric_is_the_mean_row_variance_of_its_attribution_on_the_sample(registered_attribution):
    model = tiny_classifier(dtype=torch.float32)
    data = FakeEncodedData([0, 1] * 10, [0] * 20, seq_len=8)
    m = metric(attribution={"name": registered_attribution}, examples=6, seed=1, batch_size=4)
    assert m.per_split and m.needs_model
    out = evaluate_split_metrics(model.train(), data, "dev", [m], "cpu")
    assert model.training  # run in eval mode, the mode restored
    rows = sample_rows(20, 6, seed=1)
    expected = row_variances(registry.build("attributions", TEST_ATTRIBUTION).attribute(model.eval(), data.batch(rows))).mean()
    assert out == {"dev/attribution_variance": pytest.approx(float(expected), rel=1e-5)}
    assert out["dev/attribution_variance"] > 0
    # the scale of the scores enters squared: the attribution's params are used
    scaled = metric(attribution={"name": registered_attribution, "params": {"scale": 2.0}}, examples=6, seed=1)
    assert evaluate_split_metrics(model, data, "dev", [scaled], "cpu")["dev/attribution_variance"] == pytest.approx(
        4 * out["dev/attribution_variance"], rel=1e-4)


def test_attribution_spec_is_checked_against_the_registry(registered_attribution):
    spec = AttributionSpec.model_validate(registered_attribution)  # the name alone
    assert spec.params == {"scale": 1.0}  # params written out in full
    with pytest.raises(ValidationError, match=r"unknown attribution 'test_grad_x_inptu'; did you mean 'test_grad_x_input'\?"):
        AttributionSpec.model_validate({"name": "test_grad_x_inptu"})
    with pytest.raises(ValidationError, match=r"attribution 'test_grad_x_input': params.sclae: Extra inputs"):
        AttributionSpec.model_validate({"name": registered_attribution, "params": {"sclae": 2}})


def test_an_unregistered_default_is_a_user_error_when_run(monkeypatch):
    monkeypatch.setattr(registry.REGISTRY, "entries", {**registry.REGISTRY.entries, "attributions": {}})
    m = metric()  # the default (integrated_gradients) is looked up when the metric runs
    with pytest.raises(UserError, match="metric attribution_variance: unknown attribution 'integrated_gradients'"):
        m.compute_split(tiny_classifier(), FakeEncodedData([0, 1], [0, 0]), torch.device("cpu"))


class ConstantAttribution(Attribution):
    def attribute(self, model, batch, target=None):
        scores = batch.input_ids.double() * batch.attention_mask
        return TokenAttributions(scores, batch.attention_mask.bool(), batch.labels)


def test_duplicate_keys_are_a_user_error():
    m = metric()
    m._attribution = ConstantAttribution()
    data = FakeEncodedData([0, 1, 0], [0, 0, 0])
    with pytest.raises(UserError, match="both report 'dev/attribution_variance'"):
        evaluate_split_metrics(tiny_classifier(), data, "dev", [m], "cpu", taken={"dev/attribution_variance": 1.0})
