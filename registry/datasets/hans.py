"""``hans``: the HANS evaluation set alone (McCoy et al. 2019), for evaluating a 3-class NLI model."""
from __future__ import annotations

from pathlib import Path

from pydantic import Field

from registry import register
from registry.base import DatasetComponent
from registry.datasets import _nli
from registry.types import DatasetBundle


@register("dataset", "hans")
class HANS(DatasetComponent):
    summary = "HANS evaluation set (30,000 pairs, split 'evaluation'): entailment vs non-entailment, per heuristic and subcase"
    paper = "McCoy, Pavlick & Linzen 2019, Right for the Wrong Reasons (HANS); regenerated from its templates (see the data README)"
    equation = "P(non-entailment) = P(neutral) + P(contradiction); heuristics lexical_overlap, subsequence, constituent"

    class Params(_nli.NLIParams):
        eval_size: int | None = Field(
            None, ge=30, description="rows drawn, stratified: the same number from each of the 30 (heuristic, subcase) cells; null = all"
        )

    def columns(self) -> frozenset[str]:
        return _nli.columns(self.params)

    def split_names(self) -> tuple[str, ...]:
        return ("evaluation",)

    def load(self, data_root: Path) -> DatasetBundle:
        p = self.params
        path, split, dropped = _nli.load_hans(Path(data_root), "hans", "evaluation", p.eval_size, p.subsample_seed)
        _nli.add_confound(split, p.confound)
        names = _nli.CONFOUNDS[p.confound]
        notes = [f"hans evaluation: {dropped:,} rows without a gold label skipped"] if dropped else []
        return DatasetBundle(splits={"evaluation": split}, label_names=list(_nli.LABEL_NAMES),
                             confound_names=list(names) if names else None, files=[path],
                             confound_column=None if p.confound == "none" else p.confound, notes=notes)
