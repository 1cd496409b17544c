"""MSGS: counts and the feature agreement recorded in ../shared/data/README.md."""
from __future__ import annotations

import numpy as np

import registry


def test_msgs_counts_and_agreement(shared_root):
    bundle = registry.build("dataset", "msgs").load(shared_root)
    assert bundle.files == [shared_root / "msgs" / f"{s}.jsonl" for s in ("train", "dev", "test")]
    assert len(bundle.label_names) == 2 and len(bundle.confound_names) == 2
    expected = {"train": (5000, 0.997), "dev": (15000, 2 / 3), "test": (15000, 2 / 3)}
    for name, (n, agree) in expected.items():
        split = bundle.splits[name]
        assert len(split) == len(split.text) == len(split.confound) == n
        assert abs(np.mean(np.array(split.label) == np.array(split.confound)) - agree) < 1e-3
        assert set(split.label) == set(split.confound) == {0, 1}
    train = bundle.splits["train"]
    pairs = list(zip(train.label, train.confound))
    assert (pairs.count((1, 0)), pairs.count((0, 1))) == (9, 6)


def test_confound_is_named_relative_position(shared_root):
    bundle = registry.build("dataset", "msgs").load(shared_root)
    assert bundle.confound_column == "relative_position"
    assert bundle.splits["test"].confound_names == ["the_not_before_a", "the_before_a"]
