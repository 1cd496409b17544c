"""Train and evaluate one seed of a recipe.  ``train_seed`` reads top to bottom: set up, loop
over the plan's timeline segment by segment and step by step, evaluate, finish.  No
callbacks: what happens at a step is written in the loop; setup lives in named functions.

Resumable: the checkpoint (one state dict, ``recipe_engine.checkpoint``) holds the model, the
objectives' extra modules and round state, the optimizers, the schedulers, the RNG states
and the position in the timeline; the training-data order of epoch ``e`` is a pure function
of (seed, e), so a resumed run sees the same batches.
"""
from __future__ import annotations

import math
import os
import random
import sys
import time
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

import registry
from recipe_engine import distributed, faults
from recipe_engine.attribution_dump import save_attributions
from recipe_engine.checkpoint import Checkpoint
from recipe_engine.early_stopping import EarlyStopper
from recipe_engine.errors import UserError
from recipe_engine.evaluate import evaluate_predictions, evaluate_split_metrics, predictions
from recipe_engine.feedback.rounds import RoundFeedback
from recipe_engine.feeds import OwnBatches, epoch_order, train_batches
from recipe_engine.outputs import atomic_write_json
from recipe_engine.plan import PlanError, Segment, Term, Timeline, check_timeline, leaf_terms, timeline_for, totals_text
from recipe_engine.run_log import NullLog, RunLog
from recipe_engine.schema import Recipe
from recipe_engine.stop_signals import StopRequests
from registry._lib.per_example import eval_mode
from registry._lib.ranks import Ranks
from registry.base import Objective
from registry.data import EncodedSplit, confound_visibility, encode_split, truncation_note
from registry.types import Batch, DatasetBundle, ObjectiveContext

__all__ = ["Interrupted", "SeedResult", "train_seed", "evaluate_model", "pick_device", "epoch_order", "train_batches"]


class Interrupted(Exception):
    """Raised by ``max_steps`` (tests simulate a crash with it)."""


@dataclass
class SeedResult:
    seed: int
    metrics: dict[str, float]
    curves: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class OptimizerSlot:
    optimizer: torch.optim.Optimizer
    scheduler: Any  # an LR scheduler or None
    clip: float | None
    schedule: Any = None  # the scheduler component that built ``scheduler`` (rebuilds it for a new horizon)
    horizon: int = 0  # the optimizer steps the schedule spans


@dataclass
class Setup:
    """Everything one seed trains with, built by ``setup``."""

    model: nn.Module
    train: EncodedSplit
    evals: dict[str, EncodedSplit]
    ctx: ObjectiveContext
    objectives: dict[tuple[str, str], Objective]  # (phase id, term id) -> bound objective
    extras: nn.ModuleDict
    timeline: Timeline
    optimizers: dict[str, OptimizerSlot]  # "main" or the phase id owning it
    ranks: Ranks = field(default_factory=Ranks)  # this process's share of a multi-process run
    compiled: nn.Module | None = None  # torch.compile(model) for first-order segments (runtime.compile)


