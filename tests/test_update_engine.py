"""The compiled update engine: plans group terms correctly, and the fused SGD step equals
local_updates + p.grad = −Δ + torch SGD's step."""
import copy

import pytest
import torch

from neurocredit.rules import get_rule
from neurocredit.rules.factors import Factor as F
from neurocredit.rules.rule import Term
from neurocredit.sim.losses import target_vector
from neurocredit.sim.network import Network
from neurocredit.sim.train import TrainConfig, make_optimizer
from neurocredit.sim.updates import (compile_terms, connection_update, local_sgd_step,
                                     local_updates, sgd_fusable, term_update)


def test_plan_groups_terms_by_pre_side_and_collects_decay():
    terms = (Term(1.0, (F.PRE, F.POST)), Term(-0.1, (F.WEIGHT,)), Term(-1.0, (F.POST_INPUT, F.PRE)),
             Term(0.5, (F.THIRD,)), Term(2.0, (F.WEIGHT, F.PRE, F.POST)))
    plan = compile_terms(terms)
    assert [g.pre for g in plan.groups] == [(F.PRE,), ()]
    assert len(plan.groups[0].posts) == 2 and plan.decay == -0.1
    assert plan.general == (terms[4],) and plan.needs_post_input


def test_compiled_connection_update_equals_the_sum_of_its_terms():
    g = torch.Generator().manual_seed(0)
    pre, post, third, post_in = (torch.randn(9, n, generator=g, dtype=torch.float64)
                                 for n in (5, 4, 4, 4))
    w = torch.randn(4, 5, generator=g, dtype=torch.float64)
    terms = (Term(1.0, (F.PRE, F.POST)), Term(-0.1, (F.WEIGHT,)), Term(-1.0, (F.POST_INPUT, F.PRE)),
             Term(0.5, (F.THIRD,)), Term(2.0, (F.WEIGHT, F.PRE, F.POST)), Term(0.3, (F.PRE,)))
    outer = lambda p, q: p.T @ q  # noqa: E731
    expected = sum(term_update(t, outer, pre, post, third, post_in, w, -2.0) for t in terms)
    torch.testing.assert_close(connection_update(terms, outer, pre, post, third, post_in, w, -2.0),
                               expected)


@pytest.mark.parametrize("name", ["fa", "dfa", "drtp", "kp", "wm", "ia", "pc_dense", "pal"])
@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_fused_sgd_step_equals_updates_then_optimiser(name, momentum):
    rule = get_rule(name)
    net = Network([8, 6, 5, 3], rule, "tanh", seed=1).double()
    ref = copy.deepcopy(net)
    opt = make_optimizer(net, rule, TrainConfig(lr=0.05, momentum=momentum))
    ref_opt = make_optimizer(ref, rule, TrainConfig(lr=0.05, momentum=momentum))
    assert sgd_fusable(opt)
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    y = torch.tensor([0, 1, 2, 0, 1, 2, 0])
    t = target_vector(y, 3, "ce").double()
    for s in range(3):
        x = torch.rand(7, 8, generator=torch.Generator().manual_seed(s), dtype=torch.float64)
        torch.manual_seed(100 + s)  # PAL's noise and brSF's magnitudes draw from the global RNG
        local_sgd_step(net, opt, x, t, "ce", g1)
        torch.manual_seed(100 + s)
        with torch.no_grad():
            grads, _ = local_updates(ref, x, t, "ce", g2, scale=-1.0)
            for layer, gw, gb in zip(ref.layers, grads.weight, grads.bias):
                layer.weight.grad, layer.bias.grad = gw, gb
            for l, gB in grads.feedback.items():
                ref.B(l).grad = gB
            ref_opt.step()
    for (k, a), b in zip(net.named_parameters(), ref.parameters()):
        torch.testing.assert_close(a.detach(), b.detach(), msg=f"{name}: {k}")
    assert any(not torch.equal(a, b) for a, b in zip(net.parameters(),
                                                     Network([8, 6, 5, 3], rule, "tanh", seed=1).double().parameters()))


def test_sgd_with_weight_decay_is_not_fused():
    net = Network([4, 3, 2], get_rule("fa"), seed=0)
    assert not sgd_fusable(torch.optim.SGD(net.parameters(), lr=0.1, weight_decay=1e-4))
    assert not sgd_fusable(torch.optim.Adam(net.parameters(), lr=0.1))
