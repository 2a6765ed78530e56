"""Spiking digits accuracy with local rules: mean of 3 seeds per rule, printed as a table.

A 64-256-256-10 spiking MLP (LIF hidden layers, LI readout, rate-coded input, T = 20 steps,
snnTorch-form discretisation, dt = 1e-4) learns with the rule's own terms on per-step pre
traces and error compartments (neurocredit.sim.spiking).  Targets (issue 5): DFA >= 93 %,
FA >= 93 %, sparse DFA >= 90 %, DRTP >= 85 %.

    .venv/bin/python benchmarks/spiking_accuracy.py [--epochs 40] [--seeds 0 1 2] [--rules fa dfa sdfa drtp]
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

TARGETS = {"dfa": 0.93, "fa": 0.93, "sdfa": 0.90, "drtp": 0.85}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--rules", nargs="+", default=["fa", "dfa", "sdfa", "drtp"])
    ap.add_argument("--hidden", type=int, nargs="+", default=[256, 256])
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--coding", default="rate", choices=["rate", "latency"])
    args = ap.parse_args()
    torch.set_num_threads(1)
    from neurocredit.data import load_digits
    from neurocredit.rules import get_rule
    from neurocredit.sim.spiking import SpikingConfig, SpikingTrainConfig, train_spiking

    print(f"torch threads: {torch.get_num_threads()}; digits 80/20 split, inputs in [0, 1], "
          f"{args.coding} coding, T = {args.steps}; net 64-{'-'.join(map(str, args.hidden))}-10; "
          f"{args.epochs} epochs, lr {args.lr}, batch 32, momentum 0.9")
    print(f"{'rule':6s} {'seeds':>24s} {'mean':>8s} {'target':>7s}  met  s/epoch")
    for name in args.rules:
        accs, secs = [], []
        for seed in args.seeds:
            data = load_digits(seed=seed, standardise=False)
            cfg = SpikingTrainConfig(epochs=args.epochs, lr=args.lr, seed=seed,
                                     spiking=SpikingConfig(steps=args.steps, coding=args.coding))
            t0 = time.perf_counter()
            res = train_spiking(get_rule(name), data, args.hidden, cfg)
            secs.append((time.perf_counter() - t0) / args.epochs)
            accs.append(res.final["test_acc"])
        mean = statistics.mean(accs)
        target = TARGETS.get(name)
        met = "-" if target is None else ("yes" if mean >= target else "NO")
        print(f"{name:6s} {' '.join(f'{100 * a:6.2f}' for a in accs):>24s} {100 * mean:7.2f}% "
              f"{'' if target is None else f'{100 * target:5.0f}%':>7s}  {met:3s}  {statistics.mean(secs):.2f}",
              flush=True)


if __name__ == "__main__":
    main()
