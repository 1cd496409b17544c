"""Cost of one rationale_extractor step (role extractor, role align) against one cross-entropy
step, on the same batch.

The offline MiniLM, the first 24 examples (the recipes' batch) of SNIPS 5-shot train
(max_length 40), forward + backward of each loss alone, rotating which goes first; the median
of ``--repeats`` timings each. As in a run: CE and align in train mode, the extractor in eval
mode (its phase holds only that term). The extractor step runs the frozen model twice (the
original prediction without a graph, the masked one with a graph to the gate, no weight
gradients); the align step is the gate MLP on the word embeddings (no encoder pass; with
``--gate-input with_last_layer`` also one eval-mode encoder pass with a graph); the model
round's step is CE + align (``ce+align``).

    OMP_WAIT_POLICY=PASSIVE python bench/rationale_extractor_step.py [--repeats 7] [--gate-input with_last_layer]

The last line is a JSON object with the median times and the ratios to CE.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import registry  # noqa: E402
from registry.data import encode_split  # noqa: E402
from registry.datasets.data_root import resolve_data_root  # noqa: E402
from registry.types import ObjectiveContext  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--gate-input", default="word_embeddings", choices=["word_embeddings", "with_last_layer"])
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    bundle = registry.build("dataset", "snips", {"shots": 5}).load(resolve_data_root())
    model = registry.build("model", "offline_minilm").build(len(bundle.label_names))
    train = encode_split(bundle.splits["train"], model.tokenizer, 40)
    batch = train.batch(torch.arange(24))
    ctx = ObjectiveContext(model=model, train=train, num_labels=7, num_confounds=1, device=torch.device("cpu"),
                           generator=torch.Generator().manual_seed(1), batch_size=24)
    ce = registry.build("objective", "cross_entropy", {})
    ext = registry.build("objective", "rationale_extractor", {"role": "extractor", "gate_input": args.gate_input})
    align = registry.build("objective", "rationale_extractor", {"role": "align", "gate_input": args.gate_input})
    for t in (ce, ext, align):
        t.bind(ctx)
    assert ext.gate is align.gate
    steps = {
        "cross_entropy": (True, lambda: ce.loss(model, batch)),
        "extractor": (False, lambda: ext.loss(model, batch)),
        "align": (True, lambda: align.loss(model, batch)),
        "ce+align": (True, lambda: ce.loss(model, batch) + 10.0 * align.loss(model, batch)),
    }

    def step(name: str) -> float:
        train_mode, loss = steps[name]
        model.train(train_mode)
        model.zero_grad(set_to_none=True)
        ext.gate.zero_grad(set_to_none=True)
        start = time.perf_counter()
        loss().backward()
        return time.perf_counter() - start

    names = list(steps)
    for name in names:  # warm-up
        step(name)
    times: dict[str, list[float]] = {n: [] for n in names}
    for r in range(args.repeats):
        for name in names[r % len(names):] + names[:r % len(names)]:
            times[name].append(step(name))
    med = {n: statistics.median(v) for n, v in times.items()}
    rows = int((batch.rationale.sum(-1) > 0).sum())
    print(f"batch 24 (width {batch.input_ids.shape[1]}), {rows} with a rationale token")
    for n, v in times.items():
        print(f"{n:14s} median {med[n] * 1000:8.1f} ms  x{med[n] / med['cross_entropy']:.2f}  "
              f"({', '.join(f'{x * 1000:.0f}' for x in v)})")
    print(json.dumps({"ce_s": med["cross_entropy"], "extractor_s": med["extractor"], "align_s": med["align"],
                      "ce_align_s": med["ce+align"], "extractor_ratio": med["extractor"] / med["cross_entropy"],
                      "align_ratio": med["align"] / med["cross_entropy"],
                      "ce_align_ratio": med["ce+align"] / med["cross_entropy"], "rows_with_rationale": rows, "gate_input": args.gate_input,
                      "threads": torch.get_num_threads(), "repeats": args.repeats}))


if __name__ == "__main__":
    main()
