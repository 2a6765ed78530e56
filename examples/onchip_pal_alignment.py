"""PAL on chip: backward weights learn to mirror the forward weights from noise, always on.

Phaseless alignment learning (Max et al. 2024, arXiv:2212.10249) in the fixed-point emulator of
an on-chip graded-rate network: integer Ornstein-Uhlenbeck noise ξ in the hidden neurons,
high-passed output rates r_HP, forward weights learning from the error compartment
(ΔW = −η e ⊗ r), backward weights learning with ΔB = η_B (ξ ⊗ r_HP − α B), all at every step, no
phases.  The same on-chip task is run with B fixed (feedback alignment) for comparison.  Prints
∠(B, W2ᵀ) over time for both and writes a plot.

The network goes through NIR: neurocredit's torch model of the student with rule ``pal``
attached is written to ``<out>/pal_student.nir`` (rule and B in the file's metadata), read back
with ``neurocredit.lava.onchip_pal.pal_from_nir`` (weights and B quantised to 9-bit integers;
the chip's neurons are PAL's graded ReLU rate units, the file's LIF parameters are not used),
emulated, and a short stretch runs as Lava processes (Loihi2SimCfg fixed point) whose weights
are compared with the emulator's.

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
    ap.add_argument("--lava-steps", type=int, default=200,
                    help="also run the first N chip steps of PAL in Lava (Loihi2SimCfg fixed point) and compare "
                         "the weights with the emulator's (0: skip)")
    ap.add_argument("--out", default="runs/onchip_pal")
    args = ap.parse_args()
    if args.lava_steps > 0:     # Lava sets the 'fork' start method on import: before anything else does
        import lava.magma.runtime.message_infrastructure.multiprocessing  # noqa: F401

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from neurocredit.data import teacher_student
    from neurocredit.io_utils import write_json
    import torch

    from neurocredit.lava import onchip_pal as PL
    from neurocredit.nir.export import write
    from neurocredit.plots import save_figure

    torch.set_num_threads(1)
    out = Path(args.out)
    data = teacher_student(20, 50, 5, 2000, 500, seed=args.seed)
    model = PL.pal_model(data.x_train.shape[1], args.hidden, data.n_out, seed=args.seed + 1)
    nir_path = write(model, out / "pal_student.nir")
    net = PL.pal_from_nir(nir_path)
    print(f"wrote {nir_path} (torch model, rule '{model.rule.name}' attached); read back: rule "
          f"'{net.rule.name}', W1 {net.w1.shape}, W2 {net.w2.shape}, B {net.b.shape} as integers "
          f"(decay tick every {net.compiled.spec.decay_every} steps)")
    runs = PL.run_pal_vs_fa(None, data, epochs=args.epochs, seed=args.seed, network=net)
    pal, fa = runs["PAL"], runs["FA"]
    print(f"on-chip PAL vs FA, teacher-student 20-50-5, student 20-{args.hidden}-5, {args.epochs} epochs "
          f"x 20 steps per sample (emulated fixed point)")
    print(f"products: W: {runs['products']['W']}\n          B: {runs['products']['B']}")
    print(f"{'step':>8} {'∠ PAL':>8} {'∠ FA':>8} {'mse PAL':>9} {'mse FA':>9}")
    for k, ap_, af, ep, ef in zip(pal["step"], pal["angle"], fa["angle"], pal["sq_err"], fa["sq_err"]):
        print(f"{k:8d} {ap_:8.1f} {af:8.1f} {ep:9.1f} {ef:9.1f}")
    print(f"final ∠(B, W2ᵀ): PAL {pal['angle'][-1]:.1f}°, FA {fa['angle'][-1]:.1f}° (start "
          f"{pal['angle_start']:.1f}°)")
    write_json(out / "onchip_pal.json", {k: {kk: vv for kk, vv in v.items() if kk != "weights"}
                                         for k, v in runs.items() if k in ("PAL", "FA")})
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.6))
    for label, r in (("PAL (B learns)", pal), ("FA (B fixed)", fa)):
        a1.plot([0, *r["step"]], [r["angle_start"], *r["angle"]], label=label)
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
    if args.lava_steps > 0:
        from neurocredit.sim.emulator_pal import emulate_pal
        spec = net.compiled.spec
        x, y = PL.teacher_stream(data, 1, 20, args.seed)
        x, y = x[:args.lava_steps], y[:args.lava_steps]
        w0 = net.weights()
        w_emu, _ = emulate_pal(*w0, x, y, spec, seed=args.seed)
        w_lava = PL.run_lava_pal(*w0, x, y, spec, seed=args.seed)
        same = True
        for k, w_init in zip(("W1", "W2", "B"), w0):
            diff = int((w_lava[k] != w_emu[k]).sum())
            same &= diff == 0
            print(f"Lava vs emulator after {len(x)} steps of PAL from {nir_path.name}: {k}: "
                  f"{int((w_lava[k] != w_init).sum())} weights changed in Lava, {diff} differ from the emulator")
        print(f"Lava weights equal the emulator's: {'yes' if same else 'NO'}")


if __name__ == "__main__":
    main()
