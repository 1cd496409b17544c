import csv
import io
import json
import math

import pytest
import yaml

from recipe_engine.cli import main
from recipe_engine.compare import expand
from recipe_engine.studies import combo_label, load_study, select_best, short_keys

SEEDS = [2021, 2022, 2023]
# test/accuracy of three methods x three seeds (the shape of the paper's Table 2)
ACC = {
    "finetune": [76.4, 75.2, 77.0],
    "influence": [81.2, 79.9, 82.6],
    "no-spurious": [84.1, 85.3, 84.8],
}
CID = {"finetune": [0.093, 0.090, 0.097], "influence": [0.035, 0.031, 0.040], "no-spurious": [0.019, 0.021, 0.018]}


def write_run(root, name, per_seed, select="dev/accuracy", fingerprint="f" * 64):
    run = root / name / f"20240101-000000-{fingerprint[:8]}"
    run.mkdir(parents=True)
    (run / "resolved.yaml").write_text(yaml.safe_dump({"name": name, "evaluation": {"select": select}}))
    (run / "run.json").write_text(json.dumps({"fingerprint": fingerprint, "seeds": sorted(per_seed)}))
    (run / "summary.json").write_text(json.dumps({
        "meta": {"recipe": name, "fingerprint": fingerprint},
        "seeds": sorted(per_seed),
        "per_seed": {str(s): m for s, m in per_seed.items()},
    }))
    return run


def three_methods(tmp_path):
    runs = []
    for name in ACC:
        per_seed = {s: {"test/accuracy": a, "dev/accuracy": a + 1, "train/cid": c}
                    for s, a, c in zip(SEEDS, ACC[name], CID[name])}
        runs.append(write_run(tmp_path, name, per_seed))
    return runs


# ---------------------------------------------------------------- Welch by formula
def t_pdf(x, df):
    log_c = math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(df * math.pi)
    return math.exp(log_c - (df + 1) / 2 * math.log1p(x * x / df))


def welch_p_by_formula(a, b):
    na, nb = len(a), len(b)
    ma, mb = sum(a) / na, sum(b) / nb
    qa = sum((x - ma) ** 2 for x in a) / (na - 1) / na
    qb = sum((x - mb) ** 2 for x in b) / (nb - 1) / nb
    t = (mb - ma) / math.sqrt(qa + qb)
    df = (qa + qb) ** 2 / (qa ** 2 / (na - 1) + qb ** 2 / (nb - 1))
    return 2 * upper_tail(abs(t), df)


def upper_tail(t0, df, n=200_000):
    """P(T > t0) by Simpson's rule over u in [0, 1) with x = t0 + u / (1 - u): no scipy."""
    h = 1.0 / n

    def g(u):
        return 0.0 if u >= 1.0 else t_pdf(t0 + u / (1 - u), df) / (1 - u) ** 2

    total = g(0.0) + g(1.0) + sum((4 if i % 2 else 2) * g(i * h) for i in range(1, n))
    return total * h / 3


