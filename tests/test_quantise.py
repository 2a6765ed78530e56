"""Calibrated quantisation (neurocredit.chip.quantise): the search never does worse than the
default quantisation on its calibration set, fixes a badly scaled layer, and `compile
--calibrate --min-agreement` refuses in one line."""
import subprocess
import sys

import nir
import numpy as np
import pytest

from neurocredit.chip.compile import compile_graph
from neurocredit.chip.quantise import calibrate, count_correlation, poisson_inputs, spike_agreement
from neurocredit.chip import sample_graphs


def test_agreement_definitions():
    a = np.zeros((4, 1, 3), bool)
    b = a.copy()
    assert spike_agreement(a, b) == 1.0
    a[0, 0, 0] = b[0, 0, 0] = True
    a[1, 0, 1] = True            # an extra spike
    b[2, 0, 2] = True            # a spike moved elsewhere
    assert spike_agreement(a, b) == pytest.approx(1 / 3)
    assert count_correlation(a, a) == pytest.approx(1.0)


@pytest.mark.parametrize("seed,recurrent", [(4, True), (5, False)])
def test_search_never_worse_than_default_and_default_is_the_compilers(seed, recurrent):
    g = sample_graphs.random_graph(seed=seed, recurrent=recurrent, bias=True, hidden=(12,))
    program = compile_graph(g, fixed_point=True)
    x = poisson_inputs(program.float_circuit.n_in, 50, 12, seed=seed)
    cal = calibrate(program, x)
    reports = {l.name: l for l in program.layers}
    assert [c.name for c in cal.layers] == ["lif1", "out"]
    for c in cal.layers:
        assert c.candidates > 1
        assert c.error_chosen <= c.error_default
        # the default candidate is the compiler's own quantisation
        assert c.default["lam"] == reports[c.name].vth_mantissa
        assert c.default["exp"] == [e for k, e in reports[c.name].weight_exp.items()
                                    if not k.startswith(("clock", "onset"))]
    # the first layer sees only the input (and the onset populations): with float inputs and end
    # to end it is the same run, so the layer error and end-to-end agreement must match
    first = cal.layers[0]
    if not recurrent:
        assert first.agreement_default == pytest.approx(1 - first.error_default)
        assert first.agreement_chosen == pytest.approx(1 - first.error_chosen)


def test_badly_scaled_layer_is_fixed_by_the_search():
    g = sample_graphs.random_graph(seed=3, recurrent=False, bias=False, hidden=(16,))
    w = g.nodes["fc1"].weight
    w[0, 0] = 40 * np.abs(w).max()      # one outlier: the default exponent zeroes the rest
    program = compile_graph(g, fixed_point=True)
    x = poisson_inputs(program.float_circuit.n_in, 60, 16, seed=1)
    cal = calibrate(program, x)
    c = cal.layers[0]
    assert c.name == "lif1"
    assert c.zeroed_default > 0.25 * c.nonzero
    assert c.zeroed_chosen < c.zeroed_default / 2
    assert c.chosen["exp"][0] < c.default["exp"][0]
    assert c.error_chosen < 0.5 * c.error_default
    assert c.agreement_chosen > c.agreement_default + 0.1
    # the calibrated program carries the chosen layer
    assert program.fixed_circuit.population("lif1").vth == c.default["vth"]
    assert cal.program.fixed_circuit.population("lif1").vth == c.chosen["vth"]


def test_compile_min_agreement_refuses_in_one_line(tmp_path):
    g = sample_graphs.random_graph(seed=4, recurrent=True, bias=True, hidden=(12,))
    path = tmp_path / "g.nir"
    nir.write(str(path), g)
    cmd = [sys.executable, "-m", "neurocredit.cli", "compile", str(path), "--calibrate", "--steps", "40",
           "--samples", "8"]
    ok = subprocess.run(cmd + ["--min-agreement", "0"], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert "layer err" in ok.stdout and "lif1" in ok.stdout
    bad = subprocess.run(cmd + ["--min-agreement", "1.01"], capture_output=True, text=True)
    assert bad.returncode == 2
    err = [l for l in bad.stderr.replace("\r", "\n").splitlines() if "error" in l]
    assert len(err) == 1 and "'lif1'" in err[0] and "agreement" in err[0] and "Traceback" not in bad.stderr


def test_layer_fed_float_inputs_reproduces_the_float_circuit():
    """The search's layer-by-layer circuit (sources replaced by their float spikes, recurrence
    live) run in float equals that layer of the whole float circuit: the search compares like
    with like."""
    from dataclasses import replace

    from neurocredit.chip.emulator import emulate
    from neurocredit.chip.ir import INPUT
    from neurocredit.chip.quantise import _sub_circuit

    program = compile_graph(sample_graphs.random_graph(seed=8, recurrent=True, bias=True, hidden=(12, 10)), fixed_point=True)
    flt = program.float_circuit
    x = poisson_inputs(flt.n_in, 40, 6, seed=2)
    names = [p.name for p in flt.populations]
    ref = {k: v.numpy() for k, v in emulate(flt, x, record=names).items()} | {INPUT: x}
    widths = {p.name: p.n for p in flt.populations} | {INPUT: flt.n_in}
    checked = 0
    for p in flt.populations:
        conns = [c for c in flt.connections if c.dst == p.name]
        srcs = list(dict.fromkeys(c.src for c in conns if c.src != p.name))
        if not srcs or not p.spiking:
            continue
        xs = np.concatenate([ref[s] != 0 for s in srcs], axis=2).astype(np.int64)
        sub = replace(_sub_circuit(p, conns, srcs, widths), fixed_point=False)
        out = emulate(sub, xs, record=[p.name])[p.name].numpy()
        assert np.array_equal(out, ref[p.name]), p.name
        checked += int(ref[p.name].sum() > 0)
    assert checked >= 2
