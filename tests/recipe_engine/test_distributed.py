"""One run over several processes (recipe_engine.distributed): a two-process gloo run through
the real CLI equals a one-process run with the same global batch, and the all-reduced grad J
of an influence round split over two ranks equals the single-process grad J."""
from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

import registry
from recipe_engine import distributed
from recipe_engine.cli import main, worker_args
from recipe_engine.train import my_share, summed_parts, term_losses
from registry._lib.ranks import Ranks
from recipe_engine.resolve import resolve
from registry.errors import UserError
from tests.recipe_engine.tiny_run import write_data, write_recipe
from tests.registry._lib.fakes import balanced_data, context, tiny_classifier

# ---------------------------------------------------------------- one process: the helpers are the identity


def test_ranks_parts_are_contiguous_and_cover_everything():
    items = torch.arange(7)
    parts = [Ranks(r, 3).part(items) for r in range(3)]
    assert [p.tolist() for p in parts] == [[0, 1, 2], [3, 4], [5, 6]]
    one = Ranks()
    assert not one.split and one.main and one.part(items) is items
    t = torch.ones(2)
    assert one.sum(t) is t and one.gather(t) is t


def test_my_share_weights_each_rank_by_its_examples():
    data = balanced_data(2)  # 8 examples
    batch = data.batch(torch.tensor([5, 1, 7]))  # a last batch that does not split evenly
    (b0, w0), (b1, w1) = my_share(batch, Ranks(0, 2)), my_share(batch, Ranks(1, 2))
    assert b0.index.tolist() == [5, 1] and b1.index.tolist() == [7]
    assert (w0, w1) == (2 / 3, 1 / 3)
    assert my_share(batch, Ranks()) == (batch, 1.0)
    (b3, w3) = my_share(data.batch(torch.tensor([4])), Ranks(1, 2))
    assert len(b3) == 0 and w3 == 0.0


def test_term_losses_weight_per_batch_terms_by_the_share():
    model = tiny_classifier()
    data = balanced_data(2)
    ce = registry.build("objectives", "cross_entropy", {})
    ce.bind(context(model, data))
    term = type("T", (), {"id": "ce", "weight": 1.0, "own_data": False})()
    batch = data.batch(torch.arange(4))
    full = term_losses([(term, ce)], model, batch, {}, 0)["ce"]
    halves = [term_losses([(term, ce)], model, b, {}, 0, w)["ce"] for b, w in (my_share(batch, Ranks(r, 2)) for r in range(2))]
    assert torch.allclose(halves[0] + halves[1], full, atol=1e-12, rtol=0)
    empty = term_losses([(term, ce)], model, data.batch(torch.arange(0)), {}, 0, 0.0)["ce"]
    assert float(empty.detach()) == 0.0 and empty.requires_grad  # takes part in the backward like the others
    parts = {"ce": full}
    assert summed_parts(parts, Ranks()) is parts


def test_worker_args_drop_the_launcher_flags():
    argv = ["run", "r.yaml", "--nproc", "2", "a.b=1", "--nnodes=2", "--rdzv-endpoint", "h:29400", "--seeds", "1"]
    assert worker_args(argv) == ["run", "r.yaml", "a.b=1", "--seeds", "1"]


def test_torchrun_command_is_standalone_unless_given_rendezvous_flags():
    cmd = distributed.torchrun_command(2, {}, ["run", "r.yaml"])
    assert cmd[1:] == ["-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2", "-m", "recipe_engine",
                       "run", "r.yaml"]
    cmd = distributed.torchrun_command(4, {"--nnodes": "2", "--rdzv-endpoint": "h:29400"}, ["run", "r.yaml"])
    assert "--standalone" not in cmd and "--nnodes=2" in cmd and "--rdzv-endpoint=h:29400" in cmd


