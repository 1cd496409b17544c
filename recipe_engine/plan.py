"""Compile a schedule (ordered, possibly repeated phases) into a flat timeline of segments.

A segment is one uninterrupted stretch of steps with a fixed set of objective terms, one
data source (the training loader, or an objective's own batches) and one optimizer.  The
training loop walks the timeline top to bottom; ``show --schedule`` prints it and ``diff``
compares two of them.

Budget rule: ``schedule.length`` counts steps drawn from the *training data*; phases fed by
an objective's own data (influence rounds) do not consume it.  ``until: end`` takes what
is left, ``repeat: until_end`` repeats its body while budget is left (train-data children
truncated to it), and ``min_remaining: N`` skips a phase when fewer than N budget steps
remain (the reference code's rule of no round in the last half interval).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

import registry

TRAIN = "train"


@dataclass(frozen=True)
class Term:
    id: str
    name: str
    weight: Any  # float or schema.Ramp
    params: Any


@dataclass
class Segment:
    index: int
    phase_id: str
    path: str  # e.g. "alternate[2]/influence"
    round: int  # repeat iteration (0 when not repeated)
    terms: list[Term]
    source: str  # TRAIN or the id of the term that brings its own batches
    steps: int
    epochs: int | None  # set when the phase length was given in epochs
    optimizer: str  # "main" or the phase id that owns the optimizer
    reset_state: bool | str = False
    train_step_start: int = 0  # budget steps consumed before this segment

    @property
    def draws_train(self) -> bool:
        return self.source == TRAIN


@dataclass
class Timeline:
    segments: list[Segment] = field(default_factory=list)
    train_steps: int = 0  # total steps drawn from the training data
    steps_per_epoch: int = 0

    @property
    def total_steps(self) -> int:
        return sum(s.steps for s in self.segments)

    def optimizer_steps(self, key: str) -> int:
        return sum(s.steps for s in self.segments if s.optimizer == key)


class PlanError(ValueError):
    pass


def _length_steps(spec: Any, unit: str, per_epoch: int) -> tuple[int, int | None]:
    """A `for:`/`length:` value -> (steps, epochs or None)."""
    if isinstance(spec, int):
        return (spec * per_epoch, spec) if unit == "epoch" else (spec, None)
    if spec.steps is not None:
        return spec.steps, None
    return spec.epochs * per_epoch, spec.epochs


def compile_timeline(schedule: Any, train_steps_per_epoch: int, source_steps_per_epoch: Callable[[Any], int | None] | None = None) -> Timeline:
    """Flatten ``schedule`` (a validated schema Schedule) given the loader's steps per epoch.

    ``source_steps_per_epoch(term)`` returns the steps per epoch of a term that brings its
    own data, or None; by default it instantiates the objective from its params.
    """
    if source_steps_per_epoch is None:
        def source_steps_per_epoch(term: Any) -> int | None:
            return registry.build("objectives", term.name, term.params).steps_per_epoch()

    unit = schedule.unit
    budget = _length_steps(schedule.length, unit, train_steps_per_epoch)[0] if schedule.length is not None else None
    tl = Timeline(steps_per_epoch=train_steps_per_epoch)
    used = 0

    def remaining() -> float:
        return math.inf if budget is None else budget - used

    def leaf(ph: Any, path: str, rnd: int, truncate: bool) -> None:
        nonlocal used
        if ph.min_remaining and remaining() < ph.min_remaining:
            return
        terms = [Term(t.id or t.name, t.name, t.weight, t.params) for t in ph.objectives]
        source, per_epoch = TRAIN, train_steps_per_epoch
        for t, raw in zip(terms, ph.objectives):
            own = source_steps_per_epoch(raw)
            if own is not None:
                source, per_epoch = t.id, own
        if ph.until == "end":
            steps, epochs = int(remaining()) if source == TRAIN else 0, None
        else:
            steps, epochs = _length_steps(ph.for_, unit, per_epoch)
        if source == TRAIN and truncate:
            steps = int(min(steps, remaining()))
        if steps <= 0:
            return
        opt = ph.optimizer
        tl.segments.append(Segment(
            index=len(tl.segments), phase_id=ph.id, path=path, round=rnd, terms=terms, source=source,
            steps=steps, epochs=epochs, optimizer=ph.id if opt is not None else "main",
            reset_state=opt.reset_state if opt is not None else False, train_step_start=used,
        ))
        if source == TRAIN:
            used += steps

    def walk(phases: list, prefix: str, rnd: int, truncate: bool) -> None:
        for ph in phases:
            path = f"{prefix}{ph.id}"
            if not ph.phases:
                leaf(ph, path, rnd, truncate or budget is not None)
                continue
            if ph.repeat == "until_end":
                i = 0
                while remaining() > 0:
                    before = used
                    walk(ph.phases, f"{path}[{i}]/", i, True)
                    if used == before:
                        raise PlanError(f"phase {ph.id!r}: repeat until_end made no progress on the training data")
                    i += 1
            else:
                for i in range(ph.repeat):
                    walk(ph.phases, f"{path}[{i}]/", i, truncate)

    walk(schedule.phases, "", 0, False)
    tl.train_steps = used
    return tl


def describe(tl: Timeline) -> list[list[str]]:
    """Rows for a table: segment, phase path, steps, data source, terms, optimizer."""
    rows = []
    for s in tl.segments:
        length = f"{s.steps}" + (f" ({s.epochs} ep)" if s.epochs else "")
        terms = ", ".join(
            t.id + ("" if t.weight == 1.0 else f" x{_weight_str(t.weight)}") for t in s.terms
        )
        opt = s.optimizer + (" (reset after)" if s.reset_state else "")
        start = f"{s.train_step_start}" if s.draws_train else f"@{s.train_step_start}"
        rows.append([str(s.index), s.path, start, length, s.source, terms, opt])
    return rows


def _weight_str(w: Any) -> str:
    if isinstance(w, (int, float)):
        return f"{w:g}"
    return f"{w.from_:g}->{w.to:g}/{w.over}"


DESCRIBE_HEADER = ["#", "phase", "train step", "steps", "data", "terms", "optimizer"]
