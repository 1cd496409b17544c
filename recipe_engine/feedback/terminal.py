"""Score in the terminal: each anchor with its influential examples, one prompt per example;
``s`` skips, ``q`` stops (what was scored is kept, the next session starts at the first
unscored example)."""
from __future__ import annotations

import sys
from typing import Any, Callable, TextIO

from recipe_engine.errors import UserError
from recipe_engine.feedback.store import MEANING, FeedbackStore


def _pair_text(ex: dict[str, Any]) -> str:
    return f"P: {ex['text']}\n    H: {ex['text_pair']}" if ex.get("text_pair") else ex["text"]


def prompt_scores(store: FeedbackStore, explanations: dict[str, Any], input: Callable[[str], str] = input,
                  output: TextIO = sys.stdout) -> None:
    pending = set(store.pending())
    total = len(store.order)
    scale = ", ".join(f"{k} {v}" for k, v in MEANING.items())
    for anchor in explanations["anchors"]:
        todo = [c for c in anchor["candidates"] if (anchor["id"], c["id"]) in pending]
        if not todo:
            continue
        print(f"\nANCHOR {anchor['id']} (gold {anchor['label']}, predicted {anchor['predicted']})\n    "
              f"{_pair_text(anchor)}", file=output)
        for c in todo:
            print(f"\n  [{total - len(store.pending()) + 1}/{total}] training example {c['id']} (label {c['label']}, "
                  f"influence {c['influence']:.3g})\n    {_pair_text(c)}", file=output)
            while True:
                try:
                    answer = input(f"  similar to the anchor? ({scale}; s skip, q quit) > ").strip().lower()
                except EOFError:
                    answer = "q"
                if answer == "q":
                    print(f"stopped: {len(store.pending())} example(s) left; they are asked first next time", file=output)
                    return
                if answer == "s":
                    break
                try:
                    store.record(anchor["id"], c["id"], answer)
                    break
                except UserError as exc:
                    print(f"  {exc}", file=output)
    left = len(store.pending())
    print("all examples scored" if not left else f"{left} example(s) skipped; run again to score them", file=output)
