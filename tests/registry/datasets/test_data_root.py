"""Data root precedence and the missing-file message."""
from __future__ import annotations

from pathlib import Path

import pytest

import registry
from registry.datasets.data_root import ENV_VAR, default_data_root, require_file, resolve_data_root
from registry.errors import UserError


def test_precedence_setting_then_env_then_default(tmp_path, monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    assert resolve_data_root(None) == default_data_root().resolve()
    assert default_data_root() == Path(registry.__file__).resolve().parents[1].parent / "shared" / "data"
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "env"))
    assert resolve_data_root(None) == tmp_path / "env"
    assert resolve_data_root(str(tmp_path / "recipe")) == tmp_path / "recipe"


def test_relative_setting_is_relative_to_cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert resolve_data_root("data") == tmp_path / "data"


def test_require_file(tmp_path):
    (tmp_path / "msgs").mkdir()
    (tmp_path / "msgs" / "train.jsonl").write_text("{}\n")
    assert require_file(tmp_path, "msgs/train.jsonl", "msgs") == tmp_path / "msgs" / "train.jsonl"
    with pytest.raises(UserError) as err:
        require_file(tmp_path, "msgs/dev.jsonl", "msgs")
    msg = str(err.value)
    assert str(tmp_path / "msgs" / "dev.jsonl") in msg
    assert "runtime.data_root" in msg and ENV_VAR in msg and "fix:" in msg and "'msgs'" in msg


def test_missing_dataset_file_message(tmp_path):
    with pytest.raises(UserError) as err:
        registry.build("dataset", "msgs").load(tmp_path)
    assert str(tmp_path / "msgs" / "train.jsonl") in str(err.value) and "does not exist" not in str(err.value)
    with pytest.raises(UserError, match="the data root does not exist"):
        registry.build("dataset", "textlen", {"source": "shared"}).load(tmp_path / "missing")
