"""The hildif objective's augmented set S = U g(z, s): one entry per (anchor, example) pair,
copies per score, and unique ids when one example is influential for two anchors."""
import gzip
import json

import pytest
import torch

import registry

EXPLANATIONS = {
    "label_names": ["entailment", "neutral", "contradiction"],
    "anchors": [
        {"id": "a1", "candidates": [{"id": "z1", "text": "The quick fox runs.", "text_pair": "A fox runs.", "label": "entailment"},
                                    {"id": "z2", "text": "A dog sleeps.", "text_pair": "The dog is awake.", "label": "contradiction"}]},
        {"id": "a2", "candidates": [{"id": "z1", "text": "The quick fox runs.", "text_pair": "A fox runs.", "label": "entailment"}]},
    ],
}


@pytest.fixture
def root(tmp_path):
    rows = [{"id": "adj:quick", "word": "quick", "pos": "adj", "synonyms": ["speedy", "fast"]},
            {"id": "noun:dog", "word": "dog", "pos": "noun", "synonyms": ["hound"]}]
    (tmp_path / "synonyms").mkdir()
    with gzip.open(tmp_path / "synonyms" / "synonyms.jsonl.gz", "wt") as f:
        f.write("\n".join(json.dumps(r) for r in rows) + "\n")
    return tmp_path


def hildif(augment=None):
    obj = registry.build("objectives", "hildif", {"augment": augment})
    obj.round_path = "round-0"
    return obj


def test_an_example_shared_by_two_anchors_enters_once_per_pair_with_unique_ids():
    scores = {("a1", "z1"): 5, ("a1", "z2"): 2, ("a2", "z1"): 3}
    s = hildif().augmented(EXPLANATIONS, scores, seed=0)
    assert s.ids == ["z1", "z2", "z1@a2"]
    assert s.label == [0, 2, 0] and s.text[0] == s.text[2] and s.text_pair[1] == "The dog is awake."


def test_copies_follow_each_pairs_score_and_every_id_is_unique(root):
    scores = {("a1", "z1"): 5, ("a1", "z2"): 2, ("a2", "z1"): 3}
    aug = {"name": "synonym_replacement", "params": {"data_root": str(root)}}  # the paper's 10 x score copies
    s = hildif(aug).augmented(EXPLANATIONS, scores, seed=0)
    assert len(s) == (1 + 50) + (1 + 20) + (1 + 30)
    assert len(set(s.ids)) == len(s.ids)
    assert sum(i.startswith("z1@a2#aug") for i in s.ids) == 30 and sum(i.startswith("z2#aug") for i in s.ids) == 20
    assert s.label == [0] * 51 + [2] * 21 + [0] * 31  # labels kept
    assert s == hildif(aug).augmented(EXPLANATIONS, scores, seed=0)  # reproducible by seed


def test_the_planned_round_counts_the_score_with_the_most_copies(root):
    """The plan's round length is the largest S; a copies table that is not increasing in the
    score must not make the planned round shorter than a real one."""
    def planned(table):
        aug = {"name": "synonym_replacement", "params": {"data_root": str(root), "copies_per_score": table}}
        return hildif(aug).max_examples()

    assert planned("paper") == 5 * 10 * (1 + 50)
    assert planned([9, 1, 1, 1, 2]) == 5 * 10 * (1 + 9)


def test_mistake_groups_must_name_every_class_once():
    from registry.errors import UserError
    from registry.types import ObjectiveContext

    names = ["entailment", "neutral", "contradiction"]
    ctx = lambda: ObjectiveContext(model=None, train=None, num_labels=3, num_confounds=1, device=torch.device("cpu"),
                                   generator=torch.Generator(), splits={"dev": None}, encode=lambda s: s,
                                   label_names=names, feedback=object())
    ok = registry.build("objectives", "hildif", {"anchors": {"mistakes_between": [["entailment"], ["neutral", "contradiction"]]}})
    ok.bind(ctx())
    assert ok.group_of == [0, 1, 1]  # entailment | neutral, contradiction
    bad = registry.build("objectives", "hildif", {"anchors": {"mistakes_between": [["entailment"], ["neutral"]]}})
    with pytest.raises(UserError, match=r"anchors.mistakes_between must name every class once \(entailment, neutral, contradiction\)"):
        bad.bind(ctx())
    twice = registry.build("objectives", "hildif", {"anchors": {"select": "ids", "ids": ["d-1", "d-2", "d-1"]}})
    with pytest.raises(UserError, match="anchors.ids lists d-1 more than once"):
        twice.bind(ctx())
