"""The whole TextLen comparison of Han & Tsvetkov 2021, Table 2, with recipes.

Runs finetune, adversarial, influence tuning, embedding tuning and no_spurious over the
given seeds into one study folder, then prints the Table 2 layout (test accuracy mean ± sd,
Welch p-value against finetune, final CID; also the accuracy on the test examples whose
prefix contradicts the label, where a shortcut shows) next to the paper's BERT-base numbers.

Each method is an ordinary run folder; a method whose run is complete is not run again and
an interrupted one is resumed (finished seeds are kept), so the study can be split:

    OMP_WAIT_POLICY=PASSIVE python bench/textlen_table2.py --seeds 2021,2022,2023 \\
        [--methods finetune,no_spurious] [--it-parameters '{last_n_layers: 2}'] \\
        [--cid-parameters '{last_n_layers: 2}'] [--out outputs/textlen-table2] \\
        [--archive docs/results/textlen-table2]

``--it-parameters`` sets the influence-tuning parameter set and ``--cid-parameters`` that of
the final CID (``all`` in the paper for both); a subset keeps CPU runs affordable and is
recorded in each run's overrides.

``--archive DIR`` keeps a light copy of every run (no checkpoints, no TensorBoard files;
the finished seeds' metrics and logits) in DIR, a folder that can be committed: a later
session, on a fresh machine, restores it into ``--out`` and runs only the missing seeds and
methods. ``--sync`` only refreshes the archive from ``--out`` (run it before a session ends).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _study import (ROOT, existing_run, finished_seeds, light_copy, open_study, restore_archive,  # noqa: E402,F401
                    run_method, study_parser, sync_archive)

from recipe_engine.compare import compare_paths  # noqa: E402

METHODS = {  # method -> (recipe, paper test accuracy with BERT-base, paper final CID)
    "finetune": ("recipes/textlen/finetune.yaml", 76.00, 0.093),
    "adversarial": ("recipes/textlen/adversarial.yaml", 78.44, None),
    "influence_tuning": ("recipes/textlen/influence_tuning.yaml", 80.48, 0.035),
    "embedding_tuning": ("recipes/textlen/embedding_tuning.yaml", 82.20, None),
    "no_spurious": ("recipes/textlen/no_spurious.yaml", 84.96, 0.019),
}


def main() -> int:
    ap = study_parser(__doc__, seeds="2021,2022,2023", methods=list(METHODS), out="outputs/textlen-table2")
    ap.add_argument("--it-parameters", default=None, help="influence_tuning parameter set, e.g. '{last_n_layers: 2}'")
    ap.add_argument("--cid-parameters", default=None, help="parameter set of the cid metric, e.g. '{last_n_layers: 2}'")
    args = ap.parse_args()
    study, archive, done = open_study(ap, args)
    if done:
        return 0
    seeds = [int(s) for s in args.seeds.split(",")]
    runs: dict[str, Path] = {}
    for method in args.methods.split(","):
        recipe_path, _, _ = METHODS[method]
        overrides = [f"seeds={json.dumps(seeds)}", "runtime.progress=false", *args.override]
        if method == "influence_tuning" and args.it_parameters:
            overrides.append(f"schedule.phases.train.phases.influence.objectives.influence_tuning.params.parameters={args.it_parameters}")
        if args.cid_parameters:
            overrides.append(f"evaluation.metrics.cid.params.parameters={args.cid_parameters}")
        code, run = run_method(method, recipe_path, overrides, study, archive, args.report_only)
        if code != 0:
            return code
        if run is not None:
            runs[method] = run
    if "finetune" not in runs:
        print("no finetune run to compare against", file=sys.stderr)
        return 1
    order = [m for m in METHODS if m in runs]
    print(compare_paths([str(runs[m]) for m in order], baseline=str(runs["finetune"]),
                        metrics="test/accuracy,test/conflicting,train/cid", fmt_name="text"))
    print("\npaper (BERT-base, 5 seeds): " + ", ".join(
        f"{m} {METHODS[m][1]:.2f}" + (f" (CID {METHODS[m][2]})" if METHODS[m][2] is not None else "") for m in order))
    return 0


if __name__ == "__main__":
    sys.exit(main())
