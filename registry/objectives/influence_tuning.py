"""``influence_tuning``: make same-confound and other-confound training examples equally
influential on a probe (Han & Tsvetkov 2021, sec. 4 and App. B), with the exact gradient."""
from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field

from registry import register
from registry._lib.gram import GramUnsupported, owners
from registry._lib.influence import influence_grad, influence_gram
from registry._lib.param_sets import PARAM_SPEC_HELP, ParamSpec, select_parameters
from registry._lib.per_example import eval_mode, exact_math
from registry._lib.surrogate import surrogate
from registry.errors import UserError
from registry.objectives._confound_groups import ProbeObjective, ProbeParams
from registry.types import Batch, Classifier, ObjectiveContext, PassCounts


@register("objective", "influence_tuning")
class InfluenceTuning(ProbeObjective):
    """Second-order objective; ``loss`` returns J whose backward is the exact grad J.

    Gradients are taken in eval mode (dropout off) and without autocast, as the reference
    code does.  Routes: ``gram`` (fast, exact: Gram dot products and one double backward,
    see registry._lib.influence), ``loop`` (per-example double backward) and ``reference``
    (the authors' 4 HVPs per pair), the last two for checks and benchmarks.
    """

    second_order = True

    summary = "influence tuning: equalise the gradient-cosine influence of same- and other-confound examples"
    paper = "Han & Tsvetkov 2021, Influence Tuning, sec. 4 and App. B"
    equation = ("J = mean_prb (1/k sum_A cos(g_A, g_prb) - 1/k sum_B cos(g_B, g_prb))^2, g = grad L (eval mode); "
                "grad J = 2(m_A - m_B)(mean_A grad I - mean_B grad I), grad I = p + q - r - s")

    class Params(ProbeParams):
        parameters: ParamSpec = Field("all", description=PARAM_SPEC_HELP)
        route: Literal["gram", "loop", "reference"] = Field(
            "gram", description="how grad J is computed, all exact: 'gram' (Gram dot products + one double backward, "
                                "fast), 'loop' (per-example double backward), 'reference' (authors' 4 HVPs per pair)")
        chunk: int = Field(8, ge=1, description="probes per double-backward pass (memory: ~0.3-0.7 GB per probe "
                                                "for MiniLM at 32-64 tokens, k=5); the result does not depend on it")

    def bind(self, ctx: ObjectiveContext) -> None:
        super().bind(ctx)
        chosen = select_parameters(ctx.model, self.params.parameters)
        if self.params.route == "gram":
            try:
                owners(ctx.model, chosen)
            except GramUnsupported as exc:
                raise UserError(f"objective 'influence_tuning': route 'gram' cannot take per-example dot products of "
                                f"{exc}; set params.route: loop, or restrict params.parameters") from None

    def cost(self, batch_size: int, seq_len: int) -> PassCounts:
        """Per step, over the n = P(1+2k) rows: ``gram`` and ``loop`` run each row forward, backward
        with ``create_graph`` and once through the double backward of J; ``reference`` adds the
        authors' 4 HVPs (a forward, backward and double backward each) per probe-candidate pair."""
        n = self.rows_per_step()
        per_row = PassCounts(forward=n, backward=n, double_backward=n)
        if self.params.route != "reference":
            return per_row
        pairs = min(self.params.probe_batch, self.params.probes) * 2 * self.params.k
        return per_row + 4 * pairs * PassCounts(forward=2, backward=2, double_backward=2)

    def loss(self, model: Classifier, batch: Batch) -> torch.Tensor:
        rows, skipped = self.sample_rows(batch)
        if rows.numel() == 0:
            return self.finish(None, None, skipped)
        device, k, route = self.ctx.device, self.params.k, self.params.route
        params = select_parameters(model, self.params.parameters)
        chunks = [self.ctx.train.batch(c.reshape(-1)).to(device) for c in rows.split(self.params.chunk)]
        with eval_mode(model), exact_math(device):
            if route == "gram" and len(chunks) == 1:  # J with its graph: the caller's backward is grad J
                res = influence_gram(model, chunks[0], k, params)
                out = res.J
            else:
                targets = [p for p in model.parameters() if p.requires_grad]
                res, grads = influence_grad(model, chunks, k, params, targets, route)
                out = surrogate(res.J, targets, grads)
        return self.finish(res, out, skipped)
