"""``recipe-engine feedback RUN``: score the rounds of a run that wait for feedback, in the
browser (default), the terminal, or from a file, then say how the run continues."""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from recipe_engine.errors import UserError
from recipe_engine.feedback.files import load_prefilled
from recipe_engine.feedback.store import FeedbackStore
from recipe_engine.feedback.terminal import prompt_scores
from recipe_engine.feedback.web import serve


def rounds(run_dir: Path, seed: int | None = None, round_index: int | None = None) -> list[Path]:
    """Round folders of ``run_dir`` that hold explanations, by seed then round."""
    found = []
    for path in run_dir.glob("seed-*/hildif/round-*/explanations.json"):
        s, r = int(path.parents[2].name.split("-", 1)[1]), int(path.parent.name.split("-", 1)[1])
        if (seed is None or s == seed) and (round_index is None or r == round_index):
            found.append((s, r, path.parent))
    return [p for _, _, p in sorted(found)]


def give_feedback(run_dir: Path, *, seed: int | None = None, round_index: int | None = None, terminal: bool = False,
                  file: Path | None = None, port: int = 0, out=None) -> int:
    """Score every incomplete round (one after another); 0 when all are complete."""
    out = out or sys.stderr
    if not (run_dir / "run.json").is_file():
        raise UserError(f"{run_dir}: not a run folder (no run.json); give the folder a run printed when it started")
    folders = rounds(run_dir, seed, round_index)
    if not folders:
        raise UserError(f"{run_dir}: no HILDIF round has explanations yet"
                        + (f" for seed {seed}" if seed is not None else "") + (f", round {round_index}" if round_index is not None else "")
                        + "; run the recipe until it stops for feedback")
    left = 0
    for folder in folders:
        explanations = json.loads((folder / "explanations.json").read_text(encoding="utf-8"))
        store = FeedbackStore(folder / "feedback.jsonl", explanations)
        name = f"{folder.parents[1].name}/{folder.name}"
        if store.complete():
            print(f"{name}: complete ({len(store.order)} scores)", file=out)
            continue
        if file is not None:
            pending = set(store.pending())
            for pair, score in load_prefilled(file, explanations).items():
                if pair in pending:
                    store.record(*pair, score)
        elif terminal:
            prompt_scores(store, explanations)
        else:
            server, url = serve(store, explanations, port=port)
            print(f"{name}: {len(store.pending())} example(s) to score at {url} (Ctrl-C stops; scores are kept)",
                  file=out, flush=True)
            try:
                while not store.complete():
                    time.sleep(0.2)
            except KeyboardInterrupt:
                pass
            finally:
                server.shutdown()
                server.server_close()
        remaining = len(store.pending())
        left += remaining
        print(f"{name}: " + ("complete" if not remaining else f"{remaining} example(s) still to score"), file=out)
        if remaining:
            break
    recipe = json.loads((run_dir / "run.json").read_text(encoding="utf-8")).get("recipe", "RECIPE")
    print(("all scores given; continue the run with: " if not left else "then continue the run with: ")
          + f"recipe-engine run {recipe} --resume {run_dir}", file=out)
    return 0 if not left else 3
