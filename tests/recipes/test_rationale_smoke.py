"""The SNIPS rationale recipes run end to end (tiny random BERT, 4 epochs of 5-shot, one seed)."""
import json
from pathlib import Path

import pytest

from recipe_engine.cli import main

ROOT = Path(__file__).resolve().parents[2]
TINY = ["model.name=tiny_bert", "schedule.length.epochs=4", "runtime.progress=false", "--seeds", "55"]


@pytest.mark.slow
@pytest.mark.parametrize("recipe,extra", [("snips_finetune", []), ("snips_margin_erasure", ["schedule.phases.warmup.for.epochs=2"])])
def test_recipe_smoke_run(recipe, extra, tmp_path, capsys, shared_root):
    path = ROOT / "recipes" / "rationale" / f"{recipe}.yaml"
    assert main(["run", str(path), *TINY, *extra, "--out", str(tmp_path)]) == 0
    err = capsys.readouterr().err
    assert "data: snips train: 5 of 35 examples have no rationale word" in err
    run = next(next(tmp_path.iterdir()).iterdir())
    metrics = json.loads((run / "seed-55" / "eval" / "metrics.json").read_text())["metrics"]
    assert {"dev/accuracy", "test/accuracy", "test/accuracy/GetWeather", "dev/accuracy/SearchScreeningEvent"} <= set(metrics)
    train = [json.loads(x) for x in (run / "seed-55" / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in train if r["event"] == "train"]
    margin = [r for r in train if r.get("phase") == "margin"]
    if recipe == "snips_margin_erasure":
        assert margin and all("loss/rationale_erasure" in r and r["weight/rationale_erasure"] == 0.5 for r in margin)
        assert all(r["rationale_erasure/used"] + r["rationale_erasure/dropped_zero"] + r["rationale_erasure/skipped"] > 0
                   for r in margin)
    else:
        assert not margin and all("loss/rationale_erasure" not in r for r in train)


@pytest.mark.slow
def test_extractor_recipe_smoke_run(tmp_path, capsys, shared_root):
    """UIMER-DM: 2 warm-up epochs, then 1 round of extractor + model (tiny_bert, 4 epochs)."""
    path = ROOT / "recipes" / "rationale" / "snips_margin_extractor.yaml"
    args = ["model.name=tiny_bert", "schedule.length.epochs=4", "schedule.phases.warmup.for.epochs=2",
            "runtime.progress=false", "runtime.log_every=1", "--seeds", "55"]
    assert main(["run", str(path), *args, "--out", str(tmp_path)]) == 0
    run = next(next(tmp_path.iterdir()).iterdir())
    metrics = json.loads((run / "seed-55" / "eval" / "metrics.json").read_text())["metrics"]
    assert {"dev/accuracy", "test/accuracy"} <= set(metrics)
    train = [json.loads(x) for x in (run / "seed-55" / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in train if r["event"] == "train"]
    assert [r["phase"] for r in train] == ["warmup"] * 4 + ["rounds[0]/extractor"] * 2 + ["rounds[0]/model"] * 2
    extract, model = train[4:6], train[6:]
    assert all(set(r) >= {"rationale_extractor/kl", "rationale_extractor/expected_l0", "rationale_extractor/multiplier"}
               for r in extract)
    assert all(r["weight/align"] == 10.0 for r in model)
    assert sorted(r["align/used"] + r["align/skipped"] for r in model) == [11, 24]  # 35 examples, batch 24
    assert all(r["loss"] == pytest.approx(r["loss/cross_entropy"] + r["loss/align"], rel=1e-5, abs=1e-7) for r in model)
    saved = __import__("torch").load(run / "seed-55" / "checkpoints" / "last.pt", weights_only=True)
    assert {k.split(".")[0] for k in saved["extras"]} == {"shared__rationale_extractor__extractor"}


@pytest.mark.slow
def test_gradient_margin_recipe_smoke_run(tmp_path, capsys, shared_root):
    """UIMER-GB generalised: 2 warm-up epochs, then CE + rationale_margin on differentiable saliency."""
    path = ROOT / "recipes" / "rationale" / "snips_margin_gradient.yaml"
    args = [*TINY, "schedule.phases.warmup.for.epochs=2", "runtime.log_every=1"]
    assert main(["run", str(path), *args, "--out", str(tmp_path)]) == 0
    run = next(next(tmp_path.iterdir()).iterdir())
    metrics = json.loads((run / "seed-55" / "eval" / "metrics.json").read_text())["metrics"]
    assert {"dev/accuracy", "dev/rationale_auprc", "dev/rationale_f1", "test/rationale_auprc"} <= set(metrics)
    assert 0 < metrics["test/rationale_auprc"] <= 1
    train = [json.loads(x) for x in (run / "seed-55" / "metrics.jsonl").read_text().splitlines()]
    margin = [r for r in train if r["event"] == "train" and r.get("phase") == "margin"]
    assert margin and all(r["loss/rationale_margin"] >= 0 for r in margin)
    assert sorted(r["rationale_margin/used"] + r["rationale_margin/skipped"] + r["rationale_margin/no_other"]
                  for r in margin) == [11, 11, 24, 24]  # 35 examples, batch 24, 2 epochs
    assert all(r["loss"] == pytest.approx(r["loss/cross_entropy"] + r["loss/rationale_margin"], rel=1e-5, abs=1e-7)
               for r in margin)


@pytest.mark.slow
@pytest.mark.parametrize("recipe", ["esnli_finetune", "esnli_margin_erasure"])
def test_esnli_recipe_smoke_run(recipe, tmp_path, capsys, shared_root):
    path = ROOT / "recipes" / "rationale" / f"{recipe}.yaml"
    args = ["model.name=tiny_bert", "data.params.shots=4", "data.params.eval_size=24", "data.batch_size=4",
            "schedule.length.epochs=4", "runtime.progress=false", "--seeds", "55"]
    if recipe == "esnli_margin_erasure":
        args.append("schedule.phases.warmup.for.epochs=2")
    assert main(["run", str(path), *args, "--out", str(tmp_path)]) == 0
    run = next(next(tmp_path.iterdir()).iterdir())
    metrics = json.loads((run / "seed-55" / "eval" / "metrics.json").read_text())["metrics"]
    assert {"dev/accuracy", "test/accuracy", "highlights/accuracy", "highlights/rationale_auprc",
            "highlights/rationale_f1"} <= set(metrics)
    assert "dev/rationale_auprc" not in metrics  # SNLI dev has no rationales
    train = [json.loads(x) for x in (run / "seed-55" / "metrics.jsonl").read_text().splitlines()]
    margin = [r for r in train if r["event"] == "train" and r.get("phase") == "margin"]
    if recipe == "esnli_margin_erasure":
        assert margin and all("loss/rationale_erasure" in r for r in margin)
    else:
        assert not margin
