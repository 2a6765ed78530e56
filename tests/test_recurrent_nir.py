"""Recurrent graphs written by snnTorch (RLeaky): rule attached on load, trained with e-prop,
exported with the rule, rebuilt by snnTorch with identical spikes, reloaded with the rule."""
import numpy as np
import pytest
import torch

import nir
from neurocredit.data import spike_patterns
from neurocredit.nir.errors import NIRLoadError
from neurocredit.nir.export import write
from neurocredit.nir.load import load
from neurocredit.rules import LocalityError, assert_local, get_rule
from neurocredit.sim.recurrent_spiking import RecurrentSpikingConfig, RecurrentSpikingNetwork
from neurocredit.sim.recurrent_train import RecurrentTrainConfig, train_recurrent

snn = pytest.importorskip("snntorch")
from snntorch import utils as snn_utils  # noqa: E402
from snntorch.export_nir import export_to_nir  # noqa: E402
from snntorch.import_nir import (_nir_to_snntorch_module,  # noqa: E402
                                 _replace_rnn_subgraph_with_nirgraph)


def _snntorch_rleaky_file(path, n_in=12, n_hidden=20, n_out=5):
    torch.manual_seed(0)
    kw = dict(init_hidden=True, reset_mechanism="zero", reset_delay=False)
    net = torch.nn.Sequential(
        torch.nn.Linear(n_in, n_hidden), snn.RLeaky(beta=0.9, linear_features=n_hidden, **kw),
        torch.nn.Linear(n_hidden, n_out),
        snn.Leaky(beta=torch.full((n_out,), 0.85), threshold=torch.ones(n_out), output=True, **kw))
    with torch.no_grad():
        net[0].weight.mul_(2.0)
    nir.write(path, export_to_nir(net, torch.randn(1, n_in), ignore_dims=[0]))
    return net


def _run_snntorch(module, x):
    snn_utils.reset(module)
    out = []
    with torch.no_grad():
        for t in range(x.shape[0]):
            o = module(x[t])
            out.append(o[0] if isinstance(o, tuple) else o)
    return torch.stack(out)


def _snntorch_rebuild(path):
    """snnTorch's own importer, minus nirtorch: snnTorch 1.0's ``import_from_nir`` hands the
    RLeaky subgraph to nirtorch 2.6, which fails on any recurrent graph ('GraphModule' object has
    no attribute 'items', snnTorch's own files included).  So: snnTorch wraps the cycle
    (``_replace_rnn_subgraph_with_nirgraph``) and builds every module
    (``_nir_to_snntorch_module``: Linear, RLeaky, Leaky); the chain is run in order."""
    g = _replace_rnn_subgraph_with_nirgraph(nir.read(path))
    order, cur = [], "input"
    while True:
        nxt = [d for s, d in g.edges if s == cur]
        if not nxt or nxt[0] == "output":
            break
        cur = nxt[0]
        order.append(cur)
    return torch.nn.Sequential(*[_nir_to_snntorch_module(g.nodes[k], init_hidden=True) for k in order])


def _spikes(seed, T=60, batch=4, n=12):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(T, batch, n, generator=g) < 0.5).float() * 1.5


