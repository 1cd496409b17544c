"""Score in the terminal: each anchor with its influential examples, one prompt per example;
``s`` skips, ``q`` stops (what was scored is kept, the next session starts at the first
unscored example)."""
from __future__ import annotations

import signal
import sys
import threading
from contextlib import contextmanager
from typing import Any, Callable, Iterator, TextIO

from recipe_engine.errors import UserError
from recipe_engine.feedback.store import MEANING, SIMILAR, FeedbackStore


def _pair_text(ex: dict[str, Any]) -> str:
    return f"P: {ex['text']}\n    H: {ex['text_pair']}" if ex.get("text_pair") else ex["text"]


@contextmanager
def ctrl_c_interrupts() -> Iterator[None]:
    """Ctrl-C raises ``KeyboardInterrupt`` inside the block even while the training loop's
    stop handler is installed (it only sets a flag, and a blocking ``input()`` would go on
    waiting); the handler is put back after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, before)


def prompt_scores(store: FeedbackStore, explanations: dict[str, Any], input: Callable[[str], str] = input,
                  output: TextIO = sys.stdout) -> None:
    pending = set(store.pending())
    total = len(store.order)
    scale = ", ".join(f"{k} {v}" for k, v in MEANING.items())
    print(f"The anchor and the training example are: {scale} ({SIMILAR}).", file=output)
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
                    answer = input(f"  the anchor and this example are ({scale}; s skip, q quit) > ").strip().lower()
                except (EOFError, KeyboardInterrupt):  # Ctrl-D or Ctrl-C: stop, keeping the scores given
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
