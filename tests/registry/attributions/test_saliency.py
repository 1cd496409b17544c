import torch

import registry
from tests.registry._lib.fakes import FakeEncodedData, tiny_classifier


def batch_with_repeats():
    batch = FakeEncodedData([0, 1, 1], [0, 0, 0], seq_len=8, seed=1).batch([0, 1, 2])
    batch.input_ids[:, 1:3] = 7  # the same token twice in every row
    return batch


def loop_gradients(model, batch):
    """Naive reference: one example at a time, the gradient w.r.t. its inputs_embeds."""
    out = []
    for i in range(len(batch)):
        x = model.input_embeddings()(batch.input_ids[i:i + 1]).detach().requires_grad_()
        logit = model(attention_mask=batch.attention_mask[i:i + 1], inputs_embeds=x).logits[0, batch.labels[i]]
        out.append((x[0], torch.autograd.grad(logit, x)[0][0]))
    return out


def test_saliency_is_the_positional_embedding_gradient_norm():
    model = tiny_classifier()
    batch = batch_with_repeats()
    grads = torch.stack([g for _, g in loop_gradients(model, batch)])
    for reduction, ref in (("l2", grads.norm(dim=-1)), ("l1", grads.abs().sum(-1))):
        got = registry.build("attributions", "saliency", {"pad_to": None, "reduction": reduction}).attribute(model, batch)
        torch.testing.assert_close(got.scores, ref, rtol=1e-12, atol=1e-15)
        assert bool((got.scores[:, 1] != got.scores[:, 2]).all())  # positional, not per embedding row
        assert bool((got.scores[batch.attention_mask == 0] == 0).all())
        assert bool((got.scores[batch.attention_mask == 1] > 0).all())


def test_saliency_sum_vanishes_through_the_embedding_layernorm():
    """Why the default is l2: BERT's word embeddings enter a LayerNorm, whose input gradient sums to 0."""
    model = tiny_classifier()
    batch = batch_with_repeats()
    total = registry.build("attributions", "saliency", {"pad_to": None, "reduction": "sum"}).attribute(model, batch)
    norm = registry.build("attributions", "saliency", {"pad_to": None}).attribute(model, batch)
    assert float(norm.scores.max()) > 1e-2
    assert float(total.scores.abs().max()) < 1e-12 * float(norm.scores.max())


def test_gradient_x_input_and_what_a_loss_on_the_scores_reaches():
    model = tiny_classifier()
    batch = batch_with_repeats()
    got = registry.build("attributions", "gradient_x_input", {"pad_to": None}).attribute(model, batch)
    ref = torch.stack([(x * g).sum(-1) for x, g in loop_gradients(model, batch)])
    torch.testing.assert_close(got.scores.detach(), ref, rtol=1e-12, atol=1e-15)
    emb = model.input_embeddings().weight
    others = [p for p in model.parameters() if p is not emb]
    grads = torch.autograd.grad(got.scores.pow(2).sum(), [emb] + others, allow_unused=True)
    assert grads[0].abs().sum() > 0 and all(g is None or not g.any() for g in grads[1:])
    sal = registry.build("attributions", "saliency", {"mode": "differentiable"}).attribute(model, batch)
    assert sal.scores.shape == (3, 128)
    w = model.head.weight
    g = torch.autograd.grad(sal.scores.pow(2).sum(), w)[0]
    assert bool(torch.isfinite(g).all()) and g.abs().sum() > 0  # the l2 norm at padding (a zero gradient) is no NaN
    assert registry.build("attributions", "saliency").attribute(model, batch).scores.grad_fn is None  # faithful: constants
