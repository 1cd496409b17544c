"""``show --cost RECIPE``: what a recipe's compiled timeline costs, before it runs.

Counting: each objective term declares the example-passes of one of its steps
(``Objective.cost`` -> ``PassCounts``: forward, backward, double backward; cross-entropy's one
forward and one backward by default).  Over the timeline (steps per segment) they sum per
phase; evaluations add forward passes (every ``evaluation.every`` steps on the watched split,
and all ``evaluation.splits`` at the end).  Token-passes are example-passes times the mean
padded width of a batch (rows are padded to the longest of their batch), measured on a sample
of the recipe's own data.

Timing: a few timed steps of the recipe's model on a real training batch give seconds per
forward, backward and double-backward token, per evaluation token and per optimizer step on
this machine (``calibrate``; the median of ``repeats`` timings after a warm-up, so a machine
shared with other jobs is measured as it is).  Not counted: model-level metrics (e.g. ``cid``),
the attribution dump, data loading and checkpoints; the table says so when a recipe has them.
"""
from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
import torch.nn.functional as F

import registry
from recipe_engine.plan import Timeline
from recipe_engine.schema import Recipe
from recipe_engine.table import format_table
from recipe_engine.train import autocast_for
from registry.data import encode_split
from registry.types import DatasetBundle, PassCounts, Split

#: rows tokenised to measure padded widths and to calibrate (a sample of big splits)
SAMPLE_ROWS = 1024
EVALUATION = "(evaluation)"
SETUP = "(setup)"


@dataclass(frozen=True)
class Rates:
    """Seconds on this machine: per token of a forward, backward and double backward pass (training
    mode), per token of an evaluation forward (no graph), and per optimizer step."""

    forward: float
    backward: float
    double_backward: float
    eval_forward: float
    optimizer_step: float
    model_build: float = 0.0  # seconds to build the model (load its weights)
    tokenize_row: float = 0.0  # seconds to tokenise one row
    device: str = "cpu"

    def seconds(self, tokens: PassCounts, eval_tokens: float = 0.0, optimizer_steps: int = 0) -> float:
        return (tokens.forward * self.forward + tokens.backward * self.backward
                + tokens.double_backward * self.double_backward + eval_tokens * self.eval_forward
                + optimizer_steps * self.optimizer_step)


@dataclass
class PhaseCost:
    """One declared phase (or the evaluations): optimizer steps, example-passes, token-passes."""

    phase: str
    steps: int = 0
    passes: PassCounts = field(default_factory=PassCounts)
    tokens: PassCounts = field(default_factory=PassCounts)
    eval_rows: float = 0.0
    eval_tokens: float = 0.0
    seconds: float | None = None


@dataclass
class CostReport:
    phases: list[PhaseCost]
    seq_len: float  # mean padded tokens per training row
    seeds: int
    rates: Rates | None = None
    not_counted: list[str] = field(default_factory=list)

    @property
    def total_tokens(self) -> float:
        return sum(p.tokens.forward + p.tokens.backward + p.tokens.double_backward + p.eval_tokens for p in self.phases)

    @property
    def seconds_per_seed(self) -> float | None:
        return None if self.rates is None else sum(p.seconds or 0.0 for p in self.phases)


# ---------------------------------------------------------------- counting
def sample_split(split: Split, n: int = SAMPLE_ROWS, seed: int = 0) -> Split:
    """At most ``n`` rows of ``split`` (a fixed random sample), enough to measure widths."""
    if len(split) <= n:
        return split
    idx = sorted(torch.randperm(len(split), generator=torch.Generator().manual_seed(seed))[:n].tolist())

    def take(col: Any) -> Any:
        return None if col is None else [col[i] for i in idx]

    return Split(name=split.name, ids=take(split.ids), text=take(split.text), label=take(split.label),
                 text_pair=take(split.text_pair), confound=take(split.confound), rationale=take(split.rationale),
                 meta={k: take(v) for k, v in split.meta.items()}, confound_names=split.confound_names,
                 confound_column=split.confound_column, label_groups=split.label_groups, label_names=split.label_names)


def padded_width(lengths: torch.Tensor, batch_size: int, draws: int = 64, seed: int = 0) -> float:
    """Mean width of a batch of ``batch_size`` random rows padded to its longest row."""
    n = int(lengths.numel())
    if n == 0:
        return 0.0
    gen = torch.Generator().manual_seed(seed)
    b = min(batch_size, n)
    widths = [float(lengths[torch.randperm(n, generator=gen)[:b]].max()) for _ in range(draws)]
    return sum(widths) / len(widths)


def eval_points(tl: Timeline, every: int | None) -> int:
    """Evaluations during training: after global steps that are multiples of ``every`` in segments
    that draw the training data (as ``train.Due`` schedules them)."""
    if not every:
        return 0
    count, g = 0, 0
    for seg in tl.segments:
        if seg.draws_train:
            count += (g + seg.steps) // every - g // every
        g += seg.steps
    return count


