"""Benchmark: one influence-tuning step (exact grad J, Han & Tsvetkov 2021 sec. 4 / App. B).

Routes on the same inputs and parameter set, in one process: ours (``gram``), the
per-example double-backward ``loop`` and the authors' ``reference`` algorithm (4 HVPs per
pair, batch size 1).  Unit: a CE step (train-mode forward + backward + AdamW step) over the
same rows.  Every influence step is eval mode + grad J + AdamW step.  Times are medians of
interleaved repeats.  The last line printed is one JSON object for the 16-probe tiny case.

    python bench/influence_step.py [--quick] [--threads 1] [--no-minilm]
"""
from __future__ import annotations

import argparse
import copy
import json

import _common as C
from _common import torch

from registry._lib.influence import influence_gram, influence_loop, influence_reference
from registry._lib.param_sets import select_parameters, spec_label
from registry._lib.per_example import exact_math

K = 5
ROUTES = {"loop": influence_loop, "reference": influence_reference}


def step(route: str, model, opt, rows, spec) -> float:
    """One influence step; returns J."""
    model.eval()
    opt.zero_grad(set_to_none=True)
    params = select_parameters(model, spec)
    with exact_math("cpu"):
        if route == "gram":
            res = influence_gram(model, rows, K, params)
            res.J.backward()
        else:
            targets = [p for p in model.parameters() if p.requires_grad]
            res, grads = ROUTES[route](model, rows, K, params, targets)
            for p, g in zip(targets, grads):
                p.grad = g
    opt.step()
    return float(res.J.detach())


def confounded(model, steps: int = 40):
    """The state influence tuning meets: ``steps`` CE steps (lr 1e-3, batch 32) on TextLen-like
    data whose prefix token agrees with the label 90% of the time."""
    data = C.TextLenLikeData(640, model.encoder.config.vocab_size, seed=1)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(0)
    for _ in range(steps):
        C.ce_step(model, opt, data.batch(torch.randint(len(data), (32,), generator=g)))
    return model


def accuracy(model32, rows, spec, control: bool = False) -> dict[str, float]:
    """float32 routes (scalars in float64) against the float64 loop, same weights:
    relative differences of J and of the grad J vector (global 2-norm); ``control`` adds
    the float32 loop."""
    model64 = copy.deepcopy(model32).double()
    out = {}
    runs = (("ours32", model32, "gram"), ("loop64", model64, "loop")) + ((("loop32", model32, "loop"),) if control else ())
    for name, m, route in runs:
        m.zero_grad(set_to_none=True)
        J = step(route, m, torch.optim.SGD(m.parameters(), lr=0.0), rows, spec)
        out[name] = (J, C.flat_grads(list(m.parameters())))
    j64, g64 = out["loop64"]
    diff = lambda name: max(abs(out[name][0] - j64) / abs(j64), C.rel(out[name][1], g64))  # noqa: E731
    return {"J": j64, "ours32": diff("ours32"), "loop32": diff("loop32") if control else float("nan")}


def run_case(label: str, model, probes: int, spec, routes: list[str], repeats: int, budget_s: float,
             extrapolate_from: dict[str, float] | None = None) -> dict[str, float]:
    rows = C.textlen_like_rows(probes, K, model.encoder.config.vocab_size)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5)
    cases = {"ce": lambda: C.ce_step(model, opt, rows)}
    for r in routes:
        cases[r] = (lambda r=r: step(r, model, opt, rows, spec))
    t = C.interleaved(cases, repeats=repeats, budget_s=budget_s)
    for r, per_probe in (extrapolate_from or {}).items():
        t[r + "*"] = per_probe * probes
    print(f"{label}: {probes} probe(s) x (1 + 2k={2 * K}) = {len(rows)} rows, parameters {spec_label(spec)}")
    return t


def print_rows(title: str, results: dict[str, dict[str, float]]) -> None:
    rows = []
    for case, t in results.items():
        ce = t["ce"]
        for name, sec in t.items():
            ours = t.get("gram")
            rows.append([case, name, f"{sec * 1e3:,.0f}", f"{sec / ce:.2f}",
                         "" if name in ("ce", "gram") or ours is None else f"{sec / ours:.1f}x"])
    print(f"\n{title}\n" + C.table(["case", "route", "ms", "x CE step", "ours faster by"], rows))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer repeats; MiniLM at 1 probe only (~2 min)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--no-minilm", action="store_true")
    ap.add_argument("--minilm-params", default="all", help="parameter set for MiniLM (default all)")
    args = ap.parse_args()
    C.setup_threads(args.threads)
    print(C.machine())
    rep = 2 if args.quick else 3
    spec = "all"

    tiny = C.tiny_model()
    res = {}
    res["tiny, 1 probe"] = run_case("tiny", tiny, 1, spec, ["gram", "loop", "reference"], 2 * rep + 1, 30)
    res["tiny, 16 probes"] = t16 = run_case("tiny", tiny, 16, spec, ["gram", "loop", "reference"], rep,
                                            15 if args.quick else 45)
    print_rows("tiny BERT (vocab 5000, hidden 128, 2 layers, 1.06M params), all parameters", res)
    acc_rows = C.textlen_like_rows(16, K, 5000)
    acc_init = accuracy(C.tiny_model(), acc_rows, spec, control=True)
    acc = accuracy(confounded(C.tiny_model()), acc_rows, spec)
    print("\naccuracy, tiny, 16 probes: max(rel diff of J, rel diff of grad J) against the float64 loop")
    print(C.table(["weights", "J (float64)", "ours, float32", "loop, float32"], [
        ["BERT init (std 0.02)", f"{acc_init['J']:.2e}", f"{acc_init['ours32']:.1e}", f"{acc_init['loop32']:.1e}"],
        ["after 40 confounded CE steps", f"{acc['J']:.2e}", f"{acc['ours32']:.1e}", "-"]]))

    if not args.no_minilm:
        mini = C.minilm_model()
        mspec = args.minilm_params
        mres = {}
        one = run_case("MiniLM", mini, 1, mspec, ["gram", "loop", "reference"], 1 if args.quick else 2, 10)
        mres["MiniLM, 1 probe"] = one
        if not args.quick:
            mres["MiniLM, 16 probes"] = run_case("MiniLM", mini, 16, mspec, ["gram"], 2, 60,
                                                 extrapolate_from={"loop": one["loop"], "reference": one["reference"]})
        print_rows(f"all-MiniLM-L6-v2 (22.7M params), parameters {mspec} (* = 16 x the 1-probe time: "
                   "both are loops over probes)", mres)

    summary = {
        "speedup_vs_reference": round(t16["reference"] / t16["gram"], 2),
        "speedup_vs_loop": round(t16["loop"] / t16["gram"], 2),
        "ratio_to_ce_same_examples": round(t16["gram"] / t16["ce"], 2),
        "max_rel_diff": float(f"{acc['ours32']:.2e}"),
        "max_rel_diff_bert_init": float(f"{acc_init['ours32']:.2e}"),
        "float32_loop_rel_diff_bert_init": float(f"{acc_init['loop32']:.2e}"),
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
