"""``rationale_erasure``: UIMER-IM, the input-marginalisation margin between erasing the
rationale and erasing as many other tokens (Chen, Jiang & Tu 2024, §3.3).

For each example i of the training batch with at least one rationale token:
S^R = R copies with every rationale token replaced (a random k-subset under
``max_rationale_fraction``), S^N = R copies with k random real, non-special, non-rationale
tokens replaced (all of them where fewer exist: ``min(k, available)``, counted in the logs as
``short_non_rationale``; with none at all S^N is the unchanged input). Then

    L = mean_i max(0, m_R,i - m_N,i + eps),  m = log2(pbar / (1 - pbar)),
    pbar_R,i = 1/R sum_{r in S^R} p(y_i | x_r)   (likewise pbar_N,i),

with ``m = log2(lower_bound)`` where ``pbar <= lower_bound``, and the authors' mask: examples
where either m is exactly 0 are left out of the mean. Copies are weighted 1/R for every
strategy: the copies are already drawn from the replacement distribution, so their plain mean
is the Monte Carlo estimate of the marginal; the authors' per-copy weights (renormalised
sampled frequencies for ``frequency``) weight by the prior a second time. The copies run in
train mode (dropout on), as the authors' ``forward_aug``. The term returns only this margin
loss: a recipe adds ``cross_entropy`` as another term of the same phase (UIMER: L_task +
alpha L_IM with alpha the term's weight).
"""
from __future__ import annotations

from typing import Any, Literal

import torch
import torch.nn.functional as F
from pydantic import Field

from registry import StrictParams, register
from registry._lib.precision import full_precision
from registry._lib.replacement import (
    log2_odds_of_mean, replace_tokens, replacement_positions, token_prior, uniform_prior,
)
from registry.base import Objective
from registry.errors import UserError
from registry.types import Batch, Classifier, ObjectiveContext, PassCounts


