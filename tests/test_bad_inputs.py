"""The bad-input catalogue: every error a user can cause, on the command line and through the
Python API, ends in one line that names the culprit and a non-zero exit (CLI) or a
``UserError`` (API), and leaves no file behind.

Each CLI case runs ``neurocredit.cli.main`` in this process (fast); a case is
(id, argv, culprit, exit code, path that must not exist afterwards).  ``{tmp}`` is a fresh
folder, ``{nir}`` an untrained 64-16-10 DFA network with its rule, ``{plain}`` the same graph
without a rule, ``{rate}`` a saved rate run, ``{file}`` a plain text file.
"""
from __future__ import annotations

import importlib.abc
import math
import sys
from pathlib import Path

import numpy as np
import pytest

import neurocredit as nc
from neurocredit.cli import main
from neurocredit.errors import UserError

CLI_CASES = [
    # train: numeric options (finite, sign, range) refused at parse time
    ("train-lr-nan", "train --lr nan --out {tmp}/o", "argument --lr", 2, "{tmp}/o"),
    ("train-lr-inf", "train --lr inf --out {tmp}/o", "argument --lr", 2, "{tmp}/o"),
    ("train-lr-negative", "train --lr -0.1 --out {tmp}/o", "argument --lr", 2, "{tmp}/o"),
    ("train-lr-text", "train --lr fast --out {tmp}/o", "argument --lr", 2, "{tmp}/o"),
    ("train-epochs-zero", "train --epochs 0 --out {tmp}/o", "argument --epochs", 2, "{tmp}/o"),
    ("train-batch-negative", "train --batch-size -4 --out {tmp}/o", "argument --batch-size", 2, "{tmp}/o"),
    ("train-hidden-zero", "train --hidden 64 0 --out {tmp}/o", "argument --hidden", 2, "{tmp}/o"),
    ("train-momentum-one", "train --momentum 1.0 --out {tmp}/o", "argument --momentum", 2, "{tmp}/o"),
    ("train-seed-negative", "train --seed -1 --out {tmp}/o", "argument --seed", 2, "{tmp}/o"),
    ("train-steps-zero", "train --spiking --steps 0 --out {tmp}/o", "argument --steps", 2, "{tmp}/o"),
    # train: names and output paths, before any training
    ("train-rule-unknown", "train --rule nope --epochs 1 --out {tmp}/o", "nope", 2, "{tmp}/o"),
    ("train-data-unknown", "train --data cifar --epochs 1 --out {tmp}/o", "cifar", 2, "{tmp}/o"),
    ("train-out-is-file", "train --epochs 1 --hidden 8 --out {file}", "{file}", 2, "{file}.none"),
    ("train-out-under-file", "train --epochs 1 --hidden 8 --out {file}/run", "{file}", 2, "{file}/run"),
    ("train-diverges", "train --rule dfa --lr 1000 --momentum 0 --hidden 16 --epochs 2 --out {tmp}/o",
     "rule 'dfa', epoch 1", 2, "{tmp}/o/model.pt"),
    # export
    ("export-epochs-negative", "export {tmp}/m.nir --epochs -1", "argument --epochs", 2, "{tmp}/m.nir"),
    ("export-steps-zero", "export {tmp}/m.nir --steps 0", "argument --steps", 2, "{tmp}/m.nir"),
    ("export-from-missing", "export {tmp}/m.nir --from {tmp}/nothing", "{tmp}/nothing", 2, "{tmp}/m.nir"),
    ("export-from-rate-run", "export {tmp}/m.nir --from {rate}", "rate network", 2, "{tmp}/m.nir"),
    ("export-from-not-nir", "export {tmp}/m.nir --from {file}", "{file}", 2, "{tmp}/m.nir"),
    ("export-out-is-folder", "export {tmp} --epochs 0 --hidden 8", "is a folder", 2, "{tmp}/.none"),
    # inspect / compile
    ("inspect-missing", "inspect {tmp}/none.nir", "none.nir", 2, "{tmp}/none.nir"),
    ("inspect-not-nir", "inspect {file}", "{file}", 2, "{file}.none"),
    ("compile-missing", "compile {tmp}/none.nir", "none.nir", 2, "{tmp}/none.nir"),
    ("compile-dt-zero", "compile {nir} --dt 0", "argument --dt", 2, "{tmp}/.none"),
    ("compile-build-lava-missing", "compile {nir} --build", "neurocredit setup-lava", 2, "{tmp}/.none"),
    ("compile-target-unknown", "compile {nir} --target loihi9", "loihi9", 2, "{tmp}/.none"),
    # run
    ("run-missing", "run {tmp}/none.nir", "none.nir", 2, "{tmp}/none.nir"),
    ("run-not-nir", "run {file} --out {tmp}/s.npz", "{file}", 2, "{tmp}/s.npz"),
    ("run-rate-above-one", "run {nir} --rate 1.5 --out {tmp}/s.npz", "argument --rate", 2, "{tmp}/s.npz"),
    ("run-steps-zero", "run {nir} --steps 0 --out {tmp}/s.npz", "argument --steps", 2, "{tmp}/s.npz"),
    ("run-threads-zero", "run {nir} --threads 0", "argument --threads", 2, "{tmp}/.none"),
    ("run-input-bad-shape", "run {nir} --input {npy} --out {tmp}/s.npz", "--input", 2, "{tmp}/s.npz"),
    ("run-data-unknown", "run {nir} --data cifar", "argument --data", 2, "{tmp}/.none"),
    ("run-out-under-file", "run {nir} --steps 5 --out {file}/s.npz", "{file}", 2, "{file}/s.npz"),
    ("run-lava-missing", "run {nir} --backend lava --steps 5 --out {tmp}/s.npz", "neurocredit setup-lava",
     2, "{tmp}/s.npz"),
    # learn
    ("learn-missing", "learn {tmp}/none.nir", "none.nir", 2, "{tmp}/none.nir"),
    ("learn-no-rule", "learn {plain} --samples 5 --out {tmp}/l.nir", "no learning rule", 2, "{tmp}/l.nir"),
    ("learn-epochs-negative", "learn {nir} --epochs -1", "argument --epochs", 2, "{tmp}/.none"),
    ("learn-lr-nan", "learn {nir} --lr nan", "argument --lr", 2, "{tmp}/.none"),
    ("learn-lr-decay-zero", "learn {nir} --lr-decay 0", "argument --lr-decay", 2, "{tmp}/.none"),
    ("learn-out-under-file", "learn {nir} --samples 5 --out {file}/l.nir", "{file}", 2, "{file}/l.nir"),
    ("learn-lava-missing", "learn {nir} --backend lava --samples 2 --out {tmp}/l.nir",
     "neurocredit setup-lava", 2, "{tmp}/l.nir"),
    ("learn-check-lava-missing", "learn {nir} --check 2 --samples 2", "neurocredit setup-lava", 2, "{tmp}/.none"),
]


