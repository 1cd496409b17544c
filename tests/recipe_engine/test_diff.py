import json
from pathlib import Path

import pytest
import yaml

from recipe_engine.cli import main
from recipe_engine.diff import diff
from recipe_engine.diff.recipes import ratio, show
from recipe_engine.resolve import resolve

ROOT = Path(__file__).resolve().parents[2]
BASE = ROOT / "recipes" / "base" / "textlen.yaml"

FINETUNE = f"""extends: {BASE}
name: t-finetune
description: baseline
schedule:
  ~phases: null
  phases:
    - id: finetune
      until: end
      objectives:
        - {{name: cross_entropy}}
"""

INFLUENCE = f"""extends: {BASE}
name: t-influence
description: baseline plus an influence phase
schedule:
  ~phases: null
  phases:
    - id: influence
      for: {{steps: 5}}
      optimizer: {{name: adamw, params: {{lr: 3.0e-5}}, reset_state: true}}
      objectives:
        - {{name: cross_entropy, id: probe_ce, weight: 0.5}}
    - id: finetune
      until: end
      objectives:
        - {{name: cross_entropy}}
"""


def line_of(text: str, needle: str) -> int:
    """1-based line of the first line of ``text`` that contains ``needle``."""
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


BASE_LR = f"recipes/base/textlen.yaml:{line_of(BASE.read_text(), 'lr: 2.0e-5')} (base)"
BASE_MODEL = f"recipes/base/textlen.yaml:{line_of(BASE.read_text(), 'name: offline_minilm')} (base)"


@pytest.fixture
def recipes(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)  # provenance paths are shown relative to the cwd

    def write(name: str, text: str) -> str:
        path = tmp_path / name
        path.write_text(text)
        return str(path)

    return write


def method_lines(out: str) -> list[str]:
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("method ("))
    block = []
    for line in lines[start + 1:]:
        if not line.startswith("  ") or line.strip() == "":
            break
        block.append(line.strip())
    return block


def test_added_phase_is_one_method_change_with_provenance(recipes, capsys, shared_root):
    a = recipes("finetune.yaml", FINETUNE)
    b = recipes("influence.yaml", INFLUENCE)
    assert main(["diff", a, b]) == 1
    out = capsys.readouterr().out
    assert "the method differs: 1 change(s)" in out
    assert method_lines(out) == [
        "schedule.phases.influence: added {id: influence, for: {steps: 5}, optimizer: {name: adamw, params: "
        "{lr: 3e-05}, reset_state: true}, objectives: [{name: cross_entropy, id: probe_ce, weight: 0.5}]}"
        f"    [A: - | B: {b}:{line_of(INFLUENCE, 'id: influence')}]"
    ]
    assert "runtime (" not in out
    assert f"  name: t-finetune -> t-influence    [A: {a}:2 | B: {b}:2]" in out
    assert out.index("method (") < out.index("paths (")
    # the compiled timelines side by side: the inserted segment, and the shortened finetune
    assert "A: 24 steps/epoch, 240 train-data steps, 240 optimizer steps; B: 24 steps/epoch, 240 train-data steps, 240 optimizer steps)" in out
    timeline = [line.split() for line in out.splitlines() if line.strip().startswith(("+", "~"))]
    assert timeline[0][:4] == ["+", "influence", "5", "train"]
    assert timeline[1][:3] == ["~", "finetune", "240"] and "235" in timeline[1]


SHIPPED_FT = ROOT / "recipes" / "textlen" / "finetune.yaml"
SHIPPED_IT = ROOT / "recipes" / "textlen" / "influence_tuning.yaml"


