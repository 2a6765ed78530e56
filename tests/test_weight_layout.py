"""Memory layout of the feed-forward network's matrices: W column-major (Wᵀ contiguous) and
every B laid out for a plain GEMM, with the same shapes, values, ``.grad`` and training results
as row-major storage."""
import pytest
import torch

from neurocredit.rules import get_rule
from neurocredit.sim.layers import Dense
from neurocredit.sim.losses import target_vector
from neurocredit.sim.network import Network
from neurocredit.sim.train import TrainConfig, make_optimizer
from neurocredit.sim.updates import local_sgd_step


def test_column_major_dense_same_values_forward_and_grad():
    row = Dense(7, 5, generator=torch.Generator().manual_seed(3))
    col = Dense(7, 5, generator=torch.Generator().manual_seed(3), column_major=True)
    assert col.weight.shape == (5, 7) and col.weight.t().is_contiguous()
    assert not row.weight.t().is_contiguous()
    assert torch.equal(row.weight, col.weight)
    x = torch.rand(4, 7)
    torch.testing.assert_close(col(x), row(x))
    g = torch.empty_like(col.weight).copy_(torch.rand(5, 7))
    col.weight.grad = g                       # a .grad assignment lands on the parameter
    assert col.weight.grad is g
    before = g.clone()
    col(x).sum().backward()                   # autograd accumulates into it: + Σ_b 1 ⊗ x_b
    torch.testing.assert_close(col.weight.grad, before + x.sum(0).expand(5, 7))
    fresh = Dense(7, 5, column_major=True)
    fresh(x).sum().backward()                 # a new grad takes the parameter's layout
    assert fresh.weight.grad.stride() == fresh.weight.stride()


def _row_major_copy(net: Network) -> None:
    """The layout before: W row-major, a learned next-layer B with B_lᵀ contiguous, others row-major."""
    for layer in net.layers:
        layer.weight.data = layer.weight.data.contiguous()
    for l in net.feedback_index:
        B = net.B(l)
        B.data = B.data.t().contiguous().t() if net.rule.feedback.kind == "learned" else B.data.contiguous()


@pytest.mark.parametrize("rule", ["fa", "dfa", "kp", "wm", "ia"])
def test_layout_changes_no_training_result(rule):
    nets = [Network([12, 9, 8, 4], get_rule(rule), "relu", seed=1) for _ in range(2)]
    _row_major_copy(nets[1])
    assert nets[0].layers[1].weight.stride() != nets[1].layers[1].weight.stride()
    if rule == "kp":     # paired B keeps W_(l+1)'s layout transposed (one shared contiguous pass)
        assert nets[0].B(0).t().stride() == nets[0].layers[1].weight.stride()
    else:                # every other B column-major: s·Bᵀ is a plain GEMM
        assert nets[0].B(0).t().is_contiguous()
    opts = [make_optimizer(n, n.rule, TrainConfig(lr=0.05)) for n in nets]
    gens = [torch.Generator().manual_seed(7) for _ in nets]
    data = torch.Generator().manual_seed(0)
    for _ in range(4):
        x = torch.rand(6, 12, generator=data)
        t = target_vector(torch.randint(0, 4, (6,), generator=data), 4, "ce")
        for net, opt, gen in zip(nets, opts, gens):
            local_sgd_step(net, opt, x, t, "ce", gen)
    for a, b in zip(nets[0].parameters(), nets[1].parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    moved = [not torch.equal(p, q) for p, q in
             zip(nets[0].parameters(), Network([12, 9, 8, 4], get_rule(rule), "relu", seed=1).parameters())]
    assert all(moved[:6])                     # every W and b trained