# ---------------------------------------------------------------- one seed
def train_seed(recipe: Recipe, bundle: DatasetBundle, seed: int, seed_dir: Path, *, device: torch.device,
               max_steps: int | None = None, log: Callable[[str], Any] = print, ranks: Ranks = Ranks()) -> SeedResult:
    """Several processes (``ranks``, see ``recipe_engine.distributed``) run the same lines: each
    reads its share of every global batch and of the probes, the gradients are summed, and
    rank 0 alone writes the log, checkpoints and evaluation files."""
    if ranks.main:
        seed_dir.mkdir(parents=True, exist_ok=True)
    seed_everything(seed)
    autocast = autocast_for(device, recipe.runtime.precision)
    run = setup(recipe, bundle, seed, device, ranks, RoundFeedback(seed_dir, seed, log))
    ckpt = Checkpoint(seed_dir / "checkpoints" / "last.pt")
    pos = {"segment": 0, "step": 0, "global_step": 0, "epoch": 0, "batch": 0}
    saved = ckpt.load(device)
    if saved is not None:
        pos = load_state(run, saved)
        log(f"seed {seed}: resumed at step {pos['global_step']} (segment {pos['segment']})")
    log(f"seed {seed}: {totals_text(run.timeline)}")
    # the steps done plus the planned steps left (a resumed run's finished rounds may have run fewer)
    left = sum(s.steps for s in run.timeline.segments[pos["segment"]:]) - pos["step"]
    out = RunLog(seed_dir, seed=seed, total_steps=pos["global_step"] + left, done_steps=pos["global_step"],
                 tensorboard=recipe.runtime.tensorboard, progress=recipe.runtime.progress) if ranks.main else NullLog()
    stream = train_batches(run.train, recipe.data.batch_size, seed, pos)
    every = recipe.evaluation.every
    eval_every = None if every is None else (every.steps or every.epochs * run.timeline.steps_per_epoch)
    stopper = EarlyStopper(recipe.evaluation.early_stopping, seed_dir / "checkpoints" / "best.pt", writes=ranks.main)
    stopper.load_state_dict((saved or {}).get("early_stopping", {}))
    guard = NonFinite(device, recipe.runtime.nonfinite, (saved or {}).get("nonfinite", {}))
    global_step, stop_all = pos["global_step"], False

    with StopRequests() as stop:
        run.ctx.feedback.stopping = lambda: stop.requested is not None  # a feedback page waits until then
        for seg in run.timeline.segments[pos["segment"]:]:
            start = pos["step"] if seg.index == pos["segment"] else 0
            terms = [(t, run.objectives[(seg.phase_id, t.id)]) for t in seg.terms]
            feeds = own_feeds(seg, terms, (saved or {}).get("streams") if start else None)
            planned, seg = seg.steps, settle_round(seg, terms)
            out.fewer_steps(planned - seg.steps)
            if start == 0 and seg.steps != planned:  # once per round (a resumed round's checkpoint has it)
                note = shorten_horizon(run.optimizers[seg.optimizer], planned - seg.steps)
                if note:
                    log(f"seed {seed}: phase {seg.path!r} runs {seg.steps} steps, {planned - seg.steps} fewer than planned; {note}")
            run.model.train(segment_train_mode(terms))
            model = segment_model(run, terms)
            slot = run.optimizers[seg.optimizer]
            for step in range(start, seg.steps):
                batch, share = my_share(next(stream), ranks) if seg.draws_train else (None, 1.0)
                batch = None if batch is None else to_device(batch, device)
                own = {tid: to_device(next(f), device) for tid, f in feeds.items()}
                parts = step_losses(terms, model, batch, own, step, autocast, f"seed {seed}, step {global_step}, phase {seg.path!r}", ckpt, share)
                loss = sum(parts.values())
                parts_all = summed_parts(parts, ranks)  # what one process would have computed (logs, guard)
                loss_all = sum(parts_all.values()) if ranks.split else loss
                optimizer_step(slot, loss, update=guard.note(loss_all, parts_all, global_step + 1), ranks=ranks)
                global_step += 1
                faults.point("step")
                out.step_done()

                due = Due.after(recipe, seg, step, global_step, eval_every)
                stopping = stop.requested
                if ranks.split:  # a stop caught by any rank stops all, at a step they agree on (no per-step sync)
                    stopping = due.log and distributed.any_rank(bool(stop.requested), ranks, device)
                if due.log or due.checkpoint or due.eval or global_step == max_steps or stopping:
                    guard.check(seed, seg, terms, ckpt)
                if due.log:
                    out.train(global_step, guard.seen(global_step, train_record(seg, step, loss_all, slot, parts_all, terms)),
                              postfix(seg, parts_all))
                end_seg = step + 1 == seg.steps
                if due.eval:
                    values = evaluate_model(recipe, run.model, run.evals, bundle, run.ctx, device, autocast, splits=(stopper.split,))
                    out.eval(global_step, values)
                    if stopper.update(values, global_step, {"model": run.model, "extras": run.extras}):
                        end_seg, stop_all = converged(seg, stopper, global_step, seed, log)
                here = {"segment": seg.index, "step": step + 1, "global_step": global_step, "epoch": pos["epoch"], "batch": pos["batch"]}
                if end_seg or stop_all:  # the segment ends: the reset belongs to the round
                    reset_moments(run.optimizers, seg)
                    here = {**here, "segment": len(run.timeline.segments) if stop_all else seg.index + 1, "step": 0}
                if (due.checkpoint or end_seg or stop_all or stopping) and ranks.main:
                    ckpt.save(state_dict(run, here, feeds if here["step"] else {}, stopper, guard))
                if stopping or (max_steps is not None and global_step >= max_steps):
                    out.close_bar()
                    distributed.barrier(ranks)  # rank 0's checkpoint is on disk before any rank leaves
                    raise Interrupted(f"stopped by {stop.requested or 'another rank'} after step {global_step}, "
                                      "checkpoint saved" if stopping else f"stopped after {global_step} steps (--max-steps)")
                if end_seg or stop_all:
                    break
            if stop_all:
                break
    out.close_bar()
    distributed.barrier(ranks)  # rank 0 wrote best.pt; every rank reads it
    if stopper.restore_best({"model": run.model, "extras": run.extras}, device):
        log(f"seed {seed}: final evaluation of the model at its best evaluation ({stopper.summary()})")

    metrics = final_evaluation(recipe, run, bundle, device, autocast, seed_dir, seed, global_step)
    out.final(global_step, metrics)
    out.close()
    return SeedResult(seed, metrics)


