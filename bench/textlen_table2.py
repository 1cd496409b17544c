"""The whole TextLen comparison of Han & Tsvetkov 2021, Table 2, with recipes.

Runs finetune, adversarial, influence tuning, embedding tuning and no_spurious over the
given seeds into one study folder, then prints the Table 2 layout (test accuracy mean ± sd,
Welch p-value against finetune, final CID) next to the paper's BERT-base numbers.

Each method is an ordinary run folder; a method whose run is complete is not run again and
an interrupted one is resumed, so the study can be split across sessions:

    OMP_WAIT_POLICY=PASSIVE python bench/textlen_table2.py --seeds 2021,2022,2023 \
        [--methods finetune,no_spurious] [--it-parameters '{last_n_layers: 2}'] [--out outputs/textlen-table2]

``--it-parameters`` sets the influence-tuning parameter set (``all`` in the paper); a subset
keeps CPU runs affordable and is recorded in each run's overrides.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from recipe_engine.compare import compare_paths  # noqa: E402
from recipe_engine.outputs import is_complete  # noqa: E402
from recipe_engine.resolve import resolve  # noqa: E402
from recipe_engine.runner import execute, same_method  # noqa: E402

METHODS = {  # method -> (recipe, paper test accuracy with BERT-base, paper final CID)
    "finetune": ("recipes/textlen/finetune.yaml", 76.00, 0.093),
    "adversarial": ("recipes/textlen/adversarial.yaml", 78.44, None),
    "influence_tuning": ("recipes/textlen/influence_tuning.yaml", 80.48, 0.035),
    "embedding_tuning": ("recipes/textlen/embedding_tuning.yaml", 82.20, None),
    "no_spurious": ("recipes/textlen/no_spurious.yaml", 84.96, 0.019),
}


def existing_run(study: Path, resolved) -> Path | None:
    """The newest run folder of this method (same fingerprint once re-resolved), if any."""
    folder = study / resolved.recipe.name
    if not folder.is_dir():
        return None
    for run in sorted(folder.iterdir(), reverse=True):
        if (run / "run.json").is_file() and same_method(run, resolved):
            return run
    return None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", default="2021,2022,2023")
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--it-parameters", default=None, help="influence_tuning parameter set, e.g. '{last_n_layers: 2}'")
    ap.add_argument("--out", default="outputs/textlen-table2")
    ap.add_argument("--report-only", action="store_true", help="print the table from the runs there are")
    args = ap.parse_args()
    study = Path(args.out)
    seeds = [int(s) for s in args.seeds.split(",")]
    runs: dict[str, Path] = {}
    for method in args.methods.split(","):
        recipe_path, _, _ = METHODS[method]
        overrides = [f"seeds={json.dumps(seeds)}", "runtime.progress=false"]
        if method == "influence_tuning" and args.it_parameters:
            overrides.append(f"schedule.phases.train.phases.influence.objectives.influence_tuning.params.parameters={args.it_parameters}")
        resolved = resolve(ROOT / recipe_path, overrides)
        run = existing_run(study, resolved)
        if args.report_only:
            if run is not None:
                runs[method] = run
            continue
        if run is not None and is_complete(run):
            print(f"{method}: complete in {run}", file=sys.stderr)
        else:
            print(f"{method}: {'resuming ' + str(run) if run else 'starting'}", file=sys.stderr)
            code = execute(resolved, str(ROOT / recipe_path), overrides, run_dir=run, out_root=None if run else study)
            if code != 0:
                return code
            run = existing_run(study, resolved)
        runs[method] = run
    if "finetune" not in runs:
        print("no finetune run to compare against", file=sys.stderr)
        return 1
    order = [m for m in METHODS if m in runs]
    print(compare_paths([str(runs[m]) for m in order], baseline=str(runs["finetune"]),
                        metrics="test/accuracy,train/cid", fmt_name="text"))
    print("\npaper (BERT-base, 5 seeds): " + ", ".join(
        f"{m} {METHODS[m][1]:.2f}" + (f" (CID {METHODS[m][2]})" if METHODS[m][2] is not None else "") for m in order))
    return 0


if __name__ == "__main__":
    sys.exit(main())
