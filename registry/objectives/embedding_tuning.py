"""``embedding_tuning``: influence tuning with the influence restricted to the label's head row,
i.e. the cosine of pooled sentence representations (Han & Tsvetkov 2021, sec. 4.1)."""
from __future__ import annotations

from typing import Iterable

import torch
from pydantic import Field
from torch import nn

from registry import register
from registry._lib.influence import influence_loss
from registry._lib.per_example import by_length, eval_mode, exact_math
from registry.objectives._confound_groups import ProbeObjective, ProbeParams
from registry.types import Batch, Classifier, PassCounts


def pooled_influence(pooled: torch.Tensor, k: int):
    """J from pooled outputs laid out as (P*(1+2k), H) groups ``[probe, A.., B..]``; float64.

    ``I = cos(h_trn, h_prb)`` (sec. 4.1: the gradient cosine over theta_proj = W_(y) reduces to it).
    """
    h = pooled.double().reshape(-1, 1 + 2 * k, pooled.shape[-1])
    dots = torch.einsum("ph,prh->pr", h[:, 0], h[:, 1:])
    return influence_loss(dots, (h * h).sum(-1), k)


@register("objective", "embedding_tuning")
class EmbeddingTuning(ProbeObjective):
    """First-order: batched forwards over all probes and candidates (rows sorted by length into
    ``chunk``-row passes, so little padding is computed), one backward.

    Eval mode (dropout off), the model's pooled output (the pooler's tanh of [CLS] for BERT),
    the classifier head excluded from the update: the reference code's choices.
    """

    summary = "embedding tuning: equalise the pooled-representation cosine of same- and other-confound examples"
    paper = "Han & Tsvetkov 2021, Influence Tuning, sec. 4.1"
    equation = "J = mean_prb (1/k sum_A cos(h_A, h_prb) - 1/k sum_B cos(h_B, h_prb))^2, h = pooled output (eval mode)"

    class Params(ProbeParams):
        chunk: int = Field(128, ge=1, description="rows (probes and candidates) per forward pass, sorted by length; "
                                                  "the result does not depend on it")

    def trainable(self, model: Classifier) -> Iterable[nn.Parameter]:
        skip = {id(p) for p in model.head.parameters()}
        return [p for p in model.parameters() if id(p) not in skip]

    def cost(self, batch_size: int, seq_len: int) -> PassCounts:
        """The n = P(1+2k) rows forward to their pooled embeddings, and J's backward through them."""
        n = self.rows_per_step()
        return PassCounts(forward=n, backward=n)

    def loss(self, model: Classifier, batch: Batch) -> torch.Tensor:
        rows, skipped = self.sample_rows(batch)
        device = self.ctx.device
        if rows.numel() == 0:
            return self.finish(None, None, skipped)
        train = self.ctx.train
        chunks, undo = by_length(train, rows.reshape(-1), self.params.chunk)
        with eval_mode(model), exact_math(device):
            pooled = torch.cat([model(**train.batch(c).to(device).model_inputs()).pooled for c in chunks])[undo]
            res = pooled_influence(pooled, self.params.k)
        return self.finish(res, res.J, skipped)
