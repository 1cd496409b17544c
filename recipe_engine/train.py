"""Train and evaluate one seed of a recipe.  Reads top to bottom: setup, the loop over the
plan's timeline, evaluation.  No callbacks: what happens at a step is written here.

Resumable: a checkpoint holds the model, the objectives' extra modules, the optimizers,
the schedulers, the RNG states and the position in the timeline; the training-data order
of epoch ``e`` is a pure function of (seed, e), so a resumed run sees the same batches.
"""
from __future__ import annotations

import math
import os
import random
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import torch
from torch import nn

import registry
from recipe_engine.errors import UserError
from recipe_engine.evaluate import evaluate_predictions, predictions
from recipe_engine.outputs import append_jsonl, atomic_write_json
from recipe_engine.plan import Segment, Timeline, compile_timeline
from registry.data import EncodedSplit, confound_visibility, encode_split
from registry.types import DatasetBundle, ObjectiveContext


class Interrupted(Exception):
    """Raised by ``max_steps`` (tests simulate a crash with it)."""


@dataclass
class SeedResult:
    seed: int
    metrics: dict[str, float]
    curves: list[dict[str, Any]] = field(default_factory=list)


# ---------------------------------------------------------------- setup helpers
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
    try:
        import numpy as np

        np.random.seed(seed % 2**32)
    except ImportError:  # pragma: no cover
        pass


def epoch_order(n: int, seed: int, epoch: int) -> torch.Tensor:
    """The shuffled order of epoch ``epoch``: a pure function of (seed, epoch), for exact resume."""
    g = torch.Generator().manual_seed(seed * 100_003 + epoch)
    return torch.randperm(n, generator=g)


def train_batches(data: EncodedSplit, batch_size: int, seed: int, pos: dict[str, int]) -> Iterator[Any]:
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


def term_weight(weight: Any, step_in_phase: int) -> float:
    return float(weight) if isinstance(weight, (int, float)) else weight.at(step_in_phase)


def _optimizer_state_reset(opt: torch.optim.Optimizer) -> None:
    """Zero Adam moments (the reference code's reset after an influence round); keep the step count."""
    for state in opt.state.values():
        for key in ("exp_avg", "exp_avg_sq"):
            if key in state:
                state[key].zero_()


