"""A round shorter than planned (HILDIF with scores below 5) re-spans its LR schedule so the
LR ends where the optimizer's last step does; the new horizon survives a checkpoint."""
import pytest
import torch

import registry
from recipe_engine.train import OptimizerSlot, shorten_horizon


def slot(total: int, groups: int = 2) -> OptimizerSlot:
    params = [torch.nn.Parameter(torch.zeros(1)) for _ in range(groups)]
    opt = torch.optim.SGD([{"params": [p]} for p in params], lr=0.1)
    component = registry.build("schedulers", "linear", {"warmup_ratio": 0.0})
    return OptimizerSlot(opt, component.build(opt, total), None, component, total)


def step(s: OptimizerSlot, n: int) -> None:
    for _ in range(n):
        s.optimizer.step()
        s.scheduler.step()


def test_a_shorter_round_ends_its_schedule_at_its_last_step():
    s = slot(10)
    step(s, 3)
    assert shorten_horizon(s, 4) == "its LR schedule now spans 6 steps"  # 10 planned, 6 run
    assert s.horizon == 6
    assert [g["lr"] for g in s.optimizer.param_groups] == pytest.approx([0.1 * 3 / 6] * 2)
    assert s.scheduler.get_last_lr() == [g["lr"] for g in s.optimizer.param_groups]
    step(s, 3)
    assert [g["lr"] for g in s.optimizer.param_groups] == [0.0, 0.0]

    saved = s.scheduler.state_dict()  # a resumed run rebuilds the planned schedule, then loads the new one
    again = slot(10)
    again.scheduler.load_state_dict(saved)
    assert again.scheduler.lr_lambdas[0](4) == s.scheduler.lr_lambdas[0](4) == 2 / 6


def test_nothing_changes_without_fewer_steps_or_a_scheduler():
    s = slot(10)
    assert shorten_horizon(s, 0) is None
    assert s.horizon == 10 and s.scheduler.lr_lambdas[0](5) == 0.5
    assert shorten_horizon(OptimizerSlot(s.optimizer, None, None), 3) is None


def test_a_schedule_that_is_not_a_lambda_keeps_its_horizon_and_says_so():
    s = slot(10)
    s.scheduler = torch.optim.lr_scheduler.StepLR(s.optimizer, 5)
    assert "StepLR schedule keeps the planned horizon" in shorten_horizon(s, 3)
