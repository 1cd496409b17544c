"""The study folder of ``run RECIPE --grid key=a,b``: one run folder per combination.

Layout::

    <out>/<recipe-name>/<YYYYmmdd-HHMMSS>-study/
      study.json          # grid, base overrides, selection metric, children (combo, overrides, run folder, status)
      <recipe-name>/<stamp>-<fingerprint8>/   # one normal run folder per child (recipe_engine.runs)
      summary.md report.html

Reading a study also picks its best child by the recipe's ``evaluation.select`` metric.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Mapping, Sequence

from recipe_engine.outputs import atomic_write_json
from recipe_engine.runs import DEFAULT_SELECT, RUN_JSON, RunResults, claim_dir, is_run, load_run, read_json
from recipe_engine.stats import mean

STUDY_FILE = "study.json"
#: metrics where a smaller value is better (for picking a study's best child)
LOWER_IS_BETTER = ("ece", "nll", "brier", "gap", "cid", "loss")


def new_study_dir(out_root: Path, recipe_name: str, now: datetime | None = None) -> Path:
    """``<out_root>/<recipe_name>/<YYYYmmdd-HHMMSS>-study`` (``-2``, ``-3``... if taken); never reused."""
    stamp = (now or datetime.now()).strftime("%Y%m%d-%H%M%S")
    return claim_dir(out_root / recipe_name, f"{stamp}-study", "a study folder")


def is_study(path: Path) -> bool:
    return path.is_dir() and (path / STUDY_FILE).is_file()


def write_study_state(study_dir: Path, state: Mapping[str, Any]) -> None:
    atomic_write_json(study_dir / STUDY_FILE, state)


def study_run_dirs(study_dir: Path) -> list[Path]:
    """The child run folders of a study that exist so far."""
    return [p.parent for p in study_dir.glob(f"*/*/{RUN_JSON}")]


def short_keys(keys: Sequence[str]) -> dict[str, str]:
    """Each dotted key by its shortest unique tail: ``optimizer.params.lr`` -> ``lr``."""
    out: dict[str, str] = {}
    for key in keys:
        parts = key.split(".")
        for n in range(1, len(parts) + 1):
            tail = ".".join(parts[-n:])
            if sum(1 for k in keys if k == tail or k.endswith("." + tail)) == 1:
                out[key] = tail
                break
        else:
            out[key] = key
    return out


def combo_label(combo: dict[str, Any], keys: Sequence[str] | None = None) -> str:
    """``lr=3e-5,batch_size=16``: the combination, keys shortened among ``keys`` (default: its own)."""
    short = short_keys(list(keys if keys is not None else combo))
    return ",".join(f"{short.get(k, k)}={v}" for k, v in combo.items())


def lower_is_better(metric: str) -> bool:
    last = metric.rsplit("/", 1)[-1]
    return last in LOWER_IS_BETTER or last.endswith("_loss")


def select_best(children: Sequence[RunResults], metric: str) -> int | None:
    """Index of the child with the best mean of ``metric`` over seeds (None if no child reports it)."""
    scored = [(mean(list(c.values(metric).values())), i) for i, c in enumerate(children) if c.values(metric)]
    if not scored:
        return None
    pick = min if lower_is_better(metric) else max
    return pick(scored, key=lambda s: (s[0], -s[1]))[1]


@dataclass
class Study:
    path: Path
    info: dict[str, Any]
    children: list[RunResults]
    select: str
    best: int | None  # index into children

    @property
    def name(self) -> str:
        return str(self.info.get("name") or self.path.parent.name)


def load_study(path: str | Path) -> Study:
    """A study folder: ``study.json`` and the children that have results."""
    path = Path(path)
    info = read_json(path / STUDY_FILE)
    children: list[RunResults] = []
    for child in info.get("children", []):
        if not child.get("run_dir"):
            continue
        run_dir = path / child["run_dir"]
        if not is_run(run_dir):
            continue
        run = load_run(run_dir)
        if not run.per_seed:
            continue
        run.label = combo_label(child.get("combo") or {}, list(info.get("grid") or {})) or run.name
        children.append(run)
    select = info.get("select") or (children[0].select_metric if children else DEFAULT_SELECT)
    return Study(path, info, children, select, select_best(children, select))
