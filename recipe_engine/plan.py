"""Compile a schedule (ordered, possibly repeated phases) into a flat timeline of segments.

A segment is one uninterrupted stretch of optimizer steps with a fixed set of objective
terms and one optimizer.  Each term gets the data it needs: a *per-batch* term (cross-entropy,
adversarial, ...) reads the training batch, a *probe* term (influence or embedding tuning)
draws its own batch for the same step.  A phase with at least one per-batch term draws the
training data (a *joint* phase when it also holds probe terms); a phase with only probe terms
is a *round* on the probe term's own data.  The training loop walks the timeline top to
bottom; ``show --schedule`` prints it and ``diff`` compares two of them.

Budget rule: ``schedule.length`` counts steps drawn from the *training data*; rounds do not
consume it.  ``until: end`` takes what is left, ``repeat: until_end`` repeats its body while
budget is left (train-data children truncated to it), and ``min_remaining: N`` skips a phase
when fewer than N budget steps remain (the reference code's rule of no round in the last
half interval).  A declared phase that gets no step anywhere, without ``min_remaining``
saying it may be skipped, is a problem of the schedule (``Timeline.dropped``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Mapping

import torch

import registry
from recipe_engine.schema import Phase, Recipe, Schedule
from recipe_engine.schema import Term as TermSpec
from registry.data import confound_visibility
from registry.types import DatasetBundle

TRAIN = "train"


@dataclass(frozen=True)
class Term:
    id: str
    name: str
    weight: Any  # float or schema.Ramp
    params: Any
    own_data: bool = False  # draws its own batch (a probe term) rather than the training batch


@dataclass
class Segment:
    index: int
    phase_id: str
    path: str  # e.g. "alternate[2]/influence"
    round: int  # repeat iteration (0 when not repeated)
    terms: list[Term]
    source: str  # TRAIN, or the id of the term whose own batches a round runs on
    steps: int
    epochs: int | None  # set when the phase length was given in epochs
    optimizer: str  # "main" or the phase id that owns the optimizer
    reset_state: bool | str = False
    train_step_start: int = 0  # budget steps consumed before this segment
    until_converged: bool = False  # ends early when early stopping fires (``steps`` is then the most it takes)

    @property
    def draws_train(self) -> bool:
        return self.source == TRAIN

    @property
    def joint(self) -> bool:
        """A phase that draws the training batch and also probe batches for the same step."""
        return self.draws_train and any(t.own_data for t in self.terms)


@dataclass
class Timeline:
    segments: list[Segment] = field(default_factory=list)
    train_steps: int = 0  # total steps drawn from the training data
    steps_per_epoch: int = 0
    #: declared phases that got no step anywhere, with the reason: {phase id: reason}
    dropped: dict[str, str] = field(default_factory=dict)

    @property
    def total_steps(self) -> int:
        return sum(s.steps for s in self.segments)

    def optimizer_steps(self, key: str) -> int:
        return sum(s.steps for s in self.segments if s.optimizer == key)

    def steps_by_phase(self) -> dict[str, int]:
        """Optimizer steps per declared phase id, in the order the phases first run."""
        out: dict[str, int] = {}
        for s in self.segments:
            out[s.phase_id] = out.get(s.phase_id, 0) + s.steps
        return out


class PlanError(ValueError):
    """A schedule that cannot be compiled as written; ``phase`` names the phase at fault."""

    def __init__(self, message: str, phase: str | None = None):
        super().__init__(message)
        self.phase = phase


# ---------------------------------------------------------------- the phase tree
@dataclass(frozen=True)
class PhaseNode:
    phase: Phase
    raw_path: tuple  # e.g. ("schedule", "phases", 0, "phases", 1): the phase's place in the recipe
    depth: int

    @property
    def is_leaf(self) -> bool:
        return not self.phase.phases


def walk_phases(phases: list[Phase], raw_path: tuple = ("schedule", "phases"), depth: int = 0) -> Iterator[PhaseNode]:
    """Every declared phase, parents before their nested phases, in recipe order."""
    for i, ph in enumerate(phases):
        node = PhaseNode(ph, raw_path + (i,), depth)
        yield node
        if ph.phases:
            yield from walk_phases(ph.phases, node.raw_path + ("phases",), depth + 1)


def leaf_terms(phases: list[Phase]) -> Iterator[tuple[Any, Any]]:
    """(leaf phase, objective term) for every term of the schedule, in recipe order."""
    for node in walk_phases(phases):
        if node.is_leaf:
            for term in node.phase.objectives:
                yield node.phase, term


def brings_own_data(name: str) -> bool:
    """Does the registered objective ``name`` draw its own batches (a probe term)?"""
    return bool(registry.get("objectives", name).own_data)


def check_round_files(tl: Timeline) -> None:
    """A term whose rounds keep files named ``round-<r>`` (``Objective.round_files``) gets one
    folder per round: refuse a joint phase (each pass over its data would start a fresh round
    in the same folder) and two rounds with the same repeat index (two such phases, nested
    repeats), which would silently reuse another round's explanations and scores."""
    folders: dict[int, str] = {}
    for s in tl.segments:
        for t in s.terms:
            if not registry.get("objectives", t.name).round_files:
                continue
            if s.joint:
                raise PlanError(f"phase {s.phase_id!r}: term {t.id!r} runs rounds on its own data and keeps each "
                                "round's files; beside a per-batch term every pass over its data would start a new "
                                "round in the same folder; give it a phase of its own (for: {epochs: N})", s.phase_id)
            if folders.setdefault(s.round, s.path) != s.path:
                raise PlanError(f"phase {s.phase_id!r}: term {t.id!r} keeps its round's files in round-{s.round}/, "
                                f"which {folders[s.round]!r} uses too; run its rounds as one phase under "
                                "`repeat: T` (one round per repeat)", s.phase_id)


