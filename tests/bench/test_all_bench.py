"""bench/all.py: the last-line JSON of each benchmark, the ratio table, and a quick smoke run
(one small benchmark and two scaling points, each in its own subprocess)."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def bench_all(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    spec = importlib.util.spec_from_file_location("bench_all", ROOT / "bench" / "all.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_last_json_is_the_last_object_line(bench_all):
    assert bench_all.last_json('progress\n{"a": 1}\ntable\n{"b": 2}\ntrailing text\n') == {"b": 2}
    assert bench_all.last_json("[1, 2]\nno json here") is None


def test_ratio_rows_name_each_ratio_and_say_why_a_bench_has_none(bench_all):
    rows = bench_all.ratio_rows({
        "cid": {"status": "ok", "ratios": {"CID: per-example loop / ours (time)": 12.345}},
        "attributions": {"status": "skipped: captum is not installed", "ratios": {}},
    })
    assert rows == [["cid", "CID: per-example loop / ours (time)", "12.3"],
                    ["attributions", "skipped: captum is not installed", "-"]]


def test_unknown_benchmark_is_a_usage_error(bench_all, capsys):
    with pytest.raises(SystemExit):
        bench_all.main(["--only", "nope"])
    assert "unknown benchmark(s) nope" in capsys.readouterr().err


@pytest.mark.slow
def test_quick_run_writes_one_json_with_ratios_and_scaling(bench_all, monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(bench_all, "SCALING_QUICK", [(1, 1, "all"), (2, 1, "head")])
    out = tmp_path / "all.json"
    assert bench_all.main(["--quick", "--only", "ce_overhead", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "engine epoch / bare PyTorch loop (time)" in printed and "influence step scaling" in printed
    record = json.loads(out.read_text())
    ce = record["benchmarks"]["ce_overhead"]
    assert ce["status"] == "ok" and ce["result"]["ratio"] > 0
    assert ce["ratios"] == {"engine epoch / bare PyTorch loop (time)": ce["result"]["ratio"]}
    first, head = record["influence_scaling"]
    assert (first["probes"], first["k"], first["rows"]) == (1, 1, 3) and (head["rows"], head["parameters"]) == (6, "head")
    assert first["seconds"] > 0 and first["peak_mib"] >= 0
    assert head["parameter_count"] < first["parameter_count"]  # the head is a subset of all parameters
