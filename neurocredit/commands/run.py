"""`neurocredit run`: run a NIR graph on Lava (Loihi2SimCfg), the fixed-point emulator, or the
torch float simulation, and print the output spike counts; with ``--data digits|mnist5k``, the
accuracy on the test set (rate-coded) and the predicted classes."""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from neurocredit.commands.options import positive_float, positive_int, probability, seed_int, threads_int
from neurocredit.errors import UserError


def _input(args: argparse.Namespace, n_in: int):
    import numpy as np
    if args.input:
        try:
            x = np.load(args.input)
        except ValueError as exc:
            raise UserError(f"--input {args.input}: not a .npy array ({exc})") from None
        if x.ndim == 2:
            x = x[:, None, :]
        if x.ndim != 3 or x.shape[2] != n_in:
            raise UserError(f"--input must hold spikes [T, batch, {n_in}], got shape {x.shape}")
        return x[: args.steps].astype(np.int64)
    rng = np.random.default_rng(args.seed)
    return (rng.random((args.steps, args.batch, n_in)) < args.rate).astype(np.int64)


def _spiking(program, name: str) -> bool:
    """Whether layer ``name`` emits spikes (LIF, CubaLIF, IF) rather than a read-out voltage."""
    from neurocredit.chip.graph import SPIKING_TYPES
    kinds = {layer.name: layer.kind for layer in program.layers}
    return kinds.get(name, "LIF") in SPIKING_TYPES


def run(args: argparse.Namespace) -> int:
    import numpy as np
    import torch

    from neurocredit.chip.compile import compile_graph

    torch.set_num_threads(args.threads)
    path = Path(args.file)
    if not path.is_file():
        raise UserError(f"no such NIR file: {path}")
    if args.out:
        from neurocredit.io_utils import check_output_path
        check_output_path(args.out, "--out file")
    if args.backend == "lava":
        from neurocredit._setup_lava import require_lava
        require_lava()
    from neurocredit.nir.errors import NIRLoadError
    from neurocredit.nir.load import load
    try:   # the tolerant reader every command uses (the one `inspect` uses)
        model = load(path)
    except NIRLoadError as exc:
        raise UserError(str(exc)) from None
    graph = model.graph
    if args.data:
        return _run_data(args, graph)
    if args.backend == "torch":    # NIR semantics in torch: no chip compile needed
        return _run_torch(args, model)
    fixed = not args.float
    program = compile_graph(graph, profile=args.target, fixed_point=fixed, dt=args.dt)
    circuit = program.circuit(fixed)
    x = _input(args, circuit.n_in)
    t0 = time.perf_counter()
    if args.backend == "lava":
        from neurocredit.lava.run import run_lava
        spikes = run_lava(circuit, x, seed=args.seed)
    else:
        from neurocredit.chip.emulator import emulate
        spikes = {k: v.numpy() for k, v in emulate(circuit, x).items()}
    shift = 0
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
    _warn_silent(spikes, {k: _spiking(program, k) for k in spikes}, x.shape[0], program.dt, graph)
    _save(args, spikes)
    return 0


def _save(args: argparse.Namespace, spikes: dict) -> None:
    import numpy as np
    if args.out:
        from neurocredit.io_utils import atomic_path
        with atomic_path(args.out, suffix=".npz") as tmp:
            np.savez(tmp, **{k: np.asarray(v) for k, v in spikes.items()})
        print(f"wrote {args.out}")


def _warn_silent(outputs: dict, spiking: dict, steps: int, dt: float, graph) -> None:
    """One warning line when no spiking output emitted a spike: often a time-step convention."""
    import numpy as np
    from neurocredit.nir.conventions import detect
    spk = [k for k in outputs if spiking.get(k)]
    if spk and all(int(np.asarray(outputs[k]).sum()) == 0 for k in spk):
        print(f"warning: the graph produced no output spike in {steps} steps at dt = {dt:g} s "
              f"({detect(graph).reason}); if its producer meant another time step, set it with --dt")


