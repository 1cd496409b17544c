import json
import re
from datetime import datetime

import pytest

from recipe_engine.errors import UserError
from recipe_engine.evaluate import aggregate_seeds
from recipe_engine.runs import is_complete, mark_complete, new_run_dir, write_summary


def test_new_run_dir_never_overwrites(tmp_path):
    now = datetime(2024, 5, 6, 7, 8, 9)
    first = new_run_dir(tmp_path, "textlen-ce", "0123456789abcdef", now)
    assert first == tmp_path / "textlen-ce" / "20240506-070809-01234567"
    (first / "run.json").write_text("keep")
    second = new_run_dir(tmp_path, "textlen-ce", "0123456789abcdef", now)
    third = new_run_dir(tmp_path, "textlen-ce", "0123456789abcdef", now)
    assert second.name == "20240506-070809-01234567-2" and third.name == "20240506-070809-01234567-3"
    assert (first / "run.json").read_text() == "keep"
    assert re.fullmatch(r"\d{8}-\d{6}-abcdefgh", new_run_dir(tmp_path, "x", "abcdefghij").name)
    with pytest.raises(UserError, match="cannot be a folder name"):
        new_run_dir(tmp_path, "../up", "abc")


def test_complete_marker(tmp_path):
    assert not is_complete(tmp_path)
    mark_complete(tmp_path)
    assert is_complete(tmp_path) and (tmp_path / ".complete").read_text().strip()


def test_write_summary_files(tmp_path):
    per_seed = {1: {"test/accuracy": 1.0, "test/roc_auc": 0.5}, 2: {"test/accuracy": 2.0, "test/roc_auc": 0.75}, 4: {"test/accuracy": 4.0, "test/roc_auc": 1.0}}
    agg = aggregate_seeds(per_seed)
    write_summary(tmp_path, per_seed, agg, {"recipe": "textlen-ce", "fingerprint": "abc", "seeds": [1, 2, 4]})
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["seeds"] == [1, 2, 4]
    assert summary["per_seed"]["2"] == {"test/accuracy": 2.0, "test/roc_auc": 0.75}
    assert summary["aggregate"]["test/accuracy"]["values"] == {"1": 1.0, "2": 2.0, "4": 4.0}
    assert summary["meta"]["recipe"] == "textlen-ce"
    md = (tmp_path / "summary.md").read_text()
    assert md.startswith("# textlen-ce\n")
    assert "| metric | mean ± sd | n | per-seed values |" in md
    assert "| test/accuracy | 2.33 ± 1.53 | 3 | 1: 1.00, 2: 2.00, 4: 4.00 |" in md
    assert "| test/roc_auc | 0.7500 ± 0.2500 | 3 | 1: 0.5000, 2: 0.7500, 4: 1.0000 |" in md
    assert sorted(p.name for p in tmp_path.iterdir()) == ["summary.json", "summary.md"]
