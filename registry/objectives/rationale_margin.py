"""``rationale_margin``: a rationale-alignment loss on the token attributions of any registered
attribution (UIMER-GB and its generalisation; Chen, Jiang & Tu 2024, §3.1-3.2).

Two forms, on the scores ``a_it`` of a registered attribution for the gold class (``target:
gold``), restricted to the positions it counts (``positions: tokens``: real, non-special tokens):

``form: margin`` (UIMER's contrastive margin, eq. for L_int): per example i with at least one
rationale token and one other counted token,

    a~_it = a_it / sum_t |a_it|  (normalise: l1; max: / max_t |a_it|; none: a_it)
    A_R,i = agg_{t in R_i} a~_it,  A_N,i = agg_{t counted, not in R_i} a~_it  (aggregate: mean | max)
    L = mean_i max(0, A_N,i - A_R,i + eps).

The paper writes ``max(0, attr(N) - attr(R) + eps)`` with attr(R) the attribution of the
rationale *set*, which erasure (UIMER-IM) measures directly; a per-token gradient attribution has
no set score, so this form aggregates the token scores (mean by default).  The per-example
normalisation (default l1, over the counted tokens) gives eps a scale: with l1 and mean, eps 0.1
asks each rationale token for 0.1 more of the example's total absolute attribution than the
average other token.  UIMER's GB code does not use this form (it uses ``ghaeini``).

``form: ghaeini`` (UIMER-GB, Ghaeini et al. 2019 "saliency learning", as the authors'
``forward_saliency`` computes it): with the saliency ``reduction: sum`` the attribution score is
``g_t = sum_d dy/dx_{t,d}`` (y the gold-class logit, x the word embeddings), the code's saliency is
``s_t = -g_t`` and, with z_t = 1 on rationale tokens and 0 elsewhere,

    L = mean over the batch's entries (i, t) with z_t s_t > 0 of z_t s_t,

i.e. the mean of ``-g_t`` over the rationale tokens whose summed gradient is negative (0 when
there are none): it pushes the gold logit's gradient at the rationale towards a non-negative sum.
The gradient is taken positionally on ``inputs_embeds`` (the authors gather rows of the gradient
with respect to the whole embedding table, which sums over occurrences of the same id, at
[B, vocab, D] memory).  **On BERT-like models this loss is numerically inert**: the word
embeddings enter a LayerNorm, whose input gradient sums to 0 over the hidden dimension, so
``g_t`` is 0 up to rounding (``tests/registry/objectives/test_rationale_margin.py`` shows it).

The attribution must give scores with a graph to the model: the default is ``saliency`` with
``mode: differentiable`` (double backward through the model); ``saliency`` in ``mode: faithful``
is refused at ``validate`` (its scores are constants; switching it silently to differentiable
would change the method and its cost); any other attribution whose scores come back without a
graph is refused at the first step.  A faithful ``gradient_x_input`` or ``integrated_gradients``
keeps a graph through its factor ``x`` only, so the loss then trains the batch's word-embedding
rows and nothing else (as ``ig_variance``'s faithful mode).  Examples without a rationale token are skipped (and
counted in ``logs()``).  The term returns only the alignment loss: a recipe adds
``cross_entropy`` as another term of the same phase (UIMER: L_task + alpha L_int).
"""
from __future__ import annotations

from typing import Any, Literal

import torch
from pydantic import Field, model_validator

from registry import StrictParams, register
from registry._lib.precision import full_precision
from registry.attributions.spec import AttributionSpec
from registry.base import Attribution, Objective
from registry.errors import UserError
from registry.types import Batch, Classifier, ObjectiveContext, PassCounts

#: the default attribution: gradient saliency with a graph, on real tokens, not padded
DEFAULT_SALIENCY = {"mode": "differentiable", "positions": "tokens", "pad_to": None}


def normalised(scores: torch.Tensor, counted: torch.Tensor, how: str) -> torch.Tensor:
    """Scores divided per row by ``sum |a|`` (l1) or ``max |a|`` (max) over the counted positions
    (a row whose scores are all 0 stays 0); ``none``: unchanged.  Uncounted positions are 0."""
    s = scores * counted
    if how == "none":
        return s
    den = s.abs().sum(-1, keepdim=True) if how == "l1" else s.abs().amax(-1, keepdim=True)
    return s / torch.where(den > 0, den, torch.ones_like(den))


