"""``snli``: SNLI premise/hypothesis pairs (a 9k train subset, full dev and test), plus HANS."""
from __future__ import annotations

from pathlib import Path

from registry import register
from registry.base import DatasetComponent
from registry.datasets import _nli
from registry.types import DatasetBundle

FILES = {"train_subset": "snli/train_subset.jsonl", "dev": "snli/dev.jsonl", "test": "snli/test.jsonl"}


@register("dataset", "snli")
class SNLI(DatasetComponent):
    summary = "SNLI premise/hypothesis pairs, 3 classes: train_subset (8,999), dev, test; plus HANS as split 'hans'"
    paper = "Bowman et al. 2015 (SNLI); McCoy et al. 2019 (HANS)"
    equation = ("labels 0 entailment, 1 neutral, 2 contradiction; on 'hans' the model's 3 classes are collapsed to "
                "log P(entailment), log P(neutral or contradiction)")

    class Params(_nli.WithHansParams):
        pass

    def columns(self) -> frozenset[str]:
        return _nli.columns(self.params)

    def split_names(self) -> tuple[str, ...]:
        return tuple(FILES) + (("hans",) if self.params.hans else ())

    def load(self, data_root: Path) -> DatasetBundle:
        return _nli.build_bundle("snli", Path(data_root), FILES, "train_subset", self.params)
