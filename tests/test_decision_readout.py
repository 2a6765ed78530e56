"""The class decision read from a spiking output layer: the most output spikes, a tie broken by
the output neurons' voltage at the end of the sample (neurocredit.neurons.decision), on the
emulator (chip.session.readout_figures, emulate(voltage=...)), in the float spiking network
(sim.spiking.evaluate_figures) and in Lava (run_lava(voltage=...))."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from neurocredit.chip import session as S
from neurocredit.chip.emulator import emulate
from neurocredit.chip.ir import INPUT, Circuit, Connection, Population
from neurocredit.neurons import fixed_point as fp
from neurocredit.neurons.decision import decide, decision_figures, tied


def test_a_count_tie_goes_to_the_higher_voltage_not_the_lower_index():
    counts = np.array([[3, 3, 1], [0, 0, 0], [1, 4, 4], [2, 0, 1]])
    v = np.array([[10, 90, 500], [-5, -7, 3], [7, 7, 2], [0, 900, 0]])
    assert decide(counts).tolist() == [0, 0, 1, 0]                  # plain argmax: lowest index
    assert decide(counts, v).tolist() == [1, 2, 1, 0]               # v only among the top count
    assert tied(counts).tolist() == [True, True, True, False]
    f = decision_figures(counts, v, [1, 2, 1, 0])
    assert f == {"test_acc": 1.0, "test_acc_counts": 0.5, "test_tied": 0.75}
    assert decision_figures(counts, None, [0, 0, 1, 0]) == {"test_acc": 1.0}
    with pytest.raises(ValueError, match="must match"):
        decide(counts, v[:, :2])


def _two_outputs(w: list[int]) -> Circuit:
    """One always-on input -> 2 LIF outputs with weights ``w`` (no leak): neuron k spikes every
    ceil(vth/(w_k<<6))-th step, its v after the last step the charge left over."""
    out = Population("out", 2, du=4095, dv=0, vth=100, bias_mant=np.zeros(2, np.int64), bias_exp=np.zeros(2, np.int64))
    conn = Connection("in_out", INPUT, "out", np.array([[w[0]], [w[1]]]), 0, 8, "mixed")
    return Circuit(1, [out], [conn], ("out",), True, {})


def test_emulator_voltage_record_is_the_neurons_v_step_by_step():
    circ = _two_outputs([60, 80])
    x = (np.random.default_rng(0).random((12, 3, 1)) < 0.7).astype(np.int64)
    rec = emulate(circ, x, voltage=["out"])
    u = v = torch.zeros(3, 2, dtype=torch.int64)
    buf = torch.zeros(3, 2, dtype=torch.int64)
    w = fp.stored_weights(torch.tensor([[60], [80]]), "mixed", 8).to(torch.float64)
    for t in range(12):                               # the LIF step of neurons.fixed_point, by hand
        u, v, s = fp.lif_step_fixed(u, v, buf, 4095, 0, 100, torch.zeros(2, dtype=torch.int64))
        assert torch.equal(rec["v:out"][t], v) and torch.equal(rec["out"][t], s)
        buf = fp.dense_fixed(torch.as_tensor(x[t], dtype=torch.float64), w, 0)
    assert int(rec["out"].sum()) > 0 and bool((rec["v:out"][rec["out"]] == 0).all())   # reset where it spiked
    assert set(emulate(circ, x)) == {"out"}                                              # default unchanged
    with pytest.raises(ValueError, match="no population 'hidden'"):
        emulate(circ, x, voltage=["hidden"])


def test_session_accuracy_breaks_a_count_tie_by_voltage():
    """Weights 60 and 62: both neurons spike on the same steps (every 2nd input spike: 2·60·64 and
    2·62·64 > 100·64 but one is not), so the counts always tie; neuron 1 keeps more charge.
    Plain argmax answers class 0, the chip's decision class 1."""
    circ = _two_outputs([60, 62])
    rates = np.full((40, 1), 0.8)
    labels = np.ones(40, np.int64)
    rec = emulate(circ, S.input_spikes(rates, 16, 3), voltage=["out"])
    counts = rec["out"].numpy().sum(axis=0)
    assert (counts[:, 0] == counts[:, 1]).all() and counts.max() > 0
    assert (rec["v:out"].numpy()[-1, :, 1] >= rec["v:out"].numpy()[-1, :, 0]).all()
    f = S.readout_figures(circ, rates, labels, 16, 3)
    assert f["test_tied"] == 1.0 and f["test_acc_counts"] == 0.0
    assert f["test_acc"] == float((rec["v:out"].numpy()[-1, :, 1] > rec["v:out"].numpy()[-1, :, 0]).mean()) > 0
    assert S.accuracy(circ, rates, labels, 16, 3) == f["test_acc"]
    # input on every step: 15 charges reach the outputs in 16 steps, 7 spikes each and one charge left
    assert S.readout_figures(circ, np.ones((5, 1)), np.ones(5, np.int64), 16, 0) == \
        {"test_acc": 1.0, "test_acc_counts": 0.0, "test_tied": 1.0}


def test_float_spiking_lif_readout_uses_the_same_decision():
    """No output spikes at all (output weights 0, biases below threshold): every count ties at 0,
    the class is the neuron whose bias leaves the highest voltage; plain argmax answers 0."""
    from neurocredit.data import load_digits
    from neurocredit.rules import get_rule
    from neurocredit.sim.spiking import SpikingConfig, SpikingNetwork, evaluate, evaluate_figures

    data = load_digits(seed=0, standardise=False)
    net = SpikingNetwork([64, 16, 10], get_rule("dfa"), SpikingConfig(steps=8, readout="lif"), seed=0)
    with torch.no_grad():
        net.layers[-1].weight.zero_()
        net.layers[-1].bias.copy_(torch.linspace(0.0, 0.05, 10).flip(0).roll(3))   # highest at index 3
    x, y = data.x_test[:50], torch.full((50,), 3)
    f = evaluate_figures(net, x, y)
    assert f == {"test_acc": 1.0, "test_acc_counts": 0.0, "test_tied": 1.0}
    assert evaluate(net, x, y) == 1.0
    li = SpikingNetwork([64, 16, 10], get_rule("dfa"), SpikingConfig(steps=8, readout="li"), seed=0)
    assert set(evaluate_figures(li, x, y)) == {"test_acc"}                     # graded readout: no ties


def test_lava_reads_the_same_voltage_as_the_emulator():
    pytest.importorskip("lava.proc.lif.process")
    from neurocredit.lava.run import run_lava

    circ = _two_outputs([60, 62])
    x = S.input_spikes(np.full((3, 1), 0.8), 10, 5)
    lava = run_lava(circ, x, voltage=["out"])
    emu = emulate(circ, x, voltage=["out"])
    assert np.array_equal(lava["out"], emu["out"].numpy())
    assert np.array_equal(lava["v:out"], emu["v:out"].numpy()) and np.abs(lava["v:out"]).max() > 0
