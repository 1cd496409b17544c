"""The run folder: its layout, and every read and write of it (a study folder of runs is
``recipe_engine.studies``).

Layout (docs/architecture.md, section 3)::

    outputs/<recipe-name>/<YYYYmmdd-HHMMSS>-<fingerprint8>/
      recipe.yaml resolved.yaml run.json
      seed-<n>/ metrics.jsonl tb/ checkpoints/ eval/metrics.json eval/attributions.json
      summary.json summary.md .complete

``seed-<n>/metrics.jsonl`` and ``seed-<n>/eval/metrics.json`` are written while training
(``recipe_engine.train``); everything else is written and read here (``eval/attributions.json``
is computed by ``recipe_engine.attribution_dump``).
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Mapping

import yaml

from recipe_engine.errors import UserError
from recipe_engine.outputs import atomic_write_json, atomic_write_text
from recipe_engine.table import decimals, fmt, mean_sd, order_keys

RUN_JSON = "run.json"
RECIPE_FILE = "recipe.yaml"
RESOLVED_FILE = "resolved.yaml"
SUMMARY_JSON = "summary.json"
SUMMARY_MD = "summary.md"
COMPLETE_MARKER = ".complete"
ATTRIBUTIONS_FILE = "attributions.json"
DEFAULT_SELECT = "dev/accuracy"


# ---------------------------------------------------------------- naming new folders
def claim_dir(parent: Path, base: str, what: str) -> Path:
    """Create and return ``parent/base`` (``base-2``, ``base-3``... if taken).  ``mkdir(exist_ok=False)``
    is atomic, so two processes never get the same folder and none is ever reused."""
    parent.mkdir(parents=True, exist_ok=True)
    for n in range(1, 10_000):
        candidate = parent / (base if n == 1 else f"{base}-{n}")
        try:
            candidate.mkdir(exist_ok=False)
        except FileExistsError:
            continue
        return candidate
    raise RuntimeError(f"could not create {what} under {parent}")


def new_run_dir(out_root: Path, recipe_name: str, fingerprint: str, now: datetime | None = None) -> Path:
    """Create ``<out_root>/<recipe_name>/<YYYYmmdd-HHMMSS>-<fingerprint[:8]>/`` and return it.

    A folder that exists already is never reused: ``-2``, ``-3``... are appended instead.
    """
    if not recipe_name or recipe_name in (".", "..") or any(sep in recipe_name for sep in ("/", "\\", os.sep)):
        raise UserError(
            f"recipe name {recipe_name!r} cannot be a folder name under {out_root}; "
            "set name: to letters, digits, '-', '_' or '.'"
        )
    if not fingerprint:
        raise ValueError("new_run_dir needs a non-empty fingerprint")
    base = f"{(now or datetime.now()).strftime('%Y%m%d-%H%M%S')}-{fingerprint[:8]}"
    return claim_dir(Path(out_root) / recipe_name, base, f"a new run folder for {base}")


# ---------------------------------------------------------------- writing a run
def write_run_start(run_dir: Path, recipe_text: str, resolved: Mapping[str, Any], info: Mapping[str, Any]) -> None:
    """What a new run folder holds before training: the recipe as written, as resolved, and ``run.json``."""
    atomic_write_text(run_dir / RECIPE_FILE, recipe_text)
    atomic_write_text(run_dir / RESOLVED_FILE, yaml.safe_dump(dict(resolved), sort_keys=False, allow_unicode=True))
    atomic_write_json(run_dir / RUN_JSON, dict(info))


def summary_markdown(aggregate: Mapping[str, Mapping[str, Any]], meta: Mapping[str, Any]) -> str:
    """``summary.md``: a title, the scalar ``meta`` entries, and a table
    metric | mean ± sd | n | per-seed values."""
    title = meta.get("recipe") or meta.get("name") or "run"
    lines = [f"# {title}", ""]
    for key, value in meta.items():
        if isinstance(value, (str, int, float, bool)) or value is None:
            lines.append(f"- {key}: {value}")
        elif isinstance(value, (list, tuple)) and all(isinstance(v, (str, int, float)) for v in value):
            lines.append(f"- {key}: {', '.join(map(str, value))}")
    if len(lines) > 2:
        lines.append("")
    lines += ["| metric | mean ± sd | n | per-seed values |", "|---|---|---|---|"]
    for key, stats in aggregate.items():
        places = decimals(key, stats["mean"])
        seeds = ", ".join(f"{seed}: {fmt(v, places)}" for seed, v in stats["values"].items())
        lines.append(f"| {key} | {mean_sd(key, stats)} | {stats['n']} | {seeds} |")
    return "\n".join(lines) + "\n"


def write_summary(
    run_dir: str | Path,
    per_seed: Mapping[int, Mapping[str, float]],
    aggregate: Mapping[str, Mapping[str, Any]],
    meta: Mapping[str, Any],
) -> None:
    """Write ``summary.json`` (meta, seeds, per-seed metrics, aggregate) and ``summary.md``
    atomically into ``run_dir``."""
    run_dir = Path(run_dir)
    atomic_write_json(
        run_dir / SUMMARY_JSON,
        {
            "meta": dict(meta),
            "seeds": sorted(per_seed),
            "per_seed": {seed: dict(per_seed[seed]) for seed in sorted(per_seed)},
            "aggregate": dict(aggregate),
        },
    )
    atomic_write_text(run_dir / SUMMARY_MD, summary_markdown(aggregate, meta))


def remove_temp_files(run_dir: str | os.PathLike) -> list[Path]:
    """Delete what a killed writer left behind: temp files that were never renamed into place
    (``*.tmp``); the files they were meant to replace are intact."""
    stale = [p for p in Path(run_dir).rglob("*.tmp") if p.is_file()]
    for p in stale:
        p.unlink()
    return stale


def mark_complete(run_dir: str | os.PathLike) -> None:
    """Write ``.complete`` (its content: the finishing time) once a run has written everything."""
    atomic_write_text(Path(run_dir) / COMPLETE_MARKER, datetime.now().isoformat(timespec="seconds") + "\n")


def is_complete(run_dir: str | os.PathLike) -> bool:
    return (Path(run_dir) / COMPLETE_MARKER).is_file()


# ---------------------------------------------------------------- reading a run
def read_json(path: Path) -> Any:
    """A JSON file of a run or study folder; a damaged one is a :class:`UserError`."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UserError(f"{path}: cannot be read as JSON ({exc}); the run folder is damaged, re-run it") from None


