"""Peer files: every command reads what their producers write, and the producer's time-step
convention is recovered from the file (:mod:`neurocredit.nir.conventions`)."""
from __future__ import annotations

import nir
import numpy as np
import pytest
import torch

from neurocredit.cli import main
from neurocredit.chip import sample_graphs
from neurocredit.nir.conventions import detect


def _rockpool(tmp_path):
    rp = pytest.importorskip("rockpool.nn.modules")
    from rockpool.nn.combinators import Sequential
    from rockpool.nn.modules.torch.nir import to_nir
    torch.manual_seed(0)
    net = Sequential(rp.LinearTorch((6, 8)), rp.LIFTorch(8, dt=1e-3), rp.LinearTorch((8, 3)),
                     rp.LIFTorch(3, dt=1e-3))
    path = tmp_path / "rock.nir"
    nir.write(path, to_nir(net))
    return path


def _sinabs_if(n_in=5, h=6, o=3, seed=0):
    """An IF network written the way Sinabs writes IAF layers: r = 1, dt = 1 per step."""
    rng = np.random.default_rng(seed)
    return nir.NIRGraph.from_list(
        nir.Input(input_type=np.array([n_in])),
        nir.Affine(weight=rng.uniform(0.2, 1.0, (h, n_in)), bias=np.zeros(h)),
        nir.IF(r=np.ones(h), v_threshold=np.ones(h)),
        nir.Affine(weight=rng.uniform(0.2, 1.0, (o, h)), bias=np.zeros(o)),
        nir.IF(r=np.ones(o), v_threshold=np.ones(o)),
        nir.Output(output_type=np.array([o])))


def test_conventions_recovered_from_the_file(tmp_path):
    assert detect(sample_graphs.snntorch_graph(seed=0)).producer == "snntorch"
    assert detect(sample_graphs.snntorch_graph(seed=0)).dt == pytest.approx(1e-4)
    assert detect(sample_graphs.random_graph(seed=1)).dt == pytest.approx(1e-4)
    s = detect(_sinabs_if())
    assert (s.producer, s.dt) == ("sinabs", 1.0)
    from neurocredit.nir.load import read_graph
    rock = detect(read_graph(_rockpool(tmp_path)))
    assert rock.producer == "rockpool" and rock.dt == pytest.approx(1e-3, rel=1e-3)
    # a graph whose neurons disagree keeps the default and says so
    g = sample_graphs.random_graph(seed=1, hidden=(4,))
    g.nodes["lif1"].r[:] = g.nodes["lif1"].r * np.linspace(1, 3, 4)
    assert detect(g).producer == "unknown" and detect(g).dt == 1e-4


def test_rockpool_graph_compiles_and_runs_in_every_command(tmp_path, capsys):
    path = _rockpool(tmp_path)
    for argv in (["inspect", str(path)], ["compile", str(path)],
                 ["run", str(path), "--backend", "torch", "--steps", "20"],
                 ["run", str(path), "--backend", "emulator", "--steps", "20"]):
        assert main(argv) in (0, 3), argv
        out = capsys.readouterr()
        assert "cannot read" not in out.err and "not a readable" not in out.err
    assert main(["compile", str(path)]) == 0
    assert "Rockpool" in capsys.readouterr().out


def test_sinabs_if_graph_spikes_at_its_own_dt_and_warns_when_silent(tmp_path, capsys):
    path = tmp_path / "sinabs.nir"
    nir.write(path, _sinabs_if())
    assert main(["run", str(path), "--backend", "torch", "--steps", "30", "--rate", "0.5"]) == 0
    out = capsys.readouterr().out
    assert "dt = 1 s" in out and "warning" not in out
    assert int(out.split("output if_1: ")[1].split(" spikes")[0]) > 0
    # forced to snnTorch's 1e-4 the IF layers integrate 1e-4 per input spike: silent, and it says so
    assert main(["run", str(path), "--backend", "torch", "--steps", "30", "--dt", "1e-4"]) == 0
    assert "warning: the graph produced no output spike" in capsys.readouterr().out
    assert main(["compile", str(path), "--dt", "1e-4"]) == 0
    assert "warning: the graph produced no output spike" in capsys.readouterr().out
    assert main(["run", str(path), "--backend", "emulator", "--steps", "30", "--rate", "0.5"]) == 0
    assert "warning" not in capsys.readouterr().out


def test_run_torch_needs_no_chip_compile(tmp_path, capsys):
    """A graph Lava cannot hold (an Output fed by an Affine) still runs in torch."""
    rng = np.random.default_rng(0)
    g = nir.NIRGraph.from_list(nir.Input(input_type=np.array([4])),
                               nir.Affine(weight=rng.normal(size=(3, 4)), bias=np.zeros(3)),
                               nir.LIF(tau=np.full(3, 1e-3), r=np.full(3, 10.0), v_leak=np.zeros(3),
                                       v_threshold=np.ones(3)),
                               nir.Affine(weight=rng.normal(size=(2, 3)), bias=np.zeros(2)),
                               nir.Output(output_type=np.array([2])))
    path = tmp_path / "g.nir"
    nir.write(path, g)
    assert main(["compile", str(path)]) == 3
    capsys.readouterr()
    assert main(["run", str(path), "--backend", "torch", "--steps", "5"]) == 0
    assert "voltage readout" in capsys.readouterr().out
