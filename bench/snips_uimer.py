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

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _study import ROOT, restore_archive, run_method, sync_archive  # noqa: E402

from recipe_engine.compare import compare_paths  # noqa: E402

METHODS = {  # method -> recipe
    "finetune": "recipes/rationale/snips_finetune.yaml",
    "gradient": "recipes/rationale/snips_margin_gradient.yaml",
    "erasure": "recipes/rationale/snips_margin_erasure.yaml",
    "extractor": "recipes/rationale/snips_margin_extractor.yaml",
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", default="55,1988,12333,42", help="the authors' seeds (README)")
    ap.add_argument("--shots", default="5,10")
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--out", default="outputs/snips-uimer")
    ap.add_argument("--archive", default=None, help="folder of light run copies to restore from and save to")
    ap.add_argument("--sync", action="store_true", help="only refresh --archive from --out")
    ap.add_argument("--report-only", action="store_true", help="print the tables from the runs there are")
    args = ap.parse_args()
    study = Path(args.out)
    archive = Path(args.archive) if args.archive else None
    if args.sync:
        if archive is None:
            ap.error("--sync needs --archive")
        sync_archive(study, archive)
        return 0
    if archive is not None and archive.is_dir():
        restore_archive(archive, study)
    seeds = [int(s) for s in args.seeds.split(",")]
    methods = [m for m in args.methods.split(",") if (ROOT / METHODS[m]).is_file()]
    for shots in [int(s) for s in args.shots.split(",")]:
        runs: dict[str, Path] = {}
        for method in methods:
            overrides = [f"seeds={json.dumps(seeds)}", f"data.params.shots={shots}", "runtime.progress=false"]
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
