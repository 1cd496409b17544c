"""Tokenised splits: shapes, dynamic padding, rationale alignment, loaders, confound access."""
from __future__ import annotations

import pytest
import torch

from registry.data import EncodedSplit, confound_visibility, encode_split
from registry.models._loading import load_tokenizer, offline_model_dir
from registry.types import Batch, DatasetBundle, Split


@pytest.fixture(scope="module")
def tok():
    return load_tokenizer(offline_model_dir())


def _split(n: int = 7, pair: bool = False) -> Split:
    text = [" ".join(["word"] * (i + 1)) for i in range(n)]
    return Split(
        name="train",
        ids=[f"r{i}" for i in range(n)],
        text=text,
        label=[i % 2 for i in range(n)],
        text_pair=[f"pair {i}" for i in range(n)] if pair else None,
        confound=[(i % 3) - 1 for i in range(n)],  # -1, 0, 1, -1, ...
    )


def test_encode_and_dynamic_padding(tok):
    enc = encode_split(_split(), tok, max_length=6)
    assert all(hasattr(enc, a) for a in ("labels", "confound", "confound_visible", "batch", "__len__")) and len(enc) == 7
    assert enc.input_ids.shape == (7, 6)  # truncated: [CLS] + 4 words + [SEP]
    assert enc.lengths.tolist() == [3, 4, 5, 6, 6, 6, 6]
    assert enc.confound.tolist() == [-1, 0, 1, -1, 0, 1, -1]
    assert enc.confound_visible.tolist() == [False, True, True, False, True, True, False]
    b = enc.batch([1, 0])
    assert isinstance(b, Batch) and b.input_ids.shape == (2, 4)  # padded to the longest of the batch only
    assert b.attention_mask.tolist() == [[1, 1, 1, 1], [1, 1, 1, 0]]
    assert b.input_ids[1, 3].item() == tok.pad_token_id and b.input_ids[:, 0].eq(tok.cls_token_id).all()
    assert b.index.tolist() == [1, 0] and b.labels.tolist() == [1, 0] and b.confound.tolist() == [0, -1]
    assert b.token_type_ids.shape == (2, 4) and b.rationale is None
    assert enc.batch(torch.tensor([0])).input_ids.shape == (1, 3)
    whole = tok(_split().text[5], truncation=True, max_length=6)["input_ids"]
    assert enc.batch([5]).input_ids[0].tolist() == whole


def test_pairs_get_token_types(tok):
    enc = encode_split(_split(3, pair=True), tok, max_length=32)
    b = enc.batch([2])
    assert b.token_type_ids[0].tolist() == [0] * 5 + [1] * 3  # [CLS] w w w [SEP] pair 2 [SEP]


def test_loader_covers_every_row_once_and_is_seeded(tok):
    enc = encode_split(_split(10), tok, max_length=16)
    assert enc.num_batches(4) == 3 and enc.num_batches(4, drop_last=True) == 2
    rows = torch.cat([b.index for b in enc.loader(4, shuffle=False)])
    assert rows.tolist() == list(range(10))
    order = lambda seed: torch.cat([b.index for b in enc.loader(4, True, torch.Generator().manual_seed(seed))]).tolist()
    assert sorted(order(0)) == list(range(10)) and order(0) == order(0) and order(0) != order(1)
    dropped = list(enc.loader(4, True, torch.Generator().manual_seed(0), drop_last=True))
    assert [len(b) for b in dropped] == [4, 4]


def test_rationale_alignment(tok):
    split = Split(
        name="dev",
        ids=["x", "y"],
        text=["The diner, lawn.", "unaffable  words"],  # punctuation attached, a double space
        text_pair=["A cat sat", "ok"],
        label=[0, 1],
        rationale=[[0, 1, 1] + [0, 1, 0], [1, 0, 1] + [1]],
    )
    enc = encode_split(split, tok, max_length=32)
    pieces = tok.convert_ids_to_tokens(enc.input_ids[0].tolist())
    # [CLS] the diner , lawn . [SEP] a cat sat [SEP]
    assert pieces == ["[CLS]", "the", "diner", ",", "lawn", ".", "[SEP]", "a", "cat", "sat", "[SEP]"]
    assert enc.rationale[0].tolist() == [0, 0, 1, 1, 1, 1, 0, 0, 1, 0, 0]
    n = int(enc.lengths[1])
    pieces = tok.convert_ids_to_tokens(enc.input_ids[1, :n].tolist())
    expected = [0.0] + [1.0] * (n - 5) + [1.0, 0.0, 1.0, 0.0]  # un##aff##able -> word 0; words -> word 2; ok
    assert pieces[-4:] == ["words", "[SEP]", "ok", "[SEP]"] and enc.rationale[1, :n].tolist() == expected
    assert enc.rationale[1, n:].sum() == 0  # padding
    b = enc.batch([1])
    assert b.rationale.shape == b.input_ids.shape and b.rationale.dtype == torch.float32
    bad = Split(name="dev", ids=["z"], text=["two words"], label=[0], rationale=[[1]])
    with pytest.raises(ValueError, match="'z'"):
        encode_split(bad, tok, 8)


