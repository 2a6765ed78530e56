"""Predictive coding and PAL on chip (issue 8): measured figures.

``pc``: relaxed predictive coding (rule ``pc_onchip``, compiled by ``neurocredit.chip``: learned backward
weights with ΔB_l = −η f(v_l) ⊗ ε_{l+1}, no backward derivative, fixed predictions) trained on
chip in the fixed-point emulator (Lava's arithmetic, learning every step) on digits, 64-128-10
LIF, mean over seeds, beside the same rule and architecture trained in float torch
(``neurocredit.sim.train``, rate network, ReLU).  Goal: on chip >= 85 %.

``pal``: PAL on chip (``neurocredit.lava.onchip_pal``, emulated fixed point, integer OU noise,
high-passed rates, W and B learning at every step, no phases) on the teacher-student task
(20-50-5 tanh teacher, student 20-50-5 graded ReLU), beside FA on the same on-chip task (the
same network and stream with B fixed): ∠(B, W2ᵀ) over time.  Goals: PAL's final angle < 30°
and below FA's.  The student goes through NIR: neurocredit's torch model with rule ``pal``
(``onchip_pal.pal_model``) is written to a .nir file and read back with ``pal_from_nir``.

    python benchmarks/onchip_pc_pal.py [--parts pc,pal] [--seeds 0,1,2] [--epochs 3]
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

PC_GOAL = 0.85


def pc_onchip(seeds: list[int], epochs: int, hidden: int, third_shift: int, lr: float) -> list[dict]:
    """Per seed: the final history entry; the seeds run side by side as independent chips in one
    vectorised emulator run (session.train_chips: each equals its own single-chip run)."""
    import numpy as np

    from neurocredit.chip import circuits as C
    from neurocredit.chip import session as S
    from neurocredit.chip.compile import compile_graph
    from neurocredit.data import load_digits
    from neurocredit.rules import get_rule

    sizes = [64, hidden, 10]
    datas, circuits = [], []
    for seed in seeds:
        datas.append(load_digits(seed=seed, standardise=False))
        base = compile_graph(S.initial_graph(sizes, seed=seed)).fixed_circuit
        rng = np.random.default_rng(seed + 1)              # initial B_l ~ N(0, 1/n_l), as FA's
        backward = [rng.normal(0, 1 / np.sqrt(sizes[l + 1]), (sizes[l + 1], sizes[l + 2]))
                    for l in range(len(sizes) - 2)]
        circuits.append(C.build_circuit(base, get_rule("pc_onchip"), backward,
                                        C.OnChipSpec(lr=lr, third_shift=third_shift)))
    _, hists = S.train_chips(circuits, datas, epochs, seeds, log=lambda s: None)
    return [h[-1] | {"angle_B0": h[0]["angle_B"], "dw": c.meta["dw"], "dw_B": c.meta["dw_B"]}
            for h, c in zip(hists, circuits)]


def pc_float(seed: int, epochs: int, hidden: int) -> float:
    from neurocredit.data import load_digits
    from neurocredit.rules import get_rule
    from neurocredit.sim.train import TrainConfig, train

    res = train(get_rule("pc_onchip"), load_digits(seed=seed), [hidden],
                TrainConfig(epochs=epochs, activation="relu", seed=seed, progress=False, metrics=False))
    return float(res.final["test_acc"])


def part_pc(args, seeds: list[int]) -> None:
    print(f"relaxed PC on chip: digits, 64-{args.hidden}-10 LIF, 16 steps per sample + 4 blank, "
          f"{args.epochs} epochs streamed through the fixed-point emulator (lr {args.lr}, third shift "
          f"{args.third_shift}); float torch: same rule, 64-{args.hidden}-10 ReLU rate network, "
          f"{args.float_epochs} epochs; seeds {seeds}; torch threads {torch.get_num_threads()}", flush=True)
    chip, angles, flt = [], [], []
    t0 = time.perf_counter()
    results = pc_onchip(seeds, args.epochs, args.hidden, args.third_shift, args.lr)
    for s, r in zip(seeds, results):
        chip.append(r["test_acc"])
        angles.append((r["angle_B0"], r["angle_B"]))
        flt.append(pc_float(s, args.float_epochs, args.hidden) if args.float_epochs else 0.0)
        print(f"  seed {s}: on chip {100 * r['test_acc']:.2f} %  (∠(B1, W2ᵀ) {r['angle_B0']:.1f}° -> "
              f"{r['angle_B']:.1f}°),  float torch {100 * flt[-1]:.2f} %   ({time.perf_counter() - t0:.0f} s)",
              flush=True)
    m = statistics.mean(chip)
    sd = statistics.stdev(chip) if len(chip) > 1 else 0.0
    fm = statistics.mean(flt)
    fsd = statistics.stdev(flt) if len(flt) > 1 else 0.0
    print(f"  dw (W) = {r['dw']};  dw (B, post spike x pre error) = {r['dw_B']}")
    print(f"{'rule':<12}{'on-chip fixed point':>24}{'float torch':>20}{'goal':>12}")
    print(f"{'pc_onchip':<12}{100 * m:>17.2f} ± {100 * sd:4.2f}{100 * fm:>13.2f} ± {100 * fsd:4.2f}"
          f"{'85 ' + ('met' if m >= PC_GOAL else 'NOT met'):>12}", flush=True)


def part_pal(args, seeds: list[int]) -> None:
    import tempfile
    from pathlib import Path

    from neurocredit.data import teacher_student
    from neurocredit.lava import onchip_pal as PL
    from neurocredit.nir.export import write

    print(f"PAL on chip: teacher-student 20-50-5 (2000 samples), student 20-{args.pal_hidden}-5 "
          f"(torch model with rule 'pal' -> .nir file -> pal_from_nir), {args.pal_epochs} epochs x 20 steps "
          f"per sample, emulated fixed point; FA = same with B fixed; seeds {seeds}", flush=True)
    finals = []
    for s in seeds:
        t0 = time.perf_counter()
        data = teacher_student(20, 50, 5, 2000, 500, seed=s)
        with tempfile.TemporaryDirectory() as tmp:
            path = write(PL.pal_model(20, args.pal_hidden, 5, seed=s + 1), Path(tmp) / "pal.nir")
            net = PL.pal_from_nir(path)
        runs = PL.run_pal_vs_fa(None, data, epochs=args.pal_epochs, seed=s, log_points=10, network=net)
        pal, fa = runs["PAL"], runs["FA"]
        finals.append((pal["angle"][-1], fa["angle"][-1]))
        print(f"  seed {s}: step      " + " ".join(f"{k:6d}" for k in pal["step"]))
        print("    ∠(B,W2ᵀ) PAL (deg) " + " ".join(f"{a:6.1f}" for a in pal["angle"])
              + f"   (start {pal['angle_start']:.1f})")
        print("    ∠(B,W2ᵀ) FA  (deg) " + " ".join(f"{a:6.1f}" for a in fa["angle"]))
        print(f"    mse (int units) PAL {pal['sq_err'][-1]:.1f}, FA {fa['sq_err'][-1]:.1f}   "
              f"({time.perf_counter() - t0:.0f} s)", flush=True)
    print(f"  products: W: {runs['products']['W']};  B: {runs['products']['B']}")
    mp = statistics.mean(p for p, _ in finals)
    mf = statistics.mean(f for _, f in finals)
    ok30 = all(p < 30 for p, _ in finals)
    okfa = all(p < f for p, f in finals)
    print(f"PAL final ∠(B, W2ᵀ) mean {mp:.1f}° (per seed {', '.join(f'{p:.1f}' for p, _ in finals)}), FA "
          f"{mf:.1f}°; < 30° every seed: {'met' if ok30 else 'NOT met'}; below FA every seed: "
          f"{'met' if okfa else 'NOT met'}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--parts", default="pc,pal")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--float-epochs", type=int, default=20)
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--third-shift", type=int, default=7)
    ap.add_argument("--lr", type=float, default=2 ** -4)
    ap.add_argument("--pal-epochs", type=int, default=3)
    ap.add_argument("--pal-hidden", type=int, default=50)
    args = ap.parse_args()
    torch.set_num_threads(1)
    seeds = [int(s) for s in args.seeds.split(",")]
    parts = args.parts.split(",")
    if "pc" in parts:
        part_pc(args, seeds)
    if "pal" in parts:
        part_pal(args, seeds)


if __name__ == "__main__":
    main()
