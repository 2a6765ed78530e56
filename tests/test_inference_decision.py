"""The NIR inference paths (``neurocredit run --data``, ``neurocredit.evaluate``) decide the class
as on-chip learning does: the most output spikes, a count tie broken by the output voltage at the
end of the sample (neurocredit.neurons.decision), on the emulator and Lava alike."""
from __future__ import annotations

import numpy as np

import neurocredit as nc
from neurocredit.chip.compile import compile_graph
from neurocredit.chip.emulator import emulate
from neurocredit.chip.sample_graphs import random_graph
from neurocredit.commands.pipeline import accuracy_line, predict, predict_outputs
from neurocredit.neurons.decision import decide, tied


def test_accuracy_line_breaks_ties_by_voltage():
    counts = np.array([[2, 2, 0], [1, 3, 3], [0, 0, 4]])
    v = np.array([[5, 40, 0], [9, 1, 7], [0, 0, 0]])
    acc_plain, _ = accuracy_line(counts, [1, 2, 2])
    acc, line = accuracy_line(counts, [1, 2, 2], v_end=v)
    assert acc_plain == 1 / 3 and acc == 1.0
    assert "predicted classes (first 3): 1 2 2" in line


def _graph_and_rates(n: int = 40):
    graph = random_graph(seed=3, n_in=10, hidden=(16,), n_out=4, recurrent=False, weight_scale=0.6)
    rates = np.random.default_rng(1).random((n, 10))
    return graph, rates


def test_emulator_predict_returns_the_end_of_sample_voltage_and_it_decides_ties():
    graph, rates = _graph_and_rates()
    counts, v_end = predict_outputs(graph, rates, steps=8, backend="emulator", seed=4)
    assert np.array_equal(counts, predict(graph, rates, steps=8, backend="emulator", seed=4))
    # the same spikes through the compiled circuit: v_end is the output's v after the last step
    circuit = compile_graph(graph, "loihi2", fixed_point=True).circuit(True)
    x = (np.random.default_rng(4).random((8, *rates.shape)) < rates[None]).astype(np.int64)
    rec = emulate(circuit, x, voltage=[circuit.outputs[0]])
    assert np.array_equal(v_end, rec[f"v:{circuit.outputs[0]}"].numpy()[-1])
    assert tied(counts).any(), "the case must contain count ties for the test to mean anything"
    y = decide(counts, v_end)
    assert nc.evaluate(graph, rates, y, steps=8, seed=4) == 1.0
    assert (decide(counts) != y).any()          # plain argmax would answer otherwise somewhere


def test_torch_backend_has_no_voltage():
    graph, rates = _graph_and_rates(8)
    counts, v_end = predict_outputs(graph, rates, steps=4, backend="torch")
    assert v_end is None and counts.shape == (8, 4)


def test_lava_predict_gives_the_emulators_counts_and_voltages():
    graph, rates = _graph_and_rates(6)
    emu = predict_outputs(graph, rates, steps=8, backend="emulator", seed=2)
    lava = predict_outputs(graph, rates, steps=8, backend="lava", seed=2)
    assert np.array_equal(emu[0], lava[0]) and np.array_equal(emu[1], lava[1])
    assert emu[0].sum() > 0
