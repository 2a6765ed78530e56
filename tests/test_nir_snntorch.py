"""snnTorch interop both ways, recurrent cycles, CubaLIF and nested subgraphs."""
import numpy as np
import pytest
import torch

import nir
from neurocredit.neurons import lif as L
from neurocredit.nir.export import write
from neurocredit.nir.load import load
from neurocredit.nir.simulate import simulate

snn = pytest.importorskip("snntorch")
from snntorch import utils as snn_utils  # noqa: E402
from snntorch.export_nir import export_to_nir  # noqa: E402
from snntorch.import_nir import import_from_nir  # noqa: E402


def _leaky(n, beta, **kw):
    return snn.Leaky(beta=torch.full((n,), beta), threshold=torch.ones(n), init_hidden=True, **kw)


def _two_hidden(reset="zero", delay=False):
    torch.manual_seed(0)
    kw = dict(reset_mechanism=reset, reset_delay=delay)
    net = torch.nn.Sequential(torch.nn.Linear(12, 20), _leaky(20, 0.9, **kw),
                              torch.nn.Linear(20, 16), _leaky(16, 0.8, **kw),
                              torch.nn.Linear(16, 5), _leaky(5, 0.85, output=True, **kw))
    with torch.no_grad():
        for m in net:
            if isinstance(m, torch.nn.Linear):
                m.weight.mul_(2.0)
    return net


def _run_snntorch(module, x):
    snn_utils.reset(module)
    out = []
    with torch.no_grad():
        for t in range(x.shape[0]):
            o = module(x[t])
            out.append(o[0] if isinstance(o, tuple) else o)
    return torch.stack(out)


def _input(T=100, batch=4, n=12, seed=1):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(T, batch, n, generator=g) < 0.5).float() * 1.5


@pytest.mark.parametrize("reset,delay,preset", [("zero", False, "snntorch"),
                                                ("subtract", True, "snntorch-leaky")])
def test_snntorch_export_imports_spike_for_spike(reset, delay, preset, tmp_path):
    net = _two_hidden(reset, delay)
    x = _input()
    ref = _run_snntorch(net, x)
    graph = export_to_nir(net, torch.randn(1, 12), ignore_dims=[0])
    nir.write(tmp_path / "snn.nir", graph)
    model = load(tmp_path / "snn.nir", discretisation=preset)
    assert model.rule is None and model.spec is None
    out = model.simulate(x)
    assert out.shape == ref.shape == (100, 4, 5)
    assert float(ref.mean()) > 0.05
    assert torch.equal(out, ref)


def test_neurocredit_export_imports_into_snntorch_spike_for_spike(tmp_path):
    net = _two_hidden()
    nir.write(tmp_path / "snn.nir", export_to_nir(net, torch.randn(1, 12), ignore_dims=[0]))
    # snnTorch file + a rule attached on import -> neurocredit network -> neurocredit export
    ours = load(tmp_path / "snn.nir", rule="dfa", discretisation="snntorch").to_network()
    write(ours, tmp_path / "ours.nir")
    back = import_from_nir(nir.read(tmp_path / "ours.nir"))
    x = _input(seed=2)
    theirs = _run_snntorch(back, x)
    mine = torch.stack(ours.run(x)["z_out"])
    assert float(mine.mean()) > 0.05
    assert torch.equal(theirs, mine)
    assert torch.equal(mine, _run_snntorch(net, x))   # and both equal the original snnTorch net


def test_recurrent_and_cubalif_layers_match_snntorch(tmp_path):
    """RLeaky (a cycle LIF -> Affine -> LIF) and Synaptic (CubaLIF), exported by snnTorch."""
    torch.manual_seed(3)
    kw = dict(init_hidden=True, reset_mechanism="zero", reset_delay=False)
    net = torch.nn.Sequential(
        torch.nn.Linear(12, 20), snn.RLeaky(beta=0.9, linear_features=20, **kw),
        torch.nn.Linear(20, 16), snn.Synaptic(alpha=torch.full((16,), 0.7), beta=torch.full((16,), 0.8),
                                              threshold=torch.ones(16), **kw),
        torch.nn.Linear(16, 5), _leaky(5, 0.85, output=True, reset_mechanism="zero", reset_delay=False))
    x = _input(seed=4) * 1.3
    ref = _run_snntorch(net, x)
    graph = export_to_nir(net, torch.randn(1, 12), ignore_dims=[0])
    kinds = {type(n).__name__ for n in graph.nodes.values()}
    assert {"CubaLIF", "LIF", "Affine"} <= kinds
    nir.write(tmp_path / "rec.nir", graph)
    model = load(tmp_path / "rec.nir", discretisation="snntorch")
    out, nodes = model.simulate(x, record=True)
    rec_node = next(k for k in nodes if k.endswith("lif") and k != "5")
    assert float(nodes[rec_node].mean()) > 0.02
    assert torch.equal(out, ref)
    # the recurrent weights matter: without the cycle the spikes differ
    flat = [e for e in graph.edges if not e[0].endswith("w_rec")]
    g2 = nir.NIRGraph(nodes={k: v for k, v in graph.nodes.items() if not k.endswith("w_rec")},
                      edges=[e for e in flat if not e[1].endswith("w_rec")], type_check=False)
    assert not torch.equal(simulate(g2, x, discretisation="snntorch"), ref)


