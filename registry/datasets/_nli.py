"""Shared code of the NLI datasets (``snli``, ``mnli``, ``hans``): reading premise/hypothesis
JSONL, label mapping with no-gold rows dropped and counted, seeded subsampling, the computed
confounds and the HANS split scored as entailment vs non-entailment."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Optional, Any, ClassVar, Literal

import numpy as np
from pydantic import Field

from registry import StrictParams
from registry.base import DatasetComponent
from registry.datasets._common import did_you_mean, read_jsonl_numbered
from registry.datasets.data_root import require_file
from registry.errors import UserError
from registry.types import DatasetBundle, Split

LABEL_NAMES = ["entailment", "neutral", "contradiction"]
HANS_LABEL_NAMES = ["entailment", "non-entailment"]
#: HANS class k = these NLI classes: entailment; neutral + contradiction
HANS_LABEL_GROUPS = [[0], [1, 2]]
HANS_FILE = "hans/evaluation.jsonl.gz"
#: label values that mean "no gold label" (SNLI's '-' and the GLUE/HF convention -1)
NO_GOLD = ("-", "", -1, None)
#: hypothesis words that make the ``negation`` confound 1 (Gururangan et al. 2018's cue words,
#: plus the usual negators); ``n't`` matches any word ending in it (don't, isn't, can't)
NEGATION_WORDS = ("no", "not", "never", "nobody", "nothing", "none", "nowhere", "neither", "nor", "cannot", "n't")
CONFOUNDS: dict[str, list[str] | None] = {
    "none": None,
    "lexical_overlap": ["partial_overlap", "full_overlap"],
    "negation": ["no_negation", "negation"],
}
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


class NLIParams(StrictParams):
    """Params every NLI dataset has."""

    added_later = frozenset({"keep_ids"})

    train_size: int | None = Field(None, ge=1, description="rows drawn (seeded, without replacement) from the training split; null = all")
    eval_size: int | None = Field(None, ge=1, description="rows drawn from each other split (dev, test, ...; HANS has hans_size); null = all")
    subsample_seed: int = Field(2021, description="seed of the subsampling (fixed across run seeds, like textlen's build_seed)")
    keep_ids: Optional[list[str]] = Field(
        None, description="ids every eval_size subsample keeps (in place of drawn rows, so the size holds), e.g. "
                          "HILDIF's handpicked anchors; ids a split lacks are ignored; null = none")
    confound: Literal["none", "lexical_overlap", "negation"] = Field(
        "none",
        description="computed confound column: 'lexical_overlap' = every hypothesis word occurs in the premise "
        "(McCoy et al. 2019); 'negation' = a hypothesis word is no, not, never, nobody, nothing, none, nowhere, neither, "
        "nor, cannot or ends in n't; 'none'. Words: lower-cased runs of letters/digits, punctuation dropped",
    )


class WithHansParams(NLIParams):
    """Params of a training NLI dataset (SNLI, MNLI) that can add the HANS evaluation set."""

    hans: bool = Field(True, description="add the HANS evaluation set as a split named 'hans' (scored entailment vs non-entailment)")
    hans_size: int | None = Field(
        None, ge=30, description="rows drawn from HANS, stratified: hans_size // 30 from each of its 30 (heuristic, subcase) cells (seeded); null = all 30,000"
    )


def words(text: str) -> list[str]:
    """Lower-cased words: runs of letters/digits, an apostrophe suffix kept (``don't``); punctuation dropped."""
    return _WORD.findall(text.lower())


def lexical_overlap(premise: str, hypothesis: str) -> int:
    """1 if every hypothesis word (``words``: lower-cased, punctuation stripped) occurs in the premise."""
    return int(set(words(hypothesis)) <= set(words(premise)))


def negation(hypothesis: str) -> int:
    """1 if a hypothesis word is in ``NEGATION_WORDS`` or ends in ``n't``."""
    return int(any(w in NEGATION_WORDS or w.endswith("n't") for w in words(hypothesis)))


def read_pairs(path: Path, names: list[str], split: str, dataset: str) -> tuple[Split, int]:
    """A split from premise/hypothesis/label JSONL, and how many no-gold rows were dropped.

    Extra fields other than ``id``/``premise``/``hypothesis``/``label`` are kept in ``meta``.
    """
    index = {n: i for i, n in enumerate(names)}
    ids, text, pair, label, meta = [], [], [], [], {}
    dropped = 0
    for line, row in read_jsonl_numbered(path):
        for col in ("premise", "hypothesis", "label"):
            if col not in row:
                raise UserError(
                    f"{path}:{line}: no {col!r} field (dataset {dataset!r} reads premise, hypothesis and label); "
                    f"fields present: {', '.join(row) or '(none)'}{did_you_mean(col, row)}; fix: add the field or correct the file"
                )
        value = row["label"]
        if value in NO_GOLD:
            dropped += 1
            continue
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < len(names):
            value = names[value]  # an integer label is an index into the names
        if not isinstance(value, str) or value not in index:
            raise UserError(
                f"{path}:{line}: label {value!r} is not one of {names}{did_you_mean(str(value), names)}; "
                "fix: correct the label (rows without a gold label may use '-' or -1, which are skipped)"
            )
        ids.append(str(row.get("id", f"{split}-{line}")))
        text.append(str(row["premise"]))
        pair.append(str(row["hypothesis"]))
        label.append(index[value])
        for k, v in row.items():
            if k not in ("id", "premise", "hypothesis", "label"):
                meta.setdefault(k, []).append(v)
    meta = {k: v for k, v in meta.items() if len(v) == len(ids)}  # a column only some rows have is dropped
    return Split(name=split, ids=ids, text=text, label=label, text_pair=pair, meta=meta), dropped


def subsample(split: Split, size: int | None, seed: int, keep_ids: list[str] | None = None) -> Split:
    """``size`` rows drawn without replacement by ``numpy.random.default_rng(seed)``, kept in file order.

    Rows named in ``keep_ids`` are always kept: they take the places of the last drawn rows
    (in draw order) that are not themselves kept, so the size and the other draws hold."""
    if size is None or size >= len(split):
        return split
    drawn = np.random.default_rng(seed).choice(len(split), size=size, replace=False).tolist()
    wanted = set(keep_ids or [])
    forced = [i for i, id_ in enumerate(split.ids) if id_ in wanted]
    if forced:
        missing = [i for i in forced if i not in set(drawn)]
        removable = [i for i in reversed(drawn) if i not in set(forced)][:len(missing)]
        drawn = [i for i in drawn if i not in set(removable)] + missing
    return take(split, sorted(drawn))


def stratified(split: Split, size: int | None, seed: int, by: tuple[str, ...] = ("heuristic", "subcase")) -> Split:
    """``size // cells`` rows from each cell of the ``by`` meta columns (seeded), in file order."""
    if size is None or size >= len(split):
        return split
    cells: dict[tuple, list[int]] = {}
    for i, key in enumerate(zip(*(split.meta[c] for c in by))):
        cells.setdefault(key, []).append(i)
    per = max(size // len(cells), 1)
    rng = np.random.default_rng(seed)
    keep = [i for key in sorted(cells) for i in rng.choice(cells[key], size=min(per, len(cells[key])), replace=False).tolist()]
    return take(split, sorted(keep))


def take(split: Split, rows: list[int]) -> Split:
    """The rows ``rows`` of ``split`` (every column, meta included)."""
    def pick(col: list[Any] | None) -> list[Any] | None:
        return None if col is None else [col[i] for i in rows]

    return Split(
        name=split.name, ids=pick(split.ids), text=pick(split.text), label=pick(split.label),
        text_pair=pick(split.text_pair), confound=pick(split.confound), rationale=pick(split.rationale),
        meta={k: pick(v) for k, v in split.meta.items()}, confound_names=split.confound_names,
        confound_column=split.confound_column, label_groups=split.label_groups, label_names=split.label_names,
    )


def add_confound(split: Split, confound: str) -> None:
    """Fill ``split.confound`` with the computed confound (nothing for ``none``)."""
    if confound == "lexical_overlap":
        split.confound = [lexical_overlap(p, h) for p, h in zip(split.text, split.text_pair)]
    elif confound == "negation":
        split.confound = [negation(h) for h in split.text_pair]


def load_hans(root: Path, dataset: str, name: str, size: int | None, seed: int) -> tuple[Path, Split, int]:
    """The HANS evaluation set as a 2-class split over the NLI model's 3 classes."""
    path = require_file(root, HANS_FILE, dataset)
    split, dropped = read_pairs(path, HANS_LABEL_NAMES, name, dataset)
    split.label_names, split.label_groups = list(HANS_LABEL_NAMES), [list(g) for g in HANS_LABEL_GROUPS]
    return path, stratified(split, size, seed), dropped


def build_bundle(
    dataset: str, root: Path, files: dict[str, str], train_split: str, p: NLIParams
) -> DatasetBundle:
    """Read ``files`` (split -> path under the data root), subsample, add HANS and the confound."""
    splits: dict[str, Split] = {}
    paths: list[Path] = []
    notes: list[str] = []
    for name, rel in files.items():
        path = require_file(root, rel, dataset)
        split, dropped = read_pairs(path, LABEL_NAMES, name, dataset)
        if dropped:
            notes.append(f"{dataset} {name}: {dropped:,} rows without a gold label skipped ({len(split):,} kept)")
        size = p.train_size if name == train_split else p.eval_size
        splits[name] = subsample(split, size, p.subsample_seed, None if name == train_split else p.keep_ids)
        paths.append(path)
    if getattr(p, "hans", False):
        path, splits["hans"], dropped = load_hans(root, dataset, "hans", p.hans_size, p.subsample_seed)
        paths.append(path)
        if dropped:
            notes.append(f"{dataset} hans: {dropped:,} rows without a gold label skipped")
    for split in splits.values():
        add_confound(split, p.confound)
    names = CONFOUNDS[p.confound]
    return DatasetBundle(
        splits=splits, label_names=list(LABEL_NAMES), confound_names=list(names) if names else None, files=paths,
        confound_column=None if p.confound == "none" else p.confound, notes=notes,
    )


def columns(p: NLIParams) -> frozenset[str]:
    """``text``, ``text_pair``, ``label``, and ``confound`` when one is computed."""
    return frozenset({"text", "text_pair", "label"} | ({"confound"} if p.confound != "none" else set()))


class PairDataset(DatasetComponent):
    """An NLI dataset of premise/hypothesis files (``FILES``: split -> file under the data
    root) with HANS as an extra split; a subclass names its files and its training split."""

    NAME: ClassVar[str]
    FILES: ClassVar[dict[str, str]]
    TRAIN: ClassVar[str] = "train_subset"
    equation = ("labels 0 entailment, 1 neutral, 2 contradiction; on 'hans' the model's 3 classes are collapsed to "
                "log P(entailment), log P(neutral or contradiction)")

    class Params(WithHansParams):
        pass

    def columns(self) -> frozenset[str]:
        return columns(self.params)

    def split_names(self) -> tuple[str, ...]:
        return tuple(self.FILES) + (("hans",) if self.params.hans else ())

    def load(self, data_root: Path) -> DatasetBundle:
        return build_bundle(self.NAME, Path(data_root), self.FILES, self.TRAIN, self.params)
