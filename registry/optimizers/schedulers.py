"""Learning-rate schedules: ``linear`` (warm-up, then linear decay to 0) and ``constant``."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
from pydantic import Field, model_validator

from registry import StrictParams, register
from registry.base import SchedulerComponent


class WarmupParams(StrictParams):
    #: warm-up share used when neither warmup_ratio nor warmup_steps is set
    default_ratio: ClassVar[float] = 0.1
    warmup_ratio: float | None = Field(
        None, ge=0, le=1, description="warm-up length as a share of total_steps, rounded up (default 0.1)"
    )
    warmup_steps: int | None = Field(None, ge=0, description="warm-up length in optimizer steps; instead of warmup_ratio")

    @model_validator(mode="after")
    def _one_warmup(self):
        if self.warmup_steps is not None and self.warmup_ratio is not None:
            raise ValueError("set either warmup_ratio or warmup_steps, not both")
        return self

    def warmup(self, total_steps: int) -> int:
        """Warm-up steps, at most ``total_steps``."""
        if self.warmup_steps is not None:
            return min(self.warmup_steps, total_steps)
        ratio = self.default_ratio if self.warmup_ratio is None else self.warmup_ratio
        return min(math.ceil(ratio * total_steps), total_steps)


@dataclass
class LinearWarmupDecay:
    """LR factor at step s: s/w during warm-up, then (T - s)/(T - w), floored at 0
    (BERT's warmup_linear; HF get_linear_schedule_with_warmup)."""

    warmup: int
    total: int

    def __call__(self, step: int) -> float:
        if step < self.warmup:
            return step / self.warmup
        return max(0.0, (self.total - step) / max(1, self.total - self.warmup))


@dataclass
class ConstantWarmup:
    """LR factor at step s: s/w during warm-up, then 1."""

    warmup: int

    def __call__(self, step: int) -> float:
        return step / self.warmup if step < self.warmup else 1.0


def _check_total(total_steps: int) -> None:
    if total_steps <= 0:
        raise ValueError(f"a scheduler needs total_steps > 0, got {total_steps}")


@register("scheduler", "linear")
class Linear(SchedulerComponent):
    summary = "Linear warm-up from 0 to the optimizer's lr, then linear decay to 0 at total_steps."
    paper = "Devlin et al. 2019, BERT, Sec. A.2 (warmup_linear); Han & Tsvetkov 2021, App. A (warm-up 0.1)"
    equation = "lr_s = lr * s/w for s < w, else lr * max(0, (T - s)/(T - w))"

    class Params(WarmupParams):
        pass

    def build(self, optimizer: torch.optim.Optimizer, total_steps: int) -> torch.optim.lr_scheduler.LRScheduler:
        _check_total(total_steps)
        warmup = self.params.warmup(total_steps)
        return torch.optim.lr_scheduler.LambdaLR(optimizer, LinearWarmupDecay(warmup, total_steps))


@register("scheduler", "constant")
class Constant(SchedulerComponent):
    summary = "Constant learning rate, with an optional linear warm-up from 0."
    paper = ""
    equation = "lr_s = lr * min(1, s/w)  (lr_s = lr when w = 0)"

    class Params(WarmupParams):
        default_ratio: ClassVar[float] = 0.0
        warmup_ratio: float | None = Field(
            None, ge=0, le=1, description="warm-up length as a share of total_steps, rounded up (default 0: no warm-up)"
        )

    def build(self, optimizer: torch.optim.Optimizer, total_steps: int) -> torch.optim.lr_scheduler.LRScheduler:
        _check_total(total_steps)
        warmup = self.params.warmup(total_steps)
        return torch.optim.lr_scheduler.LambdaLR(optimizer, ConstantWarmup(warmup))
