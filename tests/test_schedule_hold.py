"""OnChipSpec.schedule_hold: the between-run lr schedule stops where the first constant of the
circuit would reach the engine's floor (plasticity.floor_factor, session.schedule_factor), so a
weight decay keeps its ratio to the learning terms; the default schedule is unchanged."""
from __future__ import annotations

import numpy as np
import pytest

from neurocredit.chip import circuits as C
from neurocredit.chip import session as S
from neurocredit.chip.compile import compile_graph
from neurocredit.chip.plasticity import floor_factor, max_decimation, scale_series
from neurocredit.chip.profile import load_profile
from neurocredit.data import load_digits
from neurocredit.rules import resolve_rule

SIZES = [64, 16, 10]


def _circuit(hold: bool, lr: float = 2 ** -3):
    rule = resolve_rule("kp")
    base = compile_graph(S.initial_graph(SIZES, seed=0)).fixed_circuit
    spec = C.default_spec(rule, 1, lr=lr, schedule_hold=hold)
    return C.build_circuit(base, rule, C.random_feedback(rule, SIZES, 0), spec)


def _value(p) -> float:
    return p.mant * 2.0 ** (p.exp - (p.decimation or 0))


def _floor(p) -> float:
    k_lo = int(load_profile("loihi2").get("learning.scaling_exponent_min"))
    return 2.0 ** k_lo / (2 ** max_decimation() if p.decimation is not None else 1)


def test_floor_factor_is_where_the_first_constant_reaches_the_floor():
    circuit = _circuit(False)
    for conn in circuit.plastic:
        series = conn.plastic
        f = floor_factor(series)
        prods = list(series)
        assert 0 < f < 1
        # at f every product's scaled value is still at or above its floor, the tightest one at it
        assert all(abs(_value(p)) * f >= _floor(p) * (1 - 1e-12) for p in series)
        assert any(abs(abs(_value(p)) * f - _floor(p)) < 1e-12 for p in series)
        # well below f scale_series holds that product at the floor: the ratio of the constants changes
        low = list(scale_series(series, f / 4))
        base_ratio = _value(prods[0]) / _value(prods[-1])
        assert abs(_value(low[0]) / _value(low[-1])) < 0.5 * abs(base_ratio)


def test_default_schedule_unchanged_and_hold_clamps_at_the_floor():
    plain, held = _circuit(False), _circuit(True)
    assert "schedule_hold" not in plain.meta and held.meta["schedule_hold"]
    f = max(floor_factor(c.plastic) for c in held.plastic)
    for factor in (1.0, 0.8, f * 1.01, f / 2, 0.01):
        assert S.schedule_factor(plain, factor) == factor
        assert S.schedule_factor(held, factor) == max(factor, f)


@pytest.mark.parametrize("lr_decay, same", [(0.8, True), (0.01, False)])
def test_hold_changes_training_only_below_the_floor(lr_decay, same):
    """Two epochs of 30 samples: at x0.8 the factor never reaches the floor (the same weights as without
    hold); at x0.01 the second epoch's factor is held (different weights)."""
    data = load_digits(seed=0, standardise=False)
    out = {}
    for hold in (False, True):
        trained, _ = S.train(_circuit(hold), data, 2, seed=0, samples=30, lr_decay=lr_decay, log=lambda s: None,
                             progress=False)
        out[hold] = {c.name: np.asarray(c.weights) for c in trained.plastic}
    equal = all(np.array_equal(out[False][k], out[True][k]) for k in out[False])
    assert equal == same
