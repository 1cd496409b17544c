"""rationale_erasure (UIMER-IM): the margin loss by hand, the copies (positions, counts, cap,
prior), the gradient, and `validate` refusing it on a dataset without rationales."""
from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
from torch import nn

import registry
from registry._lib.replacement import log2_odds_of_mean, replacement_positions, token_prior
from registry.data import EncodedSplit
from registry.objectives.rationale_erasure import RationaleErasure
from registry.types import ClassifierOutput, ObjectiveContext
from tests.registry._lib.fakes import tiny_classifier

PAD, CLS, SEP, MASK = 0, 1, 2, 3
TOK = SimpleNamespace(all_special_ids=[PAD, CLS, SEP, MASK], mask_token_id=MASK)
LN2 = math.log(2.0)


class BitsModel(nn.Module):
    """Two classes; the log-odds of class 1 in bits is ``bias + sum_t v[id_t]`` over real tokens,
    so for a single-valued set of copies m = that sum (label 1) or minus it (label 0)."""

    def __init__(self, values: dict[int, float], bias: float = 0.5, vocab: int = 32):
        super().__init__()
        self.tokenizer = TOK
        v = torch.zeros(vocab, dtype=torch.float64)
        for i, x in values.items():
            v[i] = x
        self.v = nn.Parameter(v)
        self.bias = bias
        self.emb = nn.Embedding(vocab, 1)

    def input_embeddings(self) -> nn.Embedding:
        return self.emb

    def forward(self, input_ids, attention_mask, token_type_ids=None, inputs_embeds=None):
        bits = self.bias + (self.v[input_ids] * attention_mask).sum(-1)
        z = bits * LN2
        return ClassifierOutput(logits=torch.stack([torch.zeros_like(z), z], -1), pooled=z[:, None])


def _split(ids: list[list[int]], rationale: list[list[int]], labels: list[int]) -> EncodedSplit:
    T = max(map(len, ids))
    input_ids = torch.tensor([r + [PAD] * (T - len(r)) for r in ids])
    att = (torch.arange(T)[None] < torch.tensor([len(r) for r in ids])[:, None]).long()
    rat = torch.tensor([r + [0] * (T - len(r)) for r in rationale], dtype=torch.float)
    n = len(ids)
    return EncodedSplit("train", [str(i) for i in range(n)], input_ids, att, torch.tensor(labels),
                        torch.full((n,), -1), torch.zeros(n, dtype=torch.bool), rationale=rat)


def _bound(model, data, seed: int = 0, **params) -> RationaleErasure:
    obj = registry.build("objective", "rationale_erasure", params)
    obj.bind(ObjectiveContext(model=model, train=data, num_labels=2, num_confounds=1, device=torch.device("cpu"),
                              generator=torch.Generator().manual_seed(seed)))
    return obj


# [CLS] r o [SEP]: one rationale and one other token each, so S^N is the same in every copy
ROWS = [[CLS, 10, 11, SEP], [CLS, 12, 13, SEP], [CLS, 14, 15, SEP], [CLS, 16, 17, SEP, PAD]]
RATS = [[0, 1, 0, 0], [0, 1, 0, 0], [0, 1, 0, 0], [0, 0, 0, 0]]  # the 4th row has no rationale
LABELS = [1, 1, 0, 1]


