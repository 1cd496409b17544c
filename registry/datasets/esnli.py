"""``esnli``: e-SNLI pairs with annotator highlights as word rationales (Camburu et al. 2018), the
UIMER NLI setting (Chen, Jiang & Tu 2024, §4; the authors' ``nli.py``).

- ``train``: the 999 highlighted e-SNLI *train* pairs of ``snli/esnli_highlights.jsonl`` (UIMER's
  ``view_data.txt``; 334 entailment, 332 neutral, 333 contradiction), few-shot like ``snips``:
  ``shots`` per class of a seeded shuffle, or all.  The rationale of a pair is
  ``premise_rationale + hypothesis_rationale``: one 0/1 per word of ``premise.split(" ")``
  followed by one per word of ``hypothesis.split(" ")`` (``registry.types.Split.rationale``).
- ``highlights`` (with ``shots`` only): the highlighted pairs not drawn into train, with their
  rationales, for rationale metrics (``rationale_agreement``) and as a third accuracy split.
- ``dev`` and ``test``: SNLI dev/test (9,842 / 9,824 pairs, e-SNLI's text; ``eval_size`` draws
  a seeded subsample) without rationales (``Split.rationale`` is None: rationale metrics skip them).

The highlight pairs are untokenised ("airplane.") while e-SNLI dev/test are tokenised with
spaces around punctuation ("airplane ."); the subword tokenizer sees almost the same pieces.
UIMER's ``--shot N`` takes the first N rows of the train CSV (not per class, the same for every
seed); this takes N per class of a seeded shuffle, as UIMER's SNIPS sampling.
"""
from __future__ import annotations

from pathlib import Path

from pydantic import Field

from registry import StrictParams, register
from registry.base import DatasetComponent
from registry.datasets import _nli
from registry.datasets._common import read_jsonl_numbered
from registry.datasets.data_root import require_file
from registry.datasets.snips import few_shot
from registry.errors import UserError
from registry.types import DatasetBundle, Split

HIGHLIGHTS = "snli/esnli_highlights.jsonl"
EVAL_FILES = {"dev": "snli/dev.jsonl", "test": "snli/test.jsonl"}
RATIONALE_FIELDS = ("premise_tokens", "hypothesis_tokens", "premise_rationale", "hypothesis_rationale")


def pair_rationales(path: Path, split: Split) -> list[list[int]]:
    """``premise_rationale + hypothesis_rationale`` per row, checked against the pair's words
    (a UserError naming the file and line otherwise)."""
    lines = [line for line, row in read_jsonl_numbered(path) if row.get("label") not in _nli.NO_GOLD]
    out = []
    for i, line in enumerate(lines):
        missing = [f for f in RATIONALE_FIELDS if f not in split.meta or split.meta[f][i] is None]
        if missing:
            raise UserError(f"{path}:{line}: no {missing[0]!r} field (dataset 'esnli' reads "
                            f"{', '.join(RATIONALE_FIELDS)}); fix: add it or correct the file")
        mask = []
        for side, text in (("premise", split.text[i]), ("hypothesis", split.text_pair[i])):
            words, rat = split.meta[f"{side}_tokens"][i], split.meta[f"{side}_rationale"][i]
            if len(rat) != len(text.split(" ")) or words != text.split(" ") or any(v not in (0, 1) for v in rat):
                raise UserError(f"{path}:{line}: {side}_rationale must hold one 0/1 per word of {side}.split(' ') "
                                f"({len(text.split(' '))} words, {side}_tokens equal to them); it has {len(rat)} "
                                f"entries; fix: regenerate the row")
            mask += [int(v) for v in rat]
        out.append(mask)
    return out


@register("dataset", "esnli")
class ESNLI(DatasetComponent):
    summary = ("e-SNLI: 999 train pairs with annotator highlights as word rationales (few-shot), the rest as split "
               "'highlights', SNLI dev/test without rationales")
    paper = ("Camburu et al. 2018 (e-SNLI); Chen, Jiang & Tu 2024, Using Interpretation Methods for Model Enhancement "
             "(UIMER), §4 (e-SNLI)")
    equation = ("labels 0 entailment, 1 neutral, 2 contradiction; rationale = premise word highlights followed by "
                "hypothesis word highlights; shots: first N per class of a seeded shuffle of the highlighted pairs")

    class Params(StrictParams):
        shots: int | None = Field(
            None, ge=1, description="highlighted pairs per class kept in train (UIMER's --shot N takes the first N pairs of the "
            "CSV instead); the others form the split 'highlights'. null: all 999 in train, no 'highlights' split")
        shot_seed: int = Field(
            55, description="seed of the few-shot shuffle (python random.Random), the same sample for every run seed "
            "(55 is the first of the authors' seeds)")
        eval_size: int | None = Field(
            None, ge=1, description="pairs drawn (seeded, without replacement) from SNLI dev and from test; null: all")
        subsample_seed: int = Field(2021, description="seed of the dev/test subsampling")

    def columns(self) -> frozenset[str]:
        return frozenset({"text", "text_pair", "label", "rationale"})

    def split_names(self) -> tuple[str, ...]:
        return ("train", "dev", "test") + (("highlights",) if self.params.shots is not None else ())

    def load(self, data_root: Path) -> DatasetBundle:
        root = Path(data_root)
        p = self.params
        path = require_file(root, HIGHLIGHTS, "esnli")
        pool, dropped = _nli.read_pairs(path, _nli.LABEL_NAMES, "train", "esnli")
        pool.rationale = pair_rationales(path, pool)
        pool.meta = {k: v for k, v in pool.meta.items() if k not in RATIONALE_FIELDS}
        splits: dict[str, Split] = {}
        notes = [f"esnli highlights: {dropped} rows without a gold label skipped"] if dropped else []
        if p.shots is None:
            splits["train"] = pool
        else:
            keep = few_shot(pool.label, p.shots, p.shot_seed, list(_nli.LABEL_NAMES), str(path))
            rest = sorted(set(range(len(pool))) - set(keep))
            splits["train"] = _nli.take(pool, keep)
            splits["highlights"] = _nli.take(pool, rest)
            splits["highlights"].name = "highlights"
        empty = sum(1 for m in splits["train"].rationale if not any(m))
        if empty:
            notes.append(f"esnli train: {empty} of {len(splits['train'])} pairs have no highlighted word "
                         "(kept for the task loss; rationale objectives skip them)")
        files = [path]
        for name, rel in EVAL_FILES.items():
            f = require_file(root, rel, "esnli")
            split, dropped = _nli.read_pairs(f, _nli.LABEL_NAMES, name, "esnli")
            if dropped:
                notes.append(f"esnli {name}: {dropped:,} rows without a gold label skipped ({len(split):,} kept)")
            splits[name] = _nli.subsample(split, p.eval_size, p.subsample_seed)
            files.append(f)
        ordered = {n: splits[n] for n in self.split_names()}
        return DatasetBundle(splits=ordered, label_names=list(_nli.LABEL_NAMES), files=files, notes=notes)
