"""Lava after tqdm: Lava 0.10 sets multiprocessing's start method when first imported and fails
("context has already been set") if tqdm's lock fixed it before; every Lava run starts through
:func:`neurocredit._setup_lava.import_lava`, so a progress bar first does not matter.  Run in a
fresh interpreter (tests/conftest.py imports Lava first and would hide the failure)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = r"""
import multiprocessing as mp, sys
from tqdm import tqdm
for _ in tqdm(range(2), disable=False, file=sys.stderr):
    pass
assert mp.get_start_method(allow_none=True) is not None, "tqdm no longer fixes the start method"
assert "lava" not in sys.modules
import numpy as np
from neurocredit.chip import circuits as C
from neurocredit.chip.compile import compile_graph
from neurocredit.chip.emulator import emulate_learning
from neurocredit.chip.ir import INPUT, TARGET
from neurocredit.chip import sample_graphs
from neurocredit.lava.backend import run_learning
from neurocredit.rules import resolve_rule
rule = resolve_rule("fa")
g = sample_graphs.random_graph(seed=0, n_in=6, hidden=(5,), n_out=3, recurrent=False, bias=False)
circ = C.build_circuit(compile_graph(g).fixed_circuit, rule, C.random_feedback(rule, [6, 5, 3], 0),
                       C.default_spec(rule, 1, third_shift=2))
rng = np.random.default_rng(1)
tgt = np.zeros((20, 3), np.int64); tgt[:, 0] = 1
stream = {INPUT: (rng.random((20, 6)) < 0.5).astype(np.int64), TARGET: tgt}
lava, _ = run_learning(circ, stream, rng_seed=3)
emu, _ = emulate_learning(circ, stream, rng_seed=3)
assert all(np.array_equal(lava[c.name], emu[c.name]) for c in circ.plastic)
print("LAVA_RAN", mp.get_start_method())
"""


def test_lava_learning_run_after_tqdm_in_a_fresh_interpreter():
    pytest.importorskip("lava.magma.core.process.process")
    out = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "LAVA_RAN fork" in out.stdout
