"""OnChipSpec.target_gain g_y: the error units compute e = g z − g_y y* (g the error gain).  Default
(None) leaves the circuit as it was; set, the target connection carries −g_y, the label's error is
+(g − g_y) on a step its neuron spikes and −g_y on one it does not, and the emulator equals Lava weight
for weight."""
from __future__ import annotations

import numpy as np
import pytest

from neurocredit.chip import circuits as C
from neurocredit.chip import sample_graphs
from neurocredit.chip.compile import compile_graph
from neurocredit.chip.emulator import emulate_learning
from neurocredit.chip.ir import INPUT, TARGET
from neurocredit.rules import get_rule

STEPS = 60


def _circuit(spec: C.OnChipSpec):
    rng = np.random.default_rng(1)
    g = sample_graphs.random_graph(seed=1, n_in=10, hidden=(12,), n_out=4, recurrent=False, bias=False)
    b = [rng.normal(0, 1 / np.sqrt(12), (12, 4))]
    return C.build_circuit(compile_graph(g).fixed_circuit, get_rule("dfa"), b, spec)


def _stream(seed: int = 7, label: int = 1):
    rng = np.random.default_rng(seed)
    x = (rng.random((STEPS, 10)) < 0.5).astype(np.int64)
    tgt = np.zeros((STEPS, 4), np.int64)
    tgt[:, label] = 1
    return {INPUT: x, TARGET: tgt}


def test_default_target_gain_is_the_error_gain():
    a, b = _circuit(C.OnChipSpec()), _circuit(C.OnChipSpec(target_gain=16))
    for c, d in zip(a.connections, b.connections):
        assert c.name == d.name and np.array_equal(np.asarray(c.weights), np.asarray(d.weights))
    t = a.connection("target->error")
    assert np.array_equal(np.asarray(t.weights), -16 * np.eye(4, dtype=np.int64))


def test_target_gain_sets_the_label_error():
    circ = _circuit(C.OnChipSpec(target_gain=6))
    assert np.array_equal(np.asarray(circ.connection("target->error").weights), -6 * np.eye(4, dtype=np.int64))
    inputs = _stream()
    _, rec = emulate_learning(circ, inputs, rng_seed=3, record=["error", circ.outputs[0]])
    err, z = rec["error"], rec[circ.outputs[0]]
    y = inputs[TARGET]
    # the graded error unit one step after its inputs: e[t] = 16 z[t-1] − 6 y*[t-1]
    np.testing.assert_array_equal(err[1:], 16 * z[:-1] - 6 * y[:-1])
    assert set(np.unique(err[1:, 1])) <= {10, -6} and (err[1:, 1] == 10).any() and (err[1:, 1] == -6).any()


def test_target_gain_emulator_equals_lava_weight_for_weight():
    pytest.importorskip("lava.proc.dense.process")
    from neurocredit.lava.backend import run_learning
    circ = _circuit(C.OnChipSpec(target_gain=8))
    inputs = _stream()
    w_emu, _ = emulate_learning(circ, inputs, rng_seed=11)
    w_lava, _ = run_learning(circ, inputs, rng_seed=11)
    changed = 0
    for c in circ.plastic:
        np.testing.assert_array_equal(w_emu[c.name], w_lava[c.name], err_msg=c.name)
        changed += int((w_emu[c.name] != np.asarray(c.weights)).sum())
    assert changed > 20