def test_nproc_must_be_positive_and_cannot_sweep(tmp_path, capsys):
    recipe = write_recipe(tmp_path / "r.yaml", write_data(tmp_path))
    assert main(["run", str(recipe), "--nproc", "0"]) == 2
    assert "--nproc 0: give a number of processes >= 1" in capsys.readouterr().err
    assert main(["run", str(recipe), "--nproc", "2", "--grid", "optimizer.params.lr=1e-3,2e-3"]) == 2
    assert "--grid with --nproc" in capsys.readouterr().err


# ---------------------------------------------------------------- two gloo processes through the CLI
ROUND = """
model:
  params: {dropout: 0.0}
schedule:
  unit: step
  ~length:
  length: {steps: 10}
  phases:
    - {~id: train}
    - id: alt
      repeat: until_end
      phases:
        - {id: label, for: 4, objectives: [{name: cross_entropy}]}
        - id: round
          for: {epochs: 1}
          min_remaining: 2
          optimizer: {name: adamw, params: {lr: 1.0e-3, no_decay: []}, reset_state: all}
          objectives: [{name: influence_tuning, params: {probes: 5, k: 1, probe_batch: 5}}]
evaluation:
  metrics: [{name: accuracy}, {name: calibration}, {name: cid, params: {probes: 4, candidates: 9}}]
runtime: {tensorboard: false}
"""


def test_a_term_that_is_not_a_batch_mean_is_refused_with_several_processes(tmp_path, capsys):
    recipe = write_recipe(tmp_path / "r.yaml", write_data(tmp_path), seeds=(1,))
    text = recipe.read_text().replace("objectives: [{name: cross_entropy}]", "objectives: [{name: adversarial}]")
    recipe.write_text(text)
    resolved = resolve(str(recipe), [])
    distributed.check_splittable(resolved.recipe, 1)  # one process: anything goes
    with pytest.raises(UserError, match="phase 'train', objective 'adversarial'.*--nproc 1"):
        distributed.check_splittable(resolved.recipe, 2)
    assert main(["run", str(recipe), "--nproc", "2", "--out", str(tmp_path / "out")]) == 2
    assert "objective 'adversarial'" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()  # refused before any worker or run folder


def _run(tmp_path: Path, name: str, nproc: int) -> Path:
    base = write_recipe(tmp_path / "base.yaml", write_data(tmp_path, n_train=35, n_eval=11), seeds=(3,))
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"extends: {base.name}\n" + ROUND)
    out = tmp_path / name
    assert main(["run", str(recipe), "--out", str(out), *(["--nproc", str(nproc)] if nproc > 1 else [])]) == 0
    runs = list((out / "tiny-e2e").iterdir())
    assert len(runs) == 1, runs  # exactly one run folder, named by rank 0
    return runs[0]


def _records(run: Path) -> list[dict]:
    return [json.loads(x) for x in (run / "seed-3" / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_two_process_gloo_run_equals_one_process(tmp_path):
    one, two = _run(tmp_path, "one", 1), _run(tmp_path, "two", 2)
    m1 = json.loads((one / "seed-3" / "eval" / "metrics.json").read_text())["metrics"]
    m2 = json.loads((two / "seed-3" / "eval" / "metrics.json").read_text())["metrics"]
    assert m1.keys() == m2.keys() and "train/cid" in m1 and "test/ece" in m1
    for k in m1:
        assert m2[k] == pytest.approx(m1[k], abs=1e-5), k
    r1, r2 = _records(one), _records(two)  # rank 0 alone logged, the values of one process
    assert [r["step"] for r in r1] == [r["step"] for r in r2] and any("/round" in r.get("phase", "") for r in r1)
    for a, b in zip(r1, r2):
        for k, v in a.items():
            if isinstance(v, float) and k != "time":
                assert b[k] == pytest.approx(v, abs=1e-5), (a["step"], k)
    assert (two / ".complete").is_file() and (two / "summary.json").is_file()
    assert (two / "seed-3" / "checkpoints" / "last.pt").is_file()
    assert json.loads((two / "run.json").read_text())["environment"]["world_size"] == 2
    assert "--nproc 2" in json.loads((two / "run.json").read_text())["command"]
    assert sorted(p.name for p in two.iterdir()) == sorted(p.name for p in one.iterdir())
    assert not list(two.rglob("*.tmp"))


# ---------------------------------------------------------------- an influence round split over two ranks
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _probe_grads(ranks: Ranks, name: str, params: dict) -> tuple[torch.Tensor, dict[str, float], float]:
    """grad J (summed over the ranks), the round's logs and the loss summed over ranks, for one
    probe batch of ``name`` on the fakes' float64 tiny model."""
    model = tiny_classifier(seed=1)
    data = balanced_data(4, seed=2)
    ctx = context(model, data, seed=7)
    ctx.ranks = ranks
    obj = registry.build("objectives", name, params)
    obj.bind(ctx)
    obj.start_round()
    batch = next(iter(obj.batches(0)))
    loss = obj.loss(model, batch)
    loss.backward()
    distributed.all_reduce_grads(model.parameters(), ranks)
    grads = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1) for p in model.parameters()])
    return grads, obj.logs(), float(ranks.sum(loss.detach().double().reshape(1)))