def test_three_methods_p_values_match_welch_by_formula(tmp_path, capsys):
    runs = three_methods(tmp_path)
    assert main(["compare", *map(str, runs), "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["baseline"] == "finetune" and out["test"] == "welch"
    assert out["metrics"] == ["test/accuracy", "train/cid"]
    rows = {r["label"]: r for r in out["rows"]}
    assert rows["finetune"]["metrics"]["test/accuracy"]["test"] is None
    for name in ("influence", "no-spurious"):
        for key, data in (("test/accuracy", ACC), ("train/cid", CID)):
            got = rows[name]["metrics"][key]["test"]["p"]
            assert got == pytest.approx(welch_p_by_formula(data["finetune"], data[name]), rel=1e-8)
        m = rows[name]["metrics"]["test/accuracy"]
        assert m["mean"] == pytest.approx(sum(ACC[name]) / 3)
        assert m["sd"] == pytest.approx(math.sqrt(sum((x - m["mean"]) ** 2 for x in ACC[name]) / 2))


def test_text_table_layout(tmp_path, capsys):
    runs = three_methods(tmp_path)
    assert main(["compare", *map(str, runs)]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split() [:4] == ["method", "seeds", "test/accuracy", "(mean"]
    assert "p vs finetune" in lines[0]
    p_inf = welch_p_by_formula(ACC["finetune"], ACC["influence"])
    row = next(line for line in lines if line.startswith("influence"))
    assert "81.23 ± 1.35" in row and f"{p_inf:.4f}" in row
    base = next(line for line in lines if line.startswith("finetune"))
    assert "baseline" in base
    assert "two-sided Welch t-test over seeds against the baseline 'finetune'" in out


def test_baseline_metrics_and_formats(tmp_path, capsys):
    runs = three_methods(tmp_path)
    assert main(["compare", *map(str, runs), "--baseline", "no-spurious", "--metrics", "accuracy", "--format", "csv"]) == 0
    table = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [r["method"] for r in table] == ["finetune", "influence", "no-spurious"]
    assert [r["baseline"] for r in table] == ["0", "0", "1"]
    assert "test/accuracy:p" in table[0] and "dev/accuracy:p" in table[0]  # 'accuracy' matches every split
    assert float(table[0]["test/accuracy:p"]) == pytest.approx(
        welch_p_by_formula(ACC["no-spurious"], ACC["finetune"]), rel=1e-8)
    assert float(table[0]["test/accuracy:diff"]) == pytest.approx(sum(ACC["finetune"]) / 3 - sum(ACC["no-spurious"]) / 3)

    assert main(["compare", *map(str, runs), "--format", "markdown", "--metrics", "test/accuracy"]) == 0
    md = capsys.readouterr().out
    assert md.startswith("| method | seeds | test/accuracy (mean ± sd) | p vs finetune |\n|---|---|---|---|\n")


def test_paired_and_bootstrap(tmp_path, capsys):
    runs = three_methods(tmp_path)
    assert main(["compare", str(runs[0]), str(runs[1]), "--test", "paired", "--format", "json",
                 "--metrics", "test/accuracy"]) == 0
    row = json.loads(capsys.readouterr().out)["rows"][1]["metrics"]["test/accuracy"]["test"]
    d = [b - a for a, b in zip(ACC["finetune"], ACC["influence"])]
    from scipy import stats

    assert row["name"] == "paired" and row["df"] == 2
    assert row["p"] == pytest.approx(stats.ttest_rel(ACC["influence"], ACC["finetune"]).pvalue, rel=1e-10)
    assert row["diff"] == pytest.approx(sum(d) / 3)

    args = ["compare", str(runs[0]), str(runs[1]), "--test", "bootstrap", "--format", "json", "--resamples", "500"]
    assert main(args) == 0
    first = capsys.readouterr().out
    assert main(args) == 0
    assert capsys.readouterr().out == first  # seeded


def test_paired_needs_the_same_seeds(tmp_path, capsys):
    a = write_run(tmp_path, "a", {1: {"test/accuracy": 1.0}, 2: {"test/accuracy": 2.0}})
    b = write_run(tmp_path, "b", {1: {"test/accuracy": 1.5}, 3: {"test/accuracy": 2.5}})
    assert main(["compare", str(a), str(b), "--test", "paired"]) == 2
    err = capsys.readouterr().err
    assert "--test paired needs the same seeds in both runs" in err and "use --test welch" in err


def test_user_errors(tmp_path, capsys):
    runs = three_methods(tmp_path)
    assert main(["compare", str(runs[0]), "--metrics", "test/acuracy"]) == 2
    assert "did you mean 'test/accuracy'?" in capsys.readouterr().err
    assert main(["compare", str(runs[0]), "--baseline", "nope"]) == 2
    assert "--baseline 'nope' is not one of the compared runs" in capsys.readouterr().err
    assert main(["compare", str(tmp_path / "missing")]) == 2
    assert "no such folder" in capsys.readouterr().err
    empty = tmp_path / "x" / "run"
    empty.mkdir(parents=True)
    (empty / "run.json").write_text("{}")
    assert main(["compare", str(empty)]) == 2
    assert "the run has no results yet" in capsys.readouterr().err


def test_results_from_seed_folders_without_summary(tmp_path):
    run = write_run(tmp_path, "partial", {})
    (run / "summary.json").unlink()
    for seed, acc in ((1, 70.0), (2, 72.0)):
        (run / f"seed-{seed}" / "eval").mkdir(parents=True)
        (run / f"seed-{seed}" / "eval" / "metrics.json").write_text(
            json.dumps({"seed": seed, "metrics": {"test/accuracy": acc}}))
    rows, _ = expand([run])
    assert rows[0].per_seed == {1: {"test/accuracy": 70.0}, 2: {"test/accuracy": 72.0}}


def write_study(root, dev_means, select="dev/accuracy"):
    study = root / "influence" / "20240101-000000-study"
    study.mkdir(parents=True)
    children = []
    for i, (lr, dev) in enumerate(dev_means.items()):
        per_seed = {s: {"dev/accuracy": dev + 0.1 * k, "test/accuracy": 70 + i + 0.5 * k} for k, s in enumerate(SEEDS)}
        run = write_run(study, "influence", per_seed, select=select, fingerprint=f"{i}" * 64)
        children.append({"combo": {"optimizer.params.lr": lr}, "overrides": [f"optimizer.params.lr={lr}"],
                         "run_dir": str(run.relative_to(study)), "status": "complete"})
    (study / "study.json").write_text(json.dumps({"name": "influence", "grid": {"optimizer.params.lr": list(dev_means)},
                                                  "select": select, "children": children}))
    return study


def test_study_alone_lists_children_and_marks_selection(tmp_path, capsys):
    study = write_study(tmp_path, {"1e-5": 80.0, "3e-5": 83.0, "5e-5": 81.0})
    s = load_study(study)
    assert s.best == 1 and s.children[1].label == "lr=3e-5"
    assert main(["compare", str(study)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split() == ["method", "seeds", "dev/accuracy", "(mean", "±", "sd)", "p", "vs", "lr=1e-5",
                                           "test/accuracy", "(mean", "±", "sd)", "p", "vs", "lr=1e-5"]
    assert "lr=3e-5 *" in out
    assert "* influence: child 'lr=3e-5' selected by dev/accuracy (higher is better)" in out


def test_study_among_runs_contributes_its_selected_child(tmp_path, capsys):
    runs = three_methods(tmp_path)
    study = write_study(tmp_path / "studies", {"1e-5": 80.0, "3e-5": 79.0})
    assert main(["compare", str(runs[0]), str(study), "--format", "json", "--metrics", "test/accuracy"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [r["label"] for r in out["rows"]] == ["finetune", "influence [lr=1e-5]"]
    assert out["rows"][1]["metrics"]["test/accuracy"]["mean"] == pytest.approx(70.5)  # child 0's test accuracy
    assert "best of 2 children by dev/accuracy" in out["notes"][0]


def test_short_combo_labels():
    keys = ["optimizer.params.lr", "schedule.phases.influence.optimizer.params.lr", "data.batch_size"]
    assert short_keys(keys) == {"optimizer.params.lr": "optimizer.params.lr",
                                "schedule.phases.influence.optimizer.params.lr": "influence.optimizer.params.lr",
                                "data.batch_size": "batch_size"}
    assert combo_label({"data.batch_size": 8, "optimizer.params.lr": "1e-5"}) == "batch_size=8,lr=1e-5"


def test_lower_is_better_selection(tmp_path):
    a = write_run(tmp_path, "a", {1: {"dev/ece": 5.0}})
    b = write_run(tmp_path, "b", {1: {"dev/ece": 3.0}})
    rows, _ = expand([a, b])
    assert select_best(rows, "dev/ece") == 1
    assert select_best(rows, "dev/accuracy") is None
