"""``run RECIPE --launcher ray``: every (seed, grid point) is one Ray task.

The driver (this process) resolves every child, makes the run folders exactly as the
sequential path does (``runner.prepare_run``; a ``--grid`` study folder through
``recipe_engine.sweep``), then submits one task per seed that has not finished.  A task
resolves the recipe again and calls ``runner.run_seed``, the seed code path of the sequential
runner, writing ``seed-<n>/`` into the same run folder; the driver then writes each run's
summary and ``.complete`` (``runner.finish_run``) and the study's summary, so ``compare`` reads
the result unchanged.  A task that fails (an exception, or its worker dies) is submitted once
more; if it fails again it is reported at the end and the exit code is non-zero, while the
other tasks go on.  ``--resume`` (a run or a study folder) submits only the seeds not finished.

``ray.init()`` starts a local cluster (the machine's CPUs and GPUs) unless ``--ray-address``
names one to join; a Ray session that is already initialised in this process is reused and
left running.  Paths are sent to the tasks as absolute paths and the tasks work in the
driver's folder, so on a multi-machine cluster the recipe, data and output folders must be
on a shared filesystem.
"""
from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from recipe_engine import runner, sweep
from recipe_engine.compare import compare_paths
from recipe_engine.errors import UserError
from recipe_engine.resolve import Resolved, resolve
from recipe_engine.runs import finished_seed_metrics, has_run_json, is_complete, seed_dir
from recipe_engine.studies import study_run_dirs, write_study_state
from recipe_engine.train import Interrupted

EXIT_OK, EXIT_FAILED = 0, 4
#: attempts per task: the first, and one retry
ATTEMPTS = 2
INSTALL_HINT = "pip install 'recipe-engine[ray]'"


def import_ray() -> Any:
    """The ``ray`` module, or a UserError saying how to install it."""
    try:
        import ray
    except ImportError:
        raise UserError(f"--launcher ray needs Ray, which is not installed here; install it with: {INSTALL_HINT} "
                        "(or run without --launcher ray, one run after another)") from None
    return ray


@dataclass
class SeedJob:
    """One Ray task: train ``seed`` of the run in ``run_dir``."""

    recipe_path: str
    overrides: list[str]
    run_dir: str
    seed: int
    label: str  # for messages, e.g. "lr=1e-3 seed 2"
    attempts: int = 0
    errors: list[str] = field(default_factory=list)


def seed_task(recipe_path: str, overrides: list[str], run_dir: str, seed: int, *, cwd: str,
              max_steps: int | None, threads: int) -> dict[str, float]:
    """The body of a Ray task (runs in a worker): one seed, through the sequential seed code path."""
    import torch

    if os.path.isdir(cwd):
        os.chdir(cwd)
    resolved = resolve(recipe_path, overrides)
    recipe = resolved.recipe
    torch.set_num_threads(recipe.runtime.threads or threads)
    bundle, device, _ = runner.load_data(resolved)  # the run folder is the driver's: no tidying here
    return runner.run_seed(resolved, bundle, Path(run_dir), seed, recipe_path=recipe_path, device=device,
                           max_steps=max_steps, log=lambda *a, **k: None)


def init_ray(ray: Any, address: str | None) -> bool:
    """Start or join a cluster; True when this call started it (and should shut it down)."""
    if ray.is_initialized():
        return False
    kwargs: dict[str, Any] = {"include_dashboard": False, "ignore_reinit_error": True, "logging_level": "WARNING",
                              "log_to_driver": False}
    if address:
        kwargs["address"] = address
    ray.init(**kwargs)
    return True