class _NoLava(importlib.abc.MetaPathFinder):
    """Makes ``import lava...`` fail as it does where lava-nc is not installed."""

    def find_spec(self, name, path=None, target=None):
        if name == "lava" or name.startswith("lava."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    base = tmp_path_factory.mktemp("inputs")
    assert main(["export", str(base / "u.nir"), "--rule", "dfa", "--hidden", "16", "--epochs", "0",
                 "--readout", "lif"]) == 0
    import nir
    from neurocredit.nir.load import read_graph
    g = read_graph(base / "u.nir")
    nir.write(str(base / "plain.nir"), nir.NIRGraph(nodes=g.nodes, edges=g.edges, metadata={}))
    assert main(["train", "--hidden", "8", "--epochs", "1", "--out", str(base / "rate")]) == 0
    (base / "notes.txt").write_text("not a network\n")
    np.save(base / "bad.npy", np.zeros((5, 1, 3)))
    return {"nir": base / "u.nir", "plain": base / "plain.nir", "rate": base / "rate",
            "file": base / "notes.txt", "npy": base / "bad.npy"}


def _fill(text: str, tmp: Path, files: dict) -> str:
    return text.format(tmp=tmp, **{k: str(v) for k, v in files.items()})


def one_line(err: str) -> str:
    """The one line a terminal shows (a progress bar overwritten with \r is not a line)."""
    lines = [l.split("\r")[-1] for l in err.split("\n")]
    lines = [l for l in lines if l.strip()]
    assert len(lines) == 1, f"expected one line, got:\n{err}"
    assert "Traceback" not in err
    return lines[0]


@pytest.mark.parametrize("case", CLI_CASES, ids=[c[0] for c in CLI_CASES])
def test_cli_bad_input(case, files, tmp_path, capsys, monkeypatch):
    name, argv, culprit, code, absent = case
    if name.endswith("lava-missing"):
        for mod in [m for m in sys.modules if m == "lava" or m.startswith("lava.")]:
            monkeypatch.delitem(sys.modules, mod)
        monkeypatch.setattr(sys, "meta_path", [_NoLava(), *sys.meta_path])
        import neurocredit._setup_lava as SL
        monkeypatch.setattr(SL, "lava_status", lambda: (False, "lava-nc not installed; run `neurocredit setup-lava`"))
    before = set(tmp_path.rglob("*"))
    try:
        rc = main(_fill(argv, tmp_path, files).split())
    except SystemExit as exc:          # argparse refusals
        rc = exc.code
    captured = capsys.readouterr()
    line = one_line(captured.err)
    assert rc == code, line
    assert captured.out == "", f"work started before the refusal:\n{captured.out}"
    assert _fill(culprit, tmp_path, files) in line
    assert line.startswith("neurocredit")
    assert not Path(_fill(absent, tmp_path, files)).exists()
    assert set(tmp_path.rglob("*")) == before, "a partial file was left behind"


# -- the Python API ----------------------------------------------------------------------------
def _xy(n=60, d=8):
    rng = np.random.default_rng(0)
    x = rng.random((n, d))
    return x, (x[:, 0] > 0.5).astype(int)


API_CASES = [
    ("api-train-lr-nan", lambda t: nc.train("dfa", *_xy(), lr=math.nan), "lr"),
    ("api-train-lr-negative", lambda t: nc.train("dfa", *_xy(), lr=-1.0), "lr"),
    ("api-train-epochs-zero", lambda t: nc.train("dfa", *_xy(), epochs=0), "epochs"),
    ("api-train-hidden-bad", lambda t: nc.train("dfa", *_xy(), hidden=[0]), "hidden"),
    ("api-train-rule-unknown", lambda t: nc.train("nope", *_xy(), epochs=1), "nope"),
    ("api-train-y-missing", lambda t: nc.train("dfa", _xy()[0], epochs=1), "y"),
    ("api-train-y-length", lambda t: nc.train("dfa", _xy()[0], _xy()[1][:10], epochs=1), "y [10]"),
    ("api-train-x-nan", lambda t: nc.train("dfa", np.full((20, 4), np.nan), np.zeros(20, int)), "NaN"),
    ("api-train-spiking-range", lambda t: nc.train("dfa", _xy()[0] * 5, _xy()[1], spiking=True), "[0, 1]"),
    ("api-train-out-under-file", lambda t: nc.train("dfa", *_xy(), epochs=1, out=t["file"] + "/run"),
     "{file}"),
    ("api-export-rate", lambda t: nc.export(nc.train("dfa", *_xy(), hidden=[4], epochs=1),
                                            t["tmp"] + "/m.nir"), "rate network"),
    ("api-load-missing", lambda t: nc.load(t["tmp"] + "/none.nir"), "none.nir"),
    ("api-simulate-steps", lambda t: nc.simulate(t["nir"], np.zeros((2, 64)), steps=0), "steps"),
    ("api-simulate-shape", lambda t: nc.simulate(t["nir"], np.zeros((2, 7))), "64 inputs"),
    ("api-learn-backend", lambda t: nc.learn(t["nir"], backend="loihi", out=t["tmp"] + "/l.nir"), "loihi"),
]


@pytest.mark.parametrize("case", API_CASES, ids=[c[0] for c in API_CASES])
def test_api_bad_input(case, files, tmp_path):
    name, call, culprit = case
    t = {"tmp": str(tmp_path), **{k: str(v) for k, v in files.items()}}
    with pytest.raises(UserError) as info:
        call(t)
    msg = str(info.value)
    assert "\n" not in msg
    assert culprit.format(**t) in msg, msg
    assert list(tmp_path.iterdir()) == [], "a partial file was left behind"


def test_catalogue_size():
    print(f"bad-input catalogue: {len(CLI_CASES)} CLI cases + {len(API_CASES)} API cases = "
          f"{len(CLI_CASES) + len(API_CASES)}")
    assert len(CLI_CASES) + len(API_CASES) >= 30


def test_ctrl_c_writes_finished_epochs(tmp_path, capsys, monkeypatch):
    """Ctrl-C in the second epoch: exit 130, one line, and the first epoch's metrics and plot."""
    import neurocredit.sim.train as T
    real, calls = T.train_step, {"n": 0}
    batches = math.ceil(1437 / 32)      # digits: 1,437 training samples

    def step(*a, **k):
        calls["n"] += 1
        if calls["n"] > batches + 3:
            raise KeyboardInterrupt
        return real(*a, **k)
    monkeypatch.setattr(T, "train_step", step)
    rc = main(["train", "--rule", "fa", "--hidden", "16", "--epochs", "5", "--out", str(tmp_path)])
    out = capsys.readouterr()
    assert rc == 130
    assert one_line(out.err) == "neurocredit train: interrupted (Ctrl-C)"
    assert "interrupted after 1 finished epoch(s)" in out.out and str(tmp_path / "metrics.json") in out.out
    import json
    assert len(json.loads((tmp_path / "metrics.json").read_text())["history"]) == 1
    assert (tmp_path / "curves.png").read_bytes()[:4] == b"\x89PNG"


def test_ctrl_c_in_spiking_training_writes_finished_epochs(tmp_path, capsys, monkeypatch):
    """The same promise for `train --spiking`: the finished epoch's metrics and plot are kept."""
    from neurocredit.sim.spiking import SpikingNetwork
    real, calls = SpikingNetwork.train_step, {"n": 0}
    batches = math.ceil(1437 / 32)

    def step(self, *a, **k):
        calls["n"] += 1
        if calls["n"] > batches + 3:
            raise KeyboardInterrupt
        return real(self, *a, **k)
    monkeypatch.setattr(SpikingNetwork, "train_step", step)
    rc = main(["train", "--spiking", "--rule", "dfa", "--hidden", "16", "--steps", "4",
               "--epochs", "4", "--out", str(tmp_path)])
    out = capsys.readouterr()
    assert rc == 130
    assert one_line(out.err) == "neurocredit train: interrupted (Ctrl-C)"
    assert "interrupted after 1 finished epoch(s)" in out.out
    import json
    assert len(json.loads((tmp_path / "metrics.json").read_text())["history"]) == 1
    assert (tmp_path / "curves.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_files_respect_the_umask(tmp_path, umask, mode):
    import os

    from neurocredit.io_utils import write_json
    old = os.umask(umask)
    try:
        write_json(tmp_path / "m.json", {"a": 1})
    finally:
        os.umask(old)
    assert (tmp_path / "m.json").stat().st_mode & 0o777 == mode
