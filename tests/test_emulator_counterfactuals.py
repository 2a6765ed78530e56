"""benchmarks/emulator_counterfactuals.py (an emulator-only counterfactual, not what Lava computes): the
learned weights on a 2^E finer grid at the same range.  Where every update is a whole number of chip
weight units (lr 1, error gain 1: nothing to round), the finer chip at lr x 2^E learns exactly the
chip's weights x 2^E, spike for spike; the patch runs in a subprocess (it rebinds emulator functions)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

SCRIPT = r"""
import sys
from dataclasses import replace
import numpy as np
sys.path.insert(0, sys.argv[1])
from neurocredit.chip import circuits as C, sample_graphs
from neurocredit.chip import emulator as EM
from neurocredit.chip.compile import compile_graph
from neurocredit.chip.ir import INPUT, TARGET
from neurocredit.rules import get_rule
import emulator_counterfactuals as CF

STEPS, E = 60, 3
rng = np.random.default_rng(4)
g = sample_graphs.random_graph(seed=4, n_in=10, hidden=(12,), n_out=4, recurrent=False, bias=False)
base = compile_graph(g).fixed_circuit
# even weights: Lava's mixed-sign store drops the lowest bit of the 8-bit ones, the finer grid keeps it
base = replace(base, connections=tuple(replace(c, weights=(np.asarray(c.weights, np.int64) >> 1) << 1)
                                       for c in base.connections))
b = [rng.normal(0, 1 / np.sqrt(12), (12, 4))]
x = (rng.random((STEPS, 10)) < 0.5).astype(np.int64)
tgt = np.zeros((STEPS, 4), np.int64)
tgt[:, 1] = 1
inp = {INPUT: x, TARGET: tgt}
chip = C.build_circuit(base, get_rule("dfa"), b, C.OnChipSpec(lr=1.0, error_gain=1))
w_chip, _ = EM.emulate_chips([chip], [inp], [0], kernel=False)
names = CF.fine_layers(chip, "both")
assert names == {c.name for c in chip.plastic}, names
assert CF.fine_layers(chip, "output") == {"fc_out"} and CF.fine_layers(chip, "hidden") == {"fc1"}
CF.install("both", E)
wide = C.build_circuit(base, get_rule("dfa"), b, C.OnChipSpec(lr=float(2 ** E), error_gain=1))
fine = CF.finer(wide, CF.fine_layers(wide, "both"), E)
for c in fine.connections:
    if c.name in names:
        old = chip.connection(c.name)
        assert c.num_weight_bits == 8 + E and c.weight_exp == old.weight_exp - E
        assert np.array_equal(np.asarray(c.weights), np.asarray(old.weights) << E)
w_fine, _ = EM.emulate_chips([fine], [inp], [0])
for k in names:
    a, f = w_chip[0][k], w_fine[0][k]
    assert (a != np.asarray(chip.connection(k).weights)).mean() > 0.3, k       # it learned
    assert np.abs(a).max() < 255, k                                            # inside the bound
    assert np.array_equal(a << E, f), (k, np.abs((a << E) - f).max())
print("ok")
"""


def test_finer_grid_with_whole_updates_is_the_chip_scaled():
    out = subprocess.run([sys.executable, "-c", SCRIPT, str(ROOT / "benchmarks")], capture_output=True,
                         text=True, timeout=300, cwd=ROOT)
    assert out.returncode == 0 and out.stdout.strip().endswith("ok"), out.stderr[-2000:]
