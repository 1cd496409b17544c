"""``recipe-engine compare RUN...``: one table of runs (or a study's children), metric columns
mean ± sd over seeds, and a significance test of each run against a baseline.

A study folder (``run --grid``) given alone lists its children and marks the one chosen by
the recipe's ``evaluation.select`` metric (model selection on dev, as in the paper); given
with other runs it contributes that chosen child as one row.
"""
from __future__ import annotations

import difflib
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from recipe_engine.errors import UserError
from recipe_engine.runs import RunResults, is_run, load_run
from recipe_engine.stats import TESTS, TestResult, format_p, mean, run_test, sample_sd
from recipe_engine.studies import is_study, load_study, lower_is_better
from recipe_engine.table import decimals, fmt, json_text, order_keys, render_format, render_table


# ---------------------------------------------------------------- the rows
def expand(paths: Sequence[str | Path]) -> tuple[list[RunResults], list[str]]:
    """Rows for ``compare``: runs as they are; a study alone -> its children; a study among
    other folders -> its selected child.  Returns (rows, notes)."""
    if not paths:
        raise UserError("compare needs at least one run or study folder")
    rows: list[RunResults] = []
    notes: list[str] = []
    for p in map(Path, paths):
        if is_study(p):
            study = load_study(p)
            if not study.children:
                raise UserError(f"{p}: the study has no finished child runs yet; wait for `run --grid` to finish")
            direction = "lower" if lower_is_better(study.select) else "higher"
            if study.best is None:
                raise UserError(f"{p}: no child reports the selection metric {study.select!r}; "
                                f"set evaluation.select to one of: {', '.join(study.children[0].keys)}")
            best = study.children[study.best]
            if len(paths) == 1:
                for i, child in enumerate(study.children):
                    if i == study.best:
                        child.note = "selected"
                    rows.append(child)
                notes.append(f"{study.name}: child {best.label!r} selected by {study.select} ({direction} is better)")
            else:
                best.label = f"{study.name} [{best.label}]"
                best.note = f"best of {len(study.children)} by {study.select}"
                rows.append(best)
                notes.append(f"{best.label}: best of {len(study.children)} children by {study.select} ({direction} is better)")
        elif is_run(p):
            rows.append(load_run(p))
        elif p.is_dir():
            raise UserError(f"{p}: neither a run folder (run.json) nor a study folder (study.json)")
        else:
            raise UserError(f"{p}: no such folder; give run folders printed by `recipe-engine run`")
    empty = [r for r in rows if not r.per_seed]
    if empty:
        raise UserError(f"{empty[0].path}: the run has no results yet (no summary.json or seed-*/eval/metrics.json); "
                        "finish it with `recipe-engine run RECIPE --resume RUN`")
    seen: dict[str, int] = {}
    for r in rows:
        seen[r.label] = seen.get(r.label, 0) + 1
    for r in rows:
        if seen[r.label] > 1:
            r.label = f"{r.label} ({r.path.name})"
    return rows, notes


# ---------------------------------------------------------------- the table
@dataclass
class Cell:
    mean: float
    sd: float
    n: int
    test: TestResult | None = None  # None on the baseline row or when the metric is missing


@dataclass
class Comparison:
    rows: list[RunResults]
    metrics: list[str]
    baseline: int
    test: str
    cells: list[list[Cell | None]]  # [row][metric]
    notes: list[str] = field(default_factory=list)


def _metric_matches(spec: str, available: list[str]) -> list[str]:
    if spec in available:
        return [spec]
    return [k for k in available if k.split("/", 1)[-1] == spec]