def _run_torch(args: argparse.Namespace, model) -> int:
    """The NIR graph simulated in torch float (any graph `inspect` accepts; no chip compile)."""
    import numpy as np
    import torch

    from neurocredit.nir.simulate import compile_graph as nir_program
    from neurocredit.nir.simulate import output_sources

    dt = args.dt if args.dt is not None else model.dt
    prog = nir_program(model.graph, dt, model.discretisation)
    shape = prog.ops[prog.inputs[0]].in_shape
    n_in = int(np.prod(shape)) if shape else 1
    x = _input(args, n_in)
    t0 = time.perf_counter()
    xt = torch.as_tensor(x, dtype=torch.float32).reshape(x.shape[0], x.shape[1], *shape)
    with torch.no_grad():
        out = prog.run(xt if len(prog.inputs) == 1 else {k: xt for k in prog.inputs})
    outs = out if isinstance(out, dict) else {prog.outputs[0]: out}
    src = output_sources(model.graph)    # keyed by the layer that feeds each Output (as on chip)
    outs = {src.get(k, (k, ""))[0]: v for k, v in outs.items()}
    spiking = {n: kind in ("LIF", "CubaLIF", "IF") for n, kind in src.values()}
    res = {k: (v.numpy() != 0) if spiking.get(k) else v.numpy() for k, v in outs.items()}
    print(f"torch (float): {x.shape[1]} sample(s) x {x.shape[0]} steps in {time.perf_counter() - t0:.3f} s, "
          f"dt = {dt:g} s")
    for name, s in res.items():
        counts = np.asarray(s, dtype=np.float64).reshape(s.shape[0], s.shape[1], -1).sum(axis=0)
        if spiking.get(name):
            print(f"output {name}: {int(counts.sum())} spikes; per neuron (sample 0): "
                  + " ".join(str(int(c)) for c in counts[0]))
        else:
            print(f"output {name} (voltage readout): voltage summed over steps, per neuron "
                  f"(sample 0, NIR units): " + " ".join(f"{c:.4g}" for c in counts[0]))
    _warn_silent(res, spiking, x.shape[0], dt, model.graph)
    _save(args, res)
    return 0


def _run_data(args: argparse.Namespace, graph) -> int:
    """Accuracy and predicted classes on ``--data``'s test set (``--batch`` caps the samples)."""
    from neurocredit.commands.pipeline import accuracy_line, load_data, predict_outputs
    data = load_data(args.data, args.seed)
    x, y = data.x_test.numpy(), data.y_test.numpy()
    if args.samples:
        x, y = x[: args.samples], y[: args.samples]
    t0 = time.perf_counter()
    counts, v_end = predict_outputs(graph, x, args.steps, args.backend, args.seed, args.target)
    _, line = accuracy_line(counts, y, v_end=v_end)
    mode = "float" if args.backend == "torch" else "fixed point"
    print(f"{args.file} on {data.name} ({args.backend}, {mode}, {args.steps} steps per sample, "
          f"{time.perf_counter() - t0:.1f} s): {line}")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run a NIR graph on Lava, the fixed-point emulator or torch")
    p.add_argument("file", help="a NIR file")
    p.add_argument("--backend", choices=["lava", "emulator", "torch"], default="emulator",
                   help="lava (Loihi2SimCfg, needs `neurocredit setup-lava`), the bit-exact emulator, or torch float")
    p.add_argument("--steps", type=positive_int, default=100, help="time steps (per sample with --data)")
    p.add_argument("--data", default=None, choices=["digits", "mnist5k"],
                   help="classify this data set's test set (rate-coded) and print accuracy and predictions")
    p.add_argument("--samples", type=positive_int, default=None, help="with --data: the first N test samples (default: all)")
    p.add_argument("--batch", type=positive_int, default=1, help="samples (random input)")
    p.add_argument("--rate", type=probability, default=0.2, help="input spike probability per step (random input)")
    p.add_argument("--input", default=None, help=".npy spikes [T, batch, n_in] instead of random input")
    p.add_argument("--float", action="store_true", help="Lava/emulator in floating point (default: fixed point)")
    p.add_argument("--target", default="loihi2", help="hardware profile: a name in hardware/ or a .toml path")
    p.add_argument("--dt", type=positive_float, default=None, help="time step in s (default: the graph's metadata, else its producer's convention, else the profile's)")
    p.add_argument("--seed", type=seed_int, default=0, help="seed of the input spikes")
    p.add_argument("--threads", type=threads_int, default=1, help="torch threads")
    p.add_argument("--out", default=None, help="write the output spikes to this .npz")
    p.set_defaults(func=run)
