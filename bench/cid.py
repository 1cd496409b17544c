"""Benchmark: the CID metric (Han & Tsvetkov 2021, sec. 6.1), gradient cosines of P probes
against N training examples, batched routes against a per-example loop.

Routes, same inputs and parameter set, one process: ``gram`` (dot products from activations
and output gradients), ``vmap`` (chunked per-example gradients + one matrix product per
parameter tensor) and ``loop`` (one ``autograd.grad`` per example, flattened, dotted with the
stacked probe gradients: the reference code's ``bert_trackin.py`` way).  Unit: a CE step
(forward + backward + AdamW step) over the N training examples.  Medians of interleaved
repeats.  The last line printed is one JSON object for the tiny-model case.

    python bench/cid.py [--quick] [--threads 1] [--no-minilm]
"""
from __future__ import annotations

import argparse
import copy
import json

import _common as C
from _common import torch

from registry._lib.cosine import gradient_cosines
from registry._lib.param_sets import select_parameters
from registry._lib.per_example import eval_mode, exact_math, per_example_grads_loop
from registry.metrics.cid import cid_from_cosines


def loop_cosines(model, data, probes, candidates, params) -> torch.Tensor:
    """Per-example gradients one at a time; probe gradients stacked; one dot per pair."""
    plist = [p for _, p in params]
    with eval_mode(model), exact_math("cpu"):
        flat = lambda i: torch.cat([g.reshape(-1) for g in per_example_grads_loop(model, data.batch([i]), plist)[0]])  # noqa: E731
        prb = torch.stack([flat(i) for i in probes.tolist()])
        prb_norm = prb.double().norm(dim=1)
        cols = []
        for j in candidates.tolist():
            g = flat(j)
            cols.append((prb @ g).double() / (prb_norm * g.double().norm()))
    return torch.stack(cols, 1)


def run_case(label: str, model, data, n_probes: int, spec, repeats: int, chunk: int) -> tuple[dict, dict]:
    probes = torch.arange(n_probes)
    candidates = torch.arange(len(data))
    params = select_parameters(model, spec)
    opt = torch.optim.AdamW(model.parameters(), lr=0.0)
    everything = data.batch(candidates)
    out: dict[str, torch.Tensor] = {}

    def route(name):
        def fn():
            if name == "loop":
                out[name] = loop_cosines(model, data, probes, candidates, params)
            else:
                out[name] = gradient_cosines(model, data, probes, candidates, params, "cpu", name, chunk)
        return fn

    cases = {"ce": lambda: C.ce_step(model, opt, everything), "gram": route("gram"), "vmap": route("vmap"),
             "loop": route("loop")}
    t = C.interleaved(cases, repeats=repeats, budget_s=60)
    model64 = copy.deepcopy(model).double()
    ref64 = loop_cosines(model64, data, probes, candidates, select_parameters(model64, spec))
    cid = lambda cos: cid_from_cosines(cos, probes, candidates, data.labels, data.confound, False)[0]  # noqa: E731
    acc = {name: {"max_abs_cos": float((cos - ref64).abs().max()), "cid": cid(cos)} for name, cos in out.items()}
    acc["loop64"] = {"max_abs_cos": 0.0, "cid": cid(ref64)}
    print(f"{label}: {n_probes} probes x {len(data)} training examples, parameters {spec}, chunk {chunk}")
    return t, acc


def print_case(title: str, t: dict, acc: dict) -> None:
    rows = []
    for name, sec in t.items():
        a = acc.get(name, {})
        rows.append([name, f"{sec * 1e3:,.0f}", f"{sec / t['ce']:.2f}",
                     "" if name in ("ce", "loop") else f"{t['loop'] / sec:.1f}x",
                     f"{a['max_abs_cos']:.1e}" if a else "", f"{a['cid']:.6f}" if a else ""])
    rows.append(["loop (float64)", "", "", "", "0", f"{acc['loop64']['cid']:.6f}"])
    print(f"\n{title}\n" + C.table(["route", "ms", "x CE step", "faster than loop", "max |cos - cos64|", "CID"], rows))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer repeats and examples")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--no-minilm", action="store_true")
    args = ap.parse_args()
    C.setup_threads(args.threads)
    print(C.machine())
    n_train = 200 if args.quick else 400
    tiny = C.tiny_model()
    t, acc = run_case("tiny", tiny, C.TextLenLikeData(n_train, 5000), 40, "all", 2 if args.quick else 3, 64)
    print_case("tiny BERT (1.06M params), all parameters", t, acc)
    if not args.no_minilm:
        mini = C.minilm_model()
        mt, macc = run_case("MiniLM", mini, C.TextLenLikeData(48 if args.quick else 64, 30522), 16, "all", 1, 16)
        print_case("all-MiniLM-L6-v2 (22.7M params), all parameters", mt, macc)
    summary = {
        "speedup_vs_loop": round(t["loop"] / t["gram"], 2),
        "speedup_vmap_vs_loop": round(t["loop"] / t["vmap"], 2),
        "ratio_to_ce_same_examples": round(t["gram"] / t["ce"], 2),
        "max_abs_diff_cos": float(f"{acc['gram']['max_abs_cos']:.2e}"),
        "cid_abs_diff": float(f"{abs(acc['gram']['cid'] - acc['loop64']['cid']):.2e}"),
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