def aggregate(scores: torch.Tensor, mask: torch.Tensor, how: str) -> torch.Tensor:
    """(B,) mean or max of ``scores`` over the positions in ``mask`` (every row has one)."""
    if how == "max":
        return scores.masked_fill(~mask, float("-inf")).amax(-1)
    return (scores * mask).sum(-1) / mask.sum(-1)


def contrastive_margin(scores: torch.Tensor, counted: torch.Tensor, rationale: torch.Tensor, eps: float,
                       how_normalise: str, how_aggregate: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``max(0, A_N - A_R + eps)`` per row, with A_R and A_N (rows must have a counted rationale
    token and a counted other token)."""
    s = normalised(scores, counted, how_normalise)
    r = rationale & counted
    a_r = aggregate(s, r, how_aggregate)
    a_n = aggregate(s, counted & ~r, how_aggregate)
    return torch.relu(a_n - a_r + eps), a_r, a_n


def ghaeini_loss(scores: torch.Tensor, counted: torch.Tensor, rationale: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``mean over entries with z s > 0 of z s``, ``s = -scores``, z the 0/1 rationale on counted
    positions; 0 when no entry is positive.  Also returns how many entries entered the mean."""
    zs = -scores * (rationale & counted)
    pos = zs > 0
    return (zs * pos).sum() / pos.sum().clamp_min(1), pos.sum()


@register("objective", "rationale_margin")
class RationaleMargin(Objective):
    second_order = True
    summary = ("rationale alignment on a registered attribution: the rationale's scores must beat the other tokens' by "
               "a margin (form margin), or UIMER-GB's penalty on rationale tokens with a negative gradient sum "
               "(form ghaeini); per-batch, add cross_entropy as its own term")
    paper = ("Chen, Jiang & Tu 2024, Using Interpretation Methods for Model Enhancement (UIMER), §3.1-3.2 (L_int, "
             "gradient-based UIMER-GB); Ghaeini et al. 2019, Saliency Learning")
    equation = ("margin: L = mean_i max(0, A_N,i - A_R,i + eps), A = mean (or max) of the per-example normalised scores "
                "over the rationale (R) / the other counted tokens (N); ghaeini: L = mean over entries with z_t s_t > 0 "
                "of z_t s_t, s_t = -sum_d dy/dx_t,d (saliency, reduction sum), z the 0/1 rationale; examples "
                "without a rationale token skipped")
    requires = ("rationale",)

    class Params(StrictParams):
        form: Literal["margin", "ghaeini"] = Field(
            "margin", description="margin: UIMER's contrastive margin on aggregated token scores; ghaeini: UIMER-GB "
            "(the authors' code): mean of -g_t over rationale tokens whose gradient sum g_t is negative")
        attribution: AttributionSpec | None = Field(
            None, description="the attribution ({name, params} of a registered one, or its name); its scores need a "
            "graph (saliency: mode differentiable). null: saliency with mode differentiable, positions tokens, "
            "pad_to null, reduction l2 (form margin) or sum (form ghaeini)")
        aggregate: Literal["mean", "max"] = Field(
            "mean", description="form margin only: how A_R and A_N gather the token scores (mean, or max)")
        normalise: Literal["l1", "max", "none"] = Field(
            "l1", description="form margin only: per example, divide the scores by their sum of absolute values (l1) or "
            "largest absolute value (max) over the counted tokens, so that margin has a scale; none: raw scores")
        margin: float = Field(0.1, ge=0.0, allow_inf_nan=False,
                              description="form margin only: eps of max(0, A_N - A_R + eps), on the normalised scale")

        @model_validator(mode="after")
        def _attribution(self) -> "RationaleMargin.Params":
            """Fill in the default attribution; refuse one whose scores are constants, and a norm
            saliency with form ghaeini.  (aggregate, normalise and margin are ignored by form ghaeini,
            not refused: a resolved recipe writes every field out.)"""
            if self.attribution is None:
                params = {**DEFAULT_SALIENCY, "reduction": "sum" if self.form == "ghaeini" else "l2"}
                self.attribution = AttributionSpec(name="saliency", params=params)
            a = self.attribution
            if a.name == "saliency" and a.params.get("mode") == "faithful":
                raise ValueError("attribution saliency with mode: faithful has constant scores (no graph), so the loss "
                                 "could not train the model; set attribution.params.mode: differentiable")
            if self.form == "ghaeini":
                if a.name == "saliency" and a.params.get("reduction") != "sum":
                    raise ValueError(f"form ghaeini reads the sign of the gradient sum, and saliency reduction "
                                     f"{a.params.get('reduction')!r} is a norm (never negative: the loss would be 0); "
                                     "set attribution.params.reduction: sum")
            return self

    _logs: dict[str, float] = {}
    _attr: Attribution | None = None

    def bind(self, ctx: ObjectiveContext) -> None:
        """Build the attribution once."""
        super().bind(ctx)
        self._attr = self.params.attribution.build()

    def attribution(self) -> Attribution:
        if self._attr is None:
            self._attr = self.params.attribution.build()
        return self._attr

    def cost(self, batch_size: int, seq_len: int) -> PassCounts:
        """A forward, the attribution's gradient with its graph (a backward) and the loss's
        backward through it (a double backward), per row."""
        return PassCounts(forward=batch_size, backward=batch_size, double_backward=batch_size)

    def loss(self, model: Classifier, batch: Batch) -> torch.Tensor:
        if batch.rationale is None:
            raise UserError("objective rationale_margin: the batch has no rationale column; use a dataset with "
                            "rationales (e.g. snips, esnli)")
        rows = torch.nonzero(((batch.rationale > 0) & batch.attention_mask.bool()).any(-1)).flatten()
        skipped = float(len(batch) - rows.numel())
        zero = torch.zeros((), device=batch.input_ids.device)
        if rows.numel() == 0:
            self._logs = {"skipped": skipped, "used": 0.0}
            return zero
        sub = batch.select(rows)
        attr = self.attribution().attribute(model, sub)
        if torch.is_grad_enabled() and not attr.scores.requires_grad:
            name = self.params.attribution.name
            raise UserError(f"objective rationale_margin: attribution {name!r} returned scores without a graph to the "
                            f"model, so the loss cannot train it; use a differentiable mode of it (e.g. "
                            f"attribution.params.mode: differentiable)")
        scores = full_precision(attr.scores)
        W = scores.shape[1]
        rationale = torch.zeros_like(attr.counted)
        rationale[:, :sub.rationale.shape[1]] = sub.rationale[:, :W] > 0
        counted = attr.counted
        if self.params.form == "ghaeini":
            loss, entries = ghaeini_loss(scores, counted, rationale)
            g = scores[rationale & counted]
            self._logs = {"skipped": skipped, "used": float(rows.numel()), "entries": float(entries),
                          "gradient_sum_rationale": float(g.detach().mean()) if g.numel() else 0.0}
            return loss
        has_r = (rationale & counted).any(-1)
        has_n = (counted & ~rationale).any(-1)
        keep = has_r & has_n
        p = self.params
        logs: dict[str, Any] = {"skipped": skipped + float((~has_r).sum()), "no_other": float((has_r & ~has_n).sum()),
                                "used": float(keep.sum())}
        if not keep.any():
            self._logs = {**logs, "active": 0.0}
            return zero
        hinge, a_r, a_n = contrastive_margin(scores[keep], counted[keep], rationale[keep], p.margin, p.normalise,
                                             p.aggregate)
        self._logs = {**logs, "active": float((hinge > 0).sum()), "a_rationale": float(a_r.detach().mean()),
                      "a_other": float(a_n.detach().mean())}
        return hinge.mean()

    def logs(self) -> dict[str, float]:
        """Per step: ``skipped`` (rows without a counted rationale token), ``used`` (rows in the
        mean); form margin: ``no_other`` (every counted token is rationale: left out), ``active``
        (rows short of the margin), the mean aggregates ``a_rationale`` and ``a_other``; form
        ghaeini: ``entries`` (rationale tokens with a negative gradient sum, in the mean) and
        ``gradient_sum_rationale`` (mean g_t over the rationale tokens)."""
        return dict(self._logs)
