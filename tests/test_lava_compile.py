"""The NIR -> Lava compiler without starting a Lava runtime: structure, conversions, fixed-point
ranges, quantisation error, resource counts, and every refusal (naming the layer and the limit)."""
from __future__ import annotations

import nir
import numpy as np
import pytest

from neurocredit.chip import sample_graphs
from neurocredit.lava.acceptance import target_report
from neurocredit.chip.compile import CompileError, compile_graph
from neurocredit.chip.profile import load_profile
from neurocredit.chip.ir import INPUT


def mlp(n_in=6, h=5, o=3, w1=None, kind="LIF", seed=0, **lif):
    rng = np.random.default_rng(seed)
    w1 = rng.normal(0, 0.5, (h, n_in)) if w1 is None else w1
    h = w1.shape[0]
    params = dict(tau=np.full(h, 1e-3), r=np.full(h, 10.0), v_leak=np.zeros(h), v_threshold=np.ones(h))
    params.update(lif)
    hidden = nir.LIF(**params)
    return nir.NIRGraph.from_list(
        nir.Input(input_type=np.array([w1.shape[1]])), nir.Affine(weight=w1, bias=np.zeros(h)), hidden,
        nir.Affine(weight=rng.normal(0, 0.5, (o, h)), bias=np.zeros(o)),
        nir.LIF(tau=np.full(o, 2e-3), r=np.full(o, 20.0), v_leak=np.zeros(o), v_threshold=np.ones(o)),
        nir.Output(output_type=np.array([o])))


# -- structure and conversions ----------------------------------------------------------
def test_snntorch_graph_compiles_with_recurrence_and_cubalif():
    g = sample_graphs.snntorch_graph(seed=1)
    p = compile_graph(g)
    kinds = {l.name: l.kind for l in p.layers}
    assert kinds == {"lif1": "LIF", "lif2": "CubaLIF", "rlif.lif": "LIF", "clock": "onset", "onset": "onset"}
    assert p.float_circuit.population("clock").n == 3       # biases start at depths 1..3
    conns = {(c.src, c.dst) for c in p.fixed_circuit.connections}
    assert ("rlif.lif", "rlif.lif") in conns          # the cycle through the weight node w_rec
    assert (INPUT, "lif1") in conns and ("lif2", "rlif.lif") in conns
    pops = {q.name: q for q in p.float_circuit.populations}
    # snnTorch: tau = dt/(1-beta), tau_syn = dt/(1-alpha)  ->  dv = 1-beta, du = 1-alpha
    assert pops["lif1"].dv == pytest.approx(0.1, rel=1e-5) and pops["lif1"].du == 1.0
    assert pops["lif2"].du == pytest.approx(0.3, rel=1e-5)
    assert pops["lif2"].dv == pytest.approx(0.15, rel=1e-5)
    assert p.depth == {"lif1": 1, "lif2": 2, "rlif.lif": 3}


def test_gains_thresholds_and_bias_are_folded():
    rng = np.random.default_rng(3)
    w = rng.normal(0, 1, (4, 3))
    b = rng.normal(0, 0.1, 4)
    vth = np.array([0.5, 1.0, 2.0, 1.5])
    g = nir.NIRGraph.from_list(
        nir.Input(input_type=np.array([3])), nir.Affine(weight=w, bias=b),
        nir.LIF(tau=np.full(4, 2e-3), r=np.full(4, 3.0), v_leak=np.full(4, 0.2), v_threshold=vth),
        nir.Output(output_type=np.array([4])))
    p = compile_graph(g, dt=1e-4, exact_timing=False)
    pop, conn = p.float_circuit.populations[0], p.float_circuit.connections[0]
    c = vth.max() / vth
    gain = 1e-4 * 3.0 / 2e-3
    np.testing.assert_allclose(conn.weights, (gain * c)[:, None] * w)
    np.testing.assert_allclose(pop.bias_mant, c * (1e-4 / 2e-3 * 0.2 + gain * b))
    # exact timing: the same drive arrives from the clock (LIF: du = 1, no onset pulse)
    exact = compile_graph(g, dt=1e-4).float_circuit
    np.testing.assert_allclose(exact.connection("clock->lif").weights[:, 0], pop.bias_mant)
    assert not np.any(exact.population("lif").bias_mant)
    assert pop.vth == vth.max() and pop.dv == pytest.approx(0.05)
    np.testing.assert_allclose(pop.v_scale, 1 / c)


