"""The Table 2 study's archive: light copies that a later session restores and resumes from."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def study_script():
    spec = importlib.util.spec_from_file_location("textlen_table2", ROOT / "bench" / "textlen_table2.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def fake_run(study: Path, finished: list[int], unfinished: list[int], complete: bool = False) -> Path:
    run = study / "textlen-finetune" / "20261202-000000-abcd1234"
    run.mkdir(parents=True)
    (run / "run.json").write_text(json.dumps({"fingerprint": "abcd1234"}))
    (run / "resolved.yaml").write_text("name: textlen-finetune\n")
    (run / "report.html").write_text("<html></html>")
    for seed in finished + unfinished:
        d = run / f"seed-{seed}"
        (d / "checkpoints").mkdir(parents=True)
        (d / "checkpoints" / "last.pt").write_bytes(b"\0" * 1000)
        (d / "tb").mkdir()
        (d / "tb" / "events").write_bytes(b"\0")
        (d / "metrics.jsonl").write_text('{"step": 10}\n')
    for seed in finished:
        (run / f"seed-{seed}" / "eval").mkdir()
        (run / f"seed-{seed}" / "eval" / "metrics.json").write_text(json.dumps({"metrics": {"test/accuracy": 77.0}}))
        (run / f"seed-{seed}" / "eval" / "test_logits.pt").write_bytes(b"\1")
    if complete:
        (run / ".complete").write_text("done")
    return run


def files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def test_sync_keeps_finished_seeds_without_checkpoints(study_script, tmp_path):
    study, archive = tmp_path / "study", tmp_path / "archive"
    run = fake_run(study, finished=[2021], unfinished=[2022])
    study_script.sync_archive(study, archive)
    kept = archive / run.parent.name / run.name
    assert files(kept) == {"run.json", "resolved.yaml", "seed-2021/metrics.jsonl",
                           "seed-2021/eval/metrics.json", "seed-2021/eval/test_logits.pt"}
    assert not list(archive.rglob("*.partial"))


def test_restore_then_the_missing_seed_is_all_that_is_left(study_script, tmp_path):
    study, archive, fresh = tmp_path / "study", tmp_path / "archive", tmp_path / "fresh"
    run = fake_run(study, finished=[2021, 2022], unfinished=[2023])
    study_script.sync_archive(study, archive)
    study_script.restore_archive(archive, fresh)
    restored = fresh / run.parent.name / run.name
    assert study_script.finished_seeds(restored) == ["seed-2021", "seed-2022"]
    assert not (restored / "seed-2023").exists()
    assert json.loads((restored / "run.json").read_text())["fingerprint"] == "abcd1234"


def test_restore_adds_seeds_to_a_run_that_has_fewer(study_script, tmp_path):
    study, archive = tmp_path / "study", tmp_path / "archive"
    run = fake_run(study, finished=[2021, 2022], unfinished=[], complete=True)
    study_script.sync_archive(study, archive)
    other = tmp_path / "other"
    local = fake_run(other, finished=[2021], unfinished=[2022])
    study_script.restore_archive(archive, other)
    assert study_script.finished_seeds(local) == ["seed-2021", "seed-2022"]
    assert (local / "seed-2022" / "eval" / "metrics.json").is_file()
    assert not (local / "seed-2022" / "checkpoints").exists()  # the half-trained seed was replaced
    assert (archive / run.parent.name / run.name / ".complete").is_file()
