"""Smoke test of bench/attributions.py: tiny model, one repeat; skipped without captum."""
from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_bench_runs_tiny_and_matches_captum(monkeypatch, capsys):
    pytest.importorskip("captum")
    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    spec = importlib.util.spec_from_file_location("bench_attributions", ROOT / "bench" / "attributions.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    import torch

    threads = torch.get_num_threads()
    try:
        summary = mod.main(["--tiny", "--repeats", "1", "--nodes", "3", "--batch", "2"])
    finally:
        torch.set_num_threads(threads)
        sys.modules.pop("_common", None)
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert json.loads(last) == summary
    assert set(summary) >= {"ig_time_ratio_vs_captum", "ig_max_abs_diff_vs_captum", "ig_variance_step_over_ce",
                            "ig_variance_differentiable_step_over_ce", "ig_nodes"}
    assert summary["ig_nodes"] == 3 and summary["ig_max_abs_diff_vs_captum"] < 1e-5
