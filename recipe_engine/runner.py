"""``recipe-engine run``: resolve, make the run folder, train every seed, aggregate.

The run folder (DESIGN.md section 7) is never overwritten; ``--resume RUN`` continues one
after checking that the method (fingerprint) is unchanged.
"""
from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

import torch
import yaml

import registry
from recipe_engine.bundles import load_bundle
from recipe_engine.errors import UserError
from recipe_engine.evaluate import aggregate_seeds, write_summary
from recipe_engine.outputs import (atomic_write_json, atomic_write_text, data_hashes, environment_info, is_complete,
                                   mark_complete, new_run_dir)
from recipe_engine.resolve import Resolved, resolve
from recipe_engine.table import results_table
from recipe_engine.train import Interrupted, pick_device, train_seed
from registry.datasets.data_root import resolve_data_root

EXIT_OK, EXIT_INTERRUPTED = 0, 3


def run_command(args: argparse.Namespace) -> int:
    overrides = list(args.overrides)
    if args.seeds:
        try:
            seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
        except ValueError:
            raise UserError(f"--seeds {args.seeds!r}: give comma-separated integers, e.g. --seeds 2021,2022") from None
        overrides.append(f"seeds={json.dumps(seeds)}")
    if args.grid:
        from recipe_engine.sweep import run_grid

        return run_grid(args, overrides)
    if args.resume:
        run_dir = Path(args.resume)
        if not (run_dir / "run.json").is_file():
            raise UserError(f"--resume {run_dir}: not a run folder (no run.json); give the folder printed when the run started")
        previous = json.loads((run_dir / "run.json").read_text())
        overrides = previous.get("overrides", []) if not args.overrides and not args.seeds else overrides
        resolved = resolve(args.recipe, overrides)
        if not same_method(run_dir, resolved):
            raise UserError(
                f"--resume {run_dir}: the recipe's method changed since the run started (fingerprint "
                f"{previous['fingerprint'][:8]} -> {resolved.fingerprint[:8]}); run `recipe-engine diff {run_dir} {args.recipe}` "
                "to see what, or start a new run")
        if is_complete(run_dir):
            print(f"{run_dir} is already complete")
            return EXIT_OK
    else:
        resolved = resolve(args.recipe, overrides)
        out_root = Path(args.out) if args.out else Path(resolved.recipe.runtime.output_dir)
        run_dir = None
    return execute(resolved, args.recipe, overrides, run_dir=run_dir, out_root=None if run_dir else out_root,
                   max_steps=args.max_steps)


def same_method(run_dir: Path, resolved: Resolved) -> bool:
    """Does the run folder hold the method of ``resolved``?  Its ``resolved.yaml`` is resolved
    again with today's registry, so a param added since (with its default) changes nothing."""
    previous = json.loads((run_dir / "run.json").read_text())
    if previous.get("fingerprint") == resolved.fingerprint:
        return True
    try:
        return resolve(run_dir / "resolved.yaml").fingerprint == resolved.fingerprint
    except Exception:  # an old recipe that no longer validates is not the same method
        return False


def _command_line() -> str:
    """The command as a person would type it: ``recipe-engine ...`` or ``python SCRIPT ...``."""
    prog = sys.argv[0] if sys.argv else ""
    head = "recipe-engine" if prog.endswith(("recipe-engine", "__main__.py")) else f"python {prog}"
    return " ".join([head, *(shlex.quote(a) for a in sys.argv[1:])])


def execute(resolved: Resolved, recipe_path: str, overrides: list[str], *, run_dir: Path | None = None,
            out_root: Path | None = None, max_steps: int | None = None, quiet: bool = False) -> int:
    """Run every seed of a resolved recipe into a (new or resumed) run folder."""
    recipe = resolved.recipe
    say = (lambda *a, **k: None) if quiet else (lambda *a, **k: print(*a, **k, file=sys.stderr))
    if recipe.runtime.threads:
        torch.set_num_threads(recipe.runtime.threads)
    device = pick_device(recipe.runtime.device)
    data_root = resolve_data_root(recipe.runtime.data_root)
    bundle = load_bundle(recipe, fresh=True)

    if run_dir is None:
        run_dir = new_run_dir(out_root, recipe.name, resolved.fingerprint)
        atomic_write_text(run_dir / "recipe.yaml", Path(recipe_path).read_text(encoding="utf-8"))
        atomic_write_text(run_dir / "resolved.yaml", yaml.safe_dump(resolved.data, sort_keys=False, allow_unicode=True))
        atomic_write_json(run_dir / "run.json", {
            "command": _command_line(),
            "recipe": str(recipe_path),
            "overrides": overrides,
            "fingerprint": resolved.fingerprint,
            "seeds": list(recipe.seeds),
            "environment": environment_info(str(device)),
            "data_root": str(data_root),
            "data_hashes": data_hashes(bundle.files),
            "extends": resolved.loaded.files,
        })
    say(f"run folder: {run_dir}")

    per_seed: dict[int, dict[str, float]] = {}
    for seed in recipe.seeds:
        seed_dir = run_dir / f"seed-{seed}"
        done = seed_dir / "eval" / "metrics.json"
        if done.is_file():
            per_seed[seed] = json.loads(done.read_text())["metrics"]
            say(f"seed {seed}: already done")
            continue
        try:
            result = train_seed(recipe, bundle, seed, seed_dir, device=device, max_steps=max_steps, log=say)
        except Interrupted as exc:
            say(f"seed {seed}: {exc}; continue with: recipe-engine run {recipe_path} --resume {run_dir}")
            return EXIT_INTERRUPTED
        per_seed[seed] = result.metrics
        say(f"seed {seed}: " + ", ".join(f"{k}={v:.2f}" for k, v in result.metrics.items() if k.endswith("accuracy")))

    aggregate = aggregate_seeds(per_seed)
    write_summary(run_dir, per_seed, aggregate, {"recipe": recipe.name, "fingerprint": resolved.fingerprint})
    try:
        from recipe_engine.report import write_run_report

        write_run_report(run_dir)
    except ImportError:
        pass
    mark_complete(run_dir)
    if not quiet:
        print(f"\n{recipe.name}: {len(per_seed)} seed(s), mean ± sd\n" + results_table(aggregate))
        print(f"\nrun folder: {run_dir}")
    return EXIT_OK