def test_confound_visibility_exact_counts_and_determinism():
    confound = torch.tensor([0, 1, -1, 1, 0, -1, 0, 1, 1, 0, 0, -1])  # 9 known
    for access, k in [(0.0, 0), (0.25, 2), (0.5, 4), (1 / 3, 3), (0.8, 7), (1.0, 9)]:
        vis = confound_visibility(confound, access, torch.Generator().manual_seed(5))
        assert vis.dtype == torch.bool and int(vis.sum()) == k == round(access * 9)
        assert not vis[confound < 0].any()
    a = confound_visibility(confound, 0.5, torch.Generator().manual_seed(1))
    assert torch.equal(a, confound_visibility(confound, 0.5, torch.Generator().manual_seed(1)))
    draws = {tuple(confound_visibility(confound, 0.5, torch.Generator().manual_seed(s)).tolist()) for s in range(10)}
    assert len(draws) > 1
    with pytest.raises(ValueError):
        confound_visibility(confound, 1.5, torch.Generator())


def test_given_visibility_is_applied_and_unknown_stays_hidden(tok):
    split = _split()
    visible = torch.ones(7, dtype=torch.bool)
    enc = encode_split(split, tok, 8, confound_visible=visible)
    assert enc.confound_visible.tolist() == [c >= 0 for c in split.confound]
    b = enc.batch([0, 1, 2])
    assert b.confound_visible.tolist() == [False, True, True]


def test_empty_split_and_no_confound(tok):
    empty = encode_split(Split(name="test", ids=[], text=[], label=[]), tok, 8)
    assert len(empty) == 0 and list(empty.loader(4, shuffle=True, generator=torch.Generator())) == []
    enc = encode_split(Split(name="t", ids=["a"], text=["hi"], label=[1]), tok, 8)
    assert enc.confound.tolist() == [-1] and enc.confound_visible.tolist() == [False]
    assert isinstance(enc, EncodedSplit)


def test_splits_and_encoded_splits_carry_the_bundles_confound_names(tok):
    """Evaluation sees splits only, so a bundle hands its confound names and column to each."""
    own = Split(name="dev", ids=["a"], text=["x"], label=[0], confound=[1], confound_names=["p", "q"], confound_column="own")
    bundle = DatasetBundle(splits={"train": _split(), "dev": own}, label_names=["a", "b"],
                           confound_names=["Negative.", "Positive."], confound_column="prefix")
    train = bundle.splits["train"]
    assert (train.confound_names, train.confound_column) == (["Negative.", "Positive."], "prefix")
    assert (own.confound_names, own.confound_column) == (["p", "q"], "own")  # a split's own are kept
    enc = encode_split(train, tok, max_length=6)
    assert (enc.confound_names, enc.confound_column) == (["Negative.", "Positive."], "prefix")


def test_truncated_rows_are_counted(tok):
    from registry.data import truncation_note

    split = _split(n=7, pair=True)  # row i: i + 1 words, then "pair i": [CLS] + i+1 + [SEP] + 2 + [SEP] = i + 6 tokens
    enc = encode_split(split, tok, max_length=9)
    assert enc.truncated == 3 and enc.max_length == 9 and enc.input_ids.shape[1] == 9  # rows 4, 5, 6
    assert truncation_note(enc) == "train: 3 of 7 pairs truncated to 9 tokens"
    assert truncation_note(encode_split(split, tok, max_length=64)) is None
    assert encode_split(_split(n=3), tok, max_length=4).truncated == 1  # "word word word" -> 5 tokens


def test_label_groups_reach_the_encoded_split(tok):
    split = _split(n=3)
    split.label_groups, split.label_names = [[0], [1, 2]], ["entailment", "non-entailment"]
    enc = encode_split(split, tok, max_length=8)
    assert enc.label_groups == [[0], [1, 2]] and enc.label_names == ["entailment", "non-entailment"]
