"""``snli``: SNLI premise/hypothesis pairs (a 9k train subset, full dev and test), plus HANS."""
from __future__ import annotations

from registry import register
from registry.datasets._nli import PairDataset


@register("dataset", "snli")
class SNLI(PairDataset):
    summary = "SNLI premise/hypothesis pairs, 3 classes: train_subset (8,999), dev, test; plus HANS as split 'hans'"
    paper = "Bowman et al. 2015 (SNLI); McCoy et al. 2019 (HANS)"
    NAME = "snli"
    FILES = {"train_subset": "snli/train_subset.jsonl", "dev": "snli/dev.jsonl", "test": "snli/test.jsonl"}
