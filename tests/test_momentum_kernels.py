"""The fused SGD moves (sim.momentum_kernels) and the shared product of a learned B whose update
is W_(l+1)'s transposed (Kolen-Pollack): same arithmetic as separate torch ops, found from the
rule's terms (not its name), B stored in W_(l+1)'s layout with its shape and values unchanged."""
import copy
import dataclasses

import pytest
import torch

from neurocredit.rules import get_rule
from neurocredit.rules.factors import Factor as F
from neurocredit.rules.rule import Term
from neurocredit.sim import momentum_kernels as K
from neurocredit.sim.dynamics import get_scheme
from neurocredit.sim.losses import target_vector
from neurocredit.sim.network import Network
from neurocredit.sim.train import TrainConfig, make_optimizer
from neurocredit.sim.updates import (local_sgd_step, local_updates, transposed_pairs,
                                     transposes_forward)


def _mats(dtype, n=4, shape=(7, 5), seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(shape, generator=g, dtype=dtype) for _ in range(n)]


@pytest.fixture
def small_tensors_compiled(monkeypatch):
    """Hand even the tests' small matrices to the compiled kernels."""
    monkeypatch.setattr(K, "MIN_ELEMENTS", 0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("transposed", [False, True])
@pytest.mark.parametrize("compiled", [True, False])
def test_kernels_equal_torch_ops(dtype, transposed, compiled, monkeypatch):
    monkeypatch.setattr(K, "MIN_ELEMENTS", 0 if compiled else 1 << 62)
    t, v, p, _ = _mats(dtype)
    assert (K._flat((t, v, p)) is not None) == compiled
    if transposed:   # column-major operands (B stored in W's layout), strides agreeing
        t, v, p = (x.t().contiguous().t() for x in (t, v, p))
    m, s, c, lr = 0.9, -1.0, 0.01, 0.05
    v1, p1 = v.clone(), p.clone()
    K.product_step(t, v1, p1, m, s, c, lr)
    g = m * v + s * t + c * p
    torch.testing.assert_close(v1, g)
    torch.testing.assert_close(p1, p - lr * g)
    v2, p2 = v.clone(), p.clone()
    K.decay_step(v2, p2, c, lr)
    torch.testing.assert_close(v2, v + c * p)
    torch.testing.assert_close(p2, p - lr * (v + c * p))
    a, b = (v.clone(), p.clone(), m, c, lr), (v.clone() * 2, p.clone() * 3, 0.5, -c, 2 * lr)
    K.pair_step(t, s, a, b)
    for (va, pa, mm, cc, ll), v0, p0 in ((a, v, p), (b, 2 * v, 3 * p)):
        g = mm * v0 + s * t + cc * p0
        torch.testing.assert_close(va, g)
        torch.testing.assert_close(pa, p0 - ll * g)


def test_large_matrices_take_the_compiled_pass_small_ones_torch_ops():
    big = torch.zeros(256, K.MIN_ELEMENTS // 256)
    assert K._flat((big, big.clone())) is not None
    assert K._flat((big[:, :8], big[:, :8].clone())) is None
    assert K._flat((big.t(), big.clone().t())) is not None     # column-major, strides agree


def test_mismatched_layouts_fall_back_to_torch_ops(small_tensors_compiled):
    t, v, p, _ = _mats(torch.float32)
    vt = v.t().contiguous().t()          # strides differ from t and p: no flat view
    assert K._flat((t, vt, p)) is None
    v1, p1 = vt.clone(memory_format=torch.preserve_format), p.clone()
    K.product_step(t, v1, p1, 0.9, -1.0, 0.01, 0.05)
    g = 0.9 * v - t + 0.01 * p
    torch.testing.assert_close(v1, g)
    torch.testing.assert_close(p1, p - 0.05 * g)


def test_transposed_update_is_found_from_the_terms_not_the_name():
    kp = get_rule("kp")
    assert transposes_forward(tuple(kp.forward), tuple(kp.feedback.terms))
    for name in ("wm", "ia"):
        r = get_rule(name)
        assert not transposes_forward(tuple(r.forward), tuple(r.feedback.terms))
    # a user rule with KP's terms under another name and other decays pairs too
    fwd = (Term(-1.0, (F.THIRD, F.PRE)),)
    fb = (Term(-1.0, (F.POST, F.PRE)), Term(-0.3, (F.WEIGHT,)))
    assert transposes_forward(fwd, fb)
    assert not transposes_forward(fwd, (Term(-2.0, (F.PRE, F.POST)),))   # another coefficient
    assert not transposes_forward(fwd, (Term(-1.0, (F.PRE, F.PRE)),))    # another product


def test_kolen_pollack_b_lives_in_the_next_weight_layout_and_pairs():
    net = Network([6, 5, 4, 3], get_rule("kp"), "tanh", seed=2)
    for l in net.feedback_index:
        B, W = net.B(l), net.layers[l + 1].weight
        assert B.shape == W.T.shape and B.t().stride() == W.stride()
    fa = Network([6, 5, 4, 3], get_rule("fa"), "tanh", seed=2)      # fixed B: column-major
    assert fa.B(0).t().is_contiguous() and fa.layers[0].weight.t().is_contiguous()
    # same values as a row-major B drawn from the same generator
    assert torch.equal(net.B(0), Network([6, 5, 4, 3], get_rule("kp"), "tanh", seed=2).B(0))
    # the layout survives the conversions a run goes through
    W = net.layers[1].weight
    assert net.double().B(0).t().stride() == net.double().layers[1].weight.stride() == W.stride()
    assert copy.deepcopy(net).B(0).t().stride() == W.stride()
    x = torch.rand(4, 6, dtype=torch.float64)
    t = target_vector(torch.tensor([0, 1, 2, 0]), 3, "ce").double()
    state = get_scheme(net.rule.dynamics)(net, x, t, "ce")
    assert transposed_pairs(net, state) == {1: 0, 2: 1}
    other = dataclasses.replace(get_rule("kp"), name="my_kp")
    assert transposed_pairs(Network([6, 5, 4, 3], other, seed=0), state) == {1: 0, 2: 1}


@pytest.mark.parametrize("compiled", [True, False])
def test_paired_step_keeps_the_kolen_pollack_difference_law(compiled, monkeypatch):
    """With equal lr and momentum, Bᵀ − W follows v' = m·v + λ·D, D' = D − η·v' whatever the
    data (the product cancels): the shared product enters both matrices identically."""
    monkeypatch.setattr(K, "MIN_ELEMENTS", 0 if compiled else 1 << 62)
    rule = get_rule("kp")
    net = Network([6, 5, 4, 3], rule, "tanh", seed=3).double()
    lr, m, lam = 0.05, 0.9, 1e-2
    opt = make_optimizer(net, rule, TrainConfig(lr=lr, momentum=m))
    assert all(g["lr"] == lr for g in opt.param_groups)
    D = net.B(0).detach().T - net.layers[1].weight.detach()
    v = torch.zeros_like(D)
    for s in range(4):
        x = torch.rand(5, 6, generator=torch.Generator().manual_seed(s), dtype=torch.float64)
        t = target_vector(torch.tensor([0, 1, 2, 0, 1]), 3, "ce").double()
        local_sgd_step(net, opt, x, t, "ce")
        v = m * v + lam * D
        D = D - lr * v
        torch.testing.assert_close(net.B(0).detach().T - net.layers[1].weight.detach(), D)


def _kp_variant():
    """KP's terms under another name, B with its own learning rate and decay."""
    kp = get_rule("kp")
    fb = dataclasses.replace(kp.feedback, lr_scale=0.5,
                             terms=(Term(-1.0, (F.PRE, F.POST)), Term(-0.05, (F.WEIGHT,))))
    return dataclasses.replace(kp, name="kp_variant", feedback=fb)


@pytest.mark.parametrize("name", ["kp", "wm", "ia", "kp_variant"])
@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_compiled_fused_step_equals_updates_then_torch_sgd(name, momentum, small_tensors_compiled):
    rule = _kp_variant() if name == "kp_variant" else get_rule(name)
    net = Network([8, 6, 5, 3], rule, "tanh", seed=1).double()
    ref = copy.deepcopy(net)
    opt = make_optimizer(net, rule, TrainConfig(lr=0.05, momentum=momentum))
    ref_opt = make_optimizer(ref, rule, TrainConfig(lr=0.05, momentum=momentum))
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    t = target_vector(torch.tensor([0, 1, 2, 0, 1, 2, 0]), 3, "ce").double()
    for s in range(3):
        x = torch.rand(7, 8, generator=torch.Generator().manual_seed(s), dtype=torch.float64)
        local_sgd_step(net, opt, x, t, "ce", g1)
        with torch.no_grad():
            grads, _ = local_updates(ref, x, t, "ce", g2, scale=-1.0)
            for layer, gw, gb in zip(ref.layers, grads.weight, grads.bias):
                layer.weight.grad, layer.bias.grad = gw, gb
            for l, gB in grads.feedback.items():
                ref.B(l).grad = gB
            ref_opt.step()
    for (k, a), b in zip(net.named_parameters(), ref.parameters()):
        torch.testing.assert_close(a.detach(), b.detach(), msg=f"{name}: {k}")
    state = get_scheme(rule.dynamics)(net, x, t, "ce")
    assert transposed_pairs(net, state) == ({1: 0, 2: 1} if name.startswith("kp") else {})
    if momentum:   # the buffers a later opt.step() reads are torch SGD's own, laid out like p
        for p, q in zip(net.parameters(), ref.parameters()):
            buf = opt.state[p]["momentum_buffer"]
            assert buf.stride() == p.stride()
            torch.testing.assert_close(buf, ref_opt.state[q]["momentum_buffer"])
