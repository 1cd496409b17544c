"""One run of a resolved recipe: make the run folder, train every seed, aggregate, report.

The run folder (``recipe_engine.runs``) is never overwritten; a resumed one continues only
when the method (fingerprint) is unchanged (``same_method``).  The ``run`` command's options
are read in ``recipe_engine.cli``; a ``--grid`` of runs is ``recipe_engine.sweep``.
"""
from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path
from typing import Any, Callable

import torch

from recipe_engine import distributed, faults
from recipe_engine.bundles import load_bundle
from recipe_engine.data_checks import check_bundle
from recipe_engine.disk import DISK_ERRNOS, check_output_folder, disk_error
from recipe_engine.environment import data_hashes, environment_info
from recipe_engine.evaluate import aggregate_seeds
from recipe_engine.report import write_run_report
from recipe_engine.resolve import Resolved, resolve
from recipe_engine.feedback.rounds import FeedbackPending
from recipe_engine.runs import (RESOLVED_FILE, finished_seed_metrics, mark_complete, new_run_dir, read_run_json,
                                remove_temp_files, seed_dir, write_run_start, write_summary)
from recipe_engine.table import results_table
from recipe_engine.train import Interrupted, pick_device, train_seed
from registry._lib.ranks import Ranks
from registry.datasets.data_root import resolve_data_root
from registry.types import DatasetBundle

EXIT_OK, EXIT_INTERRUPTED = 0, distributed.INTERRUPTED


def same_method(run_dir: Path, resolved: Resolved) -> bool:
    """Does the run folder hold the method of ``resolved``?  Its ``resolved.yaml`` is resolved
    again with today's registry, so a param added since (with its default) changes nothing."""
    previous = read_run_json(run_dir)
    if previous.get("fingerprint") == resolved.fingerprint:
        return True
    try:
        return resolve(run_dir / RESOLVED_FILE).fingerprint == resolved.fingerprint
    except Exception:  # an old recipe that no longer validates is not the same method
        return False


def launch_command(argv: list[str]) -> str:
    """``recipe-engine ARGV`` as typed (the command a ``--nproc`` run records in ``run.json``)."""
    return " ".join(["recipe-engine", *(shlex.quote(a) for a in argv)])


def _command_line() -> str:
    """The command as a person would type it: ``recipe-engine ...`` or ``python SCRIPT ...`` (under
    ``--nproc``, the launching command, which ``distributed.launch`` hands its workers)."""
    if os.environ.get(distributed.COMMAND_ENV):
        return os.environ[distributed.COMMAND_ENV]
    prog = sys.argv[0] if sys.argv else ""
    head = "recipe-engine" if prog.endswith(("recipe-engine", "__main__.py")) else f"python {prog}"
    return " ".join([head, *(shlex.quote(a) for a in sys.argv[1:])])


def execute(resolved: Resolved, recipe_path: str, overrides: list[str], *, run_dir: Path | None = None,
            out_root: Path | None = None, max_steps: int | None = None, quiet: bool = False) -> int:
    """Run every seed of a resolved recipe into a (new or resumed) run folder; ``runtime.threads``
    holds for the run only (a caller in the same process gets its thread count back).

    Under torchrun (``WORLD_SIZE`` > 1, see ``recipe_engine.distributed``) every worker runs
    this: rank 0 names and writes the run folder, the others follow its path."""
    threads = torch.get_num_threads()
    try:
        if resolved.recipe.runtime.threads:
            torch.set_num_threads(resolved.recipe.runtime.threads)
        return _execute(resolved, recipe_path, overrides, run_dir=run_dir, out_root=out_root, max_steps=max_steps,
                        quiet=quiet)
    finally:
        torch.set_num_threads(threads)
        distributed.stop()


def load_data(resolved: Resolved) -> tuple[DatasetBundle, torch.device, list[str]]:
    """The recipe's data (loaded and checked: bad data raises here), its device, and notes on the data."""
    recipe = resolved.recipe
    bundle = load_bundle(recipe, fresh=True)
    return bundle, pick_device(recipe.runtime.device), [*bundle.notes, *check_bundle(recipe, bundle)]


def prepare_run(resolved: Resolved, recipe_path: str, overrides: list[str], *, run_dir: Path | None,
                out_root: Path | None, world_size: int = 1) -> tuple[Path, DatasetBundle, torch.device, list[str]]:
    """Load and check the data, then make a new run folder (``run_dir`` None) or tidy a resumed
    one: (run folder, data bundle, device, data notes).  Bad data raises before any folder exists."""
    bundle, device, notes = load_data(resolved)
    data_root = resolve_data_root(resolved.recipe.runtime.data_root)
    run_dir = _start_run_folder(resolved, recipe_path, overrides, run_dir, out_root, device, data_root, bundle, world_size)
    return run_dir, bundle, device, notes


