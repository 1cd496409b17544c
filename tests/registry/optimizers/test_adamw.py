import pytest
import torch
from torch import nn

from registry.optimizers.adamw import AdamW


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.dense = nn.Linear(3, 3)
        self.LayerNorm = nn.LayerNorm(3)
        self.head = nn.Linear(3, 2)
        self.frozen = nn.Parameter(torch.ones(2), requires_grad=False)


def build(model, **params):
    return AdamW(AdamW.Params(**params)).build(model.named_parameters())


def test_no_decay_groups_by_name():
    model = Tiny()
    opt = build(model)
    groups = {g["name"]: g for g in opt.param_groups}
    assert groups["decay"]["names"] == ["dense.weight", "head.weight"]
    assert groups["no_decay"]["names"] == ["dense.bias", "LayerNorm.weight", "LayerNorm.bias", "head.bias"]
    assert groups["decay"]["weight_decay"] == 0.01 and groups["no_decay"]["weight_decay"] == 0.0
    assert all(g["lr"] == 2e-5 and g["eps"] == 1e-8 and g["betas"] == (0.9, 0.999) for g in opt.param_groups)
    assert sum(len(g["params"]) for g in opt.param_groups) == 6  # the frozen one is left out


def test_step_decays_only_the_decay_group():
    torch.manual_seed(0)
    model = Tiny()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    opt = build(model, lr=0.1, weight_decay=0.5)
    for p in model.parameters():
        p.grad = torch.zeros_like(p)  # Adam's update is 0/(0+eps) = 0: only weight decay acts
    opt.step()
    for name, p in model.named_parameters():
        factor = 0.95 if name in ("dense.weight", "head.weight") else 1.0
        torch.testing.assert_close(p.detach(), before[name] * factor)


def test_empty_no_decay_decays_everything_and_names_are_required():
    model = Tiny()
    opt = build(model, no_decay=[])
    assert [g["name"] for g in opt.param_groups] == ["decay"]
    with pytest.raises(TypeError, match="named_parameters"):
        AdamW().build(model.parameters())


def test_shared_parameter_counted_once():
    model = Tiny()
    named = list(model.named_parameters()) + [("alias.weight", model.dense.weight)]
    opt = AdamW().build(named)
    assert sum(len(g["params"]) for g in opt.param_groups) == 6
