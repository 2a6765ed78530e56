"""`neurocredit learn`: on-chip learning of a NIR file that carries its rule, on Lava
(Loihi2SimCfg fixed point) or the fixed-point emulator, with the emulator checked against Lava.

    neurocredit export --rule dfa --out dfa.nir          # or any NIR file + attach_rule
    neurocredit learn dfa.nir --backend emulator --epochs 3
    neurocredit learn dfa.nir --backend lava --samples 20 --check 60

The rule and its feedback matrices are read from the file; the network is compiled by the
Lava compiler and turned into its on-chip learning circuit (:mod:`neurocredit.lava.learning`:
the DFA family and Kolen-Pollack; :mod:`neurocredit.lava.onchip_pc`: relaxed predictive
coding; :mod:`neurocredit.lava.onchip_pal`: PAL on a teacher-student task).  Training streams
the digits training set (rate-coded) sample by sample, learning every step; the test accuracy
of the learned integer weights is printed after every epoch.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from neurocredit.errors import UserError


def _spec(args: argparse.Namespace, rule, n_hidden: int):
    from neurocredit.lava.learning import OnChipSpec, default_gate
    pc = rule.dynamics == "predictive_coding"
    gate = args.gate if args.gate is not None else (None if pc else default_gate(rule, n_hidden))
    if gate is not None and gate < 0:
        gate = None
    shift = args.third_shift if args.third_shift is not None else (7 if pc else 4)
    return OnChipSpec(lr=args.lr, third_shift=shift, gate=gate)


def check_backends(circuit, data, samples: int, steps: int, blank: int, delay: int, seed: int) -> tuple[bool, int]:
    """Stream ``samples`` training samples through the emulator and through Lava from the same
    start (and, for weight mirror, a mirror phase as long): (all learned weights equal, number
    of learning steps)."""
    import numpy as np

    from neurocredit.lava import learning as LR
    from neurocredit.sim.emulator import emulate_learning
    x, y = data.x_train.numpy()[:samples], data.y_train.numpy()[:samples]
    stream = LR.sample_stream(x, y, circuit.meta["n_target"], steps, blank, seed, delay)
    w_emu, _ = emulate_learning(circuit, stream, rng_seed=seed)
    w_lava, _ = LR.run_lava(circuit, stream, rng_seed=seed)
    same = all(np.array_equal(w_emu[c.name], w_lava[c.name]) for c in circuit.connections if c.plastic)
    n = len(next(iter(stream.values())))
    if circuit.meta.get("mirror"):             # weight mirror: one mirror phase on both backends too
        from neurocredit.lava.onchip_wm import run_mirror
        start = {c.name: np.asarray(c.weights) for c in circuit.connections}
        b_emu = run_mirror(circuit, start, seed, "emulator", steps=n)
        b_lava = run_mirror(circuit, start, seed, "lava", steps=n)
        same = same and all(np.array_equal(b_emu[k], b_lava[k]) for k in b_emu)
        n *= 2
    return same, n


def learn(args: argparse.Namespace) -> int:
    import numpy as np
    import torch

    from neurocredit.data import load_digits
    from neurocredit.lava import learning as LR

    torch.set_num_threads(args.threads)
    path = Path(args.file)
    if not path.is_file():
        raise UserError(f"no such NIR file: {path}")
    if args.epochs < 0 or (args.steps is not None and args.steps < 1) or (args.samples is not None and args.samples < 1):
        raise UserError("--epochs must be >= 0, --steps and --samples positive")
    graph, rule, learning, _ = LR.read_learning_graph(_with_rule(path, args))
    if rule.dynamics == "pal":
        return _learn_pal(args, path, graph)
    n_hidden = len(learning.get("feedback", []))          # one feedback matrix per hidden layer
    circuit = LR.circuit_from_nir(graph, _spec(args, rule, n_hidden), args.target)
    data = load_digits(seed=args.seed, standardise=False)
    if circuit.n_in != data.x_train.shape[1] or circuit.meta["n_target"] != data.n_out:
        raise UserError(f"the network is {circuit.n_in} -> {circuit.meta['n_target']}; on-chip learning here "
                        f"trains on digits ({data.x_train.shape[1]} -> {data.n_out})")
    timing = LR.stream_timing(n_hidden)
    steps = args.steps or timing.steps
    delay = timing.target_delay
    blank = max(timing.blank if args.blank is None else args.blank, delay)
    print(f"{path.name}: rule {rule.name} ({rule.title}); on-chip circuit: "
          + ", ".join(f"{p.name} {p.n}" for p in circuit.populations if p.kind == "third")
          + f"; {steps} steps + {blank} blank per sample, target delay {delay}; dw = {circuit.meta['dw']}" + (f"; dw(B) = {circuit.meta['dw_B']}" if "dw_B" in circuit.meta else ""))
    if args.check:
        t0 = time.perf_counter()
        same, n = check_backends(circuit, data, args.check, steps, blank, delay, args.seed)
        print(f"emulator vs Lava fixed point, {args.check} samples ({n} learning steps): weights "
              f"{'identical' if same else 'DIFFER'} ({time.perf_counter() - t0:.1f} s)")
        if not same:
            return 1
    history = LR.train(circuit, data, args.epochs, steps=steps, blank=blank, seed=args.seed,
                       backend=args.backend, samples=args.samples, target_delay=delay, lr_decay=args.lr_decay)
    if args.out:
        from neurocredit.io_utils import atomic_path
        with atomic_path(args.out, suffix=".npz") as tmp:
            np.savez(tmp, **{c.name: np.asarray(c.weights) for c in circuit.connections if c.plastic})
        with atomic_path(Path(args.out).with_suffix(".json"), suffix=".json") as tmp:
            Path(tmp).write_text(json.dumps({"rule": rule.name, "backend": args.backend, "history": history},
                                            indent=1))
        print(f"wrote {args.out} (learned integer weights) and {Path(args.out).with_suffix('.json')}")
    return 0


def _with_rule(path: Path, args: argparse.Namespace):
    """The NIR file, or with ``--rule`` its network carrying that rule instead (a library name or
    a .toml rule file; fresh feedback matrices drawn with ``--seed``)."""
    if not args.rule:
        return path
    from neurocredit.nir.load import attach_rule, read_graph
    from neurocredit.rules import resolve_rule
    return attach_rule(read_graph(path), resolve_rule(args.rule), seed=args.seed)


def _learn_pal(args: argparse.Namespace, path: Path, graph) -> int:
    """PAL on a teacher-student task sized to the file's network: the emulator runs PAL and FA
    (B fixed) and prints ∠(B, W2ᵀ); Lava runs PAL for a stretch (``--samples``) and, with
    ``--check``, the emulator on the same stream for a weight-for-weight comparison."""
    import numpy as np

    from neurocredit.data import teacher_student
    from neurocredit.lava import onchip_pal as PL
    from neurocredit.sim.emulator_pal import PALChip, angle_deg, emulate_pal

    net = PL.pal_from_nir(graph)
    steps = args.steps or 16
    n_in, n_hidden, n_out = net.sizes
    data = teacher_student(n_in=n_in, n_hidden=n_hidden, n_out=n_out, seed=args.seed)
    print(f"{path.name}: rule {net.rule.name} ({net.rule.title}); on-chip PAL {n_in}-{n_hidden}-{n_out}, "
          f"graded rate units; W: {net.compiled.products['W']};  B: {net.compiled.products['B']}")
    w1, w2, b = net.weights()
    start = angle_deg(b, w2.T)
    if args.backend == "emulator":
        res = PL.run_pal_vs_fa(None, data, epochs=max(args.epochs, 1), steps=steps, seed=args.seed,
                               network=net, log_points=10)
        for label in ("PAL", "FA"):
            log = res[label]
            print(f"{label:>3}: ∠(B, W2ᵀ) {start:.1f}° -> " + " ".join(f"{a:.1f}" for a in log["angle"])
                  + f"°  (steps {log['step'][0]}..{log['step'][-1]})")
        return 0
    x, y = PL.teacher_stream(data, 1, steps, args.seed)
    n = (args.samples or 10) * steps
    x, y = x[:n], y[:n]
    spec = PALChip(**net.compiled.spec.__dict__)
    t0 = time.perf_counter()
    w_lava = PL.run_lava_pal(w1, w2, b, x, y, spec, seed=args.seed)
    print(f"Lava fixed point, {n} steps ({time.perf_counter() - t0:.1f} s): ∠(B, W2ᵀ) {start:.1f}° -> "
          f"{angle_deg(w_lava['B'], w_lava['W2'].T):.1f}°; weights changed: "
          + ", ".join(f"{k} {int((w_lava[k] != w0).sum())}" for k, w0 in zip(("W1", "W2", "B"), (w1, w2, b))))
    if args.check:
        w_emu, _ = emulate_pal(w1, w2, b, x, y, spec, seed=args.seed)
        same = all(np.array_equal(w_emu[k], w_lava[k]) for k in ("W1", "W2", "B"))
        print(f"emulator vs Lava fixed point, {n} steps: weights {'identical' if same else 'DIFFER'}")
        return 0 if same else 1
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("learn", help="on-chip learning of a NIR file with its rule, on Lava or the emulator")
    p.add_argument("file", help="a NIR file carrying a learning rule (neurocredit export --rule ...)")
    p.add_argument("--backend", choices=["lava", "emulator"], default="emulator")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--samples", type=int, default=None, help="training samples per epoch (default: all)")
    p.add_argument("--steps", type=int, default=None, help="time steps per sample (default: "
                   "learning.stream_timing, 16 for one hidden layer, 24 deeper)")
    p.add_argument("--blank", type=int, default=None, help="silent steps between samples (default: "
                   "stream_timing, 4 for one hidden layer, 4 x hops deeper; at least the target delay)")
    p.add_argument("--lr", type=float, default=2 ** -4, help="weight units per (spike x error unit)")
    p.add_argument("--lr-decay", type=float, default=0.6, help="learning-rate factor per epoch")
    p.add_argument("--third-shift", type=int, default=None, help="hidden error right shift (default 4; PC 7)")
    p.add_argument("--gate", type=float, default=None,
                   help="box-car derivative gate (fraction of threshold; default learning.default_gate: 0.3 "
                        "where the rule has f' and one hidden layer, else off; negative: off)")
    p.add_argument("--check", type=int, default=0, metavar="N",
                   help="first stream N samples through both the emulator and Lava and compare the weights")
    p.add_argument("--rule", default=None, metavar="NAME|FILE.toml",
                   help="learn with this rule instead of the file's: a library name or a rule file "
                        "(docs/rule_files.md), fresh feedback matrices from --seed; default: the "
                        "rule the file carries")
    p.add_argument("--target", default="loihi2")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default=None, help="write the learned weights to this .npz (+ history .json)")
    p.set_defaults(func=learn)
