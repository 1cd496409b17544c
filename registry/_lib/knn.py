"""Exact k nearest neighbours by matrix products (FastIF's kNN pre-filter, Guo et al. 2020,
sec. 3.1, without FAISS: at the sizes a run scores, the exact product on the device is cheap)."""
from __future__ import annotations

import torch


def nearest_neighbours(queries: torch.Tensor, keys: torch.Tensor, k: int, metric: str = "l2",
                       chunk: int = 4096) -> tuple[torch.Tensor, torch.Tensor]:
    """(distances or similarities [q, k], indices [q, k]) of the ``k`` keys nearest each query,
    nearest first.

    ``metric``: ``l2`` (squared Euclidean distance, FAISS ``IndexFlatL2`` as in the authors'
    code) or ``cosine`` (cosine similarity).  Keys are scored ``chunk`` at a time in float64 and
    the running top k kept, so memory is ``q x (chunk + k)``.  ``k`` is capped at the number of keys.
    """
    if metric not in ("l2", "cosine"):
        raise ValueError(f"metric must be 'l2' or 'cosine', not {metric!r}")
    q = queries.double()
    if metric == "cosine":
        q = q / q.norm(dim=1, keepdim=True).clamp_min(1e-12)
    k = min(k, keys.shape[0])
    best_s = torch.empty(q.shape[0], 0, dtype=q.dtype, device=q.device)
    best_i = torch.empty(q.shape[0], 0, dtype=torch.long, device=q.device)
    for start in range(0, keys.shape[0], chunk):
        kk = keys[start:start + chunk].to(q.device).double()
        if metric == "cosine":
            score = q @ (kk / kk.norm(dim=1, keepdim=True).clamp_min(1e-12)).T
        else:  # minus the squared distance: larger is nearer for both metrics
            score = -((q * q).sum(1, keepdim=True) - 2 * q @ kk.T + (kk * kk).sum(1)[None]).clamp_min(0)
        idx = torch.arange(start, start + kk.shape[0], device=q.device).expand(q.shape[0], -1)
        both = torch.cat([best_s, score], 1)
        top = torch.topk(both, min(k, both.shape[1]), dim=1, sorted=True)  # k may exceed the keys seen so far
        best_s, best_i = top.values, torch.cat([best_i, idx], 1).gather(1, top.indices)
    return (-best_s if metric == "l2" else best_s), best_i