def has_run_json(run_dir: Path) -> bool:
    return (run_dir / RUN_JSON).is_file()


def read_run_json(run_dir: Path) -> dict[str, Any]:
    return read_json(run_dir / RUN_JSON)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Records of a metrics.jsonl; a line cut short by a crash is skipped."""
    out: list[dict[str, Any]] = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return out
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            out.append(record)
    return out


def seed_dir(run_dir: Path, seed: int) -> Path:
    return run_dir / f"seed-{seed}"


def seed_dirs(run_dir: Path) -> dict[int, Path]:
    """``{seed: seed-<n> folder}`` of a run, seeds ascending."""
    out = {}
    for d in run_dir.glob("seed-*"):
        try:
            out[int(d.name.removeprefix("seed-"))] = d
        except ValueError:
            continue
    return dict(sorted(out.items()))


def seed_records(run_dir: Path) -> dict[int, list[dict[str, Any]]]:
    """``{seed: records of its metrics.jsonl}``."""
    return {s: read_jsonl(d / "metrics.jsonl") for s, d in seed_dirs(run_dir).items()}


def finished_seed_metrics(seed_path: Path) -> dict[str, float] | None:
    """The metrics of a seed that finished (its ``eval/metrics.json``), else None."""
    done = seed_path / "eval" / "metrics.json"
    return json.loads(done.read_text())["metrics"] if done.is_file() else None


def load_test_logits(seed_path: Path) -> tuple[Any, Any] | None:
    """``(logits, labels)`` from ``eval/test_logits.pt`` (tensors only, loaded with weights_only)."""
    path = seed_path / "eval" / "test_logits.pt"
    if not path.is_file():
        return None
    import torch  # heavy: only reports with a calibration section need it; reading metrics must not

    data = torch.load(path, map_location="cpu", weights_only=True)
    return data["logits"], data["labels"]


def attributions_path(seed_path: Path) -> Path:
    """``seed-<n>/eval/attributions.json`` (written by ``recipe_engine.attribution_dump``)."""
    return seed_path / "eval" / ATTRIBUTIONS_FILE


def write_attributions(seed_path: Path, record: Mapping[str, Any]) -> Path:
    """Write ``eval/attributions.json`` atomically; return its path."""
    path = attributions_path(seed_path)
    atomic_write_json(path, dict(record))
    return path


@dataclass
class SavedAttributions:
    """``eval/attributions.json`` read back: examples per split (an older file, a bare list of
    examples, reads as one split named ``""``), the label names and the attribution used."""

    splits: dict[str, list[dict[str, Any]]]
    label_names: list[str] = field(default_factory=list)
    attribution: dict[str, Any] = field(default_factory=dict)
    split_label_names: dict[str, list[str]] = field(default_factory=dict)  # splits scored on their own classes


def load_attributions(seed_path: Path) -> SavedAttributions | None:
    """The token attributions of ``eval/attributions.json`` (examples with a ``tokens`` list),
    or None when the file is absent, unreadable or holds no example."""
    path = attributions_path(seed_path)
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        return None

    def examples(xs: Any) -> list[dict[str, Any]]:
        return [x for x in xs if isinstance(x, dict) and isinstance(x.get("tokens"), list)] if isinstance(xs, list) else []

    if isinstance(data, list):
        saved = SavedAttributions({"": examples(data)})
    elif isinstance(data, dict) and isinstance(data.get("splits"), dict):
        names = data.get("label_names")
        saved = SavedAttributions({str(k): examples(v) for k, v in data["splits"].items()},
                                  [str(n) for n in names] if isinstance(names, list) else [],
                                  data["attribution"] if isinstance(data.get("attribution"), dict) else {},
                                  {str(k): [str(n) for n in v] for k, v in (data.get("split_label_names") or {}).items()
                                   if isinstance(v, list)})
    else:
        return None
    saved.splits = {k: v for k, v in saved.splits.items() if v}
    return saved if saved.splits else None


@dataclass
class RunResults:
    """What a finished (or partly finished) run folder holds."""

    path: Path
    name: str
    per_seed: dict[int, dict[str, float]]
    fingerprint: str | None = None
    run_json: dict[str, Any] = field(default_factory=dict)
    recipe: dict[str, Any] = field(default_factory=dict)  # resolved.yaml
    label: str = ""
    note: str = ""

    @property
    def seeds(self) -> list[int]:
        return sorted(self.per_seed)

    @property
    def keys(self) -> list[str]:
        return order_keys({k for m in self.per_seed.values() for k in m})

    @property
    def select_metric(self) -> str:
        return (self.recipe.get("evaluation") or {}).get("select") or DEFAULT_SELECT

    def values(self, key: str) -> dict[int, float]:
        """``{seed: value}`` of ``key`` over the seeds that report a finite value."""
        out = {}
        for seed in self.seeds:
            v = self.per_seed[seed].get(key)
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
                out[seed] = float(v)
        return out


def is_run(path: Path) -> bool:
    return path.is_dir() and ((path / RUN_JSON).is_file() or (path / RESOLVED_FILE).is_file())


def load_run(path: str | Path) -> RunResults:
    """Per-seed metrics from ``summary.json``, else from ``seed-*/eval/metrics.json``."""
    path = Path(path)
    if not is_run(path):
        raise UserError(f"{path}: not a run folder (no run.json or resolved.yaml); give a folder printed by `recipe-engine run`")
    run_json = read_json(path / RUN_JSON) if (path / RUN_JSON).is_file() else {}
    recipe = {}
    if (path / RESOLVED_FILE).is_file():
        recipe = yaml.safe_load((path / RESOLVED_FILE).read_text(encoding="utf-8")) or {}
    per_seed: dict[int, dict[str, float]] = {}
    meta: dict[str, Any] = {}
    if (path / SUMMARY_JSON).is_file():
        summary = read_json(path / SUMMARY_JSON)
        meta = summary.get("meta") or {}
        per_seed = {int(s): dict(m) for s, m in (summary.get("per_seed") or {}).items()}
    else:
        for f in sorted(path.glob("seed-*/eval/metrics.json")):
            record = read_json(f)
            per_seed[int(record.get("seed", f.parent.parent.name.removeprefix("seed-")))] = dict(record.get("metrics") or {})
    name = meta.get("recipe") or recipe.get("name") or path.parent.name
    fp = meta.get("fingerprint") or run_json.get("fingerprint")
    return RunResults(path, str(name), per_seed, fp, run_json, recipe, label=str(name))
