"""Tokenised splits and batches: what the training loop and the objectives draw data from.

A split is tokenised once (fast tokenizer, batched, truncated to ``max_length``, padded to
the longest row of the split); a batch is then only tensor indexing plus a slice to the
longest row of the batch (dynamic padding, right-padded).
"""
from __future__ import annotations

import math
from typing import Iterator, Sequence

import numpy as np
import torch

from registry.types import MISSING_CONFOUND, Batch, Split


class EncodedSplit:
    """A tokenised split (implements ``registry.types.EncodedData``).

    ``input_ids``/``attention_mask``/``token_type_ids``/``rationale`` are (N, T) with T the
    longest row of the split; ``lengths`` the number of real tokens per row.
    """

    def __init__(
        self,
        name: str,
        ids: list[str],
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        labels: torch.Tensor,
        confound: torch.Tensor,
        confound_visible: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
        rationale: torch.Tensor | None = None,
        confound_names: list[str] | None = None,
        confound_column: str | None = None,
        label_groups: list[list[int]] | None = None,
        label_names: list[str] | None = None,
        truncated: int = 0,
        max_length: int | None = None,
        pairs: bool = False,
    ) -> None:
        n = labels.shape[0]
        for what, t in (("input_ids", input_ids), ("confound", confound), ("confound_visible", confound_visible)):
            if t.shape[0] != n:
                raise ValueError(f"{what} has {t.shape[0]} rows, labels {n}")
        self.name, self.ids = name, ids
        self.input_ids, self.attention_mask, self.token_type_ids = input_ids, attention_mask, token_type_ids
        self.labels, self.confound, self.confound_visible = labels, confound, confound_visible.to(torch.bool)
        self.rationale = rationale
        self.confound_names, self.confound_column = confound_names, confound_column  # for metric keys
        self.lengths = attention_mask.sum(1)
        #: the split's own classes (``Split.label_groups``): evaluation collapses the logits to them
        self.label_groups, self.label_names = label_groups, label_names
        #: how many rows were longer than ``max_length`` tokens and were cut
        self.truncated, self.max_length = truncated, max_length
        self.pairs = pairs  # rows are (text, text_pair)

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def batch(self, index: torch.Tensor | Sequence[int]) -> Batch:
        """Rows ``index`` (in that order), padded to the longest of them."""
        idx = torch.as_tensor(index, dtype=torch.long).reshape(-1)
        width = int(self.lengths[idx].max()) if idx.numel() else 0

        def take(t: torch.Tensor | None) -> torch.Tensor | None:
            return None if t is None else t[idx, :width]

        return Batch(
            input_ids=take(self.input_ids),
            attention_mask=take(self.attention_mask),
            labels=self.labels[idx],
            index=idx,
            token_type_ids=take(self.token_type_ids),
            confound=self.confound[idx],
            confound_visible=self.confound_visible[idx],
            rationale=take(self.rationale),
        )

    def loader(
        self, batch_size: int, shuffle: bool, generator: torch.Generator | None = None, drop_last: bool = False
    ) -> Iterator[Batch]:
        """One epoch of batches; ``shuffle`` draws the order from ``generator`` (seeded by the caller)."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        n = len(self)
        order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
        for start in range(0, self.num_batches(batch_size, drop_last) * batch_size, batch_size):
            yield self.batch(order[start : start + batch_size])

    def num_batches(self, batch_size: int, drop_last: bool = False) -> int:
        return len(self) // batch_size if drop_last else math.ceil(len(self) / batch_size)


def encode_split(split: Split, tokenizer, max_length: int, confound_visible: torch.Tensor | None = None) -> EncodedSplit:
    """Tokenise ``split`` once.  ``confound_visible`` defaults to "every known confound"
    (confound access 1.0); a word-level rationale becomes a token-level float mask.  Rows
    longer than ``max_length`` are truncated (pairs: longest side first) and counted in
    ``EncodedSplit.truncated``; ``truncation_note`` words that count."""
    n = len(split)
    labels = torch.tensor(split.label, dtype=torch.long).reshape(n)
    confound = torch.tensor(split.confound if split.confound is not None else [MISSING_CONFOUND] * n, dtype=torch.long).reshape(n)
    visible = (confound >= 0) if confound_visible is None else confound_visible.to(torch.bool) & (confound >= 0)
    if n == 0:
        empty = torch.zeros(0, 0, dtype=torch.long)
        rat = torch.zeros(0, 0) if split.rationale is not None else None
        return EncodedSplit(split.name, [], empty, empty, labels, confound, visible, empty.clone(), rat,
                            split.confound_names, split.confound_column, split.label_groups, split.label_names,
                            0, max_length)
    want_offsets = split.rationale is not None
    enc = tokenizer(
        split.text,
        split.text_pair,
        truncation=True,
        max_length=max_length,
        padding=True,
        padding_side="right",
        return_tensors="pt",
        return_offsets_mapping=want_offsets,
    )
    rationale = _token_rationale(split, enc) if want_offsets else None
    # one token past the limit is enough to tell which rows were cut
    longer = tokenizer(split.text, split.text_pair, truncation=True, max_length=max_length + 1)["input_ids"]
    truncated = sum(len(row) > max_length for row in longer)
    return EncodedSplit(
        name=split.name,
        ids=list(split.ids),
        input_ids=enc["input_ids"],
        attention_mask=enc["attention_mask"],
        labels=labels,
        confound=confound,
        confound_visible=visible,
        token_type_ids=enc.get("token_type_ids"),
        rationale=rationale,
        confound_names=split.confound_names,
        confound_column=split.confound_column,
        label_groups=split.label_groups,
        label_names=split.label_names,
        truncated=truncated,
        max_length=max_length,
        pairs=split.text_pair is not None,
    )


def truncation_note(data: EncodedSplit) -> str | None:
    """``"dev: 12 of 9,842 pairs truncated to 128 tokens"``, or None when nothing was cut."""
    if not getattr(data, "truncated", 0):
        return None
    unit = "pairs" if getattr(data, "pairs", False) else "rows"
    return f"{data.name}: {data.truncated:,} of {len(data):,} {unit} truncated to {data.max_length} tokens"


def _word_of_char(s: str) -> np.ndarray:
    """For every character of ``s``, the index of its word in ``s.split(" ")``."""
    spaces = np.frombuffer(s.encode("utf-32-le"), dtype=np.uint32) == ord(" ")
    return np.cumsum(spaces) - spaces


def _token_rationale(split: Split, enc) -> torch.Tensor:
    """Word-level masks -> (N, T) float token mask through the offset mapping (0 on special/pad).

    A token belongs to the word holding its last character; pair words follow the text's.
    """
    offsets = enc["offset_mapping"].numpy()
    out = np.zeros(offsets.shape[:2], dtype=np.float32)
    for i, mask in enumerate(split.rationale):
        texts = [split.text[i]] + ([split.text_pair[i]] if split.text_pair is not None else [])
        words = [len(t.split(" ")) for t in texts]
        if len(mask) != sum(words):
            raise ValueError(
                f"{split.name} row {split.ids[i]!r}: rationale has {len(mask)} entries for {sum(words)} space-separated words"
            )
        mask_arr = np.asarray(mask, dtype=np.float32)
        seq = np.array([-1 if s is None else s for s in enc.sequence_ids(i)])
        ends = offsets[i, :, 1]
        for k, t in enumerate(texts):
            tok = np.flatnonzero((seq == k) & (ends > 0))
            if tok.size:
                out[i, tok] = mask_arr[_word_of_char(t)[ends[tok] - 1] + sum(words[:k])]
    return torch.from_numpy(out)


def confound_visibility(confound: torch.Tensor, access: float, generator: torch.Generator) -> torch.Tensor:
    """Which confound labels objectives may use (Han & Tsvetkov 2021, Table 3, "confound access rate").

    Exactly ``round(access * n_known)`` of the rows with a known confound are visible, chosen
    by a permutation drawn from ``generator``; unknown (-1) rows are never visible.
    """
    if not 0.0 <= access <= 1.0:
        raise ValueError(f"confound access must be in [0, 1], got {access}")
    known = torch.nonzero(confound >= 0).flatten()
    k = round(access * known.numel())
    visible = torch.zeros(confound.shape[0], dtype=torch.bool)
    visible[known[torch.randperm(known.numel(), generator=generator)[:k]]] = True
    return visible
