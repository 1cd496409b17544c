"""``msgs``: MSGS syntactic_category (label) × relative_position (confound), Influence Tuning's split."""
from __future__ import annotations

from pathlib import Path

from registry import StrictParams, register
from registry.base import DatasetComponent
from registry.datasets._common import read_jsonl
from registry.datasets.data_root import require_file
from registry.types import DatasetBundle, Split

SPLITS = ("train", "dev", "test")


@register("dataset", "msgs")
class MSGS(DatasetComponent):
    summary = "MSGS: label = has an adjective, confound = 'the' precedes 'a' (99.7% agreement in train, 66.7% in dev/test)"
    paper = "Warstadt et al. 2020, Learning Which Features Matter (MSGS); split of Han & Tsvetkov 2021, §5.2"
    equation = "label = linguistic_feature_label, confound = surface_feature_label"

    class Params(StrictParams):
        pass

    def columns(self) -> frozenset[str]:
        return frozenset({"text", "label", "confound"})

    def load(self, data_root: Path) -> DatasetBundle:
        files = [require_file(Path(data_root), f"msgs/{s}.jsonl", "msgs") for s in SPLITS]
        splits = {}
        for name, f in zip(SPLITS, files):
            rows = read_jsonl(f)
            splits[name] = Split(
                name=name,
                ids=[r["id"] for r in rows],
                text=[r["text"] for r in rows],
                label=[int(r["label"]) for r in rows],
                confound=[int(r["surface_feature_label"]) for r in rows],
            )
        return DatasetBundle(
            splits=splits,
            label_names=["no_adjective", "adjective"],
            confound_names=["the_not_before_a", "the_before_a"],
            files=files,
            confound_column="relative_position",  # MSGS's surface feature (data field surface_feature_label)
        )