def run_seed(resolved: Resolved, bundle: DatasetBundle, run_dir: Path, seed: int, *, recipe_path: str,
             device: torch.device, max_steps: int | None = None, log: Callable[..., Any] = print,
             ranks: Ranks = Ranks()) -> dict[str, float]:
    """Train and evaluate one seed into ``run_dir/seed-<n>`` (resuming its checkpoint); its metrics.

    The one code path of a seed, whether the seeds run one by one here (on one or several
    processes) or as Ray tasks (``recipe_engine.launch_ray``).  Raises ``Interrupted`` when
    stopped early, ``FeedbackPending`` when a HILDIF round waits for scores."""
    try:
        return train_seed(resolved.recipe, bundle, seed, seed_dir(run_dir, seed), device=device,
                          max_steps=max_steps, log=log, ranks=ranks).metrics
    except OSError as exc:
        if exc.errno not in DISK_ERRNOS:
            raise
        raise disk_error(exc, recipe_path, run_dir) from None


def finish_run(resolved: Resolved, run_dir: Path, per_seed: dict[int, dict[str, float]]) -> dict:
    """Aggregate the seeds, write ``summary.json``/``summary.md``/``report.html`` and ``.complete``;
    the aggregate (for printing)."""
    aggregate = aggregate_seeds(per_seed)
    write_summary(run_dir, per_seed, aggregate, {"recipe": resolved.recipe.name, "fingerprint": resolved.fingerprint})
    write_run_report(run_dir)
    mark_complete(run_dir)
    return aggregate


def _execute(resolved: Resolved, recipe_path: str, overrides: list[str], *, run_dir: Path | None,
             out_root: Path | None, max_steps: int | None, quiet: bool) -> int:
    recipe = resolved.recipe
    ranks = distributed.start(pick_device(recipe.runtime.device))
    quiet = quiet or not ranks.main  # rank 0 speaks for the run
    say = (lambda *a, **k: None) if quiet else (lambda *a, **k: print(*a, **k, file=sys.stderr))
    if not ranks.main:
        bundle, device, notes = load_data(resolved)
        run_dir = Path(distributed.broadcast(None, ranks))
    else:
        run_dir, bundle, device, notes = prepare_run(resolved, recipe_path, overrides, run_dir=run_dir,
                                                     out_root=out_root, world_size=ranks.world)
        distributed.broadcast(str(run_dir), ranks)
    say(f"run folder: {run_dir}")
    for note in notes:
        say(f"data: {note}")

    per_seed: dict[int, dict[str, float]] = {}
    for seed in recipe.seeds:
        done = distributed.broadcast(finished_seed_metrics(seed_dir(run_dir, seed)) if ranks.main else None, ranks)
        if done is not None:
            per_seed[seed] = done
            say(f"seed {seed}: already done")
            continue
        try:
            metrics = run_seed(resolved, bundle, run_dir, seed, recipe_path=recipe_path, device=device,
                               max_steps=max_steps, log=say, ranks=ranks)
        except (Interrupted, FeedbackPending) as exc:
            say(f"seed {seed}: {exc}; continue with: recipe-engine run {recipe_path} --resume {run_dir}")
            return EXIT_INTERRUPTED
        per_seed[seed] = metrics
        faults.point("seed")
        say(f"seed {seed}: " + ", ".join(f"{k}={v:.2f}" for k, v in metrics.items() if k.endswith("accuracy")))

    if not ranks.main:
        return EXIT_OK
    aggregate = finish_run(resolved, run_dir, per_seed)
    if not quiet:
        print(f"\n{recipe.name}: {len(per_seed)} seed(s), mean ± sd\n" + results_table(aggregate))
        print(f"\nrun folder: {run_dir}")
    return EXIT_OK


def _start_run_folder(resolved: Resolved, recipe_path: str, overrides: list[str], run_dir: Path | None,
                      out_root: Path | None, device: torch.device, data_root: Path, bundle: DatasetBundle,
                      world_size: int) -> Path:
    """A new run folder with its recipe files and ``run.json`` (or the resumed one, cleaned of
    temporary files); on rank 0 only."""
    recipe = resolved.recipe
    check_output_folder(out_root if run_dir is None else run_dir)
    if run_dir is None:
        run_dir = new_run_dir(out_root, recipe.name, resolved.fingerprint)
        write_run_start(run_dir, Path(recipe_path).read_text(encoding="utf-8"), resolved.data, {
            "command": _command_line(),
            "recipe": str(recipe_path),
            "overrides": overrides,
            "fingerprint": resolved.fingerprint,
            "seeds": list(recipe.seeds),
            "environment": environment_info(str(device), world_size),
            "data_root": str(data_root),
            "data_hashes": data_hashes(bundle.files),
            "extends": resolved.loaded.files,
        })
    else:
        remove_temp_files(run_dir)
    return run_dir
