"""``mnli``: MultiNLI pairs (a 9k train subset, a 1k dev subset, full dev-matched), plus HANS."""
from __future__ import annotations

from pathlib import Path

from registry import register
from registry.base import DatasetComponent
from registry.datasets import _nli
from registry.types import DatasetBundle

FILES = {"train_subset": "mnli/train_subset.jsonl", "dev_subset": "mnli/dev_subset.jsonl",
         "dev_matched": "mnli/dev_matched.jsonl"}


@register("dataset", "mnli")
class MNLI(DatasetComponent):
    summary = "MultiNLI pairs, 3 classes: train_subset (8,999), dev_subset (1,000), dev_matched (9,815); plus HANS as split 'hans'"
    paper = ("Williams et al. 2018 (MultiNLI); McCoy et al. 2019 (HANS); Zylberajch et al. 2021 (HILDIF), Fig. 1c. "
             "dev_subset is drawn from MNLI train (model selection), dev_matched is the test")
    equation = ("labels 0 entailment, 1 neutral, 2 contradiction; on 'hans' the model's 3 classes are collapsed to "
                "log P(entailment), log P(neutral or contradiction)")

    class Params(_nli.WithHansParams):
        pass

    def columns(self) -> frozenset[str]:
        return _nli.columns(self.params)

    def split_names(self) -> tuple[str, ...]:
        return tuple(FILES) + (("hans",) if self.params.hans else ())

    def load(self, data_root: Path) -> DatasetBundle:
        return _nli.build_bundle("mnli", Path(data_root), FILES, "train_subset", self.params)
