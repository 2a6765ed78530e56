"""The one compiler reproduces the hand-written on-chip stacks it replaced, bit for bit.

Runs the same short on-chip training (digits, 64-32-10 LIF, 2 epochs x 40 samples, lr x0.6 per
epoch, mirror phases every 20 samples for weight mirror) with the code of ``--old`` (default
94589b8, before issue 13: lava/learning.py, onchip_pc.py, onchip_wm.py, sim/emulator.py; the tree
is taken with ``git archive`` into a temporary folder) and with the current code (neurocredit.chip),
each in its own interpreter, and compares every test accuracy and every learned integer weight.
Equal results mean the on-chip accuracy figures measured before (benchmarks/onchip_accuracy.py,
onchip_pc_pal.py) hold unchanged for these rules.

    python benchmarks/onchip_regression.py [--old 94589b8] [--rules dfa,fa,kp,wm,pc_onchip]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

RUN = r'''
import json, sys
import numpy as np
import torch
which, root, rules = sys.argv[1], sys.argv[2], sys.argv[3].split(",")
sys.path.insert(0, root)
import neurocredit
assert neurocredit.__file__.startswith(root), neurocredit.__file__
from neurocredit.data import load_digits
from neurocredit.rules import get_rule
torch.set_num_threads(1)
data = load_digits(seed=0, standardise=False)
sizes, out = [64, 32, 10], {}
for name in rules:
    rule = get_rule(name)
    kw = dict(mirror_every=20, mirror_steps=128, gate=None if rule.dynamics != "feedforward" else 0.3)
    train = dict(steps=16, blank=4, samples=40, target_delay=2, lr_decay=0.6, log=lambda s: None)
    if which == "old":
        from neurocredit.lava import learning as LR
        from neurocredit.lava import onchip_pc as P
        from neurocredit.chip.compile import compile_graph
        base = compile_graph(LR.initial_graph(sizes, seed=0)).fixed_circuit
        build = P.build_pc_circuit if rule.dynamics == "predictive_coding" else LR.build_circuit
        circ = build(base, rule, LR.random_feedback(rule, sizes, 0), LR.OnChipSpec(**kw))
        hist = LR.train(circ, data, 2, **train)
    else:
        from neurocredit.chip import circuits as C
        from neurocredit.chip import session as S
        from neurocredit.chip.compile import compile_graph
        base = compile_graph(S.initial_graph(sizes, seed=0)).fixed_circuit
        circ = C.build_circuit(base, rule, C.random_feedback(rule, sizes, 0), C.OnChipSpec(**kw))
        circ, hist = S.train(circ, data, 2, **train)
    out[name] = {"acc": [h["test_acc"] for h in hist],
                 "w": {c.name: np.asarray(c.weights).tolist() for c in circ.connections
                       if c.plastic or c.name.startswith("B")}}
print(json.dumps(out))
'''


def run(which: str, root: Path, rules: str) -> dict:
    res = subprocess.run([sys.executable, "-c", RUN, which, str(root), rules], capture_output=True, text=True,
                         cwd=root, check=False)
    if res.returncode:
        raise SystemExit(f"{which} run failed:\n{res.stderr[-2000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--old", default="94589b8")
    ap.add_argument("--rules", default="dfa,fa,kp,wm,pc_onchip")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        archive = subprocess.run(["git", "archive", args.old, "neurocredit", "hardware", "mappings"],
                                 cwd=ROOT, capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
        old = run("old", Path(tmp), args.rules)
    new = run("new", ROOT, args.rules)
    print(f"on-chip training, digits 64-32-10, 2 epochs x 40 samples: code of {args.old} vs the current compiler")
    for name in args.rules.split(","):
        a, b = old[name], new[name]
        same_w = set(a["w"]) == set(b["w"]) and all(a["w"][k] == b["w"][k] for k in a["w"])
        print(f"{name:<10} test accuracy per epoch {' '.join(f'{100 * x:.2f}' for x in b['acc'])} %  "
              f"accuracies {'identical' if a['acc'] == b['acc'] else 'DIFFER'}, learned weights "
              f"({', '.join(sorted(b['w']))}) {'identical' if same_w else 'DIFFER'}", flush=True)


if __name__ == "__main__":
    main()
