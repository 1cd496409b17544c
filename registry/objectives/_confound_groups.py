"""Probe and A/B sampling shared by influence tuning and embedding tuning (Han & Tsvetkov
2021, sec. 4: A = same label and confound as the probe, B = same label, other confound).

Only training examples whose confound is visible (``confound_visible``, the confound-access
rate of sec. 6.3) and known (``!= -1``) are probes or candidates.  Draws are uniform and
fresh on every call, as in the reference code; a group smaller than k is drawn with
replacement.
"""
from __future__ import annotations

import math
from typing import Any, Iterator

import torch
from pydantic import Field

from registry import StrictParams
from registry._lib.influence import InfluenceLoss
from registry.base import Objective
from registry.errors import UserError
from registry.types import Batch, EncodedData, ObjectiveContext


class ConfoundGroups:
    """Index of the visible training examples by (label, confound)."""

    def __init__(self, data: EncodedData, owner: str):
        labels = torch.as_tensor(data.labels).cpu().long()
        confound = torch.as_tensor(data.confound).cpu().long()
        visible = torch.as_tensor(data.confound_visible).cpu().bool() & (confound >= 0)
        self.eligible = visible.nonzero().squeeze(1)
        if self.eligible.numel() == 0:
            raise UserError(f"objective {owner!r}: no training example has a visible confound (the confound column "
                            "is all -1, or data.confound_access is 0); set data.confound_access > 0 or use a "
                            "dataset with a confound column")
        values = confound[self.eligible].unique()
        if values.numel() < 2:
            raise UserError(f"objective {owner!r}: every visible training example has the same confound value "
                            f"({int(values[0])}), so there is no B group (same label, other confound); raise "
                            "data.confound_access or use a dataset whose confound takes two or more values")
        self.labels, self.confound = labels, confound
        self.same: dict[tuple[int, int], torch.Tensor] = {}
        self.other: dict[tuple[int, int], torch.Tensor] = {}
        el_y, el_c = labels[self.eligible], confound[self.eligible]
        for y, c in {(int(a), int(b)) for a, b in zip(el_y, el_c)}:
            self.same[(y, c)] = self.eligible[(el_y == y) & (el_c == c)]
            self.other[(y, c)] = self.eligible[(el_y == y) & (el_c != c)]
        if all(v.numel() == 0 for v in self.other.values()):
            raise UserError(f"objective {owner!r}: no label has visible training examples with two different "
                            "confound values, so no probe has a B group; raise data.confound_access")

    def sample_probes(self, n: int, gen: torch.Generator) -> torch.Tensor:
        """``min(n, #eligible)`` distinct probe indices, uniformly."""
        pick = torch.randperm(self.eligible.numel(), generator=gen)[:n]
        return self.eligible[pick]

    @staticmethod
    def _draw(pool: torch.Tensor, k: int, gen: torch.Generator) -> torch.Tensor:
        if pool.numel() >= k:
            return pool[torch.randperm(pool.numel(), generator=gen)[:k]]
        return pool[torch.randint(pool.numel(), (k,), generator=gen)]

    def rows(self, probes: torch.Tensor, k: int, gen: torch.Generator, exclude_self: bool) -> tuple[torch.Tensor, int]:
        """(P', 1 + 2k) rows ``[probe, A_1..A_k, B_1..B_k]`` and how many probes were skipped
        (no B partner, or no A partner once the probe itself is excluded)."""
        out, skipped = [], 0
        for p in probes.tolist():
            key = (int(self.labels[p]), int(self.confound[p]))
            same, other = self.same.get(key), self.other.get(key)
            if same is not None and exclude_self:
                same = same[same != p]
            if same is None or other is None or same.numel() == 0 or other.numel() == 0:
                skipped += 1
                continue
            out.append(torch.cat([torch.tensor([p]), self._draw(same, k, gen), self._draw(other, k, gen)]))
        rows = torch.stack(out) if out else torch.empty(0, 1 + 2 * k, dtype=torch.long)
        return rows, skipped


class ProbeParams(StrictParams):
    """Params shared by the probe-based objectives."""

    probes: int = Field(75, ge=1, description="probes sampled per round (TextLen 75, MSGS 100 in the paper)")
    k: int = Field(5, ge=1, description="candidates drawn per probe from each of A and B (paper: 5 TextLen, 3 MSGS)")
    probe_batch: int = Field(64, ge=1, description="probes per optimizer step (paper: 64 TextLen, 16 MSGS)")
    exclude_self: bool = Field(False, description="never draw the probe as its own A candidate "
                                                  "(false = the reference code's behaviour)")


