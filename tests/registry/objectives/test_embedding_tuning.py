import pytest
import torch
import torch.nn.functional as F

import registry
from registry.errors import UserError
from registry.objectives.embedding_tuning import EmbeddingTuning, pooled_influence
from tests.registry._lib.fakes import FakeEncodedData, balanced_data, context, tiny_classifier

K = 2
ROWS = [0, 1, 2, 4, 5, 12, 13, 14, 8, 9]


def loop_J(model, batch):
    """Reference form: one forward per example, cosines with F.cosine_similarity, J by hand."""
    pooled = [model(**batch.select(torch.tensor([i])).model_inputs()).pooled[0] for i in range(len(batch))]
    total = 0
    for g in range(len(batch) // (1 + 2 * K)):
        h = pooled[g * (1 + 2 * K):(g + 1) * (1 + 2 * K)]
        cos = [F.cosine_similarity(h[0], x, dim=0) for x in h[1:]]
        total = total + (sum(cos[:K]) / K - sum(cos[K:]) / K) ** 2
    return total / (len(batch) // (1 + 2 * K))


def test_registered_with_metadata():
    cls = registry.get("objectives", "embedding_tuning")
    assert cls is EmbeddingTuning and cls.requires == ("confound",) and not cls.train_mode
    assert "4.1" in cls.paper


def test_batched_J_and_gradient_equal_the_loop_and_finite_differences():
    model = tiny_classifier()
    batch = balanced_data(4).batch(ROWS)
    res = pooled_influence(model(**batch.model_inputs()).pooled, K)
    ref = loop_J(model, batch)
    assert res.J.item() > 1e-4
    assert res.J.item() == pytest.approx(ref.item(), rel=1e-12)
    params = list(model.parameters())
    fast = torch.autograd.grad(res.J, params, allow_unused=True)
    slow = torch.autograd.grad(ref, params, allow_unused=True)
    flat = lambda gs: torch.cat([(torch.zeros_like(p) if g is None else g).reshape(-1) for p, g in zip(params, gs)])  # noqa: E731
    fast, slow = flat(fast), flat(slow)
    assert ((fast - slow).norm() / slow.norm()).item() < 1e-10
    v = torch.randn(fast.numel(), generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    v /= v.norm()

    def J_shifted(eps):
        with torch.no_grad():
            torch.nn.utils.vector_to_parameters(torch.nn.utils.parameters_to_vector(params) + eps * v, params)
        try:
            return pooled_influence(model(**batch.model_inputs()).pooled, K).J.item()
        finally:
            with torch.no_grad():
                torch.nn.utils.vector_to_parameters(torch.nn.utils.parameters_to_vector(params) - eps * v, params)

    fd = (J_shifted(1e-5) - J_shifted(-1e-5)) / 2e-5
    assert abs(fd - (fast @ v).item()) <= 1e-5 * abs(fd)


@pytest.mark.parametrize("chunk", [3, 128])  # several length-sorted forward passes, or one
def test_objective_loss_excludes_the_head_and_uses_eval_mode(chunk):
    model = tiny_classifier().train()
    data = balanced_data(4)
    obj = registry.build("objectives", "embedding_tuning", {"probes": 4, "k": 2, "probe_batch": 4, "chunk": chunk})
    obj.bind(context(model, data, seed=1))
    head = {id(p) for p in model.head.parameters()}
    chosen = {id(p) for p in obj.trainable(model)}
    assert not (chosen & head) and len(chosen) == len(list(model.parameters())) - 2
    obj.start_round()
    batch = next(iter(obj.batches(0)))
    state = obj.ctx.generator.get_state()
    loss = obj.loss(model, batch)
    assert model.training  # mode restored
    obj.ctx.generator.set_state(state)
    rows, _ = obj.sample_rows(batch)
    model.eval()
    ref = loop_J(model, data.batch(rows.reshape(-1)))
    assert loss.item() == pytest.approx(ref.item(), rel=1e-12)
    assert obj.logs()["J"] == pytest.approx(loss.item())


def test_bad_data_fails_at_bind_and_lonely_probes_are_skipped():
    obj = registry.build("objectives", "embedding_tuning", {"probes": 4, "k": 1})
    with pytest.raises(UserError, match="objective 'embedding_tuning': no training example has a visible confound"):
        obj.bind(context(tiny_classifier(), FakeEncodedData([0, 1], [-1, -1])))
    data = FakeEncodedData([0, 0, 0, 1, 1], [0, 1, 1, 0, 0])
    obj.bind(context(tiny_classifier(), data))
    loss = obj.loss(obj.ctx.model, data.batch([0, 3, 4]))
    assert obj.logs()["skipped_probes"] == 2 and loss.item() >= 0
