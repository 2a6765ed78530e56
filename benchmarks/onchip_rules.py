"""Every local rule through the one rule compiler: compiles or is refused with what the chip
lacks; each that compiles learns on chip on digits in the fixed-point emulator (64-H-10 LIF,
one short epoch, Lava's arithmetic), test accuracy of the learned integer weights beside the
untrained network's.  The on-chip verdict is the compiler's (neurocredit.chip.compile_status).

    python benchmarks/onchip_rules.py [--samples 600] [--hidden 64] [--seed 0] [--rules a,b,...]
"""
from __future__ import annotations

import argparse
import time

import torch


def learn_on_digits(rule, hidden: int, samples: int, seed: int) -> tuple[float, float, float]:
    from neurocredit.chip import circuits as C
    from neurocredit.chip import session as S
    from neurocredit.chip.compile import compile_graph
    from neurocredit.data import load_digits

    data = load_digits(seed=seed, standardise=False)
    sizes = [64, hidden, 10]
    prog = compile_graph(S.initial_graph(sizes, seed=seed))
    circuit = C.build_circuit(prog.fixed_circuit, rule, C.random_feedback(rule, sizes, seed), C.default_spec(rule, 1),
                              float_base=prog.float_circuit)    # graded-rate dynamics start from the float weights
    timing = S.stream_timing(1)
    _, hist = S.train(circuit, data, 1, steps=timing.steps, blank=timing.blank, seed=seed, samples=samples,
                      target_delay=timing.target_delay, log=lambda s: None)
    return hist[0]["test_acc"], hist[-1]["test_acc"], hist[-1]["seconds"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=600)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rules", default="", help="comma-separated names or .toml files (default: every local "
                    "rule of the library with a feed-forward network)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    from neurocredit.chip import compile_status
    from neurocredit.rules import RULES, resolve_rule

    if args.rules:
        rules = [resolve_rule(r) for r in args.rules.split(",")]
    else:
        rules = [r for r in RULES.values() if r.local and r.feedback is not None
                 and "eligibility" not in {f.value for t in r.forward for f in t.factors}]
    print(f"digits 64-{args.hidden}-10 LIF, on chip in the fixed-point emulator: {args.samples} training samples "
          f"(16 steps + 4 blank), seed {args.seed}; torch threads {torch.get_num_threads()}")
    n_ok = 0
    for rule in rules:
        ok, why = compile_status(rule)
        if not ok:
            print(f"{rule.name:<14} refused: {why}", flush=True)
            continue
        t0 = time.perf_counter()
        before, after, _ = learn_on_digits(rule, args.hidden, args.samples, args.seed)
        n_ok += after > before + 0.1
        print(f"{rule.name:<14} on chip: test accuracy {100 * before:5.1f} % -> {100 * after:5.1f} %   "
              f"({time.perf_counter() - t0:.0f} s)", flush=True)
    print(f"{n_ok} of {len(rules)} local rules compile and learn on chip (test accuracy +10 points or more)")


if __name__ == "__main__":
    main()
