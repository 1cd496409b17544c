"""rationale_extractor (UIMER-DM): the alignment loss by hand, where its gradient goes, the
Lagrange multiplier's ascent and clamp, the shared gate, and `validate` refusing it on a
dataset without rationales."""
from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
from torch import nn

import registry
from registry.data import EncodedSplit
from registry.objectives.rationale_extractor import RationaleExtractor
from registry.types import ClassifierOutput, ObjectiveContext

PAD, CLS, SEP, MASK = 0, 1, 2, 3
TOK = SimpleNamespace(all_special_ids=[PAD, CLS, SEP, MASK], mask_token_id=MASK)
T, L, R = 0.2, -0.2, 1.0


class OneDimModel(nn.Module):
    """Embeddings of width 1; class-1 logit = sum over real tokens of the (possibly mixed) embedding."""

    def __init__(self, values: dict[int, float], vocab: int = 32):
        super().__init__()
        self.tokenizer = TOK
        self.emb = nn.Embedding(vocab, 1).double()
        with torch.no_grad():
            self.emb.weight.zero_()
            for i, v in values.items():
                self.emb.weight[i] = v
        self.scale = nn.Parameter(torch.tensor(2.0, dtype=torch.float64))

    def input_embeddings(self) -> nn.Embedding:
        return self.emb

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, inputs_embeds=None):
        e = (inputs_embeds if inputs_embeds is not None else self.emb(input_ids)).squeeze(-1)
        z = self.scale * (e * attention_mask).sum(-1)
        return ClassifierOutput(logits=torch.stack([torch.zeros_like(z), z], -1), pooled=z[:, None])


def _split(ids, rationale, labels) -> EncodedSplit:
    Tn = max(map(len, ids))
    input_ids = torch.tensor([r + [PAD] * (Tn - len(r)) for r in ids])
    att = (torch.arange(Tn)[None] < torch.tensor([len(r) for r in ids])[:, None]).long()
    rat = torch.tensor([r + [0] * (Tn - len(r)) for r in rationale], dtype=torch.float)
    n = len(ids)
    return EncodedSplit("train", [str(i) for i in range(n)], input_ids, att, torch.tensor(labels),
                        torch.full((n,), -1), torch.zeros(n, dtype=torch.bool), rationale=rat)


def _ctx(model, data, seed=0) -> ObjectiveContext:
    return ObjectiveContext(model=model, train=data, num_labels=2, num_confounds=1, device=torch.device("cpu"),
                            generator=torch.Generator().manual_seed(seed))


def _bind(ctx, **params) -> RationaleExtractor:
    obj = registry.build("objective", "rationale_extractor", {"gate_width": 1, **params})
    obj.bind(ctx)
    if params.get("role") == "align":  # as if an extractor round shared the gate
        obj.gate.roles.add("extractor")
    return obj


def _identity_gate(obj: RationaleExtractor) -> None:
    """log_alpha = tanh(e): first layer weight 1, bias 0; output weight 1, bias 0."""
    with torch.no_grad():
        for lin in (obj.gate.mlp[0], obj.gate.mlp[2]):
            lin.weight.fill_(1.0)
            lin.bias.zero_()


def _g(e: float) -> float:
    return 1 / (1 + math.exp(-(math.tanh(e) - T * math.log(-L / R))))


ROWS = [[CLS, 10, 11, SEP], [CLS, 12, 13, 14, SEP], [CLS, 15, 16, SEP, PAD]]
RATS = [[0, 1, 0, 0], [0, 1, 0, 1, 0], [0, 0, 0, 0]]  # the 3rd row has no rationale token
VALUES = {10: 1.0, 11: 0.5, 12: -0.5, 13: 0.8, 14: 1.5, 15: 0.3, 16: -0.2}


def test_alignment_loss_by_hand_on_three_examples():
    model = OneDimModel(VALUES)
    data = _split(ROWS, RATS, [1, 0, 1])
    ctx = _ctx(model, data)
    obj = _bind(ctx, role="align")
    _identity_gate(obj)
    loss = obj.loss(model, data.batch(range(3)))
    # row 1: g(10) >= g(11), the only other token -> 0; row 2: max other = g(13);
    # token 12 is below it -> (g12/g13 - 1)^2, token 14 above -> 0; row 3: skipped
    by_hand = (_g(-0.5) / _g(0.8) - 1) ** 2
    assert by_hand > 0
    assert loss.item() == pytest.approx(by_hand, rel=1e-12)
    assert obj.logs()["used"] == 2.0 and obj.logs()["skipped"] == 1.0
    first = obj.loss(model, data.batch([0]))
    assert first.item() == 0.0  # every rationale gate reaches the largest other gate
    mean = _bind(ctx, role="align", reduction="mean")
    assert mean.gate is obj.gate  # one shared gate
    assert mean.loss(model, data.batch(range(3))).item() == pytest.approx(by_hand / 2, rel=1e-12)


