"""``attribution_variance``: mean over examples of the unbiased variance of their token
attributions (the quantity the ``ig_variance`` penalty pushes down), on each evaluation split."""
from __future__ import annotations

import torch
from pydantic import Field, ValidationError

from registry import StrictParams, register
from registry.base import Attribution, Metric
from registry.attributions.spec import AttributionSpec
from registry.types import Classifier, EncodedData, TokenAttributions


def default_attribution() -> AttributionSpec:
    """``integrated_gradients`` with its params written out, or (before it is registered) unchecked:
    the metric then says so when it runs."""
    try:
        return AttributionSpec()
    except ValidationError:
        return AttributionSpec.model_construct()


def row_variances(attr: TokenAttributions) -> torch.Tensor:
    """(B,) float64 unbiased variance of each row's scores over its counted positions; a row
    with fewer than two counted positions has variance 0 (as the ``ig_variance`` penalty)."""
    c = attr.counted.to(torch.float64)
    s = attr.scores.detach().to(torch.float64) * c
    n = c.sum(1)
    mean = s.sum(1) / n.clamp_min(1.0)
    return (((s - mean[:, None]) * c) ** 2).sum(1) / (n - 1.0).clamp_min(1.0)


def sample_rows(n: int, k: int, seed: int) -> torch.Tensor:
    """``k`` of ``n`` row numbers drawn without replacement by a generator seeded with ``seed``,
    ascending; every row when ``k >= n``."""
    if k >= n:
        return torch.arange(n)
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:k].sort().values


@register("metric", "attribution_variance")
class AttributionVariance(Metric):
    """On a seeded sample of ``examples`` rows of each evaluation split (the same rows for every
    seed and run), in eval mode: ``mean_i Var_i``, ``Var_i`` the unbiased variance of example
    i's token attributions over the positions the attribution counts (with
    ``integrated_gradients``' defaults: all 128 padded positions, as the authors' penalty)."""

    summary = "mean over examples of the variance of their token attributions (default integrated gradients), per split"
    paper = "Weaver, Variance-Based Integrated Gradients Regularization for Robust NLI, sec. 2.3 (Var_attr)"
    equation = "AV = 1/N sum_i 1/(n_i - 1) sum_t (a_it - mean_t a_it)^2 over the n_i counted positions of example i"
    needs_model = True
    per_split = True

    class Params(StrictParams):
        attribution: AttributionSpec = Field(
            default_factory=default_attribution,
            description="the attribution: {name, params} of a registered one, or its name; default integrated_gradients "
                        "with its defaults")
        examples: int = Field(256, ge=1, description="rows per split, a seeded sample (every row of a smaller split)")
        seed: int = Field(0, ge=0, description="seed of the sample (the same rows whatever the run's seed)")
        batch_size: int = Field(16, ge=1, description="rows per attribution call")

    _attribution: Attribution | None = None

    def attribution(self) -> Attribution:
        """The attribution component, built once."""
        if self._attribution is None:
            self._attribution = self.params.attribution.build(owner="metric attribution_variance")
        return self._attribution

    def compute_split(self, model: Classifier, data: EncodedData, device: torch.device) -> dict[str, float]:
        if len(data) == 0:
            return {}
        attribution = self.attribution()
        variances = []
        for rows in sample_rows(len(data), self.params.examples, self.params.seed).split(self.params.batch_size):
            batch = data.batch(rows).to(device)
            variances.append(row_variances(attribution.attribute(model, batch)).cpu())
        return {"attribution_variance": float(torch.cat(variances).mean())}