def count_passes(recipe: Recipe, tl: Timeline, seq_len: float, eval_sizes: dict[str, tuple[int, float]],
                 build: Callable[[str, Any], Any] | None = None) -> list[PhaseCost]:
    """Example- and token-passes per declared phase (in the order phases first run), then the
    evaluations.  ``eval_sizes`` maps each evaluated split to (rows, mean padded width)."""
    build = build or (lambda name, params: registry.build("objectives", name, params))
    phases: dict[str, PhaseCost] = {}
    built: dict[tuple[str, str], Any] = {}
    for seg in tl.segments:
        pc = phases.setdefault(seg.phase_id, PhaseCost(seg.phase_id))
        pc.steps += seg.steps
        for term in seg.terms:
            obj = built.setdefault((seg.phase_id, term.id), build(term.name, term.params))
            step = obj.cost(recipe.data.batch_size, max(1, round(seq_len)))
            pc.passes = pc.passes + step * seg.steps
    for pc in phases.values():
        pc.tokens = pc.passes * seq_len
    every = recipe.evaluation.every
    every_steps = None if every is None else (every.steps or every.epochs * tl.steps_per_epoch)
    watched = (recipe.evaluation.early_stopping.metric.split("/", 1)[0] if recipe.evaluation.early_stopping else "dev")
    ev = PhaseCost(EVALUATION)
    points = eval_points(tl, every_steps)
    if points and watched in eval_sizes:
        rows, width = eval_sizes[watched]
        ev.eval_rows += points * rows
        ev.eval_tokens += points * rows * width
    for name in recipe.evaluation.splits:
        if name in eval_sizes:
            rows, width = eval_sizes[name]
            ev.eval_rows += rows
            ev.eval_tokens += rows * width
    return [*phases.values(), ev]


# ---------------------------------------------------------------- timing
def _median_time(fn: Callable[[], Any], repeats: int, sync: Callable[[], None]) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def build_model(recipe: Recipe, bundle: DatasetBundle, device: torch.device) -> Any:
    """The recipe's model, freshly initialised (its tokenizer measures widths, its steps are timed)."""
    return registry.build("models", recipe.model.name, recipe.model.params).build(len(bundle.label_names)).to(device)


def calibrate(recipe: Recipe, bundle: DatasetBundle, model: Any, device: torch.device, repeats: int = 2,
              double_backward: bool = True, model_build: float = 0.0) -> Rates:
    """Seconds per token of each pass type, timed on the recipe's model and a real training batch
    (after one warm-up step); ``double_backward`` False skips timing it (no term does one) and
    prices it at a backward's rate."""
    t0 = time.perf_counter()
    train = encode_split(sample_split(bundle.splits[recipe.data.train_split]), model.tokenizer, recipe.data.max_length)
    tokenize_row = (time.perf_counter() - t0) / max(1, len(train))
    gen = torch.Generator().manual_seed(0)
    batch = train.batch(torch.randperm(len(train), generator=gen)[:recipe.data.batch_size]).to(device)
    eval_batch = train.batch(torch.randperm(len(train), generator=gen)[:recipe.data.eval_batch_size]).to(device)
    tokens = float(batch.input_ids.numel())
    eval_tokens = float(eval_batch.input_ids.numel())
    params = [p for p in model.parameters() if p.requires_grad]
    autocast = autocast_for(device, recipe.runtime.precision)
    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)

    def loss() -> torch.Tensor:
        with autocast():
            logits = model(**batch.model_inputs()).logits
        return F.cross_entropy(logits.float(), batch.labels)

    def forward_backward() -> None:
        loss().backward()
        model.zero_grad(set_to_none=True)

    def double_backward_step() -> None:
        grads = torch.autograd.grad(loss(), params, create_graph=True, allow_unused=True)
        sum((g * g).sum() for g in grads if g is not None).backward()
        model.zero_grad(set_to_none=True)

    def evaluate() -> None:
        with torch.no_grad(), autocast():
            model(**eval_batch.model_inputs())

    model.train()
    forward_backward()  # warm-up: allocations, kernels, caches
    t_f = _median_time(lambda: loss(), repeats, sync)
    t_fb = _median_time(forward_backward, repeats, sync)
    t_fbd = _median_time(double_backward_step, repeats, sync) if double_backward else 2 * t_fb - t_f
    model.eval()
    t_e = _median_time(evaluate, repeats, sync)
    opt = torch.optim.AdamW(params, lr=1e-12)
    for p in params:
        p.grad = torch.zeros_like(p)
    t_o = _median_time(opt.step, repeats, sync)
    floor = 0.1 * t_f  # a difference of two noisy timings never goes below a tenth of a forward
    return Rates(forward=t_f / tokens, backward=max(t_fb - t_f, floor) / tokens,
                 double_backward=max(t_fbd - t_fb, floor) / tokens, eval_forward=t_e / eval_tokens,
                 optimizer_step=t_o, model_build=model_build, tokenize_row=tokenize_row, device=str(device))


