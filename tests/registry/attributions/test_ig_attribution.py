"""The ``integrated_gradients`` attribution component: exact padding, positions, modes, targets."""
import types

import pytest
import torch

import registry
from registry._lib.integrated_gradients import integrated_gradients
from registry.errors import UserError
from tests.registry._lib.fakes import FakeEncodedData, tiny_classifier


def ig(**params):
    return registry.build("attributions", "integrated_gradients", params)


def data_batch(n: int = 4, seq_len: int = 10, seed: int = 0):
    batch = FakeEncodedData([0, 1, 1, 0, 1][:n], [0] * n, seq_len=seq_len, seed=seed).batch(list(range(n)))
    batch.input_ids[:, 0] = 1  # [CLS]
    lengths = batch.attention_mask.sum(1)
    batch.input_ids[torch.arange(n), lengths - 1] = 2  # [SEP]
    batch.token_type_ids = (torch.arange(seq_len)[None] >= 3).long() * batch.attention_mask
    return batch


def full_width_reference(model, batch, nodes=10, tt=None):
    """IG through the model on the untrimmed batch (the lib function, no component logic)."""
    x = model.input_embeddings()(batch.input_ids).detach()
    mask, target = batch.attention_mask, batch.labels

    def forward(points, rows):
        return model(attention_mask=mask[rows], token_type_ids=None if tt is None else tt[rows],
                     inputs_embeds=points).logits.gather(1, target[rows, None]).squeeze(1)

    return integrated_gradients(forward, x, torch.zeros(x.shape[-1], dtype=x.dtype), nodes=nodes).sum(-1)


def test_masked_positions_score_exactly_zero_so_trimming_is_exact():
    model = tiny_classifier()
    batch = data_batch()
    batch = type(batch)(**{**batch.__dict__, "input_ids": torch.cat([batch.input_ids, torch.zeros(4, 3, dtype=torch.long)], 1),
                           "attention_mask": torch.cat([batch.attention_mask, torch.zeros(4, 3, dtype=torch.long)], 1),
                           "token_type_ids": None})
    assert (batch.attention_mask == 0).any(1).all()  # every row has padding, and 3 columns are padding in all rows
    ref = full_width_reference(model, batch)
    pad = batch.attention_mask == 0
    assert bool((ref[pad] == 0).all())  # exactly, not approximately
    assert bool((ref[~pad] != 0).all())
    got = ig(pad_to=None).attribute(model, batch)
    assert got.scores.shape == batch.input_ids.shape
    torch.testing.assert_close(got.scores.detach(), ref, rtol=1e-12, atol=1e-15)
    assert bool(got.counted.all())  # positions: all counts [PAD] too (the batch's own width here)


def test_all_positions_pad_to_128_in_closed_form():
    model = tiny_classifier()
    batch = data_batch()
    out = ig().attribute(model, batch)  # defaults: positions all, pad_to 128
    assert out.scores.shape == (4, 128) and bool(out.counted.all())
    assert bool((out.scores[:, 10:] == 0).all())
    torch.testing.assert_close(out.scores[:, :10].detach(), full_width_reference(model, batch), rtol=1e-12, atol=1e-15)
    torch.testing.assert_close(out.target, batch.labels)
    wide = ig(pad_to=6).attribute(model, batch)  # a batch wider than pad_to counts its longest row
    assert wide.scores.shape == (4, 10) and bool(wide.counted.all())


def test_tokens_positions_skip_padding_and_special_tokens():
    model = tiny_classifier()
    model.tokenizer = types.SimpleNamespace(all_special_ids=[0, 1, 2], pad_token_id=0, mask_token_id=3)
    batch = data_batch()
    out = ig(positions="tokens").attribute(model, batch)
    expect = batch.attention_mask.bool() & ~torch.isin(batch.input_ids, torch.tensor([0, 1, 2]))
    assert out.scores.shape == (4, 10)
    assert torch.equal(out.counted, expect)
    assert bool((out.scores[~expect] == 0).all())
    ref = full_width_reference(model, batch)
    torch.testing.assert_close(out.scores[expect].detach(), ref[expect], rtol=1e-12, atol=1e-15)


