"""Precision helpers shared by the objectives."""
from __future__ import annotations

import torch


def full_precision(x: torch.Tensor) -> torch.Tensor:
    """Half-precision values (autocast logits) to float32 for a loss; float32/64 unchanged, so
    a float64 model's gradient checks stay in float64."""
    return x if x.dtype in (torch.float32, torch.float64) else x.float()
