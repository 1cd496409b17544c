"""evaluation.attributions: the recipe section, attributions.json after the final evaluation, the
report's heat maps, and the attribution_variance metric in a run (a test-only attribution,
``tests/registry/_lib/fakes.GradXInput``, stands in for the built-in ones)."""
import json
import re
from pathlib import Path

import pytest

from recipe_engine.cli import main
from recipe_engine.errors import RecipeErrors
from recipe_engine.report import run_report_html
from recipe_engine.resolve import resolve
from recipe_engine.runs import load_attributions
from tests.recipe_engine.tiny_run import write_data, write_recipe
from tests.registry._lib.fakes import registered_attribution  # noqa: F401

METRICS_LINE = "  metrics: [{name: accuracy}, {name: group_accuracy}, {name: calibration}]\n"


def with_evaluation(path: Path, lines: str) -> Path:
    """The tiny recipe with ``lines`` added to its evaluation section."""
    text = path.read_text()
    assert METRICS_LINE in text
    path.write_text(text.replace(METRICS_LINE, METRICS_LINE + lines))
    return path


def errors_of(path: Path) -> list[str]:
    with pytest.raises(RecipeErrors) as exc:
        resolve(path)
    return [e.render() for e in exc.value.errors]


def test_section_defaults_and_checks(tmp_path, registered_attribution):
    data = write_data(tmp_path)
    ok = with_evaluation(write_recipe(tmp_path / "ok.yaml", data), f"  attributions: {{name: {registered_attribution}}}\n")
    dump = resolve(ok).recipe.evaluation.attributions
    assert (dump.name, dump.examples, dump.splits, dump.params.scale) == (registered_attribution, 8, None, 1.0)
    assert resolve(write_recipe(tmp_path / "none.yaml", data)).recipe.evaluation.attributions is None

    bad = with_evaluation(write_recipe(tmp_path / "bad.yaml", data), "  attributions:\n    name: test_grad_x_inptu\n")
    errs = errors_of(bad)
    assert len(errs) == 1 and re.search(r"bad.yaml:\d+:\d+: evaluation.attributions.name: unknown attribution "
                                        r"'test_grad_x_inptu'; did you mean 'test_grad_x_input'\?; registered: (.*, )?test_grad_x_input",
                                        errs[0]), errs
    typo = with_evaluation(write_recipe(tmp_path / "typo.yaml", data),
                           f"  attributions:\n    name: {registered_attribution}\n    exampels: 3\n")
    errs = errors_of(typo)
    assert len(errs) == 1 and "evaluation.attributions.exampels: unknown key 'exampels'" in errs[0]
    assert "did you mean 'examples'" in errs[0]

    split = with_evaluation(write_recipe(tmp_path / "split.yaml", data),
                            f"  attributions: {{name: {registered_attribution}, params: {{scale: 2}}, splits: [dev, tets]}}\n")
    errs = errors_of(split)
    assert len(errs) == 1 and "evaluation.attributions.splits.1: 'tets' is not an evaluation split" in errs[0]
    assert "(did you mean 'test'?)" in errs[0]


def test_metric_attribution_is_validated_in_the_recipe(tmp_path, registered_attribution):
    recipe = write_recipe(tmp_path / "m.yaml", write_data(tmp_path))
    text = recipe.read_text().replace(METRICS_LINE, "  metrics: [{name: attribution_variance, params: {attribution: "
                                                    "{name: test_grad_x_inpt}}}]\n")
    recipe.write_text(text)
    errs = errors_of(recipe)
    assert len(errs) == 1 and "evaluation.metrics.attribution_variance.params.attribution: unknown attribution 'test_grad_x_inpt'; " \
                              "did you mean 'test_grad_x_input'?" in errs[0]


@pytest.mark.slow
def test_run_saves_attributions_reports_them_and_the_variance_metric(tmp_path, registered_attribution, capsys):
    recipe = write_recipe(tmp_path / "r.yaml", write_data(tmp_path, n_train=16, n_eval=6), seeds=(3,), epochs=1)
    text = recipe.read_text().replace(
        METRICS_LINE,
        f"  metrics: [{{name: accuracy}}, {{name: roc_auc}}, {{name: attribution_variance, params: "
        f"{{attribution: {registered_attribution}, examples: 4}}}}]\n"
        f"  attributions: {{name: {registered_attribution}, examples: 3, splits: [dev]}}\n")
    recipe.write_text(text)
    assert main(["run", str(recipe), "--out", str(tmp_path / "out")]) == 0
    run = next(p for p in (tmp_path / "out" / "tiny-e2e").iterdir() if p.is_dir())
    metrics = json.loads((run / "seed-3" / "eval" / "metrics.json").read_text())["metrics"]
    for split in ("dev", "test"):
        assert metrics[f"{split}/attribution_variance"] > 0 and f"train/attribution_variance" not in metrics
        assert metrics[f"{split}/roc_auc/macro"] == pytest.approx(metrics[f"{split}/roc_auc"])

    saved = json.loads((run / "seed-3" / "eval" / "attributions.json").read_text())
    assert set(saved) == {"seed", "step", "attribution", "label_names", "splits"}
    assert saved["seed"] == 3 and saved["attribution"] == {"name": registered_attribution, "params": {"scale": 1.0}}
    assert saved["label_names"] == ["0", "1"] and list(saved["splits"]) == ["dev"]
    examples = saved["splits"]["dev"]
    assert [ex["id"] for ex in examples] == ["dev-0", "dev-1", "dev-2"] and [ex["row"] for ex in examples] == [0, 1, 2]
    for ex in examples:
        n = len(ex["tokens"])
        assert ex["tokens"][0] == "[CLS]" and ex["tokens"][-1] == "[SEP]" and "[PAD]" not in ex["tokens"]
        assert ex["special"][0] and ex["special"][-1] and not any(ex["special"][1:-1])
        assert len(ex["scores"]) == len(ex["counted"]) == n and all(ex["counted"])
        assert ex["label"] == ex["target"] and ex["prediction"] in (0, 1)  # the test attribution targets gold

    assert load_attributions(run / "seed-3").splits.keys() == {"dev"}
    html = run_report_html(run)
    assert 'id="attr-3-dev-0"' in html and 'id="attr-3-dev-2"' in html and 'id="attr-3-dev-3"' not in html
    assert html.count('class="tok special"') >= 6  # [CLS] and [SEP] of three examples, greyed
    assert "attribution test_grad_x_input" in html and "gold " in html and "predicted " in html
