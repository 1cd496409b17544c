"""``synonym_replacement``: EDA's synonym replacement (Wei & Zou 2019) over the offline WordNet
in ``<data root>/synonyms/``, HILDIF's augmentation g (Zylberajch et al. 2021, sec. 3: "10 x s
augmented samples" of an example scored s; the authors' code: textaugment's
``EDA().synonym_replacement``, one word replaced, premise and hypothesis independently).

A copy replaces up to ``words`` words of each text field, chosen uniformly among the words that
are not stopwords and have a WordNet synonym, each by a uniform draw among its synonyms.  As
EDA (NLTK ``wordnet.synsets(word)``): all parts of speech are pooled (no tagger), and an
inflected word is looked up by its base forms, found with WordNet's morphy suffix rules
(``base_forms``: ``cars`` -> ``car``, ``jumped`` -> ``jump``; a rule's result counts only if it
is a lemma of that rule's part of speech; WordNet's irregular-form exception lists are not in
the offline file, so ``ran`` is not found); the synonym is inserted as its lemma, uninflected,
as EDA does.  Only single-word text tokens are replaced (a multi-word WordNet headword such as
``hot dog`` is never matched); a multi-word synonym is inserted with spaces.  The label and
every other field are kept; copy ``k`` of example ``id`` is ``id#aug<k>``.  Seeded: the same
(example, copies, seed) gives the same copies, in any process.
"""
from __future__ import annotations

import gzip
import json
import random
import re
from functools import lru_cache
from typing import Any, Literal, Optional, Union

from pydantic import Field

from registry import StrictParams, register
from registry.base import Augmenter
from registry.datasets.data_root import require_file, resolve_data_root
from registry.errors import UserError

#: the score-to-copies mappings: the paper's 10 x score and the authors' code's table
COPIES = {"paper": (10, 20, 30, 40, 50), "code": (10, 30, 50, 80, 100)}
#: NLTK's English stopword list (what EDA skips); negations stay, so a copy keeps its meaning
STOPWORDS = frozenset("""i me my myself we our ours ourselves you your yours yourself yourselves he him his himself she
her hers herself it its itself they them their theirs themselves what which who whom this that these those am is are
was were be been being have has had having do does did doing a an the and but if or because as until while of at by
for with about against between into through during before after above below to from up down in out on off over under
again further then once here there when where why how all any both each few more most other some such no nor not only
own same so than too very s t can will just don should now d ll m o re ve y ain aren couldn didn doesn hadn hasn haven
isn ma mightn mustn needn shan shouldn wasn weren won wouldn""".split())
_WORD = re.compile(r"^([^A-Za-z0-9]*)([A-Za-z][A-Za-z'-]*)([^A-Za-z0-9]*)$")


#: WordNet's morphy detachment rules (``morph.c``; NLTK ``WordNetCorpusReader.MORPHOLOGICAL_SUBSTITUTIONS``)
MORPHY_RULES: dict[str, tuple[tuple[str, str], ...]] = {
    "noun": (("s", ""), ("ses", "s"), ("xes", "x"), ("zes", "z"), ("ches", "ch"), ("shes", "sh"), ("men", "man"),
             ("ies", "y")),
    "verb": (("s", ""), ("ies", "y"), ("es", "e"), ("es", ""), ("ed", "e"), ("ed", ""), ("ing", "e"), ("ing", "")),
    "adj": (("er", ""), ("est", ""), ("er", "e"), ("est", "e")),
    "adv": (),
}


@lru_cache(maxsize=4)
def load_synonyms(path: str) -> dict[str, dict[str, tuple[str, ...]]]:
    """lower-cased single-word lemma -> {part of speech: its synonyms (file order, no duplicates)}."""
    table: dict[str, dict[str, list[str]]] = {}
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            word = row["word"].lower()
            if " " in word:
                continue
            seen = table.setdefault(word, {}).setdefault(row.get("pos", "noun"), [])
            for s in row["synonyms"]:
                s = s.replace("_", " ")
                if s.lower() != word and s not in seen:
                    seen.append(s)
    return {w: {pos: tuple(s) for pos, s in by_pos.items() if s} for w, by_pos in table.items()
            if any(by_pos.values())}


def base_forms(word: str, table: dict[str, dict[str, tuple[str, ...]]]) -> list[tuple[str, str]]:
    """(lemma, part of speech) pairs of the lower-cased ``word`` that have synonyms: the word
    itself under every part of speech, then morphy's suffix rules per part of speech, keeping
    a result only where it is a lemma of that part of speech (WordNet's ``morphy`` without
    its exception lists)."""
    found = [(word, pos) for pos in table.get(word, {})]
    for pos, rules in MORPHY_RULES.items():
        for suffix, ending in rules:
            if word.endswith(suffix):
                base = word[: len(word) - len(suffix)] + ending
                if pos in table.get(base, {}) and (base, pos) not in found:
                    found.append((base, pos))
    return found


