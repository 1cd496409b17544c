"""What the three embedding attributions share: params, the target, the word-embedding forward,
which positions count, and exact, cheap padding.

Padding: with this project's classifier (``registry/models/classifier.py``: additive mask of the
dtype's minimum, eager or SDPA attention) a masked-out position gets softmax weight exactly 0, so
the gradient of any logit with respect to its embedding is exactly 0 and so is its attribution
(``tests/registry/attributions/test_integrated_gradients.py`` checks ``== 0``).  The components
therefore run on the batch trimmed to its longest row, and the padded positions the authors'
code counts (``positions: all`` with ``pad_to: 128``) enter every sum as zeros in closed form
(``registry._lib.integrated_gradients.counted_variance``), never through the model.
"""
from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass
from typing import Literal

import torch
from pydantic import Field
from torch import nn
from torch.func import functional_call

from registry import StrictParams
from registry._lib.integrated_gradients import Forward
from registry._lib.per_example import eval_mode, trim_padding
from registry._lib.precision import full_precision
from registry.base import Attribution
from registry.errors import UserError
from registry.types import Batch, Classifier, TokenAttributions


class AttributionParams(StrictParams):
    """Settings every embedding attribution takes; the defaults are the IG-variance authors' code
    (weavejul/V-BIG ``run_ig.py``; docs: /work/shared/papers/reference_code_notes.md sec. 3)."""

    target: Literal["gold", "predicted"] = Field(
        "gold", description="class attributed per row: the gold label, or the model's prediction (eval mode, "
                            "no gradient); an explicit target passed by the caller wins")
    mode: Literal["faithful", "differentiable"] = Field(
        "faithful", description="faithful: the model's gradients are constants (as Captum inside the authors' "
                                "trainer), so a loss on the scores reaches only the word-embedding rows of the batch; "
                                "differentiable: gradients kept differentiable (create_graph), so a loss trains the "
                                "whole encoder (double backward, much slower)")
    positions: Literal["all", "tokens"] = Field(
        "all", description="positions that count: all (every position of the sequence padded to pad_to, "
                           "[CLS]/[SEP]/[PAD] included, as the authors' code) or tokens (non-padding, non-special)")
    pad_to: int | None = Field(
        128, ge=1, description="with positions: all, the padded length counted (authors: 128; a batch whose longest "
                               "row is longer counts that row's length); null: the batch's own width.  Padded "
                               "positions score exactly 0 and are accounted in closed form, never computed")
    token_type_ids: Literal["pass", "drop"] = Field(
        "drop", description="pass the batch's token_type_ids to the attribution passes, or drop them (authors' code: "
                            "every token is segment 0)")
    dropout: Literal["on", "off"] = Field(
        "on", description="on: the passes run in the model's current mode (train mode during training: dropout on, "
                          "as the authors'); off: eval mode for the passes, the mode restored afterwards")


@dataclass
class TrimmedScores:
    """Scores on the batch trimmed to its longest row, and how they sit in the full width.

    ``scores``/``counted`` are (B, T') with T' the longest row; ``n`` (B,) is the number of counted
    positions including the ``width - T'`` padded ones beyond T' (zeros, not materialised);
    ``width`` the padded width counted (``positions: all``); ``full_width`` the width of
    ``attribute``'s output.
    """

    scores: torch.Tensor
    counted: torch.Tensor
    n: torch.Tensor
    width: int
    full_width: int
    target: torch.Tensor

    def padded(self) -> TokenAttributions:
        B, T = self.scores.shape
        extra = self.full_width - T
        scores = torch.cat([self.scores, self.scores.new_zeros(B, extra)], 1) if extra else self.scores
        counted = torch.cat([self.counted, self.counted.new_zeros(B, extra)], 1) if extra else self.counted
        if extra and self.width > T:
            counted[:, T:self.width] = True
        return TokenAttributions(scores=scores, counted=counted, target=self.target)


def word_embeddings(model: Classifier, who: str) -> nn.Embedding:
    """The model's word-embedding table, or a UserError naming ``who`` needs it."""
    try:
        emb = model.input_embeddings()
    except (AttributeError, NotImplementedError):
        emb = None
    if not isinstance(emb, nn.Embedding):
        raise UserError(f"{who} needs a model with word embeddings (input_embeddings() returning an nn.Embedding, "
                        f"forward accepting inputs_embeds); {type(model).__name__} has "
                        f"{'none' if emb is None else type(emb).__name__}; use a BERT-style model such as tiny_bert, "
                        f"hf_classifier or offline_minilm")
    return emb


