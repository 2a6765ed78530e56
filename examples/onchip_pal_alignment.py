"""PAL on chip: backward weights learn to mirror the forward weights from noise, always on.

Phaseless alignment learning (Max et al. 2024, arXiv:2212.10249) compiled by the one rule
compiler (``neurocredit.chip``) into a graded-rate circuit: Ornstein-Uhlenbeck noise ξ in the
hidden units (leaky integrators of a white-noise source), high-passed output potentials r_HP,
forward weights learning from the error compartment (ΔW = −η e ⊗ r), backward weights learning
with ΔB = η_B (ξ ⊗ r_HP − α B), all at every step, no phases — the graded products are the
learning engine's marked extensions rx·ry.  The same circuit with B not plastic (feedback
alignment) is run for comparison.  Prints ∠(B, W2ᵀ) over time for both and writes a plot.

The network goes through NIR: neurocredit's torch model of the student with rule ``pal``
attached is written to ``<out>/pal_student.nir`` (rule and B in the file's metadata) and read
back with ``neurocredit.chip.session.circuit_from_nir`` (weights and B quantised to 9-bit
integers; the chip's neurons are the rule's graded ReLU rate units, the file's LIF parameters
are not used); a short stretch also runs on Lava (Loihi2SimCfg fixed point) and its weights are
compared with the emulator's.

    python examples/onchip_pal_alignment.py [--epochs 3] [--hidden 50] [--seed 0] [--out runs/onchip_pal]
"""
from __future__ import annotations

import argparse
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--hidden", type=int, default=50)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--lava-samples", type=int, default=10,
                    help="also run the first N samples (20 steps each) in Lava and compare the weights with the "
                         "emulator's (0: skip)")
    ap.add_argument("--out", default="runs/onchip_pal")
    args = ap.parse_args()
    if args.lava_samples > 0:     # Lava sets the 'fork' start method on import: before anything else does
        from neurocredit._setup_lava import import_lava
        import_lava()

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    import torch

    from neurocredit.chip import session as S
    from neurocredit.chip.emulator import emulate_learning
    from neurocredit.chip.ir import NO_LEARNING
    from neurocredit.chip.rate_circuits import rate_streams
    from neurocredit.data import teacher_student
    from neurocredit.io_utils import write_json
    from neurocredit.nir.export import write
    from neurocredit.plots import save_figure
    from neurocredit.rules import get_rule
    from neurocredit.sim.spiking import SpikingNetwork

    torch.set_num_threads(1)
    out = Path(args.out)
    data = teacher_student(20, 50, 5, 2000, 500, seed=args.seed)
    model = SpikingNetwork([20, args.hidden, 5], get_rule("pal"), seed=args.seed + 1)
    with torch.no_grad():
        for layer in model.layers:
            layer.bias.zero_()
    nir_path = write(model, out / "pal_student.nir")
    rule, circuit = S.circuit_from_nir(nir_path)
    print(f"wrote {nir_path} (torch model, rule '{rule.name}' attached); compiled: {circuit.meta['how']}")
    order = np.concatenate([np.random.default_rng(args.seed + e).permutation(2000) for e in range(args.epochs)])
    stream = rate_streams(circuit, data.x_train.numpy()[order], data.y_train.numpy()[order], 20, 0, args.seed)
    steps = len(stream["input"])
    every = max(1, steps // 30)
    b0, w20 = circuit.connection("B1").weights, circuit.connection("W2").weights

    def angle(b, w_t) -> float:
        b, w_t = np.ravel(b).astype(float), np.ravel(w_t).astype(float)
        return float(np.degrees(np.arccos(np.clip(b @ w_t / np.linalg.norm(b) / np.linalg.norm(w_t), -1, 1))))

    runs = {}
    for label, circ in (("PAL", circuit), ("FA", circuit.with_plasticity({"B1": NO_LEARNING}))):
        _, rec = emulate_learning(circ, stream, args.seed, record=["err:layer2"], snapshot_every=every)
        bs = rec.get("w:B1", [b0] * len(rec["w:W2"]))
        err = rec["err:layer2"].astype(float) ** 2
        runs[label] = {"step": [every * (i + 1) for i in range(len(bs))],
                       "angle": [angle(b, w2.T) for b, w2 in zip(bs, rec["w:W2"])],
                       "sq_err": [float(err[i * every:(i + 1) * every].mean()) for i in range(len(bs))]}
    pal, fa = runs["PAL"], runs["FA"]
    start = angle(b0, w20.T)
    print(f"on-chip PAL vs FA, teacher-student 20-50-5, student 20-{args.hidden}-5, {args.epochs} epochs x 20 "
          f"steps per sample (emulated fixed point)\nproducts: W: {circuit.meta['dw']}\n          B: {circuit.meta['dw_B']}")
    print(f"{'step':>8} {'∠ PAL':>8} {'∠ FA':>8} {'mse PAL':>9} {'mse FA':>9}")
    for k, ap_, af, ep, ef in zip(pal["step"], pal["angle"], fa["angle"], pal["sq_err"], fa["sq_err"]):
        print(f"{k:8d} {ap_:8.1f} {af:8.1f} {ep:9.1f} {ef:9.1f}")
    print(f"final ∠(B, W2ᵀ): PAL {pal['angle'][-1]:.1f}°, FA {fa['angle'][-1]:.1f}° (start {start:.1f}°)")
    write_json(out / "onchip_pal.json", runs)
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.6))
    for label, r in (("PAL (B learns)", pal), ("FA (B fixed)", fa)):
        a1.plot([0, *r["step"]], [start, *r["angle"]], label=label)
        a2.plot(r["step"], r["sq_err"], label=label)
    a1.axhline(30, color="k", ls=":", lw=1)
    a1.set(xlabel="chip time step", ylabel="∠(B, W₂ᵀ) (deg)", title="on-chip alignment")
    a2.set(xlabel="chip time step", ylabel="mean squared error (int units)", yscale="log", title="task error")
    for a in (a1, a2):
        a.grid(alpha=0.3)
        a.legend()
    fig.tight_layout()
    save_figure(fig, out / "onchip_pal_alignment.png", dpi=110)
    print(f"wrote {out / 'onchip_pal_alignment.png'}")
    if args.lava_samples > 0:
        from neurocredit.lava.backend import run_learning
        n = args.lava_samples * 20
        short = {k: v[:n] for k, v in stream.items()}
        same, _, got = S.check_backends(circuit, short, {"emulator": emulate_learning, "lava": run_learning}, args.seed)
        for c in circuit.plastic:
            print(f"Lava vs emulator after {n} steps of PAL from {nir_path.name}: {c.name}: "
                  f"{int((got['lava'][c.name] != c.weights).sum())} weights changed in Lava, "
                  f"{int((got['lava'][c.name] != got['emulator'][c.name]).sum())} differ from the emulator")
        print(f"Lava weights equal the emulator's: {'yes' if same else 'NO'}")


if __name__ == "__main__":
    main()
