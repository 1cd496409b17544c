import pytest
import torch
from pydantic import ValidationError

from registry.optimizers.schedulers import Constant, Linear


def lrs(scheduler_cls, total, steps, **params):
    """Learning rate after each of ``steps`` optimizer steps (lr 1.0), by actually stepping."""
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=1.0)
    sched = scheduler_cls(scheduler_cls.Params(**params)).build(opt, total)
    seen = [opt.param_groups[0]["lr"]]
    for _ in range(steps):
        opt.step()
        sched.step()
        seen.append(opt.param_groups[0]["lr"])
    return seen


def test_linear_warmup_ratio_then_decay():
    seen = lrs(Linear, 100, 120)  # default warm-up 0.1 -> 10 steps
    assert seen[0] == 0.0
    assert seen[5] == pytest.approx(0.5)
    assert seen[10] == pytest.approx(1.0)
    assert seen[55] == pytest.approx(0.5)
    assert seen[91] == pytest.approx(0.1)
    assert seen[100] == 0.0 and seen[120] == 0.0


def test_linear_warmup_steps_and_rounding():
    seen = lrs(Linear, 10, 10, warmup_steps=0)
    assert seen[:3] == pytest.approx([1.0, 0.9, 0.8])
    seen = lrs(Linear, 95, 10, warmup_ratio=0.1)  # ceil(9.5) = 10 warm-up steps
    assert seen[9] == pytest.approx(0.9) and seen[10] == pytest.approx(1.0)


def test_constant_with_and_without_warmup():
    assert lrs(Constant, 50, 3) == [1.0, 1.0, 1.0, 1.0]
    assert lrs(Constant, 50, 6, warmup_steps=4) == pytest.approx([0.0, 0.25, 0.5, 0.75, 1.0, 1.0, 1.0])


def test_bad_settings():
    with pytest.raises(ValidationError, match="either warmup_ratio or warmup_steps"):
        Linear.Params(warmup_ratio=0.2, warmup_steps=3)
    with pytest.raises(ValueError, match="total_steps > 0"):
        lrs(Linear, 0, 1)
    # a dumped Params (every field written out) validates again
    dumped = Linear.Params(warmup_steps=3).model_dump(mode="json")
    assert Linear.Params.model_validate(dumped).warmup(100) == 3
