"""A study of recipes over seeds that survives sessions: each method is an ordinary run folder
in one study folder, complete runs are not run again, interrupted ones resume, and an archive
of light copies (no checkpoints, no TensorBoard files; the finished seeds' metrics, logits and
attributions) can be committed, restored on a fresh machine and completed.

Used by ``bench/textlen_table2.py`` and ``bench/snli_ig_variance.py``.
"""
from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from recipe_engine.resolve import Resolved, resolve  # noqa: E402
from recipe_engine.runner import execute, same_method  # noqa: E402
from recipe_engine.runs import COMPLETE_MARKER, is_complete  # noqa: E402

#: run-folder files an archive keeps (with every finished seed's metrics and eval/ files)
TOP_FILES = ("recipe.yaml", "resolved.yaml", "run.json", "summary.json", "summary.md", COMPLETE_MARKER)
SEED_GLOBS = ("metrics.jsonl", "eval/*.json", "eval/*_logits.pt", "hildif/*/explanations.json", "hildif/*/feedback.jsonl")


def existing_run(study: Path, resolved: Resolved) -> Path | None:
    """The newest run folder of this method (same fingerprint once re-resolved), if any."""
    folder = study / resolved.recipe.name
    if not folder.is_dir():
        return None
    for run in sorted(folder.iterdir(), reverse=True):
        if (run / "run.json").is_file() and same_method(run, resolved):
            return run
    return None


def finished_seeds(run: Path) -> list[str]:
    return sorted(p.parent.parent.name for p in run.glob("seed-*/eval/metrics.json"))


def light_copy(run: Path, dest: Path, seeds: list[str]) -> None:
    """Copy what a run's results and a later resume need: top files and the finished ``seeds``.

    Written into a temporary folder first and renamed, so an archive never holds half a run."""
    tmp = dest.with_name(dest.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    wanted = [run / name for name in TOP_FILES]
    wanted += [p for seed in seeds for pattern in SEED_GLOBS for p in sorted((run / seed).glob(pattern))]
    for src in wanted:
        if src.is_file():
            target = tmp / src.relative_to(run)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, target)
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)


def sync_archive(study: Path, archive: Path) -> None:
    """Archive every run in the study that has at least one finished seed."""
    for run in sorted(study.glob("*/*/run.json")):
        run = run.parent
        seeds = finished_seeds(run)
        if seeds:
            dest = archive / run.parent.name / run.name
            light_copy(run, dest, seeds)
            print(f"archived {run} -> {dest} ({', '.join(seeds)}"
                  f"{', complete' if is_complete(run) else ''})", file=sys.stderr)


def restore_archive(archive: Path, study: Path) -> None:
    """Copy archived runs the study folder lacks (or holds with fewer finished seeds)."""
    for run in sorted(archive.glob("*/*/run.json")):
        run = run.parent
        dest = study / run.parent.name / run.name
        archived = finished_seeds(run)
        if dest.exists() and len(finished_seeds(dest)) >= len(archived):
            continue
        if dest.exists():
            for seed in archived:
                if not (dest / seed / "eval" / "metrics.json").is_file():
                    shutil.rmtree(dest / seed, ignore_errors=True)
                    shutil.copytree(run / seed, dest / seed)
        else:
            shutil.copytree(run, dest)
        print(f"restored {run} -> {dest}", file=sys.stderr)


def run_method(name: str, recipe_path: str, overrides: list[str], study: Path, archive: Path | None,
               report_only: bool) -> tuple[int, Path | None]:
    """Run (or resume, or find complete) one method of the study; (exit code, its run folder).

    With ``report_only`` nothing trains: the run folder is returned when it has finished seeds."""
    resolved = resolve(ROOT / recipe_path, overrides)
    run = existing_run(study, resolved)
    if report_only:
        return 0, run if run is not None and finished_seeds(run) else None
    if run is not None and is_complete(run):
        print(f"{name}: complete in {run}", file=sys.stderr)
        return 0, run
    print(f"{name}: {'resuming ' + str(run) if run else 'starting'}", file=sys.stderr)
    code = execute(resolved, str(ROOT / recipe_path), overrides, run_dir=run, out_root=None if run else study)
    run = existing_run(study, resolved)
    if archive is not None:
        sync_archive(study, archive)
    return code, run


def study_parser(doc: str, *, seeds: str, methods: list[str], out: str) -> argparse.ArgumentParser:
    """The options every study shares: --seeds --methods --out --archive --sync --report-only."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", default=seeds)
    ap.add_argument("--methods", default=",".join(methods))
    ap.add_argument("--out", default=out)
    ap.add_argument("--archive", default=None, help="folder of light run copies to restore from and save to")
    ap.add_argument("--sync", action="store_true", help="only refresh --archive from --out")
    ap.add_argument("--report-only", action="store_true", help="print the table from the runs there are")
    ap.add_argument("--override", action="append", default=[],
                    help="an override for every run, e.g. runtime.threads=1 (a method override changes the runs' identity)")
    return ap


def open_study(ap: argparse.ArgumentParser, args: argparse.Namespace) -> tuple[Path, Path | None, bool]:
    """(study folder, archive, done): ``--sync`` refreshes the archive and is done; otherwise
    the archive's runs the study folder lacks are restored first."""
    study = Path(args.out)
    archive = Path(args.archive) if args.archive else None
    if args.sync:
        if archive is None:
            ap.error("--sync needs --archive")
        sync_archive(study, archive)
        return study, archive, True
    if archive is not None and archive.is_dir():
        restore_archive(archive, study)
    return study, archive, False
