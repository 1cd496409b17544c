"""``snips``: SNIPS intent classification with keyword rationales and few-shot sampling (UIMER).

Rationales are derived, not annotated: word ``i`` of an utterance is a rationale word iff
``text.split(" ")[i].lower()`` is in the keyword list of the utterance's GOLD intent
(``snips/rationale_keywords.json``, UIMER's ``SNIPS_CLASS_2_RATIONALE_V1``). Matching is exact
after lowercasing (the shared files are lower-cased already): no punctuation stripping and no
stemming. Plurals are matched only where the JSON lists them ("reservation" and
"reservations", "star"/"stars", "movie"/"movies", "cinema"/"cinemas", "film"/"films"); the
authors' "reservation(s)" notation is already expanded there, nothing else is added.
Utterances without a keyword keep an all-zero mask (they still train the task loss); their
number per split is in ``DatasetBundle.notes``.
"""
from __future__ import annotations

import json
import random
from pathlib import Path

from pydantic import Field

from registry import StrictParams, register
from registry.base import DatasetComponent
from registry.datasets._common import did_you_mean, read_jsonl
from registry.datasets.data_root import require_file
from registry.errors import UserError
from registry.types import DatasetBundle, Split

SPLITS = ("train", "dev", "test")


def rationale_mask(text: str, keywords: set[str]) -> list[int]:
    """0/1 per word of ``text.split(" ")``: 1 where the lower-cased word is a keyword."""
    return [int(w.lower() in keywords) for w in text.split(" ")]


def few_shot(labels: list[int], shots: int, seed: int, label_names: list[str], where: str) -> list[int]:
    """Row indices of a ``shots``-per-class sample, in file order (UIMER ``data_loader.py``):
    shuffle all rows with ``random.Random(seed)``, then keep the first ``shots`` of each class."""
    sizes = [labels.count(c) for c in range(len(label_names))]
    for c, size in enumerate(sizes):
        if shots > size:
            raise UserError(
                f"{where}: data.params.shots is {shots} but class {label_names[c]!r} has only {size} training "
                f"examples; fix: set data.params.shots to at most {min(sizes)} (or null for the full set)"
            )
    order = list(range(len(labels)))
    random.Random(seed).shuffle(order)
    taken = [0] * len(label_names)
    keep = []
    for i in order:
        if taken[labels[i]] < shots:
            taken[labels[i]] += 1
            keep.append(i)
    return sorted(keep)


@register("dataset", "snips")
class Snips(DatasetComponent):
    summary = "SNIPS intents (7 classes) with keyword rationales from the gold intent's list; optional N-shot train"
    paper = "Chen, Jiang & Tu 2024, Using Interpretation Methods for Model Enhancement (UIMER), §4 (SNIPS intent)"
    equation = "rationale_i = [lower(word_i) in keywords[gold intent]]; shots: first N per class of a seeded shuffle of train"

    class Params(StrictParams):
        shots: int | None = Field(
            None, ge=1, description="examples per intent kept in train (UIMER: 1, 5, 10); null: the full training set. "
            "dev and test are never sampled",
        )
        shot_seed: int = Field(
            55, description="seed of the few-shot shuffle (python random.Random). The dataset is loaded once per "
            "recipe, before any run seed, so the sample is the same for every seed of a run; vary it with "
            "--grid data.params.shot_seed=55,1988,... (55 is the first of the authors' seeds)",
        )

    def columns(self) -> frozenset[str]:
        return frozenset({"text", "label", "rationale"})

    def load(self, data_root: Path) -> DatasetBundle:
        root = Path(data_root)
        labels_file = require_file(root, "snips/labels.json", "snips")
        keywords_file = require_file(root, "snips/rationale_keywords.json", "snips")
        files = [require_file(root, f"snips/{s}.jsonl", "snips") for s in SPLITS]
        # JointBERT's vocabulary starts with UNK; no SNIPS row uses it, so it is not a class here
        label_names = [n for n in json.loads(labels_file.read_text(encoding="utf-8"))["intents"] if n != "UNK"]
        keywords = {k: {w.lower() for w in v} for k, v in json.loads(keywords_file.read_text(encoding="utf-8")).items()}
        missing = [n for n in label_names if n not in keywords]
        if missing:
            raise UserError(f"{keywords_file}: no keyword list for intent {missing[0]!r}; fix: add it to the file")
        index = {n: i for i, n in enumerate(label_names)}
        splits: dict[str, Split] = {}
        notes: list[str] = []
        for name, f in zip(SPLITS, files):
            rows = read_jsonl(f)
            for r in rows:
                if r["label"] not in index:
                    raise UserError(f"{f}: row {r['id']!r} has intent {r['label']!r}, not one of {label_names}"
                                    f"{did_you_mean(r['label'], label_names)}; fix: correct the row or labels.json")
            if name == "train" and self.params.shots is not None:
                keep = few_shot([index[r["label"]] for r in rows], self.params.shots, self.params.shot_seed, label_names, str(f))
                rows = [rows[i] for i in keep]
            masks = [rationale_mask(r["text"], keywords[r["label"]]) for r in rows]
            splits[name] = Split(name=name, ids=[r["id"] for r in rows], text=[r["text"] for r in rows],
                                 label=[index[r["label"]] for r in rows], rationale=masks)
            empty = sum(1 for m in masks if not any(m))
            notes.append(f"snips {name}: {empty} of {len(rows)} examples have no rationale word "
                         f"(kept for the task loss; rationale objectives skip them)")
        return DatasetBundle(splits=splits, label_names=label_names, files=[labels_file, keywords_file, *files], notes=notes)
