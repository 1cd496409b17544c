import hashlib
import json
import os
import platform
import re
from datetime import datetime

import pytest

from recipe_engine import outputs
from recipe_engine.errors import UserError
from recipe_engine.outputs import (
    append_jsonl,
    atomic_write_json,
    atomic_write_text,
    data_hashes,
    environment_info,
    file_sha256,
    is_complete,
    mark_complete,
    new_run_dir,
)


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


def test_environment_info_fields():
    info = environment_info("cpu", world_size=2)
    assert info["device"] == "cpu" and info["world_size"] == 2
    assert info["versions"]["python"] == platform.python_version()
    assert set(info["versions"]) == {"python", "torch", "transformers", "datasets", "pydantic", "recipe-engine"}
    assert info["versions"]["torch"] and info["versions"]["recipe-engine"]
    assert info["git_sha"] is None or re.fullmatch(r"[0-9a-f]{40}", info["git_sha"])
    assert (info["git_dirty"] is None) == (info["git_sha"] is None)


def test_hashes(tmp_path):
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_bytes(b"abc")
    b.write_bytes(b"x" * (3 << 20))
    assert file_sha256(a) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert file_sha256(b) == hashlib.sha256(b"x" * (3 << 20)).hexdigest()
    hashes = data_hashes([str(b), a, str(a)])
    assert list(hashes) == [str(a), str(b)]
    with pytest.raises(UserError, match="missing.txt is missing"):
        file_sha256(tmp_path / "missing.txt")


def test_complete_marker(tmp_path):
    assert not is_complete(tmp_path)
    mark_complete(tmp_path)
    assert is_complete(tmp_path) and (tmp_path / ".complete").read_text().strip()
