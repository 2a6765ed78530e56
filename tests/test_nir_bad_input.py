"""Bad input: each case is one NIRLoadError whose message names the culprit; nothing else."""
import json

import numpy as np
import pytest
import torch

import nir
from neurocredit.nir.errors import NIRLoadError
from neurocredit.nir.export import export, write
from neurocredit.nir.load import load
from neurocredit.rules import RULES
from neurocredit.sim.spiking import SpikingNetwork
from test_nir_helpers import chain_tree, write_tree


@pytest.fixture
def good(tmp_path):
    net = SpikingNetwork([8, 6, 5, 3], RULES["fa"], seed=0)
    return write(net, tmp_path / "good.nir"), net


def test_valid_raw_tree_loads(tmp_path):
    write_tree(tmp_path / "ok.nir", chain_tree())
    out = load(tmp_path / "ok.nir").simulate(torch.ones(5, 2, 4))
    assert out.shape == (5, 2, 2)


def test_truncated_file(good, tmp_path):
    path, _ = good
    data = path.read_bytes()
    cut = tmp_path / "cut.nir"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(NIRLoadError, match=r"cut\.nir.*not a readable HDF5"):
        load(cut)


def test_non_hdf5_file(tmp_path):
    p = tmp_path / "notes.nir"
    p.write_text("this is not a NIR file\n")
    with pytest.raises(NIRLoadError, match=r"notes\.nir.*not a readable HDF5"):
        load(p)


def test_missing_file(tmp_path):
    with pytest.raises(NIRLoadError, match=r"nope\.nir' does not exist"):
        load(tmp_path / "nope.nir")


def test_unknown_node_type(tmp_path):
    tree = chain_tree()
    tree["nodes"]["lif1"]["type"] = "Banana"
    write_tree(tmp_path / "x.nir", tree)
    with pytest.raises(NIRLoadError, match=r"node 'lif1': unknown node type 'Banana'"):
        load(tmp_path / "x.nir")


def test_missing_node_field(tmp_path):
    tree = chain_tree()
    del tree["nodes"]["lif1"]["tau"]
    write_tree(tmp_path / "x.nir", tree)
    with pytest.raises(NIRLoadError, match=r"node 'lif1' \(LIF\): field 'tau' is missing"):
        load(tmp_path / "x.nir")


def test_malformed_node_field(tmp_path):
    tree = chain_tree()
    tree["nodes"]["lif1"]["v_threshold"] = np.ones(5, np.float32)   # 5 values for 3 neurons
    write_tree(tmp_path / "x.nir", tree)
    with pytest.raises(NIRLoadError, match=r"node 'lif1' \(LIF\)"):
        load(tmp_path / "x.nir")
    tree = chain_tree()
    tree["nodes"]["readout"]["tau"] = -np.ones(2, np.float32)
    write_tree(tmp_path / "y.nir", tree)
    with pytest.raises(NIRLoadError, match=r"node 'readout' \(LI\): field 'tau' must be > 0"):
        load(tmp_path / "y.nir")


def test_mismatched_edge_shapes(tmp_path):
    tree = chain_tree(n_hidden=3)
    tree["nodes"]["fc2"]["weight"] = np.ones((2, 7), np.float32)    # expects 7 inputs, gets 3
    write_tree(tmp_path / "x.nir", tree)
    with pytest.raises(NIRLoadError, match=r"edge 'lif1' -> 'fc2': 'lif1' outputs shape \[3\] "
                                           r"but 'fc2' \(Affine\) expects \[7\]"):
        load(tmp_path / "x.nir")


def test_edge_to_a_missing_node(tmp_path):
    tree = chain_tree()
    tree["edges"] = np.concatenate([tree["edges"], np.array([[b"lif1", b"ghost"]])])
    write_tree(tmp_path / "x.nir", tree)
    with pytest.raises(NIRLoadError, match=r"edge endpoint 'ghost' names no node"):
        load(tmp_path / "x.nir")


def _with_spec(path, net, tmp_path, edit):
    g = export(net)
    spec = json.loads(g.metadata["neurocredit"])
    edit(spec, g)
    g.metadata = {"neurocredit": json.dumps(spec) if isinstance(spec, dict) else spec}
    out = tmp_path / "edited.nir"
    nir.write(out, g)
    return out


def test_missing_rule_schema_field(good, tmp_path):
    path, net = good
    p = _with_spec(path, net, tmp_path, lambda s, g: s.pop("rule"))
    with pytest.raises(NIRLoadError, match=r"learning metadata 'neurocredit': field 'rule' is missing"):
        load(p)


@pytest.mark.parametrize("edit,field", [
    (lambda s, g: s.update(version=7), "version"),
    (lambda s, g: s.update(version="one"), "version"),
    (lambda s, g: s["rule"]["forward"][0].update(factors=["third", "gradient"]), r"rule\.forward\[0\]\.factors"),
    (lambda s, g: s["rule"]["feedback"].update(kind="telepathy"), r"rule\.feedback\.kind"),
    (lambda s, g: s["feedback"][0].update(shape=[6]), r"feedback\[0\]\.shape"),
    (lambda s, g: s.update(discretisation={"mode": "rk45"}), "discretisation"),
])
def test_malformed_rule_schema(good, tmp_path, edit, field):
    path, net = good
    p = _with_spec(path, net, tmp_path, edit)
    with pytest.raises(NIRLoadError, match=rf"field '{field}"):
        load(p)


