"""The ``recipe-engine`` command (also ``python -m recipe_engine``).

Exit codes: 0 ok, 1 invalid recipe (or a different diff), 2 usage error.  User errors are
printed as one message each, without a traceback (``--debug`` shows it).
"""
from __future__ import annotations

import argparse
import difflib
import glob
import json
import sys
import typing
from pathlib import Path
from typing import Any, Sequence

import torch
import yaml

import registry
from recipe_engine import distributed, launch_ray, runner
from recipe_engine.bundles import load_bundle, recipe_timeline
from recipe_engine.compare import FORMATS as COMPARE_FORMATS
from recipe_engine.compare import compare_paths
from recipe_engine.cost import CostReport, cost_report, cost_text, estimated_seconds, human_time
from recipe_engine.diff import diff_paths, method_changes
from recipe_engine.diff.render import FORMATS as DIFF_FORMATS
from recipe_engine.diff.result import EXIT_ERROR
from recipe_engine.errors import DataUnavailable, RecipeError, RecipeErrors, UserError
from recipe_engine.feedback.session import give_feedback
from recipe_engine.merge import dotted, is_present
from recipe_engine.outputs import atomic_write_text
from recipe_engine.plan import DESCRIBE_HEADER, PlanError, describe
from recipe_engine.resolve import Resolved, data_error, plan_error, resolve, schedule_errors
from recipe_engine.runs import has_run_json, is_complete, read_run_json
from recipe_engine.schema import json_schema
from recipe_engine.studies import is_study
from recipe_engine.sweep import run_grid
from recipe_engine.table import format_table
from recipe_engine.train import pick_device
from registry import RegistryError

EXIT_OK, EXIT_INVALID, EXIT_USAGE = 0, 1, 2


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="recipe-engine", description="Declarative recipes for removing spurious shortcuts from text classifiers.")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("ls", help="list registered components")
    s.add_argument("kind", nargs="?", help="one of: " + ", ".join(registry.KINDS))

    s = sub.add_parser("explain", help="params, formula, paper and requirements of a component")
    s.add_argument("name")

    s = sub.add_parser("validate", help="check recipes; print every error with file:line:col")
    s.add_argument("recipes", nargs="+", help="files or globs")
    s.add_argument("overrides", nargs="*", default=[], help=argparse.SUPPRESS)

    s = sub.add_parser("show", help="print a recipe fully resolved")
    s.add_argument("recipe")
    s.add_argument("overrides", nargs="*", help="key.path=value or ~key.path")
    s.add_argument("--schedule", action="store_true", help="print the compiled timeline")
    s.add_argument("--provenance", action="store_true", help="print where every value comes from")
    s.add_argument("--cost", action="store_true", help="passes and tokens per phase, and the time they take here "
                                                        "(a few calibration steps of the model)")

    s = sub.add_parser("schema", help="JSON Schema of recipes, for editor completion")
    s.add_argument("--out", help="write to this file instead of stdout")

    s = sub.add_parser("run", help="train and evaluate a recipe")
    s.add_argument("recipe")
    s.add_argument("overrides", nargs="*", help="key.path=value or ~key.path")
    s.add_argument("--seeds", help="comma-separated seeds, replacing the recipe's")
    s.add_argument("--out", help="directory for the run folder (default: runtime.output_dir)")
    s.add_argument("--resume", metavar="RUN", help="continue an interrupted run folder")
    s.add_argument("--grid", action="append", default=[], metavar="KEY=A,B", help="sweep: one child run per combination")
    s.add_argument("--launcher", choices=("local", "ray"), default="local",
                   help="local: runs one after another in this process; ray: one Ray task per (seed, grid point)")
    s.add_argument("--ray-address", metavar="ADDR", help="join this Ray cluster (default: start a local one)")
    s.add_argument("--cpus-per-run", type=float, default=1, metavar="N", help="CPUs each Ray task asks for (default 1)")
    s.add_argument("--gpus-per-run", type=float, default=0, metavar="N", help="GPUs each Ray task asks for (default 0)")
    s.add_argument("--no-estimate", action="store_true", help="skip the estimated time printed before training")
    s.add_argument("--max-steps", type=int, help=argparse.SUPPRESS)  # for tests: stop after N steps (simulated crash)
    s.add_argument("--nproc", type=int, default=1, metavar="N",
                   help="processes on this machine (one per GPU, or CPU processes with gloo): relaunches the command "
                        "through torch.distributed.run; the same global batch, gradients summed, one run folder")
    for flag in distributed.TORCHRUN_FLAGS:
        s.add_argument(flag, dest="torchrun_" + flag[2:].replace("-", "_"), metavar="V",
                       help=f"passed to torchrun as {flag} (multi-node runs; turns off --standalone)")

    s = sub.add_parser("feedback", help="score a HILDIF run's influential examples (browser page; --terminal; --file)")
    s.add_argument("run", metavar="RUN", help="the run folder that waits for feedback")
    s.add_argument("--seed", type=int, help="only this seed (default: every seed's latest round that waits, one after another)")
    s.add_argument("--round", type=int, help="only this round (default: the latest that waits)")
    s.add_argument("--terminal", action="store_true", help="a prompt in this terminal instead of the page")
    s.add_argument("--file", help="take the scores from a JSONL or CSV file (anchor, candidate, score)")
    s.add_argument("--port", type=int, default=0, help="the page's port on 127.0.0.1 (default: a free one)")

    s = sub.add_parser("diff", help="semantic diff of two recipes or run folders (exit 0 same method, 1 different, 2 error)")
    s.add_argument("a", help="recipe file or run folder")
    s.add_argument("b", help="recipe file or run folder")
    s.add_argument("--format", choices=DIFF_FORMATS, default="text")

    s = sub.add_parser("compare", help="table of runs (or a study) with mean ± sd over seeds and p-values vs a baseline")
    s.add_argument("runs", nargs="+", metavar="RUN", help="run folders, or a study folder from run --grid")
    s.add_argument("--baseline", metavar="RUN", help="run folder or name to test against (default: the first)")
    s.add_argument("--metrics", help="comma-separated metrics, e.g. test/accuracy,train/cid (default: test accuracy and CID)")
    s.add_argument("--test", choices=("welch", "paired", "bootstrap"), default="welch", help="significance test over seeds")
    s.add_argument("--resamples", type=int, default=10_000, help="bootstrap resamples")
    s.add_argument("--bootstrap-seed", type=int, default=0, help="seed of the bootstrap resampling")
    s.add_argument("--format", choices=COMPARE_FORMATS, default="text")
    return p


