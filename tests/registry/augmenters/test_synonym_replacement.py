"""The synonym-replacement augmenter: label kept, seeded, stopwords never replaced, copies per score."""
import gzip
import json

import pytest

import registry
from registry.errors import UserError

EXAMPLE = {"id": "mnli-1", "text": "The quick fox jumped over the lazy dog.", "text_pair": "A fox is not quick.",
           "label": "contradiction", "extra": 7}


@pytest.fixture
def root(tmp_path):
    rows = [{"id": "adj:quick", "word": "quick", "pos": "adj", "synonyms": ["speedy", "fast"]},
            {"id": "noun:fox", "word": "fox", "pos": "noun", "synonyms": ["Reynard"]},
            {"id": "verb:jump", "word": "jumped", "pos": "verb", "synonyms": ["leaped", "sprang up"]},
            {"id": "noun:not", "word": "not", "pos": "adv", "synonyms": ["non"]},  # a stopword: never replaced
            {"id": "noun:hot dog", "word": "hot dog", "pos": "noun", "synonyms": ["frank"]}]
    (tmp_path / "synonyms").mkdir()
    with gzip.open(tmp_path / "synonyms" / "synonyms.jsonl.gz", "wt") as f:
        f.write("\n".join(json.dumps(r) for r in rows) + "\n")
    return tmp_path


def build(root, **params):
    return registry.build("augmenters", "synonym_replacement", {"data_root": str(root), **params})


def test_copies_keep_the_label_and_other_fields_and_get_new_ids(root):
    copies = build(root, words=2).augment(EXAMPLE, 20, seed=1)
    assert len(copies) == 20 and len({c["id"] for c in copies}) == 20
    assert all(c["id"].startswith("mnli-1#aug") for c in copies)
    assert all(c["label"] == "contradiction" and c["extra"] == 7 for c in copies)
    assert any(c["text"] != EXAMPLE["text"] for c in copies) and any(c["text_pair"] != EXAMPLE["text_pair"] for c in copies)
    for c in copies:
        assert " not " in c["text_pair"] and c["text"].startswith("The ")  # stopwords stay
        assert len(set(EXAMPLE["text"].split()) - set(c["text"].split())) <= 2  # at most `words` replaced
    assert {w for c in copies for w in c["text"].split()} <= set(EXAMPLE["text"].split()) | {
        "speedy", "fast", "Reynard", "leaped", "sprang", "up"}


def test_reproducible_by_seed(root):
    a = build(root).augment(EXAMPLE, 10, seed=3)
    assert a == build(root).augment(EXAMPLE, 10, seed=3)
    assert a != build(root).augment(EXAMPLE, 10, seed=4)


def test_one_field_only(root):
    copies = build(root, fields="text_pair").augment(EXAMPLE, 10, seed=0)
    assert all(c["text"] == EXAMPLE["text"] for c in copies)


def test_score_to_copies_mappings(root):
    assert [build(root).copies(s) for s in range(1, 6)] == [10, 20, 30, 40, 50]  # the paper: 10 x score
    assert [build(root, copies_per_score="code").copies(s) for s in range(1, 6)] == [10, 30, 50, 80, 100]
    assert build(root, copies_per_score=[0, 0, 1, 2, 3]).copies(1) == 0
    with pytest.raises(UserError, match="a feedback score is an integer from 1 to 5, got 0"):
        build(root).copies(0)
    with pytest.raises(UserError, match="copies_per_score needs 5 numbers"):
        build(root, copies_per_score=[1, 2])


def test_missing_synonyms_file_names_the_file(tmp_path):
    with pytest.raises(UserError, match="synonyms.jsonl.gz"):
        build(tmp_path).augment(EXAMPLE, 1, seed=0)


def test_the_shared_wordnet_loads(shared_root):
    aug = registry.build("augmenters", "synonym_replacement", {"data_root": str(shared_root)})
    assert len(aug.synonyms()) > 40_000
    copies = aug.augment({"id": "x", "text": "A man is playing a guitar on the stage.", "text_pair": None,
                          "label": "entailment"}, 5, seed=0)
    assert all(c["label"] == "entailment" and c["text_pair"] is None for c in copies)
    assert any(c["text"] != "A man is playing a guitar on the stage." for c in copies)


def test_inflected_words_are_found_by_their_base_forms(root):
    """morphy's suffix rules, each kept only where the base is a lemma of the rule's part of
    speech: 'foxes' -> noun 'fox', 'jumps' -> verb 'jump'; 'quicker' -> adj 'quick'."""
    from registry.augmenters.synonym_replacement import base_forms, synonyms_of

    aug = build(root)
    table = aug.synonyms()
    assert base_forms("foxes", table) == [("fox", "noun")]
    assert base_forms("quicker", table) == [("quick", "adj")]
    assert base_forms("quickly", table) == []  # no rule for -ly
    assert synonyms_of("Foxes", table) == ("Reynard",)
    copies = aug.augment({"id": "p", "text": "Two foxes run.", "text_pair": None, "label": "neutral"}, 3, seed=0)
    assert [c["text"] for c in copies] == ["Two Reynard run."] * 3  # the lemma, uninflected, as EDA inserts it


def test_the_shared_wordnet_finds_inflected_words(shared_root):
    from registry.augmenters.synonym_replacement import base_forms

    table = registry.build("augmenters", "synonym_replacement", {"data_root": str(shared_root)}).synonyms()
    assert ("car", "noun") in base_forms("cars", table)
    assert ("play", "verb") in base_forms("playing", table)
    assert ("box", "noun") in base_forms("boxes", table) and ("man", "noun") in base_forms("men", table)


def test_a_score_outside_one_to_five_is_refused(root):
    aug = build(root, copies_per_score="code")
    for bad in (0, 6, -1, 2.5, True):
        with pytest.raises(UserError, match="a feedback score is an integer from 1 to 5"):
            aug.copies(bad)
    assert aug.copies(5.0) == 100
