import torch

from registry._lib.grl import grad_reverse
from registry._lib.surrogate import surrogate


def test_grl_is_identity_forward_and_flips_and_scales_backward():
    x = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    w = torch.randn(4, 3, dtype=torch.float64)
    y = grad_reverse(x, 0.3)
    assert torch.equal(y, x)
    (y * w).sum().backward()
    assert torch.equal(x.grad, -0.3 * w)


def test_grl_strength_zero_blocks_the_gradient():
    x = torch.randn(5, requires_grad=True)
    grad_reverse(x, 0.0).sum().backward()
    assert torch.equal(x.grad, torch.zeros(5))


def test_surrogate_value_and_gradient():
    p1 = torch.nn.Parameter(torch.randn(3, 2) * 1e3)  # large params: the value must not lose digits
    p2 = torch.nn.Parameter(torch.randn(4))
    g1, g2 = torch.randn(3, 2), torch.randn(4)
    value = torch.tensor(1.2345e-9, dtype=torch.float64)
    s = surrogate(value, [p1, p2], [g1, g2])
    assert s.item() == value.item()
    s.backward()
    assert torch.allclose(p1.grad, g1) and torch.allclose(p2.grad, g2)