def pick_metrics(rows: Sequence[RunResults], spec: str | Sequence[str] | None) -> list[str]:
    """``--metrics`` (full keys, or metric names that match in every split), or by default
    ``test/accuracy`` and any CID metric present."""
    available = order_keys({k for r in rows for k in r.keys})
    if spec:
        wanted = [s.strip() for s in (spec.split(",") if isinstance(spec, str) else spec) if s.strip()]
        out: list[str] = []
        for s in wanted:
            found = _metric_matches(s, available)
            if not found:
                hint = difflib.get_close_matches(s, available, n=1)
                raise UserError(f"--metrics: no run reports {s!r}" + (f" (did you mean {hint[0]!r}?)" if hint else "")
                                + f"; available: {', '.join(available)}")
            out += [k for k in found if k not in out]
        return out
    out = [k for k in ("test/accuracy",) if k in available]
    out += [k for k in available if k.rsplit("/", 1)[-1] == "cid" and k not in out]
    return out or available[:1]


def compare_runs(rows: Sequence[RunResults], metrics: Sequence[str], baseline: int = 0, test: str = "welch",
                 resamples: int = 10_000, seed: int = 0) -> Comparison:
    """mean ± sd of every metric per row, and ``test`` of each row against ``rows[baseline]``."""
    if test not in TESTS:
        raise UserError(f"--test {test!r}: use one of {', '.join(TESTS)}")
    base = rows[baseline]
    cells: list[list[Cell | None]] = []
    for i, run in enumerate(rows):
        line: list[Cell | None] = []
        for key in metrics:
            vals = run.values(key)
            if not vals:
                line.append(None)
                continue
            v = list(vals.values())
            cell = Cell(mean(v), sample_sd(v) if len(v) > 1 else 0.0, len(v))
            bvals = base.values(key)
            if i != baseline and bvals:
                if test == "paired":
                    if set(bvals) != set(vals):
                        raise UserError(
                            f"--test paired needs the same seeds in both runs, but {run.label!r} has seeds "
                            f"{sorted(vals)} and the baseline {base.label!r} has {sorted(bvals)} for {key}; "
                            "use --test welch")
                    common = sorted(vals)
                    cell.test = run_test("paired", [bvals[s] for s in common], [vals[s] for s in common])
                else:
                    cell.test = run_test(test, list(bvals.values()), v, resamples=resamples, seed=seed)
            line.append(cell)
        cells.append(line)
    return Comparison(list(rows), list(metrics), baseline, test, cells)


def resolve_baseline(rows: Sequence[RunResults], baseline: str | None) -> int:
    """Index of ``--baseline``: a row's folder path, folder name or label; default the first row."""
    if baseline is None:
        return 0
    target = Path(baseline)
    for i, r in enumerate(rows):
        if target.exists() and r.path.resolve() == target.resolve():
            return i
    for i, r in enumerate(rows):
        if baseline in (r.label, r.name, r.path.name):
            return i
    raise UserError(f"--baseline {baseline!r} is not one of the compared runs: "
                    + ", ".join(r.label for r in rows) + "; give one of these names or folders")


# ---------------------------------------------------------------- rendering
def _mean_sd(key: str, cell: Cell | None) -> str:
    if cell is None:
        return "-"
    places = decimals(key, cell.mean)
    return f"{fmt(cell.mean, places)} ± {fmt(cell.sd, places)}"


def _p(comp: Comparison, i: int, cell: Cell | None) -> str:
    if i == comp.baseline:
        return "baseline"
    return "-" if cell is None or cell.test is None else format_p(cell.test.p)


TEST_NAMES = {"welch": "Welch t-test", "paired": "paired t-test", "bootstrap": "bootstrap test"}


def header_and_rows(comp: Comparison) -> tuple[list[str], list[list[str]]]:
    base = comp.rows[comp.baseline].label
    header = ["method", "seeds"]
    p_head = f"p vs {base}" if len(base) <= 24 else "p vs baseline"
    for key in comp.metrics:
        header += [f"{key} (mean ± sd)", p_head]
    body = []
    for i, run in enumerate(comp.rows):
        label = run.label + (" *" if run.note == "selected" else "")
        line = [label, str(len(run.seeds))]
        for key, cell in zip(comp.metrics, comp.cells[i]):
            line += [_mean_sd(key, cell), _p(comp, i, cell)]
        body.append(line)
    return header, body