def test_margin_loss_by_hand_on_three_examples():
    # bias 0.5 bit.  Row 1 (label 1): m_R = 0.5 + 0.5 = 1, m_N = 0.5 + 3 = 3.5 -> max(0, 1 - 3.5 + 1) = 0
    # row 2 (label 1): m_R = 0.5 + 1 = 1.5, m_N = 0.5 + 0.25 = 0.75 -> 1.75
    # row 3 (label 0, m = -bits): m_R = -(0.5 - 1.5) = 1, m_N = -(0.5 - 2) = 1.5 -> 0.5
    model = BitsModel({10: 3.0, 11: 0.5, 12: 0.25, 13: 1.0, 14: -2.0, 15: -1.5})
    data = _split(ROWS, RATS, LABELS)
    obj = _bound(model, data, replace="mask", copies=3)
    loss = obj.loss(model, data.batch(range(4)))
    assert loss.item() == pytest.approx((0 + 1.75 + 0.5) / 3, abs=1e-12)
    logs = obj.logs()
    assert (logs["skipped"], logs["used"], logs["dropped_zero"]) == (1.0, 3.0, 0.0)
    assert logs["m_rationale"] == pytest.approx((1 + 1.5 + 1) / 3) and logs["m_other"] == pytest.approx((3.5 + 0.75 + 1.5) / 3)
    # all three win by the margin: row 2 m_R = 0.75, m_N = 3.75; row 3 m_R = 0.5, m_N = 2.5
    won = BitsModel({10: 3.0, 11: 0.5, 12: 3.25, 13: 0.25, 14: -3.0, 15: -1.0})
    assert obj.loss(won, data.batch(range(4))).item() == 0.0  # relu: exactly 0
    assert obj.logs()["used"] == 3.0
    # row 2 short of the margin: m_R = 1.75, m_N = 1.5 -> 1.75 - 1.5 + 1 = 1.25
    close = BitsModel({10: 3.0, 11: 0.5, 12: 1.0, 13: 1.25, 14: -3.0, 15: -1.0})
    assert obj.loss(close, data.batch(range(4))).item() == pytest.approx(1.25 / 3, abs=1e-12)


def test_examples_with_a_zero_log_odds_are_dropped_and_a_batch_without_rationale_is_free():
    model = BitsModel({10: 3.0, 11: -0.5, 12: 0.25, 13: 1.0})  # row 1: m_R = 0.5 - 0.5 = 0 -> dropped
    data = _split(ROWS, RATS, LABELS)
    obj = _bound(model, data, replace="mask")
    assert obj.loss(model, data.batch([0, 1])).item() == pytest.approx(1.75, abs=1e-12)
    assert (obj.logs()["used"], obj.logs()["dropped_zero"]) == (1.0, 1.0)
    none = obj.loss(model, data.batch([3]))
    assert none.item() == 0.0 and not none.requires_grad and obj.logs()["skipped"] == 1.0


def test_log2_odds_of_the_mean_and_the_lower_bound():
    p = torch.tensor([[0.2, 0.6], [1e-30, 1e-30]], dtype=torch.float64)
    m = log2_odds_of_mean(p.log(), (1 - p).log(), 1e-23)
    assert m[0].item() == pytest.approx(math.log2(0.4 / 0.6)) and m[1].item() == math.log2(1e-23)


