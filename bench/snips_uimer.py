"""The UIMER comparison (Chen, Jiang & Tu 2024) on SNIPS intent, few-shot, with recipes:
finetune vs the rationale margins (gradient, erasure/IM, extractor/DM) after a warm-up until
early stopping first fires, at 5 and 10 shots per intent, over the authors' seeds.

Prints test accuracy (taken at the best dev evaluation), mean ± sd over seeds with Welch
p-values against finetune (`recipe-engine compare`), one table per shot count.  The paper's
claims to compare with: the margin helps most in low-resource settings, and IM beats GB in
most settings.

Each (method, shots) is an ordinary run folder in one study folder; complete runs are not run
again, interrupted ones resume, and ``--archive DIR`` keeps light copies (bench/_study.py):

    OMP_WAIT_POLICY=PASSIVE python bench/snips_uimer.py [--shots 5,10] [--methods finetune,erasure] \\
        [--seeds 55,1988,12333,42] [--out outputs/snips-uimer] [--archive docs/results/snips-uimer] \\
        [--report-only] [--sync]
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _study import ROOT, open_study, run_method, study_parser  # noqa: E402

from recipe_engine.compare import compare_paths  # noqa: E402

METHODS = {  # method -> recipe
    "finetune": "recipes/rationale/snips_finetune.yaml",
    "gradient": "recipes/rationale/snips_margin_gradient.yaml",
    "erasure": "recipes/rationale/snips_margin_erasure.yaml",
    "extractor": "recipes/rationale/snips_margin_extractor.yaml",
}


def main() -> int:
    ap = study_parser(__doc__, seeds="55,1988,12333,42", methods=list(METHODS), out="outputs/snips-uimer")
    ap.add_argument("--shots", default="5,10")
    args = ap.parse_args()
    study, archive, done = open_study(ap, args)
    if done:
        return 0
    seeds = [int(s) for s in args.seeds.split(",")]
    methods = [m for m in args.methods.split(",") if (ROOT / METHODS[m]).is_file()]
    for shots in [int(s) for s in args.shots.split(",")]:
        runs: dict[str, Path] = {}
        for method in methods:
            overrides = [f"seeds={json.dumps(seeds)}", f"data.params.shots={shots}", "runtime.progress=false", *args.override]
            code, run = run_method(f"{method} {shots}-shot", METHODS[method], overrides, study, archive, args.report_only)
            if code != 0:
                return code
            if run is not None:
                runs[method] = run
        if "finetune" in runs:
            order = [m for m in METHODS if m in runs]
            print(f"\n{shots}-shot SNIPS intent (test accuracy at the best dev evaluation)")
            print(compare_paths([str(runs[m]) for m in order], baseline=str(runs["finetune"]),
                                metrics="test/accuracy,dev/accuracy", fmt_name="text"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
