"""Exact predictive coding's solver with a tolerance: per-unit adaptive rates and kink snapping
(neurocredit.sim.adaptive_rates) reach the energy minimum the Euler loop approaches, in a few
steps."""
import pytest
import torch

import neurocredit.sim.adaptive_rates as adaptive_rates
from neurocredit.data import load_digits
from neurocredit.neurons.rate import ACTIVATIONS
from neurocredit.rules import get_rule
from neurocredit.sim.adaptive_rates import AdaptiveRates, piecewise_linear
from neurocredit.sim.losses import target_vector
from neurocredit.sim.metrics import cosine
from neurocredit.sim.network import Network
from neurocredit.sim.updates import local_updates

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def batch():
    d = load_digits(seed=0)
    return d.x_train[:32], target_vector(d.y_train[:32], 10, "ce")


def _update(rule, x, t, sizes=(64, 256, 10), act="relu"):
    net = Network(list(sizes), rule, act, seed=0)
    upd, state = local_updates(net, x, t, "ce")
    return torch.cat([w.flatten() for w in upd.weight]), state.steps


def test_piecewise_linear_activations_are_recognised():
    assert piecewise_linear(ACTIVATIONS["relu"]) and piecewise_linear(ACTIVATIONS["linear"])
    assert not piecewise_linear(ACTIVATIONS["tanh"]) and not piecewise_linear(ACTIVATIONS["sigmoid"])


def _toy(mu: float, c: float, rate: float, steps: int, solver: bool):
    """E(v) = ½(μ − v)² + c·relu(v), minimum at v = 0 when 0 < μ < c: Euler chatters across it."""
    relu = ACTIVATIONS["relu"]
    v = torch.tensor([[0.3]])
    rates = AdaptiveRates(relu, 1.0, 0.01)
    path = []
    for _ in range(steps):
        a = relu.f(v)
        force = (mu - v) - c * relu.gate(torch.ones_like(v), v, a)
        move = rates.moves([v], [a], [force], [mu - v])[0] if solver else rate * force
        v = v + move
        path.append(float(v))
        if solver and rates.converged():
            break
    return path


def test_a_unit_whose_minimum_is_the_kink_lands_on_it_and_the_stop_fires():
    euler = _toy(0.5, 1.0, 0.2, 40, solver=False)
    assert max(abs(p) for p in euler[-10:]) > 0.01          # Euler chatters across v = 0
    path = _toy(0.5, 1.0, 0.2, 40, solver=True)
    assert len(path) < 10 and path[-1] == 0.0


@pytest.mark.parametrize("act", ["relu", "tanh"])
def test_solver_stops_early_at_the_fixed_point(batch, act):
    x, t = batch
    pc = get_rule("pc")
    # reference: the Euler loop run long (tanh: converges; relu: chatters, so the solver run long)
    ref_rule = (pc.with_params(tolerance=0.0, steps=400) if act == "tanh"
                else pc.with_params(tolerance=1e-9, steps=400))
    ref, _ = _update(ref_rule, x, t, act=act)
    upd, steps = _update(pc, x, t, act=act)
    euler, n_euler = _update(pc.with_params(tolerance=0.0), x, t, act=act)
    assert n_euler == 40 and steps <= 12, steps
    assert cosine(upd, ref) > 0.999
    assert cosine(upd, ref) >= cosine(euler, ref) - 1e-3


def test_deep_net_solver_is_nearer_the_minimum_than_40_euler_steps(batch):
    x, t = batch
    pc = get_rule("pc")
    sizes = (64, 48, 32, 10)
    ref, _ = _update(pc.with_params(tolerance=0.0, steps=600), x, t, sizes, "tanh")
    upd, _ = _update(pc, x, t, sizes, "tanh")
    euler, _ = _update(pc.with_params(tolerance=0.0), x, t, sizes, "tanh")
    assert cosine(upd, ref) > cosine(euler, ref)


def test_compiled_pass_and_torch_ops_agree(batch, monkeypatch):
    x, t = batch
    compiled, n1 = _update(get_rule("pc"), x, t)
    monkeypatch.setattr(adaptive_rates, "_numpy_views", lambda tensors: None)
    ops, n2 = _update(get_rule("pc"), x, t)
    assert n1 == n2
    assert torch.allclose(compiled, ops, rtol=1e-4, atol=1e-6)


def test_euler_solver_and_bad_names(batch):
    x, t = batch
    _, n = _update(get_rule("pc").with_params(solver="euler"), x, t)
    assert n == 40                                            # relu: Euler never meets τ
    with pytest.raises(ValueError, match="solver must be"):
        _update(get_rule("pc").with_params(solver="newton"), x, t)