def test_copies_never_touch_special_or_padding_and_match_counts():
    g = torch.Generator().manual_seed(0)
    B, T = 40, 16
    lengths = torch.randint(4, T + 1, (B,), generator=g)
    att = (torch.arange(T)[None] < lengths[:, None]).long()
    ids = torch.randint(10, 30, (B, T), generator=g)
    ids[:, 0] = CLS
    ids[torch.arange(B), lengths - 1] = SEP
    ids[att == 0] = PAD
    special = torch.isin(ids, torch.tensor([PAD, CLS, SEP, MASK]))
    rat = (torch.rand(B, T, generator=g) < 0.4).float() * (~special).float()
    data = EncodedSplit("train", [str(i) for i in range(B)], ids, att, torch.zeros(B, dtype=torch.long),
                        torch.full((B,), -1), torch.zeros(B, dtype=torch.bool), rationale=rat)
    for cap in (None, 0.3):
        obj = _bound(BitsModel({}), data, copies=4, max_rationale_fraction=cap)
        batch = data.batch(range(B))
        rows, s_r, s_n, on_r, on_n, counts = obj.copies_of(batch)
        assert rows.tolist() == torch.nonzero(batch.rationale.sum(-1) > 0).flatten().tolist()
        base = batch.input_ids[rows].unsqueeze(1).expand_as(s_r)
        sp = torch.isin(base, torch.tensor([PAD, CLS, SEP, MASK])) | (batch.attention_mask[rows] == 0).unsqueeze(1)
        for copies, where in ((s_r, on_r), (s_n, on_n)):
            assert not (where & sp).any()  # never a special or padding position
            assert torch.equal(copies[~where], base[~where])  # nothing else changes
            assert not torch.isin(copies[where], torch.tensor([PAD, CLS, SEP, MASK])).any()  # the prior has no specials
        is_rat = (batch.rationale[rows] > 0).unsqueeze(1).expand_as(on_r)
        assert not (on_n & is_rat).any() and not (on_r & ~is_rat).any()
        n_rat = batch.rationale[rows].sum(-1).long()
        n_real = (~sp[:, 0]).sum(-1)
        k = n_rat if cap is None else torch.minimum(n_rat, torch.clamp((n_real * cap).floor().long(), min=1))
        n_other = n_real - n_rat
        assert torch.equal(on_r.sum(-1), k[:, None].expand(-1, 4))
        assert torch.equal(on_n.sum(-1), torch.minimum(k, n_other)[:, None].expand(-1, 4))
        assert counts["short_non_rationale"] == float((n_other < k).sum()) > 0
        if cap is not None:
            assert (k < n_rat).any()  # the cap did bite on some rows


def test_cap_on_a_hand_made_row():
    rat = torch.tensor([[0, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0]], dtype=torch.float)  # 10 real non-special tokens
    att = torch.ones(1, 12, dtype=torch.long)
    special = torch.zeros(1, 12, dtype=torch.bool)
    special[0, [0, 11]] = True
    on_r, on_n, k = replacement_positions(rat, att, special, 3, torch.Generator().manual_seed(1), 0.3)
    assert k.tolist() == [3] and on_r.sum(-1).tolist() == [[3, 3, 3]] and on_n.sum(-1).tolist() == [[3, 3, 3]]
    assert on_r[0, :, 1:6].sum().item() == 9 and on_n[0, :, 6:11].sum().item() == 9


def test_frequency_prior_is_the_training_unigram_distribution():
    # training tokens: 10 x 600, 11 x 300, 12 x 100 (plus [CLS]/[SEP]/padding, never counted)
    rows = [[CLS] + [10] * 6 + [11] * 3 + [12] + [SEP]] * 100
    train = _split(rows, [[0] * 12] * 100, [1] * 100)
    prior = token_prior(train.input_ids, train.attention_mask, torch.tensor([PAD, CLS, SEP, MASK]), 32)
    assert prior[10].item() == pytest.approx(0.6) and prior[11].item() == pytest.approx(0.3) and prior.sum().item() == pytest.approx(1)
    target = _split([[CLS] + [20] * 10 + [SEP]] * 50, [[0] + [1] * 10 + [0]] * 50, [1] * 50)
    obj = _bound(BitsModel({}), train, seed=7, copies=4, max_rationale_fraction=None)
    obj.ctx.train = target
    _, s_r, _, on_r, _, _ = obj.copies_of(target.batch(range(50)))
    drawn = s_r[on_r]
    assert drawn.numel() == 2000 and set(drawn.tolist()) <= {10, 11, 12}
    freq = torch.bincount(drawn, minlength=13)[10:13].double() / drawn.numel()
    # 2000 draws: sd of a share <= 0.011; 4 sd
    assert torch.allclose(freq, torch.tensor([0.6, 0.3, 0.1], dtype=torch.float64), atol=0.045)
    again = _bound(BitsModel({}), train, seed=7, copies=4, max_rationale_fraction=None)
    assert torch.equal(again.copies_of(target.batch(range(50)))[1], s_r)  # seeded