# ---------------------------------------------------------------- the report
def estimate(recipe: Recipe, bundle: DatasetBundle, tl: Timeline, tokenizer: Any, rates: Rates | None = None) -> CostReport:
    """Pass counts of ``recipe`` on its timeline, timed with ``rates`` (None: counts only)."""
    max_len = recipe.data.max_length
    train = encode_split(sample_split(bundle.splits[recipe.data.train_split]), tokenizer, max_len)
    seq_len = padded_width(train.lengths, recipe.data.batch_size)
    eval_sizes = {}
    for name in {*recipe.evaluation.splits, "dev"}:
        if name in bundle.splits:
            data = encode_split(sample_split(bundle.splits[name]), tokenizer, max_len)
            eval_sizes[name] = (len(bundle.splits[name]), padded_width(data.lengths, recipe.data.eval_batch_size))
    phases = count_passes(recipe, tl, seq_len, eval_sizes)
    # every seed builds its model and tokenises the training and evaluated splits
    rows = len(bundle.splits[recipe.data.train_split]) + sum(len(bundle.splits[n]) for n in set(recipe.evaluation.splits)
                                                             if n in bundle.splits)
    phases.insert(0, PhaseCost(SETUP, eval_rows=rows))
    if rates is not None:
        set_seconds(phases, rates)
    not_counted = [m.name for m in recipe.evaluation.metrics if getattr(registry.get("metrics", m.name), "needs_model", False)]
    if recipe.evaluation.attributions is not None:
        not_counted.append("the attribution dump")
    return CostReport(phases, seq_len, len(recipe.seeds), rates, not_counted)


def cost_report(recipe: Recipe, bundle: DatasetBundle, tl: Timeline, device: torch.device, *,
                timed: bool | None = True) -> CostReport:
    """Count, then calibrate and time: always (``timed`` True), never (False), or only when the
    recipe is not small (None: what ``run`` prints before training)."""
    t0 = time.perf_counter()
    model = build_model(recipe, bundle, device)
    build_s = time.perf_counter() - t0
    report = estimate(recipe, bundle, tl, model.tokenizer)
    if timed or (timed is None and not is_small(report)):
        dd = any(pc.passes.double_backward for pc in report.phases)
        report.rates = calibrate(recipe, bundle, model, device, double_backward=dd, model_build=build_s)
        set_seconds(report.phases, report.rates)
    return report


def set_seconds(phases: list[PhaseCost], rates: Rates) -> None:
    """Seconds of each phase: token-passes x rates plus one optimizer step per step; the setup:
    building the model and tokenising its rows."""
    for pc in phases:
        if pc.phase == SETUP:
            pc.seconds = rates.model_build + rates.tokenize_row * pc.eval_rows
        else:
            pc.seconds = rates.seconds(pc.tokens, pc.eval_tokens, pc.steps)


def human_time(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def _num(x: float) -> str:
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(x) >= size:
            return f"{x / size:.1f}{unit}"
    return f"{x:.0f}"


def cost_text(report: CostReport) -> str:
    """A table per phase: steps, example-passes (forward/backward/double backward), token-passes,
    estimated time; then the total per seed and for all seeds."""
    rows = []
    for pc in report.phases:
        if pc.phase == SETUP:
            passes, toks = f"model + tokenise {_num(pc.eval_rows)} rows", "-"
        elif pc.phase == EVALUATION:
            passes, toks = f"{_num(pc.eval_rows)} / - / -", _num(pc.eval_tokens)
        else:
            p = pc.passes
            passes = f"{_num(p.forward)} / {_num(p.backward)} / {_num(p.double_backward)}"
            toks = _num(pc.tokens.forward + pc.tokens.backward + pc.tokens.double_backward)
        rows.append([pc.phase, str(pc.steps) if pc.phase not in (EVALUATION, SETUP) else "-", passes, toks,
                     human_time(pc.seconds) if pc.seconds is not None else "-"])
    lines = [f"cost per seed ({report.seq_len:.1f} tokens per padded training row)",
             format_table(rows, ["phase", "steps", "rows fwd / bwd / double-bwd", "token-passes", "estimated time"])]
    per_seed = report.seconds_per_seed
    if per_seed is not None:
        r = report.rates
        lines.append(f"total: {human_time(per_seed)} per seed, {human_time(per_seed * report.seeds)} for {report.seeds} "
                     f"seed(s) one after another on {r.device} (calibrated: {r.forward * 1e6:.2f} / {r.backward * 1e6:.2f} / "
                     f"{r.double_backward * 1e6:.2f} us per fwd / bwd / double-bwd token, "
                     f"{r.optimizer_step * 1e3:.1f} ms per optimizer step)")
    if report.not_counted:
        lines.append("not counted: " + ", ".join(report.not_counted) + " (model-level metrics and dumps at the end)")
    return "\n".join(lines)


def estimated_seconds(report: CostReport) -> float:
    """All seeds, one after another."""
    return (report.seconds_per_seed or 0.0) * report.seeds


def is_small(report: CostReport, threshold: float = 2e5) -> bool:
    """Few enough token-passes that calibrating would cost a noticeable part of the run."""
    return report.total_tokens * report.seeds < threshold or math.isnan(report.total_tokens)
