"""``tiny_bert``: a small randomly initialised BERT for tests and smoke runs."""
from __future__ import annotations

from pydantic import Field, model_validator

from registry import register
from registry.base import ModelComponent
from registry.models._loading import EncoderHeadParams, load_tokenizer, make_classifier, offline_model_dir
from registry.models.classifier import Classifier


@register("model", "tiny_bert")
class TinyBert(ModelComponent):
    summary = "Small random-init BERT (default 2 layers, hidden 32) with the MiniLM tokenizer, for tests"
    paper = "Devlin et al. 2019, BERT (architecture only; no pretraining)"
    equation = "logits = W · dropout(pool(encoder(x))) + b"

    class Params(EncoderHeadParams):
        layers: int = Field(2, ge=1, description="number of transformer layers")
        hidden: int = Field(32, ge=2, description="hidden size (a multiple of heads)")
        heads: int = Field(2, ge=1, description="attention heads")
        intermediate: int = Field(64, ge=1, description="feed-forward inner size")
        max_position: int = Field(128, ge=8, description="maximum sequence length (position embeddings)")

        @model_validator(mode="after")
        def _heads_divide_hidden(self):
            if self.hidden % self.heads:
                raise ValueError(f"hidden ({self.hidden}) must be a multiple of heads ({self.heads})")
            return self

    def build(self, num_labels: int) -> Classifier:
        from transformers import BertConfig, BertModel

        p = self.params
        tokenizer = load_tokenizer(offline_model_dir())
        config = BertConfig(
            vocab_size=len(tokenizer),
            hidden_size=p.hidden,
            num_hidden_layers=p.layers,
            num_attention_heads=p.heads,
            intermediate_size=p.intermediate,
            max_position_embeddings=p.max_position,
            hidden_dropout_prob=p.dropout,
            attention_probs_dropout_prob=p.dropout,
            pad_token_id=tokenizer.pad_token_id or 0,
            attn_implementation=p.attention,
        )
        encoder = BertModel(config, add_pooling_layer=p.pooling == "pooler")
        return make_classifier(encoder, tokenizer, num_labels, p, "tiny_bert")
