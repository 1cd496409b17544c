"""Integrated gradients and plain input gradients on an embedding tensor: the one implementation
the attribution components (``registry/attributions``) and the ``ig_variance`` objective share.

Integrated gradients (Sundararajan et al. 2017, eq. 1), with a quadrature rule of ``m`` nodes
``a_k`` and weights ``w_k`` on [0, 1]:

    IG_j(x) = (x_j - b_j) * int_0^1 dF/dx_j(b + a (x - b)) da
            ~ (x_j - b_j) * sum_k w_k dF/dx_j(b + a_k (x - b))

All ``m * B`` path points go through the model as one batch (node-major: the ``B`` points of
node 0, then node 1, ...), cut into chunks of ``internal_batch_size`` rows, with one
``autograd.grad`` per chunk.  ``create_graph=False`` treats the path gradients as constants
(what Captum computes: a loss on the attributions then reaches only ``x``);
``create_graph=True`` keeps them differentiable (double backward through the model).
"""
from __future__ import annotations

from typing import Callable, Literal

import numpy as np
import torch

Method = Literal["gauss_legendre", "riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid"]
METHODS: tuple[str, ...] = ("gauss_legendre", "riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid")

#: ``forward(points (N, T, D), rows (N,)) -> (N,)``: the attributed score of each point; ``rows``
#: says which example of the batch each point belongs to (to pick its mask and target)
Forward = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def quadrature(nodes: int, method: Method = "gauss_legendre") -> tuple[torch.Tensor, torch.Tensor]:
    """(alphas, weights), float64, of an ``nodes``-point rule for ``int_0^1 g(a) da``.

    Gauss-Legendre: the Legendre nodes on [-1, 1] mapped by ``a = (t + 1) / 2``, weights halved
    (exact for polynomials of degree ``2m - 1``).  Riemann: ``m`` cells of width ``1/m``, the point
    at the cell's left end, right end or middle, weight ``1/m``; trapezoid: ``m`` equally spaced
    points from 0 to 1, weights ``1/(m-1)`` with half weight at both ends.
    """
    if nodes < 1:
        raise ValueError(f"nodes must be >= 1, got {nodes}")
    m = nodes
    if method == "gauss_legendre":
        t, w = np.polynomial.legendre.leggauss(m)
        return torch.from_numpy((t + 1.0) / 2.0), torch.from_numpy(w / 2.0)
    k = torch.arange(m, dtype=torch.float64)
    if method == "riemann_left":
        return k / m, torch.full((m,), 1.0 / m, dtype=torch.float64)
    if method == "riemann_right":
        return (k + 1) / m, torch.full((m,), 1.0 / m, dtype=torch.float64)
    if method == "riemann_middle":
        return (k + 0.5) / m, torch.full((m,), 1.0 / m, dtype=torch.float64)
    if method == "riemann_trapezoid":
        if m < 2:
            raise ValueError("the trapezoid rule needs at least 2 nodes")
        w = torch.full((m,), 1.0 / (m - 1), dtype=torch.float64)
        w[0] = w[-1] = 0.5 / (m - 1)
        return k / (m - 1), w
    raise ValueError(f"unknown quadrature method {method!r}; one of {', '.join(METHODS)}")


def _leaf_points(points: torch.Tensor) -> torch.Tensor:
    return points if points.requires_grad else points.detach().requires_grad_()


def input_gradient(forward: Forward, x: torch.Tensor, create_graph: bool = False) -> torch.Tensor:
    """``dF/dx`` at ``x`` (B, T, D), row by row (saliency, gradient x input; Simonyan et al. 2014)."""
    rows = torch.arange(x.shape[0], device=x.device)
    with torch.enable_grad():
        points = _leaf_points(x if create_graph else x.detach())
        (grad,) = torch.autograd.grad(forward(points, rows).sum(), points, create_graph=create_graph)
    return grad


def path_gradients(forward: Forward, x: torch.Tensor, baseline: torch.Tensor, nodes: int = 10,
                   method: Method = "gauss_legendre", internal_batch_size: int | None = None,
                   create_graph: bool = False) -> torch.Tensor:
    """``sum_k w_k dF/dx(b + a_k (x - b))``, shape of ``x``: the integral of IG before the factor ``x - b``.

    ``baseline`` broadcasts to ``x`` (e.g. (D,) or (T, D)) and is a constant.  ``internal_batch_size``
    bounds the rows (path points) of one forward pass; None: all ``m * B`` at once.
    """
    alphas, weights = (t.to(device=x.device, dtype=x.dtype) for t in quadrature(nodes, method))
    B = x.shape[0]
    base = baseline.detach().to(x.dtype).expand_as(x)
    start_pt = x if create_graph else x.detach()
    delta = start_pt - base
    n = nodes * B
    rows_all = torch.arange(B, device=x.device).repeat(nodes)
    node_all = torch.arange(nodes, device=x.device).repeat_interleave(B)
    chunk = n if internal_batch_size is None else max(1, int(internal_batch_size))
    total = torch.zeros_like(x) if create_graph else torch.zeros_like(x.detach())
    with torch.enable_grad():
        for lo in range(0, n, chunk):
            rows, node = rows_all[lo:lo + chunk], node_all[lo:lo + chunk]
            a = alphas[node].view(-1, *([1] * (x.dim() - 1)))
            points = _leaf_points(base[rows] + a * delta[rows])
            (grad,) = torch.autograd.grad(forward(points, rows).sum(), points, create_graph=create_graph)
            wg = grad * weights[node].view_as(a)
            if chunk >= n:  # one pass: a reshape-sum instead of a scatter
                total = total + wg.view(nodes, *x.shape).sum(0)
            else:
                total = total.index_add(0, rows, wg)
    return total


def integrated_gradients(forward: Forward, x: torch.Tensor, baseline: torch.Tensor, nodes: int = 10,
                         method: Method = "gauss_legendre", internal_batch_size: int | None = None,
                         create_graph: bool = False) -> torch.Tensor:
    """``IG(x) = (x - b) * sum_k w_k dF/dx(b + a_k (x - b))`` (Sundararajan et al. 2017, eq. 1), per
    element of ``x`` (B, T, D).

    ``create_graph=False`` (Captum's computation): the path gradients are constants, so the result
    is differentiable only through the factor ``x - b`` (a penalty reaches whatever produced ``x``,
    e.g. the word-embedding rows of the batch).  ``create_graph=True``: differentiable through the
    path gradients too (every weight of the model; one double backward per chunk).
    """
    grads = path_gradients(forward, x, baseline, nodes, method, internal_batch_size, create_graph)
    return (x - baseline.detach().to(x.dtype)) * grads


def counted_variance(scores: torch.Tensor, counted: torch.Tensor, n: torch.Tensor) -> torch.Tensor:
    """(B,) unbiased variance of each row over ``n[b]`` positions: the ``counted`` entries of ``scores``
    and ``n[b] - counted[b].sum()`` further zeros (padding positions not materialised).

    ``Var_b = (sum_t (s_bt - mu_b)^2) / (n_b - 1)``, ``mu_b = (1/n_b) sum_t s_bt``; a row with fewer
    than two positions has variance 0.  Two-pass form (no ``E[s^2] - E[s]^2`` cancellation).
    """
    c = counted.to(scores.dtype)
    n = n.to(scores.dtype)
    s = scores * c
    mean = s.sum(1) / n.clamp_min(1.0)
    sq = (((s - mean[:, None]) ** 2) * c).sum(1) + (n - c.sum(1)) * mean ** 2
    return sq / (n - 1.0).clamp_min(1.0)