def test_alignment_loss_floors_the_denominator():
    model = OneDimModel({10: 0.0, 11: 0.0})
    data = _split([[CLS, 10, 11, SEP]], [[0, 1, 0, 0]], [1])
    obj = _bind(_ctx(model, data), role="align", lower_bound=0.9)
    with torch.no_grad():  # every gate far below the bound: g / 0.9 - 1 < 0
        obj.gate.mlp[2].bias.fill_(-3.0)
        obj.gate.mlp[2].weight.zero_()
    g = 1 / (1 + math.exp(-(-3.0 - T * math.log(-L / R))))
    assert obj.loss(model, data.batch([0])).item() == pytest.approx((g / 0.9 - 1) ** 2, rel=1e-12)


def test_alignment_gradient_reaches_the_model_not_the_frozen_gate():
    model = OneDimModel(VALUES)
    data = _split(ROWS, RATS, [1, 0, 1])
    obj = _bind(_ctx(model, data), role="align")
    _identity_gate(obj)
    obj.loss(model, data.batch(range(3))).backward()
    grad = model.emb.weight.grad[:, 0]
    assert grad[12].item() < 0  # raising the rationale token's embedding raises its gate: descent raises it
    assert grad[13].item() > 0  # and lowering the largest other one
    assert grad[10].item() == 0.0 and grad[14].item() == 0.0  # rationale gates already above the max
    assert all(p.grad is None for p in obj.gate.parameters())


def _violating(eps=0.0, **kw):
    model = OneDimModel({10: 2.0, 11: 2.0, 12: 1.5})
    data = _split([[CLS, 10, 11, SEP], [CLS, 12, 10, SEP]], [[0, 1, 0, 0], [0, 0, 1, 0]], [1, 1])
    obj = _bind(_ctx(model, data), role="extractor", eps=eps, gate_bias=-5.0, **kw)  # gates mostly closed
    return model, data, obj


def test_multiplier_ascends_when_the_constraint_is_violated_and_is_clamped():
    model, data, obj = _violating()
    batch = data.batch(range(2))
    before = obj.gate.multiplier.item()
    opt = torch.optim.SGD(list(obj.trainable(model)), lr=0.5)
    loss = obj.loss(model, batch)
    assert obj.logs()["kl"] > 0.0  # KL > eps = 0: violated
    loss.backward()
    assert obj.gate.multiplier.grad.item() == pytest.approx(-obj.logs()["kl"], rel=1e-9)  # reversed: d/d alpha = -(KL - eps)
    opt.step()
    assert obj.gate.multiplier.item() > before  # descent on the reversed gradient = ascent
    assert all(p.grad is None for p in model.parameters())  # the frozen model gets no gradient at all
    # clamp: push it past 200, the next use projects it back
    with torch.no_grad():
        obj.gate.multiplier.fill_(250.0)
    obj.loss(model, batch)
    assert obj.gate.multiplier.item() == 200.0 and obj.logs()["multiplier"] == 200.0
    with torch.no_grad():
        obj.gate.multiplier.fill_(-3.0)
    obj.loss(model, batch)
    assert obj.gate.multiplier.item() == 0.0


def test_multiplier_descends_when_the_constraint_holds():
    model, data, obj = _violating(eps=50.0)
    opt = torch.optim.SGD([obj.gate.multiplier], lr=0.1)
    obj.loss(model, data.batch(range(2))).backward()
    opt.step()
    assert obj.gate.multiplier.item() < 1.0


def test_extractor_loss_value_and_gate_gradient():
    """With the gate wide open (bias 30) z = 1 almost surely: KL = 0 and E[L0] = 1, so the loss is
    1 * (0 - eps) + 1; the L0 term pulls the gate's output bias down."""
    model = OneDimModel(VALUES)
    data = _split(ROWS, RATS, [1, 0, 1])
    obj = _bind(_ctx(model, data), role="extractor", gate_bias=30.0)
    loss = obj.loss(model, data.batch(range(3)))
    assert loss.item() == pytest.approx(1.0 - 0.1, abs=1e-9)
    assert obj.logs()["kept"] == 1.0
    obj2 = _bind(_ctx(model, data), role="extractor", extractor="other")
    obj2.loss(model, data.batch(range(3))).backward()
    assert obj2.gate.mlp[2].bias.grad.item() > 0
    assert obj2.gate.placeholder.grad is not None


def test_placeholder_starts_at_the_mask_embedding_and_special_tokens_are_never_gated():
    model = OneDimModel({MASK: 0.7, **VALUES})
    data = _split(ROWS, RATS, [1, 0, 1])
    obj = _bind(_ctx(model, data), role="extractor", gate_bias=-30.0)  # every gate closed
    assert obj.gate.placeholder.item() == 0.7
    obj.loss(model, data.batch(range(3)))
    assert obj.logs()["kept"] == 0.0


