import torch

from registry._lib.param_sets import select_parameters
from registry._lib.per_example import by_length, eval_mode, per_example_grads, per_example_grads_loop, trim_padding
from tests.registry._lib.fakes import balanced_data, tiny_classifier


def test_vmap_per_example_grads_equal_the_loop():
    m = tiny_classifier()
    b = balanced_data(2).batch(list(range(8)))
    params = select_parameters(m, "all")
    fast = per_example_grads(m, b, params)
    slow = per_example_grads_loop(m, b, [p for _, p in params])
    for j, (name, p) in enumerate(params):
        assert fast[j].shape == (8, *p.shape)
        for i in range(8):
            torch.testing.assert_close(fast[j][i], slow[i][j], rtol=1e-10, atol=1e-12, msg=name)


def test_trim_padding_drops_only_all_pad_columns():
    b = balanced_data(2, seq_len=12).batch([0, 1])
    b.attention_mask[:, 9:] = 0
    t = trim_padding(b)
    assert t.input_ids.shape[1] == int(b.attention_mask.sum(1).max())
    assert torch.equal(t.input_ids, b.input_ids[:, : t.input_ids.shape[1]])


def test_by_length_sorts_chunks_and_undoes_the_sort():
    data = balanced_data(6, seq_len=16)
    index = torch.tensor([11, 3, 7, 0, 19, 5, 2, 14, 8])
    lengths = lambda idx: data.batch(idx).attention_mask.sum(1)  # noqa: E731
    chunks, undo = by_length(data, index, 4)
    assert [len(c) for c in chunks] == [4, 4, 1]
    flat = torch.cat(chunks)
    assert sorted(flat.tolist()) == sorted(index.tolist())
    assert torch.equal(lengths(flat), lengths(flat).sort().values)
    assert torch.equal(flat[undo], index)


def test_eval_mode_restores_the_previous_mode():
    m = tiny_classifier().train()
    with eval_mode(m):
        assert not m.training
    assert m.training


def test_double_backward_through_the_eager_model():
    m = tiny_classifier()
    b = balanced_data(1).batch([0, 1])
    loss = torch.nn.functional.cross_entropy(m(**b.model_inputs()).logits, b.labels)
    params = [p for p in m.parameters()]
    g = torch.autograd.grad(loss, params, create_graph=True)
    hv = torch.autograd.grad(sum((x * x).sum() for x in g), params, allow_unused=True)
    assert any(h is not None and h.abs().sum() > 0 for h in hv)
