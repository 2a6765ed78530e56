"""`neurocredit run`: run a NIR graph on Lava (Loihi2SimCfg), the fixed-point emulator, or the
torch float simulation, and print the output spike counts."""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from neurocredit.errors import UserError


def _input(args: argparse.Namespace, n_in: int):
    import numpy as np
    if args.input:
        x = np.load(args.input)
        if x.ndim == 2:
            x = x[:, None, :]
        if x.ndim != 3 or x.shape[2] != n_in:
            raise UserError(f"--input must hold spikes [T, batch, {n_in}], got shape {x.shape}")
        return x[: args.steps].astype(np.int64)
    if not 0.0 <= args.rate <= 1.0:
        raise UserError(f"--rate must be a spike probability in [0, 1], got {args.rate}")
    rng = np.random.default_rng(args.seed)
    return (rng.random((args.steps, args.batch, n_in)) < args.rate).astype(np.int64)


def _spiking(program, name: str) -> bool:
    """Whether layer ``name`` emits spikes (LIF, CubaLIF, IF) rather than a read-out voltage."""
    from neurocredit.lava.graph import SPIKING_TYPES
    kinds = {layer.name: layer.kind for layer in program.layers}
    return kinds.get(name, "LIF") in SPIKING_TYPES


def run(args: argparse.Namespace) -> int:
    import nir
    import numpy as np
    import torch

    from neurocredit.lava.compile import compile_graph

    torch.set_num_threads(args.threads)
    if args.steps < 1 or args.batch < 1:
        raise UserError("--steps and --batch must be positive")
    path = Path(args.file)
    if not path.is_file():
        raise UserError(f"no such NIR file: {path}")
    graph = nir.read(str(path))
    fixed = not args.float
    program = compile_graph(graph, profile=args.target, fixed_point=fixed and args.backend != "torch",
                            dt=args.dt)
    circuit = program.circuit(fixed and args.backend != "torch")
    x = _input(args, circuit.n_in)
    t0 = time.perf_counter()
    if args.backend == "lava":
        from neurocredit.lava.run import run_lava
        spikes = run_lava(circuit, x, seed=args.seed)
        shift = 0
    elif args.backend == "emulator":
        from neurocredit.sim.emulator import emulate
        spikes = {k: v.numpy() for k, v in emulate(circuit, x).items()}
        shift = 0
    else:
        try:
            from neurocredit.nir.simulate import simulate
        except ImportError:
            raise UserError("the torch backend needs neurocredit.nir.simulate") from None
        out = simulate(graph, torch.as_tensor(x, dtype=torch.float32), dt=program.dt)
        outs = out if isinstance(out, dict) else {next(iter(program.outputs)): out}
        spikes = {program.outputs.get(k, k): v.numpy() for k, v in outs.items()}
        spikes = {k: (v != 0) if _spiking(program, k) else v for k, v in spikes.items()}
        shift = None
    elapsed = time.perf_counter() - t0
    mode = "float" if (args.float or args.backend == "torch") else "fixed point"
    print(f"{args.backend} ({mode}): {x.shape[1]} sample(s) x {x.shape[0]} steps in {elapsed:.3f} s")
    for name, s in spikes.items():
        counts = np.asarray(s).sum(axis=0)
        if _spiking(program, name):
            print(f"output {name}: {int(counts.sum())} spikes; per neuron (sample 0): "
                  + " ".join(str(int(c)) for c in counts[0]))
        else:  # LI / CubaLI / I readouts: their voltage is the output
            unit = "NIR units" if args.backend == "torch" else (
                "Lava float units" if mode == "float" else "Lava integer units")
            print(f"output {name} (voltage readout): voltage summed over steps, per neuron "
                  f"(sample 0, {unit}): " + " ".join(f"{c:.4g}" for c in counts[0]))
        if shift is not None and program.depth.get(name):
            print(f"  (Lava timing: the output of {name} lags the input by {program.depth[name]} steps, "
                  f"one per Dense)")
    if args.out:
        from neurocredit.io_utils import atomic_path
        with atomic_path(args.out, suffix=".npz") as tmp:
            np.savez(tmp, **{k: np.asarray(v) for k, v in spikes.items()})
        print(f"wrote {args.out}")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run a NIR graph on Lava, the fixed-point emulator or torch")
    p.add_argument("file", help="a NIR file")
    p.add_argument("--backend", choices=["lava", "emulator", "torch"], default="emulator")
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--batch", type=int, default=1, help="samples (random input)")
    p.add_argument("--rate", type=float, default=0.2, help="input spike probability per step (random input)")
    p.add_argument("--input", default=None, help=".npy spikes [T, batch, n_in] instead of random input")
    p.add_argument("--float", action="store_true", help="Lava/emulator in floating point (default: fixed point)")
    p.add_argument("--target", default="loihi2")
    p.add_argument("--dt", type=float, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default=None, help="write the output spikes to this .npz")
    p.set_defaults(func=run)
