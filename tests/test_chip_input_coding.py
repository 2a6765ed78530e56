"""The chip's input codings (neurocredit.chip.coding): deterministic 'regular' spikes, the same in the
streaming session and in the float twin's trainer, and emulator == Lava on a regular-coded stream."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from neurocredit.chip import session as S
from neurocredit.chip.coding import coded_spikes, regular_spikes, slot_position
from neurocredit.chip.emulator import emulate_learning
from neurocredit.chip.ir import INPUT, TARGET


def test_regular_spikes_are_round_n_p_evenly_spaced():
    p = np.array([0.0, 0.24, 0.26, 0.5, 0.74, 1.0])
    x = regular_spikes(np.broadcast_to(p, (1, 8, 6)), rows=2)       # two slots of 4 steps
    counts = x[0].reshape(2, 4, 6).sum(1)
    assert counts.tolist() == [[0, 1, 1, 2, 3, 4]] * 2
    assert x[0, :4, 3].tolist() == [1, 0, 1, 0]                     # p ½: every other step
    assert slot_position(10, 3).tolist() == [0, 1, 2, 3, 0, 1, 2, 0, 1, 2]
    with pytest.raises(ValueError, match="coding"):
        coded_spikes(np.zeros((1, 2, 2)), 1, "poisson", np.random.default_rng(0))


def test_session_stream_and_float_twin_code_alike():
    from neurocredit.sim.recurrent_train import regular_coded
    x = np.random.default_rng(0).random((3, 8, 5))
    st = S.sample_stream(x, np.arange(3), 4, 32, 4, seed=0, delay=2, coding="regular")
    chip = st[INPUT].reshape(3, 36, 5)
    assert np.array_equal(chip, regular_coded(torch.tensor(x), 4, 4).numpy())
    # the test spikes too, and the rate coding (the default) is untouched: Bernoulli draws, not regular
    assert np.array_equal(S.input_spikes(x, 32, 1, "regular").transpose(1, 0, 2), chip[:, :32])
    rate = S.sample_stream(x, np.arange(3), 4, 32, 4, seed=0, delay=2)[INPUT].reshape(3, 36, 5)
    assert not np.array_equal(rate, chip) and set(np.unique(rate)) <= {0, 1}
    assert np.array_equal(st[TARGET], S.sample_stream(x, np.arange(3), 4, 32, 4, seed=0, delay=2)[TARGET])


def test_emulator_equals_lava_on_a_regular_coded_sequence():
    pytest.importorskip("lava.proc.dense.process")
    from neurocredit.lava.backend import run_learning
    from neurocredit.chip import circuits as C
    from neurocredit.chip import sample_graphs
    from neurocredit.chip.compile import compile_graph
    from neurocredit.rules import get_rule
    rule = get_rule("eprop")
    g = sample_graphs.random_graph(seed=3, n_in=10, hidden=(12,), n_out=4, recurrent=True, bias=False)
    spec = C.default_spec(rule, 1, third_shift=2)
    circ = C.build_circuit(compile_graph(g, exact_timing=False).fixed_circuit, rule,
                           C.random_feedback(rule, [10, 12, 4], 3), spec)
    x = np.random.default_rng(4).random((2, 8, 10))
    stream = S.sample_stream(x, np.array([1, 2]), 4, 32, 4, seed=0, delay=2, coding="regular")
    same, steps, got = S.check_backends(circ, stream, {"emulator": emulate_learning, "lava": run_learning}, seed=7)
    assert steps >= 50
    for c in circ.plastic:
        np.testing.assert_array_equal(got["emulator"][c.name], got["lava"][c.name], err_msg=c.name)
    assert same and any((got["lava"][c.name] != circ.weights()[c.name]).any() for c in circ.plastic)
