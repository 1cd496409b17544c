"""Benchmark: time per anchor of HILDIF's EXPLAIN step for 5,000 candidates, next to the paper's
"about seven minutes per anchor" for 5,000 training points (Zylberajch et al. 2021, sec. 4:
BERT-base on a K80, FastIF's LiSSA).

The offline MiniLM (``offline_minilm``, as loaded with a fresh head: only the time matters)
over the first ``--candidates`` pairs of MNLI ``train_subset`` (``--max-length`` 128, the
authors' ``max_seq_length``), anchors the first ``--anchors`` rows of ``dev_subset``.  The
explain settings are the defaults of ``registry._lib.explain.ExplainParams`` (the hildif
recipes' section) except ``knn_k``: every candidate is scored (``--knn-k`` to change it), as
the paper's figure scores 5,000 points.  Phases timed apart:

- ``features``: pooled features of all candidates (once per round and checkpoint, shared by the anchors);
- ``knn``: the exact kNN pre-filter of all anchors;
- per anchor: ``s_test`` (LiSSA: ``depth`` Hessian-vector products on ``hessian_batch_size``
  examples; CG; or the anchor gradient for ``cosine``) and ``scoring`` (the kNN candidates);
- unit: ``features_s`` is one eval forward over the candidates, so ``per_anchor / features``
  is the cost of an anchor in candidate forward passes, comparable across machines.

    python bench/hildif_explain.py [--anchors 2] [--candidates 5000] [--method lissa|cg|cosine]
        [--depth N] [--knn-k N] [--threads 2]

The last line printed is one JSON object.
"""
from __future__ import annotations

import argparse
import json
import sys
import time

import _common as C
from _common import torch

import registry
from registry._lib.explain import (ExplainParams, Explanation, anchor_s_test, candidate_features,
                                   influence_scores, pooled_features)
from registry._lib.knn import nearest_neighbours
from registry._lib.param_sets import select_parameters
from registry._lib.per_example import eval_mode
from registry.data import encode_split
from registry.datasets.data_root import resolve_data_root

PAPER_SECONDS_PER_ANCHOR = 7 * 60  # "about seven minutes per anchor" on a K80, 5,000 candidates


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--anchors", type=int, default=2)
    ap.add_argument("--candidates", type=int, default=5000)
    ap.add_argument("--method", default=None, choices=("lissa", "cg", "cosine"), help="default: ExplainParams'")
    ap.add_argument("--depth", type=int, default=None, help="LiSSA depth (default: ExplainParams')")
    ap.add_argument("--knn-k", type=int, default=None, help="candidates scored per anchor (default: all of them)")
    ap.add_argument("--max-length", type=int, default=128)
    ap.add_argument("--top", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--data-root", default=None)
    args = ap.parse_args()
    C.setup_threads(args.threads)
    torch.manual_seed(0)

    bundle = registry.build("dataset", "mnli", {"hans": False}).load(resolve_data_root(args.data_root))
    model = registry.build("model", "offline_minilm").build(len(bundle.label_names)).eval()
    train = encode_split(bundle.splits["train_subset"], model.tokenizer, args.max_length)
    dev = encode_split(bundle.splits["dev_subset"], model.tokenizer, args.max_length)
    n = min(args.candidates, len(train))
    overrides = {k: v for k, v in (("method", args.method), ("depth", args.depth)) if v is not None}
    settings = ExplainParams(knn_k=args.knn_k or n, **overrides)
    params = select_parameters(model, settings.parameters)
    plist = [p for _, p in params]
    g = torch.Generator().manual_seed(0)
    hessian = iter(lambda: train.batch(torch.randint(n, (settings.hessian_batch_size,), generator=g)), None)
    anchors = dev.batch(torch.arange(args.anchors))

    with eval_mode(model):
        t0 = time.perf_counter()
        feats = candidate_features(model, train.batch, n, settings.chunk, train.lengths)
        t_features = time.perf_counter() - t0
        print(f"features of {n} candidates: {t_features:.1f} s", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        _, near = nearest_neighbours(pooled_features(model, iter([anchors])), feats, settings.knn_k, settings.knn_metric)
        t_knn = time.perf_counter() - t0
        s_test_s, scoring_s, found = [], [], []
        for a in range(args.anchors):
            t0 = time.perf_counter()
            direction = anchor_s_test(model, anchors.select(torch.tensor([a])), plist, settings, hessian)
            s_test_s.append(time.perf_counter() - t0)
            print(f"anchor {a}: s_test {s_test_s[-1]:.1f} s", file=sys.stderr, flush=True)
            t0 = time.perf_counter()
            rows = near[a]
            scores = influence_scores(model, rows, train.batch, params, direction, method=settings.method,
                                      chunk=settings.chunk, lengths=train.lengths)
            scoring_s.append(time.perf_counter() - t0)
            order = torch.argsort(scores, stable=True)[:args.top]
            found.append(Explanation(a, rows[order].tolist(), scores[order].tolist()))
    assert all(len(e.candidate_indices) == min(args.top, settings.knn_k) for e in found)
    assert all(e.scores == sorted(e.scores) and set(e.candidate_indices) <= set(near[e.anchor_index].tolist())
               for e in found)

    mean = lambda xs: sum(xs) / len(xs)  # noqa: E731
    per_anchor = mean(s_test_s) + mean(scoring_s) + t_knn / args.anchors
    with_features = per_anchor + t_features / args.anchors
    k = settings.knn_k
    print(C.machine())
    print(f"{args.anchors} anchor(s) x {n} candidates, {k} scored each ({settings.method}, depth {settings.depth}, "
          f"Hessian batch {settings.hessian_batch_size}, {sum(p.numel() for p in plist):,} parameters: "
          f"{settings.parameters}), max_length {args.max_length}")
    print(f"  features {t_features:.1f} s (once per round), kNN {t_knn:.2f} s, per anchor: s_test {mean(s_test_s):.1f} s "
          f"+ scoring {mean(scoring_s):.1f} s = {per_anchor:.1f} s ({per_anchor / t_features:.2f} candidate forward "
          f"passes); with the features shared by {args.anchors} anchor(s): {with_features:.1f} s; paper: "
          f"~{PAPER_SECONDS_PER_ANCHOR} s (BERT-base, K80)")
    print(json.dumps({"candidates": n, "knn_k": k, "anchors": args.anchors, "method": settings.method,
                      "depth": settings.depth, "hessian_batch_size": settings.hessian_batch_size,
                      "max_length": args.max_length, "threads": torch.get_num_threads(),
                      "parameters": sum(p.numel() for p in plist), "features_s": round(t_features, 2),
                      "knn_s": round(t_knn, 3), "s_test_s": [round(x, 2) for x in s_test_s],
                      "scoring_s": [round(x, 2) for x in scoring_s], "seconds_per_anchor": round(per_anchor, 2),
                      "seconds_per_anchor_with_features": round(with_features, 2),
                      "anchor_over_features": round(per_anchor / t_features, 3),
                      "paper_seconds_per_anchor": PAPER_SECONDS_PER_ANCHOR}))


if __name__ == "__main__":
    main()