# ---------------------------------------------------------------- setup
def pick_device(setting: str) -> torch.device:
    if setting == "cuda" or (setting == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise UserError("runtime.device is 'cuda' but no CUDA device is visible; set runtime.device: auto or cpu")
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        return torch.device("cuda", local_rank)
    return torch.device("cpu")


def seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)


def autocast_for(device: torch.device, precision: str) -> Callable[[], Any]:
    """bf16 autocast on CUDA unless the recipe asks for fp32; nothing on CPU."""
    if device.type == "cuda" and precision in ("auto", "bf16"):
        return lambda: torch.autocast("cuda", dtype=torch.bfloat16)
    return nullcontext


def setup(recipe: Recipe, bundle: DatasetBundle, seed: int, device: torch.device, ranks: Ranks = Ranks(),
          feedback: RoundFeedback | None = None) -> Setup:
    """Model, tokenised data, bound objectives, the timeline and the optimizers, in the order
    that fixes what the seeded RNGs draw (model init, confound visibility, objective heads)."""
    num_labels = len(bundle.label_names)
    model = registry.build("models", recipe.model.name, recipe.model.params).build(num_labels).to(device)
    train_split = bundle.splits[recipe.data.train_split]
    train_confound = torch.tensor(train_split.confound if train_split.confound is not None else [-1] * len(train_split))
    visible = confound_visibility(train_confound, recipe.data.confound_access, torch.Generator().manual_seed(seed))
    train = encode_split(train_split, model.tokenizer, recipe.data.max_length, visible)
    evals = {name: encode_split(bundle.splits[name], model.tokenizer, recipe.data.max_length) for name in recipe.evaluation.splits}
    for note in filter(None, map(truncation_note, [train, *evals.values()])):  # the dataset's notes: runner
        if ranks.main:
            print(f"data: {note}", file=sys.stderr)
    num_confounds = len(bundle.confound_names or []) or int(train_confound.max().item()) + 1
    ctx = ObjectiveContext(model=model, train=train, num_labels=num_labels, num_confounds=max(num_confounds, 1),
                           device=device, generator=torch.Generator().manual_seed(seed + 1),
                           batch_size=recipe.data.batch_size, ranks=ranks, splits=dict(bundle.splits),
                           label_names=list(bundle.label_names), feedback=feedback,
                           encode=lambda split: encode_split(split, model.tokenizer, recipe.data.max_length))
    distributed.check_splittable(recipe, ranks.world)
    objectives = bind_objectives(recipe, ctx)
    named = [(f"{pid}.{tid}.{k}", m) for (pid, tid), obj in objectives.items() for k, m in obj.extra_modules().items()]
    named += [(f"shared.{key}", m) for key, m in ctx.shared_modules.items()]  # ctx.shared: one module, several terms
    unique: dict[int, tuple[str, nn.Module]] = {}
    for name, m in named:  # a module returned twice is trained and checkpointed once, under its first name
        unique.setdefault(id(m), (name.replace(".", "__"), m))
    extras = nn.ModuleDict(dict(unique.values())).to(device)
    timeline = timeline_for(recipe, train, objectives)
    try:
        check_timeline(timeline)
    except PlanError as exc:
        raise UserError(f"{exc} (`recipe-engine validate` names its line)") from None
    optimizers = build_optimizers(recipe, model, extras, objectives, timeline)
    compiled = torch.compile(model) if recipe.runtime.compile else None
    return Setup(model, train, evals, ctx, objectives, extras, timeline, optimizers, ranks, compiled)


