"""One checkpoint file per seed: a single state dict, written atomically, read back with
``torch.load(weights_only=True)`` (only tensors, numbers, strings and containers of them, so
a checkpoint someone hands you cannot run code)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

#: what ``torch.load`` may reconstruct: tensors and plain containers only, never arbitrary objects
WEIGHTS_ONLY = True


class Checkpoint:
    """``save(state)`` replaces the file atomically; ``load()`` returns the state or ``None``."""

    def __init__(self, path: Path):
        self.path = path

    def exists(self) -> bool:
        return self.path.is_file()

    def save(self, state: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        torch.save(state, tmp)
        os.replace(tmp, self.path)

    def load(self, device: torch.device) -> dict[str, Any] | None:
        if not self.exists():
            return None
        return torch.load(self.path, map_location=device, weights_only=WEIGHTS_ONLY)

    def __str__(self) -> str:
        return str(self.path)