def _cid(ranks: Ranks) -> float:
    model = tiny_classifier(seed=1)
    data = balanced_data(4, seed=2)
    ctx = context(model, data, seed=7)
    ctx.ranks = ranks
    metric = registry.build("metrics", "cid", {"probes": 5, "candidates": 11})
    return metric.compute_model(model, ctx)["cid"]


CASES = {
    "influence_gram": ("influence_tuning", {"probes": 7, "k": 2, "probe_batch": 7}),
    "influence_chunked": ("influence_tuning", {"probes": 7, "k": 2, "probe_batch": 7, "chunk": 2}),
    "embedding": ("embedding_tuning", {"probes": 7, "k": 2, "probe_batch": 7}),
}


def _worker(rank: int, world: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        ranks = Ranks(rank, world)
        results = {case: _probe_grads(ranks, *spec) for case, spec in CASES.items()}
        results["cid"] = _cid(ranks)
        if rank == 0:
            torch.save(results, out)
    finally:
        dist.destroy_process_group()


def test_influence_round_split_over_two_ranks_equals_one_process(tmp_path):
    out = tmp_path / "ranks.pt"
    mp.spawn(_worker, args=(2, _free_port(), str(out)), nprocs=2, join=True)
    got = torch.load(out, weights_only=True)
    for case, spec in CASES.items():
        grads, logs, loss = _probe_grads(Ranks(), *spec)
        g2, logs2, loss2 = got[case]
        assert grads.abs().max() > 0
        assert torch.allclose(g2, grads, rtol=1e-9, atol=1e-12), (case, (g2 - grads).abs().max())
        assert loss2 == pytest.approx(loss, rel=1e-10)
        assert logs2 == pytest.approx(logs, rel=1e-9, abs=1e-12), case
    assert got["cid"] == pytest.approx(_cid(Ranks()), rel=1e-10, abs=1e-12)


@pytest.mark.slow
def test_two_process_run_stopped_and_resumed_equals_one_process(tmp_path):
    base = write_recipe(tmp_path / "base.yaml", write_data(tmp_path, n_train=35, n_eval=11), seeds=(3,))
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"extends: {base.name}\n" + ROUND)
    out = tmp_path / "two"
    assert main(["run", str(recipe), "--out", str(out), "--nproc", "2", "--max-steps", "6"]) == 3  # rank 0's status
    run = next((out / "tiny-e2e").iterdir())
    assert not (run / ".complete").exists() and (run / "seed-3" / "checkpoints" / "last.pt").is_file()
    assert main(["run", str(recipe), "--resume", str(run), "--nproc", "2"]) == 0
    assert (run / ".complete").is_file() and len(list((out / "tiny-e2e").iterdir())) == 1
    one = _run(tmp_path, "one", 1)
    m1 = json.loads((one / "seed-3" / "eval" / "metrics.json").read_text())["metrics"]
    m2 = json.loads((run / "seed-3" / "eval" / "metrics.json").read_text())["metrics"]
    for k in m1:
        assert m2[k] == pytest.approx(m1[k], abs=1e-5), k
