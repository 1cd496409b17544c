"""Inverse Hessian-vector products for influence functions (Koh & Liang 2017, sec. 3):
``s_test = H^-1 v`` by LiSSA (Agarwal et al. 2017, as FastIF and the HILDIF code run it) or by
conjugate gradient on a fixed set of batches.  ``H`` is the Hessian of the mean training loss
over the chosen parameters; products by double backward (``registry._lib.hvp``)."""
from __future__ import annotations

import math
from typing import Iterable, Iterator

import torch
from torch import nn

from registry._lib.hvp import hvp
from registry.errors import UserError
from registry.types import Batch

#: LiSSA stops with an error once |h_j| exceeds this many times the bound |v| / damping that
#: holds at every step for a positive-semidefinite H with eigenvalues below (2 - damping) scale
DIVERGENCE_FACTOR = 100.0


def _dot(a: list[torch.Tensor], b: list[torch.Tensor]) -> torch.Tensor:
    return sum((x.double() * y.double()).sum() for x, y in zip(a, b))


def mean_hvp(model: nn.Module, batch: Batch, params: list[nn.Parameter], vec: list[torch.Tensor]) -> list[torch.Tensor]:
    """``H_B v`` for the *mean* cross-entropy of ``batch`` (``hvp`` is of the sum)."""
    return [h / len(batch) for h in hvp(model, batch, params, vec, params)]


def s_test_lissa(model: nn.Module, v: list[torch.Tensor], params: list[nn.Parameter], batches: Iterator[Batch], *,
                 damping: float, scale: float, depth: int, repeats: int = 1) -> list[torch.Tensor]:
    """LiSSA: ``h_0 = v``, ``h_j = v + (1 - damping) h_{j-1} - H_{B_j} h_{j-1} / scale``,
    ``s_test = h_depth / scale``, averaged over ``repeats`` independent recursions.

    FastIF's form (``influence_utils.get_inverse_hvp_lissa``; Koh & Liang's ``get_inverse_hvp_lissa``
    is the same with ``h_0 = v``).  Its fixed point is ``(H + damping * scale * I)^-1 v``: the
    recursion is ``h_j = v + A h_{j-1}`` with ``A = (1 - damping) I - H / scale``, which converges
    when every eigenvalue lambda of H lies in ``(-damping * scale, (2 - damping) * scale)``, i.e.
    when ``scale`` exceeds H's largest eigenvalue (damping also tolerates slightly negative
    curvature).  A diverging recursion (non-finite, or ``|h_j|`` past ``DIVERGENCE_FACTOR *
    |v| / damping``) is a ``UserError`` naming the settings to change, never a silent garbage score.
    """
    vnorm = math.sqrt(float(sum((x.double() ** 2).sum() for x in v)))
    limit = DIVERGENCE_FACTOR * vnorm / damping if damping > 0 else math.inf
    out = [torch.zeros_like(x) for x in v]
    for _ in range(repeats):
        h = [x.clone() for x in v]
        for j in range(depth):
            hv = mean_hvp(model, next(batches), params, h)
            h = [vi + (1 - damping) * hi - hvi / scale for vi, hi, hvi in zip(v, h, hv)]
            norm = math.sqrt(float(sum((x.double() ** 2).sum() for x in h)))
            if not math.isfinite(norm) or norm > limit:
                raise UserError(f"LiSSA diverged at recursion step {j + 1} of {depth} (|h| = {norm:.3g}, |v| = {vnorm:.3g}): "
                                f"scale ({scale:g}) must exceed the Hessian's largest eigenvalue; raise the explain "
                                f"setting 'scale' (e.g. x10) or 'damping' ({damping:g}), or use method: cg")
        out = [o + hi / scale / repeats for o, hi in zip(out, h)]
    return out


def s_test_cg(model: nn.Module, v: list[torch.Tensor], params: list[nn.Parameter], batches: Batch | Iterable[Batch], *,
              damping: float, iterations: int, tol: float = 1e-10) -> list[torch.Tensor]:
    """Conjugate gradient on ``(H_S + damping I) x = v``, ``H_S`` the Hessian of the mean loss
    over the fixed ``batches`` (one Batch or several, weighted by their sizes); exact in at most
    dim(x) iterations when ``H_S + damping I`` is positive definite.  Stops when ``|r| <= tol |v|``.

    Negative curvature along a search direction (``p . A p <= 0``: ``H_S`` indefinite and
    ``damping`` too small) stops the iteration at the current iterate rather than stepping
    uphill; the answer is then the truncated (Steihaug-style) solution."""
    batches = [batches] if isinstance(batches, Batch) else list(batches)
    n = sum(len(b) for b in batches)

    def a_times(x: list[torch.Tensor]) -> list[torch.Tensor]:
        total = [damping * xi for xi in x]
        for b in batches:
            total = [t + h * len(b) / n for t, h in zip(total, mean_hvp(model, b, params, x))]
        return total

    x = [torch.zeros_like(vi) for vi in v]
    r = [vi.clone() for vi in v]
    p = [ri.clone() for ri in r]
    rr, stop = _dot(r, r), tol ** 2 * _dot(v, v)
    for _ in range(iterations):
        if rr <= stop:
            break
        ap = a_times(p)
        curvature = _dot(p, ap)
        if curvature <= 0:
            break
        alpha = rr / curvature
        x = [xi + alpha * pi for xi, pi in zip(x, p)]
        r = [ri - alpha * api for ri, api in zip(r, ap)]
        rr_new = _dot(r, r)
        p = [ri + (rr_new / rr) * pi for ri, pi in zip(r, p)]
        rr = rr_new
    return x
