"""The IG-variance comparison (Weaver, "Variance-Based Integrated Gradients Regularization
for Robust NLI") on SNLI with recipes: finetune vs ig_variance (faithful: the authors' code,
path gradients constant) vs ig_variance (differentiable: the method as the report
describes it), over seeds, with HANS per heuristic as the stress test.

Prints accuracy, class-1 (neutral, the authors' figure) and macro ROC AUC, ECE and HANS
accuracy per heuristic, mean ± sd over seeds with Welch p-values against finetune
(`recipe-engine compare`), next to the paper's single-seed ELECTRA-small numbers.

Each method is an ordinary run folder in one study folder; complete runs are not run again,
interrupted ones resume, and ``--archive DIR`` keeps light copies (see bench/_study.py) so a
later session restores them and runs only what is missing:

    OMP_WAIT_POLICY=PASSIVE python bench/snli_ig_variance.py --seeds 2021,2022,2023 \\
        [--methods finetune,ig_variance] [--out outputs/snli-ig-variance] \\
        [--archive docs/results/snli-ig-variance] [--report-only] [--sync]
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _study import open_study, run_method, study_parser  # noqa: E402

from recipe_engine.compare import compare_paths  # noqa: E402

METHODS = {  # method -> recipe
    "finetune": "recipes/nli/snli_finetune.yaml",
    "ig_variance": "recipes/nli/snli_ig_variance.yaml",
    "ig_variance_differentiable": "recipes/nli/snli_ig_variance_differentiable.yaml",
}
#: the report's table (ELECTRA-small, full SNLI train, one seed, SNLI validation)
PAPER = {"finetune": {"accuracy": 0.8918, "roc_auc (class 1)": 0.9571},
         "ig_variance": {"accuracy": 0.8963, "roc_auc (class 1)": 0.9578}}
METRICS = ("test/accuracy,test/roc_auc/neutral,test/roc_auc/macro,test/ece,test/attribution_variance,hans/accuracy,"
           "hans/lexical_overlap/entailment,hans/lexical_overlap/non-entailment,hans/subsequence/non-entailment,"
           "hans/constituent/non-entailment")


def main() -> int:
    ap = study_parser(__doc__, seeds="2021,2022,2023", methods=list(METHODS), out="outputs/snli-ig-variance")
    ap.add_argument("--metrics", default=METRICS, help="comma-separated metrics of the table")
    args = ap.parse_args()
    study, archive, done = open_study(ap, args)
    if done:
        return 0
    seeds = [int(s) for s in args.seeds.split(",")]
    runs: dict[str, Path] = {}
    for method in args.methods.split(","):
        overrides = [f"seeds={json.dumps(seeds)}", "runtime.progress=false", *args.override]
        code, run = run_method(method, METHODS[method], overrides, study, archive, args.report_only)
        if code != 0:
            return code
        if run is not None:
            runs[method] = run
    if "finetune" not in runs:
        print("no finetune run to compare against", file=sys.stderr)
        return 1
    order = [m for m in METHODS if m in runs]
    print(compare_paths([str(runs[m]) for m in order], baseline=str(runs["finetune"]), metrics=args.metrics,
                        fmt_name="text"))
    print("\npaper (ELECTRA-small, full SNLI, 1 seed, SNLI dev): " + "; ".join(
        f"{m} " + ", ".join(f"{k} {v}" for k, v in PAPER[m].items()) for m in PAPER))
    return 0


if __name__ == "__main__":
    sys.exit(main())
