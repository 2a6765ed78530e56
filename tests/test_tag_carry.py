"""OnChipSpec.tag_carry (neurocredit.chip.carry): hidden forward connections learn through the
synapse's tag, dt = 2^s (the rule's products) − 2^-k u0 t, dw = 2^-(k+s) u0 t.  Off (the default)
the compiled circuit is unchanged; on, Lava accepts the rule and the emulator equals Lava weight
for weight (tag included, through the weights it moves)."""
from __future__ import annotations

import numpy as np
import pytest

from neurocredit.chip import circuits as C
from neurocredit.chip.carry import attach_carry, carry_series, carry_shift
from neurocredit.chip.emulator import emulate_learning
from neurocredit.chip.errors import OnChipError
from neurocredit.chip.ir import INPUT, TARGET, Product, ProductSeries
from neurocredit.chip.plasticity import compile_terms
from neurocredit.chip import sample_graphs
from neurocredit.chip.compile import compile_graph
from neurocredit.rules import get_rule

STEPS = 80


def _circuit(k: int = 0, hidden=(12,), rule_name="dfa", lr=2 ** -2):
    rng = np.random.default_rng(4)
    g = sample_graphs.random_graph(seed=4, n_in=10, hidden=hidden, n_out=4, recurrent=False, bias=False)
    base = compile_graph(g).fixed_circuit
    b = [rng.normal(0, 1 / np.sqrt(h), (h, 4)) for h in hidden]
    return C.build_circuit(base, get_rule(rule_name), b, C.OnChipSpec(lr=lr, tag_carry=k))


def _stream(seed: int, label: int = 1):
    rng = np.random.default_rng(seed)
    x = (rng.random((STEPS, 10)) < 0.5).astype(np.int64)
    tgt = np.zeros((STEPS, 4), np.int64)
    tgt[:, label] = 1
    return {INPUT: x, TARGET: tgt}


def _key(c):
    return (c.name, c.plastic.dw, c.tag.dw if c.tag else "", tuple(c.pre_trace), np.asarray(c.weights).tobytes())


def test_carry_off_leaves_the_circuit_unchanged():
    base = _circuit(0)
    again = C.build_circuit(*_parts())
    assert [_key(c) for c in base.connections] == [_key(c) for c in again.connections]
    assert "tag_carry" not in base.meta and not any(c.tag for c in base.connections)
    assert attach_carry(base, 0) is base


def _parts():
    rng = np.random.default_rng(4)
    g = sample_graphs.random_graph(seed=4, n_in=10, hidden=(12,), n_out=4, recurrent=False, bias=False)
    b = [rng.normal(0, 1 / np.sqrt(12), (12, 4))]
    return compile_graph(g).fixed_circuit, get_rule("dfa"), b, C.OnChipSpec(lr=2 ** -2)


def test_carry_series_scales_the_rule_into_the_tag():
    series = compile_terms(get_rule("dfa").forward, 2 ** -4, "forward")
    s = carry_shift(2)
    assert s == 4                                     # 2^-(k+s) = 2^-6, one octave above 2^-7
    dw, dt = carry_series(series, 2)
    assert [(p.mant, p.exp, p.dependency, p.factors) for p in dw] == [(1, -6, "u0", ("t",))]
    assert [(p.mant, p.exp, p.dependency, p.factors) for p in dt] == \
        [(p.mant, p.exp + 4, "x0", p.factors) for p in series] + [(-1, -2, "u0", ("t",))]
    with pytest.raises(OnChipError, match="shift k"):
        carry_shift(7)
    with pytest.raises(OnChipError, match="u3"):
        carry_series(ProductSeries((Product(-1, -7, "u3", ("w",)),)), 2)


def test_carry_applies_to_hidden_connections_only_and_lava_accepts_it():
    from lava.magma.core.learning.learning_rule import Loihi3FLearningRule
    circ = _circuit(2, hidden=(12, 8), rule_name="dfa")
    outputs = set(circ.outputs)
    for c in circ.plastic:
        assert bool(c.tag) == (c.dst not in outputs)
        if c.tag:
            Loihi3FLearningRule(dw=c.plastic.dw, dt=c.tag.dw, x1_impulse=c.pre_trace[0], x1_tau=c.pre_trace[1],
                                t_epoch=1, rng_seed=0)
    with pytest.raises(OnChipError, match="without a tag"):
        attach_carry(circ, 2)                           # every hidden connection carries already


@pytest.mark.parametrize("k", [2, 4])
def test_emulator_equals_lava_with_the_carry(k):
    pytest.importorskip("lava.proc.dense.process")
    from neurocredit.lava.backend import run_learning
    circ = _circuit(k)
    inputs = _stream(7)
    w_emu, _ = emulate_learning(circ, inputs, rng_seed=5)
    w_lava, _ = run_learning(circ, inputs, rng_seed=5)
    moved = 0
    for c in circ.plastic:
        np.testing.assert_array_equal(w_emu[c.name], w_lava[c.name], err_msg=c.name)
        if c.tag:
            moved += int((w_emu[c.name] != np.asarray(c.weights)).sum())
    assert moved > 5                                  # the carried hidden weights did learn


def test_fast_carry_step_equals_the_engine_reference():
    """The emulator's compiled carry step (chip.carry.carry_step) equals apply_series on whole
    matrices (emulate_chips columns=False), for two chips with their own seeds."""
    from neurocredit.chip.emulator import emulate_chips
    circ = _circuit(3, hidden=(12, 8))
    ins = [_stream(7), _stream(8, label=2)]
    fast, _ = emulate_chips([circ, circ], ins, [5, 6])
    ref, _ = emulate_chips([circ, circ], ins, [5, 6], columns=False)
    for a, b in zip(fast, ref):
        for c in circ.plastic:
            np.testing.assert_array_equal(a[c.name], b[c.name], err_msg=c.name)
    assert any((fast[0][c.name] != np.asarray(c.weights)).sum() > 5 for c in circ.plastic if c.tag)
