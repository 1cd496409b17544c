"""The share of a split-up computation this process does (rank ``rank`` of ``world``).

Objectives and metrics that split work across processes (the probes of an influence round,
the candidates of the CID metric) ask ``ObjectiveContext.ranks`` for their part and combine
the results with ``sum`` or ``gather``.  The default, ``Ranks()``, is one process: ``part``
returns everything and ``sum``/``gather`` return their input, so single-process code runs
the same lines.  The engine (``recipe_engine.distributed``) sets up the process group and
builds the ``Ranks`` of a multi-process run; this module only calls ``torch.distributed``.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Ranks:
    rank: int = 0
    world: int = 1

    @property
    def split(self) -> bool:
        """Is the work split across several processes?"""
        return self.world > 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    def part(self, items: torch.Tensor) -> torch.Tensor:
        """This rank's contiguous slice of ``items`` (along dim 0): ``torch.tensor_split`` into
        ``world`` parts, sizes differing by at most one, in rank order (so concatenating the
        parts of ranks 0..world-1 gives ``items`` back)."""
        return items if not self.split else torch.tensor_split(items, self.world)[self.rank]

    def sum(self, t: torch.Tensor) -> torch.Tensor:
        """The element-wise sum of ``t`` over the ranks (a new tensor; no graph)."""
        if not self.split:
            return t
        out = t.detach().clone()
        dist.all_reduce(out, op=dist.ReduceOp.SUM)
        return out

    def gather(self, t: torch.Tensor) -> torch.Tensor:
        """``t`` of every rank concatenated along dim 0 in rank order; the ranks' first
        dimensions may differ (0 included), the other dimensions must agree."""
        if not self.split:
            return t
        t = t.detach().contiguous()
        sizes = [torch.zeros(1, dtype=torch.long, device=t.device) for _ in range(self.world)]
        dist.all_gather(sizes, torch.tensor([t.shape[0]], dtype=torch.long, device=t.device))
        counts = [int(s) for s in sizes]
        top = max(counts)
        padded = torch.zeros((top, *t.shape[1:]), dtype=t.dtype, device=t.device)
        padded[:t.shape[0]] = t
        parts = [torch.empty_like(padded) for _ in range(self.world)]
        dist.all_gather(parts, padded)
        return torch.cat([p[:c] for p, c in zip(parts, counts)])