def test_token_type_ids_drop_by_default_pass_on_request():
    model = tiny_classifier()
    batch = data_batch()
    drop = ig(pad_to=None).attribute(model, batch).scores.detach()
    passed = ig(pad_to=None, token_type_ids="pass").attribute(model, batch).scores.detach()
    torch.testing.assert_close(drop, full_width_reference(model, batch), rtol=1e-12, atol=1e-15)
    torch.testing.assert_close(passed, full_width_reference(model, batch, tt=batch.token_type_ids), rtol=1e-12, atol=1e-15)
    assert (drop - passed).abs().max() > 1e-6


def test_targets_gold_predicted_and_explicit():
    model = tiny_classifier()
    batch = data_batch()
    pred = model(**batch.model_inputs()).logits.argmax(-1)
    assert torch.equal(ig(target="predicted").attribute(model, batch).target, pred)
    explicit = 1 - batch.labels
    assert torch.equal(ig().attribute(model, batch, target=explicit).target, explicit)


def test_dropout_on_follows_the_model_mode_off_runs_eval_and_restores():
    model = tiny_classifier()
    model.encoder.config.hidden_dropout_prob = 0.5
    for m in model.modules():
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.5
    batch = data_batch()
    model.train()
    torch.manual_seed(0)
    on1 = ig(pad_to=None).attribute(model, batch).scores.detach()
    on2 = ig(pad_to=None).attribute(model, batch).scores.detach()
    off = ig(pad_to=None, dropout="off").attribute(model, batch).scores.detach()
    assert model.training and all(m.training for m in model.modules())
    assert (on1 - on2).abs().max() > 1e-6  # random dropout masks
    model.eval()
    torch.testing.assert_close(off, full_width_reference(model, batch), rtol=1e-12, atol=1e-15)


def test_faithful_scores_reach_only_the_batch_embedding_rows_differentiable_all_weights():
    model = tiny_classifier()
    batch = data_batch(n=2, seq_len=6)
    emb = model.input_embeddings().weight
    others = [p for p in model.parameters() if p is not emb]
    faithful = ig(nodes=3).attribute(model, batch).scores.pow(2).sum()
    grads = torch.autograd.grad(faithful, [emb] + others, allow_unused=True)
    assert all(g is None or not g.any() for g in grads[1:])
    rows = grads[0].abs().sum(1) > 0
    assert set(rows.nonzero().flatten().tolist()) <= set(batch.input_ids.unique().tolist())
    diff = ig(nodes=3, mode="differentiable").attribute(model, batch).scores.pow(2).sum()
    dgrads = torch.autograd.grad(diff, others, allow_unused=True)
    assert sum(g is not None and bool(g.any()) for g in dgrads) > len(others) // 2


def test_under_no_grad_callers_still_get_scores():
    model = tiny_classifier()
    batch = data_batch()
    with torch.no_grad():
        out = ig(pad_to=None).attribute(model, batch)
    torch.testing.assert_close(out.scores, full_width_reference(model, batch), rtol=1e-12, atol=1e-15)


def test_baselines_pad_and_mask_and_user_errors():
    model = tiny_classifier()
    batch = data_batch()
    pad = ig(baseline="pad", pad_to=None).attribute(model, batch).scores
    assert pad.shape == (4, 10) and pad.abs().sum() > 0  # pad id 0 from the encoder config
    with pytest.raises(UserError, match="baseline 'mask' needs a \\[MASK\\] token"):
        ig(baseline="mask").attribute(model, batch)
    model.tokenizer = types.SimpleNamespace(all_special_ids=[0, 1, 2], pad_token_id=0, mask_token_id=3)
    with torch.no_grad():
        model.input_embeddings().weight[3] = 0.0
    torch.testing.assert_close(ig(baseline="mask", pad_to=None).attribute(model, batch).scores.detach(),
                               full_width_reference(model, batch), rtol=1e-12, atol=1e-15)

    class NoEmbeddings(torch.nn.Module):
        def input_embeddings(self):
            raise NotImplementedError

    with pytest.raises(UserError, match="attribution 'integrated_gradients' needs a model with word embeddings"):
        ig().attribute(NoEmbeddings(), batch)