class ProbeObjective(Objective):
    """An objective that brings its own batches: the round's probes, ``probe_batch`` at a time."""

    train_mode = False
    own_data = True
    requires = ("confound",)
    Params = ProbeParams

    def bind(self, ctx: ObjectiveContext) -> None:
        super().bind(ctx)
        self.groups = ConfoundGroups(ctx.train, self.name or type(self).__name__)
        self._round: torch.Tensor | None = None
        self._logs: dict[str, float] = {}

    def start_round(self) -> None:
        self._round = self.groups.sample_probes(self.params.probes, self.ctx.generator)

    def steps_per_epoch(self, train: EncodedData | None = None) -> int:
        """``ceil(min(probes, eligible) / probe_batch)``: eligible = training examples with a
        visible, known confound (params alone when neither ``train`` nor bound data is given)."""
        data = train if train is not None else getattr(getattr(self, "ctx", None), "train", None)
        n = self.params.probes
        if data is not None:
            known = torch.as_tensor(data.confound) >= 0
            n = min(n, int((torch.as_tensor(data.confound_visible).bool() & known).sum()))
        return math.ceil(n / self.params.probe_batch)

    def rows_per_step(self) -> int:
        """Rows one step runs: ``min(probe_batch, probes)`` probes, each with its 2k candidates."""
        return min(self.params.probe_batch, self.params.probes) * (1 + 2 * self.params.k)

    def state_dict(self) -> dict[str, Any]:
        return {"round": self._round}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._round = state["round"]

    def batches(self, epoch: int) -> Iterator[Batch]:
        if self._round is None:
            self.start_round()
        order = self._round[torch.randperm(self._round.numel(), generator=self.ctx.generator)]
        for chunk in order.split(self.params.probe_batch):
            yield self.ctx.train.batch(chunk)

    def sample_rows(self, batch: Batch) -> tuple[torch.Tensor, int]:
        """Fresh A/B draws for the probes of ``batch``: (P', 1+2k) row indices, skipped count.

        In a multi-process run every rank draws the rows of the whole batch (so the objective
        generator stays in step on every rank) and keeps its share (``ctx.ranks.part``);
        ``finish`` combines the shares."""
        probes = batch.index.detach().cpu().long()
        rows, skipped = self.groups.rows(probes, self.params.k, self.ctx.generator, self.params.exclude_self)
        return self.ctx.ranks.part(rows), skipped

    def finish(self, res: InfluenceLoss | None, out: torch.Tensor | None, skipped: int) -> torch.Tensor:
        """The loss this process contributes for J computed on its rows (``res``; ``None`` when
        it has none, ``out`` the tensor whose backward is grad J), and the round's logs.

        One process: ``out`` itself.  Several: J = sum_p J_p / v over the v probes counted on all
        ranks, so rank r contributes ``out * v_r / v`` and the sum of the ranks' gradients (the
        engine all-reduces them) is the single-process grad J; the logs are all-reduced too.
        Every rank calls this once per step (it holds a collective)."""
        ranks = self.ctx.ranks
        if not ranks.split:
            if res is None:
                return self.no_rows(skipped)
            self.record(res, skipped)
            return out
        device = self.ctx.device
        if res is None:
            stats = torch.zeros(4, dtype=torch.float64, device=device)
            out = torch.zeros((), device=device, requires_grad=True)
        else:
            valid = res.valid
            v = valid.sum().double()
            stats = torch.stack([v, res.J.detach().double() * v, res.diff[valid].double().sum(), (~valid).sum().double()])
        total = ranks.sum(stats)
        count = total[0].clamp_min(1)
        J = total[1] / count
        if not torch.isfinite(J):
            self._not_finite()
        self._logs = {"influence_diff": float(total[2] / count), "J": float(J),
                      "skipped_probes": float(skipped + int(total[3]))}
        return out * (stats[0] / count).to(out.dtype) if res is not None else out

    def no_rows(self, skipped: int) -> torch.Tensor:
        """The loss of a batch whose probes were all skipped: 0, with no gradient."""
        self._logs = {"influence_diff": 0.0, "J": 0.0, "skipped_probes": float(skipped)}
        return torch.zeros((), device=self.ctx.device, requires_grad=True)

    def record(self, res: InfluenceLoss, skipped: int) -> None:
        """Check J and keep the logs: mean m_A - m_B over counted probes, J, skipped probes."""
        if not torch.isfinite(res.J.detach()):
            self._not_finite()
        valid = res.valid
        self._logs = {
            "influence_diff": float(res.diff[valid].mean()) if bool(valid.any()) else 0.0,
            "J": float(res.J.detach()),
            "skipped_probes": float(skipped + int((~valid).sum())),
        }

    def _not_finite(self) -> None:
        raise UserError(f"objective {self.name!r}: the influence loss J is not finite (the model's outputs or "
                        "gradients overflowed or are NaN); lower the learning rate of the label or influence phase")

    def logs(self) -> dict[str, float]:
        return dict(self._logs)