def caption(comp: Comparison) -> str:
    base = comp.rows[comp.baseline].label
    return f"p: two-sided {TEST_NAMES[comp.test]} over seeds against the baseline {base!r}"


def render_text(comp: Comparison) -> str:
    header, body = header_and_rows(comp)
    lines = [render_table(body, header, "text"), "", caption(comp)]
    lines += [f"* {n}" if "selected by" in n else n for n in comp.notes]
    return "\n".join(lines)


def render_markdown(comp: Comparison) -> str:
    header, body = header_and_rows(comp)
    lines = [render_table(body, header, "markdown"), "", caption(comp) + "."]
    lines += [f"- {n}" for n in comp.notes]
    return "\n".join(lines)


def render_csv(comp: Comparison) -> str:
    """Unrounded numbers: mean, sd, n, difference to the baseline and p of every metric."""
    header = ["method", "path", "seeds", "baseline"]
    for key in comp.metrics:
        header += [f"{key}:mean", f"{key}:sd", f"{key}:n", f"{key}:diff", f"{key}:p"]
    body = []
    for i, run in enumerate(comp.rows):
        line: list[Any] = [run.label, str(run.path), " ".join(map(str, run.seeds)), int(i == comp.baseline)]
        for cell in comp.cells[i]:
            if cell is None:
                line += ["", "", "", "", ""]
                continue
            t = cell.test
            line += [repr(cell.mean), repr(cell.sd), cell.n, "" if t is None else repr(t.diff),
                     "" if t is None or math.isnan(t.p) else repr(t.p)]
        body.append(line)
    return render_table(body, header, "csv")


def _num(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else x


def to_json(comp: Comparison) -> dict[str, Any]:
    rows = []
    for i, run in enumerate(comp.rows):
        metrics = {}
        for key, cell in zip(comp.metrics, comp.cells[i]):
            if cell is None:
                metrics[key] = None
                continue
            t = cell.test
            metrics[key] = {
                "mean": _num(cell.mean), "sd": _num(cell.sd), "n": cell.n, "values": run.values(key),
                "test": None if t is None else {"name": t.test, "statistic": _num(t.statistic), "df": _num(t.df),
                                                "p": _num(t.p), "diff": _num(t.diff)},
            }
        rows.append({"label": run.label, "name": run.name, "path": str(run.path), "fingerprint": run.fingerprint,
                     "seeds": run.seeds, "baseline": i == comp.baseline, "note": run.note, "metrics": metrics})
    return {"test": comp.test, "metrics": comp.metrics, "baseline": comp.rows[comp.baseline].label,
            "rows": rows, "notes": comp.notes}


def render_json(comp: Comparison) -> str:
    return json_text(to_json(comp))


RENDERERS = {"text": render_text, "markdown": render_markdown, "csv": render_csv, "json": render_json}
FORMATS = tuple(RENDERERS)


def render(comp: Comparison, fmt_name: str) -> str:
    return render_format(comp, fmt_name, RENDERERS)


def compare_paths(paths: Sequence[str | Path], *, baseline: str | None = None, metrics: str | None = None,
                  test: str = "welch", fmt_name: str = "text", resamples: int = 10_000, seed: int = 0) -> str:
    """The whole ``compare`` command: rendered output."""
    rows, notes = expand(paths)
    chosen = pick_metrics(rows, metrics)
    if not metrics and len(paths) == 1 and is_study(Path(paths[0])):
        select = load_study(paths[0]).select
        if select not in chosen and any(r.values(select) for r in rows):
            chosen = [select, *chosen]  # show what the selection was made on
    comp = compare_runs(rows, chosen, resolve_baseline(rows, baseline), test, resamples, seed)
    comp.notes = notes
    return render(comp, fmt_name)