def print_errors(exc: RecipeErrors) -> None:
    """Write a recipe's errors to stderr, one line each, ending in exactly one newline."""
    lines = [line for line in exc.render().splitlines() if line.strip()]
    sys.stderr.write("\n".join(lines) + "\n")


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args, extra = parser.parse_known_args(argv)
    args.argv = argv
    if extra:  # overrides written after an option, e.g. `run R --resume X a.b=1`
        if hasattr(args, "overrides") and all("=" in e or e.startswith("~") for e in extra):
            args.overrides = list(args.overrides) + extra
        else:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
    return distributed.worker_exit(_dispatch(args))


def _dispatch(args: argparse.Namespace) -> int:
    try:
        return COMMANDS[args.command](args)
    except RecipeErrors as exc:
        print_errors(exc)
        return EXIT_INVALID
    except (UserError, RegistryError) as exc:
        if args.debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `recipe-engine show R | head`
        sys.stderr.close()
        return EXIT_OK


# ---------------------------------------------------------------- ls / explain / schema
def cmd_ls(args: argparse.Namespace) -> int:
    reg = registry.load_all()
    kinds = [registry.normalize_kind(args.kind)] if args.kind else list(registry.KINDS)
    for kind in kinds:
        rows = []
        for name in reg.names(kind):
            entry = reg.entry(kind, name)
            rows.append([name, entry.cls.summary, entry.plugin or "built-in"])
        print(f"{kind} ({len(rows)})")
        if rows:
            print(format_table(rows, ["name", "summary", "from"]))
        print()
    for problem in reg.plugin_errors:
        print(f"warning: {problem}", file=sys.stderr)
    return EXIT_OK


