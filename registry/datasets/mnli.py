"""``mnli``: MultiNLI pairs (a 9k train subset, a 1k dev subset, full dev-matched), plus HANS."""
from __future__ import annotations

from registry import register
from registry.datasets._nli import PairDataset


@register("dataset", "mnli")
class MNLI(PairDataset):
    summary = "MultiNLI pairs, 3 classes: train_subset (8,999), dev_subset (1,000), dev_matched (9,815); plus HANS as split 'hans'"
    paper = ("Williams et al. 2018 (MultiNLI); McCoy et al. 2019 (HANS); Zylberajch et al. 2021 (HILDIF), Fig. 1c. "
             "dev_subset is drawn from MNLI train (model selection), dev_matched is the test")
    NAME = "mnli"
    FILES = {"train_subset": "mnli/train_subset.jsonl", "dev_subset": "mnli/dev_subset.jsonl",
             "dev_matched": "mnli/dev_matched.jsonl"}