@pytest.mark.skipif(not SHIPPED_IT.is_file(), reason="recipes/textlen/influence_tuning.yaml not written yet")
def test_shipped_finetune_vs_influence_tuning(capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    assert main(["diff", "recipes/textlen/finetune.yaml", "recipes/textlen/influence_tuning.yaml"]) == 1
    out = capsys.readouterr().out
    assert "runtime (" not in out
    lines = method_lines(out)
    assert len(lines) == 1  # only the added influence phase (with its own optimizer), no cascade
    assert lines[0].startswith("schedule.phases.train.phases.influence: added {id: influence,")
    assert "optimizer: {name: adamw" in lines[0] and "influence_tuning" in lines[0]
    assert lines[0].endswith(f"[A: - | B: recipes/textlen/influence_tuning.yaml:{line_of(SHIPPED_IT.read_text(), '- id: influence')}]")
    assert [line.split()[0] for line in out.splitlines() if line.startswith("  ") and ": " in line and " -> " in line] == [
        "name:", "description:"]


def test_number_change_shows_ratio_and_base_provenance(recipes, capsys):
    a = recipes("finetune.yaml", FINETUNE)
    b = recipes("lr.yaml", FINETUNE + "optimizer:\n  params: {lr: 3.0e-5}\n")
    assert main(["diff", a, b]) == 1
    out = capsys.readouterr().out
    assert method_lines(out) == [
        f"optimizer.params.lr: 2e-05 -> 3e-05 (x1.5)    [A: {BASE_LR} | B: {b}:{len(FINETUNE.splitlines()) + 2}]"]
    assert "timeline" not in out and "schedule" not in out


def test_same_method_copy_with_reordered_keys_and_explicit_defaults(recipes, capsys):
    a = recipes("finetune.yaml", FINETUNE)
    full = resolve(a).data

    def reverse(x):
        if isinstance(x, dict):
            return {k: reverse(x[k]) for k in reversed(list(x))}
        if isinstance(x, list):
            return [reverse(v) for v in x]
        return x

    b = recipes("copy.yaml", yaml.safe_dump(reverse(full), sort_keys=False))
    assert main(["diff", a, b]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert len(lines) == 4 and lines[3] == f"same method (fingerprint {resolve(a).fingerprint[:8]})"


def test_runtime_only_difference_is_same_method(recipes, capsys):
    a = recipes("finetune.yaml", FINETUNE)
    b = recipes("cpu.yaml", FINETUNE + "runtime: {device: cpu, output_dir: elsewhere}\n")
    assert main(["diff", a, b]) == 0
    out = capsys.readouterr().out
    assert "same method" in out and "2 difference(s) outside the method" in out
    assert f"  runtime.device: auto -> cpu    [A: default | B: {b}:{len(FINETUNE.splitlines()) + 1}]" in out
    paths = out[out.index("paths (1)"):]
    assert "runtime.output_dir: outputs -> elsewhere" in paths


def test_component_name_change_is_one_replacement(recipes, capsys):
    a = recipes("finetune.yaml", FINETUNE)
    b = recipes("tiny.yaml", FINETUNE + "model: {name: tiny_bert}\n")
    assert main(["diff", a, b, "--format", "json"]) == 1
    out = json.loads(capsys.readouterr().out)
    method = [c for c in out["changes"] if c["group"] == "method"]
    assert len(method) == 1
    change = method[0]
    assert change["kind"] == "replaced" and change["path"] == "model"
    assert change["text"].startswith("model: offline_minilm {pooling: pooler, dropout: 0.1, attention: eager} -> tiny_bert {")
    assert change["from_a"] == BASE_MODEL and change["from_b"].endswith(f"tiny.yaml:{len(FINETUNE.splitlines()) + 1}")
    assert out["same_method"] is False and out["exit_code"] == 1


def test_id_lists_match_by_identity(recipes):
    a = recipes("finetune.yaml", FINETUNE + "evaluation:\n  ~metrics: null\n  metrics: [{name: accuracy}, {name: group_accuracy}]\n")
    b = recipes("metrics.yaml", FINETUNE + "evaluation:\n  ~metrics: null\n  metrics:\n"
                "    - {name: roc_auc}\n    - {name: group_accuracy}\n    - {name: calibration, params: {bins: 10}}\n")
    res = diff(a, b)
    texts = [c.text for c in res.changes if c.group == "method"]
    assert texts[0].startswith("evaluation.metrics.accuracy: accuracy {} -> roc_auc {")  # replaced in place: one line
    assert texts[1] == "evaluation.metrics.calibration: added {name: calibration, params: {bins: 10}}"
    assert len(texts) == 2


def test_reordered_phases(recipes):
    two = f"""extends: {BASE}
name: two
schedule:
  ~phases: null
  phases:
    - {{id: first, for: 1, objectives: [{{name: cross_entropy}}]}}
    - {{id: second, for: 2, objectives: [{{name: cross_entropy}}]}}
"""
    swapped = two.replace("id: first, for: 1", "id: X").replace("id: second, for: 2", "id: first, for: 1").replace(
        "id: X", "id: second, for: 2")
    res = diff(recipes("a.yaml", two), recipes("b.yaml", swapped))
    assert [c.text for c in res.changes] == ["schedule.phases: order [first, second] -> [second, first]"]
    assert res.exit_code == 1


def test_phase_structure_when_data_is_unavailable(recipes, capsys, tmp_path):
    nodata = "runtime: {data_root: %s}\n" % (tmp_path / "no-data")
    a = recipes("finetune.yaml", FINETUNE + nodata)
    b = recipes("influence.yaml", INFLUENCE + nodata)
    assert main(["diff", a, b]) == 1
    out = capsys.readouterr().out
    assert "schedule as phases (data unavailable (" in out
    assert any(line.split()[:4] == ["+", "influence", "5", "steps"] for line in out.splitlines())


def test_errors_exit_2(recipes, capsys, tmp_path):
    a = recipes("finetune.yaml", FINETUNE)
    assert main(["diff", a, str(tmp_path / "nope.yaml")]) == 2
    assert "no such recipe file or run folder" in capsys.readouterr().err
    bad = recipes("bad.yaml", FINETUNE + "optimizer: {params: {lr: -1}}\n")
    assert main(["diff", a, bad]) == 2
    assert f"bad.yaml:{len(FINETUNE.splitlines()) + 1}" in capsys.readouterr().err


def test_markdown(recipes, capsys):
    a = recipes("finetune.yaml", FINETUNE)
    b = recipes("lr.yaml", FINETUNE + "optimizer:\n  params: {lr: 3.0e-5}\n")
    assert main(["diff", a, b, "--format", "markdown"]) == 1
    out = capsys.readouterr().out
    assert "## method\n\n| change | A from | B from |\n|---|---|---|\n| `optimizer.params.lr: 2e-05 -> 3e-05 (x1.5)` |" in out


def test_value_rendering():
    assert ratio(2e-5, 3e-5) == pytest.approx(1.5)
    assert ratio(0, 1) is None and ratio(True, False) is None and ratio("a", "b") is None
    assert show({"a": [1, 2.5, None, True], "b": "x y"}) == "{a: [1, 2.5, null, true], b: x y}"
    assert show("a: b") == '"a: b"'


# ---------------------------------------------------------------- run folders
def write_run(tmp_path, recipe_path, name, accs, env, data_sha="ab" * 32, keep_recipe=True):
    run = tmp_path / "runs" / name
    run.mkdir(parents=True)
    resolved = resolve(recipe_path)
    (run / "resolved.yaml").write_text(yaml.safe_dump(resolved.data, sort_keys=False))
    (run / "run.json").write_text(json.dumps({
        "recipe": recipe_path if keep_recipe else str(tmp_path / "gone.yaml"), "overrides": [],
        "fingerprint": resolved.fingerprint, "seeds": [1, 2, 3], "environment": env,
        "data_root": "/data", "data_hashes": {"/data/textlen/train.jsonl": data_sha, "/data/textlen/test.jsonl": "cd" * 32},
    }))
    per_seed = {str(s): {"test/accuracy": a, "dev/accuracy": a - 1} for s, a in zip([1, 2, 3], accs)}
    (run / "summary.json").write_text(json.dumps({"meta": {"recipe": name}, "seeds": [1, 2, 3], "per_seed": per_seed}))
    return run


ENV = {"git_sha": "1111111", "git_dirty": False, "device": "cpu", "world_size": 1,
       "versions": {"python": "3.11.2", "torch": "2.13.0"}}


def test_two_runs_add_environment_data_and_metrics(recipes, tmp_path, capsys):
    a = recipes("finetune.yaml", FINETUNE)
    b = recipes("lr.yaml", FINETUNE + "optimizer:\n  params: {lr: 3.0e-5}\n")
    ra = write_run(tmp_path, a, "A", [76.0, 77.0, 75.5], ENV)
    rb = write_run(tmp_path, b, "B", [80.0, 81.5, 79.0], {**ENV, "git_sha": "2222222", "device": "cuda:0", "world_size": 2},
                   data_sha="ef" * 32, keep_recipe=False)
    assert main(["diff", str(ra), str(rb)]) == 1
    out = capsys.readouterr().out
    # A's provenance comes from its still-unchanged recipe, B's from the frozen resolved.yaml
    line = next(x for x in out.splitlines() if "optimizer.params.lr" in x)
    assert f"[A: {BASE_LR} | B: {rb}/resolved.yaml:" in line
    env = out[out.index("environment"):out.index("data hashes")]
    assert "≠  git SHA     1111111  2222222" in env and "≠  world size  1        2" in env
    assert "   torch       2.13.0   2.13.0" in env
    data = out[out.index("data hashes"):out.index("metrics (")]
    assert "≠  textlen/train.jsonl  abababababab  efefefefefef  differs" in data
    assert "textlen/test.jsonl" in data and "same" in data
    from scipy import stats

    p = stats.ttest_ind([80.0, 81.5, 79.0], [76.0, 77.0, 75.5], equal_var=False).pvalue
    row = next(x for x in out.splitlines() if x.strip().startswith("test/accuracy"))
    assert row.split() == ["test/accuracy", "76.17", "±", "0.76", "80.17", "±", "1.26", "+4.00", f"{p:.4f}"]


def test_run_against_its_own_recipe_is_same_method(recipes, tmp_path, capsys):
    a = recipes("finetune.yaml", FINETUNE)
    ra = write_run(tmp_path, a, "A", [76.0, 77.0, 75.5], ENV)
    assert main(["diff", str(ra), a, "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["same_method"] and out["changes"] == [] and out["a"]["kind"] == "run"


def test_batch_size_change_shows_the_longer_timeline(recipes, capsys, shared_root):  # timelines need the data size
    a = recipes("finetune.yaml", FINETUNE)
    b = recipes("b32.yaml", FINETUNE + "data: {batch_size: 32}\n")
    assert main(["diff", a, b]) == 1
    out = capsys.readouterr().out
    assert method_lines(out)[0].startswith("data.batch_size: 64 -> 32 (x0.5)")
    assert "A: 24 steps/epoch, 240 train-data steps, 240 optimizer steps; B: 47 steps/epoch, 470 train-data steps" in out
    (row,) = [line.split() for line in out.splitlines() if line.strip().startswith("~")]
    assert row[:3] == ["~", "finetune", "240"] and row[6:8] == ["finetune", "470"]


def test_max_length_change_has_no_timeline(recipes, capsys):
    a = recipes("finetune.yaml", FINETUNE)
    b = recipes("len.yaml", FINETUNE + "data: {max_length: 32}\n")
    assert main(["diff", a, b]) == 1
    out = capsys.readouterr().out
    assert method_lines(out) == [f"data.max_length: 64 -> 32 (x0.5)    [A: {BASE.relative_to(ROOT)}:"
                                 f"{line_of(BASE.read_text(), 'max_length: 64')} (base) | B: {b}:{len(FINETUNE.splitlines()) + 1}]"]
    assert "schedule" not in out