def special_token_ids(model: Classifier) -> list[int]:
    """Ids of special tokens ([CLS], [SEP], [PAD], ...): the tokenizer's, else the encoder config's."""
    tok = getattr(model, "tokenizer", None)
    ids = list(getattr(tok, "all_special_ids", None) or [])
    if not ids:
        cfg = getattr(getattr(model, "encoder", None), "config", None)
        for key in ("pad_token_id", "cls_token_id", "sep_token_id", "bos_token_id", "eos_token_id"):
            v = getattr(cfg, key, None)
            if isinstance(v, int):
                ids.append(v)
    return sorted(set(ids))


def token_id(model: Classifier, which: Literal["pad", "mask"], who: str) -> int:
    """The [PAD] or [MASK] id (tokenizer first, then the encoder config)."""
    tok = getattr(model, "tokenizer", None)
    v = getattr(tok, f"{which}_token_id", None)
    if v is None:
        v = getattr(getattr(getattr(model, "encoder", None), "config", None), f"{which}_token_id", None)
    if v is None:
        raise UserError(f"{who}: baseline {which!r} needs a [{which.upper()}] token, and this model's tokenizer has "
                        f"none; use baseline: zeros")
    return int(v)


def predicted_target(model: Classifier, batch: Batch) -> torch.Tensor:
    """The class the model predicts (eval mode, no gradient, the batch's full inputs)."""
    with torch.no_grad(), eval_mode(model):
        return model(**batch.model_inputs()).logits.argmax(-1)


class EmbeddingAttribution(Attribution):
    """Base of ``saliency``, ``gradient_x_input`` and ``integrated_gradients``: per-dimension
    attributions on the word embeddings ``x = E[input_ids]`` (``inputs_embeds``: position and
    segment embeddings are still added inside the model), reduced over the embedding dimension
    (a sum; ``saliency`` takes a norm)."""

    Params = AttributionParams

    def who(self) -> str:
        """How user errors name this component (the ``ig_variance`` objective renames its IG)."""
        return f"{'attribution' if self.kind == 'attributions' else 'objective'} {self.name!r}"

    def per_dim(self, model: Classifier, forward: Forward, x: torch.Tensor, create_graph: bool) -> torch.Tensor:
        """(B, T, D) attributions of the embeddings ``x``."""
        raise NotImplementedError

    def reduce(self, per_dim: torch.Tensor) -> torch.Tensor:
        """(B, T, D) -> (B, T): the sum over the embedding dimension."""
        return per_dim.sum(-1)

    def compute(self, model: Classifier, batch: Batch, target: torch.Tensor | None = None) -> TrimmedScores:
        """Scores on the batch trimmed to its longest row (see the module docstring)."""
        p = self.params
        emb = word_embeddings(model, self.who())
        full_width = int(batch.input_ids.shape[1])
        if target is None:
            target = batch.labels if p.target == "gold" else predicted_target(model, batch)
        target = target.to(batch.input_ids.device).long()
        b = trim_padding(batch)
        mask = b.attention_mask
        tt = b.token_type_ids if p.token_type_ids == "pass" else None

        call = model
        if p.mode == "faithful" and isinstance(model, nn.Module):
            # the passes' gradients are constants: run them on detached weights (no graph to the
            # parameters, fewer saved activations); the values are the same
            weights = {name: w.detach() for name, w in model.named_parameters()}
            call = lambda **kw: functional_call(model, weights, (), kw)  # noqa: E731

        def forward(points: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
            logits = call(attention_mask=mask[rows], token_type_ids=None if tt is None else tt[rows],
                          inputs_embeds=points).logits
            return full_precision(logits).gather(1, target[rows, None]).squeeze(1)

        x = emb(b.input_ids)  # under the caller's grad mode: a loss reaches the batch's embedding rows
        with eval_mode(model) if p.dropout == "off" else nullcontext():
            scores = self.reduce(self.per_dim(model, forward, x, p.mode == "differentiable"))
        B, T = scores.shape
        if p.positions == "all":
            width = max(T, p.pad_to if p.pad_to is not None else full_width)
            counted = torch.ones_like(mask, dtype=torch.bool)
            n = torch.full((B,), width, device=scores.device)
        else:
            width = T
            special = torch.isin(b.input_ids, torch.tensor(special_token_ids(model), dtype=b.input_ids.dtype, device=mask.device))
            counted = mask.bool() & ~special
            scores = scores * counted
            n = counted.sum(1)
        return TrimmedScores(scores=scores, counted=counted, n=n, width=width,
                             full_width=max(full_width, width), target=target)

    def attribute(self, model: Classifier, batch: Batch, target: torch.Tensor | None = None) -> TokenAttributions:
        """(B, W) scores, W = the batch's width, or ``max(pad_to, longest row)`` when wider with
        ``positions: all``: columns beyond the batch are the padded positions the authors' code
        counts (score 0, counted)."""
        return self.compute(model, batch, target).padded()
