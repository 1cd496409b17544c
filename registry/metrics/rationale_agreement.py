"""``rationale_agreement``: how well a registered attribution's token scores find the gold
rationale, on each evaluation split that has rationales (plausibility; DeYoung et al. 2020,
ERASER, token-level AUPRC and F1)."""
from __future__ import annotations

import numpy as np
import torch
from pydantic import Field
from sklearn.metrics import average_precision_score

from registry import StrictParams, register
from registry.attributions._common import special_token_ids
from registry.attributions.spec import AttributionSpec
from registry.base import Attribution, Metric
from registry.metrics.attribution_variance import sample_rows
from registry.types import Classifier, EncodedData


def default_saliency() -> AttributionSpec:
    """``saliency`` (l2, faithful) on real tokens, the batch's own width."""
    return AttributionSpec(name="saliency", params={"positions": "tokens", "pad_to": None})


def topk_hits(scores: torch.Tensor, mask: torch.Tensor, rationale: torch.Tensor) -> torch.Tensor:
    """(B,) share of each row's k highest-scoring positions (within ``mask``) that are rationale,
    k = the row's number of rationale positions: its top-k precision, recall and F1 alike."""
    k = (rationale & mask).sum(-1)
    order = scores.masked_fill(~mask, float("-inf")).argsort(dim=-1, descending=True, stable=True)
    ranks = torch.empty_like(order)
    ranks.scatter_(1, order, torch.arange(order.shape[1], device=order.device).expand_as(order))
    top = mask & (ranks < k[:, None])
    return (top & rationale).sum(-1).double() / k.clamp_min(1).double()


@register("metric", "rationale_agreement")
class RationaleAgreement(Metric):
    """On a seeded sample of ``examples`` rows of each evaluation split that have a rationale token
    and another real token (the same rows for every seed and run), in eval mode, over each row's
    real, non-special tokens: the average precision of the attribution scores against the 0/1
    rationale (``rationale_auprc``, scikit-learn's ``average_precision_score`` per row, then the
    mean) and the top-k token F1 with k = the row's number of rationale tokens
    (``rationale_f1``; with k = |R| precision, recall and F1 coincide).  Ties are broken by
    position.  A split without rationales reports nothing."""

    summary = "AUPRC and top-k F1 of a registered attribution's token scores against the gold rationale, per split"
    paper = "DeYoung et al. 2020, ERASER (sec. 4, token-level plausibility: AUPRC, token F1); UIMER §4 (rationales)"
    equation = ("auprc = 1/N sum_i AP(scores_i, rationale_i); f1 = 1/N sum_i |topk_i(scores_i) & R_i| / k_i, k_i = |R_i|, "
                "over the real non-special tokens of each sampled row")
    needs_model = True
    per_split = True

    class Params(StrictParams):
        attribution: AttributionSpec = Field(
            default_factory=default_saliency,
            description="the attribution: {name, params} of a registered one, or its name; default saliency (l2 norm of "
                        "the gold logit's embedding gradient) on real tokens")
        absolute: bool = Field(False, description="rank tokens by |score| rather than the signed score (for signed "
                               "attributions such as gradient_x_input)")
        examples: int = Field(64, ge=1, description="rows per split, a seeded sample of the rows with a rationale (all "
                              "of them when fewer)")
        seed: int = Field(0, ge=0, description="seed of the sample (the same rows whatever the run's seed)")
        batch_size: int = Field(16, ge=1, description="rows per attribution call")

    _attribution: Attribution | None = None

    def attribution(self) -> Attribution:
        """The attribution component, built once."""
        if self._attribution is None:
            self._attribution = self.params.attribution.build(owner="metric rationale_agreement")
        return self._attribution

    def compute_split(self, model: Classifier, data: EncodedData, device: torch.device) -> dict[str, float]:
        rationale = getattr(data, "rationale", None)
        if rationale is None or len(data) == 0:
            return {}
        specials = torch.tensor(special_token_ids(model), dtype=torch.long)
        ids, att = data.input_ids, data.attention_mask.bool()  # type: ignore[attr-defined]
        real = att & ~torch.isin(ids, specials)
        is_r = (rationale > 0) & real
        eligible = torch.nonzero(is_r.any(-1) & (real & ~is_r).any(-1)).flatten()
        if eligible.numel() == 0:
            return {}
        rows = eligible[sample_rows(eligible.numel(), self.params.examples, self.params.seed)]
        attribution = self.attribution()
        aps, hits = [], []
        for chunk in rows.split(self.params.batch_size):
            batch = data.batch(chunk).to(device)
            attr = attribution.attribute(model, batch)
            W = batch.input_ids.shape[1]
            scores = attr.scores[:, :W].detach().to(torch.float64).cpu()
            if self.params.absolute:
                scores = scores.abs()
            mask = real[chunk, :W] & attr.counted[:, :W].cpu()
            r = is_r[chunk, :W]
            hits.append(topk_hits(scores, mask, r))
            for s, m, y in zip(scores.numpy(), mask.numpy(), r.numpy()):
                aps.append(float(average_precision_score(y[m].astype(np.int64), s[m])))
        return {"rationale_auprc": float(np.mean(aps)), "rationale_f1": float(torch.cat(hits).mean())}
