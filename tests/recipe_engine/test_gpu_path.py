"""The GPU path: pinned non-blocking batch copies, ``runtime.compile`` for first-order
segments only, bf16 autocast that leaves the influence math in float64.  Tests marked ``gpu``
skip without CUDA (tests/conftest.py); the others check the CPU-visible parts."""
from __future__ import annotations

import json
import math
from types import SimpleNamespace

import pytest
import torch

import registry
from recipe_engine.cli import main
from recipe_engine.resolve import resolve
from recipe_engine.train import autocast_for, segment_model, to_device
from tests.recipe_engine.tiny_run import write_data, write_recipe
from tests.registry._lib.fakes import balanced_data, context, tiny_classifier


def test_runtime_compile_is_not_part_of_the_method(tmp_path):
    recipe = write_recipe(tmp_path / "r.yaml", write_data(tmp_path))
    plain, compiled = resolve(recipe), resolve(recipe, ["runtime.compile=true"])
    assert plain.recipe.runtime.compile is False and compiled.recipe.runtime.compile is True
    assert plain.fingerprint == compiled.fingerprint


def test_compiled_model_only_for_first_order_segments():
    model, fast = object(), object()
    run = SimpleNamespace(model=model, compiled=fast)
    ce = registry.build("objectives", "cross_entropy", {})
    emb = registry.build("objectives", "embedding_tuning", {})
    inf = registry.build("objectives", "influence_tuning", {})
    assert segment_model(run, [(None, ce), (None, emb)]) is fast
    assert segment_model(run, [(None, ce), (None, inf)]) is model  # double backward stays eager
    assert segment_model(SimpleNamespace(model=model, compiled=None), [(None, ce)]) is model
    assert not ce.second_order and inf.second_order
    assert registry.get("objectives", "ig_variance").second_order


def test_to_device_on_cpu_is_a_plain_copy():
    batch = balanced_data(2).batch(torch.arange(3))
    moved = to_device(batch, torch.device("cpu"))
    assert torch.equal(moved.input_ids, batch.input_ids) and moved.index.tolist() == [0, 1, 2]


@pytest.mark.gpu
def test_batches_go_to_the_gpu_from_pinned_memory():
    batch = balanced_data(2).batch(torch.arange(5))
    pinned = batch.pin_memory()
    assert pinned.input_ids.is_pinned() and pinned.labels.is_pinned()
    moved = to_device(batch, torch.device("cuda"))
    torch.cuda.synchronize()
    assert moved.input_ids.is_cuda and torch.equal(moved.input_ids.cpu(), batch.input_ids)
    assert torch.equal(moved.confound.cpu(), batch.confound)


@pytest.mark.gpu
def test_influence_math_stays_float64_under_bf16_autocast():
    device = torch.device("cuda")
    model = tiny_classifier(dtype=torch.float32).to(device)
    data = balanced_data(4)
    ctx = context(model, data)
    ctx.device = device
    obj = registry.build("objectives", "influence_tuning", {"probes": 4, "k": 2, "probe_batch": 4})
    obj.bind(ctx)
    obj.start_round()
    batch = next(iter(obj.batches(0))).to(device)
    with autocast_for(device, "bf16")():
        J = obj.loss(model, batch)
    assert J.dtype == torch.float64 and math.isfinite(float(J.detach()))
    J.backward()
    assert all(p.grad is None or torch.isfinite(p.grad).all() for p in model.parameters())


@pytest.mark.gpu
@pytest.mark.slow
def test_tiny_run_on_the_gpu_with_bf16_and_compile(tmp_path):
    recipe = write_recipe(tmp_path / "r.yaml", write_data(tmp_path), seeds=(1,), epochs=1)
    code = main(["run", str(recipe), "--out", str(tmp_path / "o"), "runtime.device=cuda", "runtime.precision=bf16",
                 "runtime.compile=true"])
    assert code == 0
    run = next((tmp_path / "o" / "tiny-e2e").iterdir())
    assert (run / ".complete").is_file()
    env = json.loads((run / "run.json").read_text())["environment"]
    assert env["device"].startswith("cuda") and env["world_size"] == 1
    metrics = json.loads((run / "seed-1" / "eval" / "metrics.json").read_text())["metrics"]
    assert all(math.isfinite(v) for v in metrics.values())
