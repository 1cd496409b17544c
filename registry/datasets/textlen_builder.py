"""Build TextLen from CoNLL-2003 sentences (Influence Tuning paper, Han & Tsvetkov 2021, §5.2).

The recipe (paper §5.2 and ../shared/data/README.md, "How the paper built it"): keep the
sentences with at least 30 tokens, cut to 30; draw a length L ~ N(25, 4) for the long class
(label 1) and L ~ N(15, 4) for the short class (label 0), cast to int, keep the first L
tokens; prepend "Positive ." / "Negative .", which agrees with the label in 90% of train
and 50% of dev/test.  Train and dev come from CoNLL train, test from CoNLL valid (testa).

Random streams (numpy ``default_rng([seed, k])``): k=0 shuffles the train pool, k=1 the
test pool, k=2/3/4 draw lengths and prefixes for train/dev/test.  The same seed gives the
same dataset; the files in ../shared/data/textlen were made by the paper's notebook with
other random calls, so a rebuild matches their statistics, not their rows.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from registry.types import Split

SPLIT_STREAM = {"train": 2, "dev": 3, "test": 4}


def build_textlen(
    sentences_train: list[list[str]],
    sentences_test: list[list[str]],
    *,
    seed: int = 2021,
    mu_short: float = 15,
    mu_long: float = 25,
    sigma: float = 4,
    cut: int = 30,
    min_tokens: int = 30,
    n_train: int = 1500,
    n_dev: int = 480,
    n_test: int = 500,
    train_correlation: float = 0.9,
    eval_correlation: float = 0.5,
    prefixes: Sequence[str] = ("Negative .", "Positive ."),
    no_spurious: bool = False,
) -> dict[str, Split]:
    """TextLen splits ``train``/``dev``/``test`` (paper §5.2); ``no_spurious`` drops the prefix.

    ``confound`` is 1 when the "Positive ." prefix (``prefixes[1]``) was drawn, also in the
    ``no_spurious`` variant, where it records what the prefixed twin got.  ``meta["length"]``
    is the sampled L (it may exceed ``cut``).  Raises ValueError if the pools are too small.
    """
    if len(prefixes) != 2:
        raise ValueError(f"prefixes must be two strings (negative, positive), got {list(prefixes)}")
    pool_train = _long_sentences(sentences_train, min_tokens, cut)
    pool_test = _long_sentences(sentences_test, min_tokens, cut)
    if n_train + n_dev > len(pool_train):
        raise ValueError(
            f"n_train + n_dev = {n_train + n_dev} but only {len(pool_train)} CoNLL train sentences have "
            f">= {min_tokens} tokens"
        )
    if n_test > len(pool_test):
        raise ValueError(f"n_test = {n_test} but only {len(pool_test)} CoNLL valid sentences have >= {min_tokens} tokens")
    order = np.random.default_rng([seed, 0]).permutation(len(pool_train))
    order_test = np.random.default_rng([seed, 1]).permutation(len(pool_test))
    chosen = {
        "train": [pool_train[i] for i in order[:n_train]],
        "dev": [pool_train[i] for i in order[n_train : n_train + n_dev]],
        "test": [pool_test[i] for i in order_test[:n_test]],
    }
    prefix_tokens = [p.split(" ") for p in prefixes]
    out = {}
    for name, sents in chosen.items():
        corr = train_correlation if name == "train" else eval_correlation
        rng = np.random.default_rng([seed, SPLIT_STREAM[name]])
        out[name] = _make_split(name, sents, rng, (mu_short, mu_long), sigma, corr, prefix_tokens, no_spurious)
    return out


def _long_sentences(sentences: list[list[str]], min_tokens: int, cut: int) -> list[list[str]]:
    return [list(s[:cut]) for s in sentences if len(s) >= min_tokens]


def _make_split(
    name: str,
    sents: list[list[str]],
    rng: np.random.Generator,
    mus: tuple[float, float],
    sigma: float,
    correlation: float,
    prefix_tokens: list[list[str]],
    no_spurious: bool,
) -> Split:
    """Balanced labels, sampled lengths and exactly round(correlation · n_class) agreeing prefixes per class."""
    n = len(sents)
    label = np.zeros(n, dtype=np.int64)
    label[n // 2 :] = 1  # the sentences are already in random order
    length = (np.asarray(mus)[label] + sigma * rng.standard_normal(n)).astype(np.int64)  # int(): toward zero
    agree = np.zeros(n, dtype=bool)
    for c in (0, 1):
        members = np.flatnonzero(label == c)
        k = int(round(correlation * len(members)))
        agree[rng.permutation(members)[:k]] = True
    positive = np.where(agree, label, 1 - label)
    order = rng.permutation(n)  # interleave the classes
    tag = "textlen-nospur" if no_spurious else "textlen"
    ids, text = [], []
    for j, i in enumerate(order):
        words = sents[i][: max(int(length[i]), 1)]
        if not no_spurious:
            words = prefix_tokens[positive[i]] + words
        ids.append(f"{tag}-{name}-{j:04d}")
        text.append(" ".join(words))
    return Split(
        name=name,
        ids=ids,
        text=text,
        label=label[order].tolist(),
        confound=positive[order].tolist(),
        meta={"length": length[order].tolist()},
    )
