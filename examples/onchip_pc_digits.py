"""Relaxed predictive coding learns digits on chip (fixed-point emulator of Lava's arithmetic).

Value neurons are LIF populations (their spikes are f(v_l)), each with an error unit ε_l in its
third-factor compartment; the output error ε_L = g (z_L − y*) sits in GradedVec neurons.  The
hidden errors settle through *learned* backward weights B_l (ε_l = B_l ε_{l+1}, one relaxation
step per chip step), and every weight change is a Loihi three-factor product generated from the
rule's Terms:  ΔW_l = −η ε_l ⊗ f(v_{l−1}),  ΔB_l = −η f(v_l) ⊗ ε_{l+1}  (so B_l turns toward
W_{l+1}ᵀ).  Exact PC (B_l = W_{l+1}ᵀ) is refused by the on-chip check, naming W2ᵀ.

Prints the test accuracy and ∠(B_1, W_2ᵀ) per epoch, the float torch accuracy of the same rule and
architecture, and writes a plot.

    python examples/onchip_pc_digits.py [--epochs 3] [--samples N] [--hidden 128] [--out runs/onchip_pc]
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--samples", type=int, default=None, help="training samples per epoch (default: all)")
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--lr", type=float, default=2 ** -4)
    ap.add_argument("--third-shift", type=int, default=7)
    ap.add_argument("--float-epochs", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--lava-samples", type=int, default=10,
                    help="after training, stream this many more samples through Lava (Loihi2SimCfg fixed point) "
                         "and the emulator and compare the learned weights (0: skip)")
    ap.add_argument("--out", default="runs/onchip_pc")
    args = ap.parse_args()
    torch.set_num_threads(1)
    if args.lava_samples > 0:   # Lava sets the 'fork' start method on import: before anything else does
        import lava.magma.runtime.message_infrastructure.multiprocessing  # noqa: F401

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from neurocredit.data import load_digits
    from neurocredit.io_utils import write_json
    from neurocredit.chip import circuits as C
    from neurocredit.chip import compile_status
    from neurocredit.chip import session as S
    from neurocredit.chip.compile import compile_graph
    from neurocredit.plots import save_figure
    from neurocredit.rules import get_rule
    from neurocredit.sim.train import TrainConfig, train

    pc_onchip = get_rule("pc_onchip")
    print(f"exact PC refused: {compile_status(get_rule('pc'), n_layers=2)[1]}")
    data = load_digits(seed=args.seed, standardise=False)
    sizes = [64, args.hidden, 10]
    base = compile_graph(S.initial_graph(sizes, seed=args.seed)).fixed_circuit
    rng = np.random.default_rng(args.seed + 1)            # initial B_l ~ N(0, 1/n_l), as FA's
    backward = [rng.normal(0, 1 / np.sqrt(sizes[l + 1]), (sizes[l + 1], sizes[l + 2])) for l in range(len(sizes) - 2)]
    circuit = C.build_circuit(base, pc_onchip, backward, C.OnChipSpec(lr=args.lr, third_shift=args.third_shift))
    print(f"on-chip {pc_onchip.name} ({pc_onchip.title}), {'-'.join(map(str, sizes))} LIF")
    print(f"  dw (W) = {circuit.meta['dw']}\n  dw (B) = {circuit.meta['dw_B']}  (post spike x pre error)")
    circuit, history = S.train(circuit, data, args.epochs, seed=args.seed, samples=args.samples)
    res = train(pc_onchip, load_digits(seed=args.seed), [args.hidden],
                TrainConfig(epochs=args.float_epochs, activation="relu", seed=args.seed, progress=False,
                            metrics=False))
    flt = float(res.final["test_acc"])
    print(f"final on-chip test accuracy {100 * history[-1]['test_acc']:.2f} % (fixed point), float torch "
          f"(same rule, {'-'.join(map(str, sizes))} ReLU, {args.float_epochs} epochs) {100 * flt:.2f} %")
    out = Path(args.out)
    write_json(out / "onchip_pc.json", {"sizes": sizes, "history": history, "float_torch_acc": flt})
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3.5))
    xs = [h["samples"] for h in history]
    a1.plot(xs, [100 * h["test_acc"] for h in history], marker="o", label="on chip (fixed point)")
    a1.axhline(100 * flt, color="k", ls="--", label="float torch")
    a1.set(xlabel="training samples streamed", ylabel="test accuracy (%)", title="relaxed PC, digits")
    a1.legend()
    a2.plot(xs, [h["angle_B"] for h in history], marker="o", color="C1")
    a2.set(xlabel="training samples streamed", ylabel="∠(B₁, W₂ᵀ) (deg)", title="learned backward weights")
    for a in (a1, a2):
        a.grid(alpha=0.3)
    fig.tight_layout()
    save_figure(fig, out / "onchip_pc_digits.png", dpi=110)
    print(f"wrote {out / 'onchip_pc_digits.png'}")
    if args.lava_samples > 0:
        from neurocredit.chip.emulator import emulate_learning
        from neurocredit.lava.backend import run_learning
        n = args.lava_samples
        stream = S.sample_stream(data.x_train.numpy()[:n], data.y_train.numpy()[:n], 10, 16, 4, args.seed + 77)
        w_emu, _ = emulate_learning(circuit, stream, rng_seed=args.seed + 77)
        w_lava, _ = run_learning(circuit, stream, rng_seed=args.seed + 77)
        for c in circuit.connections:
            if c.plastic:
                diff = int((w_emu[c.name] != w_lava[c.name]).sum())
                moved = int((w_lava[c.name] != np.asarray(c.weights)).sum())
                print(f"Lava vs emulator, {n} more samples ({len(stream['input'])} steps) of learning: {c.name}: "
                      f"{moved} weights changed in Lava, {diff} differ from the emulator")


if __name__ == "__main__":
    main()
