"""The engine's feedback channel for HILDIF rounds (``registry.types.FeedbackSource``).

Per seed and round, ``seed-<n>/hildif/round-<r>/``:
- ``explanations.json``: the anchors and their influential training examples, written once
  (atomically) and reused on ``--resume``, so the expensive EXPLAIN step runs once;
- ``feedback.jsonl``: the scores, append-only (``recipe_engine.feedback.store``), whoever gives
  them: every example 5 (``no_human``), a pre-filled file, the web page or the terminal,
  during the run or later with ``recipe-engine feedback RUN``.
A round whose scores are incomplete stops the run (``FeedbackPending``) after the last
checkpoint; ``--resume`` continues at this round with the scores given so far.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any, Callable

from recipe_engine.feedback.files import load_prefilled, no_human
from recipe_engine.feedback.store import FeedbackStore
from recipe_engine.feedback.terminal import ctrl_c_interrupts, prompt_scores
from recipe_engine.feedback.web import score_until_complete
from recipe_engine.outputs import atomic_write_json


class FeedbackPending(Exception):
    """A round waits for scores; the run stops and ``--resume`` continues there."""


class RoundFeedback:
    def __init__(self, seed_dir: Path, seed: int, log: Callable[[str], Any] = print) -> None:
        self.seed_dir, self.seed, self.log = seed_dir, seed, log
        #: set by the training loop: has the user asked the run to stop (Ctrl-C, SIGTERM)?
        self.stopping: Callable[[], bool] = lambda: False

    def folder(self, round_name: str) -> Path:
        return self.seed_dir / "hildif" / round_name

    def collect(self, round_name: str, build: Callable[[], dict[str, Any]], mode: str,
                file: str | None = None) -> tuple[dict[str, Any], dict[tuple[str, str], int]]:
        folder = self.folder(round_name)
        path = folder / "explanations.json"
        if path.is_file():
            explanations = json.loads(path.read_text(encoding="utf-8"))
        else:
            started = time.perf_counter()
            explanations = {"round": int(round_name.rsplit("-", 1)[-1]), "seed": self.seed, **build()}
            explanations["seconds"] = round(time.perf_counter() - started, 3)
            atomic_write_json(path, explanations)
            self.log(f"seed {self.seed}: {round_name}: explained {len(explanations['anchors'])} anchors in "
                     f"{explanations['seconds']:.1f} s -> {path}" + (f" ({explanations['note']})" if "note" in explanations else ""))
        store = FeedbackStore(folder / "feedback.jsonl", explanations)
        if not store.complete():
            self.ask(store, explanations, mode, file)
        if not store.complete():
            left = len(store.pending())
            raise FeedbackPending(f"{round_name} waits for {left} score(s) in {folder / 'feedback.jsonl'}; give them with "
                                  f"`recipe-engine feedback {self.seed_dir.parent}` (add --terminal for a prompt)")
        return explanations, store.scores()

    def ask(self, store: FeedbackStore, explanations: dict[str, Any], mode: str, file: str | None) -> None:
        """Fill in the missing scores the way ``mode`` says (``later``: nobody now)."""
        if mode == "no_human":
            store.fill(no_human(explanations))
        elif mode == "file":
            store.fill(load_prefilled(Path(file or ""), explanations))
        elif mode == "web":
            score_until_complete(store, explanations, lambda url: print(
                f"seed {self.seed}: score the influential examples at {url} (Ctrl-C stops; --resume continues)",
                file=sys.stderr, flush=True), stopping=self.stopping)
        elif mode == "terminal" and not self.stopping():
            with ctrl_c_interrupts():  # Ctrl-C at the prompt stops it (scores kept), then the run stops to resume
                prompt_scores(store, explanations)
