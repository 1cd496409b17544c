"""Early stopping on a dev metric, and the best model kept for the final evaluation.

``update`` is called after every evaluation during training (``evaluation.every``). It
reports when the watched metric has not improved by more than ``min_delta`` for
``patience`` evaluations in a row. The training loop then ends the current phase when it is
``until: converged`` (and patience starts again: the authors' "train the task to
convergence, then add the margin", UIMER) or stops training. With ``restore_best`` the
model at the best evaluation is saved (``checkpoints/best.pt``) and the final evaluation is
made on it, so test scores are the ones at the best dev step.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
from torch import nn

from recipe_engine.checkpoint import Checkpoint
from recipe_engine.errors import UserError
from recipe_engine.schema import EarlyStopping


class EarlyStopper:
    def __init__(self, spec: EarlyStopping | None, best_path: Path, writes: bool = True):
        """``writes`` False: track the metric, but leave ``best.pt`` to the process that writes
        it (rank 0 of a multi-process run; the others read it in ``restore_best``)."""
        self.spec = spec
        self.writes = writes
        self.best_ckpt = Checkpoint(best_path)
        self.best = -math.inf if spec is None or spec.mode == "max" else math.inf
        self.best_step: int | None = None
        self.bad = 0  # evaluations in a row without improvement

    @property
    def active(self) -> bool:
        return self.spec is not None

    @property
    def split(self) -> str:
        """The split the watched metric is computed on (what an evaluation during training covers)."""
        return self.spec.metric.split("/", 1)[0] if self.spec is not None else "dev"

    def update(self, values: dict[str, float], step: int, modules: dict[str, nn.Module]) -> bool:
        """Record one evaluation; keep ``modules`` when it is the best; True when patience ran out."""
        if self.spec is None:
            return False
        if self.spec.metric not in values:
            raise UserError(f"evaluation.early_stopping.metric {self.spec.metric!r} is not among the metrics "
                            f"evaluated during training ({', '.join(sorted(values))}); pick one of those")
        value = float(values[self.spec.metric])
        better = value > self.best + self.spec.min_delta if self.spec.mode == "max" else value < self.best - self.spec.min_delta
        if better:
            self.best, self.best_step, self.bad = value, step, 0
            if self.spec.restore_best and self.writes:
                self.best_ckpt.save({name: m.state_dict() for name, m in modules.items()})
            return False
        self.bad += 1
        return self.bad >= self.spec.patience

    def reset_patience(self) -> None:
        """A new phase starts counting afresh (the best value so far is kept)."""
        self.bad = 0

    def restore_best(self, modules: dict[str, nn.Module], device: torch.device) -> bool:
        """Load the best evaluation's weights into ``modules``; False when there is nothing to restore."""
        if self.spec is None or not self.spec.restore_best or self.best_step is None:
            return False
        state = self.best_ckpt.load(device)
        if state is None:
            return False
        for name, m in modules.items():
            m.load_state_dict(state[name])
        return True

    def summary(self) -> str:
        return f"best {self.spec.metric} {self.best:.4g} at step {self.best_step}" if self.spec else ""

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "best_step": -1 if self.best_step is None else self.best_step, "bad": self.bad}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state:
            self.best, self.bad = float(state["best"]), int(state["bad"])
            self.best_step = None if state["best_step"] < 0 else int(state["best_step"])