def test_fixed_point_parameters_fit_the_profile_and_error_is_small():
    prof = load_profile("loihi2")
    for g in (sample_graphs.random_graph(seed=2), sample_graphs.snntorch_graph(seed=2)):
        p = compile_graph(g)
        for pop in p.fixed_circuit.populations:
            if pop.name in ("clock", "onset"):
                continue
            assert 0 <= pop.du <= 4095 and 0 <= pop.dv <= 4095
            assert 64 <= pop.vth <= prof.vth_max
            assert np.all(np.abs(pop.bias_mant) <= 4096) and np.all((pop.bias_exp >= 0) & (pop.bias_exp <= 7))
        for c in p.fixed_circuit.connections:
            w = np.asarray(c.weights)
            assert w.min() >= -256 and w.max() <= 255
            assert -8 <= c.weight_exp <= 7
            if c.sign_mode == "mixed":
                assert np.all(w % 2 == 0)          # Lava drops the lowest bit of mixed weights
        for l in (l for l in p.layers if l.kind != "onset"):
            assert l.weight_rel_rms_error is not None and l.weight_rel_rms_error < 0.03
            assert l.bias_max_error < 1e-3


def test_dt_changes_decays():
    g = mlp()
    a, b = compile_graph(g, dt=1e-4), compile_graph(g, dt=2e-4)
    assert b.float_circuit.populations[0].dv == pytest.approx(2 * a.float_circuit.populations[0].dv)
    assert b.fixed_circuit.populations[0].dv != a.fixed_circuit.populations[0].dv


def test_resource_report_counts(capsys):
    g = sample_graphs.random_graph(seed=0, n_in=10, hidden=(16,), n_out=4, recurrent=True)
    p = compile_graph(g)
    # + the onset populations (2 x depth 2, one shared core) and lif1's bias drive from the clock
    assert p.totals == {"neurons": 20 + 4, "synapses": 16 * (10 + 16) + 4 * 16 + 2 * 4 + 16, "cores": 3}
    from neurocredit.lava.report import format_report
    text = format_report(p, True)
    assert "lif1" in text and "total: 24 neurons" in text and "3 of 128 cores" in text and "onset" in text


# -- refusals -------------------------------------------------------------------------------
def refusal(g, **kw) -> str:
    with pytest.raises(CompileError) as exc:
        compile_graph(g, **kw)
    return str(exc.value)


def test_refuses_unsupported_node_by_name():
    g = nir.NIRGraph.from_list(
        nir.Input(input_type=np.array([2])), nir.Delay(delay=np.ones(2)),
        nir.LIF(tau=np.full(2, 1e-3), r=np.full(2, 10.0), v_leak=np.zeros(2), v_threshold=np.ones(2)),
        nir.Output(output_type=np.array([2])))
    msg = refusal(g)
    assert "'delay'" in msg and "Delay" in msg and "supports" in msg and "Conv2d" in msg


def test_refuses_output_not_fed_by_a_neuron():
    g = nir.NIRGraph.from_list(nir.Input(input_type=np.array([3])),
                               nir.Affine(weight=np.ones((2, 3)), bias=np.zeros(2)),
                               nir.Output(output_type=np.array([2])))
    msg = refusal(g)
    assert "'output'" in msg and "affine" in msg


def test_refuses_over_capacity_naming_layer_and_limit():
    small = load_profile("loihi2", {"chip.cores_per_chip": 2, "chip.neurons_per_core": 8})
    g = mlp(n_in=6, h=20, o=3)      # 20 hidden neurons need 3 cores of 8
    msg = refusal(g, profile=small)
    assert "'lif'" in msg and "needs 4 cores" in msg and "more than the 2" in msg
    assert "8 neurons/core" in msg


def test_refuses_fan_in_beyond_one_core_synaptic_memory():
    n_in = 131073                    # x 8 bits > 1,048,576 bits of one Loihi 2 core
    g = mlp(w1=np.full((1, n_in), 1e-6))
    msg = refusal(g)
    assert "'lif'" in msg and "fan-in 131073" in msg and "1048576 bits" in msg


def test_refuses_too_many_fan_in_bits_for_the_accumulator():
    g = mlp(w1=np.full((2, 4000), 5.0))   # worst case: 4000 spikes x 0.5 threshold per step
    msg = refusal(g, fixed_point=True)
    assert "'lif'" in msg and "dendritic accumulator" in msg and "16 bits" in msg
    compile_graph(g, fixed_point=False)    # the float target holds it


def test_refuses_non_finite_weights():
    w = np.ones((3, 4))
    w[1, 2] = np.nan
    msg = refusal(mlp(w1=w))
    assert "'lif'" in msg and "not finite" in msg and "8-bit" in msg


def test_refuses_weights_that_round_to_zero():
    w = np.full((3, 50), 1e-5)
    w[0, 0] = 10.0                      # one huge weight sets the exponent, the rest vanish
    msg = refusal(mlp(w1=w))
    assert "'lif'" in msg and "round to 0" in msg and "limit 50 %" in msg


def test_refuses_per_neuron_tau_and_nonzero_reset():
    msg = refusal(mlp(tau=np.array([1e-3, 2e-3, 1e-3, 1e-3, 1e-3])))
    assert "'lif'" in msg and "one dt/tau per layer" in msg
    msg = refusal(mlp(v_reset=np.full(5, 0.3)))
    assert "'lif'" in msg and "v_reset" in msg and "resets v to 0" in msg


