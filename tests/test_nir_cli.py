"""`neurocredit export` / `neurocredit inspect` end to end (small, fast)."""
import sys

import pytest
import torch

import nir
from neurocredit.cli import main
from neurocredit.nir.load import load


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    rc = main(["export", str(d / "fresh.nir"), "--rule", "drtp", "--epochs", "1", "--hidden", "16",
               "--steps", "8", "--save-run", str(d / "run")])
    assert rc == 0
    return d


def test_export_fresh_train_writes_rule_and_run(run_dir, capsys):
    m = load(run_dir / "fresh.nir")
    assert m.rule.name == "drtp" and m.spec["coding"]["steps"] == 8
    assert (run_dir / "run" / "spiking.pt").is_file() and (run_dir / "run" / "metrics.json").is_file()


def test_export_from_saved_run_is_the_same_network(run_dir):
    assert main(["export", str(run_dir / "again.nir"), "--from", str(run_dir / "run")]) == 0
    a, b = load(run_dir / "fresh.nir"), load(run_dir / "again.nir")
    x = (torch.rand(30, 2, 64) < 0.3).float()
    assert torch.equal(a.simulate(x), b.simulate(x))
    assert a.spec == b.spec


def test_export_attaches_a_rule_to_a_plain_nir_file(run_dir):
    g = nir.read(run_dir / "fresh.nir")
    g.metadata = {}
    for n in g.nodes.values():
        n.metadata = {}
    nir.write(run_dir / "plain.nir", g)
    assert load(run_dir / "plain.nir").rule is None
    assert main(["export", str(run_dir / "ruled.nir"), "--from", str(run_dir / "plain.nir"),
                 "--rule", "fa"]) == 0
    assert load(run_dir / "ruled.nir").rule.name == "fa"


def test_inspect_prints_nodes_rule_feedback_and_lava(run_dir, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "neurocredit.lava.acceptance", None)  # Lava check unavailable
    assert main(["inspect", str(run_dir / "fresh.nir")]) == 0
    out = capsys.readouterr().out
    assert "lif1             LIF" in out and "v_threshold=1" in out
    assert "learning rule: drtp" in out
    assert "feedback into lif1: random B [16, 10] from target (output)" in out
    assert "Lava target check unavailable" in out


def test_inspect_and_export_bad_file_are_one_line_errors(tmp_path, capsys):
    bad = tmp_path / "bad.nir"
    bad.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 40)
    assert main(["inspect", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "bad.nir" in err and "not a readable HDF5" in err and "Traceback" not in err
    assert main(["export", str(tmp_path / "o.nir"), "--from", str(bad)]) == 2
    assert not (tmp_path / "o.nir").exists()