def gold_log_probs(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``log p(y|x)`` and ``log(1 - p(y|x))`` of the gold class, both from log-softmax
    (the second a logsumexp over the other classes, so it stays finite as p -> 1)."""
    ls = F.log_softmax(full_precision(logits), dim=-1)
    gold = F.one_hot(labels, ls.shape[-1]).bool()
    log_p = ls.masked_fill(~gold, float("-inf")).logsumexp(-1)
    log_not = ls.masked_fill(gold, float("-inf")).logsumexp(-1)
    return log_p, log_not


def margin_loss(m_r: torch.Tensor, m_n: torch.Tensor, margin: float) -> tuple[torch.Tensor, torch.Tensor]:
    """``mean_i max(0, m_R,i - m_N,i + margin)`` over the examples where neither m is exactly 0
    (UIMER ``margin_loss``'s mask), and that keep mask; 0 when none is kept."""
    keep = (m_r != 0) & (m_n != 0)
    hinge = torch.relu(m_r - m_n + margin) * keep
    return hinge.sum() / keep.sum().clamp_min(1), keep


@register("objective", "rationale_erasure")
class RationaleErasure(Objective):
    summary = ("UIMER-IM: erasing the rationale must lower the gold log-odds by a margin more than erasing "
               "as many other tokens (per-batch; add cross_entropy as its own term)")
    paper = ("Chen, Jiang & Tu 2024, Using Interpretation Methods for Model Enhancement (UIMER), §3.3 "
             "(erasure/replace-based, input marginalisation), eq. for L_IM")
    equation = ("L = mean_i max(0, m_R,i - m_N,i + eps),  m = log2(pbar / (1 - pbar)) (log2(lower_bound) if "
                "pbar <= lower_bound),  pbar_R,i = 1/R sum_r p(y_i | x_i with every rationale token replaced, copy r), "
                "pbar_N,i likewise with as many random non-rationale tokens replaced; examples without a "
                "rationale token are skipped, and those where m_R or m_N is exactly 0 dropped (as the authors)")
    requires = ("rationale",)

    class Params(StrictParams):
        replace: Literal["frequency", "uniform", "mask"] = Field(
            "frequency", description="replacement tokens: 'frequency' draws from the unigram frequencies of the "
            "training split's tokens (the paper's Prior), 'uniform' uniformly over the vocabulary without special "
            "tokens, 'mask' puts [MASK] everywhere",
        )
        copies: int = Field(2, ge=1, description="R: copies per example in S^R and in S^N, drawn afresh every step "
                            "(authors: replace_repeat 2, drawn once before training)")
        margin: float = Field(1.0, allow_inf_nan=False, description="eps of max(0, m_R - m_N + eps), in bits of "
                              "log-odds (README example: 1; main.py and nli.py default to 0.1)")
        lower_bound: float = Field(1e-23, gt=0.0, lt=0.5, description="p <= lower_bound counts as log2(lower_bound) "
                                   "(README: 1e-23; code default 1e-25)")
        max_rationale_fraction: float | None = Field(
            0.3, gt=0.0, le=1.0, description="replace at most max(1, floor(f * n)) rationale tokens of an example with "
            "n real tokens (a random subset per copy) and as many non-rationale ones; null: no cap. (The authors' 0.3 "
            "cap only shrank S^N, by a bug)",
        )

    _logs: dict[str, float] = {}

    def bind(self, ctx: ObjectiveContext) -> None:
        """Special-token ids, the replacement prior (from the training split, once) and a
        generator on the training device seeded from the run's objective generator."""
        super().bind(ctx)
        model = ctx.model
        vocab = model.input_embeddings().num_embeddings
        tok = getattr(model, "tokenizer", None)
        specials = sorted(set(getattr(tok, "all_special_ids", None) or []))
        self._special = torch.tensor(specials, dtype=torch.long, device=ctx.device)
        self._mask_id = None
        self._prior = None
        if self.params.replace == "mask":
            self._mask_id = getattr(tok, "mask_token_id", None)
            if self._mask_id is None:
                raise UserError("objective rationale_erasure: replace: mask needs a tokenizer with a [MASK] token, and "
                                "this model's has none; fix: use replace: frequency or uniform")
        elif self.params.replace == "uniform":
            self._prior = uniform_prior(vocab, self._special.cpu()).to(ctx.device)
        else:
            whole = ctx.train.batch(torch.arange(len(ctx.train)))
            try:
                self._prior = token_prior(whole.input_ids, whole.attention_mask, self._special.cpu(), vocab).to(ctx.device)
            except ValueError as exc:
                raise UserError(f"objective rationale_erasure: replace: frequency: {exc}; fix: use replace: uniform") from None
        seed = int(torch.randint(0, 2**62, (1,), generator=ctx.generator))
        self._gen = torch.Generator(device=ctx.device).manual_seed(seed)

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self._gen.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._gen.set_state(state["generator"])

    def copies_of(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor,
                                               dict[str, float]]:
        """Rows of ``batch`` with a rationale token, their S^R and S^N input ids (B', R, T), the
        replaced positions (B', R, T) of S^R and of S^N, and counts for the logs."""
        if batch.rationale is None:
            raise UserError("objective rationale_erasure: the batch has no rationale column; use a dataset with "
                            "rationales (e.g. snips)")
        ids, att = batch.input_ids, batch.attention_mask
        special = torch.isin(ids, self._special.to(ids.device))
        has = ((batch.rationale > 0) & att.bool() & ~special).any(-1)
        rows = torch.nonzero(has).flatten()
        p = self.params
        on_r, on_n, k = replacement_positions(batch.rationale[rows], att[rows], special[rows], p.copies, self._gen,
                                              p.max_rationale_fraction)
        draw = dict(generator=self._gen, prior=self._prior, mask_id=self._mask_id)
        s_r = replace_tokens(ids[rows], on_r, **draw)
        s_n = replace_tokens(ids[rows], on_n, **draw)
        short = int((on_n.sum(-1)[:, 0] < k).sum()) if rows.numel() else 0
        counts = {"skipped": float(len(batch) - rows.numel()), "short_non_rationale": float(short),
                  "replaced_mean": float(k.double().mean()) if rows.numel() else 0.0}
        return rows, s_r, s_n, on_r, on_n, counts

    def cost(self, batch_size: int, seq_len: int) -> PassCounts:
        """The batch and its R copies in S^R and in S^N: (1 + 2R) rows per example, forward and backward."""
        rows = batch_size * (1 + 2 * self.params.copies)
        return PassCounts(forward=rows, backward=rows)

    def loss(self, model: Classifier, batch: Batch) -> torch.Tensor:
        rows, s_r, s_n, _, _, counts = self.copies_of(batch)
        n, R = rows.numel(), self.params.copies
        if n == 0:
            self._logs = {**counts, "used": 0.0, "dropped_zero": 0.0}
            return torch.zeros((), device=batch.input_ids.device)
        T = s_r.shape[-1]
        rep = lambda t: None if t is None else t[rows].unsqueeze(1).expand(n, R, T).reshape(n * R, T)
        inputs = {"input_ids": torch.cat([s_r.reshape(n * R, T), s_n.reshape(n * R, T)]),
                  "attention_mask": torch.cat([rep(batch.attention_mask)] * 2)}
        if batch.token_type_ids is not None:
            inputs["token_type_ids"] = torch.cat([rep(batch.token_type_ids)] * 2)
        labels = batch.labels[rows].repeat_interleave(R).repeat(2)
        log_p, log_not = gold_log_probs(model(**inputs).logits, labels)
        log_p, log_not = log_p.view(2, n, R), log_not.view(2, n, R)
        m = log2_odds_of_mean(log_p, log_not, self.params.lower_bound)  # (2, n): m_R, m_N
        loss, keep = margin_loss(m[0], m[1], self.params.margin)
        self._logs = {**counts, "used": float(keep.sum()), "dropped_zero": float(n - keep.sum()),
                      "m_rationale": float(m[0].detach().mean()), "m_other": float(m[1].detach().mean())}
        return loss

    def logs(self) -> dict[str, float]:
        """Per step: ``skipped`` (rows without a rationale token), ``used`` (rows in the mean),
        ``dropped_zero`` (m exactly 0), ``short_non_rationale`` (fewer other tokens than k),
        ``replaced_mean`` (k), and the mean log-odds ``m_rationale`` and ``m_other``."""
        return dict(self._logs)
