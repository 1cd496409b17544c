"""Checkpoints load with weights_only: one crafted to run code on unpickling is refused and
the code does not run; a truncated one is a clear error."""
import os

import pytest
import torch

from recipe_engine.checkpoint import Checkpoint
from recipe_engine.errors import UserError


class _RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))  # unpickling would create the marker file


def test_a_checkpoint_that_would_run_code_is_refused(tmp_path):
    marker = tmp_path / "ran"
    path = tmp_path / "last.pt"
    torch.save({"model": {}, "payload": _RunsCode(str(marker))}, path)
    with pytest.raises(UserError, match="refused: this checkpoint holds objects other than tensors") as info:
        Checkpoint(path).load(torch.device("cpu"))
    assert "weights_only=False" not in str(info.value)  # never advise the unsafe way
    assert not marker.exists()


def test_a_truncated_checkpoint_is_a_clear_error(tmp_path):
    path = tmp_path / "last.pt"
    Checkpoint(path).save({"model": {"w": torch.ones(3)}, "position": {"step": 4}})
    assert Checkpoint(path).load(torch.device("cpu"))["position"] == {"step": 4}
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(UserError, match="not a readable checkpoint"):
        Checkpoint(path).load(torch.device("cpu"))
    assert os.path.exists(path)