def test_rleaky_from_snntorch_learns_with_eprop_and_goes_back_to_snntorch(tmp_path):
    ref_net = _snntorch_rleaky_file(tmp_path / "rleaky.nir")
    model = load(tmp_path / "rleaky.nir", rule="eprop", discretisation="snntorch", seed=3)
    assert model.rule.name == "eprop" and model.spec["recurrent"]["hidden"] == ["1.lif"]
    net = model.to_network()
    assert isinstance(net, RecurrentSpikingNetwork) and net.sizes == [12, 20, 5]
    x = _spikes(1)
    before = net.run(x, time_major=True)["z_out"]
    assert float(before.mean()) > 0.02
    assert torch.equal(before, _run_snntorch(ref_net, x))       # the loaded graph is snnTorch's net
    w_rec0 = net.recurrent[0].weight.detach().clone()
    B0 = net.net.B(0).detach().clone()
    data = spike_patterns(n_classes=5, n_in=12, steps=30, n_train=96, n_test=40, seed=0)
    train_recurrent(net.rule, data, [], "rsnn", RecurrentTrainConfig(epochs=1, lr=3e-3,
                                                                    progress=False), net=net)
    assert not torch.equal(net.recurrent[0].weight, w_rec0)      # the recurrent connection learned
    assert torch.equal(net.net.B(0), B0)                          # random e-prop: B fixed
    write(net, tmp_path / "trained.nir")
    # snnTorch rebuilds RLeaky from our file: identical spikes
    theirs = _run_snntorch(_snntorch_rebuild(tmp_path / "trained.nir"), _spikes(2))
    mine = net.run(_spikes(2), time_major=True)["z_out"]
    assert float(mine.mean()) > 0.02 and not torch.equal(mine, _run_snntorch(ref_net, _spikes(2)))
    assert torch.equal(theirs, mine)
    # and we read it back with its rule, weights, feedback matrix and node names
    again = load(tmp_path / "trained.nir")
    assert again.rule.name == "eprop" and again.discretisation.mode == "snntorch"
    net2 = again.to_network()
    assert torch.equal(net2.recurrent[0].weight, net.recurrent[0].weight)
    assert torch.equal(net2.net.B(0), B0)
    assert torch.equal(net2.run(_spikes(2), time_major=True)["z_out"], mine)
    assert torch.equal(again.simulate(_spikes(2)), mine)          # the NIR simulator agrees


def test_symmetric_eprop_on_a_recurrent_graph_is_refused_for_the_chip_naming_w_out(tmp_path):
    _snntorch_rleaky_file(tmp_path / "rleaky.nir")
    model = load(tmp_path / "rleaky.nir", rule="eprop_sym", discretisation="snntorch")
    assert model.spec["feedback"] == []            # B = W_outᵀ: nothing stored
    names = model.spec["recurrent"]["hidden"] + ["3"]
    with pytest.raises(LocalityError, match=r"layer 1\.lif: needs W2ᵀ, the transposed weight of layer 3"):
        assert_local(model.rule, names)
    assert_local(get_rule("eprop"), names)


def test_cubalif_network_round_trips_through_our_nir_files(tmp_path):
    cfg = RecurrentSpikingConfig(neuron="cubalif", readout="lif", threshold=0.5)
    net = RecurrentSpikingNetwork([6, 9, 3], get_rule("eprop"), cfg, seed=1)
    write(net, tmp_path / "cuba.nir")
    graph = nir.read(tmp_path / "cuba.nir")
    assert type(graph.nodes["rec1.lif"]).__name__ == "CubaLIF" and "rec1.w_rec" in graph.nodes
    back = load(tmp_path / "cuba.nir").to_network()
    x = _spikes(3, n=6) * 2
    a, b = back.run(x, time_major=True), net.run(x, time_major=True)
    assert float(a["z"][0].mean()) > 0.02 and torch.equal(a["z_out"], b["z_out"])


def test_recurrent_metadata_that_does_not_fit_is_refused(tmp_path):
    import json
    net = RecurrentSpikingNetwork([6, 9, 3], get_rule("eprop"), seed=1)
    write(net, tmp_path / "r.nir")
    graph = nir.read(tmp_path / "r.nir")
    spec = json.loads(graph.metadata["neurocredit"])
    spec["recurrent"]["recurrent"] = ["nope"]
    graph.metadata["neurocredit"] = json.dumps(spec)
    nir.write(tmp_path / "bad.nir", graph)
    with pytest.raises(NIRLoadError, match="field 'recurrent'"):
        load(tmp_path / "bad.nir")
    graph.nodes["rec1.lif"].metadata = {"neurocredit_B": np.ones((9, 3), np.float32) * np.nan}
    spec["recurrent"]["recurrent"] = ["rec1.w_rec"]
    graph.metadata["neurocredit"] = json.dumps(spec)
    nir.write(tmp_path / "bad2.nir", graph)
    with pytest.raises(NIRLoadError, match="finite"):
        load(tmp_path / "bad2.nir")
