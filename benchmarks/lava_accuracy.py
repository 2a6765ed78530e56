"""A spiking digits network trained by neurocredit, classified on Lava fixed point vs its torch
float accuracy (goal: within 2 percentage points).

The network is trained by ``neurocredit.sim.spiking`` (local rule, default DFA), exported to NIR
(``neurocredit.nir.export``), compiled for the Loihi 2 profile and run on
``Loihi2SimCfg(select_tag="fixed_pt")``.  The same seeded input spike trains go to:

- torch float: ``neurocredit.nir.simulate`` on the NIR graph, full test set;
- emulator fixed point (bit-exact with Lava), full test set;
- Lava fixed point, the first ``--lava-samples`` test samples (default: the whole test set);
  the torch and emulator accuracies on that same subset are printed beside it, and the Lava
  outputs are checked against the emulator's.

Outputs are read in NIR time (each Lava Dense delays by one step; the input is padded).

    python benchmarks/lava_accuracy.py [--lava-samples 360] [--hidden 128] [--epochs 10]
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--rule", default="dfa")
    ap.add_argument("--readout", default="li", choices=["li", "lif"])
    ap.add_argument("--lava-samples", type=int, default=360, help="test samples run in Lava (default: all 360)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from neurocredit.chip import sample_graphs
    from neurocredit.chip.compile import compile_graph
    from neurocredit.lava.report import format_report
    from neurocredit.lava.run import run_aligned
    from neurocredit.nir.simulate import simulate

    t0 = time.perf_counter()
    graph, info = sample_graphs.digits_mlp(hidden=args.hidden, epochs=args.epochs, seed=args.seed,
                                 steps=args.steps, readout=args.readout, rule=args.rule)
    data = info["data"]
    y = data.y_test.numpy()
    print(f"trained {info['how']} 64-{args.hidden}-10 ({args.readout} readout, {args.steps} steps) "
          f"on digits in {time.perf_counter() - t0:.1f} s; trainer's own test accuracy "
          f"{100 * info['trainer_accuracy']:.2f} %" if info["trainer_accuracy"] is not None else "")
    program = compile_graph(graph, fixed_point=True)
    print(format_report(program, True))

    x = sample_graphs.rate_code(data.x_test, args.steps, seed=args.seed + 1000)       # [T, 360, 64]
    score = lambda out, idx: float((out.mean(0).argmax(1) == y[idx]).mean())  # noqa: E731
    full = np.arange(len(y))
    with torch.no_grad():
        ref = simulate(graph, torch.as_tensor(x, dtype=torch.float32), dt=program.dt)
    ref = ref.numpy() if not isinstance(ref, dict) else next(iter(ref.values())).numpy()
    emu = run_aligned(program, x, backend="emulator")["output"]
    emu_float = run_aligned(program, x, backend="emulator", fixed_point=False)["output"]
    n = min(args.lava_samples, len(y))
    sub = np.arange(n)
    t0 = time.perf_counter()
    lava = run_aligned(program, x[:, :n], backend="lava", seed=args.seed)["output"]
    t_lava = time.perf_counter() - t0
    same = np.array_equal(lava, emu[:, :n])
    rows = [("torch float (nir.simulate)", score(ref, full), score(ref[:, :n], sub)),
            ("emulator float (Lava float model)", score(emu_float, full), score(emu_float[:, :n], sub)),
            ("emulator fixed point", score(emu, full), score(emu[:, :n], sub)),
            ("Lava Loihi2SimCfg fixed_pt", score(lava, sub) if n == len(y) else None, score(lava, sub))]
    print(f"\n{'backend':<36}{'full test set (' + str(len(y)) + ')':>22}{'Lava subset (' + str(n) + ')':>20}")
    for name, a_full, a_sub in rows:
        f = f"{100 * a_full:.2f} %" if a_full is not None else "-"
        print(f"{name:<36}{f:>22}{100 * a_sub:>18.2f} %")
    gap_sub = 100 * (score(ref[:, :n], sub) - score(lava, sub))
    gap_full = 100 * (score(ref, full) - score(emu, full))
    print(f"\nLava fixed point vs torch float on the Lava subset: {gap_sub:+.2f} pp "
          f"(goal: within 2 pp -> {'met' if abs(gap_sub) <= 2 else 'NOT met'})")
    print(f"emulator fixed point (bit-exact with Lava) vs torch float, full test set: {gap_full:+.2f} pp "
          f"(goal within 2 pp -> {'met' if abs(gap_full) <= 2 else 'NOT met'})")
    print(f"Lava outputs identical to the emulator's on the subset: {same}")
    print(f"Lava run: {n} samples x {args.steps + max(program.depth.values())} steps in {t_lava:.1f} s "
          f"({n / t_lava:.2f} samples/s, torch threads {torch.get_num_threads()})")


if __name__ == "__main__":
    main()
