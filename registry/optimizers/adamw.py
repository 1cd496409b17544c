"""``adamw``: AdamW with decoupled weight decay, biases and LayerNorm weights excluded."""
from __future__ import annotations

from typing import Any, Iterable

import torch
from pydantic import Field

from registry import StrictParams, register
from registry.base import OptimizerComponent


def decay_groups(named_params: Iterable[Any], no_decay: list[str]) -> tuple[list[tuple[str, torch.nn.Parameter]], list[tuple[str, torch.nn.Parameter]]]:
    """Split ``(name, parameter)`` pairs into (decayed, not decayed): a parameter is not decayed
    when any ``no_decay`` pattern is a substring of its name.  Frozen parameters and repeats
    (tied weights) are dropped."""
    decay, keep, seen = [], [], set()
    for item in named_params:
        if not (isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str)):
            raise TypeError(
                "adamw.build takes (name, parameter) pairs, e.g. model.named_parameters(), "
                f"so that no_decay can match names; got {type(item).__name__}"
            )
        name, param = item
        if not param.requires_grad or id(param) in seen:
            continue
        seen.add(id(param))
        (keep if any(pattern in name for pattern in no_decay) else decay).append((name, param))
    return decay, keep


@register("optimizer", "adamw")
class AdamW(OptimizerComponent):
    summary = "torch.optim.AdamW; weight decay on every parameter except those matching no_decay."
    paper = "Loshchilov & Hutter 2019, Decoupled Weight Decay Regularization, Alg. 2; BERT fine-tuning defaults"
    equation = "theta <- theta - lr * (m_hat / (sqrt(v_hat) + eps) + wd * theta)  (wd = 0 for no_decay names)"

    class Params(StrictParams):
        lr: float = Field(2e-5, gt=0, description="learning rate (peak value when a scheduler warms up)")
        weight_decay: float = Field(0.01, ge=0, description="decoupled weight decay of the parameters not in no_decay")
        betas: tuple[float, float] = Field((0.9, 0.999), description="coefficients of the running means of the gradient and its square")
        eps: float = Field(1e-8, gt=0, description="term added to the denominator for numerical stability")
        no_decay: list[str] = Field(
            ["bias", "LayerNorm.weight", "LayerNorm.bias"],
            description="parameters whose name contains one of these strings get no weight decay; [] decays all",
        )

    def build(self, params: Iterable[Any]) -> torch.optim.Optimizer:
        """``params``: ``(name, parameter)`` pairs, e.g. ``model.named_parameters()``.

        Two parameter groups, named ``"decay"`` and ``"no_decay"`` (empty ones left out);
        each group keeps its parameter ``names`` for logging and checkpoints.
        """
        p = self.params
        decay, keep = decay_groups(params, p.no_decay)
        groups = [
            {"name": group, "names": [n for n, _ in items], "params": [q for _, q in items], "weight_decay": wd}
            for group, items, wd in (("decay", decay, p.weight_decay), ("no_decay", keep, 0.0))
            if items
        ]
        if not groups:
            raise ValueError("adamw.build: no trainable parameters (all have requires_grad=False)")
        return torch.optim.AdamW(groups, lr=p.lr, betas=p.betas, eps=p.eps, weight_decay=p.weight_decay)