# ---------------------------------------------------------------- one seed
def train_seed(recipe: Any, bundle: DatasetBundle, seed: int, seed_dir: Path, *, device: torch.device,
               max_steps: int | None = None, log: Any = print) -> SeedResult:
    seed_dir.mkdir(parents=True, exist_ok=True)
    ckpt_path = seed_dir / "checkpoints" / "last.pt"
    seed_everything(seed)
    use_bf16 = device.type == "cuda" and recipe.runtime.precision in ("auto", "bf16")
    autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if use_bf16 else nullcontext

    # --- model and data
    num_labels = len(bundle.label_names)
    model = registry.build("models", recipe.model.name, recipe.model.params).build(num_labels).to(device)
    tok = model.tokenizer
    train_split = bundle.splits[recipe.data.train_split]
    data_gen = torch.Generator().manual_seed(seed)
    train_confound = torch.tensor(train_split.confound if train_split.confound is not None else [-1] * len(train_split))
    visible = confound_visibility(train_confound, recipe.data.confound_access, data_gen)
    train = encode_split(train_split, tok, recipe.data.max_length, visible)
    evals = {name: encode_split(bundle.splits[name], tok, recipe.data.max_length) for name in recipe.evaluation.splits}
    num_confounds = len(bundle.confound_names or []) or int(train_confound.max().item()) + 1

    # --- objectives: one instance per (phase id, term id), bound once
    objective_gen = torch.Generator().manual_seed(seed + 1)
    ctx = ObjectiveContext(model=model, train=train, num_labels=num_labels, num_confounds=max(num_confounds, 1),
                           device=device, generator=objective_gen, batch_size=recipe.data.batch_size)
    objectives: dict[tuple[str, str], Any] = {}
    phase_optimizer_specs: dict[str, Any] = {}

    def collect(phases: list) -> None:
        for ph in phases:
            if ph.phases:
                collect(ph.phases)
                continue
            for t in ph.objectives:
                obj = registry.build("objectives", t.name, t.params)
                obj.bind(ctx)
                objectives[(ph.id, t.id or t.name)] = obj
            if ph.optimizer is not None:
                phase_optimizer_specs[ph.id] = ph.optimizer

    collect(recipe.schedule.phases)
    extras = nn.ModuleDict({f"{pid}.{tid}.{k}".replace(".", "__"): m
                            for (pid, tid), obj in objectives.items() for k, m in obj.extra_modules().items()}).to(device)

    per_epoch = train.num_batches(recipe.data.batch_size)
    timeline: Timeline = compile_timeline(recipe.schedule, per_epoch)

    # --- optimizers and schedulers
    def named_trainable(phase_id: str | None) -> list[tuple[str, nn.Parameter]]:
        params: list[tuple[str, nn.Parameter]] = []
        if phase_id is not None:
            for (pid, _), obj in objectives.items():
                chosen = obj.trainable(model) if pid == phase_id else None
                if chosen is not None:
                    ids = {id(p) for p in chosen}
                    return [(n, p) for n, p in model.named_parameters() if id(p) in ids]
        params += list(model.named_parameters())
        params += [(f"extras.{n}", p) for n, p in extras.named_parameters()]
        return params

    def make_optimizer(spec: Any, phase_id: str | None, total: int) -> tuple[Any, Any]:
        opt = registry.build("optimizers", spec.name, spec.params).build(named_trainable(phase_id))
        sched = None
        if spec.scheduler is not None:
            sched = registry.build("schedulers", spec.scheduler.name, spec.scheduler.params).build(opt, max(total, 1))
        return opt, sched

    optimizers = {"main": make_optimizer(recipe.optimizer, None, timeline.optimizer_steps("main"))}
    for pid, spec in phase_optimizer_specs.items():
        optimizers[pid] = make_optimizer(spec, pid, timeline.optimizer_steps(pid))
    clip = {"main": recipe.optimizer.clip_grad_norm, **{pid: s.clip_grad_norm for pid, s in phase_optimizer_specs.items()}}

    # --- resume
    pos = {"segment": 0, "step": 0, "global_step": 0, "epoch": 0, "batch": 0}
    if ckpt_path.exists():
        state = torch.load(ckpt_path, map_location=device, weights_only=False)
        model.load_state_dict(state["model"])
        extras.load_state_dict(state["extras"])
        for key, (opt, sched) in optimizers.items():
            opt.load_state_dict(state["optimizers"][key])
            if sched is not None:
                sched.load_state_dict(state["schedulers"][key])
        torch.set_rng_state(state["rng"]["torch"])
        objective_gen.set_state(state["rng"]["objectives"])
        random.setstate(state["rng"]["python"])
        pos = state["position"]
        log(f"seed {seed}: resumed at step {pos['global_step']} (segment {pos['segment']})")

    def save_checkpoint(position: dict[str, int]) -> None:
        ckpt_path.parent.mkdir(parents=True, exist_ok=True)
        state = {
            "model": model.state_dict(), "extras": extras.state_dict(),
            "optimizers": {k: o.state_dict() for k, (o, _) in optimizers.items()},
            "schedulers": {k: s.state_dict() for k, (_, s) in optimizers.items() if s is not None},
            "rng": {"torch": torch.get_rng_state(), "objectives": objective_gen.get_state(), "python": random.getstate()},
            "position": dict(position),
        }
        tmp = ckpt_path.with_suffix(".tmp")
        torch.save(state, tmp)
        os.replace(tmp, ckpt_path)

    # --- logging
    metrics_path = seed_dir / "metrics.jsonl"
    writer = None
    if recipe.runtime.tensorboard:
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(str(seed_dir / "tb"))
    bar = None
    if recipe.runtime.progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=timeline.total_steps, initial=pos["global_step"], desc=f"seed {seed}", unit="step",
                   dynamic_ncols=True, leave=False)

    def evaluate_during(step: int) -> None:
        values = evaluate_model(recipe, model, evals, bundle, ctx, device, autocast, splits=("dev",))
        record = {"event": "eval", "step": step, "time": round(time.time(), 3), **values}
        append_jsonl(metrics_path, record)
        if writer is not None:
            for k, v in record.items():
                if isinstance(v, (int, float)) and k not in ("step", "time"):
                    writer.add_scalar(f"eval/{k}", v, step)

    # --- the loop over the timeline
    global_step = pos["global_step"]
    first_bad = torch.tensor(-1, device=device)  # first step with a non-finite loss, -1: none
    stream = train_batches(train, recipe.data.batch_size, seed, pos)
    every = recipe.evaluation.every
    eval_every = None if every is None else (every.steps or every.epochs * per_epoch)
    for seg in timeline.segments[pos["segment"]:]:
        start = pos["step"] if seg.index == pos["segment"] else 0
        terms = [(t, objectives[(seg.phase_id, t.id)]) for t in seg.terms]
        model.train(all(obj.train_mode for _, obj in terms))
        opt, sched = optimizers[seg.optimizer]
        if seg.draws_train:
            batches = stream
        else:
            source = objectives[(seg.phase_id, seg.source)]
            source.start_round()
            batches = _own_batches(source, seg)
            for _ in range(start):
                next(batches)
        for step in range(start, seg.steps):
            batch = next(batches).to(device)
            try:
                with autocast():
                    parts = {t.id: term_weight(t.weight, step) * obj.loss(model, batch) for t, obj in terms}
            except UserError as exc:  # e.g. a NaN influence loss: add where it happened
                raise UserError(f"seed {seed}, step {global_step}, phase {seg.path!r}: {exc}; "
                                f"the last good checkpoint is {ckpt_path}") from exc
            loss = sum(parts.values())
            # no host sync here: the first non-finite step is kept on the device and read at log time
            bad = ~torch.isfinite(loss.detach())
            first_bad = torch.where(bad & (first_bad < 0), global_step + 1, first_bad)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if clip[seg.optimizer] is not None:
                torch.nn.utils.clip_grad_norm_([p for g in opt.param_groups for p in g["params"]], clip[seg.optimizer])
            opt.step()
            if sched is not None:
                sched.step()
            global_step += 1
            if bar is not None:
                bar.update(1)
            ckpt_due = recipe.runtime.checkpoint_every and seg.draws_train and global_step % recipe.runtime.checkpoint_every == 0
            eval_due = eval_every and seg.draws_train and global_step % eval_every == 0
            log_due = global_step % recipe.runtime.log_every == 0 or step == seg.steps - 1
            if (log_due or ckpt_due or eval_due or global_step == max_steps) and int(first_bad) >= 0:
                raise UserError(
                    f"seed {seed}: non-finite loss at step {int(first_bad)} (phase {seg.path!r}, terms "
                    + ", ".join(t.id for t, _ in terms)
                    + f"); nothing after the last good checkpoint {ckpt_path} was saved; lower the learning rate or the term weights")
            if bar is not None and log_due:
                bar.set_postfix({"phase": seg.phase_id, **{k: f"{float(v.detach()):.4f}" for k, v in parts.items()}}, refresh=False)
            if log_due:
                record = {"event": "train", "step": global_step, "segment": seg.index, "phase": seg.path,
                          "time": round(time.time(), 3), "loss": float(loss.detach()), "lr": opt.param_groups[0]["lr"],
                          **{f"loss/{k}": float(v.detach()) for k, v in parts.items()}}
                for t, obj in terms:
                    record.update({f"{t.id}/{k}": v for k, v in obj.logs().items()})
                append_jsonl(metrics_path, record)
                if writer is not None:
                    for k, v in record.items():
                        if isinstance(v, (int, float)) and k not in ("step", "segment", "time"):
                            writer.add_scalar(f"train/{k}", v, global_step)
            here = {"segment": seg.index, "step": step + 1, "global_step": global_step, "epoch": pos["epoch"], "batch": pos["batch"]}
            if step + 1 == seg.steps:  # end of the segment: the reset belongs to the round
                if seg.reset_state:
                    for key, (o, _) in optimizers.items():
                        if seg.reset_state == "all" or key == seg.optimizer:
                            _optimizer_state_reset(o)
                here = {**here, "segment": seg.index + 1, "step": 0}
            if eval_due:
                evaluate_during(global_step)
            if ckpt_due or step + 1 == seg.steps:
                save_checkpoint(here)
            if max_steps is not None and global_step >= max_steps:
                if bar is not None:
                    bar.close()
                raise Interrupted(f"stopped after {global_step} steps (--max-steps)")
    if bar is not None:
        bar.close()

    # --- final evaluation
    kept: dict[str, Any] = {}
    eval_start = time.perf_counter()
    metrics = evaluate_model(recipe, model, evals, bundle, ctx, device, autocast, keep=kept)
    eval_seconds = round(time.perf_counter() - eval_start, 1)
    (seed_dir / "eval").mkdir(exist_ok=True)
    for split, preds in kept.items():  # for the reliability diagram and later analyses
        tmp = seed_dir / "eval" / f"{split}_logits.pt.tmp"
        torch.save({"logits": preds.logits.float().cpu(), "labels": preds.labels.cpu()}, tmp)
        os.replace(tmp, seed_dir / "eval" / f"{split}_logits.pt")
    if writer is not None:
        for k, v in metrics.items():
            writer.add_scalar(f"final/{k}", v, global_step)
        writer.close()
    atomic_write_json(seed_dir / "eval" / "metrics.json", {"seed": seed, "step": global_step, "metrics": metrics,
                                                          "final_eval_seconds": eval_seconds})
    return SeedResult(seed, metrics)