def bind_objectives(recipe: Recipe, ctx: ObjectiveContext) -> dict[tuple[str, str], Objective]:
    """One instance per (phase id, term id), built and bound once."""
    objectives = {}
    for ph, term in leaf_terms(recipe.schedule.phases):
        obj = registry.build("objectives", term.name, term.params)
        obj.bind(ctx)
        objectives[(ph.id, term.id or term.name)] = obj
    return objectives


def build_optimizers(recipe: Recipe, model: nn.Module, extras: nn.ModuleDict, objectives: dict[tuple[str, str], Objective],
                     timeline: Timeline) -> dict[str, OptimizerSlot]:
    """The main optimizer over everything, and one per phase that declares its own."""
    everything = list(model.named_parameters()) + [(f"extras.{n}", p) for n, p in extras.named_parameters()]

    def slot(spec: Any, params: list[tuple[str, nn.Parameter]], key: str) -> OptimizerSlot:
        opt = registry.build("optimizers", spec.name, spec.params).build(params)
        sched, component, total = None, None, max(timeline.optimizer_steps(key), 1)
        if spec.scheduler is not None:
            component = registry.build("schedulers", spec.scheduler.name, spec.scheduler.params)
            sched = component.build(opt, total)
        return OptimizerSlot(opt, sched, spec.clip_grad_norm, component, total)

    slots = {"main": slot(recipe.optimizer, everything, "main")}
    for ph, _ in leaf_terms(recipe.schedule.phases):
        if ph.optimizer is not None and ph.id not in slots:
            chosen = phase_parameters(model, [obj for (pid, _), obj in objectives.items() if pid == ph.id], extras)
            slots[ph.id] = slot(ph.optimizer, everything if chosen is None else chosen, ph.id)
    return slots


def phase_parameters(model: nn.Module, objectives: list[Objective],
                     extras: nn.Module | None = None) -> list[tuple[str, nn.Parameter]] | None:
    """What a phase's own optimizer updates: the union of its terms' ``trainable`` sets, or
    ``None`` (model and extra modules) when any term updates everything.  A term may name model
    parameters and parameters of the extra modules (its own or a shared one, e.g. an
    extractor's gate); they come in the model's order, then the extras' (named ``extras.<name>``,
    as in the main optimizer), each once."""
    chosen: set[int] = set()
    for obj in objectives:
        params = obj.trainable(model)
        if params is None:
            return None
        chosen |= {id(p) for p in params}
    everything = list(model.named_parameters())
    if extras is not None:
        everything += [(f"extras.{n}", p) for n, p in extras.named_parameters()]
    return [(n, p) for n, p in everything if id(p) in chosen]


def state_dict(run: Setup, position: dict[str, int], feeds: dict[str, OwnBatches], stopper: EarlyStopper,
               guard: NonFinite) -> dict[str, Any]:
    """The checkpoint: one state dict of tensors, numbers and strings."""
    return {
        "early_stopping": stopper.state_dict(),
        "nonfinite": guard.state_dict(),
        "model": run.model.state_dict(), "extras": run.extras.state_dict(),
        "optimizers": {k: s.optimizer.state_dict() for k, s in run.optimizers.items()},
        "schedulers": {k: s.scheduler.state_dict() for k, s in run.optimizers.items() if s.scheduler is not None},
        "horizons": {k: s.horizon for k, s in run.optimizers.items()},
        "rng": {"torch": torch.get_rng_state(), "objectives": run.ctx.generator.get_state(), "python": random.getstate()},
        "position": dict(position),
        "streams": {tid: f.state_dict() for tid, f in feeds.items()},
    }


