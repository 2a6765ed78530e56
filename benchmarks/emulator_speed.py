"""Fixed-point emulator vs Lava (Loihi2SimCfg fixed_pt): time per sample on the same graph in
the same run, printed as a ratio (goal >= 100x).

Graph: a 64-H-10 spiking digits MLP trained by neurocredit (default H = 256, the size DESIGN.md
quotes for Lava's speed), compiled for Loihi 2.  Input: seeded rate-coded test digits, T steps.

Lava time per sample is measured two ways: the whole ``run_lava`` call on N samples (build,
compile, runtime start, N runs with state resets, stop) divided by N, and the steady-state cost
(the difference between an N-sample and a 1-sample run, divided by N - 1).  The emulator runs the
same N samples as one batch, and the whole test set as one batch.  The outputs of Lava and the
emulator are compared (they must be identical).  Ratios are taken in this run only (the machine
is shared; absolute times vary between runs).

    python benchmarks/emulator_speed.py [--samples 20] [--steps 100] [--hidden 256]
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--samples", type=int, default=20, help="samples run in Lava")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=3, help="emulator repeats (median)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from neurocredit.lava import zoo
    from neurocredit.lava.compile import compile_graph
    from neurocredit.lava.run import run_lava
    from neurocredit.chip.emulator import emulate

    graph, info = zoo.digits_mlp(hidden=args.hidden, epochs=args.epochs, seed=args.seed, steps=20,
                                 readout="lif")
    circuit = compile_graph(graph).fixed_circuit
    data = info["data"]
    x_all = zoo.rate_code(data.x_test, args.steps, seed=args.seed + 7)
    n = args.samples
    x = x_all[:, :n]
    names = [p.name for p in circuit.populations]

    t0 = time.perf_counter()
    lava1 = run_lava(circuit, x[:, :1], record=names)
    t1 = time.perf_counter() - t0
    t0 = time.perf_counter()
    lava = run_lava(circuit, x, record=names)
    tn = time.perf_counter() - t0

    def timed(xx):
        ts = []
        for _ in range(args.repeats):
            t = time.perf_counter()
            out = emulate(circuit, xx, record=names)
            ts.append(time.perf_counter() - t)
        return sorted(ts)[len(ts) // 2], out

    te_n, emu = timed(x)
    te_all, _ = timed(x_all)
    same = all(np.array_equal(lava[k], emu[k].numpy()) for k in names)
    same1 = all(np.array_equal(lava1[k], emu[k].numpy()[:, :1]) for k in names)
    lava_total = tn / n
    lava_steady = (tn - t1) / (n - 1) if n > 1 else float("nan")
    emu_n, emu_all = te_n / n, te_all / x_all.shape[1]
    spikes = sum(int(emu[k].sum()) for k in names)
    print(f"graph: 64-{args.hidden}-10 LIF ({info['how']}), {args.steps} steps/sample, "
          f"torch threads {torch.get_num_threads()}; {spikes} spikes in the {n} Lava samples")
    print(f"Lava fixed_pt, {n} samples:       {tn:8.2f} s  -> {1e3 * lava_total:9.2f} ms/sample "
          f"(all included), {1e3 * lava_steady:9.2f} ms/sample steady state (1 sample: {t1:.2f} s)")
    print(f"emulator, same {n} samples:       {te_n:8.4f} s  -> {1e3 * emu_n:9.3f} ms/sample")
    print(f"emulator, {x_all.shape[1]} samples (test set): {te_all:8.4f} s  -> {1e3 * emu_all:9.3f} ms/sample")
    print(f"outputs identical (Lava vs emulator, every layer, every step): {same and same1}")
    print(f"ratio Lava/emulator, same {n} samples:  {lava_total / emu_n:8.1f}x  (steady state {lava_steady / emu_n:.1f}x)")
    print(f"ratio Lava/emulator, emulator batched over the test set: {lava_total / emu_all:8.1f}x "
          f"(steady state {lava_steady / emu_all:.1f}x); goal >= 100x: "
          f"{'met' if lava_steady / emu_all >= 100 else 'NOT met'}")


if __name__ == "__main__":
    main()