def cmd_explain(args: argparse.Namespace) -> int:
    reg = registry.load_all()
    found = reg.find(args.name)
    if not found:
        names = sorted({n for k in registry.KINDS for n in reg.names(k)})
        hint = difflib.get_close_matches(args.name, names, n=1)
        raise UserError(f"no component named {args.name!r}" + (f"; did you mean {hint[0]!r}?" if hint else "") + "; see `recipe-engine ls`")
    for kind, cls in found:
        entry = reg.entry(kind, args.name)
        print(f"{args.name}  ({kind[:-1]}, {entry.plugin or 'built-in'}: {entry.module})")
        if cls.summary:
            print(f"  {cls.summary}")
        if cls.paper:
            print(f"  paper:    {cls.paper}")
        if cls.equation:
            print(f"  equation: {cls.equation}")
        print(f"  requires: {', '.join(cls.requires) or 'nothing beyond text and label'}")
        if kind == "objectives":
            print("  data:     " + (
                "brings its own (a probe term): alone in a phase it is a round on its own batches, `for: {epochs: N}` "
                "of them, outside the training budget; " + (
                    "its rounds keep files (round-<r>/), so it runs alone in its phase, one round per `repeat`"
                    if cls.round_files else "next to a per-batch term it draws one batch of its own per step")
                if cls.own_data else "per-batch: reads the training batch; a phase with it uses the training budget"))
        fields = cls.Params.model_fields
        print("  params:" + ("" if fields else " none"))
        for fname, f in fields.items():
            default = "required" if f.is_required() else f"default {json.dumps(_jsonable(f.get_default(call_default_factory=True)))}"
            ann = (str(f.annotation) if typing.get_origin(f.annotation) else getattr(f.annotation, "__name__", str(f.annotation)))
            ann = ann.replace("typing.", "").replace("typing_extensions.", "")
            print(f"    {f.alias or fname}: {ann} ({default})")
            if f.description:
                print(f"        {f.description}")
        print()
    return EXIT_OK


def _jsonable(v: Any) -> Any:
    try:
        json.dumps(v)
        return v
    except TypeError:
        return v.model_dump(mode="json") if hasattr(v, "model_dump") else str(v)


def cmd_schema(args: argparse.Namespace) -> int:
    text = json.dumps(json_schema(), indent=2)
    if args.out:
        atomic_write_text(Path(args.out), text + "\n")
    else:
        print(text)
    return EXIT_OK


# ---------------------------------------------------------------- validate / show
def _expand(patterns: Sequence[str]) -> list[str]:
    files: list[str] = []
    for pat in patterns:
        matches = sorted(glob.glob(pat, recursive=True)) if any(c in pat for c in "*?[") else [pat]
        if not matches:
            raise UserError(f"no recipe matches {pat!r}")
        files.extend(matches)
    return files


def cmd_validate(args: argparse.Namespace) -> int:
    patterns = [a for a in args.recipes + args.overrides if "=" not in a and not a.startswith("~")]
    overrides = [a for a in args.recipes + args.overrides if "=" in a or a.startswith("~")]
    status = EXIT_OK
    for path in _expand(patterns):
        if not Path(path).is_file():
            print(f"{path}: no such file", file=sys.stderr)
            status = EXIT_INVALID
            continue
        try:
            resolved = resolve(path, overrides)
        except RecipeErrors as exc:
            print_errors(exc)
            status = EXIT_INVALID
            continue
        problems, note = _schedule_problems(resolved)
        if problems:
            print_errors(RecipeErrors(problems))
            status = EXIT_INVALID
            continue
        print(f"{path}: ok ({resolved.recipe.name}, fingerprint {resolved.fingerprint[:8]}){note}")
    return status


def _schedule_problems(resolved: Resolved) -> tuple[list[RecipeError], str]:
    """The compiled schedule's problems (phases that get no step), at their lines, and a note
    for the ok line when the dataset cannot be read here (the schedule needs its size): the
    recipe is valid, its schedule just was not compiled."""
    try:
        return schedule_errors(resolved, recipe_timeline(resolved.recipe)), ""
    except PlanError as exc:
        return [plan_error(resolved, exc)], ""
    except DataUnavailable as exc:
        return [], f"; schedule not compiled here (its steps per epoch need the dataset): {exc}"
    except UserError as exc:  # the data is here, but not usable as the recipe says (e.g. shots > a class)
        return [data_error(resolved, exc)], ""


