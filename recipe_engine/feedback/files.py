"""Scores without a person at the prompt: a pre-filled file, or ``no_human`` (every example 5,
the paper's not-HS configuration)."""
from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from recipe_engine.errors import UserError
from recipe_engine.feedback.store import SCORES, pairs


def no_human(explanations: dict[str, Any]) -> dict[tuple[str, str], int]:
    """Every (anchor, candidate) scores 5."""
    return {p: 5 for p in pairs(explanations)}


def load_prefilled(path: Path, explanations: dict[str, Any]) -> dict[tuple[str, str], int]:
    """Scores from a JSONL file (``{"anchor", "candidate", "score"}`` per line, the feedback
    file's own format) or a CSV with the header ``anchor,candidate,score``.  Lines for pairs
    that are not in this round are ignored (one file may hold several rounds); a malformed
    line or a score outside 1-5 is an error naming the file and line."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such feedback file; set the hildif objective's feedback_file to a JSONL or CSV "
                        "of anchor, candidate, score")
    known = set(pairs(explanations))
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".csv":
        reader = csv.DictReader(text.splitlines())
        if not reader.fieldnames or not {"anchor", "candidate", "score"} <= set(reader.fieldnames):
            raise UserError(f"{path}:1: the CSV header must name anchor, candidate and score")
        rows = [(n, r) for n, r in enumerate(reader, 2)]
    else:
        rows = []
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                rows.append((n, json.loads(line)))
            except json.JSONDecodeError as exc:
                raise UserError(f"{path}:{n}: not JSON ({exc.msg}); one object per line") from None
    scores: dict[tuple[str, str], int] = {}
    for n, row in rows:
        if not isinstance(row, dict) or not {"anchor", "candidate", "score"} <= set(row):
            raise UserError(f"{path}:{n}: a line needs anchor, candidate and score")
        key = (str(row["anchor"]), str(row["candidate"]))
        if str(row["score"]).strip() not in {str(s) for s in SCORES}:
            raise UserError(f"{path}:{n}: score {row['score']!r} is out of range; use a whole number from 1 to 5")
        if key in known:
            scores[key] = int(row["score"])
    return scores