def load_state(run: Setup, state: dict[str, Any]) -> dict[str, int]:
    """Restore ``state_dict``; return the position to continue from."""
    run.model.load_state_dict(state["model"])
    run.extras.load_state_dict(state["extras"])
    for key, s in run.optimizers.items():
        s.optimizer.load_state_dict(state["optimizers"][key])
        if s.scheduler is not None:
            s.scheduler.load_state_dict(state["schedulers"][key])
        s.horizon = int(state.get("horizons", {}).get(key, s.horizon))
    torch.set_rng_state(state["rng"]["torch"])
    run.ctx.generator.set_state(state["rng"]["objectives"])
    random.setstate(state["rng"]["python"])
    return dict(state["position"])


def converged(seg: Segment, stopper: EarlyStopper, step: int, seed: int, log: Callable[[str], Any]) -> tuple[bool, bool]:
    """Early stopping fired: end an ``until: converged`` phase (patience starts again), else
    stop training.  Returns (end this segment, stop training)."""
    if seg.until_converged:
        log(f"seed {seed}: phase {seg.path!r} converged at step {step} ({stopper.summary()}); the next phase starts")
        stopper.reset_patience()
        return True, False
    log(f"seed {seed}: early stopping at step {step} ({stopper.summary()})")
    return False, True


# ---------------------------------------------------------------- one step
def own_feeds(seg: Segment, terms: list[tuple[Term, Objective]], saved: dict[str, Any] | None) -> dict[str, OwnBatches]:
    """A batch stream per probe term of the segment: a new round at the segment's start, or
    the saved stream when resuming inside the segment."""
    feeds = {}
    for t, obj in terms:
        if t.own_data:
            feed = OwnBatches(obj, t.id, seg.path, fresh_rounds=seg.draws_train)
            if saved is not None and t.id in saved:
                feed.load_state_dict(saved[t.id], seg.round)
            else:
                feed.start(seg.round)
            feeds[t.id] = feed
    return feeds


def settle_round(seg: Segment, terms: list[tuple[Term, Objective]]) -> Segment:
    """A round of epochs over data only the round knows (``round_steps_per_epoch``, HILDIF's
    augmented set) runs that many epochs of it; every other segment is the plan's."""
    if seg.draws_train or seg.epochs is None:
        return seg
    per_epoch = [obj.round_steps_per_epoch() for t, obj in terms if t.id == seg.source]
    if not per_epoch or per_epoch[0] is None:
        return seg
    return replace(seg, steps=max(1, seg.epochs * per_epoch[0]))


def shorten_horizon(slot: OptimizerSlot, fewer: int) -> str | None:
    """A round shorter than the plan's maximum (HILDIF: scores below 5 ask for fewer copies)
    ends its schedule ``fewer`` steps earlier, so the LR reaches the end of its schedule when the
    optimizer's last step does (the plan counted every round at its maximum; later rounds count
    at theirs until they settle).  The schedule is rebuilt by its component for the new horizon
    and continues from the same step.  Returns what changed, for the log."""
    if slot.scheduler is None or fewer <= 0:
        return None
    slot.horizon = max(slot.horizon - fewer, 1)
    sched = slot.scheduler
    if not isinstance(sched, torch.optim.lr_scheduler.LambdaLR):
        return f"its {type(sched).__name__} schedule keeps the planned horizon (only LambdaLR schedules are re-spanned)"
    probe = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    fresh = slot.schedule.build(probe, slot.horizon).lr_lambdas
    sched.lr_lambdas = fresh * len(slot.optimizer.param_groups) if len(fresh) == 1 else fresh
    lrs = [base * f(sched.last_epoch) for base, f in zip(sched.base_lrs, sched.lr_lambdas)]
    for group, lr in zip(slot.optimizer.param_groups, lrs):
        group["lr"] = lr
    sched._last_lr = lrs
    return f"its LR schedule now spans {slot.horizon} steps"


def segment_train_mode(terms: list[tuple[Term, Objective]]) -> bool:
    """Dropout on when the per-batch terms want it (probe terms switch it off themselves);
    in a round, when its terms want it."""
    per_batch = [obj for t, obj in terms if not t.own_data]
    return all(obj.train_mode for obj in (per_batch or [obj for _, obj in terms]))