def cmd_show(args: argparse.Namespace) -> int:
    resolved = resolve(args.recipe, args.overrides)
    if args.schedule:
        print(schedule_text(resolved))
        return EXIT_OK
    if args.provenance:
        print(provenance_text(resolved))
        return EXIT_OK
    if args.cost:
        print(cost_text(recipe_cost(resolved, timed=True)))
        return EXIT_OK
    print(yaml.safe_dump(resolved.data, sort_keys=False, allow_unicode=True), end="")
    return EXIT_OK


def provenance_text(resolved: Resolved) -> str:
    """Every leaf of the resolved recipe with where it came from."""
    rows: list[list[str]] = []
    raw = resolved.loaded.data

    def walk(node: Any, path: tuple) -> None:
        if isinstance(node, dict) and node:
            for k, v in node.items():
                walk(v, path + (k,))
        elif isinstance(node, list) and node and any(isinstance(x, (dict, list)) for x in node):
            for i, v in enumerate(node):
                walk(v, path + (i,))
        else:
            origin = resolved.loaded.origins.get(path)
            where = str(origin) if origin is not None and is_present(raw, path) else "default"
            rows.append([dotted(path, resolved.data), _short(node), where])

    walk(resolved.data, ())
    return format_table(rows, ["path", "value", "from"])


def _short(v: Any) -> str:
    text = json.dumps(v) if not isinstance(v, str) else v
    return text if len(text) <= 60 else text[:57] + "..."


def schedule_text(resolved: Resolved) -> str:
    recipe = resolved.recipe
    tl = recipe_timeline(recipe)
    n_train = len(load_bundle(recipe).splits[recipe.data.train_split])
    head = (f"{recipe.name}: {n_train} training examples, batch {recipe.data.batch_size} -> {tl.steps_per_epoch} steps/epoch; "
            f"{tl.train_steps} train-data steps, {tl.total_steps} optimizer steps in {len(tl.segments)} segments")
    dropped = "".join(f"\nphase {pid!r} gets no step: {why}" for pid, why in tl.dropped.items())
    return head + "\n" + format_table(describe(tl), DESCRIBE_HEADER) + dropped


def recipe_cost(resolved: Resolved, timed: bool | None) -> CostReport:
    """The cost report of a resolved recipe (``recipe_engine.cost``), timed with the run's threads."""
    recipe = resolved.recipe
    threads = torch.get_num_threads()
    try:
        if recipe.runtime.threads:
            torch.set_num_threads(recipe.runtime.threads)
        return cost_report(recipe, load_bundle(recipe), recipe_timeline(recipe), pick_device(recipe.runtime.device),
                           timed=timed)
    finally:
        torch.set_num_threads(threads)


def print_estimate(resolved: Resolved, recipe_path: str) -> None:
    """One line before a run trains: its estimated time (a small recipe is counted, not timed).
    A recipe whose data or schedule cannot be read here says nothing: the run reports that."""
    try:
        report = recipe_cost(resolved, timed=None)
    except (UserError, RegistryError, PlanError):
        return
    seeds = f"{report.seeds} seed(s)"
    if report.rates is None:
        print(f"estimated time: small ({report.total_tokens * report.seeds:,.0f} token-passes, {seeds}; not calibrated)",
              file=sys.stderr)
    else:
        print(f"estimated time: {human_time(estimated_seconds(report))} for {seeds} (see recipe-engine show --cost "
              f"{recipe_path}; --no-estimate skips this)", file=sys.stderr)


