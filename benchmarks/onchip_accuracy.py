"""Emulated on-chip training (fixed point, only local information) on digits: mean test accuracy
over seeds for DFA, FA, DRTP (and sparse DFA), beside the same architecture's float torch accuracy
with the same rule (``neurocredit.sim.spiking.train_spiking``, LIF readout).

On chip: weights learn every step with the compiled Loihi3FLearningRule (pre spike x the post
neuron's error, 8-bit weights, stochastic rounding as Lava's engine), errors reach the hidden
neurons through the rule's feedback connections; the emulator reproduces Lava weight for weight
(tests/test_lava_learning.py).  Goals (issue 7): DFA >= 88 %, FA >= 88 %, DRTP >= 80 %.

    python benchmarks/onchip_accuracy.py [--rules dfa,fa,drtp] [--seeds 0,1,2] [--epochs 5]

Measured (defaults: 5 epochs, lr 2^-4 x0.6 per epoch, target delay = Dense hops, 64-128-10;
FA's pathway is then the output layer's error through a fixed random B, float FA = float DFA):

    dfa   91.39 ± 2.17 (float 93.15 ± 0.32)   seeds 92.8 92.5 88.9
    fa    90.65 ± 1.25 (float 93.15 ± 0.32)   seeds 89.4 91.9 90.6
    drtp  84.91 ± 1.53 (float 87.13 ± 4.99)   seeds 83.9 86.7 84.2

After issue 13 (one rule compiler, neurocredit.chip; seeds run side by side as independent chips,
each equal to its own run): dfa 91.39 ± 2.17, fa 90.65 ± 1.25 (bit for bit the figures above,
see benchmarks/onchip_regression.py).  DRTP's lr_scale 0.5 is now applied on chip: at the shared
base lr 2^-4 (effective 2^-5) drtp 80.83 ± 2.65 (seeds 78.3 83.6 80.6); with --lr 0.125 (effective
2^-4, the rate the figure above had) 84.91 ± 1.53 (seeds 83.9 86.7 84.2).  kp 81.39 ± 9.15,
wm 93.15 ± 1.63 (unchanged; 681 s and 159 s for the three seeds together).
Kolen-Pollack (learned B on TransposedLearningDense, decay −λ·lr·w spread over 16 steps as a
u<d> product; ``--rules kp``; float: 10 epochs, 94.44 ± 0.28):

    kp, third shift 4   81.39 ± 9.15   seeds 76.4 91.9 75.8
    kp, third shift 6   85.09 ± 5.16   seeds 80.8 90.8 83.6   (--third-shift 6)

B grows from its initial scale (feedback_scale 64: |B| ~ 4) toward W's (~120), so the hidden
error B e >> shift grows with it; a larger shift compensates.

Before (constant lr, target delay 0): FA 87.87 ± 6.05 (seeds 81.1 92.8 89.7), DFA 90.56 ± 2.93,
DRTP 83.80 ± 5.23.

Two hidden layers (``--fa-hidden 2``: FA's B1 carries layer 2's error, B2 the output's).  The
streaming defaults now follow the depth (``learning.stream_timing``, ``default_gate``):

* the untrained 64-128-64-10 output answers ~6 steps after the input starts (3 for one hidden
  layer): target delay 2 x hops;
* FA's layer-1 error arrives 2 steps after DFA's; with 8 blank steps 18.8 % of layer 1's x0·e
  product fell on the next sample (the previous label's error): blank 4 x hops;
* the box-car derivative gate lets weights only ratchet up (a neuron pushed below the gate stops
  learning); the hidden layers saturated (DFA, seed 0: 35.6 % with gate 0.6, 90.0 % without): off;
* 16 input steps held FA at 85.93 ± 1.58 (seeds 84.2 87.2 86.4, blank 12, delay 6, no gate):
  the 64-neuron second layer's rate code is coarse; 24 steps:

    fa 64-128-64-10   93.15 ± 0.80 (float 90.28 ± 1.67)   seeds 93.6 93.6 92.2   steps 24 blank 12
                      delay 6 gate None  (810 s)

  DFA 64-128-64-10 with the same defaults: 90.8 % (seed 0).  Three hidden layers
  (64-128-64-32-10, steps 24, blank 16, delay 8, seed 0): 84.7 %, not tuned further.

Weight mirror (``--rules wm``; B learns in scheduled mirror phases, ``neurocredit.chip.phases``):
noise spikes p = 1/8 x the next layer's response minus its mean input, 2048 steps before
every 256 training samples, η_B 0.0016; B read at random FA feedback's size):

    wm 64-128-10      93.15 ± 1.63 (float 92.87 ± 0.89)   seeds 92.5 95.0 91.9   (308 s)
    wm 64-128-64-10   92.96 ± 1.05 (float 91.67 ± 1.00)   seeds 92.5 94.2 92.2   (893 s, --fa-hidden 2)

With the response read >> 4 for every layer, B settled at |B| ≈ 18 / 30 (FA's: 4.5 / 6.4) and
64-128-64-10 reached 66.4 % (seed 0); without the mean-input bias ∠(B, Wᵀ) stayed at 54°.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch

GOALS = {"dfa": 0.88, "fa": 0.88, "drtp": 0.80}   # issue 7 (kp: no goal, reported)


def onchip(rule_name: str, seeds: list[int], epochs: int, hidden: list[int], steps: int, lr: float,
           target_delay: int = 0, lr_decay: float = 1.0, third_shift: int = 4, gate: float | None = 0.3,
           blank: int = 4) -> list[float]:
    """Final test accuracy per seed; the seeds run side by side as independent chips in one
    vectorised emulator run (session.train_chips: each equals its own single-chip run)."""
    from neurocredit.chip import circuits as C
    from neurocredit.chip import session as S
    from neurocredit.chip.compile import compile_graph
    from neurocredit.data import load_digits
    from neurocredit.rules import resolve_rule

    rule = resolve_rule(rule_name)
    sizes = [64, *hidden, 10]
    datas, circuits = [], []
    for seed in seeds:
        datas.append(load_digits(seed=seed, standardise=False))
        base = compile_graph(S.initial_graph(sizes, seed=seed)).fixed_circuit
        circuits.append(C.build_circuit(base, rule, C.random_feedback(rule, sizes, seed),
                                        C.OnChipSpec(lr=lr, gate=gate, third_shift=third_shift)))
    _, hists = S.train_chips(circuits, datas, epochs, seeds, steps=steps, blank=blank,
                             log=lambda s: print(f"  {rule.name} {s}", file=sys.stderr, flush=True),
                             target_delay=target_delay, lr_decay=lr_decay)
    return [h[-1]["test_acc"] for h in hists]


def float_torch(rule_name: str, seed: int, epochs: int, hidden: list[int], steps: int) -> float:
    from neurocredit.data import load_digits
    from neurocredit.rules import resolve_rule as get_rule
    from neurocredit.sim.spiking import SpikingConfig, SpikingTrainConfig, evaluate, train_spiking

    data = load_digits(seed=seed, standardise=False)
    cfg = SpikingTrainConfig(epochs=epochs, seed=seed, spiking=SpikingConfig(steps=steps, readout="lif"))
    res = train_spiking(get_rule(rule_name), data, hidden, cfg)
    return evaluate(res.net, data.x_test, data.y_test)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rules", default="dfa,fa,drtp")
    ap.add_argument("--seeds", default="0,1,2")
    # Defaults (measured, see the module docstring): 5 epochs with the learning rate x0.6 per epoch
    # (re-quantised to the engine's m*2^k grid) and the target delayed by the network's number of
    # Dense hops.  With a constant rate the last-iterate weights of per-step stochastic updates are
    # noisy (FA seeds 81.1 / 92.8 / 89.7 %); with target_delay 0 the target is one-hot while the
    # output is still silent (hops) and off while it still answers, a systematic wrong error at
    # every sample's edges.
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--lr-decay", type=float, default=0.6, help="learning rate factor per epoch")
    ap.add_argument("--target-delay", type=int, default=-1, help="steps the target lags the input "
                    "(-1: learning.stream_timing's default for the depth)")
    ap.add_argument("--float-epochs", type=int, default=10, help="0: skip the float torch column")
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--steps", type=int, default=-1, help="input steps per sample (-1: stream_timing's "
                    "default, 16 for one hidden layer, 24 deeper)")
    ap.add_argument("--lr", type=float, default=2 ** -4)
    ap.add_argument("--third-shift", type=int, default=4, help="hidden error right shift")
    ap.add_argument("--gate", type=float, default=None, help="box-car derivative gate (x threshold); < 0: off "
                    "(default: learning.default_gate, 0.3 for one hidden layer, off deeper)")
    ap.add_argument("--blank", type=int, default=-1, help="silent steps between samples (-1: stream_timing's)")
    ap.add_argument("--fa-hidden", type=int, default=1, help="hidden layers of the networks whose feedback "
                    "comes from the next layer (FA, KP, WM), widths hidden, hidden/2, ... (1: the pathway "
                    "from the output layer, FA's the same as DFA's)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    from neurocredit.chip.circuits import default_gate
    from neurocredit.chip.session import stream_timing
    from neurocredit.rules import resolve_rule as get_rule
    seeds = [int(s) for s in args.seeds.split(",")]
    fa_hidden = [args.hidden // 2 ** i for i in range(args.fa_hidden)]
    print(f"digits, 64-{args.hidden}-10 LIF (FA, KP, WM: 64-{'-'.join(map(str, fa_hidden))}-10); on chip: {args.epochs} "
          f"epochs (lr {args.lr:g} x{args.lr_decay:g}/epoch, third shift {args.third_shift}) streamed through the "
          f"fixed-point emulator; float: {args.float_epochs} epochs of neurocredit.sim.spiking; seeds {seeds}; "
          f"torch threads {torch.get_num_threads()}")
    print(f"{'rule':<6}{'on-chip fixed point':>24}{'float torch':>22}{'goal':>8}  per seed (on chip)  timing")
    for rule in args.rules.split(","):
        hidden = fa_hidden if get_rule(rule).feedback.source == "next" else [args.hidden]
        timing = stream_timing(len(hidden))
        steps = timing.steps if args.steps < 0 else args.steps
        delay = timing.target_delay if args.target_delay < 0 else args.target_delay
        blank = max(timing.blank if args.blank < 0 else args.blank, delay)
        gate = default_gate(get_rule(rule), len(hidden)) if args.gate is None else (None if args.gate < 0 else args.gate)
        t0 = time.perf_counter()
        chip = onchip(rule, seeds, args.epochs, hidden, steps, args.lr, delay, args.lr_decay, args.third_shift,
                      gate, blank)
        flt = [float_torch(rule, s, args.float_epochs, hidden, steps) for s in seeds] if args.float_epochs else [0.0]
        goal = GOALS.get(rule)
        m, sd = statistics.mean(chip), (statistics.stdev(chip) if len(chip) > 1 else 0.0)
        fm, fsd = statistics.mean(flt), (statistics.stdev(flt) if len(flt) > 1 else 0.0)
        status = "-" if goal is None else (f"{100 * goal:.0f} {'met' if m >= goal else 'NOT met'}")
        print(f"{rule:<6}{100 * m:>17.2f} ± {100 * sd:4.2f}{100 * fm:>15.2f} ± {100 * fsd:4.2f}  {status:>12}  "
              + " ".join(f"{100 * a:.1f}" for a in chip) + f"   steps {steps} blank {blank} delay {delay} gate "
              f"{gate}  ({time.perf_counter() - t0:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