def _euler_cubalif_reference(x, W, p, dt, T):
    isyn = torch.zeros(x.shape[1], W.shape[0])
    v = torch.zeros_like(isyn)
    out = []
    for t in range(T):
        s = x[t] @ W.T
        isyn = isyn + dt / p["tau_syn"] * (-isyn + p["w_in"] * s)
        v = v + dt / p["tau_mem"] * (p["v_leak"] - v + p["r"] * isyn)
        z = (v > p["v_threshold"]).float()
        v = torch.where(z > 0, p["v_reset"], v)
        out.append(z)
    return torch.stack(out)


def test_nested_subgraph_with_cubalif_simulates_the_nir_equations():
    """A CubaLIF layer inside a nested NIRGraph, NIR (Euler) semantics, against the ODE by hand."""
    g = torch.Generator().manual_seed(5)
    W = torch.randn(7, 6, generator=g)
    n = 7
    p = {"tau_syn": np.full(n, 2e-3, np.float32), "tau_mem": np.full(n, 5e-3, np.float32),
         "r": np.full(n, 2.0, np.float32), "v_leak": np.full(n, 0.1, np.float32),
         "v_threshold": np.full(n, 0.5, np.float32), "v_reset": np.full(n, -0.1, np.float32),
         "w_in": np.full(n, 3.0, np.float32)}
    inner = nir.NIRGraph(nodes={"in": nir.Input(input_type={"input": np.array([n])}),
                                "cuba": nir.CubaLIF(**p),
                                "out": nir.Output(output_type={"output": np.array([n])})},
                         edges=[("in", "cuba"), ("cuba", "out")])
    outer = nir.NIRGraph(nodes={"input": nir.Input(input_type={"input": np.array([6])}),
                                "w": nir.Linear(weight=W.numpy()), "sub": inner,
                                "output": nir.Output(output_type={"output": np.array([n])})},
                         edges=[("input", "w"), ("w", "sub"), ("sub", "output")])
    x = (torch.rand(100, 3, 6, generator=g) < 0.5).float()
    dt = 1e-4
    out = simulate(outer, x, dt=dt, discretisation="nir")
    ref = _euler_cubalif_reference(x, W, {k: torch.as_tensor(v) for k, v in p.items()}, dt, 100)
    assert float(ref.mean()) > 0.02
    assert torch.equal(out, ref)


def test_graph_without_metadata_gets_a_rule_on_import(tmp_path):
    nir.write(tmp_path / "snn.nir", export_to_nir(_two_hidden(), torch.randn(1, 12), ignore_dims=[0]))
    model = load(tmp_path / "snn.nir", rule="sdfa", seed=4)
    assert model.rule.name == "sdfa"
    Bs = model.feedback_matrices()
    assert set(Bs) == {"1", "3"}                        # snnTorch's neuron node names kept
    assert Bs["1"].shape == (20, 5) and Bs["3"].shape == (16, 5)
    zeros = (Bs["1"] == 0).mean()
    assert 0.7 < zeros < 0.95                           # sparse feedback (90 % zeros of 5 columns)
    x = _input(seed=6)
    plain = load(tmp_path / "snn.nir", discretisation="snntorch").simulate(x)
    assert torch.equal(model.simulate(x, discretisation="snntorch"), plain)  # dynamics untouched


def test_rockpool_files_load_and_simulate(tmp_path):
    """Rockpool's to_nir (CubaLIF nodes, Input/Output shapes with batch dims) loads and runs.

    Rockpool writes r = τ·e^{−dt/τ}/dt and w_in = 1 without dt, so NIR's Euler semantics does not
    reproduce Rockpool's own exponential dynamics; only loading and simulating is claimed."""
    rp = pytest.importorskip("rockpool.nn.modules")
    from rockpool.nn.combinators import Sequential
    from rockpool.nn.modules.torch.nir import to_nir
    torch.manual_seed(0)
    net = Sequential(rp.LinearTorch((6, 8)), rp.LIFTorch(8), rp.LinearTorch((8, 3)), rp.LIFTorch(3))
    nir.write(tmp_path / "rock.nir", to_nir(net))
    model = load(tmp_path / "rock.nir")
    assert sorted(type(n).__name__ for n in model.graph.nodes.values()).count("CubaLIF") == 2
    x = (torch.rand(50, 2, 6) < 0.5).float()
    out = model.simulate(x, dt=1e-3)
    assert out.shape == (50, 2, 3) and set(out.unique().tolist()) <= {0.0, 1.0}
    from neurocredit.nir.errors import NIRLoadError
    with pytest.raises(NIRLoadError, match="needs LIF neurons at '1_LIFTorch', found CubaLIF"):
        load(tmp_path / "rock.nir", rule="dfa")        # the spiking learner trains LIF chains


def test_input_and_output_shapes_with_a_batch_dimension(tmp_path):
    """Shapes written as [1, n] (a batch dimension, as Rockpool and older exporters do) load.
    (snnTorch 1.0.0's own exporter fails without ignore_dims=[0] in nir's type inference.)"""
    net = _two_hidden()
    g = export_to_nir(net, torch.randn(1, 12), ignore_dims=[0])
    nodes = dict(g.nodes)
    nodes["input"] = nir.Input(input_type={"input": np.array([1, 12])})
    nodes["output"] = nir.Output(output_type={"output": np.array([1, 5])})
    nir.write(tmp_path / "b.nir", nir.NIRGraph(nodes=nodes, edges=g.edges, type_check=False))
    x = _input(seed=9)
    assert torch.equal(load(tmp_path / "b.nir", discretisation="snntorch").simulate(x),
                       _run_snntorch(net, x))
