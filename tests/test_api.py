"""The Python API (``import neurocredit``) and the packaging: a cheap import without Lava,
documented and typed functions, the shipped hardware profiles and mappings."""
import inspect
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

import neurocredit as nc

ROOT = Path(__file__).resolve().parents[1]
API = ["train", "dataset", "load", "export", "compile", "simulate", "evaluate", "learn", "rule_names"]


def test_import_is_cheap_and_imports_no_lava():
    code = ("import sys, neurocredit; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'lava', 'nir', 'matplotlib'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stdout + out.stderr


def test_public_functions_have_docstrings_and_type_hints():
    assert nc.__version__ and nc.__doc__ and "learn" in nc.__doc__
    for name in API:
        f = getattr(nc, name)
        assert f.__doc__ and len(f.__doc__) > 60, name
        sig = inspect.signature(f)
        assert sig.return_annotation is not inspect.Signature.empty, name
        for p in sig.parameters.values():
            assert p.annotation is not inspect.Parameter.empty or p.kind is p.VAR_KEYWORD, f"{name}({p.name})"
    assert set(API) <= set(nc.__all__)
    assert nc.get_rule("dfa").name == "dfa" and "dfa" in nc.rule_names()


def test_help_lists_the_functions():
    import io
    import pydoc
    text = pydoc.render_doc(nc, renderer=pydoc.plaintext)
    for name in API:
        assert f"{name}(" in text
    buf = io.StringIO()
    help_out = pydoc.Helper(output=buf)
    help_out.help(nc)
    assert "your own" in buf.getvalue()


def test_train_on_own_tensors_rate_and_spiking(tmp_path):
    import torch
    g = torch.Generator().manual_seed(0)
    x = torch.rand(300, 10, generator=g)
    y = (x[:, 0] > x[:, 1]).long()
    run = nc.train("fa", x, y, hidden=[16], epochs=3, lr=0.05, out=tmp_path / "rate")
    assert run.final["test_acc"] > 0.7
    assert (tmp_path / "rate" / "model.pt").is_file()
    back = nc.load(tmp_path / "rate")
    assert type(back).__name__ == "Network" and back.sizes == [10, 16, 2]
    assert torch.equal(back.layers[0].weight, run.net.layers[0].weight.cpu())
    spk = nc.train("dfa", x.numpy(), y.numpy(), hidden=[16], epochs=2, spiking=True, readout="lif")
    path = nc.export(spk, tmp_path / "s.nir")
    # the network itself exports too (not only the training result that holds it)
    again = nc.export(spk.net, tmp_path / "s_net.nir")
    assert nc.load(again).graph.nodes.keys() == nc.load(path).graph.nodes.keys()
    counts = nc.simulate(path, x.numpy()[:20], steps=10)
    assert counts.shape == (20, 2)
    assert 0.0 <= nc.evaluate(path, x.numpy(), y.numpy()) <= 1.0


def test_dataset_from_arrays_split_is_stratified_and_fixed():
    x = np.random.default_rng(1).random((100, 3))
    y = np.repeat([0, 1, 2, 3], 25)
    a, b = nc.dataset(x, y, seed=3), nc.dataset(x, y, seed=3)
    assert a.n_classes == 4 and a.x_test.shape == (20, 3)
    assert np.array_equal(a.y_test.numpy(), b.y_test.numpy())
    assert sorted(np.bincount(a.y_test.numpy())) == [5, 5, 5, 5]


def test_hardware_profiles_come_from_the_package_data_folder():
    from neurocredit.io_utils import data_dir
    assert (data_dir("hardware") / "loihi2.toml").is_file()
    assert (data_dir("mappings") / "lava.toml").is_file()


def test_wheel_ships_hardware_and_mappings(tmp_path):
    """`pip install .` builds this wheel: the TOML data must be inside the package."""
    out = subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps",
                          "--no-build-isolation", "-q", "-w", str(tmp_path)],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    wheel = next(tmp_path.glob("neurocredit-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for kind in ("hardware", "mappings"):
        for f in (ROOT / kind).glob("*.toml"):
            assert f"neurocredit/{kind}/{f.name}" in names


def test_one_lava_recipe():
    """The Makefile installs Lava with the same command a user runs (neurocredit setup-lava)."""
    make = (ROOT / "Makefile").read_text()
    assert "neurocredit setup-lava" in make and "lava-nc==" not in make
    from neurocredit._setup_lava import LAVA_DEPS, LAVA_VERSION, lava_status
    assert LAVA_VERSION == "0.10.0" and any(d.startswith("numpy") for d in LAVA_DEPS)
    ok, why = lava_status()
    assert isinstance(ok, bool) and why
