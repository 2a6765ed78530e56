"""Convolution and pooling on the chip (:mod:`neurocredit.chip.conv`): a CNN built with the nir
package (two Conv2d, SumPool2d, AvgPool2d, Flatten, Affine) compiles; fixed point, the emulator
equals Lava bit for bit for 100 steps; float, the emulator equals the torch NIR simulation spike
for spike (shifted by depth); the resource report counts a convolution's synapses where its
kernel reaches and the weights they share."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from neurocredit.chip.compile import compile_graph
from neurocredit.chip.emulator import emulate
from neurocredit.chip import sample_graphs
from neurocredit.nir.simulate import simulate

LAYERS = ["lif1", "lif2", "lif3"]


@pytest.fixture(scope="module")
def cnn():
    graph = sample_graphs.cnn_graph(seed=0)
    x = sample_graphs.rate_code(np.random.default_rng(1).random((2, 64)), 100, seed=1, max_rate=0.5)
    return graph, compile_graph(graph), x


def test_cnn_float_emulator_equals_torch(cnn):
    graph, program, x = cnn
    emu = emulate(program.float_circuit, x, record=LAYERS)
    _, ref = simulate(graph, torch.as_tensor(x.reshape(100, 2, 1, 8, 8), dtype=torch.float32),
                      dt=program.dt, record=True)
    for n in LAYERS:
        d = program.depth[n]
        got = emu[n].numpy()[d:]
        want = ref[n].numpy()[:-d].reshape(got.shape) != 0
        assert np.array_equal(got, want), n
        assert want.sum() > 100


def test_cnn_fixed_point_emulator_equals_lava_100_steps(cnn):
    pytest.importorskip("lava.proc.lif.process")
    from neurocredit.lava.run import run_lava
    _, program, x = cnn
    circuit = program.fixed_circuit
    names = [p.name for p in circuit.populations]
    lava = run_lava(circuit, x, record=names)
    emu = emulate(circuit, x, record=names)
    for n in names:
        assert np.array_equal(lava[n], emu[n].numpy()), n
    assert all(emu[n].sum() > 20 for n in LAYERS)


def test_cnn_resources_count_conv_synapses_and_shared_weights(cnn):
    _, program, _ = cnn
    rep = {l.name: l for l in program.layers}
    # conv1 (pad 1): 3x3 windows clipped at the border, 4 channels, + the bias drive from the clock
    window = sum(min(i + 1, 7) - max(i - 1, 0) + 1 for i in range(8)) ** 2     # 22^2 = 484
    assert rep["lif1"].synapses == 4 * window + 4 * 64
    assert rep["lif1"].shared_weights == 4 * 9 and rep["lif1"].fan_in == 10
    # pool1 then conv2: each output reads up to 3x3 pooled windows of 2x2 in 4 channels
    assert rep["lif2"].fan_in == 4 * 36 and rep["lif2"].shared_weights == 8 * 4 * 9 + 1
    # AvgPool2d folded into the Affine: each output reads all 128 neurons, with the fc's 320 weights
    assert rep["lif3"].synapses == 10 * 128 and rep["lif3"].shared_weights == 320 + 1
    from neurocredit.lava.report import format_report
    assert "share 36 distinct weights" in format_report(program, True)


def test_conv_nodes_are_accepted_by_inspect_target_report(cnn):
    from neurocredit.lava.acceptance import target_report
    graph, _, _ = cnn
    rows = {n: ok for n, ok, _ in target_report(graph)}
    assert all(rows[n] for n in ("conv1", "pool1", "conv2", "pool2", "flat", "fc"))