def term_weight(weight: Any, step_in_phase: int) -> float:
    return float(weight) if isinstance(weight, (int, float)) else weight.at(step_in_phase)


@dataclass(frozen=True)
class Due:
    """What the step that just ended calls for: a log record, a checkpoint, an evaluation."""

    log: bool
    checkpoint: bool
    eval: bool

    @staticmethod
    def after(recipe: Recipe, seg: Segment, step: int, global_step: int, eval_every: int | None) -> "Due":
        every = recipe.runtime.checkpoint_every
        return Due(log=global_step % recipe.runtime.log_every == 0 or step == seg.steps - 1,
                   checkpoint=bool(every and seg.draws_train and global_step % every == 0),
                   eval=bool(eval_every and seg.draws_train and global_step % eval_every == 0))


def my_share(batch: Batch, ranks: Ranks) -> tuple[Batch, float]:
    """This rank's contiguous slice of a global batch and its share n_r / n of the examples (the
    weight of its per-batch losses, so that the summed gradient is the global-batch mean)."""
    if not ranks.split:
        return batch, 1.0
    rows = ranks.part(torch.arange(len(batch)))
    return batch.select(rows), len(rows) / max(len(batch), 1)


def to_device(batch: Batch, device: torch.device) -> Batch:
    """Host to device; on CUDA from pinned memory without blocking the host."""
    if device.type == "cuda":
        return batch.pin_memory().to(device, non_blocking=True)
    return batch.to(device)


def segment_model(run: Setup, terms: list[tuple[Term, Objective]]) -> nn.Module:
    """The compiled model (``runtime.compile``) for a segment whose terms are all first order,
    else the model itself (double backward through a compiled graph is not supported)."""
    if run.compiled is not None and not any(obj.second_order for _, obj in terms):
        return run.compiled
    return run.model


def summed_parts(parts: dict[str, torch.Tensor], ranks: Ranks) -> dict[str, torch.Tensor]:
    """The terms' losses summed over the ranks (detached; one collective): the values one process
    would have computed, for the log and the non-finite guard.  One process: ``parts``."""
    if not ranks.split or not parts:
        return parts
    total = ranks.sum(torch.stack([p.detach().double() for p in parts.values()]))
    return dict(zip(parts, total.unbind()))


def step_losses(terms: list[tuple[Term, Objective]], model: nn.Module, batch: Batch | None, own: dict[str, Batch],
                step_in_phase: int, autocast: Callable[[], Any], where: str, ckpt: Checkpoint,
                share: float = 1.0) -> dict[str, torch.Tensor]:
    """``term_losses`` under autocast; a user error (e.g. a NaN influence loss) says where it happened."""
    try:
        with autocast():
            return term_losses(terms, model, batch, own, step_in_phase, share)
    except UserError as exc:
        raise UserError(f"{where}: {exc}; the last good checkpoint is {ckpt}") from exc


def term_losses(terms: list[tuple[Term, Objective]], model: nn.Module, batch: Batch | None,
                own: dict[str, Batch], step_in_phase: int, share: float = 1.0) -> dict[str, torch.Tensor]:
    """Each term's weighted loss: per-batch terms on the training batch, probe terms on their
    own batch.  The step's loss is their sum (one backward, one optimizer step).  A term at
    weight 0 (the start of a ramp) is not computed: it costs nothing and logs 0.

    ``share``: this rank's part n_r / n of the global batch (multi-process runs); per-batch
    terms, means over their examples, are weighted by it (a rank with no example adds a 0
    that still takes part in the backward); probe terms weight their own share."""
    parts = {}
    for t, obj in terms:
        w = term_weight(t.weight, step_in_phase)
        if w == 0:
            parts[t.id] = torch.zeros((), device=_device(model))
        elif t.own_data:
            parts[t.id] = w * obj.loss(model, own[t.id])
        elif share == 0:
            parts[t.id] = torch.zeros((), device=_device(model), requires_grad=True)
        else:
            parts[t.id] = (w * share if share != 1.0 else w) * obj.loss(model, batch)
    return parts


