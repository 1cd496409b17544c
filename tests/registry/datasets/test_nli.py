"""NLI datasets (snli, mnli, hans): pairs, labels, no-gold rows, subsampling, confounds, bad input."""
from __future__ import annotations

import gzip
import json
from collections import Counter
from pathlib import Path

import pytest

import registry
from registry.datasets import _nli
from registry.errors import UserError

HEURISTICS = ("lexical_overlap", "subsequence", "constituent")


def _write(path: Path, rows: list[dict | str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [r if isinstance(r, str) else json.dumps(r) for r in rows]
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wt", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


def _pairs(split: str, n: int) -> list[dict]:
    labels = ["entailment", "neutral", "contradiction"]
    return [{"id": f"{split}-{i}", "premise": f"A man plays number {i} .", "hypothesis": f"A man plays {i} .",
             "label": labels[i % 3]} for i in range(n)]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A small data root with snli/, mnli/ and hans/ in the shared bundle's layout."""
    for split in ("train_subset", "dev", "test"):
        _write(tmp_path / "snli" / f"{split}.jsonl", _pairs(split, 12))
    for split in ("train_subset", "dev_subset", "dev_matched"):
        _write(tmp_path / "mnli" / f"{split}.jsonl", _pairs(split, 9))
    hans = []
    for h in HEURISTICS:
        for sub in ("a", "b"):
            for i in range(4):
                hans.append({"id": f"hans-{h}-{sub}-{i}", "premise": "The doctor saw the lawyer .",
                             "hypothesis": "The lawyer saw the doctor .", "label": ["entailment", "non-entailment"][i % 2],
                             "heuristic": h, "subcase": f"{h}_{sub}", "template": "temp1"})
    _write(tmp_path / "hans" / "evaluation.jsonl.gz", hans)
    return tmp_path


def test_snli_pairs_labels_and_hans_split(root):
    ds = registry.build("dataset", "snli")
    assert ds.split_names() == ("train_subset", "dev", "test", "hans")
    assert ds.columns() == {"text", "text_pair", "label"}
    bundle = ds.load(root)
    assert bundle.label_names == ["entailment", "neutral", "contradiction"]
    train = bundle.splits["train_subset"]
    assert train.text[1] == "A man plays number 1 ." and train.text_pair[1] == "A man plays 1 ."
    assert train.label[:3] == [0, 1, 2] and train.label_groups is None
    hans = bundle.splits["hans"]
    assert len(hans) == 24 and hans.label[:2] == [0, 1]
    assert hans.label_names == ["entailment", "non-entailment"] and hans.label_groups == [[0], [1, 2]]
    assert set(hans.meta) == {"heuristic", "subcase", "template"}
    assert bundle.files[-1] == root / "hans" / "evaluation.jsonl.gz"
    assert "hans" not in registry.build("dataset", "snli", {"hans": False}).load(root).splits


def test_mnli_splits(root):
    bundle = registry.build("dataset", "mnli", {"hans": False}).load(root)
    assert list(bundle.splits) == ["train_subset", "dev_subset", "dev_matched"]
    assert [len(s) for s in bundle.splits.values()] == [9, 9, 9]


def test_no_gold_rows_are_skipped_and_counted(root):
    rows = _pairs("dev", 6)
    rows[1]["label"], rows[4]["label"] = "-", -1
    _write(root / "snli" / "dev.jsonl", rows)
    bundle = registry.build("dataset", "snli", {"hans": False}).load(root)
    assert len(bundle.splits["dev"]) == 4
    assert bundle.notes == ["snli dev: 2 rows without a gold label skipped (4 kept)"]


def test_subsampling_is_seeded_and_hans_stratified(root):
    params = {"train_size": 5, "eval_size": 4, "hans_size": 30, "subsample_seed": 7}
    a = registry.build("dataset", "snli", params).load(root)
    b = registry.build("dataset", "snli", params).load(root)
    assert [len(a.splits[s]) for s in ("train_subset", "dev", "test")] == [5, 4, 4]
    assert a.splits["train_subset"].ids == b.splits["train_subset"].ids
    c = registry.build("dataset", "snli", {**params, "subsample_seed": 8}).load(root)
    assert c.splits["train_subset"].ids != a.splits["train_subset"].ids or c.splits["dev"].ids != a.splits["dev"].ids
    hans = a.splits["hans"]  # 6 (heuristic, subcase) cells, 30 // 6 = 5 > 4 per cell: all kept
    assert len(hans) == 24
    small = registry.build("dataset", "snli", {"hans_size": 30}).load(root)
    assert len(small.splits["hans"]) == 24
    cut = _nli.stratified(hans, 12, seed=0)
    assert Counter(zip(cut.meta["heuristic"], cut.meta["subcase"])) == {k: 2 for k in Counter(zip(hans.meta["heuristic"], hans.meta["subcase"]))}


def test_keep_ids_survive_the_eval_subsample_in_place_of_drawn_rows(root):
    base = {"eval_size": 4, "subsample_seed": 7, "hans": False}
    plain = registry.build("dataset", "mnli", base).load(root)
    drawn = plain.splits["dev_matched"].ids
    outside = [i for i in (f"dev_matched-{k}" for k in range(9)) if i not in drawn][:2]
    kept = registry.build("dataset", "mnli", {**base, "keep_ids": [*outside, drawn[0], "not-there"]}).load(root)
    ids = kept.splits["dev_matched"].ids
    assert len(ids) == 4 and set(outside) | {drawn[0]} <= set(ids)
    assert len(set(ids) & set(drawn)) == 2  # two drawn rows made room; the rest of the draw holds
    assert ids == sorted(ids, key=lambda i: int(i.rsplit("-", 1)[1]))  # file order
    assert kept.splits["train_subset"].ids == plain.splits["train_subset"].ids  # never the training split


def test_confounds_hand_computed():
    assert _nli.words("Don't stop, NOW!") == ["don't", "stop", "now"]
    assert _nli.lexical_overlap("The doctor saw the lawyer.", "The lawyer saw the doctor") == 1
    assert _nli.lexical_overlap("The doctor saw the lawyer.", "A lawyer saw the doctor") == 0
    assert [_nli.negation(h) for h in ("Nobody is here.", "The cat isn't asleep", "A dog runs", "Not now")] == [1, 1, 0, 1]


def test_confound_param_fills_every_split(root):
    ds = registry.build("dataset", "snli", {"confound": "lexical_overlap"})
    assert "confound" in ds.columns()
    bundle = ds.load(root)
    assert bundle.confound_names == ["partial_overlap", "full_overlap"] and bundle.confound_column == "lexical_overlap"
    assert bundle.splits["dev"].confound[:2] == [1, 1]  # "A man plays 1 ." inside "A man plays number 1 ."
    assert bundle.splits["hans"].confound == [1] * 24
    neg = registry.build("dataset", "mnli", {"confound": "negation", "hans": False}).load(root)
    assert neg.splits["train_subset"].confound == [0] * 9 and neg.confound_names == ["no_negation", "negation"]


def test_hans_dataset_alone(root):
    bundle = registry.build("dataset", "hans", {"eval_size": 30}).load(root)
    assert list(bundle.splits) == ["evaluation"] and bundle.label_names == ["entailment", "neutral", "contradiction"]
    assert bundle.splits["evaluation"].label_groups == [[0], [1, 2]]


def test_label_outside_the_set_names_file_line_and_value(root):
    rows = _pairs("dev", 3)
    rows[2]["label"] = "entailed"
    _write(root / "snli" / "dev.jsonl", rows)
    with pytest.raises(UserError) as err:
        registry.build("dataset", "snli").load(root)
    assert str(err.value).startswith(f"{root / 'snli' / 'dev.jsonl'}:3: label 'entailed' is not one of ")
    assert "(did you mean 'entailment'?)" in str(err.value)


def test_missing_hypothesis_names_file_line_and_field(root):
    rows = _pairs("test", 2)
    del rows[1]["hypothesis"]
    _write(root / "snli" / "test.jsonl", rows)
    with pytest.raises(UserError, match=r"test\.jsonl:2: no 'hypothesis' field \(dataset 'snli' reads premise, hypothesis and label\)"):
        registry.build("dataset", "snli").load(root)


def test_line_that_is_not_json_names_file_line(root):
    _write(root / "mnli" / "dev_subset.jsonl", [json.dumps(r) for r in _pairs("d", 2)] + ['{"premise": "x",'])
    with pytest.raises(UserError, match=r"dev_subset\.jsonl:3: not valid JSON \(.*\); fix: make every line"):
        registry.build("dataset", "mnli").load(root)


def test_missing_file_names_the_data_root_setting(tmp_path):
    with pytest.raises(UserError, match=r"snli/train_subset\.jsonl: data file of dataset 'snli' not found.*runtime\.data_root"):
        registry.build("dataset", "snli").load(tmp_path)


def test_params_are_checked():
    with pytest.raises(Exception, match="confound"):
        registry.build("dataset", "snli", {"confound": "overlap"})
    with pytest.raises(Exception, match="hans_size"):
        registry.build("dataset", "mnli", {"hans_size": 0})


@pytest.mark.slow
def test_shared_counts(shared_root):
    snli = registry.build("dataset", "snli", {"hans_size": 3000}).load(shared_root)
    assert {k: len(v) for k, v in snli.splits.items()} == {"train_subset": 8999, "dev": 9842, "test": 9824, "hans": 3000}
    assert Counter(snli.splits["dev"].label) == {0: 3329, 2: 3278, 1: 3235} and snli.notes == []
    hans = snli.splits["hans"]
    assert len(set(zip(hans.meta["heuristic"], hans.meta["subcase"]))) == 30 and Counter(hans.label) == {0: 1500, 1: 1500}
    mnli = registry.build("dataset", "mnli", {"hans": False}).load(shared_root)
    assert {k: len(v) for k, v in mnli.splits.items()} == {"train_subset": 8999, "dev_subset": 1000, "dev_matched": 9815}
