"""TextLen: the shared files and the builder's statistics (Han & Tsvetkov 2021, §5.2)."""
from __future__ import annotations

import numpy as np
import pytest

import registry
from registry.datasets._common import read_jsonl
from registry.datasets.textlen_builder import build_textlen
from registry.errors import UserError

SIZES = {"train": 1500, "dev": 480, "test": 500}


def _agreement(split) -> float:
    return float(np.mean(np.array(split.label) == np.array(split.confound)))


@pytest.mark.parametrize("variant", ["spurious", "no_spurious"])
def test_shared_files(shared_root, variant):
    ds = registry.build("dataset", "textlen", {"variant": variant})
    assert ds.columns() == {"text", "label", "confound"}
    bundle = ds.load(shared_root)
    assert bundle.label_names == ["short", "long"] and bundle.confound_names == ["Negative.", "Positive."]
    sub = "textlen/no_spurious" if variant == "no_spurious" else "textlen"
    assert bundle.files == [shared_root / sub / f"{s}.jsonl" for s in SIZES]
    for name, n in SIZES.items():
        split = bundle.splits[name]
        assert len(split) == len(split.text) == len(split.label) == len(split.confound) == n
        assert sum(split.label) == n // 2
        assert _agreement(split) == pytest.approx(0.9 if name == "train" else 0.5, abs=1e-9)
        starts = [t.split(" ")[0] in ("Positive", "Negative") for t in split.text]
        assert all(starts) if variant == "spurious" else not any(starts)


def test_shared_no_spurious_is_spurious_minus_prefix(shared_root):
    a = registry.build("dataset", "textlen").load(shared_root).splits["dev"]
    b = registry.build("dataset", "textlen", {"variant": "no_spurious"}).load(shared_root).splits["dev"]
    assert [t.split(" ", 2)[2] for t in a.text] == b.text
    assert a.confound == b.confound and a.label == b.label


@pytest.fixture(scope="module")
def conll(shared_root):
    train = [r["tokens"] for r in read_jsonl(shared_root / "conll2003" / "train.jsonl")]
    valid = [r["tokens"] for r in read_jsonl(shared_root / "conll2003" / "valid.jsonl")]
    return train, valid


@pytest.fixture(scope="module")
def built(conll):
    return build_textlen(*conll)


def test_builder_matches_the_paper_statistics(built):
    for name, n in SIZES.items():
        split = built[name]
        label, length = np.array(split.label), np.array(split.meta["length"])
        assert len(split) == n and (label == 0).sum() == (label == 1).sum() == n // 2
        assert _agreement(split) == pytest.approx(0.9 if name == "train" else 0.5, abs=0.03 if name == "train" else 0.06)
        # int() truncation lowers the mean by about 0.5 below mu
        assert abs(length[label == 0].mean() - 15) < 1.5 and abs(length[label == 1].mean() - 25) < 1.5
        tokens = [t.split(" ") for t in split.text]
        assert all(tok[1] == "." and tok[0] == ("Positive" if c else "Negative") for tok, c in zip(tokens, split.confound))
        assert all(len(tok) - 2 == min(max(L, 1), 30) for tok, L in zip(tokens, length))
        assert 0.8 < np.mean((length >= 20) == label) < 0.97  # ~0.89-0.90 in the paper's data


def test_builder_splits_are_disjoint_and_test_comes_from_valid(built, conll):
    body = {name: {t.split(" ", 2)[2] for t in s.text} for name, s in built.items()}
    assert not body["train"] & body["dev"]
    valid_prefixes = {" ".join(s[:5]) for s in conll[1]}
    assert all(" ".join(t.split(" ")[:5]) in valid_prefixes for t in body["test"])


def test_builder_is_deterministic_and_seeded(conll, built):
    again = build_textlen(*conll)
    assert all(again[s].text == built[s].text and again[s].confound == built[s].confound for s in SIZES)
    other = build_textlen(*conll, seed=7)
    assert other["train"].text != built["train"].text


def test_builder_no_spurious_is_spurious_minus_prefix(conll, built):
    plain = build_textlen(*conll, no_spurious=True)
    for s in SIZES:
        assert [t.split(" ", 2)[2] for t in built[s].text] == plain[s].text
        assert plain[s].confound == built[s].confound and plain[s].ids[0].startswith("textlen-nospur-")


def test_builder_params_and_too_small_pools(conll):
    out = build_textlen(*conll, train_correlation=1.0, n_train=100, n_dev=40, n_test=40, prefixes=("A", "B"))
    assert _agreement(out["train"]) == 1.0 and len(out["test"]) == 40
    assert {t.split(" ")[0] for t in out["train"].text} == {"A", "B"}
    with pytest.raises(ValueError, match="only 1980"):
        build_textlen(*conll, n_train=1600)


def test_component_build_source_and_auto(shared_root, tmp_path):
    built = registry.build("dataset", "textlen", {"source": "build"}).load(shared_root)
    assert built.files == [shared_root / "conll2003" / "train.jsonl", shared_root / "conll2003" / "valid.jsonl"]
    assert [len(s) for s in built.splits.values()] == [1500, 480, 500]
    # auto with a changed builder param must rebuild, not read the paper's files
    auto = registry.build("dataset", "textlen", {"n_test": 100}).load(shared_root)
    assert len(auto.splits["test"]) == 100
    with pytest.raises(ValueError, match="have no effect"):
        registry.build("dataset", "textlen", {"source": "shared", "sigma": 2})
    with pytest.raises(UserError, match="n_train"):
        registry.build("dataset", "textlen", {"source": "build", "n_train": 5000}).load(shared_root)


def test_build_from_hub_when_conll_is_not_under_the_root(shared_root, tmp_path, monkeypatch):
    import datasets

    calls = []

    def fake_load_dataset(path, *args, revision=None, **kwargs):
        calls.append((path, revision))
        return datasets.DatasetDict(
            {
                split: datasets.Dataset.from_list(
                    [{"tokens": r["tokens"]} for r in read_jsonl(shared_root / "conll2003" / f"{name}.jsonl")]
                )
                for split, name in (("train", "train"), ("validation", "valid"), ("test", "test"))
            }
        )

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    bundle = registry.build("dataset", "textlen", {"source": "auto", "build_seed": 3}).load(tmp_path)
    assert calls == [("eriktks/conll2003", "refs/convert/parquet")] and bundle.files == []
    local = registry.build("dataset", "textlen", {"source": "build", "build_seed": 3}).load(shared_root)
    assert bundle.splits["test"].text == local.splits["test"].text


def test_hub_failure_message(tmp_path, monkeypatch):
    import datasets

    def offline(*args, **kwargs):
        raise ConnectionError("offline")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(UserError) as err:
        registry.build("dataset", "textlen", {"source": "build"}).load(tmp_path)
    msg = str(err.value)
    assert "eriktks/conll2003" in msg and "conll2003/train.jsonl" in msg and "runtime.data_root" in msg


def test_shared_conll_dir_with_missing_file(tmp_path):
    (tmp_path / "conll2003").mkdir()
    with pytest.raises(UserError, match="conll2003/train.jsonl"):
        registry.build("dataset", "textlen", {"source": "build"}).load(tmp_path)


def test_confound_is_named_prefix(shared_root):
    bundle = registry.build("dataset", "textlen").load(shared_root)
    assert bundle.confound_column == "prefix"
    assert all(s.confound_column == "prefix" and s.confound_names == ["Negative.", "Positive."] for s in bundle.splits.values())
