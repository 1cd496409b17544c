"""Influence explanations for HILDIF's EXPLAIN step (FastIF, Guo et al. 2020; Koh & Liang 2017):
for an anchor x with gold label y, the training examples z whose upweighting most lowers the
anchor's loss: ``I(z, x) = -grad L(z) . s_test``, ``s_test = H^-1 grad L(x, y)`` (Koh & Liang
eq. 2); negative is helpful.

1. kNN pre-filter: the ``knn_k`` training examples nearest the anchor in the model's pooled
   representation (eval mode), computed once per round for all anchors;
2. ``s_test`` by LiSSA or conjugate gradient (``registry._lib.ihvp``) over the parameter set;
3. every candidate scored at once per chunk: ``grad L(z) . s`` for all z of a chunk is one
   forward-mode product of the per-example losses along ``s`` (``torch.func.jvp``), no
   per-example gradient is stored;
``method: cosine`` scores ``-cos(grad L(z), grad L(x))`` instead (influence tuning's gradient
cosine, first order: per-example gradients by vmap), a cheaper choice.

The examples returned are the ones scored, indexed in the candidate data (the authors' code
scores a shuffled loader's positions and shows other examples: reference_code_notes.md 2.6).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator, Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn
from torch.func import functional_call, jvp

from registry import StrictParams
from registry._lib.hvp import loss_grad
from registry._lib.ihvp import s_test_cg, s_test_lissa
from registry._lib.knn import nearest_neighbours
from registry._lib.param_sets import PARAM_SPEC_HELP, LastNLayers, ParamSpec
from registry._lib.per_example import eval_mode, per_example_grads
from registry.errors import UserError
from registry.types import Batch


class ExplainParams(StrictParams):
    """FastIF settings (the HILDIF code's: k 3000, damping 5e-3, scale 1e4, 1000 recursions)."""

    method: Literal["lissa", "cg", "cosine"] = Field("lissa", description="s_test by LiSSA (FastIF) or conjugate gradient; "
                                                                          "cosine: the gradient cosine, no Hessian")
    parameters: ParamSpec = Field(default_factory=lambda: LastNLayers(last_n_layers=2),
                                  description=PARAM_SPEC_HELP + " (FastIF's experiments: the top 2 of 12 layers + head)")
    knn_k: int = Field(1000, ge=1, description="candidates kept by the kNN pre-filter (the authors: 3000 of 393k; sized to a CPU)")
    knn_metric: Literal["l2", "cosine"] = Field("l2", description="kNN distance on pooled features (the authors: FAISS L2)")
    damping: float = Field(5e-3, ge=0.0, description="damping: both methods estimate (H + damping x scale I)^-1 v "
                                                      "(LiSSA's fixed point), so CG adds damping x scale to H's diagonal")
    scale: float = Field(1e4, gt=0.0, description="LiSSA scale (must exceed the Hessian's largest eigenvalue); "
                                                  "CG uses it only in its damping x scale")
    depth: int = Field(100, ge=1, description="LiSSA recursion depth (the authors: 1000 single-example steps); the "
                                              "distance to the fixed point shrinks at best like (1 - damping)^depth: "
                                              "0.61 at 100, 0.007 at 1000 with damping 5e-3, so 100 is a truncated series")
    repeats: int = Field(1, ge=1, description="independent LiSSA recursions averaged")
    cg_iterations: int = Field(20, ge=1, description="conjugate-gradient iterations")
    cg_batches: int = Field(4, ge=1, description="training batches whose Hessian CG inverts")
    hessian_batch_size: int = Field(32, ge=1, description="training examples per Hessian-vector product "
                                                          "(the authors: 1; FastIF's mnli.py: 128)")
    chunk: int = Field(64, ge=1, description="candidates per forward pass when scoring")


@dataclass
class Explanation:
    anchor_index: int  # row of the anchor in the anchors batch
    candidate_indices: list[int]  # rows of the candidate data, most helpful first
    scores: list[float]  # their influence I(z, x) (negative: helpful)


@torch.no_grad()
def pooled_features(model: nn.Module, batches: Iterator[Batch]) -> torch.Tensor:
    """(N, H) pooled representations (what the head reads), eval mode, in batch order."""
    with eval_mode(model):
        return torch.cat([model(**b.model_inputs()).pooled.detach() for b in batches])


def loss_directional(model: nn.Module, batch: Batch, params: list[tuple[str, nn.Parameter]],
                     direction: list[torch.Tensor]) -> torch.Tensor:
    """(N,) ``grad_theta L(z_i) . d`` for every example of ``batch``: one jvp of the per-example
    losses along ``d`` (parameters outside ``params`` held fixed)."""
    names = [n for n, _ in params]
    primals = tuple(p.detach() for _, p in params)

    def losses(*values: torch.Tensor) -> torch.Tensor:
        out = functional_call(model, dict(zip(names, values)), (), batch.model_inputs(), strict=False)
        logits = out.logits if out.logits.dtype in (torch.float32, torch.float64) else out.logits.float()
        return F.cross_entropy(logits, batch.labels, reduction="none")

    return jvp(losses, primals, tuple(d.to(p.dtype) for d, p in zip(direction, primals)))[1]


def anchor_s_test(model: nn.Module, anchor: Batch, params: list[nn.Parameter], settings: ExplainParams,
                  hessian_batches: Iterator[Batch]) -> list[torch.Tensor]:
    """``s_test = H^-1 grad L(anchor, gold label)`` (Koh & Liang eq. 2's right factor) for one
    anchor row, by ``settings.method`` (lissa or cg); for ``cosine`` the unit anchor gradient."""
    s = settings
    v = [g.detach() for g in loss_grad(model, anchor, params)]
    if s.method == "lissa":
        return s_test_lissa(model, v, params, hessian_batches, damping=s.damping, scale=s.scale, depth=s.depth,
                            repeats=s.repeats)
    if s.method == "cg":  # the system LiSSA converges to, so that the two methods are interchangeable
        x = s_test_cg(model, v, params, [next(hessian_batches) for _ in range(s.cg_batches)],
                      damping=s.damping * s.scale, iterations=s.cg_iterations)
        if not any(bool(t.any()) for t in x) and any(bool(t.any()) for t in v):
            raise UserError(f"conjugate gradient took no step: the Hessian plus damping x scale ({s.damping:g} x "
                            f"{s.scale:g}) has no positive curvature along the anchor's gradient, so every influence "
                            "would be 0; raise the explain setting 'damping', or use method: lissa")
        return x
    norm = torch.sqrt(sum((x.double() ** 2).sum() for x in v)).clamp_min(1e-30)
    return [x / norm.to(x.dtype) for x in v]


def by_length(rows: torch.Tensor, lengths: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """``rows`` reordered by token length (so a chunk pads little) and the permutation that
    restores the given order; unchanged without ``lengths``."""
    if lengths is None:
        return rows, torch.arange(len(rows))
    rows = rows.cpu()
    order = torch.argsort(lengths.cpu()[rows], stable=True)
    return rows[order], torch.argsort(order)


def influence_scores(model: nn.Module, rows: torch.Tensor, candidates: Callable[[torch.Tensor], Batch],
                     params: list[tuple[str, nn.Parameter]], direction: list[torch.Tensor], *, method: str,
                     chunk: int, lengths: torch.Tensor | None = None) -> torch.Tensor:
    """(len(rows),) float64 scores of the candidate ``rows``, in that order: the influence
    ``-grad L(z) . s_test`` (one jvp per chunk), or for ``method == "cosine"`` ``-cos(grad L(z),
    direction)`` (per-example gradients by vmap).  Negative is helpful in both.  With the
    candidates' token ``lengths``, chunks are formed by length (less padding; the same scores up to float rounding)."""
    sorted_rows, restore = by_length(rows, lengths)
    if method == "cosine":
        scores = -_gradient_cosine(model, direction, sorted_rows, candidates, params, chunk)
    else:
        scores = -torch.cat([loss_directional(model, candidates(c), params, direction).detach().double().cpu()
                             for c in sorted_rows.split(chunk)])
    return scores[restore]


def candidate_features(model: nn.Module, candidates: Callable[[torch.Tensor], Batch], n_candidates: int, chunk: int,
                       lengths: torch.Tensor | None = None) -> torch.Tensor:
    """(n_candidates, H) pooled features of every candidate row, in row order (chunks formed by
    length when ``lengths`` is given); compute once per checkpoint and pass to ``explain``."""
    rows, restore = by_length(torch.arange(n_candidates), lengths)
    feats = pooled_features(model, (candidates(c) for c in rows.split(chunk)))
    return feats[restore.to(feats.device)]


def explain(model: nn.Module, anchors: Batch, candidates: Callable[[torch.Tensor], Batch], n_candidates: int,
            params: list[tuple[str, nn.Parameter]], *, settings: ExplainParams, top: int,
            hessian_batches: Iterator[Batch], features: torch.Tensor | None = None,
            lengths: torch.Tensor | None = None) -> list[Explanation]:
    """The ``top`` most helpful candidates of each anchor (module docstring); eval mode throughout.

    ``candidates(rows)`` builds a batch of candidate rows on the model's device; ``features``
    are the candidates' pooled features when already computed for this checkpoint (else
    computed here, once for all anchors); ``lengths`` are the candidates' token lengths (e.g.
    ``EncodedSplit.lengths``), used only to chunk them with less padding.  LiSSA's randomness
    is the order of ``hessian_batches``, which the caller draws."""
    s = settings
    plist = [p for _, p in params]
    with eval_mode(model):
        if features is None:
            features = candidate_features(model, candidates, n_candidates, s.chunk, lengths)
        anchor_feats = pooled_features(model, iter([anchors]))
        _, near = nearest_neighbours(anchor_feats, features, s.knn_k, s.knn_metric)
        found = []
        for a in range(len(anchors)):
            one = anchors.select(torch.tensor([a], device=anchors.labels.device))
            direction = anchor_s_test(model, one, plist, s, hessian_batches)
            rows = near[a].cpu()
            scores = influence_scores(model, rows, candidates, params, direction, method=s.method, chunk=s.chunk,
                                      lengths=lengths)
            order = torch.argsort(scores, stable=True)[:top]  # most negative (helpful) first
            found.append(Explanation(a, rows[order].tolist(), scores[order].tolist()))
    return found


def _gradient_cosine(model: nn.Module, v: list[torch.Tensor], rows: torch.Tensor, candidates: Callable[[torch.Tensor], Batch],
                     params: list[tuple[str, nn.Parameter]], chunk: int) -> torch.Tensor:
    """cos(grad L(z), v) per candidate row: per-example gradients by vmap, a chunk at a time."""
    vn = torch.sqrt(sum((x.double() ** 2).sum() for x in v))
    out = []
    for c in rows.split(chunk):
        g = per_example_grads(model, candidates(c), params)
        dots = sum((gi.double().flatten(1) * vi.double().flatten()[None]).sum(1) for gi, vi in zip(g, v))
        norms = torch.sqrt(sum((gi.double().flatten(1) ** 2).sum(1) for gi in g))
        out.append((dots / (norms * vn).clamp_min(1e-30)).cpu())
    return torch.cat(out)

