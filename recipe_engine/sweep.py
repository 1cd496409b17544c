"""``run RECIPE --grid key=a,b --grid other=x,y``: a study, one child run per combination.

The study folder (its layout, reading and writing) is ``recipe_engine.studies``.
Every combination is resolved before anything trains; invalid ones are all reported at once.
"""
from __future__ import annotations

import argparse
import itertools
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from recipe_engine import runner
from recipe_engine.compare import compare_paths, compare_runs, pick_metrics, render_markdown
from recipe_engine.errors import RecipeErrors, UserError
from recipe_engine.outputs import atomic_write_text
from recipe_engine.report import write_study_report
from recipe_engine.resolve import Resolved, resolve
from recipe_engine.runs import DEFAULT_SELECT, SUMMARY_MD, is_complete, read_json
from recipe_engine.studies import (STUDY_FILE, is_study, load_study, new_study_dir, study_run_dirs,
                                  write_study_state)

EXIT_OK, EXIT_INVALID = 0, 1


def split_values(text: str) -> list[str]:
    """``a,b,[1,2],"x,y"`` -> ``['a', 'b', '[1,2]', '"x,y"']``: commas inside brackets or quotes do not split."""
    out, buf, depth, quote = [], [], 0, None
    for ch in text:
        if quote:
            quote = None if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        elif ch == "," and depth == 0:
            out.append("".join(buf).strip())
            buf = []
            continue
        buf.append(ch)
    out.append("".join(buf).strip())
    return out


def parse_grid(specs: list[str]) -> dict[str, list[str]]:
    """``["optimizer.params.lr=1e-5,3e-5", ...]`` -> ``{"optimizer.params.lr": ["1e-5", "3e-5"]}``."""
    grid: dict[str, list[str]] = {}
    for spec in specs:
        key, sep, values = spec.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UserError(f"--grid {spec!r}: write KEY=A,B (e.g. --grid optimizer.params.lr=1e-5,3e-5)")
        if key in grid:
            raise UserError(f"--grid {key} is given twice; put all its values in one --grid {key}=A,B,C")
        vals = split_values(values)
        if any(v == "" for v in vals):
            raise UserError(f"--grid {spec!r}: an empty value; list values separated by commas, e.g. {key}=1,2")
        if len(set(vals)) != len(vals):
            raise UserError(f"--grid {spec!r}: a value is listed twice; list each value once")
        grid[key] = vals
    return grid


def combinations(grid: dict[str, list[str]]) -> list[dict[str, str]]:
    keys = list(grid)
    return [dict(zip(keys, values)) for values in itertools.product(*(grid[k] for k in keys))]


def combo_overrides(combo: dict[str, str]) -> list[str]:
    return [f"{k}={v}" for k, v in combo.items()]


class GridInvalid(UserError):
    """Some grid combinations do not resolve; the message lists them all."""


def resolve_all(recipe: str, overrides: list[str], combos: list[dict[str, str]]) -> list[Resolved]:
    """Resolve every combination; raise one :class:`GridInvalid` listing every invalid one
    (errors shared by several combinations are listed once, with all of them)."""
    resolved: list[Resolved] = []
    by_error: dict[str, list[str]] = {}
    bad = 0
    for combo in combos:
        try:
            resolved.append(resolve(recipe, overrides + combo_overrides(combo)))
        except RecipeErrors as exc:
            bad += 1
            for e in exc.errors:
                by_error.setdefault(e.render(), []).append(",".join(combo_overrides(combo)))
    if by_error:
        lines = [f"{err}  [{'all combinations' if len(labels) == len(combos) else '; '.join(labels)}]"
                 for err, labels in by_error.items()]
        raise GridInvalid(f"{bad} of {len(combos)} grid combinations are invalid; nothing was trained; "
                          "fix the recipe or the --grid values:\n" + "\n".join(lines))
    return resolved


def open_study(args: argparse.Namespace, overrides: list[str]) -> tuple[Path, dict[str, Any], list[Resolved]] | int:
    """A new study folder for ``args.grid`` (every combination resolved first), or the study of
    ``--resume STUDY`` with its children resolved again (their method must be unchanged):
    (study folder, its state, the children resolved), or EXIT_INVALID after printing why."""
    if getattr(args, "resume", None):
        return _reopen_study(args)
    grid = parse_grid(list(args.grid))
    combos = combinations(grid)
    try:
        resolved = resolve_all(args.recipe, list(overrides), combos)
    except GridInvalid as exc:
        print(exc, file=sys.stderr)
        return EXIT_INVALID
    fingerprints = [r.fingerprint for r in resolved]
    if len(set(fingerprints)) < len(fingerprints):
        dupes = [",".join(combo_overrides(c)) for c, f in zip(combos, fingerprints) if fingerprints.count(f) > 1]
        print(f"warning: these combinations give the same method (a value equal to the recipe's): {'; '.join(dupes)}",
              file=sys.stderr)
    first = resolved[0].recipe
    out_root = Path(args.out) if getattr(args, "out", None) else Path(first.runtime.output_dir)
    study_dir = new_study_dir(out_root, first.name)
    state: dict[str, Any] = {
        "name": first.name,
        "recipe": str(args.recipe),
        "overrides": list(overrides),
        "grid": grid,
        "select": first.evaluation.select or DEFAULT_SELECT,
        "created": datetime.now().isoformat(timespec="seconds"),
        "children": [{"combo": c, "overrides": list(overrides) + combo_overrides(c), "fingerprint": r.fingerprint,
                      "run_dir": None, "status": "pending"} for c, r in zip(combos, resolved)],
    }
    write_study_state(study_dir, state)
    print(f"study folder: {study_dir} ({len(combos)} runs)", file=sys.stderr)
    return study_dir, state, resolved