def test_rule_schema_that_is_not_json(good, tmp_path):
    path, net = good
    g = export(net)
    g.metadata = {"neurocredit": "{not json"}
    nir.write(tmp_path / "x.nir", g)
    with pytest.raises(NIRLoadError, match=r"'neurocredit'.*not valid JSON"):
        load(tmp_path / "x.nir")


def test_feedback_matrix_of_the_wrong_shape(good, tmp_path):
    path, net = good
    g = export(net)
    g.nodes["lif1"].metadata = {"neurocredit_B": np.ones((6, 4), np.float32)}
    nir.write(tmp_path / "x.nir", g)
    with pytest.raises(NIRLoadError, match=r"node 'lif1': metadata field 'neurocredit_B' has shape "
                                           r"\[6, 4\]; feedback into 'lif1' from 'lif2' needs \[6, 5\]"):
        load(tmp_path / "x.nir")


def test_feedback_matrix_missing(good, tmp_path):
    path, net = good
    g = export(net)
    g.nodes["lif2"].metadata = {}
    nir.write(tmp_path / "x.nir", g)
    with pytest.raises(NIRLoadError, match=r"node 'lif2': metadata field 'neurocredit_B'.*missing"):
        load(tmp_path / "x.nir")


def test_rule_that_does_not_fit_a_recurrent_graph(tmp_path):
    n = 4
    f = lambda v: np.full(n, v, np.float32)  # noqa: E731
    g = nir.NIRGraph(nodes={"input": nir.Input(input_type={"input": np.array([3])}),
                            "w_in": nir.Linear(weight=np.ones((n, 3), np.float32)),
                            "lif": nir.LIF(tau=f(1e-3), r=f(10), v_leak=f(0), v_threshold=f(1)),
                            "w_rec": nir.Linear(weight=np.eye(n, dtype=np.float32)),
                            "output": nir.Output(output_type={"output": np.array([n])})},
                     edges=[("input", "w_in"), ("w_in", "lif"), ("lif", "w_rec"), ("w_rec", "lif"),
                            ("lif", "output")])
    nir.write(tmp_path / "rec.nir", g)
    load(tmp_path / "rec.nir")                                  # fine without a rule
    with pytest.raises(NIRLoadError, match=r"rule 'dfa'.*node 'lif' has 2 inbound edges"):
        load(tmp_path / "rec.nir", rule="dfa")


def test_rule_that_does_not_fit_a_graph_without_layers(tmp_path):
    n = 4
    f = lambda v: np.full(n, v, np.float32)  # noqa: E731
    g = nir.NIRGraph(nodes={"input": nir.Input(input_type={"input": np.array([n])}),
                            "lif": nir.LIF(tau=f(1e-3), r=f(10), v_leak=f(0), v_threshold=f(1)),
                            "output": nir.Output(output_type={"output": np.array([n])})},
                     edges=[("input", "lif"), ("lif", "output")])
    nir.write(tmp_path / "bare.nir", g)
    with pytest.raises(NIRLoadError, match=r"rule 'fa' needs alternating Affine/Linear and neuron "
                                           r"nodes.*lif \(LIF\)"):
        load(tmp_path / "bare.nir", rule="fa")


def test_unknown_rule_name(good):
    path, _ = good
    with pytest.raises(NIRLoadError, match=r"unknown rule 'hebbian-magic'; known rules: bp, fa"):
        load(path, rule="hebbian-magic")


CRASHING_SEED = 4041191490   # test_nir_fuzz's 'flip' case that segfaults HDF5 when read in-process


def test_corrupt_file_that_crashes_hdf5_is_a_load_error(tmp_path):
    from test_nir_fuzz import _make_file
    p = tmp_path / "corrupt.nir"
    _make_file(p, CRASHING_SEED, "flip")
    with pytest.raises(NIRLoadError, match=r"corrupt\.nir"):
        load(p)


HANGING_SEED = 586535808     # a 'flip' case on which the HDF5 library never returns


def test_corrupt_file_that_hangs_hdf5_is_a_load_error(tmp_path, monkeypatch):
    import neurocredit.nir.load as loader
    from test_nir_fuzz import _make_file
    monkeypatch.setattr(loader, "READ_TIMEOUT_S", 2.0)
    p = tmp_path / "hang.nir"
    _make_file(p, HANGING_SEED, "flip")
    with pytest.raises(NIRLoadError, match=r"hang\.nir': reading it did not finish in 2 s"):
        load(p)


@pytest.mark.slow
def test_the_same_file_crashes_an_in_process_read(tmp_path):
    """Documents the upstream bug the isolated reader guards against (h5py/HDF5 segfault)."""
    import subprocess
    import sys
    from test_nir_fuzz import _make_file
    p = tmp_path / "corrupt.nir"
    _make_file(p, CRASHING_SEED, "flip")
    code = ("import sys; from neurocredit.nir.load import read_graph\n"
            f"read_graph({str(p)!r}, isolate=False)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=120)
    print(f"in-process read exit status: {r.returncode}")
    assert r.returncode < 0 or r.returncode == 1   # killed by a signal (SIGSEGV) or NIRLoadError