def test_gradient_matches_finite_differences_and_flows_through_a_bert():
    model = BitsModel({10: 3.0, 11: 0.5, 12: 0.25, 13: 1.0, 14: -2.0, 15: -1.5})
    data = _split(ROWS, RATS, LABELS)
    obj = _bound(model, data, replace="mask", copies=2)
    batch = data.batch(range(4))
    loss = obj.loss(model, batch)
    (grad,) = torch.autograd.grad(loss, model.v)
    # hinge active on rows 2 and 3: d/dv = (dm_R - dm_N) / 3; row 2: v13 +1, v12 -1; row 3 (label 0): v15 -1, v14 +1
    expected = torch.zeros(32, dtype=torch.float64)
    expected[[12, 13, 14, 15]] = torch.tensor([-1.0, 1.0, 1.0, -1.0], dtype=torch.float64) / 3
    assert torch.allclose(grad, expected, atol=1e-9)
    h = 1e-6
    for i in (12, 15):
        with torch.no_grad():
            model.v[i] += h
        up = obj.loss(model, batch).item()
        with torch.no_grad():
            model.v[i] -= 2 * h
        down = obj.loss(model, batch).item()
        with torch.no_grad():
            model.v[i] += h
        assert (up - down) / (2 * h) == pytest.approx(grad[i].item(), abs=1e-6)
    bert = tiny_classifier(seed=0, vocab=32).train()
    bert.tokenizer = TOK
    obj = _bound(bert, data, replace="frequency", copies=2, margin=50.0)  # margin 50: the hinge is active
    loss = obj.loss(bert, batch)
    assert loss.item() > 0
    loss.backward()
    g = bert.input_embeddings().weight.grad
    assert g is not None and torch.isfinite(g).all() and g.abs().sum() > 0


def test_checkpointed_generator_resumes_the_draws():
    data = _split(ROWS, RATS, LABELS)
    obj = _bound(BitsModel({}), data, copies=2)
    state = {k: v.clone() for k, v in obj.state_dict().items()}
    first = obj.copies_of(data.batch(range(4)))[1]
    obj.load_state_dict(state)
    assert torch.equal(obj.copies_of(data.batch(range(4)))[1], first)


def test_params_schema_and_defaults():
    p = RationaleErasure.Params()
    assert (p.replace, p.copies, p.margin, p.lower_bound, p.max_rationale_fraction) == ("frequency", 2, 1.0, 1e-23, 0.3)
    assert RationaleErasure.requires == ("rationale",) and RationaleErasure.own_data is False
    with pytest.raises(Exception, match="replace"):
        RationaleErasure.Params(replace="bert")


def test_validate_refuses_it_on_a_dataset_without_rationales(tmp_path):
    from tests.recipe_engine.tiny_run import validate_without_rationales

    code, path, err = validate_without_rationales(tmp_path, "{name: rationale_erasure, weight: 0.5}")
    assert code == 1
    assert "Traceback" not in err and err.startswith(f"{path}:")
    assert ("objective 'rationale_erasure' requires a 'rationale' column, which dataset 'files' does not provide "
            "(it has: confound, label, text); use a dataset with one, or map one in data.params.columns.rationale") in err


def test_mask_and_uniform_replacements():
    data = _split(ROWS, RATS, LABELS)
    batch = data.batch(range(4))
    _, s_r, s_n, on_r, on_n, _ = _bound(BitsModel({}), data, replace="mask", copies=2).copies_of(batch)
    assert (s_r[on_r] == MASK).all() and (s_n[on_n] == MASK).all() and on_r.sum() == on_n.sum() == 6
    obj = _bound(BitsModel({}, vocab=32), data, replace="uniform", copies=200)
    _, s_r, _, on_r, _, _ = obj.copies_of(batch)
    drawn = s_r[on_r]
    assert set(drawn.tolist()) == set(range(4, 32))  # every non-special id of the vocabulary, no special one
