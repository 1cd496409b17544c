"""Per-example gradient dot products without per-example gradients (the "ghost"/Gram trick).

For a Linear layer z_t = W a_t + b applied at positions t of example i, the per-example
gradient is ``dW_i = sum_t d_it a_it^T`` (d = dL_i/dz), so

    <dW_i, dW_j> = sum_{t,s} (a_it . a_js)(d_it . d_js),     <db_i, db_j> = (sum_t d_it).(sum_s d_js)

(Opacus ghost clipping; Kronfluence pairwise scores; docs/performance.md sec. 2).  An Embedding's
per-example gradient has row ``id_t`` += d_t, so ``<dE_i, dE_j> = sum_{t,s} [id_it = id_js] (d_it . d_js)``
(padding_idx rows never get a gradient).  A LayerNorm's per-example gradients are small
(``sum_t d_t * xhat_t`` and ``sum_t d_t``) and are materialised exactly.

``capture`` runs one batched forward with hooks on the modules that own the selected
parameters; ``Factors.from_loss`` takes one backward of the *summed* per-example losses to the
hooked outputs (in eval mode examples do not interact, so that gives every d_i exactly),
optionally with ``create_graph=True`` so that any function of the dot products can be
differentiated again: an exact second-order route without vmap.  ``Factors.densified``
materialises the per-token Linear gradients instead, the cheaper form when every example is
dotted with many others (all-pairs influence).
"""
from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable, Iterator

import torch
import torch.nn.functional as F
from torch import nn

SUPPORTED = (nn.Linear, nn.LayerNorm, nn.Embedding)


class GramUnsupported(ValueError):
    """A selected parameter is not owned (alone) by a Linear, LayerNorm or Embedding module."""


@dataclass
class _Site:
    """One hooked module: its calls in this forward (a module may run more than once)."""

    module: nn.Module
    weight: bool
    bias: bool
    inputs: list[torch.Tensor] = field(default_factory=list)
    outputs: list[torch.Tensor] = field(default_factory=list)


def owners(model: nn.Module, params: list[tuple[str, nn.Parameter]]) -> list[_Site]:
    """The modules owning ``params``, with which of weight/bias are selected.

    Raises ``GramUnsupported`` for a parameter of another module type or a tied parameter.
    """
    counts: dict[int, int] = {}
    for _, p in model.named_parameters(remove_duplicate=False):
        counts[id(p)] = counts.get(id(p), 0) + 1
    sites: dict[int, _Site] = {}
    for name, p in params:
        path, _, attr = name.rpartition(".")
        mod = model.get_submodule(path) if path else model
        if not isinstance(mod, SUPPORTED) or attr not in ("weight", "bias") or counts.get(id(p), 1) > 1:
            raise GramUnsupported(f"{name} ({type(mod).__name__}.{attr})")
        if isinstance(mod, nn.Embedding) and (mod.max_norm is not None or mod.sparse):
            raise GramUnsupported(f"{name} (Embedding with max_norm/sparse)")
        site = sites.setdefault(id(mod), _Site(mod, False, False))
        site.weight |= attr == "weight"
        site.bias |= attr == "bias"
    return list(sites.values())


@contextmanager
def capture(model: nn.Module, params: list[tuple[str, nn.Parameter]], batch_size: int) -> Iterator[list[_Site]]:
    """Record inputs and outputs of the modules owning ``params`` during the forward in the block.

    Outputs that do not require grad (frozen first layers) are replaced by leaves that do;
    an Embedding output broadcast over the batch (BERT's position embeddings) is expanded
    to ``batch_size`` rows so that each example gets its own output gradient.
    """
    sites = owners(model, params)

    def hook_for(site: _Site):
        def hook(mod, inp, out):
            x = inp[0]
            if isinstance(mod, nn.Embedding) and out.shape[0] != batch_size:
                out = out.expand(batch_size, *out.shape[1:])
                x = x.expand(batch_size, *x.shape[1:])
            if not out.requires_grad:
                out = out.detach().requires_grad_(True)
            site.inputs.append(x)
            site.outputs.append(out)
            return out

        return hook

    handles = [s.module.register_forward_hook(hook_for(s)) for s in sites]
    try:
        yield sites
    finally:
        for h in handles:
            h.remove()


