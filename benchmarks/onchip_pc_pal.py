"""Predictive coding and PAL on chip (issue 8): measured figures.

``pc``: relaxed predictive coding (rule ``pc_onchip``, compiled by ``neurocredit.chip``: learned backward
weights with ΔB_l = −η f(v_l) ⊗ ε_{l+1}, no backward derivative, fixed predictions) trained on
chip in the fixed-point emulator (Lava's arithmetic, learning every step) on digits, 64-128-10
LIF, mean over seeds, beside the same rule and architecture trained in float torch
(``neurocredit.sim.train``, rate network, ReLU).  Goal: on chip >= 85 %.

``pal``: PAL on chip through the one rule compiler (``neurocredit.chip``: the rule ``pal``
compiles to a graded-rate circuit — OU noise from leaky integrators of a white-noise source,
high-passed potentials, W and B learning at every step with the engine's graded extension
factors rx, ry, no phases — run by the one emulator in fixed point) on the teacher-student task
(20-50-5 tanh teacher, student 20-50-5 graded ReLU), beside FA on the same on-chip task (the
same circuit and stream with B not plastic): ∠(B, W2ᵀ) over time.  Goals: PAL's final angle
< 30° and below FA's.  The student goes through NIR: neurocredit's torch model with rule
``pal`` (FA's initialisation) is written to a .nir file and read back with
``chip.session.circuit_from_nir``; the seeds run side by side as independent chips.
Before issue 13's generic path (the hand-written PAL stack, same task): "PAL final ∠(B, W2ᵀ)
mean 19.2° (per seed 20.6, 17.5, 19.5), FA 73.6°".

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


def pal_student(n_in: int, n_hidden: int, n_out: int, seed: int, scale: float = 256.0):
    """The PAL student as neurocredit's torch model with rule ``pal`` attached (exportable to NIR):
    W1, W2 and B with FA's initialisation (normal, variance 1/fan-in; B variance 1/n_out) drawn as
    integers round(scale · N) clipped to 9 bits, stored as those integers / scale, biases zero."""
    import numpy as np

    from neurocredit.rules import get_rule
    from neurocredit.sim.spiking import SpikingNetwork

    rng = np.random.default_rng(seed)
    ints = [np.clip(np.round(scale * rng.normal(0, 1 / np.sqrt(fan), shape)), -256, 255)
            for fan, shape in ((n_in, (n_hidden, n_in)), (n_hidden, (n_out, n_hidden)), (n_out, (n_hidden, n_out)))]
    net = SpikingNetwork([n_in, n_hidden, n_out], get_rule("pal"), seed=seed)
    with torch.no_grad():
        for layer, w in zip(net.layers, ints[:2]):
            layer.weight.copy_(torch.as_tensor(w / scale, dtype=layer.weight.dtype))
            layer.bias.zero_()
        net.net.B(0).copy_(torch.as_tensor(ints[2] / scale, dtype=net.net.B(0).dtype))
    return net


def angle_deg(b, w_t) -> float:
    """∠ in degrees between two matrices seen as vectors."""
    import numpy as np
    b, w_t = np.ravel(b).astype(float), np.ravel(w_t).astype(float)
    cos = b @ w_t / max(np.linalg.norm(b) * np.linalg.norm(w_t), 1e-12)
    return float(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))))


def part_pal(args, seeds: list[int]) -> None:
    import tempfile
    from pathlib import Path

    import numpy as np

    from neurocredit.chip import session as S
    from neurocredit.chip.emulator import emulate_chips
    from neurocredit.chip.ir import NO_LEARNING
    from neurocredit.chip.rate_circuits import rate_streams
    from neurocredit.data import teacher_student
    from neurocredit.nir.export import write

    steps = 20
    print(f"PAL on chip: teacher-student 20-50-5 (2000 samples), student 20-{args.pal_hidden}-5 "
          f"(torch model with rule 'pal' -> .nir file -> chip.session.circuit_from_nir, the generic compiler), "
          f"{args.pal_epochs} epochs x {steps} steps per sample, lr {args.pal_lr or 'default'}"
          f"{', dynamics from the rule' if args.pal_from_rule else ''}, emulated fixed point (seeds as chips in one run); "
          f"FA = same with B fixed; seeds {seeds}; torch threads {torch.get_num_threads()}", flush=True)
    t0 = time.perf_counter()
    circuits, streams = [], []
    for s in seeds:
        data = teacher_student(20, 50, 5, 2000, 500, seed=s)
        with tempfile.TemporaryDirectory() as tmp:
            path = write(pal_student(20, args.pal_hidden, 5, seed=s + 1), Path(tmp) / "pal.nir")
            _, circuit = S.circuit_from_nir(path, lr=args.pal_lr, rate=rate_spec(args))
        order = np.concatenate([np.random.default_rng(s + e).permutation(len(data.y_train))
                                for e in range(args.pal_epochs)])
        streams.append(rate_streams(circuit, data.x_train.numpy()[order], data.y_train.numpy()[order], steps, 0, s))
        circuits.append(circuit)
    n = len(streams[0]["input"])
    every = n // 10
    runs = {}
    for label, circs in (("PAL", circuits), ("FA", [c.with_plasticity({"B1": NO_LEARNING}) for c in circuits])):
        _, recs = emulate_chips(circs, streams, seeds, record=["err:layer2"], snapshot_every=every)
        runs[label] = recs
    finals = []
    for k, s in enumerate(seeds):
        b0, w20 = circuits[k].connection("B1").weights, circuits[k].connection("W2").weights
        log = {}
        for label, recs in runs.items():
            bs = recs[k].get("w:B1", [b0] * len(recs[k]["w:W2"]))
            log[label] = [angle_deg(b, w2.T) for b, w2 in zip(bs, recs[k]["w:W2"])]
        finals.append((log["PAL"][-1], log["FA"][-1]))
        mse = {label: float((recs[k]["err:layer2"][-every:].astype(float) ** 2).mean()) for label, recs in runs.items()}
        print(f"  seed {s}: step      " + " ".join(f"{every * (i + 1):6d}" for i in range(len(log["PAL"]))))
        print("    ∠(B,W2ᵀ) PAL (deg) " + " ".join(f"{a:6.1f}" for a in log["PAL"])
              + f"   (start {angle_deg(b0, w20.T):.1f})")
        print("    ∠(B,W2ᵀ) FA  (deg) " + " ".join(f"{a:6.1f}" for a in log["FA"]))
        print(f"    mse (int units) PAL {mse['PAL']:.1f}, FA {mse['FA']:.1f}", flush=True)
    print(f"  products: W: {circuits[0].meta['dw']};  B: {circuits[0].meta['dw_B']}   "
          f"({time.perf_counter() - t0:.0f} s)")
    mp = statistics.mean(p for p, _ in finals)
    mf = statistics.mean(f for _, f in finals)
    ok30 = all(p < 30 for p, _ in finals)
    okfa = all(p < f for p, f in finals)
    print(f"PAL final ∠(B, W2ᵀ) mean {mp:.1f}° (per seed {', '.join(f'{p:.1f}' for p, _ in finals)}), FA "
          f"{mf:.1f}°; < 30° every seed: {'met' if ok30 else 'NOT met'}; below FA every seed: "
          f"{'met' if okfa else 'NOT met'}", flush=True)


def rate_spec(args):
    """RateSpec for --pal-from-rule (dynamics and constants from the rule's params), else None (the default)."""
    from neurocredit.chip.rate import RateSpec
    return RateSpec(from_rule=True) if args.pal_from_rule else None


def pal_digits_chip(hidden: int, samples: int, seed: int, **overrides) -> tuple[float, float]:
    """PAL on chip on digits (64-hidden-10, ``samples`` samples, one epoch, 16 + 4 steps each, the rule's
    defaults: :func:`neurocredit.chip.circuits.default_spec`): test accuracy before and after."""
    from neurocredit.chip import circuits as C
    from neurocredit.chip import session as S
    from neurocredit.chip.compile import compile_graph
    from neurocredit.data import load_digits
    from neurocredit.rules import get_rule

    rule, sizes = get_rule("pal"), [64, hidden, 10]
    prog = compile_graph(S.initial_graph(sizes, seed=seed))
    circuit = C.build_circuit(prog.fixed_circuit, rule, C.random_feedback(rule, sizes, seed), C.default_spec(rule, 1, **overrides),
                              float_base=prog.float_circuit)
    timing = S.stream_timing(1)
    _, hist = S.train(circuit, load_digits(seed=seed, standardise=False), 1, steps=timing.steps, blank=timing.blank,
                      seed=seed, samples=samples, target_delay=timing.target_delay, log=lambda s: None, progress=False)
    return hist[0]["test_acc"], hist[-1]["test_acc"]


def pal_digits_float(hidden: int, samples: int, seed: int, lr: float) -> tuple[float, float]:
    """The same PAL in float (``neurocredit.sim.noisy_prospective.train_pal``: the rule's dt, τ's, noise, 20 steps per
    sample, batch 1, η_B = lr · lr_scale) from the same initial W (the NIR graph's) and B, on the same
    ``samples`` training samples (train_pal's own order), ReLU hidden, linear output, MSE on one-hot targets:
    test accuracy before and after."""
    import numpy as np

    from neurocredit.chip import circuits as C
    from neurocredit.chip import session as S
    from neurocredit.chip.compile import compile_graph
    from neurocredit.data import Dataset, load_digits
    from neurocredit.rules import get_rule
    from neurocredit.sim.network import Network
    from neurocredit.sim.noisy_prospective import train_pal

    rule, sizes = get_rule("pal"), [64, hidden, 10]
    data = load_digits(seed=seed, standardise=False)
    ws = [c.weights for c in compile_graph(S.initial_graph(sizes, seed=seed)).float_circuit.connections]
    net = Network(sizes, rule, "relu", seed=seed)
    with torch.no_grad():
        for layer, w in zip(net.layers, ws):
            layer.weight.copy_(torch.as_tensor(w, dtype=layer.weight.dtype))
            if layer.bias is not None:
                layer.bias.zero_()
        for l, b in enumerate(C.random_feedback(rule, sizes, seed)):
            net.B(l).copy_(torch.as_tensor(b, dtype=net.B(l).dtype))
    order = torch.as_tensor(np.random.default_rng(seed).permutation(len(data.y_train))[:samples])
    onehot = lambda y: torch.nn.functional.one_hot(y, 10).to(torch.float32)  # noqa: E731
    sub = Dataset("digits", data.x_train[order], onehot(data.y_train[order]), data.x_test, onehot(data.y_test), None)

    def acc() -> float:
        with torch.no_grad():
            return float((net(data.x_test).argmax(1) == data.y_test).float().mean())

    before = acc()
    train_pal(net, sub, 1, lr, lr * rule.feedback.lr_scale, batch_size=1, log_every=10 ** 9, seed=seed, loss="mse")
    return before, acc()


def part_pal_digits(args, seeds: list[int]) -> None:
    print(f"PAL on digits 64-{args.hidden_digits}-10, {args.samples} training samples, one epoch: on chip (emulator, "
          f"lr {args.pal_lr or 'default'}{', dynamics from the rule' if args.pal_from_rule else ''}, 16 + 4 steps per sample) beside float PAL (sim.noisy_prospective.train_pal, same initial "
          f"W and B, same samples (its own order), 20 steps of dt per sample, batch 1, lr {args.float_lr}, "
          f"η_B = lr · lr_scale); seeds {seeds}; torch threads {torch.get_num_threads()}", flush=True)
    chip, flt = [], []
    for s in seeds:
        t0 = time.perf_counter()
        c0, c1 = pal_digits_chip(args.hidden_digits, args.samples, s, lr=args.pal_lr, rate=rate_spec(args))
        f0, f1 = pal_digits_float(args.hidden_digits, args.samples, s, args.float_lr)
        chip.append(c1)
        flt.append(f1)
        print(f"  seed {s}: on chip {100 * c0:.1f} % -> {100 * c1:.1f} %, float {100 * f0:.1f} % -> {100 * f1:.1f} %"
              f"   ({time.perf_counter() - t0:.0f} s)", flush=True)
    sd = lambda v: statistics.stdev(v) if len(v) > 1 else 0.0  # noqa: E731
    print(f"PAL digits test accuracy: on chip {100 * statistics.mean(chip):.2f} ± {100 * sd(chip):.2f} %, float "
          f"{100 * statistics.mean(flt):.2f} ± {100 * sd(flt):.2f} %", flush=True)


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
    ap.add_argument("--pal-lr", type=float, default=None, help="pal, pal_digits: the chip's lr (default: the "
                    "compiler's, chip.circuits.DYNAMICS['pal']; with --pal-from-rule η per unit time)")
    ap.add_argument("--pal-from-rule", action="store_true", help="pal, pal_digits: RateSpec.from_rule (the rule's "
                    "dt, τ's, noise_std, η per unit time, η_B = η · lr_scale)")
    ap.add_argument("--samples", type=int, default=600, help="pal_digits: training samples")
    ap.add_argument("--hidden-digits", type=int, default=64, help="pal_digits: hidden width")
    ap.add_argument("--float-lr", type=float, default=0.2, help="pal_digits: float PAL's η (per unit time)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    seeds = [int(s) for s in args.seeds.split(",")]
    parts = args.parts.split(",")
    if "pc" in parts:
        part_pc(args, seeds)
    if "pal" in parts:
        part_pal(args, seeds)
    if "pal_digits" in parts:
        part_pal_digits(args, seeds)


if __name__ == "__main__":
    main()