def _own_batches(source: Any, seg: Segment) -> Iterator:
    """The batches of an objective that brings its own data, epoch after epoch."""
    epoch = 0
    while True:
        produced = False
        for b in source.batches(epoch):
            produced = True
            yield b
        if not produced:
            raise UserError(f"objective {seg.source!r} produced no batches in phase {seg.path!r}")
        epoch += 1


def evaluate_model(recipe: Any, model: nn.Module, evals: dict[str, EncodedSplit], bundle: DatasetBundle,
                   ctx: ObjectiveContext, device: torch.device, autocast: Any, splits: tuple[str, ...] | None = None,
                   keep: dict[str, Any] | None = None) -> dict[str, float]:
    """Prediction metrics on each evaluation split, model-level metrics (e.g. CID) on train."""
    was_training = model.training
    metrics = [registry.build("metrics", m.name, m.params) for m in recipe.evaluation.metrics]
    out: dict[str, float] = {}
    for name, data in evals.items():
        if splits is not None and name not in splits:
            continue
        with autocast():
            preds = predictions(model, data, split=name, batch_size=recipe.data.eval_batch_size, device=device,
                                meta=bundle.splits[name].meta, label_names=bundle.label_names)
        out.update(evaluate_predictions(preds, [m for m in metrics if not m.needs_model]))
        if keep is not None:
            keep[name] = preds
    for m in metrics:
        if m.needs_model:
            model.eval()
            out.update({f"train/{k}": v for k, v in m.compute_model(model, ctx).items()})
    model.train(was_training)
    return out
