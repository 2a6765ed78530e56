"""The adaptive stop of the relaxation schemes: fewer steps, the same update within float
noise; tolerance 0 is the fixed-step mode; chip rules keep their fixed schedule."""
import pytest
import torch

from neurocredit.data import load_digits
from neurocredit.rules import get_rule
from neurocredit.sim.losses import target_vector
from neurocredit.sim.metrics import cosine
from neurocredit.sim.network import Network
from neurocredit.sim.relaxation import STEP_LOG, relaxation_tolerance
from neurocredit.sim.updates import local_updates


@pytest.fixture(scope="module")
def batch():
    d = load_digits(seed=0)
    return d.x_train[:32], target_vector(d.y_train[:32], 10, "ce")


def _update(rule, x, t):
    # dynamic inversion is stable on the digits net it trains (64-256-10 relu), not on every net
    sizes, act = ([64, 256, 10], "relu") if rule.dynamics == "dynamic_inversion" else ([64, 48, 32, 10], "tanh")
    net = Network(sizes, rule, act, seed=0)
    upd, state = local_updates(net, x, t, "ce")
    return torch.cat([w.flatten() for w in upd.weight]), state.steps


@pytest.mark.parametrize("name,tol", [("pc_fp", 0.01), ("pc_nd", 0.01), ("ar", 0.03), ("di", 0.01)])
def test_adaptive_stop_runs_fewer_steps_and_gives_the_same_update(batch, name, tol):
    x, t = batch
    rule = get_rule(name)
    cap = int(rule.param("steps"))
    fixed, n_fixed = _update(rule.with_params(tolerance=0.0), x, t)
    adaptive, n_adaptive = _update(rule.with_params(tolerance=tol), x, t)
    assert n_fixed == cap
    assert n_adaptive < cap, n_adaptive
    assert cosine(adaptive, fixed) > 0.999
    loose, n_loose = _update(rule.with_params(tolerance=0.3), x, t)
    assert n_loose < n_adaptive                      # a looser tolerance stops earlier


def test_steps_are_logged_and_the_cap_holds(batch):
    x, t = batch
    STEP_LOG.clear()
    _, n = _update(get_rule("ar").with_params(tolerance=1e-9, steps=7), x, t)
    assert n == 7 and STEP_LOG["ar"] == [7]


def test_chip_rules_and_step_dependent_traces_default_to_fixed_steps():
    assert relaxation_tolerance(Network([4, 3, 2], get_rule("pc_onchip"))) == 0.0
    assert relaxation_tolerance(Network([4, 3, 2], get_rule("ar_nf"))) == 0.0 or get_rule("ar_nf").hardware
    assert relaxation_tolerance(Network([4, 3, 2], get_rule("pc_fp"))) > 0.0


def test_negative_tolerance_is_refused(batch):
    x, t = batch
    with pytest.raises(ValueError, match="tolerance must be >= 0"):
        _update(get_rule("pc_fp").with_params(tolerance=-1.0), x, t)
