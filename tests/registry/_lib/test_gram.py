import pytest
import torch
import torch.nn.functional as F
from torch import nn

from registry._lib.gram import Factors, GramUnsupported, capture, groups, owners, whole
from registry._lib.param_sets import select_parameters
from registry._lib.per_example import example_losses, per_example_grads_loop, trim_padding
from tests.registry._lib.fakes import balanced_data, tiny_classifier


def factors(model, batch, params):
    batch = trim_padding(batch)
    with capture(model, params, len(batch)) as sites:
        losses = example_losses(model, batch)
    return Factors.from_loss(sites, losses.sum(), len(batch), create_graph=False)


def naive_matrix(model, batch, params):
    gs = per_example_grads_loop(model, batch, [p for _, p in params])
    flat = torch.stack([torch.cat([g.reshape(-1) for g in row]) for row in gs])
    return flat @ flat.T


@pytest.mark.parametrize("spec", ["all", "no_word_embeddings", "head", {"last_n_layers": 1}, {"glob": "*LayerNorm*"}])
def test_gram_dots_equal_naive_per_example_gradients(spec):
    m = tiny_classifier()
    b = balanced_data(2).batch(list(range(8)))
    assert bool((b.input_ids[b.attention_mask.bool()] == 0).any())  # real tokens on padding_idx are covered
    params = select_parameters(m, spec)
    f = factors(m, b, params)
    full = f.cross(f, whole, whole)[0]
    ref = naive_matrix(m, b, params)
    torch.testing.assert_close(full, ref, rtol=1e-10, atol=1e-14)
    torch.testing.assert_close(f.sq_norms(), ref.diagonal(), rtol=1e-10, atol=1e-14)
    grouped = f.cross(f, groups(2, 4, 0, 1), groups(2, 4))
    torch.testing.assert_close(grouped[:, 0], torch.stack([ref[0, :4], ref[4, 4:]]), rtol=1e-10, atol=1e-14)
    dense = f.densified()
    torch.testing.assert_close(dense.cross(dense, whole, whole)[0], ref, rtol=1e-10, atol=1e-14)


def test_cross_between_batches_of_different_lengths():
    m = tiny_classifier()
    data = balanced_data(3, seq_len=12)
    params = select_parameters(m, "all")
    a_idx, b_idx = [0, 5], [1, 2, 7, 11]
    ba, bb = data.batch(a_idx), data.batch(b_idx)
    ba.attention_mask[:, 7:] = 0  # different trimmed lengths on both sides
    ba.input_ids[:, 7:] = 0
    fa, fb = factors(m, ba, params), factors(m, bb, params)
    got = fa.cross(fb, whole, whole)[0]
    ga = per_example_grads_loop(m, ba, [p for _, p in params])
    gb = per_example_grads_loop(m, bb, [p for _, p in params])
    ref = torch.tensor([[sum((x * y).sum() for x, y in zip(r, s)).item() for s in gb] for r in ga], dtype=torch.float64)
    torch.testing.assert_close(got, ref, rtol=1e-10, atol=1e-14)


def test_frozen_parameters_still_count():
    m = tiny_classifier()
    for p in m.encoder.embeddings.parameters():
        p.requires_grad_(False)
    b = balanced_data(2).batch(list(range(5)))
    params = select_parameters(m, "all")
    f = factors(m, b, params)
    for _, p in params:
        p.requires_grad_(True)
    torch.testing.assert_close(f.cross(f, whole, whole)[0], naive_matrix(m, b, params), rtol=1e-10, atol=1e-14)


class TwiceLinear(nn.Module):
    """A Linear applied twice (its per-example gradient sums both calls) and a 2-D LayerNorm."""

    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(7, 4, padding_idx=0)
        self.lin = nn.Linear(4, 4)
        self.norm = nn.LayerNorm(4)
        self.out = nn.Linear(4, 3)

    def forward(self, ids):
        h = torch.tanh(self.lin(torch.tanh(self.lin(self.emb(ids)))))
        return self.out(self.norm(h.mean(1)))


def test_module_called_twice_and_toy_layers():
    torch.manual_seed(0)
    m = TwiceLinear().double()
    ids = torch.randint(0, 7, (5, 6))
    y = torch.randint(0, 3, (5,))
    params = list(m.named_parameters())
    with capture(m, params, 5) as sites:
        losses = F.cross_entropy(m(ids), y, reduction="none")
    f = Factors.from_loss(sites, losses.sum(), 5, create_graph=False)
    gs = [torch.autograd.grad(F.cross_entropy(m(ids[i:i + 1]), y[i:i + 1]), [p for _, p in params]) for i in range(5)]
    flat = torch.stack([torch.cat([g.reshape(-1) for g in row]) for row in gs])
    torch.testing.assert_close(f.cross(f, whole, whole)[0], flat @ flat.T, rtol=1e-10, atol=1e-14)


def test_unsupported_and_tied_parameters_are_refused():
    conv = nn.Sequential(nn.Conv1d(2, 2, 1))
    with pytest.raises(GramUnsupported, match="Conv1d"):
        owners(conv, list(conv.named_parameters()))
    tied = nn.Sequential(nn.Embedding(5, 3), nn.Linear(3, 5, bias=False))
    tied[1].weight = tied[0].weight
    with pytest.raises(GramUnsupported):
        owners(tied, [("0.weight", tied[0].weight)])
