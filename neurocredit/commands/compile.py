"""`neurocredit compile`: NIR file -> Lava process graph for a hardware target; prints the
resource report (and, with --fixed-point, the integer parameters and quantisation error per
layer) or the refusal naming the layer and the limit."""
from __future__ import annotations

import argparse
from pathlib import Path

from neurocredit.commands.options import positive_float
from neurocredit.errors import UserError


def run(args: argparse.Namespace) -> int:
    from neurocredit.chip.compile import CompileError, compile_graph
    from neurocredit.nir.errors import NIRLoadError
    from neurocredit.nir.load import read_graph
    from neurocredit.lava.report import format_report

    path = Path(args.file)
    if not path.is_file():
        raise UserError(f"no such NIR file: {path}")
    if args.build:
        from neurocredit._setup_lava import require_lava
        require_lava()
    try:   # the tolerant reader every command uses (the one `inspect` uses)
        graph = read_graph(path)
    except NIRLoadError as exc:
        raise UserError(str(exc)) from None
    args.fixed_point = args.fixed_point or args.calibrate     # calibration tunes the fixed point
    try:
        program = compile_graph(graph, profile=args.target, fixed_point=args.fixed_point, dt=args.dt)
    except CompileError as exc:
        print(f"refused: {path} does not fit target {args.target}:")
        for r in exc.refusals:
            print(f"  [{r.kind}] {r.message}")
        return 3
    print(f"compiled {path} for {args.target} ({'fixed point' if args.fixed_point else 'floating point'}): "
          f"{len(program.float_circuit.populations)} Lava LIF, "
          f"{len(program.float_circuit.connections)} Lava Dense, 1 RingBuffer source, "
          f"{len(program.outputs)} sink(s)")
    print(format_report(program, args.fixed_point))
    _test_run(program, graph)
    if args.calibrate:
        _calibrate(program, args)
    for r in program.quantisation_refusals:
        print(f"  fixed point would be refused: {r.message}")
    if args.build:
        from neurocredit.lava.run import build
        import numpy as np
        circuit = program.circuit(args.fixed_point)
        net = build(circuit, np.zeros((circuit.n_in, 1)), circuit.outputs)
        print(f"built Lava processes: {len(net.lif)} LIF, {len(net.dense)} Dense, "
              f"{len(net.sinks)} sink(s) (not run)")
    return 0


def _calibrate(program, args: argparse.Namespace) -> None:
    """Calibrated quantisation (neurocredit.chip.quantise): print the per-layer table; refuse in
    one line (exit 2) when a spiking layer's agreement with float is below --min-agreement."""
    import numpy as np

    from neurocredit.chip.quantise import calibrate, poisson_inputs, refusal

    n_in = program.float_circuit.n_in
    if args.data == "poisson":
        x = poisson_inputs(n_in, args.steps, args.samples, args.rate, seed=args.seed)
        what = f"{args.samples} Poisson spike trains (rate <= {2 * args.rate:g}, seed {args.seed})"
    elif args.data == "digits":
        from neurocredit.data import load_digits
        from neurocredit.chip.sample_graphs import rate_code
        if n_in != 64:
            raise UserError(f"--data digits has 64 inputs; the graph has {n_in}")
        data = load_digits(seed=args.seed, standardise=False)
        x = rate_code(data.x_train[:args.samples], args.steps, seed=args.seed)
        what = f"{args.samples} rate-coded digits (training split, seed {args.seed})"
    else:
        path = Path(args.data)
        if path.suffix != ".npy" or not path.is_file():
            raise UserError(f"--data must be poisson, digits or a .npy file of spikes [T, batch, {n_in}]; "
                            f"got {args.data!r}")
        x = np.load(path)
        if x.ndim != 3 or x.shape[2] != n_in or not np.isin(x, (0, 1)).all():
            raise UserError(f"{path}: calibration spikes must be 0/1 of shape [T, batch, {n_in}], "
                            f"got {x.shape}")
        what = f"spikes from {path} {x.shape}"
    print(f"calibrating on {what}, {x.shape[0]} steps")
    cal = calibrate(program, x, progress=True)
    print(cal.table())
    bad = refusal(cal, args.min_agreement) if args.min_agreement is not None else None
    if bad is not None:
        raise UserError(bad.message)


def _test_run(program, graph, steps: int = 100) -> None:
    """Run the float circuit on the emulator for ``steps`` steps of random input (rate 0.2) and
    say where dt came from; warn when no output spikes (often another time-step convention)."""
    import numpy as np

    from neurocredit.chip.emulator import emulate
    from neurocredit.nir.conventions import detect

    print(f"dt = {program.dt:g} s: {detect(graph).reason}")
    circuit = program.float_circuit
    spiking = [p for p in circuit.outputs if circuit.population(p).spiking]
    if not spiking:
        return
    x = (np.random.default_rng(0).random((steps, 1, circuit.n_in)) < 0.2).astype(np.int64)
    out = emulate(circuit, x, record=spiking)
    if all(int(out[p].sum()) == 0 for p in spiking):
        print(f"warning: the graph produced no output spike in a {steps}-step test run (random input, "
              f"rate 0.2) at dt = {program.dt:g} s; if its producer meant another time step, set it "
              f"with --dt")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("compile", help="compile a NIR graph to Lava processes for a hardware target")
    p.add_argument("file", help="a NIR file (.nir / .h5)")
    p.add_argument("--target", default="loihi2", help="hardware profile: a name in hardware/ (shipped with the package) or a .toml path")
    p.add_argument("--fixed-point", action="store_true", help="quantise to the target's integers and report the error")
    p.add_argument("--dt", type=positive_float, default=None, help="time step in s (default: the graph's metadata, else its producer's convention, else the profile's)")
    p.add_argument("--build", action="store_true", help="also instantiate the Lava processes (no run)")
    p.add_argument("--calibrate", action="store_true", help="fixed point: choose each layer's threshold "
                   "mantissa, weight exponents and threshold scale on calibration inputs (table per layer)")
    p.add_argument("--data", default="poisson", help="calibration inputs: poisson (default), digits, or a "
                   ".npy file of 0/1 spikes [T, batch, n_in]")
    p.add_argument("--steps", type=int, default=100, help="calibration steps (poisson, digits)")
    p.add_argument("--samples", type=int, default=64, help="calibration samples (poisson, digits)")
    p.add_argument("--rate", type=positive_float, default=0.1, help="mean Poisson rate per step")
    p.add_argument("--seed", type=int, default=0, help="calibration seed")
    p.add_argument("--min-agreement", type=float, default=None, help="refuse (exit 2) if a spiking "
                   "layer's spike agreement with float after calibration is below this (0..1)")
    p.set_defaults(func=run)
