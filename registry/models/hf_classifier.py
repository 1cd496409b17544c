"""``hf_classifier``: any Hugging Face encoder (hub id or local directory) plus a linear head."""
from __future__ import annotations

from pathlib import Path

from pydantic import Field

from registry import register
from registry.base import ModelComponent
from registry.errors import UserError
from registry.models._loading import EncoderHeadParams, load_encoder, load_tokenizer, make_classifier
from registry.models.classifier import Classifier


@register("model", "hf_classifier")
class HFClassifier(ModelComponent):
    summary = "A Hugging Face encoder (hub id or local directory) with a linear classification head"
    paper = "Devlin et al. 2019, BERT (fine-tuning a pretrained encoder with a linear head)"
    equation = "logits = W · dropout(pool(encoder(x))) + b"

    class Params(EncoderHeadParams):
        model: str = Field(description="hub id (e.g. bert-base-uncased) or a local directory saved with save_pretrained")
        revision: str | None = Field(None, description="hub revision (branch, tag or commit); None: the default branch")

    def build(self, num_labels: int) -> Classifier:
        p = self.params
        source = _local_or_hub(p.model)
        try:
            tokenizer = load_tokenizer(source, p.revision)
            encoder = load_encoder(source, p.revision, p.attention, p.pooling)
        except (OSError, ValueError) as exc:
            raise UserError(
                f"model.params.model: could not load {p.model!r}"
                + (f" at revision {p.revision!r}" if p.revision else "")
                + f" ({type(exc).__name__}: {_first_line(exc)}); fix: check the hub id and your network, "
                "or use the offline model (model: {name: offline_minilm}), or point model.params.model "
                "at a local directory saved with save_pretrained"
            ) from exc
        return make_classifier(encoder, tokenizer, num_labels, p, p.model)


def _local_or_hub(model: str) -> str:
    """A path-looking value must exist locally; anything else is passed on as a hub id."""
    path = Path(model).expanduser()
    if path.is_dir():
        return str(path.resolve())
    looks_local = model.startswith((".", "/", "~")) or model.count("/") > 1 or "\\" in model
    if looks_local:
        raise UserError(
            f"model.params.model: local model directory {str(path)!r} does not exist; "
            "fix: point model.params.model at a directory saved with save_pretrained, or use a hub id"
        )
    return model


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else ""
