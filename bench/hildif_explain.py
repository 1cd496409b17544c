"""Time per anchor of HILDIF's EXPLAIN step for 5,000 candidates, next to the paper's "seven
minutes per anchor for 5,000 training points" (Zylberajch et al. 2021, sec. 4; BERT-base on a
K80, FastIF's LiSSA with 1,000 recursions).

The offline MiniLM (as loaded: timing only, the values do not matter) over the first
``--candidates`` pairs of MNLI train_subset (max_length 128), anchors from dev_subset; the
explain settings are the hildif recipes' defaults (``registry._lib.explain.ExplainParams``)
with ``knn_k = --candidates`` so every candidate is scored.  Phases timed separately: pooled
features of all candidates (once per round), s_test per anchor, scoring the candidates.

    OMP_WAIT_POLICY=PASSIVE python bench/hildif_explain.py [--anchors 2] [--candidates 5000]
        [--method lissa] [--depth 100] [--threads N]

The last line is one JSON object.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import registry  # noqa: E402
from registry._lib.explain import ExplainParams, explain, pooled_features  # noqa: E402
from registry._lib.param_sets import select_parameters  # noqa: E402
from registry.data import encode_split  # noqa: E402
from registry.datasets.data_root import resolve_data_root  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--anchors", type=int, default=2)
    ap.add_argument("--candidates", type=int, default=5000)
    ap.add_argument("--method", default="lissa", choices=("lissa", "cg", "cosine"))
    ap.add_argument("--depth", type=int, default=None, help="LiSSA depth (default: ExplainParams')")
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    bundle = registry.build("dataset", "mnli", {"hans": False}).load(resolve_data_root())
    model = registry.build("model", "offline_minilm").build(len(bundle.label_names)).eval()
    train = encode_split(bundle.splits["train_subset"], model.tokenizer, 128)
    dev = encode_split(bundle.splits["dev_subset"], model.tokenizer, 128)
    n = min(args.candidates, len(train))
    settings = ExplainParams(method=args.method, knn_k=n, **({"depth": args.depth} if args.depth else {}))
    params = select_parameters(model, settings.parameters)
    g = torch.Generator().manual_seed(0)
    hessian = iter(lambda: train.batch(torch.randint(len(train), (settings.hessian_batch_size,), generator=g)), None)

    t0 = time.perf_counter()
    feats = pooled_features(model, (train.batch(c) for c in torch.arange(n).split(settings.chunk)))
    t_features = time.perf_counter() - t0
    anchors = dev.batch(torch.arange(args.anchors))
    t0 = time.perf_counter()
    found = explain(model, anchors, train.batch, n, params, settings=settings, top=10, generator=g,
                    hessian_batches=hessian, features=feats)
    t_explain = (time.perf_counter() - t0) / args.anchors
    assert len(found) == args.anchors and all(len(e.candidate_indices) == 10 for e in found)
    per_anchor = t_explain + t_features / args.anchors
    print(f"{args.anchors} anchors x {n} candidates ({args.method}, depth {settings.depth}, Hessian batch "
          f"{settings.hessian_batch_size}, params {sum(p.numel() for _, p in params):,}): features {t_features:.1f} s "
          f"(once per round), explain {t_explain:.1f} s per anchor; paper: ~420 s per anchor (BERT-base, K80)")
    print(json.dumps({"candidates": n, "anchors": args.anchors, "method": args.method, "depth": settings.depth,
                      "hessian_batch_size": settings.hessian_batch_size, "threads": torch.get_num_threads(),
                      "features_s": round(t_features, 2), "explain_s_per_anchor": round(t_explain, 2),
                      "seconds_per_anchor_with_features": round(per_anchor, 2), "paper_seconds_per_anchor": 420}))


if __name__ == "__main__":
    main()
