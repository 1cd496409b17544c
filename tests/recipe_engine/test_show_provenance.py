"""`recipe-engine show`: provenance of every value (base file:line, child file:line, command
line, default), the resolved YAML (re-validates to the same fingerprint), the timeline.

Fixtures: fixtures/provenance/child.yaml extends base.yaml and overrides the length of
the base's phase ``warmup`` by id; the command line sets the learning rate.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from recipe_engine.cli import main
from recipe_engine.load import display_path
from recipe_engine.resolve import resolve

FIXTURES = Path(__file__).parent / "fixtures" / "provenance"
BASE, CHILD = FIXTURES / "base.yaml", FIXTURES / "child.yaml"
LR = "optimizer.params.lr=3e-5"


@pytest.fixture(autouse=True)
def data_root(monkeypatch: pytest.MonkeyPatch) -> None:
    """The files dataset of the fixtures reads fixtures/provenance/data/*.jsonl."""
    monkeypatch.setenv("RECIPE_ENGINE_DATA_ROOT", str(FIXTURES))


def line_of(path: Path, text: str) -> int:
    """1-based number of the only line of ``path`` that contains ``text``."""
    hits = [i for i, line in enumerate(path.read_text().splitlines(), 1) if text in line]
    assert len(hits) == 1, (path, text, hits)
    return hits[0]


def base_at(text: str) -> str:
    return f"{display_path(str(BASE))}:{line_of(BASE, text)} (base)"


def child_at(text: str) -> str:
    return f"{display_path(str(CHILD))}:{line_of(CHILD, text)}"


def show(capsys: pytest.CaptureFixture, *args: str) -> str:
    code = main(["show", display_path(str(CHILD)), *args])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return captured.out


def table(text: str) -> list[list[str]]:
    """Cells of a format_table table, cut at the columns of its rule line."""
    lines = text.rstrip("\n").splitlines()
    rule = next(i for i, line in enumerate(lines) if line.startswith("-"))
    starts = [m.start() for m in re.finditer(r"-+", lines[rule])]
    return [[line[a:b].strip() for a, b in zip(starts, starts[1:] + [None])] for line in lines[rule + 1:]]


def provenance(capsys: pytest.CaptureFixture, *overrides: str) -> dict[str, tuple[str, str]]:
    rows = table(show(capsys, "--provenance", *overrides))
    out = {path: (value, origin) for path, value, origin in rows}
    assert len(out) == len(rows), "a path is listed twice"
    return out


def test_every_value_shows_its_true_origin(capsys):
    rows = provenance(capsys, LR)
    expected = {
        # the command line
        "optimizer.params.lr": ("3e-05", "command line"),
        # the child file: its own keys, and the field of the phase it overrides by id
        "name": ("provenance-child", child_at("name: provenance-child")),
        "schedule.phases.warmup.for": ("20", child_at("for: 20")),
        # inherited from the base, inside the overridden phase too
        "schedule.phases.warmup.objectives.cross_entropy.name": ("cross_entropy", base_at("label_smoothing: 0.1")),
        "schedule.phases.warmup.objectives.cross_entropy.params.label_smoothing": ("0.1", base_at("label_smoothing: 0.1")),
        "optimizer.params.weight_decay": ("0.01", base_at("weight_decay: 0.01")),
        "optimizer.name": ("adamw", base_at("name: adamw")),
        "schedule.length.steps": ("30", base_at("length: {steps: 30}")),
        "schedule.phases.main.until": ("end", base_at("until: end")),
        "data.batch_size": ("4", base_at("batch_size: 4")),
        "data.params.splits.dev": ("dev.jsonl", base_at("splits: {train: train.jsonl")),
        "runtime.tensorboard": ("false", base_at("tensorboard: false")),
        # defaults: written nowhere
        "runtime.device": ("auto", "default"),
        "data.train_split": ("train", "default"),
        "optimizer.params.eps": ("1e-08", "default"),
        "schedule.phases.warmup.objectives.cross_entropy.weight": ("1.0", "default"),
        "schedule.phases.main.min_remaining": ("0", "default"),
        "evaluation.select": ("null", "default"),
    }
    assert {path: rows.get(path) for path in expected} == expected


def test_origins_are_only_the_four_kinds_and_the_override_is_the_only_cli_value(capsys):
    rows = provenance(capsys, LR)
    base, child = re.escape(display_path(str(BASE))), re.escape(display_path(str(CHILD)))
    kinds = re.compile(rf"^(default|command line|{child}:\d+|{base}:\d+ \(base\))$")
    assert [p for p, (_, origin) in rows.items() if not kinds.match(origin)] == []
    assert [p for p, (_, origin) in rows.items() if origin == "command line"] == ["optimizer.params.lr"]
    child_rows = sorted(p for p, (_, origin) in rows.items() if origin.startswith(display_path(str(CHILD))))
    assert child_rows == ["name", "schedule.phases.warmup.for", "schedule.phases.warmup.id"]


def test_without_the_override_the_value_comes_from_the_base(capsys):
    rows = provenance(capsys)
    assert rows["optimizer.params.lr"] == ("0.0001", base_at("lr: 1.0e-4"))


def test_defaults_under_unwritten_params_are_named_by_id(capsys):
    rows = provenance(capsys)
    assert rows.get("schedule.phases.main.objectives.cross_entropy.params.label_smoothing") == ("0.0", "default")


def test_show_prints_yaml_that_revalidates_to_the_same_fingerprint(capsys, tmp_path):
    text = show(capsys, LR)
    data = yaml.safe_load(text)
    assert data["optimizer"]["params"]["lr"] == 3e-5 and data["schedule"]["phases"][0]["for"] == 20
    assert "extends" not in data
    dumped = tmp_path / "resolved.yaml"
    dumped.write_text(text)
    want = resolve(CHILD, [LR]).fingerprint
    assert resolve(dumped).fingerprint == want
    assert main(["validate", str(dumped)]) == 0
    assert capsys.readouterr().out.strip() == f"{dumped}: ok (provenance-child, fingerprint {want[:8]})"
    assert main(["show", str(dumped)]) == 0  # showing the resolved form changes nothing
    assert capsys.readouterr().out == text


def test_show_schedule_prints_the_timeline(capsys):
    out = show(capsys, "--schedule", LR)
    head, *rest = out.splitlines()
    assert head == ("provenance-child: 12 training examples, batch 4 -> 3 steps/epoch; "
                    "30 train-data steps, 30 optimizer steps in 2 segments")
    assert rest[0].split() == ["#", "phase", "train", "step", "steps", "data", "terms", "optimizer"]
    assert [r for r in table("\n".join(rest))] == [
        ["0", "warmup", "0", "20", "train", "cross_entropy", "main"],
        ["1", "main", "20", "10", "train", "cross_entropy", "main"],
    ]


def test_show_schedule_follows_command_line_overrides(capsys):
    out = show(capsys, "--schedule", "schedule.phases.warmup.for=5", "schedule.length.steps=12")
    assert table(out.split("\n", 1)[1]) == [
        ["0", "warmup", "0", "5", "train", "cross_entropy", "main"],
        ["1", "main", "5", "7", "train", "cross_entropy", "main"],
    ]
