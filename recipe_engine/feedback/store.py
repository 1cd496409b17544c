"""The scores of one HILDIF round: ``seed-<n>/hildif/round-<r>/feedback.jsonl``.

One line per score, ``{"anchor", "candidate", "score", "time"}``, appended with a single
``O_APPEND`` write, so an interrupted session loses at most the score being written (a torn
last line is dropped on open); the latest line of an (anchor, candidate) pair wins, so a
score can be corrected by scoring again.  Complete when every pair of the round's
explanations has a score.
"""
from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from recipe_engine.errors import UserError
from recipe_engine.outputs import append_jsonl, drop_torn_tail

SCORES = (1, 2, 3, 4, 5)
#: what each score means (the paper's 5-point similarity prompt)
MEANING = {1: "not similar at all", 2: "slightly similar", 3: "somewhat similar", 4: "similar", 5: "very similar"}


def pairs(explanations: dict[str, Any]) -> list[tuple[str, str]]:
    """Every (anchor id, candidate id) of the explanations, in display order."""
    return [(a["id"], c["id"]) for a in explanations["anchors"] for c in a["candidates"]]


class FeedbackStore:
    def __init__(self, path: Path, explanations: dict[str, Any]) -> None:
        self.path, self.explanations = Path(path), explanations
        self.order = pairs(explanations)
        self.known = set(self.order)
        self.anchors = {a for a, _ in self.order}
        drop_torn_tail(self.path)
        self._scores = self._read()

    def _read(self) -> dict[tuple[str, str], int]:
        scores: dict[tuple[str, str], int] = {}
        if not self.path.is_file():
            return scores
        for n, line in enumerate(self.path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                key, score = (str(row["anchor"]), str(row["candidate"])), int(row["score"])
            except (ValueError, KeyError, TypeError) as exc:
                raise UserError(f"{self.path}:{n}: not a feedback line ({exc}); expected "
                                '{"anchor": ..., "candidate": ..., "score": 1-5}; fix or delete the line') from None
            if key in self.known and score in SCORES:
                scores[key] = score
        return scores

    def check(self, anchor: str, candidate: str, score: Any) -> int:
        """The score as an int, or a UserError saying what is wrong with it."""
        if anchor not in self.anchors:
            raise UserError(f"unknown anchor id {anchor!r} in this round")
        if (anchor, candidate) not in self.known:
            raise UserError(f"candidate {candidate!r} is not an influential example of anchor {anchor!r}")
        if isinstance(score, bool) or not isinstance(score, (int, str)) or str(score).strip() not in {str(s) for s in SCORES}:
            raise UserError(f"score {score!r} is out of range: give a whole number from 1 (not similar at all) to 5 (very similar)")
        return int(score)

    def record(self, anchor: str, candidate: str, score: Any) -> None:
        value = self.check(anchor, candidate, score)
        append_jsonl(self.path, {"anchor": anchor, "candidate": candidate, "score": value,
                                 "time": datetime.now(timezone.utc).isoformat(timespec="seconds")})
        self._scores[(anchor, candidate)] = value

    def scores(self) -> dict[tuple[str, str], int]:
        return dict(self._scores)

    def pending(self) -> list[tuple[str, str]]:
        return [p for p in self.order if p not in self._scores]

    def complete(self) -> bool:
        return not self.pending()
