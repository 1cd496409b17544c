"""The UIMER comparison (Chen, Jiang & Tu 2024) with recipes: finetune vs the rationale margins
after a warm-up until early stopping first fires, over the authors' seeds.

- ``--task snips`` (default): SNIPS intent, 5 and 10 shots per intent, finetune vs gradient
  (UIMER-GB), erasure (UIMER-IM) and extractor (UIMER-DM);
- ``--task esnli``: e-SNLI highlight pairs (100 per class, the recipe's default), finetune vs
  erasure.

Prints test accuracy (taken at the best dev evaluation), mean ± sd over seeds with Welch
p-values against finetune (`recipe-engine compare`), one table per shot count.  The paper's
claims to compare with: the margin helps most in low-resource settings, and IM beats GB in
most settings.

Each (method, shots) is an ordinary run folder in one study folder; complete runs are not run
again, interrupted ones resume, and ``--archive DIR`` keeps light copies (bench/_study.py):

    OMP_WAIT_POLICY=PASSIVE python bench/uimer.py [--task snips|esnli] [--shots 5,10] \\
        [--methods finetune,erasure] [--seeds 55,1988,12333,42] [--out outputs/snips-uimer] \\
        [--archive docs/results/snips-uimer] [--report-only] [--sync]
"""
from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _study import open_study, run_method, study_parser  # noqa: E402

from recipe_engine.compare import compare_paths  # noqa: E402

TASKS = {  # task -> (method -> recipe, default shots: "" keeps the recipe's, table title)
    "snips": ({"finetune": "recipes/rationale/snips_finetune.yaml",
               "gradient": "recipes/rationale/snips_margin_gradient.yaml",
               "erasure": "recipes/rationale/snips_margin_erasure.yaml",
               "extractor": "recipes/rationale/snips_margin_extractor.yaml"}, "5,10", "SNIPS intent"),
    "esnli": ({"finetune": "recipes/rationale/esnli_finetune.yaml",
               "erasure": "recipes/rationale/esnli_margin_erasure.yaml"}, "", "e-SNLI (SNLI test)"),
}
ALL_METHODS = ["finetune", "gradient", "erasure", "extractor"]


def main() -> int:
    ap = study_parser(__doc__, seeds="55,1988,12333,42", methods=ALL_METHODS, out="outputs/snips-uimer")
    ap.add_argument("--task", choices=list(TASKS), default="snips")
    ap.add_argument("--shots", default=None, help="comma-separated shots per class (snips: 5,10; esnli: the recipe's 100)")
    args = ap.parse_args()
    study, archive, done = open_study(ap, args)
    if done:
        return 0
    recipes, default_shots, title = TASKS[args.task]
    seeds = [int(s) for s in args.seeds.split(",")]
    methods = [m for m in args.methods.split(",") if m in recipes]
    shots_arg = default_shots if args.shots is None else args.shots
    for shots in shots_arg.split(",") if shots_arg else [None]:
        runs: dict[str, Path] = {}
        for method in methods:
            overrides = [f"seeds={json.dumps(seeds)}", "runtime.progress=false", *args.override]
            if shots is not None:
                overrides.insert(1, f"data.params.shots={int(shots)}")
            label = f"{method} {shots}-shot" if shots else method
            code, run = run_method(label, recipes[method], overrides, study, archive, args.report_only)
            if code != 0:
                return code
            if run is not None:
                runs[method] = run
        if "finetune" in runs:
            order = [m for m in recipes if m in runs]
            print(f"\n{(shots + '-shot ') if shots else ''}{title} (test accuracy at the best dev evaluation)")
            print(compare_paths([str(runs[m]) for m in order], baseline=str(runs["finetune"]),
                                metrics="test/accuracy,dev/accuracy", fmt_name="text"))
        for method in (m for m in methods if m != "finetune" and m in runs):
            ratios = phase_step_ratios(runs[method])
            if ratios:
                print(f"{method}: a margin-phase step (cross-entropy + the margin) / a warm-up step (cross-entropy), "
                      f"same run, from metrics.jsonl: median {statistics.median(ratios):.2f} "
                      f"(per seed {', '.join(f'{r:.2f}' for r in ratios)})")
    return 0


def phase_step_seconds(metrics: Path) -> dict[str, list[float]]:
    """Seconds per training step of each phase, from the pure training intervals of a run's log:
    an evaluation at step s0 followed by the train record at step s of the same phase as the
    train record before it (what lies between is s - s0 training steps, nothing else)."""
    out: dict[str, list[float]] = {}
    prev_eval, prev_phase = None, None
    for line in metrics.read_text().splitlines():
        r = json.loads(line)
        if r["event"] == "eval":
            prev_eval = r
        elif r["event"] == "train":
            if prev_eval is not None and r["phase"] == prev_phase and r["step"] > prev_eval["step"]:
                out.setdefault(r["phase"], []).append((r["time"] - prev_eval["time"]) / (r["step"] - prev_eval["step"]))
            prev_eval, prev_phase = None, r["phase"]
    return out


def phase_step_ratios(run: Path) -> list[float]:
    """Per seed: the median step time of the last phase over the first (margin / warm-up)."""
    ratios = []
    for metrics in sorted(run.glob("seed-*/metrics.jsonl")):
        phases = list(phase_step_seconds(metrics).values())
        if len(phases) >= 2:
            ratios.append(statistics.median(phases[-1]) / statistics.median(phases[0]))
    return ratios


if __name__ == "__main__":
    sys.exit(main())
