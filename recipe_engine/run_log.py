"""One logger per seed: every record goes to ``metrics.jsonl``, numeric fields to TensorBoard,
and training progress to the progress bar (with ETA)."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from recipe_engine.outputs import append_jsonl, drop_torn_tail

#: record fields that are positions or stamps, not scalars to plot
_NOT_SCALARS = ("step", "segment", "time")


class RunLog:
    def __init__(self, seed_dir: Path, *, seed: int, total_steps: int, done_steps: int,
                 tensorboard: bool, progress: bool):
        self.path = seed_dir / "metrics.jsonl"
        self.repaired = drop_torn_tail(self.path)  # a run killed mid-append: the torn line is dropped, not fatal
        self.writer = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter  # optional dependency, loaded only when used

            self.writer = SummaryWriter(str(seed_dir / "tb"))
        self.bar = None
        if progress:
            from tqdm.auto import tqdm  # optional dependency, loaded only when used

            self.bar = tqdm(total=total_steps, initial=done_steps, desc=f"seed {seed}", unit="step",
                            dynamic_ncols=True, leave=False)

    def _scalars(self, prefix: str, record: dict[str, Any], step: int) -> None:
        if self.writer is not None:
            for k, v in record.items():
                if isinstance(v, (int, float)) and k not in _NOT_SCALARS:
                    self.writer.add_scalar(f"{prefix}/{k}", v, step)

    def step_done(self) -> None:
        if self.bar is not None:
            self.bar.update(1)

    def fewer_steps(self, n: int) -> None:
        """A segment runs ``n`` steps fewer than planned (a HILDIF round with scores below 5):
        the bar's total, and so its ETA, shrink with it."""
        if self.bar is not None and n:
            self.bar.total = max(self.bar.total - n, self.bar.n)
            self.bar.refresh()

    def train(self, step: int, fields: dict[str, Any], postfix: dict[str, str]) -> None:
        """A training record at ``step`` (after ``step`` optimizer steps)."""
        if self.bar is not None:
            self.bar.set_postfix(postfix, refresh=False)
        record = {"event": "train", "step": step, **fields}
        append_jsonl(self.path, record)
        self._scalars("train", record, step)

    def eval(self, step: int, values: dict[str, float]) -> None:
        record = {"event": "eval", "step": step, "time": round(time.time(), 3), **values}
        append_jsonl(self.path, record)
        self._scalars("eval", record, step)

    def final(self, step: int, metrics: dict[str, float]) -> None:
        if self.writer is not None:
            for k, v in metrics.items():
                self.writer.add_scalar(f"final/{k}", v, step)

    def close_bar(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def close(self) -> None:
        self.close_bar()
        if self.writer is not None:
            self.writer.close()
            self.writer = None


class NullLog(RunLog):
    """The log of a rank other than 0 in a multi-process run: it writes nothing (no file, no
    TensorBoard, no progress bar); rank 0's ``RunLog`` records the run."""

    def __init__(self) -> None:
        self.path = None
        self.repaired = False
        self.writer = None
        self.bar = None

    def train(self, step: int, fields: dict[str, Any], postfix: dict[str, str]) -> None:
        pass

    def eval(self, step: int, values: dict[str, float]) -> None:
        pass
