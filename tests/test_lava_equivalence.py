"""Lava runs (Loihi2SimCfg) against the emulator and the torch NIR simulation.

Fixed point: the emulator equals Lava ``select_tag="fixed_pt"`` spike for spike for 200 steps on
a neurocredit-trained digits MLP, an imported snnTorch graph (LIF, CubaLIF, a recurrent LIF) and
a random recurrent graph, and over several samples (state reset between samples).

Floating point: Lava ``select_tag="floating_pt"`` equals the float emulator, and equals
``neurocredit.nir.simulate`` (NIR semantics, forward Euler) once every layer's spikes are shifted
by its depth (each Lava Dense delays by one step), with or without Affine biases and leaks: a
layer's bias and leak start with its first input (:mod:`neurocredit.chip.timing`; the tests with
biases and leaks are in ``test_timing.py``, no tolerance).

Every Lava run is stopped in ``run_lava``'s context manager, also on failure.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from neurocredit.chip import sample_graphs
from neurocredit.chip.compile import compile_graph
from neurocredit.chip.emulator import emulate

pytest.importorskip("lava.proc.lif.process")
from neurocredit.lava.run import run_lava  # noqa: E402

STEPS = 200


def all_pops(circuit):
    return [p.name for p in circuit.populations]


def assert_same(circuit, x, seed=0):
    names = all_pops(circuit)
    lava = run_lava(circuit, x, record=names, seed=seed)
    emu = emulate(circuit, x, record=names)
    total = 0
    for name in names:
        e = emu[name].numpy()
        assert e.shape == lava[name].shape
        if circuit.population(name).spiking:
            mismatch = np.argwhere(e != lava[name])
            assert mismatch.size == 0, f"{name}: first mismatch at (t, sample, neuron) {mismatch[0]}"
            total += int(e.sum())
        else:
            np.testing.assert_allclose(e, lava[name], rtol=0, atol=1e-9 if not circuit.fixed_point else 0)
    return total


@pytest.fixture(scope="module", params=["lif", "li"])
def digits(request):
    graph, info = sample_graphs.digits_mlp(hidden=24, epochs=2, seed=0, steps=20, readout=request.param)
    x = sample_graphs.rate_code(info["data"].x_test[:1], STEPS, seed=1)
    return graph, x


def test_fixed_point_digits_mlp_spike_for_spike(digits):
    """Spiking (LIF) or voltage (LI) readout: hidden spikes and readout equal bit for bit."""
    graph, x = digits
    total = assert_same(compile_graph(graph).fixed_circuit, x)
    assert total > 50                      # the network is active, the comparison is not vacuous


def test_lava_session_stops_the_runtime_on_error():
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg

    from neurocredit.lava.run import build, lava_session
    circuit = compile_graph(sample_graphs.random_graph(seed=1, hidden=(4,))).fixed_circuit
    net = build(circuit, np.ones((circuit.n_in, 5), dtype=np.int64), circuit.outputs)
    with pytest.raises(RuntimeError, match="boom"):
        with lava_session(net) as proc:
            proc.run(condition=RunSteps(num_steps=5), run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
            assert proc.runtime._is_started
            raise RuntimeError("boom")
    assert not net.source.runtime._is_started


def test_fixed_point_snntorch_graph_spike_for_spike():
    graph = sample_graphs.snntorch_graph(seed=0)
    x = sample_graphs.rate_code(np.full((1, 8), 0.6), STEPS, seed=2)
    assert assert_same(compile_graph(graph).fixed_circuit, x) > 50


def test_fixed_point_random_recurrent_graph_spike_for_spike():
    graph = sample_graphs.random_graph(seed=5, recurrent=True)
    x = sample_graphs.rate_code(np.random.default_rng(5).random((1, 10)), STEPS, seed=3, max_rate=0.6)
    assert assert_same(compile_graph(graph).fixed_circuit, x) > 50


def test_fixed_point_several_samples_reset_between_samples():
    graph = sample_graphs.random_graph(seed=6, recurrent=True, hidden=(8,))
    x = sample_graphs.rate_code(np.random.default_rng(6).random((3, 10)), 40, seed=4, max_rate=0.6)
    assert assert_same(compile_graph(graph).fixed_circuit, x) > 20


def test_float_lava_equals_float_emulator_and_torch_simulation():
    simulate = pytest.importorskip("neurocredit.nir.simulate").simulate
    graph = sample_graphs.random_graph(seed=7, recurrent=True, bias=False)
    program = compile_graph(graph, fixed_point=False)
    circuit = program.float_circuit
    x = sample_graphs.rate_code(np.random.default_rng(7).random((1, 10)), STEPS, seed=5, max_rate=0.6)
    names = all_pops(circuit)
    lava = run_lava(circuit, x, record=names)
    emu = emulate(circuit, x, record=names)
    _, ref = simulate(graph, torch.as_tensor(x, dtype=torch.float32), dt=program.dt, record=True)
    for name in names:
        assert np.array_equal(lava[name], emu[name].numpy()), name
        d = program.depth[name]
        torch_spikes = ref[name].numpy()[:-d] != 0
        assert np.array_equal(lava[name][d:], torch_spikes), f"{name}: Lava float != torch (shift {d})"
        assert lava[name].sum() > 20


def test_float_with_bias_exact_feedforward():
    """Affine biases: the float emulator equals torch spike for spike (shifted by depth)."""
    simulate = pytest.importorskip("neurocredit.nir.simulate").simulate
    graph = sample_graphs.random_graph(seed=3, recurrent=False, bias=True)
    program = compile_graph(graph, fixed_point=False)
    x = sample_graphs.rate_code(np.random.default_rng(3).random((4, 10)), STEPS, seed=3, max_rate=0.5)
    names = [p.name for p in program.float_circuit.populations if p.name in program.depth]
    emu = emulate(program.float_circuit, x, record=names)
    _, ref = simulate(graph, torch.as_tensor(x, dtype=torch.float32), dt=program.dt, record=True)
    for name, s in emu.items():
        d = program.depth[name]
        assert np.array_equal(s.numpy()[d:], ref[name].numpy()[:-d] != 0), name


def test_cli_run_lava_equals_emulator(tmp_path):
    import nir

    from neurocredit.cli import main
    path = tmp_path / "g.nir"
    nir.write(str(path), sample_graphs.snntorch_graph(seed=3))
    spikes = {}
    for backend in ("lava", "emulator"):
        code = main(["run", str(path), "--backend", backend, "--steps", "50", "--batch", "2",
                     "--rate", "0.6", "--out", str(tmp_path / f"{backend}.npz")])
        assert code == 0
        spikes[backend] = np.load(tmp_path / f"{backend}.npz")["rlif.lif"]
    assert spikes["lava"].shape == (50, 2, 4) and spikes["lava"].sum() > 5
    np.testing.assert_array_equal(spikes["lava"], spikes["emulator"])
