"""Cost of one rationale_erasure step and one rationale_margin step against one cross-entropy
step, on the same batch.

The offline MiniLM in train mode, the first 24 examples (the recipes' batch) of SNIPS 5-shot
train (max_length 40), forward + backward of each loss alone, alternating which goes first;
the median of ``--repeats`` timings each.  rationale_erasure runs 2R copies per example that
has a rationale token (R = 2 by default: 4 sequences per such example) and draws them on the
device every step.  rationale_margin (its defaults: saliency in mode differentiable on real
tokens, form margin) takes the gradient of the gold logit with create_graph on the examples
with a rationale token, then the backward through that gradient (double backward).

    OMP_WAIT_POLICY=PASSIVE python bench/rationale_erasure_step.py [--repeats 7] [--copies 2]
        [--terms rationale_erasure,rationale_margin]

The last line is a JSON object with the median times and the ratios erasure / CE (``ratio``)
and margin / CE (``margin_ratio``).
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
    ap.add_argument("--copies", type=int, default=2)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--terms", default="rationale_erasure,rationale_margin",
                    help="comma-separated terms timed next to cross_entropy")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    bundle = registry.build("dataset", "snips", {"shots": 5}).load(resolve_data_root())
    model = registry.build("model", "offline_minilm").build(len(bundle.label_names)).train()
    train = encode_split(bundle.splits["train"], model.tokenizer, 40)
    batch = train.batch(torch.arange(24))
    ctx = ObjectiveContext(model=model, train=train, num_labels=7, num_confounds=1, device=torch.device("cpu"),
                           generator=torch.Generator().manual_seed(1), batch_size=24)
    params = {"rationale_erasure": {"copies": args.copies}}
    names = ["cross_entropy"] + [n for n in args.terms.split(",") if n]
    terms = {name: registry.build("objective", name, params.get(name, {})) for name in names}
    for t in terms.values():
        t.bind(ctx)

    def step(name: str) -> float:
        model.zero_grad(set_to_none=True)
        start = time.perf_counter()
        terms[name].loss(model, batch).backward()
        return time.perf_counter() - start

    for name in terms:  # warm-up
        step(name)
    times: dict[str, list[float]] = {n: [] for n in terms}
    for r in range(args.repeats):
        for name in (list(terms) if r % 2 == 0 else list(terms)[::-1]):
            times[name].append(step(name))
    med = {n: statistics.median(v) for n, v in times.items()}
    rows = int((batch.rationale.sum(-1) > 0).sum())
    print(f"batch 24 (width {batch.input_ids.shape[1]}), {rows} with a rationale -> {2 * args.copies * rows} copies")
    for n, v in times.items():
        print(f"{n:18s} median {med[n] * 1000:8.1f} ms  ({', '.join(f'{x * 1000:.0f}' for x in v)})")
    out = {"ce_s": med["cross_entropy"], "copies": args.copies, "rows_with_rationale": rows,
           "threads": torch.get_num_threads(), "repeats": args.repeats}
    if "rationale_erasure" in med:
        out.update(erasure_s=med["rationale_erasure"], ratio=med["rationale_erasure"] / med["cross_entropy"])
    if "rationale_margin" in med:
        out.update(margin_s=med["rationale_margin"], margin_ratio=med["rationale_margin"] / med["cross_entropy"])
    print(json.dumps(out))

if __name__ == "__main__":
    main()