def run_jobs(jobs: list[SeedJob], *, task: Callable[..., dict[str, float]] = seed_task, cpus_per_run: float = 1,
             gpus_per_run: float = 0, max_steps: int | None = None, ray_address: str | None = None,
             say: Callable[[str], Any] = lambda m: print(m, file=sys.stderr)) -> tuple[dict[tuple[str, int], dict], list[SeedJob]]:
    """Run every job as a Ray task (each retried once on failure): (metrics by (run_dir, seed),
    the jobs that failed twice)."""
    ray = import_ray()
    started = init_ray(ray, ray_address)
    try:
        remote = ray.remote(task).options(num_cpus=cpus_per_run, num_gpus=gpus_per_run, max_retries=0)
        threads = max(1, int(cpus_per_run))
        cwd = os.getcwd()

        def submit(job: SeedJob) -> Any:
            job.attempts += 1
            return remote.remote(job.recipe_path, job.overrides, job.run_dir, job.seed, cwd=cwd, max_steps=max_steps,
                                 threads=threads)

        pending = {submit(job): job for job in jobs}
        results: dict[tuple[str, int], dict] = {}
        failed: list[SeedJob] = []
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            job = pending.pop(ready[0])
            try:
                results[(job.run_dir, job.seed)] = ray.get(ready[0])
                say(f"done: {job.label}" + (f" (attempt {job.attempts})" if job.attempts > 1 else ""))
            except Exception as exc:  # a RayTaskError wraps the task's exception; a dead worker is a RayError
                job.errors.append(_reason(exc))
                stopped = isinstance(getattr(exc, "cause", None), Interrupted)  # a deliberate stop is not retried
                if job.attempts < ATTEMPTS and not stopped:
                    say(f"failed: {job.label} ({job.errors[-1]}); retrying once")
                    pending[submit(job)] = job
                else:
                    say(f"failed: {job.label} ({job.errors[-1]}), after {job.attempts} attempts")
                    failed.append(job)
        return results, failed
    finally:
        if started:
            ray.shutdown()


def _reason(exc: BaseException) -> str:
    """One line: the task's own exception when Ray wraps one, else Ray's."""
    cause = getattr(exc, "cause", None)
    if isinstance(cause, Interrupted):
        return f"stopped early: {cause}"
    if isinstance(cause, BaseException):
        return f"{type(cause).__name__}: {cause}".splitlines()[0]
    lines = [ln for ln in str(exc).splitlines() if ln.strip()] or [type(exc).__name__]
    return f"{type(exc).__name__}: {lines[-1] if len(lines) > 1 else lines[0]}"[:300]


# ---------------------------------------------------------------- one run, or a study
@dataclass
class Child:
    """A run folder to fill: its resolved recipe, overrides and a label."""

    resolved: Resolved
    overrides: list[str]
    run_dir: Path
    label: str


def jobs_for(children: list[Child], recipe_path: str) -> list[SeedJob]:
    """One job per seed of an unfinished run whose seed has no final metrics yet."""
    jobs = []
    for child in children:
        if is_complete(child.run_dir):
            continue
        for seed in child.resolved.recipe.seeds:
            if finished_seed_metrics(seed_dir(child.run_dir, seed)) is None:
                label = f"{child.label} seed {seed}" if child.label else f"seed {seed}"
                jobs.append(SeedJob(str(Path(recipe_path).resolve()), list(child.overrides), str(child.run_dir.resolve()),
                                    seed, label))
    return jobs


def finish_children(children: list[Child]) -> list[Child]:
    """Write summary/report/.complete of every child whose seeds all finished; the others."""
    unfinished = []
    for child in children:
        if is_complete(child.run_dir):
            continue
        per_seed = {s: finished_seed_metrics(seed_dir(child.run_dir, s)) for s in child.resolved.recipe.seeds}
        if any(m is None for m in per_seed.values()):
            unfinished.append(child)
            continue
        runner.finish_run(child.resolved, child.run_dir, per_seed)  # type: ignore[arg-type]
    return unfinished


def launch(args: argparse.Namespace, overrides: list[str]) -> int:
    """``run ... --launcher ray``: a single run (``--resume RUN`` too) or a ``--grid`` study."""
    import_ray()  # before any folder is made
    if args.cpus_per_run <= 0 or args.gpus_per_run < 0:
        raise UserError("--cpus-per-run must be > 0 and --gpus-per-run >= 0 (fractions are allowed, e.g. 0.5)")
    study = args.grid or (args.resume and (Path(args.resume) / "study.json").is_file())
    return _launch_study(args, overrides) if study else _launch_run(args, overrides)


