"""One checkpoint file per seed: a single state dict, written atomically, read back with
``torch.load(weights_only=True)`` (only tensors, numbers, strings and containers of them, so
a checkpoint someone hands you cannot run code)."""
from __future__ import annotations

import os
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from recipe_engine import faults
from recipe_engine.errors import UserError

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
        faults.point("checkpoint")
        os.replace(tmp, self.path)

    def load(self, device: torch.device) -> dict[str, Any] | None:
        if not self.exists():
            return None
        try:
            return torch.load(self.path, map_location=device, weights_only=WEIGHTS_ONLY)
        except pickle.UnpicklingError as exc:
            raise UserError(f"{self.path}: refused: this checkpoint holds objects other than tensors, numbers and "
                            "strings (tampered with, or not written by recipe-engine), and loading it could run "
                            "code, so it was not loaded; delete it to train this seed from its start, or resume a "
                            f"run folder you trust ({str(exc).splitlines()[-1][:200]})") from None
        except (EOFError, RuntimeError, zipfile.BadZipFile) as exc:
            raise UserError(f"{self.path}: not a readable checkpoint ({exc}); delete it to train this seed "
                            "from its start") from None

    def __str__(self) -> str:
        return str(self.path)