def _reopen_study(args: argparse.Namespace) -> tuple[Path, dict[str, Any], list[Resolved]]:
    study_dir = Path(args.resume)
    if not is_study(study_dir):
        raise UserError(f"--resume {study_dir}: not a study folder (no study.json); give the folder printed as "
                        "'study folder:' when the study started")
    state = read_json(study_dir / STUDY_FILE)
    if args.grid and parse_grid(list(args.grid)) != state.get("grid"):
        raise UserError(f"--resume {study_dir}: --grid differs from the study's grid {state.get('grid')}; "
                        "resume with the same --grid values (or none), or start a new study")
    resolved = []
    for child in state["children"]:
        res = resolve(args.recipe, list(child["overrides"]))
        if res.fingerprint != child.get("fingerprint"):
            label = ",".join(combo_overrides(child["combo"]))
            raise UserError(f"--resume {study_dir}: the method of child {label} changed since the study started "
                            f"(fingerprint {str(child.get('fingerprint'))[:8]} -> {res.fingerprint[:8]}); resume with "
                            "the study's recipe, or start a new study")
        resolved.append(res)
    missing = sum(1 for c in state["children"] if not child_complete(study_dir, c))
    print(f"study folder: {study_dir} (resumed: {missing} of {len(resolved)} runs to finish)", file=sys.stderr)
    return study_dir, state, resolved


def child_run_dir(study_dir: Path, child: dict[str, Any]) -> Path | None:
    """The child's run folder so far (None before it started)."""
    return study_dir / child["run_dir"] if child.get("run_dir") else None


def child_complete(study_dir: Path, child: dict[str, Any]) -> bool:
    run_dir = child_run_dir(study_dir, child)
    return run_dir is not None and is_complete(run_dir)


def run_grid(args: argparse.Namespace, overrides: list[str]) -> int:
    """Validate every combination of ``args.grid``, then run them one by one into a study folder
    (``--resume STUDY``: only the children that did not finish)."""
    opened = open_study(args, overrides)
    if isinstance(opened, int):
        return opened
    study_dir, state, resolved = opened
    code = EXIT_OK
    n = len(state["children"])
    for i, (child, res) in enumerate(zip(state["children"], resolved)):
        label = ",".join(combo_overrides(child["combo"]))
        if child_complete(study_dir, child):
            print(f"[{i + 1}/{n}] {label}: already complete", file=sys.stderr)
            continue
        print(f"[{i + 1}/{n}] {label}", file=sys.stderr)
        before = set(study_run_dirs(study_dir))
        run_dir = child_run_dir(study_dir, child)
        # runner.execute, not a name bound at import: a test may stand in for it
        code = runner.execute(res, args.recipe, child["overrides"], run_dir=run_dir,
                              out_root=None if run_dir else study_dir,
                              max_steps=getattr(args, "max_steps", None), quiet=True)
        made = sorted(set(study_run_dirs(study_dir)) - before)
        if made:
            child["run_dir"] = str(made[-1].relative_to(study_dir))
        child["status"] = "complete" if code == EXIT_OK else "interrupted"
        write_study_state(study_dir, state)
        if code != EXIT_OK:
            print(f"child {label} stopped (exit {code}); the study is incomplete; continue with: recipe-engine run "
                  f"{args.recipe} --resume {study_dir}", file=sys.stderr)
            break
    finish_study(study_dir)
    if code == EXIT_OK:
        print(compare_paths([study_dir]))
        print(f"\nstudy folder: {study_dir}")
    return code


def finish_study(study_dir: Path) -> None:
    """Write the study's ``summary.md`` (the children table and the selection) and ``report.html``."""
    study = load_study(study_dir)
    lines = [f"# {study.name}: study", "", "- grid: " + "; ".join(f"{k} = {', '.join(v)}" for k, v in study.info["grid"].items()),
             f"- children: {len(study.info['children'])} ({len(study.children)} with results)",
             f"- selection metric: {study.select}", ""]
    if study.children:
        metrics = pick_metrics(study.children, None)
        if study.best is not None and study.select not in metrics:
            metrics = [study.select, *metrics]
        for i, child in enumerate(study.children):
            child.note = "selected" if i == study.best else ""
        comp = compare_runs(study.children, metrics)
        if study.best is not None:
            comp.notes = [f"selected: {study.children[study.best].label} (best {study.select})"]
        lines.append(render_markdown(comp))
    else:
        lines.append("No child has finished.")
    atomic_write_text(study_dir / SUMMARY_MD, "\n".join(lines) + "\n")
    write_study_report(study_dir)