def test_terms_sharing_an_extractor_must_agree_on_its_gate():
    model = OneDimModel(VALUES)
    data = _split(ROWS, RATS, [1, 0, 1])
    ctx = _ctx(model, data)
    a = _bind(ctx, role="extractor")
    b = _bind(ctx, role="align")
    assert a.gate is b.gate and list(ctx.shared_modules) == ["rationale_extractor.extractor"]
    from registry.errors import UserError
    with pytest.raises(UserError, match="disagree on its gate settings \\(temperature: 0.5 vs 0.2\\)"):
        _bind(ctx, role="align", temperature=0.5)
    assert [n for n, _ in a.gate.named_parameters()] == ["placeholder", "multiplier", "mlp.0.weight", "mlp.0.bias",
                                                        "mlp.2.weight", "mlp.2.bias"]
    assert b.trainable(model) is None and {id(p) for p in a.trainable(model)} == {id(p) for p in a.gate.parameters()}
    assert a.train_mode is False and b.train_mode is True


def test_params():
    assert RationaleExtractor.requires == ("rationale",) and RationaleExtractor.own_data is False
    p = RationaleExtractor.Params(role="extractor")
    assert (p.temperature, p.stretch_left, p.stretch_right, p.eps, p.multiplier_max) == (0.2, -0.2, 1.0, 0.1, 200.0)
    with pytest.raises(Exception, match="role"):
        RationaleExtractor.Params()
    with pytest.raises(Exception, match="multiplier_init"):
        RationaleExtractor.Params(role="align", multiplier_init=300.0)


def test_validate_refuses_it_on_a_dataset_without_rationales(tmp_path):
    from tests.recipe_engine.tiny_run import validate_without_rationales

    code, path, err = validate_without_rationales(tmp_path, "{name: rationale_extractor, params: {role: align}}")
    assert code == 1
    assert "Traceback" not in err and err.startswith(f"{path}:")
    assert ("objective 'rationale_extractor' requires a 'rationale' column, which dataset 'files' does not provide "
            "(it has: confound, label, text); use a dataset with one, or map one in data.params.columns.rationale") in err


def test_align_without_an_extractor_term_is_a_user_error():
    from registry.errors import UserError
    model = OneDimModel(VALUES)
    data = _split(ROWS, RATS, [1, 0, 1])
    obj = registry.build("objective", "rationale_extractor", {"role": "align", "extractor": "lonely"})
    obj.bind(_ctx(model, data))
    with pytest.raises(UserError, match="no term with role extractor shares the extractor 'lonely', so its gate never "
                                        "trains; add a phase with"):
        obj.loss(model, data.batch(range(3)))


def _bert_case():
    from registry.models.classifier import additive_mask
    from tests.registry._lib.fakes import FakeEncodedData, tiny_classifier

    model = tiny_classifier()
    model.tokenizer = TOK
    data = FakeEncodedData([0, 1, 0, 1], [-1] * 4, seq_len=8, vocab=100, seed=1)
    batch = data.batch(torch.arange(4))
    rationale = torch.zeros(batch.input_ids.shape)
    rationale[:, 2] = 1.0
    batch.rationale = rationale * batch.attention_mask
    ref = model.encoder(input_ids=batch.input_ids, attention_mask=additive_mask(batch.attention_mask, torch.float64))
    return model, data, batch, ref.last_hidden_state


def test_with_last_layer_reads_the_encoder_and_aligns_through_it():
    from registry.objectives.rationale_extractor import last_layer

    model, data, batch, h_ref = _bert_case()
    logits, h = last_layer(model, lambda: model(**batch.model_inputs()).logits)
    assert torch.equal(h, h_ref) and logits.shape == (4, 2)
    ctx = _ctx(model, data)
    ext = registry.build("objective", "rationale_extractor", {"role": "extractor", "gate_input": "with_last_layer"})
    ext.bind(ctx)
    align = registry.build("objective", "rationale_extractor", {"role": "align", "gate_input": "with_last_layer"})
    align.bind(ctx)
    assert align.gate is ext.gate and ext.gate.mlp[0].in_features == 2 * model.hidden_size
    ext.loss(model, batch).backward()
    assert ext.gate.mlp[0].weight.grad is not None and all(p.grad is None for p in model.parameters())
    ext.gate.zero_grad(set_to_none=True)
    with torch.no_grad():  # spread the gates so the margin is active
        ext.gate.mlp[2].bias.zero_()
    model.train()
    loss = align.loss(model, batch)
    assert model.training  # the eval-mode gate pass restored train mode
    assert loss.item() > 0 and align.logs()["used"] > 0
    loss.backward()
    last = model.encoder.encoder.layer[-1].output.dense.weight.grad
    assert last is not None and last.abs().sum() > 0  # the alignment gradient reaches the encoder's last layer
    assert all(p.grad is None for p in ext.gate.parameters())


def test_with_last_layer_needs_an_encoder():
    from registry.errors import UserError
    model = OneDimModel(VALUES)
    data = _split(ROWS, RATS, [1, 0, 1])
    with pytest.raises(UserError, match="gate_input: with_last_layer reads the model's encoder"):
        _bind(_ctx(model, data), role="align", gate_input="with_last_layer")
