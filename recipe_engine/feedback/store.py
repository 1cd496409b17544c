"""The scores of one HILDIF round: ``seed-<n>/hildif/round-<r>/feedback.jsonl``.

One line per score, ``{"anchor", "candidate", "score", "time"}``, appended with a single
``O_APPEND`` write, so an interrupted session loses at most the score being written (a torn
last line is dropped on open); the latest line of an (anchor, candidate) pair wins, so a
score can be corrected by scoring again.  Complete when every pair of the round's
explanations has a score.
"""
from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from recipe_engine.errors import UserError
from recipe_engine.outputs import append_jsonl, drop_torn_tail

SCORES = (1, 2, 3, 4, 5)
#: what each score means: the paper's question "The test case and the presented sample are: ..."
#: (Zylberajch et al. 2021, sec. 2, User Feedback Collection)
MEANING = {1: "very different", 2: "different", 3: "can't decide", 4: "similar", 5: "very similar"}
#: what "similar" means there (the same section)
SIMILAR = "similar: both share the same type of heuristics or lexical artifacts"


def pairs(explanations: dict[str, Any]) -> list[tuple[str, str]]:
    """Every (anchor id, candidate id) of the explanations, in display order."""
    return [(a["id"], c["id"]) for a in explanations["anchors"] for c in a["candidates"]]


class FeedbackStore:
    """The scores of one round, read from and appended to ``path``.

    Lines appended by another session (the run's own page while ``recipe-engine feedback``
    runs in a second terminal) are picked up on the next ``scores``/``pending``/``complete``.
    """

    def __init__(self, path: Path, explanations: dict[str, Any]) -> None:
        self.path, self.explanations = Path(path), explanations
        self.order = pairs(explanations)
        self.known = set(self.order)
        self.anchors = {a for a, _ in self.order}
        drop_torn_tail(self.path)
        self._scores: dict[tuple[str, str], int] = {}
        self._offset = self._lines = 0
        self._refresh()

    def _refresh(self) -> None:
        """Read the whole lines appended since the last read; a last line without its newline
        (being written, or torn by a crash) is left for later."""
        try:
            with open(self.path, "rb") as f:
                if os.fstat(f.fileno()).st_size < self._offset:  # replaced by a shorter file: start over
                    self._scores, self._offset, self._lines = {}, 0, 0
                f.seek(self._offset)
                data = f.read()
        except FileNotFoundError:
            return
        end = data.rfind(b"\n") + 1
        for n, line in enumerate(data[:end].decode("utf-8", errors="replace").split("\n")[:-1], self._lines + 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                key, score = (str(row["anchor"]), str(row["candidate"])), row["score"]
            except (ValueError, KeyError, TypeError) as exc:
                raise UserError(f"{self.path}:{n}: not a feedback line ({exc}); expected "
                                '{"anchor": ..., "candidate": ..., "score": 1-5}; fix or delete the line') from None
            if key in self.known:  # other rounds' lines are skipped (one file may be shared)
                try:
                    self._scores[key] = self.check(*key, score)
                except UserError as exc:
                    raise UserError(f"{self.path}:{n}: {exc}; fix or delete the line") from None
        self._lines += data[:end].count(b"\n")
        self._offset += end

    def check(self, anchor: str, candidate: str, score: Any) -> int:
        """The score as an int, or a UserError saying what is wrong with it."""
        if anchor not in self.anchors:
            raise UserError(f"unknown anchor id {anchor!r} in this round")
        if (anchor, candidate) not in self.known:
            raise UserError(f"candidate {candidate!r} is not an influential example of anchor {anchor!r}")
        if isinstance(score, bool) or not isinstance(score, (int, str)) or str(score).strip() not in {str(s) for s in SCORES}:
            raise UserError(f"score {score!r} is out of range: give a whole number from 1 (very different) to 5 (very similar)")
        return int(score)

    def record(self, anchor: str, candidate: str, score: Any) -> None:
        """Append one score (written whole, flushed and fsynced); a UserError if the ids are not
        this round's or the score is not 1-5 (nothing is written then)."""
        value = self.check(anchor, candidate, score)
        self._refresh()
        if self.path.is_file() and self.path.stat().st_size > self._offset:
            drop_torn_tail(self.path)  # a line torn by a crash since we opened: never glue onto it
        append_jsonl(self.path, {"anchor": anchor, "candidate": candidate, "score": value,
                                 "time": datetime.now(timezone.utc).isoformat(timespec="seconds")}, fsync=True)
        self._refresh()

    def scores(self) -> dict[tuple[str, str], int]:
        """The latest score of every scored (anchor, candidate)."""
        self._refresh()
        return dict(self._scores)

    def pending(self) -> list[tuple[str, str]]:
        """The unscored pairs, in display order (anchor by anchor, most influential first)."""
        self._refresh()
        return [p for p in self.order if p not in self._scores]

    def complete(self) -> bool:
        return not self.pending()

    def fill(self, given: dict[tuple[str, str], int]) -> int:
        """Record the ``given`` scores of the pairs still unscored (a pre-filled file, ``no_human``);
        scores already given stay.  How many were recorded."""
        pending = set(self.pending())
        todo = [(pair, score) for pair, score in given.items() if pair in pending]
        for (anchor, candidate), score in todo:
            self.record(anchor, candidate, score)
        return len(todo)
