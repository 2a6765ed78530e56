"""How many relaxation steps do predictive coding and activation relaxation need?

For T = 0 .. 80 inference steps, the cosine between the rule's weight update and the autograd
BP gradient on a 64-64-32-10 tanh MLP (one digits batch): per layer and for the whole
network (all layers' updates concatenated, which also checks their relative sizes).  Exact PC
with fixed prediction (pc_fp), classic PC whose predictions move (pc), exact AR (ar).
Writes ``runs/relaxation_steps/relaxation_steps.png``.

    python examples/relaxation_steps.py [--rate 0.2] [--out runs/relaxation_steps]
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch

from neurocredit.data import load_digits
from neurocredit.io_utils import atomic_path
from neurocredit.plots import plt
from neurocredit.rules import get_rule
from neurocredit.sim.losses import target_vector
from neurocredit.sim.metrics import bp_reference, cosine
from neurocredit.sim.network import Network
from neurocredit.sim.updates import local_updates

STEPS = [0, 1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 80]
RULES = ["pc_fp", "pc", "ar"]


def curve(name: str, rate: float, x: torch.Tensor, y: torch.Tensor) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {"whole": [], "layer 1": [], "layer 2": [], "layer 3": []}
    for steps in STEPS:
        rule = get_rule(name).with_params(steps=steps, inference_rate=rate)
        net = Network([64, 64, 32, 10], rule, "tanh", seed=0)
        with torch.no_grad():
            upd, _ = local_updates(net, x, target_vector(y, 10, "ce"), "ce")
        _, grads = bp_reference(net, x, y, "ce")
        out["whole"].append(cosine(torch.cat([d.flatten() for d in upd.weight]),
                                   torch.cat([-g.flatten() for g in grads])))
        for i, (d, g) in enumerate(zip(upd.weight, grads)):
            c = cosine(d, -g)
            out[f"layer {i + 1}"].append(0.0 if c != c else c)   # an all-zero update: cos 0
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rate", type=float, default=0.2, help="inference rate γ")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--out", default="runs/relaxation_steps")
    args = ap.parse_args()
    torch.set_num_threads(1)
    d = load_digits(seed=0)
    x, y = d.x_train[:args.batch], d.y_train[:args.batch]
    curves = {name: curve(name, args.rate, x, y) for name in RULES}
    print(f"cosine(ΔW, −∇W_BP) vs relaxation steps T (γ = {args.rate}, 64-64-32-10 tanh, "
          f"{args.batch} digits)")
    print("T      " + "  ".join(f"{n + ' whole':>14s}" for n in RULES) + "  "
          + "  ".join(f"{n + ' layer1':>14s}" for n in RULES))
    for i, steps in enumerate(STEPS):
        print(f"{steps:<6d} " + "  ".join(f"{curves[n]['whole'][i]:14.4f}" for n in RULES) + "  "
              + "  ".join(f"{curves[n]['layer 1'][i]:14.4f}" for n in RULES))
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    colors = {"pc_fp": "C0", "pc": "C1", "ar": "C2"}
    xs = [max(s, 0.5) for s in STEPS]
    for name in RULES:
        axes[0].semilogx(xs, curves[name]["whole"], "o-", color=colors[name], label=name)
        for key, style in (("layer 1", "o-"), ("layer 2", "s--"), ("layer 3", "^:")):
            axes[1].semilogx(xs, curves[name][key], style, color=colors[name], ms=4,
                             label=f"{name} {key}")
    axes[0].set(xlabel="relaxation steps T (0 plotted at 0.5)", ylabel="cos(ΔW, −∇W_BP)",
                title="whole network (all layers concatenated)", ylim=(-0.05, 1.05))
    axes[1].set(xlabel="relaxation steps T", ylabel="cos(ΔW_l, −∇W_l)", title="per layer",
                ylim=(-0.05, 1.05))
    for ax in axes:
        ax.axhline(0.99, color="gray", lw=0.6, ls=":")
        ax.legend(fontsize=7)
    fig.suptitle(f"Relaxation steps vs agreement with backprop (γ = {args.rate})")
    fig.tight_layout()
    out = Path(args.out)
    png = out / "relaxation_steps.png"
    with atomic_path(png) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    print(f"wrote {png}")


if __name__ == "__main__":
    main()
