"""Token replacement for erasure/replace-based interpretation (UIMER-IM, Chen et al. 2024 §3.3):
which positions of a batch to replace, and what with, drawn on the batch's device.

Everything is batched tensor work (``torch.rand`` / ``torch.multinomial`` with a device
generator): no Python loop over examples or tokens, unlike the authors' one-off precompute.
"""
from __future__ import annotations

import math

import torch


def token_prior(input_ids: torch.Tensor, attention_mask: torch.Tensor, special_ids: torch.Tensor,
                vocab_size: int) -> torch.Tensor:
    """Unigram frequencies (V,) of the real, non-special tokens of ``input_ids`` (the training
    split): UIMER's ``frequency`` ("Prior") replacement distribution.  Sums to 1."""
    real = attention_mask.bool() & ~torch.isin(input_ids, special_ids.to(input_ids.device))
    counts = torch.bincount(input_ids[real].reshape(-1), minlength=vocab_size)[:vocab_size].double()
    if counts.sum() == 0:
        raise ValueError("the training split has no non-special token to count")
    return counts / counts.sum()


def uniform_prior(vocab_size: int, special_ids: torch.Tensor) -> torch.Tensor:
    """Uniform over the vocabulary without the special tokens ([CLS], [SEP], [PAD], [MASK], [UNK])."""
    p = torch.ones(vocab_size, dtype=torch.double)
    p[special_ids[special_ids < vocab_size]] = 0
    return p / p.sum()


def _pick(candidates: torch.Tensor, k: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Bool (B, R, T): per row and copy, ``min(k[b], #candidates)`` candidate positions chosen
    uniformly without replacement (independently per copy)."""
    score = torch.rand(candidates.shape, device=candidates.device, generator=generator)
    score = torch.where(candidates, score, torch.full_like(score, -1.0))  # candidates rank first
    rank = score.argsort(dim=-1, descending=True).argsort(dim=-1)
    return candidates & (rank < k.view(-1, 1, 1))


def replacement_positions(
    rationale: torch.Tensor, attention_mask: torch.Tensor, special: torch.Tensor, copies: int,
    generator: torch.Generator, max_fraction: float | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Positions replaced in the S^R and S^N copies, bool (B, R, T) each, and ``k`` (B,).

    ``k[b]`` = number of rationale tokens of row b, capped at ``max(1, floor(max_fraction * n_b))``
    with ``n_b`` its real non-special tokens (the authors' ``max_rationale_percentage``); under
    the cap each copy replaces a random ``k``-subset of the rationale tokens, else all of them.
    S^N replaces ``k[b]`` random positions that are real, not special and not rationale, drawn
    per copy; where fewer exist, all of them (``min(k, available)``; see the objective's logs).
    Special and padding positions are never chosen: ``special`` (B, T) marks them, and the
    rationale mask is 0 there by construction (``registry.data``), enforced here anyway.
    """
    B, T = rationale.shape
    real = attention_mask.bool() & ~special
    rat = (rationale > 0) & real
    n_rat = rat.sum(-1)
    k = n_rat
    if max_fraction is not None:
        cap = torch.clamp(torch.floor(real.sum(-1).double() * max_fraction + 1e-9).long(), min=1)
        k = torch.minimum(n_rat, cap)
    rat_c = rat.unsqueeze(1).expand(B, copies, T)
    non_c = (real & ~rat).unsqueeze(1).expand(B, copies, T)
    on_r = rat_c.clone() if max_fraction is None else _pick(rat_c, k, generator)
    on_n = _pick(non_c, k, generator)
    return on_r, on_n, k


def replace_tokens(input_ids: torch.Tensor, where: torch.Tensor, generator: torch.Generator, *,
                   prior: torch.Tensor | None = None, mask_id: int | None = None) -> torch.Tensor:
    """``input_ids`` (B, T) repeated per copy (B, R, T) with the ``where`` positions replaced by
    draws from ``prior`` (V,) (``torch.multinomial``, with replacement) or by ``mask_id``."""
    out = input_ids.unsqueeze(1).expand(where.shape)
    if mask_id is not None:
        return out.masked_fill(where, mask_id)
    if where.numel() == 0:
        return out.clone()
    # one draw per position, kept where replaced: no host sync on how many positions that is
    draws = torch.multinomial(prior.to(out.device, torch.float), where.numel(), replacement=True, generator=generator)
    return torch.where(where, draws.view(where.shape).to(out.dtype), out)


def log2_odds_of_mean(log_p: torch.Tensor, log_not_p: torch.Tensor, lower_bound: float) -> torch.Tensor:
    """``m = log2(pbar / (1 - pbar))`` with ``pbar = mean_r p_r`` over the last dim, from the
    per-copy ``log p_r`` and ``log(1 - p_r)`` (exact, no 1 - p cancellation near p = 1);
    ``m = log2(lower_bound)`` where ``pbar <= lower_bound`` (UIMER ``log_odds``)."""
    R = log_p.shape[-1]
    log_pbar = torch.logsumexp(log_p, -1) - math.log(R)
    log_not = torch.logsumexp(log_not_p, -1) - math.log(R)
    m = (log_pbar - log_not) / math.log(2.0)
    floor = torch.full_like(m, math.log2(lower_bound))
    return torch.where(log_pbar <= math.log(lower_bound), floor, m)