def _device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def optimizer_step(slot: OptimizerSlot, loss: torch.Tensor, update: bool = True, ranks: Ranks = Ranks()) -> None:
    """One backward and one update (``update`` False: a skipped non-finite step; the learning
    rate schedule still advances).  Several processes: the gradients are summed over the ranks
    before clipping and the update, so every rank makes the same update."""
    opt = slot.optimizer
    opt.zero_grad(set_to_none=True)
    if update and loss.requires_grad:  # else every term was at weight 0: nothing to learn this step
        loss.backward()
        distributed.all_reduce_grads((p for g in opt.param_groups for p in g["params"]), ranks)
        if slot.clip is not None:
            torch.nn.utils.clip_grad_norm_([p for g in opt.param_groups for p in g["params"]], slot.clip)
        opt.step()
    if slot.scheduler is not None:
        slot.scheduler.step()


def reset_moments(optimizers: dict[str, OptimizerSlot], seg: Segment) -> None:
    """Zero Adam moments after a round (the reference code's reset); keep the step count."""
    if not seg.reset_state:
        return
    for key, s in optimizers.items():
        if seg.reset_state == "all" or key == seg.optimizer:
            for state in s.optimizer.state.values():
                for name in ("exp_avg", "exp_avg_sq"):
                    if name in state:
                        state[name].zero_()


class NonFinite:
    """Non-finite losses.  ``stop``: the first bad step and term are kept on the device (no host
    sync per step) and read when the loop logs, checkpoints or evaluates; ``skip``: every step
    is checked (a host sync) and a bad one makes no update and is counted."""

    def __init__(self, device: torch.device, policy: str = "stop", state: dict[str, Any] | None = None):
        self.policy = policy
        self.first = torch.tensor(-1, device=device)
        self.first_term = torch.tensor(-1, device=device)
        self.term_ids: list[str] = []
        self.skipped = int((state or {}).get("skipped", 0))
        self.last_good: dict[str, Any] = {}

    def note(self, loss: torch.Tensor, parts: dict[str, torch.Tensor], step: int) -> bool:
        """Record this step's loss; False when the step must not update the model (skip policy)."""
        if self.policy == "skip":
            if bool(torch.isfinite(loss.detach())):
                return True
            self.skipped += 1
            return False
        self.term_ids = list(parts)
        bad_terms = torch.stack([~torch.isfinite(p.detach()) for p in parts.values()]) if parts else None
        new = ~torch.isfinite(loss.detach()) & (self.first < 0)
        self.first = torch.where(new, step, self.first)
        if bad_terms is not None:
            self.first_term = torch.where(new, bad_terms.to(torch.long).argmax(), self.first_term)
        return True

    def seen(self, step: int, record: dict[str, Any]) -> dict[str, Any]:
        """A training record about to be logged: remember it when finite, add the skip count."""
        if self.skipped:
            record["skipped_steps"] = self.skipped
        if all(math.isfinite(v) for v in record.values() if isinstance(v, float)):
            self.last_good = {"step": step, **record}
        return record

    def state_dict(self) -> dict[str, Any]:
        return {"skipped": self.skipped}

    def check(self, seed: int, seg: Segment, terms: list[tuple[Term, Objective]], ckpt: Checkpoint) -> None:
        if int(self.first) < 0:
            return
        term = self.term_ids[int(self.first_term)] if 0 <= int(self.first_term) < len(self.term_ids) else "?"
        last = self.last_good
        finite = (f"; the last finite values (step {last['step']}): " + ", ".join(
            f"{k}={v:.4g}" for k, v in last.items() if k == "loss" or k.startswith("loss/"))) if last else ""
        raise UserError(
            f"seed {seed}: non-finite loss at step {int(self.first)} (phase {seg.path!r}, terms "
            f"{', '.join(t.id for t, _ in terms)}: {term} was non-finite){finite}; "
            f"nothing after the last good checkpoint {ckpt} was saved; lower the learning rate or the term "
            "weights, or set runtime.nonfinite: skip to skip such steps")


