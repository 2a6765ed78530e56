"""train -> export --from -> compile -> learn --out -> run --data on the learned NIR
(examples/pipeline.py, small), accuracy printed at each stage; the learned file is a NIR graph
with de-quantised weights, the integer weights in metadata and the rule attached."""
import re
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def test_pipeline_example_prints_accuracy_at_each_stage(tmp_path):
    out = subprocess.run([sys.executable, str(ROOT / "examples" / "pipeline.py"), "--epochs", "2",
                          "--hidden", "32", "--samples", "150", "--out", str(tmp_path)],
                         capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-2000:]
    table = out.stdout.split("accuracy at each stage")[1]
    acc = {m[0].strip(): float(m[1]) for m in re.findall(r"\n  (.+?)\s+([0-9.]+) %", table)}
    assert list(acc) == ["train (PyTorch float)", "export (NIR, torch float)",
                         "compile (chip, fixed point)", "learn (on chip)", "run learned NIR"]
    assert all(a > 40 for a in acc.values()), acc              # chance is 10 %
    assert abs(acc["export (NIR, torch float)"] - acc["train (PyTorch float)"]) < 8
    assert abs(acc["run learned NIR"] - acc["learn (on chip)"]) < 6
    assert "predicted classes" in out.stdout

    # the learned network: weights = integer weights x row scale, rule attached, readable again
    from neurocredit.nir import learned as LN
    from neurocredit.nir.load import load
    model = load(tmp_path / "learned.nir")
    assert model.rule.name == "dfa"
    info = LN.learned_info(model.graph)
    assert info["rule"] == "dfa" and info["history"][-1]["samples"] == 150
    for name in ("fc1", "fc2"):
        node = model.graph.nodes[name]
        w_int = np.asarray(node.metadata[LN.INT_KEY])
        assert w_int.dtype.kind == "i" and np.abs(w_int).max() <= 255
        assert np.allclose(LN.dequantise(w_int, node.metadata[LN.SCALE_KEY]), node.weight)
    before = load(tmp_path / "model.nir").graph.nodes["fc1"].weight
    assert not np.allclose(before, model.graph.nodes["fc1"].weight)   # learning changed it
    assert (tmp_path / "pipeline.png").read_bytes()[:4] == b"\x89PNG"
