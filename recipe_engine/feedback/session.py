"""``recipe-engine feedback RUN``: score the rounds of a run that wait for feedback, in the
browser (default), the terminal, or from a file, then say how the run continues.

By default each seed's latest round without all its scores is taken, seed after seed (a run
stops at the first round that waits, so earlier rounds are complete); ``--seed`` and
``--round`` pick one."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TextIO

from recipe_engine.errors import UserError
from recipe_engine.feedback.files import load_prefilled
from recipe_engine.feedback.store import FeedbackStore
from recipe_engine.feedback.terminal import prompt_scores
from recipe_engine.feedback.web import score_until_complete
from recipe_engine.runs import is_complete

#: the exit status while scores are missing (the same as an interrupted run)
EXIT_PENDING = 3


def rounds(run_dir: Path, seed: int | None = None, round_index: int | None = None) -> list[Path]:
    """Round folders of ``run_dir`` that hold explanations, by seed then round."""
    found = []
    for path in run_dir.glob("seed-*/hildif/round-*/explanations.json"):
        try:
            s, r = int(path.parents[2].name.split("-", 1)[1]), int(path.parent.name.split("-", 1)[1])
        except ValueError:  # not a folder the engine wrote (seed-x, round-old): not a round
            continue
        if (seed is None or s == seed) and (round_index is None or r == round_index):
            found.append((s, r, path.parent))
    return [p for _, _, p in sorted(found)]


def _load(folder: Path) -> tuple[dict, FeedbackStore]:
    path = folder / "explanations.json"
    try:
        explanations = json.loads(path.read_text(encoding="utf-8"))
        return explanations, FeedbackStore(folder / "feedback.jsonl", explanations)
    except (ValueError, KeyError, TypeError) as exc:
        raise UserError(f"{path}: not a round's explanations ({exc}); the run writes this file, "
                        "delete the round folder and --resume to explain the round again") from None


def _name(folder: Path) -> str:
    return f"{folder.parents[1].name}/{folder.name}"


def waiting_rounds(run_dir: Path, seed: int | None = None, round_index: int | None = None,
                   out: TextIO | None = None) -> list[Path]:
    """The rounds to score: each seed's latest incomplete round (or the one ``--round`` names)."""
    out = out or sys.stderr
    if not (run_dir / "run.json").is_file():
        raise UserError(f"{run_dir}: not a run folder (no run.json); give the folder a run printed when it started")
    folders = rounds(run_dir, seed, round_index)
    if not folders:
        raise UserError(f"{run_dir}: no HILDIF round has explanations yet"
                        + (f" for seed {seed}" if seed is not None else "") + (f", round {round_index}" if round_index is not None else "")
                        + "; run the recipe until it stops for feedback")
    latest: dict[str, Path] = {}
    for folder in folders:  # sorted by round: the last incomplete one per seed stays
        _, store = _load(folder)
        if store.complete():
            print(f"{_name(folder)}: complete ({len(store.order)} scores)", file=out)
        else:
            latest[folder.parents[1].name] = folder
    return sorted(latest.values(), key=folders.index)


def _continue_hint(run_dir: Path) -> str:
    if is_complete(run_dir):
        return f"{run_dir} is complete; nothing to continue"
    recipe = json.loads((run_dir / "run.json").read_text(encoding="utf-8")).get("recipe", "RECIPE")
    return f"recipe-engine run {recipe} --resume {run_dir}"


def give_feedback(run_dir: Path, *, seed: int | None = None, round_index: int | None = None, terminal: bool = False,
                  file: Path | None = None, port: int = 0, out: TextIO | None = None) -> int:
    """Score the waiting rounds one after another; 0 when none waits any more, else
    ``EXIT_PENDING`` (Ctrl-C, ``q`` at the prompt, or a file without every score)."""
    out = out or sys.stderr
    run_dir = Path(run_dir)
    folders = waiting_rounds(run_dir, seed, round_index, out)
    if not folders:
        print(f"{run_dir}: no round waits for feedback (every round with explanations has all its scores); "
              f"continue the run with: {_continue_hint(run_dir)}", file=out)
        return 0
    left: dict[str, int] = {}
    for folder in folders:
        explanations, store = _load(folder)
        name = _name(folder)
        stopped = False
        if file is not None:
            store.fill(load_prefilled(file, explanations))
        elif terminal:
            print(f"{name}: {len(store.pending())} example(s) to score (q stops; scores are kept)", file=out, flush=True)
            try:
                prompt_scores(store, explanations)
            except KeyboardInterrupt:
                stopped = True
        else:
            left_now = len(store.pending())
            try:
                score_until_complete(store, explanations, lambda url: print(
                    f"{name}: {left_now} example(s) to score at {url} (Ctrl-C stops; scores are kept)",
                    file=out, flush=True), port=port)
            except KeyboardInterrupt:
                stopped = True
        remaining = len(store.pending())
        print(f"{name}: " + ("complete" if not remaining else f"{remaining} example(s) still to score"), file=out)
        if remaining:
            left[name] = remaining
        if stopped or (terminal and remaining):  # the person stopped: ask nothing more now
            break
    for later in folders[folders.index(folder) + 1:]:  # left unasked after a stop
        left[_name(later)] = len(_load(later)[1].pending())
    if left:
        print("still to score: " + ", ".join(f"{n} ({k})" for n, k in left.items())
              + f"; continue with `recipe-engine feedback {run_dir}`"
              + ("" if file is None else " or a file with those scores")
              + f", then: {_continue_hint(run_dir)}", file=out)
        return EXIT_PENDING
    print(f"all scores given; continue the run with: {_continue_hint(run_dir)}", file=out)
    return 0
