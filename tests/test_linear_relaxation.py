"""The closed form of the linear relaxations (PC with fixed predictions, frozen AR) gives the
Euler loop's states, stops at the step the loop's every-step test stops at, and keeps the
fixed-step mode."""
import math

import pytest
import torch

from neurocredit.data import load_digits
from neurocredit.rules import get_rule
from neurocredit.sim import relaxation
from neurocredit.sim.dynamics import get_scheme
from neurocredit.sim.linear_relaxation import weight_table
from neurocredit.sim.losses import target_vector
from neurocredit.sim.network import Network

NETS = [([64, 256, 10], "relu"), ([64, 48, 32, 10], "tanh"), ([64, 40, 30, 20, 10], "relu")]


@pytest.fixture(scope="module")
def batch():
    d = load_digits(seed=0)
    return d.x_train[:32], target_vector(d.y_train[:32], 10, "ce")


def _settle(rule, sizes, act, x, t):
    net = Network(sizes, rule, act, seed=0)
    with torch.no_grad():
        return get_scheme(rule.dynamics)(net, x, t, "ce")


def test_weight_table_is_the_binomial_law():
    steps, rate, hops = 12, 0.2, 3
    table = weight_table(steps, rate, hops)
    for t, row in enumerate(table):
        pmf = [math.comb(t, k) * rate ** k * (1 - rate) ** (t - k) for k in range(hops)]
        assert row[:hops] == pytest.approx(pmf, abs=1e-12)
        assert row[hops] == pytest.approx(1.0 - sum(pmf), abs=1e-12)


@pytest.mark.parametrize("name", ["pc_fp", "pc_nd", "pc_dense", "ar", "pc_lb", "ar_simplified"])
@pytest.mark.parametrize("sizes,act", NETS)
def test_closed_form_equals_the_euler_loop(batch, monkeypatch, name, sizes, act):
    x, t = batch
    rule = get_rule(name).with_params(tolerance=0.01)
    closed = _settle(rule, sizes, act, x, t)
    # the loop, testing the same tolerance at every step, stops at the same step ...
    monkeypatch.setattr(relaxation, "CHECK_EVERY", 1)
    loop = _settle(rule.with_params(closed_form=False), sizes, act, x, t)
    assert closed.steps == loop.steps
    assert 0 < closed.steps <= int(rule.param("steps"))
    # ... with the same errors (up to float rounding)
    for a, b in zip(closed.errors, loop.errors):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-5 * float(b.abs().max()))


@pytest.mark.parametrize("name", ["pc_fp", "ar"])
def test_fixed_steps_keep_the_cap(batch, name):
    x, t = batch
    rule = get_rule(name).with_params(tolerance=0.0, steps=17)
    closed = _settle(rule, [64, 48, 32, 10], "tanh", x, t)
    loop = _settle(rule.with_params(closed_form=False), [64, 48, 32, 10], "tanh", x, t)
    assert closed.steps == loop.steps == 17
    for a, b in zip(closed.errors, loop.errors):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-5 * float(b.abs().max()))


def test_a_looser_tolerance_stops_earlier(batch):
    x, t = batch
    rule = get_rule("ar")
    tight = _settle(rule.with_params(tolerance=0.001, steps=200), [64, 48, 32, 10], "tanh", x, t)
    loose = _settle(rule.with_params(tolerance=0.1, steps=200), [64, 48, 32, 10], "tanh", x, t)
    assert loose.steps < tight.steps < 200