def train_record(seg: Segment, step_in_phase: int, loss: torch.Tensor, slot: OptimizerSlot,
                 parts: dict[str, torch.Tensor], terms: list[tuple[Term, Objective]]) -> dict[str, Any]:
    """The metrics.jsonl fields of a training step: the loss, each term's weighted part, its
    weight (when it is not 1: a ramp's value at this step) and its logs."""
    record = {"segment": seg.index, "phase": seg.path, "time": round(time.time(), 3), "loss": float(loss.detach()),
              "lr": slot.optimizer.param_groups[0]["lr"], **{f"loss/{k}": float(v.detach()) for k, v in parts.items()}}
    record.update({f"weight/{t.id}": term_weight(t.weight, step_in_phase) for t, _ in terms if t.weight != 1.0})
    for t, obj in terms:
        if term_weight(t.weight, step_in_phase) != 0:  # a term at weight 0 was not computed this step
            record.update({f"{t.id}/{k}": v for k, v in obj.logs().items()})
    return record


def postfix(seg: Segment, parts: dict[str, torch.Tensor]) -> dict[str, str]:
    return {"phase": seg.phase_id, **{k: f"{float(v.detach()):.4f}" for k, v in parts.items()}}


# ---------------------------------------------------------------- evaluation
def final_evaluation(recipe: Recipe, run: Setup, bundle: DatasetBundle, device: torch.device, autocast: Any,
                     seed_dir: Path, seed: int, step: int) -> dict[str, float]:
    """Every metric on every evaluation split; logits kept for the reliability diagram; token
    attributions of the first examples when ``evaluation.attributions`` asks for them."""
    kept: dict[str, Any] = {}
    started = time.perf_counter()
    metrics = evaluate_model(recipe, run.model, run.evals, bundle, run.ctx, device, autocast, keep=kept)
    seconds = round(time.perf_counter() - started, 1)
    if not run.ranks.main:  # every rank computed the metrics (sharded); rank 0 writes them
        return metrics
    (seed_dir / "eval").mkdir(exist_ok=True)
    for split, preds in kept.items():
        tmp = seed_dir / "eval" / f"{split}_logits.pt.tmp"
        torch.save({"logits": preds.logits.float().cpu(), "labels": preds.labels.cpu()}, tmp)
        os.replace(tmp, seed_dir / "eval" / f"{split}_logits.pt")
    if recipe.evaluation.attributions is not None:  # before metrics.json, which marks the seed finished
        save_attributions(recipe.evaluation.attributions, run.model, run.evals, kept, device, recipe.data.batch_size,
                          bundle.label_names, seed_dir, seed, step)
    atomic_write_json(seed_dir / "eval" / "metrics.json", {"seed": seed, "step": step, "metrics": metrics,
                                                          "final_eval_seconds": seconds})
    return metrics


def evaluate_model(recipe: Recipe, model: nn.Module, evals: dict[str, EncodedSplit], bundle: DatasetBundle,
                   ctx: ObjectiveContext, device: torch.device, autocast: Any, splits: tuple[str, ...] | None = None,
                   keep: dict[str, Any] | None = None) -> dict[str, float]:
    """Prediction metrics and per-split model metrics (e.g. attribution_variance) on each evaluation
    split, the other model-level metrics (e.g. CID) on train.  Several processes: each predicts
    its share of every split and the logits are gathered (CID shares its candidates likewise),
    so every rank gets the single-process values; per-split model metrics run on every rank."""
    metrics = [registry.build("metrics", m.name, m.params) for m in recipe.evaluation.metrics]
    out: dict[str, float] = {}
    for name, data in evals.items():
        if splits is not None and name not in splits:
            continue
        with autocast():
            preds = predictions(model, data, split=name, batch_size=recipe.data.eval_batch_size, device=device,
                                meta=bundle.splits[name].meta, label_names=bundle.label_names, ranks=ctx.ranks)
        out.update(evaluate_predictions(preds, [m for m in metrics if not m.needs_model]))
        out.update(evaluate_split_metrics(model, data, name, metrics, device, taken=out))
        if keep is not None:
            keep[name] = preds
    with eval_mode(model):
        for m in metrics:
            if m.needs_model and not m.per_split:
                out.update({f"train/{k}": v for k, v in m.compute_model(model, ctx).items()})
    return out
