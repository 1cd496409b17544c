"""Everything that differs between two sides (``diff``): recipe changes, the timelines when
the schedule or the number of steps may have changed, and for two runs their environments,
data and metrics."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from recipe_engine.diff.recipes import Change, recipe_changes
from recipe_engine.diff.run_results import data_rows, environment_rows, metric_rows
from recipe_engine.diff.sides import Side, load_side
from recipe_engine.diff.timeline import TimelineDiff, timeline_diff

EXIT_SAME, EXIT_DIFFERENT, EXIT_ERROR = 0, 1, 2


@dataclass
class DiffResult:
    a: Side
    b: Side
    changes: list[Change]
    timeline: TimelineDiff | None
    environment: list[list[str]] = field(default_factory=list)
    data: list[list[str]] = field(default_factory=list)
    metrics: list[dict[str, Any]] = field(default_factory=list)

    @property
    def same_method(self) -> bool:
        return self.a.resolved.fingerprint == self.b.resolved.fingerprint

    @property
    def exit_code(self) -> int:
        return EXIT_SAME if self.same_method else EXIT_DIFFERENT

    def group(self, name: str) -> list[Change]:
        return [c for c in self.changes if c.group == name]

    @property
    def runs(self) -> bool:
        return self.a.run is not None and self.b.run is not None


def diff(a: str | os.PathLike, b: str | os.PathLike) -> DiffResult:
    side_a, side_b = load_side(a), load_side(b)
    changes = recipe_changes(side_a, side_b)
    timeline = None
    schedule_changed = side_a.resolved.data["schedule"] != side_b.resolved.data["schedule"]
    data_a, data_b = side_a.resolved.data["data"], side_b.resolved.data["data"]
    length_inputs_changed = any(data_a[k] != data_b[k] for k in ("name", "params", "batch_size", "train_split"))
    if schedule_changed or length_inputs_changed:
        timeline = timeline_diff(side_a, side_b)
        if timeline.identical and not schedule_changed:
            timeline = None  # the data changed, but not the number of steps
    result = DiffResult(side_a, side_b, changes, timeline)
    if result.runs:
        result.environment = environment_rows(side_a.run, side_b.run)
        result.data = data_rows(side_a.run, side_b.run)
        result.metrics = metric_rows(side_a.run, side_b.run)
    return result
