"""``adversarial``: the gradient-reversal baseline (Han & Tsvetkov 2021, sec. 5.1, after
Pryzant et al. 2018 and Ganin et al. 2016): predict the label, unlearn the confound."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from registry import StrictParams, register
from registry._lib.grl import grad_reverse
from registry._lib.precision import full_precision
from registry.base import Objective
from registry.errors import UserError
from registry.types import Batch, Classifier, ObjectiveContext


@register("objective", "adversarial")
class Adversarial(Objective):
    """``CE_task + w * CE_confound(head_c(GRL_lambda(dropout(pooled))))``.

    As in the reference code, lambda acts only inside the gradient-reversal layer (the
    confound head itself trains at full strength, the encoder receives -lambda times its
    gradient) and the confound loss has weight 1.  Only examples whose confound is visible
    (``confound_visible`` and not -1) enter the confound loss; it is 0 for a batch with none.
    The confound branch draws its own dropout mask (the reference shares the task head's),
    so the model is only called through its ``forward``.
    """

    summary = "adversarial baseline: task cross-entropy plus a confound classifier behind a gradient-reversal layer"
    paper = "Han & Tsvetkov 2021, sec. 5.1 (Pryzant et al. 2018; Ganin et al. 2016)"
    equation = "L = CE(y, f(x)) + w * CE(c, h_c(GRL_lambda(dropout(pooled(x))))), GRL: forward id, backward -lambda"
    requires = ("confound",)

    class Params(StrictParams):
        grl_lambda: float = Field(0.3, ge=0.0, description="gradient-reversal strength lambda (paper's best: 0.3; grid 0.1-3.0)")
        confound_weight: float = Field(1.0, ge=0.0, description="weight of the confound cross-entropy (reference: 1)")

    def bind(self, ctx: ObjectiveContext) -> None:
        super().bind(ctx)
        confound = torch.as_tensor(ctx.train.confound)
        visible = torch.as_tensor(ctx.train.confound_visible).bool() & (confound >= 0)
        if not bool(visible.any()):
            raise UserError("objective 'adversarial': no training example has a visible confound (the confound column "
                            "is all -1, or data.confound_access is 0); set data.confound_access > 0 or use a dataset "
                            "with a confound column")
        if ctx.num_confounds < 2 or confound[visible].unique().numel() < 2:
            raise UserError("objective 'adversarial': the visible confound takes a single value, so there is nothing "
                            "to unlearn; use a dataset whose confound has two or more values or raise data.confound_access")
        model = ctx.model
        ref = next(model.parameters())
        self.confound_head = nn.Linear(model.hidden_size, ctx.num_confounds).to(device=ctx.device, dtype=ref.dtype)
        std = getattr(getattr(model.encoder, "config", None), "initializer_range", 0.02)
        nn.init.normal_(self.confound_head.weight, std=std)
        nn.init.zeros_(self.confound_head.bias)
        drop = getattr(model, "dropout", None)
        self.dropout_p = drop.p if isinstance(drop, nn.Dropout) else 0.1
        self._logs: dict[str, float] = {}

    def extra_modules(self) -> dict[str, nn.Module]:
        if not hasattr(self, "confound_head"):
            raise RuntimeError("objective 'adversarial': extra_modules() is available after bind()")
        return {"confound_head": self.confound_head}

    def loss(self, model: Classifier, batch: Batch) -> torch.Tensor:
        out = model(**batch.model_inputs())
        task = F.cross_entropy(full_precision(out.logits), batch.labels)
        conf = task.new_zeros(())
        self._logs = {}
        if batch.confound is not None:
            keep = batch.confound >= 0
            if batch.confound_visible is not None:
                keep &= batch.confound_visible.bool()
            if bool(keep.any()):
                h = F.dropout(out.pooled[keep], self.dropout_p, training=model.training)
                z = self.confound_head(grad_reverse(h, self.params.grl_lambda))
                target = batch.confound[keep]
                conf = F.cross_entropy(full_precision(z), target)
                self._logs["confound_accuracy"] = float((z.argmax(-1) == target).float().mean())
        self._logs.update(task_loss=float(task.detach()), confound_loss=float(conf.detach()))
        return task + self.params.confound_weight * conf

    def logs(self) -> dict[str, float]:
        return dict(self._logs)
