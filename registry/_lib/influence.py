"""The influence-tuning loss J and its exact gradient (Han & Tsvetkov 2021, sec. 4, App. B).

Layout: probes come in groups of R = 1 + 2k rows, ``[probe, A_1..A_k, B_1..B_k]`` (A: same
label and confound as the probe, B: same label, other confound), P groups stacked to N = P*R.

    I(z, z_prb) = cos(g_z, g_prb),  g = grad_theta L        (sec. 2, gradient cosine)
    J_p = (mean_A I - mean_B I)^2,  J = mean_p J_p           (sec. 4)

Three routes to grad_theta J, all exact:

* ``gram`` (default): one batched forward, one backward to the module outputs with
  ``create_graph``, Gram dot products (registry._lib.gram), J in float64, then the caller's
  ``J.backward()``.  This is the adjoint form ``grad J = sum_i H_i v_i`` with
  ``v_i = dJ/dg_i`` never materialised: the backward of J through the Gram entries is one
  double backward of the batched loss.  No vmap, so no LayerNorm batching error.
* ``loop``: one ``autograd.grad(create_graph=True)`` per example, blockwise dots, then
  ``autograd.grad(J_p)`` per probe (the naive oracle).
* ``reference``: the authors' algorithm, batch size 1, ``grad I = p + q - r - s`` from four
  Hessian-vector products per (probe, candidate) pair with the forward recomputed each time.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import torch
from torch import nn

from registry._lib.gram import Factors, capture, groups
from registry._lib.hvp import hvp, loss_grad
from registry._lib.per_example import example_losses, per_example_grads_loop, trim_padding
from registry.types import Batch


@dataclass
class InfluenceLoss:
    """J (float64 scalar), the per-probe ``m_A - m_B`` (detached) and which probes counted."""

    J: torch.Tensor
    diff: torch.Tensor
    valid: torch.Tensor


def influence_loss(dots: torch.Tensor, sq_norms: torch.Tensor, k: int) -> InfluenceLoss:
    """J from dot products: ``dots`` (P, 2k) = <g_prb, g_r> over the candidates, ``sq_norms``
    (P, 1+2k) = |g_r|^2 with column 0 the probe's.  Float64 in, float64 out.

    A group with a zero gradient norm (cosine undefined) is left out of the mean, with a
    zero gradient, instead of turning J into NaN.
    """
    valid = (sq_norms != 0).all(1)  # NaN stays "valid" so that a broken model shows as a NaN J
    safe = torch.where(valid[:, None], sq_norms, torch.ones_like(sq_norms))
    cos = dots / torch.sqrt(safe[:, :1] * safe[:, 1:])
    diff = cos[:, :k].mean(1) - cos[:, k:].mean(1)
    per_probe = torch.where(valid, diff * diff, torch.zeros_like(diff))
    J = per_probe.sum() / valid.sum().clamp_min(1)
    return InfluenceLoss(J, diff.detach(), valid)


def _layout(n: int, k: int) -> int:
    r = 1 + 2 * k
    if n % r:
        raise ValueError(f"{n} rows are not groups of 1 + 2k = {r}")
    return n // r


def influence_gram(model: nn.Module, rows: Batch, k: int, params: list[tuple[str, nn.Parameter]]) -> InfluenceLoss:
    """J with its autograd graph through the Gram entries: ``J.backward()`` gives the exact grad J."""
    rows = trim_padding(rows)
    n = len(rows)
    p = _layout(n, k)
    with capture(model, params, n) as sites:
        losses = example_losses(model, rows)
    facs = Factors.from_loss(sites, losses.sum(), n, create_graph=True)
    r = 1 + 2 * k
    # all R columns on the right (a contiguous view, no gather); column 0 is the probe itself
    dots = facs.cross(facs, groups(p, r, 0, 1), groups(p, r)).view(p, r)[:, 1:]
    return influence_loss(dots, facs.sq_norms().view(p, 1 + 2 * k), k)


def _block_dot(a: list[torch.Tensor], b: list[torch.Tensor]) -> torch.Tensor:
    """Sum over parameter tensors of their dot products, each accumulated into float64."""
    return sum(torch.dot(x.reshape(-1), y.reshape(-1)).double() for x, y in zip(a, b))


def influence_loop(model: nn.Module, rows: Batch, k: int, params: list[tuple[str, nn.Parameter]],
                   targets: list[nn.Parameter]) -> tuple[InfluenceLoss, list[torch.Tensor]]:
    """J and ``grad_targets J`` by one create_graph gradient per example (oracle; exact)."""
    n = len(rows)
    p, r = _layout(n, k), 1 + 2 * k
    plist = [q for _, q in params]
    total = [torch.zeros_like(t) for t in targets]
    Js, diffs, valids = [], [], []
    for i in range(p):
        group = rows.select(torch.arange(i * r, (i + 1) * r, device=rows.labels.device))
        gs = per_example_grads_loop(model, group, plist, create_graph=True)
        dots = torch.stack([_block_dot(gs[0], gs[j]) for j in range(1, r)])[None]
        sq = torch.stack([_block_dot(g, g) for g in gs])[None]
        res = influence_loss(dots, sq, k)
        Js.append(res.J.detach())
        diffs.append(res.diff)
        valids.append(res.valid)
        if bool(res.valid.all()):
            grads = torch.autograd.grad(res.J, targets, allow_unused=True)
            total = [t if g is None else t + g for t, g in zip(total, grads)]
    valid = torch.cat(valids)
    count = max(int(valid.sum()), 1)
    J = torch.stack(Js).sum() / count
    return InfluenceLoss(J, torch.cat(diffs), valid), [t / count for t in total]


def influence_reference(model: nn.Module, rows: Batch, k: int, params: list[tuple[str, nn.Parameter]],
                        targets: list[nn.Parameter]) -> tuple[InfluenceLoss, list[torch.Tensor]]:
    """The authors' algorithm (xhan77/influence-tuning ``influence_tuning()``), batch size 1.

    Per pair: ``grad I = (H_prb g_trn + H_trn g_prb)/(|g_prb||g_trn|) - (g_prb.g_trn) H_prb g_prb/(|g_prb|^3|g_trn|)
    - (g_prb.g_trn) H_trn g_trn/(|g_prb||g_trn|^3)`` (p + q - s - r), four HVPs each recomputing the
    forward; per probe ``grad J_p = 2(m_A - m_B)(mean_A grad I - mean_B grad I)``; mean over probes.
    """
    n = len(rows)
    p, r = _layout(n, k), 1 + 2 * k
    plist = [q for _, q in params]
    one = lambda i: rows.select(torch.tensor([i], device=rows.labels.device))  # noqa: E731
    total = [torch.zeros_like(t) for t in targets]
    Js, diffs = [], []
    for i in range(p):
        prb = one(i * r)
        g_prb = loss_grad(model, prb, plist)
        n_prb = float(_block_dot(g_prb, g_prb)) ** 0.5
        infl, ginfl = [], []
        for j in range(1, r):
            trn = one(i * r + j)
            g_trn = loss_grad(model, trn, plist)
            dot = float(_block_dot(g_prb, g_trn))
            n_trn = float(_block_dot(g_trn, g_trn)) ** 0.5
            h1 = hvp(model, prb, plist, g_trn, targets)
            h2 = hvp(model, trn, plist, g_prb, targets)
            h3 = hvp(model, prb, plist, g_prb, targets)
            h4 = hvp(model, trn, plist, g_trn, targets)
            infl.append(dot / (n_prb * n_trn))
            ginfl.append([(a + b) / (n_prb * n_trn) - dot * c / (n_prb ** 3 * n_trn) - dot * d / (n_prb * n_trn ** 3)
                          for a, b, c, d in zip(h1, h2, h3, h4)])
        m_a, m_b = sum(infl[:k]) / k, sum(infl[k:]) / k
        Js.append((m_a - m_b) ** 2)
        diffs.append(m_a - m_b)
        for t_i in range(len(targets)):
            mean_a = sum(g[t_i] for g in ginfl[:k]) / k
            mean_b = sum(g[t_i] for g in ginfl[k:]) / k
            total[t_i] = total[t_i] + 2 * (m_a - m_b) * (mean_a - mean_b)
    dev = rows.labels.device
    J = torch.tensor(sum(Js) / p, dtype=torch.float64, device=dev)
    diff = torch.tensor(diffs, dtype=torch.float64, device=dev)
    return InfluenceLoss(J, diff, torch.ones(p, dtype=torch.bool, device=dev)), [t / p for t in total]


def influence_grad(model: nn.Module, chunks: Iterable[Batch], k: int, params: list[tuple[str, nn.Parameter]],
                   targets: list[nn.Parameter], route: str = "gram") -> tuple[InfluenceLoss, list[torch.Tensor]]:
    """J and ``grad_targets J`` over probe groups given in several chunks (to bound memory).

    Exact: chunk c with v_c counted probes contributes ``v_c J_c``, so that
    ``J = sum_c v_c J_c / sum_c v_c`` is the mean over all counted probes, as unchunked.
    """
    total = [torch.zeros_like(t) for t in targets]
    Js, diffs, valids = [], [], []
    for rows in chunks:
        if route == "gram":
            res = influence_gram(model, rows, k, params)
            grads = torch.autograd.grad(res.J, targets, allow_unused=True)
        else:
            res, grads = (influence_loop if route == "loop" else influence_reference)(model, rows, k, params, targets)
        v = int(res.valid.sum())
        Js.append(res.J.detach() * v)
        diffs.append(res.diff)
        valids.append(res.valid)
        total = [t if g is None else t + v * g for t, g in zip(total, grads)]
    count = max(int(sum(int(v.sum()) for v in valids)), 1)
    J = torch.stack(Js).sum() / count
    return InfluenceLoss(J, torch.cat(diffs), torch.cat(valids)), [t / count for t in total]