def _tokens(x: torch.Tensor, n: int, keep: int = 1) -> torch.Tensor:
    """(N, ..., last ``keep`` dims) -> (N, T, prod(last dims)): all middle dims become tokens."""
    return x.reshape(n, -1, math.prod(x.shape[x.dim() - keep:]))


def _pair_gram(x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
    """x1 (B, n1, T, c), x2 (B, n2, S, c) -> (B, n1, T, n2, S) token dot products."""
    b, n1, t, c = x1.shape
    n2, s = x2.shape[1], x2.shape[2]
    return torch.bmm(x1.reshape(b, n1 * t, c), x2.reshape(b, n2 * s, c).transpose(1, 2)).view(b, n1, t, n2, s)


Layout = Callable[[torch.Tensor], torch.Tensor]
"""Maps a per-example tensor (N, ...) to (B, n, ...) rows: a view where possible (no gather)."""


class _Factor:
    """Per-example factors of one module's gradient; ``cross`` gives (B, n1, n2) dot products."""

    def cross(self, other: "_Factor", left: Layout, right: Layout) -> torch.Tensor:
        raise NotImplementedError


class _LinearFactor(_Factor):
    def __init__(self, a: torch.Tensor | None, d: torch.Tensor, bias: bool, per_token: bool):
        self.a, self.d, self.bias = a, d, bias  # a (N, T, din) or None, d (N, T, dout)
        self.dsum = d.sum(1) if bias else None
        self.per_token = per_token  # applied to token sequences (not to one pooled vector)

    def dense(self) -> "_DenseFactor":
        """The per-example gradients ``dW_i = d_i^T a_i`` (N, dout*din) and ``db_i``, materialised."""
        parts = [torch.bmm(self.d.transpose(1, 2), self.a).flatten(1)] if self.a is not None else []
        if self.bias:
            parts.append(self.dsum)
        return _DenseFactor(*parts)

    def cross(self, other: "_LinearFactor", left: Layout, right: Layout) -> torch.Tensor:
        out = None
        if self.a is not None:
            ga = _pair_gram(left(self.a), right(other.a))
            gd = _pair_gram(left(self.d), right(other.d))
            out = (ga * gd).sum((2, 4))
        if self.bias:
            gb = torch.einsum("bxo,byo->bxy", left(self.dsum), right(other.dsum))
            out = gb if out is None else out + gb
        return out


class _EmbeddingFactor(_Factor):
    def __init__(self, ids: torch.Tensor, d: torch.Tensor, padding_idx: int | None):
        self.ids, self.d, self.padding_idx = ids, d, padding_idx  # ids (N, T), d (N, T, H)

    def cross(self, other: "_EmbeddingFactor", left: Layout, right: Layout) -> torch.Tensor:
        i1, i2 = left(self.ids), right(other.ids)  # (B, n1, T), (B, n2, S)
        d1, d2 = left(self.d), right(other.d)
        same = i1[:, :, :, None, None] == i2[:, None, None, :, :]
        if self.padding_idx is not None:
            same &= (i1 != self.padding_idx)[:, :, :, None, None]
        gd = _pair_gram(d1, d2)
        return (gd * same.to(gd.dtype)).sum((2, 4))


class _DenseFactor(_Factor):
    def __init__(self, *g: torch.Tensor):
        self.g = g  # (N, p) blocks: materialised per-example gradients

    def cross(self, other: "_DenseFactor", left: Layout, right: Layout) -> torch.Tensor:
        return sum(torch.einsum("bxp,byp->bxy", left(a), right(b)) for a, b in zip(self.g, other.g))


def _factor(site: _Site, ds: list[torch.Tensor], n: int) -> _Factor:
    mod = site.module
    if isinstance(mod, nn.Linear):
        a = torch.cat([_tokens(x, n) for x in site.inputs], 1) if site.weight else None
        per_token = any(x.dim() > 2 for x in site.inputs)
        return _LinearFactor(a, torch.cat([_tokens(d, n) for d in ds], 1), site.bias, per_token)
    if isinstance(mod, nn.Embedding):
        ids = torch.cat([x.reshape(n, -1) for x in site.inputs], 1)
        return _EmbeddingFactor(ids, torch.cat([_tokens(d, n) for d in ds], 1), mod.padding_idx)
    # LayerNorm: y = xhat * w + b  ->  dw_i = sum_t d_it * xhat_it,  db_i = sum_t d_it
    k = len(mod.normalized_shape)
    parts = []
    if site.weight:
        xhat = [F.layer_norm(x, mod.normalized_shape, None, None, mod.eps) for x in site.inputs]
        parts.append(sum(_tokens(d * xh, n, k).sum(1) for d, xh in zip(ds, xhat)))
    if site.bias:
        parts.append(sum(_tokens(d, n, k).sum(1) for d in ds))
    return _DenseFactor(*parts)


class Factors:
    """Per-example gradient factors of a batch over a parameter set (see module docstring)."""

    def __init__(self, factors: list[_Factor], n: int, device: torch.device):
        self.factors, self.n, self.device = factors, n, device

    @classmethod
    def from_loss(cls, sites: list[_Site], loss_sum: torch.Tensor, n: int, create_graph: bool) -> "Factors":
        """Backward of ``loss_sum`` (the sum of per-example losses) to the hooked outputs."""
        outs = [o for s in sites for o in s.outputs]
        grads = torch.autograd.grad(loss_sum, outs, create_graph=create_graph, allow_unused=True)
        grads = [torch.zeros_like(o) if g is None else g for o, g in zip(outs, grads)]
        if not create_graph:  # first order only: no graph through the activations either
            for s in sites:
                s.inputs = [x.detach() for x in s.inputs]
        facs, pos = [], 0
        for s in sites:
            k = len(s.outputs)
            if k:
                facs.append(_factor(s, grads[pos:pos + k], n))
            pos += k
        return cls(facs, n, loss_sum.device)

    def densified(self) -> "Factors":
        """The same dot products with per-token Linear layers materialised as per-example gradients.

        Cheaper when every example meets many others (all-pairs influence, e.g. CID): a dense
        dot costs din*dout per pair against T*S*(din+dout) for the Gram.  Layers applied to one
        vector per example (pooler, head) stay factored, where the Gram is the cheaper one.
        """
        facs = [f.dense() if isinstance(f, _LinearFactor) and f.per_token else f for f in self.factors]
        return Factors(facs, self.n, self.device)

    def cross(self, other: "Factors", left: Layout, right: Layout) -> torch.Tensor:
        """(B, n1, n2) float64 dot products ``<g_x, g'_y>`` summed over all modules, where
        ``left`` arranges the rows of ``self`` as (B, n1, ...) and ``right`` those of ``other``
        (same parameter set) as (B, n2, ...)."""
        total = None
        for f, g in zip(self.factors, other.factors):
            part = f.cross(g, left, right).double()
            total = part if total is None else total + part
        if total is None:
            b, n1 = left(torch.zeros(self.n, device=self.device)).shape
            n2 = right(torch.zeros(other.n, device=self.device)).shape[1]
            return torch.zeros(b, n1, n2, dtype=torch.float64, device=self.device)
        return total

    def sq_norms(self) -> torch.Tensor:
        """(N,) float64 squared per-example gradient norms."""
        return self.cross(self, _each, _each).view(self.n)


def _each(x: torch.Tensor) -> torch.Tensor:
    return x[:, None]


def groups(b: int, n: int, start: int = 0, stop: int | None = None) -> Layout:
    """Layout: rows as ``b`` consecutive groups of ``n``, columns ``start:stop`` of each group."""
    if start == 0 and stop is None:
        return lambda x: x.view(b, n, *x.shape[1:])
    return lambda x: x.view(b, n, *x.shape[1:])[:, start:stop]


def whole(x: torch.Tensor) -> torch.Tensor:
    """Layout: all rows as one group."""
    return x[None]