def test_target_report_lists_every_node():
    rows = dict((n, (ok, why)) for n, ok, why in target_report(sample_graphs.snntorch_graph()))
    assert rows["lif1"][0] and "Lava LIF" in rows["lif1"][1]
    assert rows["rlif.w_rec"][0] and "Dense" in rows["rlif.w_rec"][1]
    assert rows["input"][0] and rows["output"][0]
    w = np.ones((3, 4))
    w[0, 0] = np.inf
    rows = {n: (ok, why) for n, ok, why in target_report(mlp(w1=w))}
    assert rows["lif"][0] is False and "not finite" in rows["lif"][1]
    assert rows["lif_1"][0] is True


class _Out:
    def __init__(self, returncode, stdout, stderr):
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


def cli(*args):
    """The CLI in-process (a subprocess costs seconds of imports on the shared machine)."""
    import contextlib
    import io

    from neurocredit.cli import main
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(args))
        except SystemExit as exc:          # argparse refuses a bad option value at parse time
            code = exc.code
    return _Out(code, out.getvalue(), err.getvalue())


def test_cli_compile_prints_report_and_refusal(tmp_path):
    ok, bad = tmp_path / "ok.nir", tmp_path / "bad.nir"
    nir.write(str(ok), sample_graphs.random_graph(seed=4))
    nir.write(str(bad), mlp(w1=np.full((2, 4000), 5.0)))
    out = cli("compile", str(ok), "--target", "loihi2", "--fixed-point")
    assert out.returncode == 0, out.stderr
    assert "lif1" in out.stdout and "w err %" in out.stdout and "of 128 cores" in out.stdout
    out = cli("compile", str(bad), "--fixed-point")
    assert out.returncode == 3
    assert "refused" in out.stdout and "'lif'" in out.stdout and "accumulator" in out.stdout
    out = cli("compile", str(tmp_path / "missing.nir"))
    assert out.returncode == 2 and "no such NIR file" in out.stderr


def test_refuses_a_graph_trained_with_subtract_reset():
    from neurocredit.nir.schema import META_KEY
    import json
    graph, _ = sample_graphs.digits_mlp(hidden=8, epochs=1, steps=5)
    compile_graph(graph)                                   # zero reset: accepted
    spec = json.loads(graph.metadata[META_KEY])
    spec["discretisation"] = {"mode": "snntorch", "reset": "subtract", "reset_delay": True}
    graph.metadata[META_KEY] = json.dumps(spec)
    msg = refusal(graph)
    assert "'lif1'" in msg and "subtract" in msg and "resets v to 0" in msg


def test_cli_run_emulator_and_torch(tmp_path):
    path = tmp_path / "g.nir"
    nir.write(str(path), sample_graphs.random_graph(seed=2, bias=False))
    outs = {}
    for backend in ("emulator", "torch"):
        out = cli("run", str(path), "--backend", backend, "--steps", "60", "--rate", "0.5",
                  "--float", "--out", str(tmp_path / f"{backend}.npz"))
        assert out.returncode == 0, out.stderr
        assert f"{backend} (float)" in out.stdout and "output out:" in out.stdout
        outs[backend] = np.load(tmp_path / f"{backend}.npz")["out"]
    # same spikes, the emulator (Lava timing) two steps later: out is two Dense hops deep
    assert outs["emulator"].sum() > 10
    np.testing.assert_array_equal(outs["emulator"][2:], outs["torch"][:-2])
    out = cli("run", str(path), "--backend", "emulator", "--rate", "2")
    assert out.returncode == 2 and "--rate" in out.stderr


def test_nested_subgraph_with_recurrence_is_inlined(tmp_path):
    rng = np.random.default_rng(0)
    h = 4
    sub = nir.NIRGraph(nodes={
        "input": nir.Input(input_type=np.array([h])),
        "lif": nir.LIF(tau=np.full(h, 1e-3), r=np.full(h, 10.0), v_leak=np.zeros(h), v_threshold=np.ones(h)),
        "w_rec": nir.Linear(weight=rng.normal(0, 0.3, (h, h))),
        "output": nir.Output(output_type=np.array([h]))},
        edges=[("input", "lif"), ("lif", "w_rec"), ("w_rec", "lif"), ("lif", "output")])
    g = nir.NIRGraph(nodes={"input": nir.Input(input_type=np.array([3])),
                            "fc": nir.Affine(weight=rng.normal(0, 1, (h, 3)), bias=np.zeros(h)),
                            "rnn": sub, "output": nir.Output(output_type=np.array([h]))},
                     edges=[("input", "fc"), ("fc", "rnn"), ("rnn", "output")])
    nir.write(str(tmp_path / "n.nir"), g)
    for graph in (g, nir.read(str(tmp_path / "n.nir"))):
        p = compile_graph(graph)
        assert p.outputs == {"output": "rnn.lif"}
        conns = {(c.src, c.dst) for c in p.fixed_circuit.connections}
        assert conns == {(INPUT, "rnn.lif"), ("rnn.lif", "rnn.lif")}
