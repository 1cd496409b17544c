"""The classifier every model component builds: a Hugging Face encoder plus a linear head.

``forward`` takes a 2-D padding mask and turns it into a 4-D additive float mask itself,
so that the model can be vmapped (transformers 5 BERT cannot vmap its 2-D mask helper)
and differentiated twice (with ``attn_implementation="eager"``; SDPA has no double
backward).  See docs/performance.md.
"""
from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from registry.types import ClassifierOutput

Pooling = Literal["pooler", "cls", "mean"]


def additive_mask(attention_mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """(B, T) 0/1 mask -> (B, 1, 1, T) additive mask: 0 where attended, dtype-min elsewhere."""
    if attention_mask.dim() == 4:
        return attention_mask
    m = attention_mask[:, None, None, :].to(dtype)
    return (1.0 - m) * torch.finfo(dtype).min


class Classifier(nn.Module):
    """``encoder`` (an HF ``AutoModel``) -> pooled representation -> dropout -> ``head``."""

    def __init__(self, encoder: nn.Module, tokenizer, num_labels: int, pooling: Pooling = "pooler", dropout: float = 0.1):
        super().__init__()
        self.encoder = encoder
        self.tokenizer = tokenizer
        self.pooling = pooling
        self.num_labels = num_labels
        hidden = encoder.config.hidden_size
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden, num_labels)
        nn.init.normal_(self.head.weight, std=getattr(encoder.config, "initializer_range", 0.02))
        nn.init.zeros_(self.head.bias)
        if pooling == "pooler" and getattr(encoder, "pooler", None) is None:
            raise ValueError("pooling='pooler' needs an encoder with a pooler; use pooling: cls")

    @property
    def hidden_size(self) -> int:
        return self.encoder.config.hidden_size

    def input_embeddings(self) -> nn.Embedding:
        return self.encoder.get_input_embeddings()

    def represent(self, input_ids=None, attention_mask=None, token_type_ids=None, inputs_embeds=None) -> torch.Tensor:
        """The pooled sentence representation (pooler tanh of [CLS], [CLS] state, or mean)."""
        ref = inputs_embeds if inputs_embeds is not None else self.input_embeddings().weight
        mask4 = additive_mask(attention_mask, ref.dtype) if attention_mask is not None else None
        kwargs = {"token_type_ids": token_type_ids} if token_type_ids is not None else {}
        out = self.encoder(
            input_ids=None if inputs_embeds is not None else input_ids,
            inputs_embeds=inputs_embeds,
            attention_mask=mask4,
            **kwargs,
        )
        hidden = out.last_hidden_state
        if self.pooling == "pooler":
            return out.pooler_output
        if self.pooling == "cls":
            return hidden[:, 0]
        m = attention_mask.to(hidden.dtype).unsqueeze(-1)
        return (hidden * m).sum(1) / m.sum(1).clamp_min(1.0)

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, inputs_embeds=None) -> ClassifierOutput:
        pooled = self.represent(input_ids, attention_mask, token_type_ids, inputs_embeds)
        return ClassifierOutput(logits=self.head(self.dropout(pooled)), pooled=pooled)
