"""HILDIF on MNLI, scored on HANS per heuristic (Zylberajch et al. 2021, Figure 1c), with recipes:
the MNLI baseline (``mnli_finetune``: the "before") against one HILDIF round without a human
(``hildif_da``: every example scores 5) and with pre-filled scores (``hildif_hs`` and
``hildif_h``, random or handpicked anchors).

There is no person in a scripted study: the pre-filled scores come from a stated stand-in
rater, the word overlap of anchor and example (``simulated_score``: 1 + 4 x the Jaccard index
of their lower-cased word sets, rounded), written to a file and given to the run through
``recipe-engine feedback RUN --file``, exactly as a person's file would be.  A run with
feedback stops after EXPLAIN (exit 3); this script scores, then resumes it.

    OMP_WAIT_POLICY=PASSIVE python bench/hildif_mnli.py [--seeds 2021,2022,2023] \\
        [--methods finetune,da,hs,h] [--out outputs/hildif-mnli] [--archive docs/results/hildif-mnli] \\
        [--report-only] [--sync] [--override K=V] [--hildif-override K=V]
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _study import open_study, run_method, study_parser  # noqa: E402

from recipe_engine.compare import compare_paths  # noqa: E402
from recipe_engine.feedback.session import give_feedback, rounds  # noqa: E402

METHODS = {"finetune": "recipes/nli/mnli_finetune.yaml", "da": "recipes/nli/hildif_da.yaml",
           "hs": "recipes/nli/hildif_hs.yaml", "h": "recipes/nli/hildif_h.yaml"}
FEEDBACK = "schedule.phases.debug.phases.hildif.objectives.hildif.params.feedback"
METRICS = ("dev_matched/accuracy,hans/accuracy,hans/lexical_overlap/entailment,hans/lexical_overlap/non-entailment,"
           "hans/subsequence/entailment,hans/subsequence/non-entailment,hans/constituent/entailment,"
           "hans/constituent/non-entailment")
_WORD = re.compile(r"[a-z0-9']+")


def words(example: dict) -> set[str]:
    return set(_WORD.findall(f"{example['text']} {example.get('text_pair') or ''}".lower()))


def simulated_score(anchor: dict, candidate: dict) -> int:
    """The stand-in rater: 1 + 4 x Jaccard(anchor words, example words), rounded (1..5)."""
    a, c = words(anchor), words(candidate)
    return 1 + round(4 * len(a & c) / max(len(a | c), 1))


def prefill(run: Path, out: Path) -> Path:
    """Score every round of ``run`` with the stand-in rater into one JSONL file."""
    lines = []
    for folder in rounds(run):
        seed, rnd = int(folder.parents[1].name.split("-")[1]), int(folder.name.split("-")[1])
        for a in json.loads((folder / "explanations.json").read_text())["anchors"]:
            lines += [json.dumps({"seed": seed, "round": rnd, "anchor": a["id"], "candidate": c["id"],
                                  "score": simulated_score(a, c)}) for c in a["candidates"]]
    out.write_text("".join(line + "\n" for line in lines))
    return out


def main() -> int:
    ap = study_parser(__doc__, seeds="2021,2022,2023", methods=list(METHODS), out="outputs/hildif-mnli")
    ap.add_argument("--hildif-override", action="append", default=[],
                    help="an override for the HILDIF runs only (their round's params)")
    args = ap.parse_args()
    study, archive, done = open_study(ap, args)
    if done:
        return 0
    seeds = [int(s) for s in args.seeds.split(",")]
    runs: dict[str, Path] = {}
    for method in args.methods.split(","):
        overrides = [f"seeds={json.dumps(seeds)}", "runtime.progress=false", *args.override]
        if method != "finetune":
            overrides += args.hildif_override
        if method in ("hs", "h"):
            overrides.append(f"{FEEDBACK}=later")
        for _ in range(len(seeds) + 1):  # each seed may stop once for its scores
            code, run = run_method(method, METHODS[method], overrides, study, archive, args.report_only)
            if code != 3 or run is None:
                break
            give_feedback(run, file=prefill(run, run / "simulated_scores.jsonl"))
        if code not in (0, 3):
            return code
        if run is not None:
            runs[method] = run
    if "finetune" not in runs:
        print("no finetune run to compare against", file=sys.stderr)
        return 1
    print(compare_paths([str(runs[m]) for m in METHODS if m in runs], baseline=str(runs["finetune"]),
                        metrics=METRICS, fmt_name="text"))
    print("\npaper (BERT-base, MNLI-2, 3 seeds, HANS entailment / non-entailment %): baseline LO 99.56/0.98, "
          "SUB 100.00/1.30, CON 99.02/5.74; 10 influential points: not-HS DA not-H LO 99.10/1.86, SUB 99.81/2.84, "
          "CON 97.67/9.66; HS DA not-H LO 98.89/3.56, SUB 99.66/2.74, CON 97.12/12.10; HS DA H LO 93.99/18.16, "
          "SUB 98.90/12.10, CON 92.99/36.10")
    return 0


if __name__ == "__main__":
    sys.exit(main())
