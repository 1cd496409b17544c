"""An output folder that cannot be written or has no room is reported before training; a
disk that fills up mid-run stops it with a clear message, and the run resumes to the same result."""
import errno
import json
from collections import namedtuple

import pytest

from recipe_engine import disk
from recipe_engine.checkpoint import Checkpoint
from recipe_engine.cli import main
from tests.recipe_engine.tiny_run import write_data, write_recipe


def test_an_output_folder_that_is_a_file_is_reported_before_training(tmp_path, capsys):
    recipe = write_recipe(tmp_path / "r.yaml", write_data(tmp_path), seeds=(1,))
    assert main(["run", str(recipe), "--out", str(recipe / "runs")]) == 2
    assert "the output folder cannot be written (Not a directory); fix: choose another with --out" in capsys.readouterr().err


def test_a_disk_without_room_is_reported_before_training(tmp_path, capsys, monkeypatch):
    recipe = write_recipe(tmp_path / "r.yaml", write_data(tmp_path), seeds=(1,))
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(disk.shutil, "disk_usage", lambda _: usage(10**9, 10**9 - 2**20, 2**20))
    assert main(["run", str(recipe), "--out", str(tmp_path / "o")]) == 2
    assert "only 1 MiB free on its disk, and a run needs about 512 MiB" in capsys.readouterr().err
    assert not list((tmp_path / "o").rglob("run.json"))


@pytest.mark.slow
def test_a_disk_that_fills_up_mid_run_stops_cleanly_and_the_run_resumes(tmp_path, capsys, monkeypatch):
    recipe = write_recipe(tmp_path / "r.yaml", write_data(tmp_path), seeds=(1,))
    assert main(["run", str(recipe), "--out", str(tmp_path / "a")]) == 0
    save, calls = Checkpoint.save, []

    def full_on_the_third(self, state):
        calls.append(1)
        if len(calls) == 3:
            raise OSError(errno.ENOSPC, "No space left on device", str(self.path))
        save(self, state)

    monkeypatch.setattr(Checkpoint, "save", full_on_the_third)
    assert main(["run", str(recipe), "--out", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err
    assert "No space left on device; every file written before is intact" in err and "--resume" in err
    monkeypatch.setattr(Checkpoint, "save", save)
    run_a, run_b = (next((tmp_path / d / "tiny-e2e").iterdir()) for d in ("a", "b"))
    assert main(["run", str(recipe), "--resume", str(run_b)]) == 0
    metrics = [json.loads((r / "seed-1" / "eval" / "metrics.json").read_text())["metrics"] for r in (run_a, run_b)]
    assert metrics[0] == metrics[1]
