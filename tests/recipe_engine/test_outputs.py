import json
import os

import pytest

from recipe_engine import outputs
from recipe_engine.outputs import append_jsonl, atomic_write_json, atomic_write_text


def test_atomic_write_text_replaces_and_leaves_no_temp(tmp_path):
    path = tmp_path / "sub" / "run.json"
    atomic_write_text(path, "one")
    atomic_write_text(path, "two")
    assert path.read_text() == "two"
    assert os.listdir(path.parent) == ["run.json"]


def test_failed_serialisation_keeps_old_file(tmp_path):
    path = tmp_path / "summary.json"
    atomic_write_json(path, {"a": 1})
    with pytest.raises(TypeError, match="cannot write a object as JSON"):
        atomic_write_json(path, {"a": 2, "b": object()})
    assert json.loads(path.read_text()) == {"a": 1}
    assert os.listdir(tmp_path) == ["summary.json"]


def test_crash_mid_write_keeps_old_file(tmp_path, monkeypatch):
    path = tmp_path / "summary.md"
    atomic_write_text(path, "old")

    def crash(fd):
        raise OSError("disk full")

    monkeypatch.setattr(outputs.os, "fsync", crash)
    with pytest.raises(OSError, match="disk full"):
        atomic_write_text(path, "new " * 1000)
    assert path.read_text() == "old"
    assert os.listdir(tmp_path) == ["summary.md"]


def test_json_is_strict(tmp_path):
    path = tmp_path / "m.json"
    atomic_write_json(path, {"nan": float("nan"), "t": (1, 2), 3: tmp_path})
    assert json.loads(path.read_text()) == {"nan": None, "t": [1, 2], "3": str(tmp_path)}


def test_append_jsonl_whole_lines(tmp_path):
    path = tmp_path / "seed-1" / "metrics.jsonl"
    append_jsonl(path, {"step": 1, "loss": 0.5})
    append_jsonl(path, {"step": 2, "loss": float("inf")})
    text = path.read_text()
    assert text.endswith("\n")
    assert [json.loads(line) for line in text.splitlines()] == [{"step": 1, "loss": 0.5}, {"step": 2, "loss": None}]
