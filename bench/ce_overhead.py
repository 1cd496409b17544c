"""Engine overhead: one cross-entropy epoch through recipe-engine vs a bare PyTorch loop.

Same model (built by the same component from the same seed), same batches (the engine's
epoch order), same optimizer (AdamW with the same groups, linear warm-up/decay, clipping),
in one process, alternating which goes first.  Both include their setup (model build and
tokenisation); the engine also writes metrics.jsonl, TensorBoard scalars, a checkpoint and
a progress bar, as a real run does.  Evaluation is switched off in both.

    OMP_WAIT_POLICY=PASSIVE python bench/ce_overhead.py [--repeats 3] [--hidden 128]

The last line is a JSON object with the median times and the ratio engine / bare.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import registry  # noqa: E402
from recipe_engine.resolve import resolve_text  # noqa: E402
from recipe_engine.train import epoch_order, seed_everything, train_seed  # noqa: E402
from registry.data import confound_visibility, encode_split  # noqa: E402
from registry.datasets.data_root import resolve_data_root  # noqa: E402

RECIPE = """
name: bench-ce
seeds: [0]
model: {{name: tiny_bert, params: {{layers: {layers}, hidden: {hidden}, heads: 4, intermediate: {inter}}}}}
data: {{name: textlen, batch_size: 32, max_length: 64}}
optimizer:
  name: adamw
  params: {{lr: 1.0e-4}}
  scheduler: {{name: linear, params: {{warmup_ratio: 0.1}}}}
  clip_grad_norm: 1.0
schedule:
  unit: epoch
  phases: [{{id: ce, for: 1, objectives: [{{name: cross_entropy}}]}}]
evaluation: {{splits: [], metrics: [{{name: accuracy}}]}}
runtime: {{progress: true, tensorboard: true, log_every: 10}}
"""


def bare_loop(recipe, bundle, seed: int) -> float:
    """The same epoch written as a plain PyTorch loop; returns seconds."""
    t0 = time.perf_counter()
    seed_everything(seed)
    model = registry.build("models", recipe.model.name, recipe.model.params).build(len(bundle.label_names))
    split = bundle.splits["train"]
    conf = torch.tensor(split.confound)
    visible = confound_visibility(conf, 1.0, torch.Generator().manual_seed(seed))
    train = encode_split(split, model.tokenizer, recipe.data.max_length, visible)
    opt = registry.build("optimizers", "adamw", recipe.optimizer.params).build(model.named_parameters())
    steps = train.num_batches(recipe.data.batch_size)
    sched = registry.build("schedulers", "linear", recipe.optimizer.scheduler.params).build(opt, steps)
    model.train()
    order = epoch_order(len(train), seed, 0)
    bs = recipe.data.batch_size
    for i in range(steps):
        batch = train.batch(order[i * bs:(i + 1) * bs])
        loss = F.cross_entropy(model(**batch.model_inputs()).logits, batch.labels)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
    return time.perf_counter() - t0


def engine(recipe, bundle, seed: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        train_seed(recipe, bundle, seed, Path(tmp) / "seed", device=torch.device("cpu"), log=lambda *a: None)
        return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--layers", type=int, default=2)
    args = ap.parse_args()
    recipe = resolve_text(RECIPE.format(hidden=args.hidden, layers=args.layers, inter=4 * args.hidden), "bench-ce.yaml").recipe
    bundle = registry.build("datasets", "textlen", recipe.data.params).load(resolve_data_root(None))
    engine(recipe, bundle, 0)  # warm-up: lazy imports, tokenizer cache
    times = {"engine": [], "bare": []}
    for r in range(args.repeats):
        pair = [("engine", engine), ("bare", bare_loop)]
        for name, fn in (pair if r % 2 == 0 else pair[::-1]):
            times[name].append(fn(recipe, bundle, 0))
            print(f"repeat {r} {name:6s} {times[name][-1]:.2f} s", file=sys.stderr)
    med = {k: statistics.median(v) for k, v in times.items()}
    result = {"engine_s": round(med["engine"], 3), "bare_s": round(med["bare"], 3),
              "ratio": round(med["engine"] / med["bare"], 4), "steps": -(-1500 // 32),
              "model": f"tiny_bert hidden {args.hidden} layers {args.layers}", "repeats": args.repeats}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
