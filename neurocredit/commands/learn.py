"""`neurocredit learn`: on-chip learning of a NIR file that carries its rule, on Lava
(Loihi2SimCfg fixed point) or the fixed-point emulator, with the emulator checked against Lava.

    neurocredit export --rule dfa --out dfa.nir          # or any NIR file + attach_rule
    neurocredit learn dfa.nir --backend emulator --epochs 3
    neurocredit learn dfa.nir --backend lava --samples 20 --check 60

The rule and its feedback matrices are read from the file; the network and the rule are
compiled by :mod:`neurocredit.chip` into one on-chip learning circuit (whatever the rule: the
compiler refuses, naming why, what it cannot build; a rule whose dynamics run on graded-rate
units, PAL, becomes a graded-rate circuit fed graded values).  Training streams the training
set sample by sample, learning every step; the test accuracy of the learned integer weights is
printed after every epoch (with learned feedback also ∠(B, Wᵀ)).
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from neurocredit.commands.options import (nonneg_int, positive_float, positive_int,
                                          finite_float, seed_int, threads_int, unit_interval)
from neurocredit.errors import UserError


BACKENDS = {"emulator": ("neurocredit.chip.emulator", "emulate_learning"),
            "lava": ("neurocredit.lava.backend", "run_learning")}
"""--backend name -> the function that runs a learning circuit (same signature and results)."""


def runner(backend: str):
    """The learning-circuit runner of ``backend`` (:data:`BACKENDS`)."""
    import importlib
    if backend not in BACKENDS:
        raise UserError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    module, name = BACKENDS[backend]
    return getattr(importlib.import_module(module), name)


def learn_on_chip(graph, data, *, epochs: int = 1, samples: int | None = None, backend: str = "emulator",
                  seed: int = 0, target: str = "loihi2", log=print, steps: int | None = None,
                  blank: int | None = None, lr_decay: float = 1.0, check: int = 0, cost: int = 0, **spec):
    """On-chip learning of a NIR graph (or file) that carries its rule, on ``data`` (pixels in
    [0, 1]): the rule compiled by :mod:`neurocredit.chip` (``spec`` overrides of
    :func:`neurocredit.chip.circuits.default_spec`: lr, third_shift, gate ...), streamed with
    :func:`neurocredit.chip.session.stream_timing` on ``backend``; with ``check`` > 0 first
    ``check`` samples run on the emulator and on Lava and the weights are compared.
    Returns (rule, learned circuit, history, check result or None)."""
    from neurocredit.chip import session as S
    _, rule, learning, _ = S.read_learning_graph(graph)
    rule, circuit = S.circuit_from_nir(graph, None, target, **spec)
    if circuit.n_in != data.x_train.shape[-1] or circuit.meta["n_target"] != data.n_out:
        raise UserError(f"the network is {circuit.n_in} -> {circuit.meta['n_target']}, the data "
                        f"{data.x_train.shape[-1]} -> {data.n_out}")
    n_hidden = len(learning.get("feedback", []))
    timing = S.stream_timing(n_hidden)
    rows = data.x_train.shape[1] if data.x_train.dim() == 3 else 0     # a sequence: row by row
    steps = steps or (ROW_STEPS * rows if rows else timing.steps)
    delay = circuit.meta.get("target_delay", timing.target_delay)
    blank = max(timing.blank if blank is None else blank, delay)
    log(f"rule {rule.name} ({rule.title}); on-chip circuit: "
        + ", ".join(f"{p.name} {p.n}" for p in circuit.populations if p.kind in ("third", "rate"))
        + f"; {steps} steps + {blank} blank per sample, target delay {delay}; dw = {circuit.meta['dw']}"
        + (f"; dw(B) = {circuit.meta['dw_B']}" if "dw_B" in circuit.meta else "")
        + (f"; eligibility tag dt = {circuit.meta['dt_tag']}, readout dw = {circuit.meta['dw_out']}"
           if circuit.meta.get("dt_tag") else ""))
    checked = None
    if check:
        t0 = time.perf_counter()
        x, y = data.x_train.numpy()[:check], data.y_train.numpy()[:check]
        stream = S.training_stream(circuit, x, y, steps, blank, seed, delay)
        same, n, _ = S.check_backends(circuit, stream, {b: runner(b) for b in ("emulator", "lava")}, seed)
        checked = same
        log(f"emulator vs Lava fixed point, {check} samples ({n} learning steps): weights "
            f"{'identical' if same else 'DIFFER'} ({time.perf_counter() - t0:.1f} s)")
        if not same:
            return rule, circuit, [], False
    circuit, history = S.train(circuit, data, epochs, steps=steps, blank=blank, seed=seed, run=runner(backend),
                               samples=samples, target_delay=delay, lr_decay=lr_decay, log=log, label=backend)
    if cost:            # what the chip does per training sample (emulator counts, chip.cost)
        from neurocredit.chip import cost as K
        n = min(cost, len(data.y_train))
        counts = K.training_cost(circuit, data.x_train.numpy()[:n], data.y_train.numpy()[:n], steps, blank, delay, seed)
        log(f"{K.summary(circuit, counts)} (first {n} training samples, learned weights)")
    return rule, circuit, history, checked


ROW_STEPS = 4      # chip steps per row of a sequence sample (seqdigits: 8 rows -> 32 steps)


def chip_data(name: str, seed: int = 0):
    """digits | mnist5k | seqdigits with pixels in [0, 1] (rate coding); seqdigits as sequences
    [N, 8 rows, 8 pixels], streamed row by row (chip.session.step_rates)."""
    from neurocredit.commands.pipeline import load_data
    if name != "seqdigits":
        return load_data(name, seed)
    from neurocredit.data import Dataset, load_digits
    d = load_digits(seed=seed, standardise=False)
    rows = lambda t: t.reshape(t.shape[0], 8, 8)  # noqa: E731
    return Dataset("seqdigits", rows(d.x_train), d.y_train, rows(d.x_test), d.y_test, d.n_classes)


def learn(args: argparse.Namespace) -> int:
    import numpy as np
    import torch

    from neurocredit.chip import session as S

    torch.set_num_threads(args.threads)
    path = Path(args.file)
    if not path.is_file():
        raise UserError(f"no such NIR file: {path}")
    if args.out:
        from neurocredit.io_utils import check_output_path
        check_output_path(args.out, "--out file")
    if args.backend == "lava" or args.check:
        from neurocredit._setup_lava import require_lava
        require_lava()
    if args.epochs < 0 or (args.steps is not None and args.steps < 1) or (args.samples is not None and args.samples < 1):
        raise UserError("--epochs must be >= 0, --steps and --samples positive")
    graph = S.read_learning_graph(_with_rule(path, args))[0]
    spec = {"lr": args.lr, "third_shift": args.third_shift, "gate": args.gate}
    rule, circuit, history, checked = learn_on_chip(
        graph, chip_data(args.data, args.seed), epochs=args.epochs, samples=args.samples,
        backend=args.backend, seed=args.seed, target=args.target, steps=args.steps, blank=args.blank,
        lr_decay=args.lr_decay, check=args.check, cost=args.cost, log=lambda s: print(f"{path.name}: {s}" if s.startswith("rule ")
                                                                    else s), **spec)
    if checked is False:
        return 1
    if args.out and Path(args.out).suffix == ".nir":      # the learned network, as NIR
        from neurocredit.commands.pipeline import write_learned_nir
        write_learned_nir(graph, {c.name: np.asarray(c.weights) for c in circuit.plastic}, args.out,
                          {"rule": rule.name, "backend": args.backend, "data": args.data,
                           "history": history}, args.target)
        print(f"wrote {args.out} (the learned network: de-quantised weights, integer weights and "
              f"exponents in metadata, rule {rule.name} attached)")
    elif args.out:
        from neurocredit.io_utils import atomic_path
        with atomic_path(args.out, suffix=".npz") as tmp:
            np.savez(tmp, **{c.name: np.asarray(c.weights) for c in circuit.plastic})
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


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("learn", help="on-chip learning of a NIR file with its rule, on Lava or the emulator")
    p.add_argument("file", help="a NIR file carrying a learning rule (neurocredit export --rule ...)")
    p.add_argument("--backend", choices=["lava", "emulator"], default="emulator",
                   help="lava (needs `neurocredit setup-lava`) or the bit-exact emulator")
    p.add_argument("--data", choices=["digits", "mnist5k", "seqdigits"], default="digits",
                   help="data set streamed through the chip (rate-coded, pixels in [0, 1]; seqdigits row by "
                        "row, 4 steps a row, for a recurrent network)")
    p.add_argument("--epochs", type=nonneg_int, default=1, help="passes over the training samples")
    p.add_argument("--samples", type=positive_int, default=None, help="training samples per epoch (default: all)")
    p.add_argument("--steps", type=positive_int, default=None, help="time steps per sample (default: "
                   "learning.stream_timing, 16 for one hidden layer, 24 deeper)")
    p.add_argument("--blank", type=nonneg_int, default=None, help="silent steps between samples (default: "
                   "stream_timing, 4 for one hidden layer, 4 x hops deeper; at least the target delay)")
    p.add_argument("--lr", type=positive_float, default=None, help="weight units per (spike x error unit) "
                   "(default: the rule's dynamics, chip.circuits.DYNAMICS: 2^-4, graded-rate PAL 2^-10 per integer product)")
    p.add_argument("--lr-decay", type=unit_interval, default=0.6, help="learning-rate factor per epoch")
    p.add_argument("--third-shift", type=nonneg_int, default=None, help="hidden error right shift (default: the rule's dynamics, chip.circuits.DYNAMICS: 4 one pass, 7 relaxed PC)")
    p.add_argument("--gate", type=finite_float, default=None,
                   help="box-car derivative gate (fraction of threshold; default learning.default_gate: 0.3 "
                        "where the rule has f' and one hidden layer, else off; negative: off)")
    p.add_argument("--check", type=nonneg_int, default=0, metavar="N",
                   help="first stream N samples through both the emulator and Lava and compare the weights")
    p.add_argument("--rule", default=None, metavar="NAME|FILE.toml",
                   help="learn with this rule instead of the file's: a library name or a rule file "
                        "(docs/rule_files.md), fresh feedback matrices from --seed; default: the "
                        "rule the file carries")
    p.add_argument("--cost", type=nonneg_int, default=10, metavar="N", help="after training, count the chip's "
                   "operations on N training samples and print the cost per sample (chip.cost; 0: off)")
    p.add_argument("--target", default="loihi2", help="hardware profile: a name in hardware/ or a .toml path")
    p.add_argument("--seed", type=seed_int, default=0, help="seed of the split, streams and learning noise")
    p.add_argument("--threads", type=threads_int, default=1, help="torch threads")
    p.add_argument("--out", default=None, help="FILE.nir: the learned network as NIR (inspect, run and learn "
                   "read it again); FILE.npz: the learned integer weights (+ history .json)")
    p.set_defaults(func=learn)
