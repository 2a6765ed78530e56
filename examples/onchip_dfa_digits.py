"""A spiking MLP learns digits on chip with a local rule (default DFA): every weight update is
a Loihi three-factor rule (pre spike x the post neuron's error), the error reaches the hidden
neurons through fixed random feedback connections that exist in the Lava graph.

``--backend emulator`` streams the whole training set through the fixed-point emulator of the
chip (bit-exact with Lava's learning engine); ``--backend lava`` runs a shorter stretch in Lava
itself (Loihi2SimCfg fixed point).  Prints the test accuracy per epoch, writes a plot.

    python examples/onchip_dfa_digits.py [--rule dfa] [--backend emulator|lava] [--epochs 4]
                                         [--samples N] [--hidden 128] [--out runs/onchip]
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rule", default="dfa", help="fa | dfa | sdfa | drtp | kp | wm")
    ap.add_argument("--backend", default="emulator", choices=["emulator", "lava"])
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--samples", type=int, default=None, help="training samples per epoch (default: all)")
    ap.add_argument("--hidden", type=int, nargs="+", default=[128])
    ap.add_argument("--steps", type=int, default=-1, help="input steps per sample (-1: "
                    "learning.stream_timing, 16 for one hidden layer, 24 deeper)")
    ap.add_argument("--lr", type=float, default=2 ** -4)
    ap.add_argument("--lr-decay", type=float, default=0.6, help="learning rate factor per epoch (less "
                    "last-iterate noise of per-step updates; benchmarks/onchip_accuracy.py)")
    ap.add_argument("--target-delay", type=int, default=-1, help="steps the target lags the input "
                    "(-1: stream_timing's, so that target and output answer line up)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="runs/onchip")
    args = ap.parse_args()
    torch.set_num_threads(1)

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from neurocredit.data import load_digits
    from neurocredit.io_utils import atomic_path, write_json
    from neurocredit.chip import circuits as C
    from neurocredit.chip import session as S
    from neurocredit.chip.compile import compile_graph
    from neurocredit.commands.learn import runner
    from neurocredit.rules import resolve_rule

    data = load_digits(seed=args.seed, standardise=False)
    sizes = [64, *args.hidden, 10]
    base = compile_graph(S.initial_graph(sizes, seed=args.seed)).fixed_circuit
    rule = resolve_rule(args.rule)
    feedback = C.random_feedback(rule, sizes, args.seed)
    spec = C.default_spec(rule, len(args.hidden), lr=args.lr)
    timing = S.stream_timing(len(args.hidden))
    steps = args.steps if args.steps > 0 else timing.steps
    circuit = C.build_circuit(base, rule, feedback, spec)
    print(f"on-chip {rule.name} ({rule.title}), {'-'.join(map(str, sizes))} LIF, dw = {circuit.meta['dw']}")
    print(f"feedback: {rule.feedback_needed()}; backend {args.backend}")
    delay = timing.target_delay if args.target_delay < 0 else args.target_delay
    print(f"{steps} steps + {max(timing.blank, delay)} blank per sample, target delay {delay}, "
          f"derivative gate {spec.gate}")
    circuit, history = S.train(circuit, data, args.epochs, steps=steps, blank=max(timing.blank, delay),
                               seed=args.seed, run=runner(args.backend), label=args.backend,
                               samples=args.samples, target_delay=delay, lr_decay=args.lr_decay)
    out = Path(args.out)
    write_json(out / f"{args.rule}_{args.backend}.json", {"rule": args.rule, "backend": args.backend,
                                                          "sizes": sizes, "history": history})
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot([h["samples"] for h in history], [100 * h["test_acc"] for h in history], marker="o")
    ax.set(xlabel="training samples streamed", ylabel="test accuracy (%)",
           title=f"on-chip {rule.name}, {args.backend} (fixed point)")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    png = out / f"{args.rule}_{args.backend}.png"
    with atomic_path(png) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    print(f"final test accuracy {100 * history[-1]['test_acc']:.2f} % (fixed-point emulator inference with "
          f"the learned weights); wrote {png}")
    if args.backend == "lava":    # confirm the test accuracy with Lava inference itself
        from neurocredit.lava.run import run_lava
        inf = S.inference_circuit(circuit, circuit.weights())
        x = np.random.default_rng(args.seed + 999).random((steps, *data.x_test.shape)) < data.x_test.numpy()[None]
        from neurocredit.neurons.decision import decide
        name = inf.outputs[0]       # the chip's decision: the most spikes, ties by v after the last step
        rec = run_lava(inf, x.astype(np.int64), voltage=[name])
        counts = rec[name].sum(axis=0)
        acc = float((decide(counts, rec[f"v:{name}"][-1]) == data.y_test.numpy()).mean())
        print(f"Lava inference (Loihi2SimCfg fixed_pt) on the {len(counts)} test samples: {100 * acc:.2f} %")


if __name__ == "__main__":
    main()
