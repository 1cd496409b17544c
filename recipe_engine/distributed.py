"""One run over several processes: launching through torchrun, the process group, and the few
collectives the training loop needs.

``recipe-engine run R --nproc N`` re-runs the same command under ``torch.distributed.run``
(``launch``); each worker finds ``WORLD_SIZE``/``RANK`` in its environment and ``start`` joins
the process group: NCCL on CUDA (one GPU per local rank), gloo on CPU.  One process
(``WORLD_SIZE`` unset or 1) joins nothing and every helper here is the identity.

Data parallelism is written out rather than wrapped in ``DistributedDataParallel``: the
objectives call the model in many ways (eval-mode probes, forward hooks, double backward
through a gradient, which DDP's reducer does not support), so after each backward the
gradients are all-reduced (``all_reduce_grads``, summed in one flat buffer per dtype).  The
per-rank losses are scaled so that this sum is the single-process gradient:

* a per-batch term is a mean over the examples of its batch; rank r reads a contiguous
  slice of n_r of the n examples of the *same* global batch (``Ranks.part``) and its loss is
  weighted by n_r / n, so the summed gradient is the global-batch mean whatever the split
  (a last batch that does not divide evenly included; a rank whose slice is empty adds 0);
* a probe term (influence or embedding tuning) draws the rows of the whole probe batch on
  every rank, keeps its share and weights its J by its share of the counted probes
  (``registry.objectives._confound_groups.ProbeObjective.finish``).
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any, Iterable, Sequence

import torch
import torch.distributed as dist
from torch import nn

import registry
from recipe_engine.errors import UserError
from recipe_engine.plan import leaf_terms
from recipe_engine.schema import Recipe
from registry._lib.ranks import Ranks

__all__ = ["Ranks", "TORCHRUN_FLAGS", "check_splittable", "launch", "torchrun_command", "start", "stop", "world_from_env",
           "all_reduce_grads", "broadcast", "barrier", "any_rank", "worker_exit"]

#: ``run`` options passed through to torchrun (multi-node runs); any of them turns ``--standalone`` off
TORCHRUN_FLAGS = ("--nnodes", "--node-rank", "--rdzv-endpoint", "--rdzv-backend", "--rdzv-id", "--master-addr",
                  "--master-port", "--max-restarts")


#: the launching command line, handed to the workers for ``run.json``
COMMAND_ENV = "RECIPE_ENGINE_LAUNCH_COMMAND"
#: where rank 0 leaves its exit status for the launcher (torchrun itself only says failed or not)
EXIT_FILE_ENV = "RECIPE_ENGINE_EXIT_FILE"
#: ``runner.EXIT_INTERRUPTED``: a stopped run, which a worker reports as success to torchrun
INTERRUPTED = 3


def world_from_env() -> int:
    return int(os.environ.get("WORLD_SIZE", "1") or 1)


def check_splittable(recipe: Recipe, world: int) -> None:
    """Refuse a multi-process run (``world`` > 1) with a per-batch term whose loss is not a mean
    over its batch's examples (``Objective.batch_mean``): its per-rank parts would not sum to
    the single-process gradient.  Probe terms split their probes themselves and always pass."""
    if world <= 1:
        return
    for phase, term in leaf_terms(recipe.schedule.phases):
        cls = registry.get("objectives", term.name)
        if not cls.own_data and not cls.batch_mean:
            raise UserError(
                f"schedule phase {phase.id!r}, objective {term.name!r}: its loss is not a plain mean over the batch's "
                f"examples (e.g. a mean over the rows with a visible confound or rationale, or a nonlinearity of a "
                f"batch statistic), so splitting each batch across {world} processes would change the gradient; "
                "run this recipe with --nproc 1")


def torchrun_command(nproc: int, passthrough: dict[str, str], engine_args: Sequence[str]) -> list[str]:
    """``python -m torch.distributed.run [--standalone] --nproc-per-node N [flags] -m recipe_engine ARGS``."""
    cmd = [sys.executable, "-m", "torch.distributed.run"]
    if not passthrough:
        cmd.append("--standalone")
    cmd += [f"--nproc-per-node={nproc}", *(f"{k}={v}" for k, v in passthrough.items())]
    return cmd + ["-m", "recipe_engine", *engine_args]


def launch(nproc: int, passthrough: dict[str, str], engine_args: Sequence[str], command: str | None = None) -> int:
    """Run ``recipe-engine ENGINE_ARGS`` in ``nproc`` worker processes; their exit status.

    The workers import the same ``recipe_engine`` and ``registry`` as this process (its
    source folder goes first on ``PYTHONPATH``)."""
    root = str(Path(__file__).resolve().parents[1])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([root, *filter(None, [env.get("PYTHONPATH")])])
    env.setdefault("OMP_NUM_THREADS", "1")  # torchrun's own default, without its warning
    if command:
        env[COMMAND_ENV] = command
    fd, exit_file = tempfile.mkstemp(prefix="recipe-engine-exit-")
    os.close(fd)
    env[EXIT_FILE_ENV] = exit_file
    try:
        rc = subprocess.call(torchrun_command(nproc, passthrough, engine_args), env=env)
        text = Path(exit_file).read_text().strip()
        return int(text) if text else rc
    except KeyboardInterrupt:
        return 130
    finally:
        Path(exit_file).unlink(missing_ok=True)


def worker_exit(code: int) -> int:
    """A worker's exit status for torchrun; rank 0 also leaves ``code`` for the launcher.  An
    interrupted run (``--resume`` continues it) is not a failure to torchrun, which would
    print a traceback and, with ``--max-restarts``, start it again."""
    if world_from_env() <= 1:
        return code
    path = os.environ.get(EXIT_FILE_ENV)
    if path and os.environ.get("RANK", "0") == "0":
        Path(path).write_text(f"{code}\n")
    return 0 if code == INTERRUPTED else code


def start(device: torch.device, timeout_s: int = 1800) -> Ranks:
    """Join the process group torchrun described in the environment (``WORLD_SIZE`` > 1):
    NCCL on CUDA, gloo on CPU.  One process: ``Ranks()`` and nothing is joined."""
    world = world_from_env()
    if world <= 1:
        return Ranks()
    if not dist.is_available():
        raise UserError("WORLD_SIZE > 1 but this torch build has no torch.distributed; run with --nproc 1")
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend, timeout=timedelta(seconds=timeout_s),
                                **({"device_id": device} if device.type == "cuda" else {}))
    return Ranks(dist.get_rank(), dist.get_world_size())


def stop() -> None:
    """Leave the process group (if this process joined one)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_grads(params: Iterable[nn.Parameter], ranks: Ranks) -> None:
    """Sum ``p.grad`` over the ranks, in place (a missing gradient counts as zeros and is
    filled in, so every rank updates the same tensors); one flat buffer per dtype."""
    if not ranks.split:
        return
    by_dtype: dict[tuple[torch.dtype, torch.device], list[nn.Parameter]] = {}
    for p in params:
        if p.requires_grad:
            by_dtype.setdefault((p.dtype, p.device), []).append(p)
    for group in by_dtype.values():
        for p in group:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        flat = torch.cat([p.grad.reshape(-1) for p in group])
        dist.all_reduce(flat, op=dist.ReduceOp.SUM)
        offset = 0
        for p in group:
            n = p.numel()
            p.grad.copy_(flat[offset:offset + n].view_as(p.grad))
            offset += n


def broadcast(value: Any, ranks: Ranks) -> Any:
    """Rank 0's ``value`` (a small picklable object: a path, a flag) on every rank."""
    if not ranks.split:
        return value
    box = [value if ranks.main else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier(ranks: Ranks) -> None:
    if ranks.split:
        dist.barrier()


def any_rank(flag: bool, ranks: Ranks, device: torch.device) -> bool:
    """True on every rank when ``flag`` is true on any (e.g. a stop request one rank caught)."""
    if not ranks.split:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())
