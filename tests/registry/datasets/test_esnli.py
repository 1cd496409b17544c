"""esnli: highlight rationales over premise then hypothesis words, their subword mask on a pair,
few-shot train + the held-out 'highlights' split, SNLI dev/test without rationales, bad rows."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

import registry
from registry.data import encode_split
from registry.errors import UserError
from registry.models._loading import load_tokenizer, offline_model_dir

LABELS = ["entailment", "neutral", "contradiction"]


def _row(i: int, label: str, premise: str, hypothesis: str, p_rat: list[int], h_rat: list[int]) -> dict:
    return {"id": f"esnli-hl-{i:03d}", "premise": premise, "hypothesis": hypothesis, "label": label,
            "premise_tokens": premise.split(" "), "hypothesis_tokens": hypothesis.split(" "),
            "premise_rationale": p_rat, "hypothesis_rationale": h_rat}


def _write(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


@pytest.fixture
def root(tmp_path: Path) -> Path:
    rows = [_row(0, "contradiction", "A man sleeps on a bench.", "The man is running.", [0, 0, 1, 0, 0, 0], [0, 0, 0, 1])]
    rows += [_row(i, LABELS[i % 3], f"A dog runs number {i}.", "A dog plays.", [0, 1, 1, 0, 0], [0, 0, 1])
             for i in range(1, 12)]
    _write(tmp_path / "snli" / "esnli_highlights.jsonl", rows)
    for split in ("dev", "test"):
        _write(tmp_path / "snli" / f"{split}.jsonl",
               [{"id": f"snli-{split}-{i}", "premise": "A cat sits .", "hypothesis": "A cat rests .",
                 "label": LABELS[i % 3]} for i in range(9)] + [{"premise": "x", "hypothesis": "y", "label": "-"}])
    return tmp_path


def test_pairs_rationales_and_splits(root):
    ds = registry.build("dataset", "esnli")
    assert ds.columns() == {"text", "text_pair", "label", "rationale"} and ds.split_names() == ("train", "dev", "test")
    bundle = ds.load(root)
    train = bundle.splits["train"]
    assert len(train) == 12 and train.label[0] == 2 and train.text_pair[0] == "The man is running."
    assert train.rationale[0] == [0, 0, 1, 0, 0, 0] + [0, 0, 0, 1]  # premise words, then hypothesis words
    assert "premise_rationale" not in train.meta
    assert bundle.splits["dev"].rationale is None and len(bundle.splits["dev"]) == 9  # the '-' row skipped
    assert any("1 rows without a gold label" in n for n in bundle.notes)


def test_few_shot_train_and_held_out_highlights(root):
    ds = registry.build("dataset", "esnli", {"shots": 2, "shot_seed": 3})
    assert ds.split_names() == ("train", "dev", "test", "highlights")
    bundle = ds.load(root)
    train, rest = bundle.splits["train"], bundle.splits["highlights"]
    assert sorted(train.label) == [0, 0, 1, 1, 2, 2] and len(rest) == 6 and rest.name == "highlights"
    assert not set(train.ids) & set(rest.ids) and rest.rationale is not None
    again = registry.build("dataset", "esnli", {"shots": 2, "shot_seed": 3}).load(root)
    assert again.splits["train"].ids == train.ids  # seeded
    with pytest.raises(UserError, match="class .entailment. has only 3 training examples; fix: set data.params.shots to at most 3"):
        registry.build("dataset", "esnli", {"shots": 5}).load(root)


def test_subword_mask_on_a_pair(root):
    tok = load_tokenizer(offline_model_dir())
    train = registry.build("dataset", "esnli").load(root).splits["train"]
    enc = encode_split(train, tok, max_length=32)
    n = int(enc.attention_mask[0].sum())
    pieces = tok.convert_ids_to_tokens(enc.input_ids[0, :n].tolist())
    assert pieces == ["[CLS]", "a", "man", "sleeps", "on", "a", "bench", ".", "[SEP]", "the", "man", "is", "running",
                      ".", "[SEP]"]
    # "sleeps" (premise word 3) and "running." (hypothesis word 4: both its pieces) are the rationale
    assert enc.rationale[0, :n].tolist() == [0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0]
    assert enc.rationale[0, n:].sum() == 0


def test_a_rationale_that_does_not_fit_the_words_names_the_line(root):
    path = root / "snli" / "esnli_highlights.jsonl"
    lines = path.read_text().splitlines()
    bad = json.loads(lines[1])
    bad["hypothesis_rationale"] = [0, 1]
    lines[1] = json.dumps(bad)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(UserError, match=rf"{path}:2: hypothesis_rationale must hold one 0/1 per word"):
        registry.build("dataset", "esnli").load(root)


def test_the_shared_file(shared_root):
    bundle = registry.build("dataset", "esnli", {"shots": 50}).load(shared_root)
    assert len(bundle.splits["train"]) == 150 and len(bundle.splits["highlights"]) == 849
    assert len(bundle.splits["dev"]) == 9842 and len(bundle.splits["test"]) == 9824
    assert all(any(m) for m in bundle.splits["train"].rationale)
