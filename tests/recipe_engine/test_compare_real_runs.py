"""`compare` on three methods x three seeds of real tiny-model runs (slow)."""
import json

import pytest

from recipe_engine.cli import main
from tests.recipe_engine.test_compare import welch_p_by_formula
from tests.recipe_engine.tiny_run import write_data, write_recipe

pytestmark = pytest.mark.slow

METHODS = {
    "finetune": "",
    "adversarial": """
schedule:
  phases:
    - id: train
      objectives: [{~name: cross_entropy}, {name: adversarial, params: {grl_lambda: 0.3}}]
""",
    "higher-lr": "optimizer: {params: {lr: 3.0e-3}}\n",
}


def test_compare_three_tiny_methods(tmp_path, capsys):
    write_recipe(tmp_path / "base.yaml", write_data(tmp_path, n_train=96, n_eval=48), seeds=(1, 2, 3), epochs=6)
    runs = {}
    for name, extra in METHODS.items():
        recipe = tmp_path / f"{name}.yaml"
        recipe.write_text(f"extends: base.yaml\nname: {name}\n" + extra)
        assert main(["run", str(recipe), "--out", str(tmp_path / "o")]) == 0
        runs[name] = next((tmp_path / "o" / name).iterdir())
    capsys.readouterr()
    assert main(["compare", *(str(runs[m]) for m in METHODS), "--metrics", "test/accuracy,dev/accuracy", "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    rows = {r["label"]: r for r in out["rows"]}
    per_seed = {m: [json.loads((runs[m] / f"seed-{s}" / "eval" / "metrics.json").read_text())["metrics"] for s in (1, 2, 3)]
                for m in METHODS}
    checked = 0
    for name in ("adversarial", "higher-lr"):
        for key in ("test/accuracy", "dev/accuracy"):
            a = [m[key] for m in per_seed["finetune"]]
            b = [m[key] for m in per_seed[name]]
            got = rows[name]["metrics"][key]["test"]
            if len(set(a)) == 1 and len(set(b)) == 1:
                continue  # no variance on either side: the t statistic is undefined
            assert got["p"] == pytest.approx(welch_p_by_formula(a, b), rel=1e-6, abs=1e-12)
            checked += 1
    assert checked >= 2, "the tiny runs should differ across seeds"
    assert main(["compare", *(str(runs[m]) for m in METHODS)]) == 0
    text = capsys.readouterr().out
    assert "finetune" in text and "adversarial" in text and "p" in text
