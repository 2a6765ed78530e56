"""export -> nir.write -> read -> simulate: spike for spike, for every local rule's network."""
import json
import os

import numpy as np
import pytest
import torch

import nir
from neurocredit.nir import schema
from neurocredit.nir.errors import NIRExportError
from neurocredit.nir.export import export, write
from neurocredit.nir.load import load
from neurocredit.nir.simulate import simulate
from neurocredit.rules import RULES
from neurocredit.sim.network import pathway_source
from neurocredit.sim.spiking import SpikingConfig, SpikingNetwork

ALL = list(RULES)


def test_every_local_rule_is_covered():
    assert {"fa", "dfa", "sdfa", "drtp", "kp", "wm", "ia"} <= set(ALL)


def _spikes(net, T=100, batch=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(T, batch, net.sizes[0], generator=g) < 0.4).float()


@pytest.mark.parametrize("name", ALL)
def test_round_trip_is_spike_for_spike(name, tmp_path):
    net = SpikingNetwork([40, 30, 20, 10], RULES[name], SpikingConfig(weight_gain=3.0), seed=7)
    s = _spikes(net)
    rec = net.run(s)
    path = write(net, tmp_path / f"{name}.nir")
    model = load(path)
    out, nodes = model.simulate(s, record=True)
    assert out.shape == (100, 6, 10)
    assert torch.equal(out, torch.stack(rec["v_out"]))                 # LI readout, every step
    for l, node in enumerate(["lif1", "lif2"]):
        z = torch.stack(rec["z"][l + 1])
        assert torch.equal(nodes[node], z)
        assert 0.01 < float(z.mean()) < 0.9                            # not trivially silent
    # the rule and its feedback pathways came back
    assert model.rule == RULES[name]
    assert model.spec["version"] == schema.SCHEMA_VERSION
    stored = model.feedback_matrices()
    for l, target in enumerate(["lif1", "lif2"]):
        B = net.net.B(l)
        if B is None:      # transpose / sign pathways are computed from W, nothing to store
            assert target not in stored
        else:
            assert np.array_equal(stored[target], B.detach().numpy())
    fb = {f["target"]: f for f in model.spec["feedback"]}
    if "lif1" in fb:
        src = pathway_source(RULES[name].feedback, 0, 3)
        assert fb["lif1"]["source"] == src
        assert fb["lif1"]["source_node"] == {"next": "lif2", "output": "readout",
                                             "target": "output"}[src]
    # and a network rebuilt from the file behaves identically and keeps training
    net2 = model.to_network()
    assert torch.equal(net2.readout(net2.run(s)), net.readout(rec))


def test_exported_graph_is_plain_nir_with_the_rule_as_json():
    net = SpikingNetwork([8, 6, 3], RULES["dfa"], seed=0)
    g = export(net)
    assert [type(g.nodes[k]).__name__ for k in ("input", "fc1", "lif1", "fc2", "readout", "output")] == \
        ["Input", "Affine", "LIF", "Affine", "LI", "Output"]
    spec = json.loads(g.metadata["neurocredit"])
    assert spec["schema"] == "neurocredit.learning" and spec["version"] == 1
    assert spec["rule"]["forward"] == [{"coef": -1.0, "factors": ["third", "pre"]}]
    assert spec["layers"][0] == {"weight": "fc1", "pre": "input", "post": "lif1",
                                 "trace_decay": pytest.approx(0.9, abs=1e-6)}
    assert g.nodes["lif1"].metadata["neurocredit_B"].shape == (6, 3)
    # simulate() takes dt and the discretisation from the metadata
    s = _spikes(net, T=30, batch=2)
    assert torch.equal(simulate(g, s), torch.stack(net.run(s)["v_out"]))


def test_loaded_model_keeps_training(tmp_path):
    from neurocredit.sim.losses import target_vector
    net = SpikingNetwork([16, 12, 4], RULES["kp"], SpikingConfig(weight_gain=3.0), seed=3)
    model = load(write(net, tmp_path / "kp.nir"))
    net2 = model.to_network()
    s = _spikes(net2, T=20, batch=8)
    y = torch.arange(8) % 4
    with torch.no_grad():
        upd, _ = net2.local_updates(s, target_vector(y, 4, "ce"), "ce")
    assert float(upd.weight[0].abs().sum()) > 0
    assert 0 in upd.feedback and float(upd.feedback[0].abs().sum()) > 0   # learned B (Kolen-Pollack)


def test_failed_write_leaves_no_file_and_keeps_the_old_one(tmp_path):
    net = SpikingNetwork([8, 6, 3], RULES["dfa"], seed=0)
    target = tmp_path / "model.nir"
    write(net, target)
    before = target.read_bytes()
    with torch.no_grad():
        net.layers[0].weight[0, 0] = float("nan")
    with pytest.raises(NIRExportError, match="fc1.*weight"):
        write(net, target)
    assert target.read_bytes() == before
    fresh = tmp_path / "fresh.nir"
    with pytest.raises(NIRExportError):
        write(net, fresh)
    assert sorted(os.listdir(tmp_path)) == ["model.nir"]


def test_crash_inside_nir_write_leaves_no_partial_file(tmp_path, monkeypatch):
    net = SpikingNetwork([8, 6, 3], RULES["fa"], seed=0)

    def half_write(filename, graph, **kw):
        with open(filename, "wb") as f:
            f.write(b"\x89HDF\r\n\x1a\n partial")
        raise OSError("disk full")

    monkeypatch.setattr(nir, "write", half_write)
    with pytest.raises(OSError, match="disk full"):
        write(net, tmp_path / "x.nir")
    assert os.listdir(tmp_path) == []
