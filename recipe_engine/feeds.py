"""Where a step's batches come from: the training data in a resumable order, and the own
batches of a probe term (its round's probes, epoch after epoch)."""
from __future__ import annotations

import math
from typing import Any, Iterator

import torch

from recipe_engine.errors import UserError
from registry.types import Batch, EncodedData


def epoch_order(n: int, seed: int, epoch: int) -> torch.Tensor:
    """The shuffled order of epoch ``epoch``: a pure function of (seed, epoch), for exact resume."""
    g = torch.Generator().manual_seed(seed * 100_003 + epoch)
    return torch.randperm(n, generator=g)


def train_batches(data: EncodedData, batch_size: int, seed: int, pos: dict[str, int]) -> Iterator[Batch]:
    """Yield training batches forever from ``pos["epoch"]``, ``pos["batch"]``; ``pos`` always
    names the next batch to read, so a checkpoint of it resumes the same order."""
    per_epoch = math.ceil(len(data) / batch_size)
    while True:
        order = epoch_order(len(data), seed, pos["epoch"])
        while pos["batch"] < per_epoch:
            b = pos["batch"]
            pos["batch"] += 1
            yield data.batch(order[b * batch_size:(b + 1) * batch_size])
        pos["epoch"], pos["batch"] = pos["epoch"] + 1, 0


class OwnBatches:
    """The batches of a term that brings its own data (``Objective.batches``).

    In a round the epochs run over the same probes (the paper's n influence epochs); in a
    joint phase (``fresh_rounds``) every pass over the probes is followed by a fresh round, so
    a long phase does not keep tuning the same few examples.  An epoch's batches are taken
    when its first batch is asked for (the objective's generator is drawn in the same order
    as a lazy loop would draw it) and kept, so ``state_dict`` can resume mid-epoch.
    """

    def __init__(self, objective: Any, term_id: str, phase_path: str, *, fresh_rounds: bool):
        self.objective, self.term_id, self.phase_path = objective, term_id, phase_path
        self.fresh_rounds = fresh_rounds
        self.epoch, self.pos, self.current = 0, 0, None  # current: this epoch's batches, once drawn

    def start(self, round_index: int = 0) -> None:
        """A new round: the objective samples its probes; epoch 0 starts."""
        self.objective.round_index, self.objective.round_path = round_index, self.phase_path
        self.objective.start_round()
        self.epoch, self.pos, self.current = 0, 0, None

    def __iter__(self) -> "OwnBatches":
        return self

    def __next__(self) -> Batch:
        while True:
            if self.current is None:
                self.current = list(self.objective.batches(self.epoch) or [])
                self.pos = 0
                if not self.current:
                    raise UserError(f"objective {self.term_id!r} produced no batches in phase {self.phase_path!r}")
            if self.pos < len(self.current):
                self.pos += 1
                return self.current[self.pos - 1]
            self.current = None
            if self.fresh_rounds:
                self.start(self.objective.round_index)
            else:
                self.epoch += 1

    def state_dict(self) -> dict[str, Any]:
        batches = None if self.current is None else [dict(b.__dict__) for b in self.current]
        return {"epoch": self.epoch, "pos": self.pos, "batches": batches, "objective": self.objective.state_dict()}

    def load_state_dict(self, state: dict[str, Any], round_index: int = 0) -> None:
        self.objective.round_index, self.objective.round_path = round_index, self.phase_path
        self.epoch, self.pos = state["epoch"], state["pos"]
        self.current = None if state["batches"] is None else [Batch(**b) for b in state["batches"]]
        self.objective.load_state_dict(state["objective"])