# ---------------------------------------------------------------- compiling
def _length_steps(spec: Any, unit: str, per_epoch: int) -> tuple[int, int | None]:
    """A `for:`/`length:` value -> (steps, epochs or None)."""
    if isinstance(spec, int):
        return (spec * per_epoch, spec) if unit == "epoch" else (spec, None)
    if spec.steps is not None:
        return spec.steps, None
    return spec.epochs * per_epoch, spec.epochs


def _length_text(spec: Any, unit: str) -> str:
    if isinstance(spec, int):
        return f"for: {spec} ({spec} {unit}{'s' if spec != 1 else ''})"
    return f"for: {{steps: {spec.steps}}}" if spec.steps is not None else f"for: {{epochs: {spec.epochs}}}"


def compile_timeline(schedule: Schedule, train_steps_per_epoch: int,
                     source_steps_per_epoch: Callable[[TermSpec], int | None] | None = None) -> Timeline:
    """Flatten ``schedule`` (a validated schema Schedule) given the loader's steps per epoch.

    ``source_steps_per_epoch(term)`` returns the steps per epoch of a term that brings its
    own data (a probe term), or None for a per-batch term.  The engine passes the bound
    objectives' answer (``timeline_for``); the default asks each objective from its params
    alone, which is what tests of the schedule language need.
    """
    if source_steps_per_epoch is None:
        def source_steps_per_epoch(term: TermSpec) -> int | None:
            return registry.build("objectives", term.name, term.params).steps_per_epoch()

    unit = schedule.unit
    budget = _length_steps(schedule.length, unit, train_steps_per_epoch)[0] if schedule.length is not None else None
    tl = Timeline(steps_per_epoch=train_steps_per_epoch)
    used = 0
    zero: dict[str, str] = {}  # leaf phase id -> why it got no step (first time)
    ran: set[str] = set()
    skippable: set[str] = set()

    def remaining() -> float:
        return math.inf if budget is None else budget - used

    def leaf(ph: Any, path: str, rnd: int, truncate: bool) -> None:
        nonlocal used
        if ph.min_remaining:
            skippable.add(ph.id)
            if remaining() < ph.min_remaining:
                return
        own = [source_steps_per_epoch(raw) for raw in ph.objectives]
        terms = [Term(t.id or t.name, t.name, t.weight, t.params, n is not None) for t, n in zip(ph.objectives, own)]
        source, per_epoch = TRAIN, train_steps_per_epoch
        if all(n is not None for n in own):  # a round on the (last) probe term's own batches
            source, per_epoch = terms[-1].id, own[-1]
        if ph.until == "end":
            if source != TRAIN:
                steps, epochs = 0, None
                why = (f"until: end takes the training budget, but every term of this phase ("
                       f"{', '.join(t.id for t in terms)}) brings its own data, so it takes none; "
                       "give it `for: {epochs: N}` (a round), or add a per-batch term such as cross_entropy")
            else:
                steps, epochs = int(remaining()), None
                why = "until: end, but the schedule length is used up by the phases before it"
        else:
            steps, epochs = _length_steps(ph.for_, unit, per_epoch)
            why = (f"{_length_text(ph.for_, unit)} is 0 steps here ({per_epoch} steps per epoch of its data)"
                   if steps <= 0 else "")
        if source == TRAIN and truncate and steps > remaining():
            steps = int(remaining())
            why = why or f"{_length_text(ph.for_, unit)}, but the schedule length is used up by the phases before it"
        if steps <= 0:
            zero.setdefault(ph.id, why)
            return
        ran.add(ph.id)
        opt = ph.optimizer
        tl.segments.append(Segment(
            index=len(tl.segments), phase_id=ph.id, path=path, round=rnd, terms=terms, source=source,
            steps=steps, epochs=epochs, optimizer=ph.id if opt is not None else "main",
            reset_state=opt.reset_state if opt is not None else False, train_step_start=used,
            until_converged=ph.until == "converged",
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
                        raise PlanError(f"phase {ph.id!r}: repeat until_end made no progress on the training data", ph.id)
                    i += 1
            else:
                for i in range(ph.repeat):
                    walk(ph.phases, f"{path}[{i}]/", i, truncate)

    walk(schedule.phases, "", 0, False)
    check_round_files(tl)
    tl.train_steps = used
    declared = [n.phase.id for n in walk_phases(schedule.phases) if n.is_leaf]
    for pid in declared:
        if pid not in ran and pid not in skippable:
            tl.dropped[pid] = zero.get(pid) or "it never runs (its repeat ends before it is reached)"
    return tl


# ---------------------------------------------------------------- from a recipe and its data
@dataclass
class TrainView:
    """What the plan needs of the training split: labels and which confounds are visible."""

    labels: torch.Tensor
    confound: torch.Tensor
    confound_visible: torch.Tensor

    def __len__(self) -> int:
        return int(self.labels.shape[0])


def train_view(recipe: Recipe, bundle: DatasetBundle, seed: int) -> TrainView:
    """The training split's labels and confound visibility, drawn as ``train_seed`` draws it
    (exactly ``round(access * n_known)`` visible rows, so the counts do not depend on the seed)."""
    split = bundle.splits[recipe.data.train_split]
    confound = torch.tensor(split.confound if split.confound is not None else [-1] * len(split))
    visible = confound_visibility(confound, recipe.data.confound_access, torch.Generator().manual_seed(seed))
    return TrainView(torch.tensor(split.label), confound, visible)


def timeline_for(recipe: Recipe, train: TrainView, objectives: Mapping[tuple[str, str], Any] | None = None) -> Timeline:
    """THE timeline of a recipe on its training data (an ``EncodedData`` or a ``TrainView``).

    ``objectives`` are the run's bound objectives by (phase id, term id); without them (``show``,
    ``validate``, ``diff``) each is built from its params.  Either way a probe term's steps per
    epoch come from ``steps_per_epoch(train)``, a function of its params and the data, so the
    run and every reader see the same timeline.
    """
    built = dict(objectives or {})
    for ph, term in leaf_terms(recipe.schedule.phases):
        built.setdefault((ph.id, term.id or term.name), None)
    by_term: dict[int, Any] = {}
    for ph, term in leaf_terms(recipe.schedule.phases):
        obj = built[(ph.id, term.id or term.name)] or registry.build("objectives", term.name, term.params)
        by_term[id(term)] = obj

    def own_steps(term: Any) -> int | None:
        return by_term[id(term)].steps_per_epoch(train)

    per_epoch = math.ceil(len(train) / recipe.data.batch_size)
    return compile_timeline(recipe.schedule, per_epoch, own_steps)


def check_timeline(tl: Timeline) -> None:
    """Raise ``PlanError`` for the first declared phase that never trains."""
    for pid, why in tl.dropped.items():
        raise PlanError(f"phase {pid!r} gets no step: {why}; fix its length, or write `min_remaining: 1` "
                        "if it may be skipped", pid)


def totals_text(tl: Timeline) -> str:
    """One line: training steps, and optimizer steps per phase."""
    per_phase = ", ".join(f"{pid} {n}" for pid, n in tl.steps_by_phase().items())
    return (f"{tl.train_steps} training steps ({tl.steps_per_epoch}/epoch), {tl.total_steps} optimizer steps "
            f"in {len(tl.segments)} segments ({per_phase})")


# ---------------------------------------------------------------- printing
def describe(tl: Timeline) -> list[list[str]]:
    """Rows for a table: segment, phase path, steps, data source, terms, optimizer."""
    rows = []
    for s in tl.segments:
        length = ("<=" if s.until_converged else "") + f"{s.steps}" + (f" ({s.epochs} ep)" if s.epochs else "")
        terms = ", ".join(
            t.id + ("" if t.weight == 1.0 else f" x{_weight_str(t.weight)}") for t in s.terms
        )
        opt = s.optimizer + (" (reset after)" if s.reset_state else "")
        start = f"{s.train_step_start}" if s.draws_train else f"@{s.train_step_start}"
        data = " + ".join([s.source, *(t.id for t in s.terms if t.own_data)]) if s.joint else s.source
        rows.append([str(s.index), s.path, start, length, data, terms, opt])
    return rows


def _weight_str(w: Any) -> str:
    if isinstance(w, (int, float)):
        return f"{w:g}"
    return f"{w.from_:g}->{w.to:g}/{w.over}"


DESCRIBE_HEADER = ["#", "phase", "train step", "steps", "data", "terms", "optimizer"]
