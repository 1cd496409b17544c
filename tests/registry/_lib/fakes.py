"""Test doubles: a tiny random classifier, an in-memory ``EncodedData`` (registry.types), and a
test-only attribution (``GradXInput``, registered by the ``registered_attribution`` fixture), and a
model whose token scores are a parameter table (``TableModel``, ``TableScores``, registered by
``table_attribution``) for hand-computed rationale losses and metrics."""
from __future__ import annotations

import copy
from types import SimpleNamespace

import pytest
import torch
from pydantic import Field
from torch import nn
from transformers import BertConfig, BertModel

import registry
from registry import NoParams, StrictParams
from registry.base import Attribution
from registry.models.classifier import Classifier
from registry.types import Batch, ClassifierOutput, ObjectiveContext, TokenAttributions


def tiny_classifier(seed: int = 0, dtype: torch.dtype = torch.float64, num_labels: int = 2, vocab: int = 100,
                    hidden: int = 16, layers: int = 2, pooling: str = "pooler", init_range: float = 0.3) -> Classifier:
    """A 2-layer hidden-16 BERT with eager attention wrapped in ``Classifier``, in eval mode.

    ``init_range`` 0.3 instead of BERT's 0.02: with 0.02 every gradient cosine is ~equal
    (m_A - m_B ~ 1e-7), which would make the gradient checks vacuous.
    """
    torch.manual_seed(seed)
    cfg = BertConfig(vocab_size=vocab, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=2,
                     intermediate_size=2 * hidden, max_position_embeddings=32, attn_implementation="eager",
                     initializer_range=init_range)
    model = Classifier(BertModel(cfg), tokenizer=None, num_labels=num_labels, pooling=pooling)
    return model.to(dtype).eval()


class FakeEncodedData:
    """Random token ids with right padding; satisfies ``registry.types.EncodedData``."""

    def __init__(self, labels: list[int], confound: list[int], visible: list[bool] | None = None,
                 seq_len: int = 10, vocab: int = 100, seed: int = 0, pad_id: int = 0):
        g = torch.Generator().manual_seed(seed)
        n = len(labels)
        self.labels = torch.tensor(labels, dtype=torch.long)
        self.confound = torch.tensor(confound, dtype=torch.long)
        self.confound_visible = torch.tensor(visible if visible is not None else [c >= 0 for c in confound])
        lengths = torch.randint(seq_len // 2, seq_len + 1, (n,), generator=g)
        # ids start at 0 too, so some real tokens hit the pad id (padding_idx rows get no gradient)
        self.input_ids = torch.randint(0, vocab, (n, seq_len), generator=g)
        self.input_ids[:, 0] = 1  # a [CLS]-like first token
        self.attention_mask = (torch.arange(seq_len)[None] < lengths[:, None]).long()
        self.input_ids[self.attention_mask == 0] = pad_id

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def batch(self, index) -> Batch:
        idx = torch.as_tensor(index, dtype=torch.long)
        return Batch(input_ids=self.input_ids[idx], attention_mask=self.attention_mask[idx], labels=self.labels[idx],
                     index=idx, confound=self.confound[idx], confound_visible=self.confound_visible[idx])


def balanced_data(n_per_group: int = 4, seed: int = 0, seq_len: int = 10, **kw) -> FakeEncodedData:
    """Every (label, confound) group of a 2 x 2 design with ``n_per_group`` examples."""
    labels, confound = [], []
    for y in (0, 1):
        for c in (0, 1):
            labels += [y] * n_per_group
            confound += [c] * n_per_group
    return FakeEncodedData(labels, confound, seed=seed, seq_len=seq_len, **kw)


def context(model, data, seed: int = 0, num_confounds: int = 2) -> ObjectiveContext:
    return ObjectiveContext(model=model, train=data, num_labels=2, num_confounds=num_confounds,
                            device=torch.device("cpu"), generator=torch.Generator().manual_seed(seed))


class GradXInput(Attribution):
    """A test-local attribution (registered by tests only): gradient x input on the word
    embeddings, summed over the embedding dimension, for the target class (default: gold).
    Counts the non-padding positions."""

    summary = "test double: gradient x input on the word embeddings"

    class Params(StrictParams):
        scale: float = Field(1.0, description="multiplies every score")

    def attribute(self, model, batch: Batch, target: torch.Tensor | None = None) -> TokenAttributions:
        target = batch.labels if target is None else target
        with torch.enable_grad():
            x = model.input_embeddings()(batch.input_ids).detach().requires_grad_(True)
            logits = model(attention_mask=batch.attention_mask, inputs_embeds=x).logits
            (grad,) = torch.autograd.grad(logits.gather(1, target[:, None]).sum(), x)
        counted = batch.attention_mask.bool()
        scores = (grad * x).sum(-1).detach() * counted * self.params.scale
        return TokenAttributions(scores=scores, counted=counted, target=target)


TEST_ATTRIBUTION = "test_grad_x_input"


@pytest.fixture
def registered_attribution():
    """``GradXInput`` registered as ``test_grad_x_input`` on a copy of the registry, restored
    afterwards (the recipe models are cached per set of registered names, so none is stale)."""
    registry.load_all()
    saved = registry.REGISTRY
    registry.REGISTRY = copy.deepcopy(saved)
    registry.REGISTRY.add("attributions", TEST_ATTRIBUTION, GradXInput)
    try:
        yield TEST_ATTRIBUTION
    finally:
        registry.REGISTRY = saved


#: special ids and a tokenizer stand-in for ``TableModel`` tests
PAD, CLS, SEP, MASK = 0, 1, 2, 3
TOK = SimpleNamespace(all_special_ids=[PAD, CLS, SEP, MASK], mask_token_id=MASK)
TABLE_ATTRIBUTION = "test_table_scores"


class TableModel(nn.Module):
    """Scores come from a table ``v[id]`` (a parameter), read by ``TableScores``."""

    def __init__(self, values: dict[int, float], vocab: int = 32):
        super().__init__()
        self.tokenizer = TOK
        v = torch.zeros(vocab, dtype=torch.float64)
        for i, x in values.items():
            v[i] = x
        self.v = nn.Parameter(v)

    def forward(self, input_ids, attention_mask, token_type_ids=None, inputs_embeds=None):
        z = self.v[input_ids].sum(-1)
        return ClassifierOutput(logits=torch.stack([-z, z], -1), pooled=z[:, None])


class TableScores(Attribution):
    """Test double: ``a_t = model.v[id_t]`` on real, non-special tokens (a graph to ``v``)."""

    summary = "test double: a table of token scores"
    Params = NoParams

    def attribute(self, model, batch: Batch, target=None) -> TokenAttributions:
        counted = batch.attention_mask.bool() & ~torch.isin(batch.input_ids, torch.tensor([PAD, CLS, SEP, MASK]))
        return TokenAttributions(scores=model.v[batch.input_ids] * counted, counted=counted, target=batch.labels)


@pytest.fixture
def table_attribution():
    """``TableScores`` registered as ``test_table_scores`` on a copy of the registry, restored afterwards."""
    registry.load_all()
    saved = registry.REGISTRY
    registry.REGISTRY = copy.deepcopy(saved)
    registry.REGISTRY.add("attributions", TABLE_ATTRIBUTION, TableScores)
    try:
        yield TABLE_ATTRIBUTION
    finally:
        registry.REGISTRY = saved