# ---------------------------------------------------------------- run
def cmd_run(args: argparse.Namespace) -> int:
    """``run RECIPE``: a new run, ``--resume RUN`` of an interrupted one, or a ``--grid`` study;
    ``--nproc N`` (or a torchrun flag) relaunches the same command in N worker processes."""
    passthrough = {flag: getattr(args, "torchrun_" + flag[2:].replace("-", "_")) for flag in distributed.TORCHRUN_FLAGS}
    passthrough = {k: v for k, v in passthrough.items() if v is not None}
    if args.nproc < 1:
        raise UserError(f"--nproc {args.nproc}: give a number of processes >= 1")
    if (args.nproc > 1 or passthrough) and distributed.world_from_env() <= 1:
        if args.grid:
            raise UserError("--grid with --nproc: a study's runs are launched one after another in this process; "
                            "run each grid point with its own `recipe-engine run ... --nproc N`, or drop --nproc")
        # a broken recipe, or one whose terms cannot split a batch, is reported once, here, not by every worker
        distributed.check_splittable(resolve(args.recipe, list(args.overrides)).recipe, max(args.nproc, 2))
        return distributed.launch(args.nproc, passthrough, worker_args(args.argv),
                                  command=runner.launch_command(args.argv))
    overrides = list(args.overrides)
    if args.seeds:
        try:
            seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
        except ValueError:
            raise UserError(f"--seeds {args.seeds!r}: give comma-separated integers, e.g. --seeds 2021,2022") from None
        overrides.append(f"seeds={json.dumps(seeds)}")
    resume_study = bool(args.resume) and is_study(Path(args.resume))
    if args.resume and not args.overrides and not args.seeds and not resume_study and has_run_json(Path(args.resume)):
        overrides = read_run_json(Path(args.resume)).get("overrides", [])
    if args.launcher == "ray":
        return launch_ray.launch(args, overrides)
    if args.grid or resume_study:
        return run_grid(args, overrides)
    if args.resume:
        run_dir = Path(args.resume)
        if not has_run_json(run_dir):
            raise UserError(f"--resume {run_dir}: not a run folder (no run.json); give the folder printed when the run started")
        previous = read_run_json(run_dir)
        overrides = previous.get("overrides", []) if not args.overrides and not args.seeds else overrides
        resolved = resolve(args.recipe, overrides)
        if not runner.same_method(run_dir, resolved):
            changes = "\n".join(method_changes(run_dir, resolved, args.recipe))
            raise UserError(
                f"--resume {run_dir}: the recipe's method changed since the run started (fingerprint "
                f"{previous['fingerprint'][:8]} -> {resolved.fingerprint[:8]}); resume with the run's method, or "
                f"start a new run. What changed:\n{changes}")
        if is_complete(run_dir):
            print(f"{run_dir} is already complete")
            return EXIT_OK
    else:
        resolved = resolve(args.recipe, overrides)
        out_root = Path(args.out) if args.out else Path(resolved.recipe.runtime.output_dir)
        run_dir = None
    if not args.no_estimate and distributed.world_from_env() <= 1:  # the workers of --nproc say nothing extra
        print_estimate(resolved, args.recipe)
    return runner.execute(resolved, args.recipe, overrides, run_dir=run_dir, out_root=None if run_dir else out_root,
                          max_steps=args.max_steps)


def worker_args(argv: Sequence[str]) -> list[str]:
    """The command line without ``--nproc`` and the torchrun flags: what each worker runs."""
    drop = ("--nproc", *distributed.TORCHRUN_FLAGS)
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a in drop:
            skip = True
        elif not a.startswith(tuple(f"{d}=" for d in drop)):
            out.append(a)
    return out


def cmd_feedback(args: argparse.Namespace) -> int:
    return give_feedback(Path(args.run), seed=args.seed, round_index=args.round, terminal=args.terminal,
                         file=Path(args.file) if args.file else None, port=args.port)


# ---------------------------------------------------------------- diff / compare
def cmd_diff(args: argparse.Namespace) -> int:
    try:
        text, code = diff_paths(args.a, args.b, args.format)
    except RecipeErrors as exc:
        print_errors(exc)
        return EXIT_ERROR
    print(text)
    return code


def cmd_compare(args: argparse.Namespace) -> int:
    print(compare_paths(args.runs, baseline=args.baseline, metrics=args.metrics, test=args.test, fmt_name=args.format,
                        resamples=args.resamples, seed=args.bootstrap_seed))
    return EXIT_OK


COMMANDS = {
    "ls": cmd_ls,
    "explain": cmd_explain,
    "validate": cmd_validate,
    "show": cmd_show,
    "feedback": cmd_feedback,
    "schema": cmd_schema,
    "run": cmd_run,
    "diff": cmd_diff,
    "compare": cmd_compare,
}

if __name__ == "__main__":
    sys.exit(main())
