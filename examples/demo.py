"""The main demo: one network definition, several credit-assignment rules, on the embedded
digits data (scikit-learn's 8x8 digits, no download).

Trains a 64-256-128-10 network (two hidden layers, so that FA and DFA differ) with BP (reference), FA, DFA, sparse DFA, DRTP, Kolen-Pollack and
weight mirror; prints test accuracy, the final angle between Wᵀ and the feedback B, and which
rules the locality checker and the Lava compiler let onto the chip; writes runs/demo/rules.png.

    python examples/demo.py [--epochs 15] [--seed 0]
"""
from __future__ import annotations

import argparse
import time

import torch

from neurocredit.data import load_digits
from neurocredit.chip import compile_status as onchip_status
from neurocredit.rules import check_locality, get_rule
from neurocredit.sim.train import TrainConfig, train

DEMO_RULES = ["bp", "fa", "dfa", "sdfa", "drtp", "kp", "wm"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="runs/demo/rules.png")
    args = p.parse_args()
    torch.set_num_threads(min(2, torch.get_num_threads()))
    data = load_digits(seed=args.seed)
    print(f"digits: {data.x_train.shape[0]} train / {data.x_test.shape[0]} test images, "
          f"network 64-256-128-10, {args.epochs} epochs, seed {args.seed}; angles of the "
          f"last hidden layer")
    print(f"{'rule':6s} {'test acc':>9s} {'∠(Wᵀ,B)':>9s} {'∠(e,δ_BP)':>10s} {'time':>6s}  on-chip?")
    runs = {}
    for name in DEMO_RULES:
        rule = get_rule(name)
        act = "tanh" if name == "drtp" else "relu"
        t0 = time.perf_counter()
        res = train(rule, data, [256, 128], TrainConfig(epochs=args.epochs, seed=args.seed,
                                                   activation=act, progress=False))
        runs[name] = res.history
        layer = res.final["layers"][-2]  # the last hidden layer
        v = check_locality(rule)
        onchip, why = onchip_status(rule)
        hw = ("yes" if onchip else "local, not compiled yet" if not v
              else f"no: needs {v[0].quantity.split(',')[0]}")
        print(f"{name:6s} {100 * res.final['test_acc']:8.2f}% {layer['angle_WT_B']:8.1f}° "
              f"{layer['delta_angle']:9.1f}° {time.perf_counter() - t0:5.1f}s  {hw}")
    import matplotlib.pyplot as plt

    from neurocredit.plots import save_figure
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
    for name, hist in runs.items():
        ep = [h["epoch"] for h in hist]
        axes[0].plot(ep, [100 * h["test_acc"] for h in hist], "o-", ms=3, label=name)
        axes[1].plot(ep, [h["layers"][-2]["angle_WT_B"] for h in hist], "o-", ms=3, label=name)
    axes[0].set(xlabel="epoch", ylabel="test accuracy (%)", title="digits, 64-256-128-10", ylim=(85, 100))
    axes[1].set(xlabel="epoch", ylabel="∠(Wᵀ, B) (deg)", title="alignment of feedback with Wᵀ (last hidden layer)",
                ylim=(0, 150))
    axes[1].axhline(90, color="gray", lw=0.5, ls=":")
    for a in axes:
        a.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
