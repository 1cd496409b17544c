"""SNIPS: intents, keyword rationales (coverage as in ../shared/data/README.md), few-shot
sampling, and the word -> subword rationale mask on hand-made examples."""
from __future__ import annotations

import numpy as np
import pytest

import registry
from registry.data import encode_split
from registry.datasets.snips import few_shot, rationale_mask
from registry.errors import UserError
from registry.models._loading import load_tokenizer, offline_model_dir
from registry.types import Split

INTENTS = ["AddToPlaylist", "BookRestaurant", "GetWeather", "PlayMusic", "RateBook", "SearchCreativeWork",
           "SearchScreeningEvent"]


@pytest.fixture(scope="module")
def full(shared_root):
    return registry.build("dataset", "snips").load(shared_root)


@pytest.fixture(scope="module")
def tok():
    return load_tokenizer(offline_model_dir())


def test_splits_labels_and_rationale_coverage(full):
    assert full.label_names == INTENTS  # labels.json order without JointBERT's UNK (no row uses it)
    assert {k: len(s) for k, s in full.splits.items()} == {"train": 13084, "dev": 700, "test": 700}
    covered = {k: np.mean([any(m) for m in s.rationale]) for k, s in full.splits.items()}
    assert (round(covered["train"], 3), round(covered["dev"], 3), round(covered["test"], 3)) == (0.844, 0.830, 0.813)
    assert full.notes[0] == ("snips train: 2036 of 13084 examples have no rationale word "
                             "(kept for the task loss; rationale objectives skip them)")
    train = full.splits["train"]
    assert all(len(m) == len(t.split(" ")) for m, t in zip(train.rationale, train.text))
    assert train.text[1] == "add step to me to the 50 clásicos playlist" and train.label[1] == 0
    assert train.rationale[1] == [1, 0, 0, 0, 0, 0, 0, 0, 1]
    assert registry.build("dataset", "snips").columns() == {"text", "label", "rationale"}


def test_rationale_words_come_from_the_gold_intent_only():
    assert rationale_mask("Book a table at a restaurant , reservations please", {"book", "restaurant", "reservation",
                                                                                  "reservations"}) == [1, 0, 0, 0, 0, 1, 0, 1, 0]
    assert rationale_mask("play the song", {"weather"}) == [0, 0, 0]  # another intent's keywords do not count


def test_few_shot_is_seeded_per_class_and_train_only(shared_root, full):
    five = registry.build("dataset", "snips", {"shots": 5}).load(shared_root)
    train = five.splits["train"]
    assert len(train) == 35 and np.bincount(train.label).tolist() == [5] * 7
    assert len(five.splits["dev"]) == 700 and len(five.splits["test"]) == 700
    assert five.notes[0].startswith("snips train: ") and five.notes[0].endswith(" of 35 examples have no rationale word "
                                                                                 "(kept for the task loss; rationale objectives skip them)")
    again = registry.build("dataset", "snips", {"shots": 5}).load(shared_root).splits["train"]
    other = registry.build("dataset", "snips", {"shots": 5, "shot_seed": 1988}).load(shared_root).splits["train"]
    assert again.ids == train.ids and other.ids != train.ids
    ten = registry.build("dataset", "snips", {"shots": 10}).load(shared_root).splits["train"]
    assert len(ten) == 70 and set(full.splits["train"].ids) >= set(ten.ids)


def test_few_shot_takes_the_first_n_per_class_of_the_shuffle():
    labels = [0, 1, 0, 1, 0, 1, 1]
    import random

    order = list(range(7))
    random.Random(3).shuffle(order)
    expected = sorted([i for i in order if labels[i] == 0][:2] + [i for i in order if labels[i] == 1][:2])
    assert few_shot(labels, 2, 3, ["a", "b"], "f") == expected
    with pytest.raises(UserError) as exc:
        few_shot(labels, 4, 3, ["a", "b"], "train.jsonl")
    assert str(exc.value) == ("train.jsonl: data.params.shots is 4 but class 'a' has only 3 training examples; "
                              "fix: set data.params.shots to at most 3 (or null for the full set)")


def test_shots_must_be_positive():
    with pytest.raises(Exception, match="greater than or equal to 1"):
        registry.build("dataset", "snips", {"shots": 0})


# ---- the word -> subword mask (registry.data._token_rationale) on hand-made rows ----

def _one(text: str, mask: list[int], pair: str | None = None, pair_mask: list[int] | None = None) -> Split:
    return Split(name="train", ids=["r"], text=[text], label=[0], text_pair=None if pair is None else [pair],
                 rationale=[mask + (pair_mask or [])])


def test_a_word_split_into_three_pieces_is_marked_on_all_three(tok):
    enc = encode_split(_one("play unaffable music", [0, 1, 0]), tok, max_length=32)
    pieces = tok.convert_ids_to_tokens(enc.input_ids[0].tolist())
    assert pieces == ["[CLS]", "play", "una", "##ffa", "##ble", "music", "[SEP]"]
    assert enc.rationale[0].tolist() == [0, 0, 1, 1, 1, 0, 0]


def test_a_rationale_word_cut_by_truncation_just_ends(tok):
    split = _one("play unaffable music", [0, 1, 1])
    enc = encode_split(split, tok, max_length=5)  # [CLS] play una ##ffa [SEP]
    assert tok.convert_ids_to_tokens(enc.input_ids[0].tolist()) == ["[CLS]", "play", "una", "##ffa", "[SEP]"]
    assert enc.rationale[0].tolist() == [0, 0, 1, 1, 0]
    enc = encode_split(split, tok, max_length=3)  # [CLS] play [SEP]: the rationale is cut off entirely
    assert enc.rationale[0].tolist() == [0, 0, 0]


def test_pair_words_follow_the_text_words(tok):
    enc = encode_split(_one("add song", [0, 1], pair="to unaffable list", pair_mask=[0, 1, 1]), tok, max_length=32)
    pieces = tok.convert_ids_to_tokens(enc.input_ids[0].tolist())
    assert pieces == ["[CLS]", "add", "song", "[SEP]", "to", "una", "##ffa", "##ble", "list", "[SEP]"]
    assert enc.rationale[0].tolist() == [0, 0, 1, 0, 0, 1, 1, 1, 1, 0]
    assert enc.token_type_ids[0].tolist() == [0] * 4 + [1] * 6