def _launch_run(args: argparse.Namespace, overrides: list[str]) -> int:
    if args.resume:
        run_dir = Path(args.resume)
        if not has_run_json(run_dir):
            raise UserError(f"--resume {run_dir}: not a run folder (no run.json); give the folder printed when the run started")
        resolved = resolve(args.recipe, overrides)
        if not runner.same_method(run_dir, resolved):
            raise UserError(f"--resume {run_dir}: the recipe's method changed since the run started; resume with the "
                            "run's method (see `recipe-engine diff`), or start a new run")
        if is_complete(run_dir):
            print(f"{run_dir} is already complete")
            return EXIT_OK
        runner.prepare_run(resolved, args.recipe, overrides, run_dir=run_dir, out_root=None)
    else:
        resolved = resolve(args.recipe, overrides)
        out_root = Path(args.out) if args.out else Path(resolved.recipe.runtime.output_dir)
        run_dir, *_ = runner.prepare_run(resolved, args.recipe, overrides, run_dir=None, out_root=out_root)
    print(f"run folder: {run_dir}", file=sys.stderr)
    children = [Child(resolved, overrides, run_dir, "")]
    failed = _run_children(args, children)
    if failed:
        return _report_failures(failed, f"recipe-engine run {args.recipe} --launcher ray --resume {run_dir}")
    print(compare_paths([run_dir]))
    print(f"\nrun folder: {run_dir}")
    return EXIT_OK


def _launch_study(args: argparse.Namespace, overrides: list[str]) -> int:
    opened = sweep.open_study(args, overrides)
    if isinstance(opened, int):
        return opened
    study_dir, state, resolved = opened
    children = []
    for child, res in zip(state["children"], resolved):
        run_dir = sweep.child_run_dir(study_dir, child)
        before = set(study_run_dirs(study_dir))
        run_dir, *_ = runner.prepare_run(res, args.recipe, child["overrides"], run_dir=run_dir,
                                         out_root=None if run_dir else study_dir)
        if child.get("run_dir") is None:
            made = sorted(set(study_run_dirs(study_dir)) - before)
            child["run_dir"] = str((made[-1] if made else run_dir).relative_to(study_dir))
        child["status"] = "complete" if is_complete(run_dir) else "running"
        children.append(Child(res, list(child["overrides"]), run_dir, ",".join(sweep.combo_overrides(child["combo"]))))
    write_study_state(study_dir, state)
    failed = _run_children(args, children)
    for child in state["children"]:
        child["status"] = "complete" if sweep.child_complete(study_dir, child) else "failed"
    write_study_state(study_dir, state)
    sweep.finish_study(study_dir)
    if failed:
        return _report_failures(failed, f"recipe-engine run {args.recipe} --launcher ray --resume {study_dir}")
    print(compare_paths([study_dir]))
    print(f"\nstudy folder: {study_dir}")
    return EXIT_OK


def _run_children(args: argparse.Namespace, children: list[Child]) -> list[SeedJob]:
    jobs = jobs_for(children, args.recipe)
    done = sum(len(c.resolved.recipe.seeds) for c in children) - len(jobs)
    print(f"ray: {len(jobs)} task(s) to run" + (f", {done} seed(s) already done" if done else "")
          + f" ({args.cpus_per_run:g} CPU, {args.gpus_per_run:g} GPU each)", file=sys.stderr)
    _, failed = run_jobs(jobs, cpus_per_run=args.cpus_per_run, gpus_per_run=args.gpus_per_run,
                         max_steps=getattr(args, "max_steps", None), ray_address=args.ray_address)
    finish_children(children)
    return failed


def _report_failures(failed: list[SeedJob], resume: str) -> int:
    lines = [f"{len(failed)} task(s) failed (a failure is retried once); the others finished:"]
    for job in failed:
        lines.append(f"  {job.label} ({job.run_dir}, {job.attempts} attempt(s)): {job.errors[-1]}")
    lines.append(f"fix the cause, then run only what is missing with: {resume}")
    print("\n".join(lines), file=sys.stderr)
    return EXIT_FAILED

