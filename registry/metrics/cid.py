"""``cid``: confound influence difference (Han & Tsvetkov 2021, sec. 6.1)."""
from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field

from registry import StrictParams, register
from registry._lib.cosine import gradient_cosines
from registry._lib.param_sets import PARAM_SPEC_HELP, ParamSpec, select_parameters
from registry.base import Metric
from registry.errors import UserError
from registry.types import Classifier, EncodedData, ObjectiveContext


def pick_probes(confound: torch.Tensor, n: int, selection: str, seed: int) -> torch.Tensor:
    """``n`` training examples with a known confound: the first ones, or a seeded random draw."""
    known = (confound >= 0).nonzero().squeeze(1)
    if selection == "first":
        return known[:n]
    return known[torch.randperm(known.numel(), generator=torch.Generator().manual_seed(seed))[:n]].sort().values


def cid_from_cosines(cos: torch.Tensor, probes: torch.Tensor, candidates: torch.Tensor, labels: torch.Tensor,
                     confound: torch.Tensor, exclude_self: bool) -> tuple[float, int]:
    """``mean_prb (mean_{A} I - mean_{B} I)`` and how many probes had both groups.

    A = candidates with the probe's label and confound, B = its label and another confound.
    """
    same_label = labels[candidates][None, :] == labels[probes][:, None]
    same_conf = confound[candidates][None, :] == confound[probes][:, None]
    in_a = same_label & same_conf
    if exclude_self:
        in_a &= candidates[None, :] != probes[:, None]
    in_b = same_label & ~same_conf
    ok = in_a.any(1) & in_b.any(1)
    if not bool(ok.any()):
        return float("nan"), 0
    mean = lambda m: (cos * m).sum(1) / m.sum(1).clamp_min(1)  # noqa: E731
    diff = mean(in_a.double()) - mean(in_b.double())
    return float(diff[ok].mean()), int(ok.sum())


@register("metric", "cid")
class CID(Metric):
    """Gradient cosines of P probes against every training example with a known confound
    (the metric uses the confound column whatever ``confound_access`` hides from training).

    Reference code: the first 40 training examples, all parameters, eval mode, the probe
    counted in its own A group (``exclude_self: false``).
    """

    summary = "confound influence difference: mean over probes of mean_A influence - mean_B influence (0 = unconfounded)"
    paper = "Han & Tsvetkov 2021, Influence Tuning, sec. 6.1 (Fig. 3)"
    equation = ("CID = 1/P sum_prb (1/|A| sum_{A} I(z, z_prb) - 1/|B| sum_{B} I(z, z_prb)), I = cos(grad L(z), grad L(z_prb)); "
                "A: same label and confound as the probe, B: same label, other confound")
    requires = ("confound",)
    needs_model = True

    class Params(StrictParams):
        probes: int = Field(40, ge=1, description="number of probes P (paper: 40)")
        selection: Literal["first", "random"] = Field(
            "random", description="'first' P training examples with a known confound (reference code) or a seeded random draw")
        seed: int = Field(0, description="seed of the random probe draw (fixed, so every checkpoint sees the same probes)")
        parameters: ParamSpec = Field("all", description=PARAM_SPEC_HELP)
        exclude_self: bool = Field(False, description="leave the probe out of its own A group (false = reference code)")
        candidates: int | None = Field(
            None, ge=1, description="use at most this many training examples (a seeded random subset) as the A and B "
                                    "groups; null = all of them (paper), the cost grows linearly with it")
        chunk: int = Field(64, ge=1, description="training examples per batched gradient pass")
        route: Literal["gram", "vmap"] = Field(
            "gram", description="'gram': dot products from activations and output gradients (no per-example "
                                "gradients); 'vmap': per-example gradients and one matrix product per parameter tensor")

    def compute_model(self, model: Classifier, ctx: ObjectiveContext) -> dict[str, float]:
        data: EncodedData = ctx.train
        labels = torch.as_tensor(data.labels).cpu().long()
        confound = torch.as_tensor(data.confound).cpu().long()
        p = self.params
        probes = pick_probes(confound, p.probes, p.selection, p.seed)
        if probes.numel() == 0:
            raise UserError("metric 'cid': no training example has a known confound (the confound column is all -1); "
                            "use a dataset with a confound column or remove cid from evaluation.metrics")
        candidates = ((confound >= 0) & torch.isin(labels, labels[probes].unique())).nonzero().squeeze(1)
        if p.candidates is not None and candidates.numel() > p.candidates:
            pick = torch.randperm(candidates.numel(), generator=torch.Generator().manual_seed(p.seed + 1))
            candidates = candidates[pick[:p.candidates]].sort().values
        params = select_parameters(model, p.parameters)
        cos = self._cosines(model, ctx, probes, candidates, params)
        value, counted = cid_from_cosines(cos, probes, candidates, labels, confound, p.exclude_self)
        if counted == 0:
            raise UserError("metric 'cid': no probe has training examples with its label and both the same and another "
                            "confound value; the CID is undefined for this dataset, remove cid from evaluation.metrics")
        return {"cid": value}

    def _cosines(self, model: Classifier, ctx: ObjectiveContext, probes: torch.Tensor, candidates: torch.Tensor,
                 params: list) -> torch.Tensor:
        """(P, C) cosines; in a multi-process run each rank takes its share of the candidates
        (``ctx.ranks``) and the columns are gathered in order, so every rank gets the full matrix."""
        p, ranks = self.params, ctx.ranks
        mine = ranks.part(candidates)
        if mine.numel():
            cos = gradient_cosines(model, ctx.train, probes, mine, params, ctx.device, p.route, p.chunk)
        else:
            cos = torch.zeros((probes.numel(), 0), dtype=torch.float64, device=ctx.device)
        if not ranks.split:
            return cos
        return ranks.gather(cos.to(ctx.device).T.contiguous()).T.to(cos.device)