def synonyms_of(word: str, table: dict[str, dict[str, tuple[str, ...]]]) -> tuple[str, ...]:
    """Synonyms of ``word`` (any case, possibly inflected) pooled over its base forms, first
    seen first, neither the word nor its base forms themselves."""
    lower = word.lower()
    forms = base_forms(lower, table)
    skip = {lower} | {b for b, _ in forms}
    out: list[str] = []
    for base, pos in forms:
        out.extend(s for s in table[base][pos] if s.lower() not in skip and s not in out)
    return tuple(out)


@register("augmenter", "synonym_replacement")
class SynonymReplacement(Augmenter):
    summary = "synonym replacement from the offline WordNet (EDA), label kept; copies per 1-5 score as a param"
    paper = "Wei & Zou 2019 (EDA); Zylberajch et al. 2021 (HILDIF), sec. 3 Data Augmentation"
    equation = "g(z, s) = copies(s) copies of z, each with up to `words` non-stopwords replaced by a WordNet synonym"

    class Params(StrictParams):
        words: int = Field(1, ge=1, description="words replaced per text field per copy (EDA's n; the authors: 1)")
        fields: Literal["both", "text", "text_pair"] = Field(
            "both", description="which texts are changed: both (premise and hypothesis, independently, as the authors), or one")
        copies_per_score: Union[Literal["paper", "code"], list[int]] = Field(
            "paper", description="copies for scores 1..5: paper (10 x score), code (10/30/50/80/100, the authors' "
                                 "log_utils), or a list of 5 numbers")
        file: str = Field("synonyms/synonyms.jsonl.gz", description="the synonyms file, under the data root")
        data_root: Optional[str] = Field(None, description="data root (null: $RECIPE_ENGINE_DATA_ROOT, else ../shared/data)")

    def __init__(self, params: Any = None) -> None:
        super().__init__(params)
        table = self.params.copies_per_score
        if isinstance(table, list) and (len(table) != 5 or min(table) < 0):
            raise UserError(f"synonym_replacement: copies_per_score needs 5 numbers >= 0 (scores 1..5), got {table}")

    def copies(self, score: int) -> int:
        """Copies for a 1-5 similarity score (a score outside 1..5 is a ``UserError``)."""
        if isinstance(score, bool) or int(score) != score or not 1 <= int(score) <= 5:
            raise UserError(f"synonym_replacement: a feedback score is an integer from 1 to 5, got {score!r}")
        table = self.params.copies_per_score
        return int((COPIES[table] if isinstance(table, str) else table)[int(score) - 1])

    def synonyms(self) -> dict[str, dict[str, tuple[str, ...]]]:
        """The synonyms file, loaded once per process: lemma -> {part of speech: synonyms}."""
        root = resolve_data_root(self.params.data_root)
        return load_synonyms(str(require_file(root, self.params.file, "synonym_replacement")))

    def spots(self, text: str) -> tuple[list[str], dict[int, tuple[str, ...]]]:
        """``text``'s space-separated tokens and, per replaceable token, its synonyms (once per text)."""
        table, tokens = self.synonyms(), text.split(" ")
        spots: dict[int, tuple[str, ...]] = {}
        for i, tok in enumerate(tokens):
            m = _WORD.match(tok)
            if m and m.group(2).lower() not in STOPWORDS:
                found = synonyms_of(m.group(2), table)
                if found:
                    spots[i] = found
        return tokens, spots

    def replace(self, tokens: list[str], spots: dict[int, tuple[str, ...]], rng: random.Random) -> str:
        """The text with up to ``words`` of its ``spots`` swapped for a synonym (case of the first letter kept)."""
        tokens = list(tokens)
        for i in rng.sample(sorted(spots), min(self.params.words, len(spots))):
            pre, word, post = _WORD.match(tokens[i]).groups()
            new = rng.choice(spots[i])
            if word[0].isupper():
                new = new[0].upper() + new[1:]
            tokens[i] = pre + new + post
        return " ".join(tokens)

    def augment(self, example: dict[str, Any], copies: int, seed: int) -> list[dict[str, Any]]:
        rng = random.Random(f"{seed}:{example['id']}")
        fields = ("text", "text_pair") if self.params.fields == "both" else (self.params.fields,)
        found = {f: self.spots(example[f]) for f in fields if example.get(f)}  # the same text for every copy
        out = []
        for k in range(copies):
            copy = dict(example, id=f"{example['id']}#aug{k}")
            for f, (tokens, spots) in found.items():
                copy[f] = self.replace(tokens, spots, rng)
            out.append(copy)
        return out
