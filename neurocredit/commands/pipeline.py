"""The chip end of the pipeline shared by ``neurocredit learn --out``, ``run --data`` and the
Python API: de-quantisation scales of a compiled graph, learned NIR files, and the accuracy and
predicted classes of a NIR network on a data set (rate-coded input; the class is the most output
spikes, a tie broken by the output voltage at the end of the sample as on-chip learning decides it,
:mod:`neurocredit.neurons.decision`) on the emulator, Lava or torch."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from neurocredit.errors import UserError


def row_scales(graph, profile: str = "loihi2") -> dict[str, tuple[str, int, np.ndarray]]:
    """{chip connection: (Affine node, weight exponent, NIR units per integer weight step, per
    row)} of ``graph`` compiled for ``profile`` in fixed point (see :mod:`neurocredit.nir.learned`)."""
    from neurocredit.chip.compile import compile_graph
    program = compile_graph(graph, profile)
    lam = {r.name: r.vth_mantissa for r in program.layers}
    exps = {k: v for r in program.layers for k, v in r.weight_exp.items()}
    ref = {p.name: (float(np.max(p.vth)) if p.spiking else 1.0) for p in program.float_circuit.populations}
    out = {}
    for c in program.float_circuit.connections:
        via = c.name.split("+")
        affine = [v for v in via if type(graph.nodes.get(v)).__name__ in ("Affine", "Linear")]
        if len(affine) != 1 or c.name not in exps:
            continue
        w_nir = np.asarray(graph.nodes[affine[0]].weight, dtype=np.float64)
        fw = np.asarray(c.weights, dtype=np.float64)
        if fw.shape != w_nir.shape:
            continue
        den = (w_nir * w_nir).sum(axis=1)
        gain = np.where(den > 0, (fw * w_nir).sum(axis=1) / np.where(den > 0, den, 1.0), 1.0)
        e = exps[c.name]
        scale = 2.0 ** e * ref[c.dst] / (lam[c.dst] * gain)
        out[c.name] = (affine[0], e, scale)
    return out


def learned_weights(graph, weights: dict[str, np.ndarray], profile: str = "loihi2") -> dict:
    """{Affine node: (integer weights, exponent, row scales)} for the learned forward weights
    ``weights`` ({chip connection: integer matrix}) of ``graph``."""
    scales = row_scales(graph, profile)
    out = {}
    for name, w in weights.items():
        if name in scales:
            node, e, s = scales[name]
            out[node] = (np.asarray(w, dtype=np.int64), e, s)
    if not out:
        raise UserError("none of the learned connections maps onto an Affine node of the graph")
    return out


def write_learned_nir(graph, weights: dict[str, np.ndarray], path: str | Path, info: dict,
                      profile: str = "loihi2") -> Path:
    """Write the learned network (see :mod:`neurocredit.nir.learned`)."""
    from neurocredit.nir.learned import write_learned
    write_learned(graph, learned_weights(graph, weights, profile), path, info)
    return Path(path)


def load_data(name: str, seed: int = 0):
    """digits | mnist5k with pixels in [0, 1] (rate coding)."""
    from neurocredit import data as D
    loaders = {"digits": D.load_digits, "mnist5k": D.load_mnist5k}
    if name not in loaders:
        raise UserError(f"unknown data set {name!r} for a spiking network; known: digits, mnist5k")
    return loaders[name](seed=seed, standardise=False)


def predict_outputs(graph, rates: np.ndarray, steps: int, backend: str = "emulator", seed: int = 0,
                    profile: str = "loihi2", batch: int = 256) -> tuple[np.ndarray, np.ndarray | None]:
    """(output counts [N, classes], end-of-sample output voltages [N, classes] or None) of
    ``graph`` for rate-coded inputs ``rates`` [N, n_in] in [0, 1] over ``steps`` steps: spike
    counts, or summed voltages for a voltage readout.  The voltages (v after the last step, what a
    probe on the output LIF's ``v`` reads) come from the emulator and Lava for a spiking output;
    torch float NIR and graded readouts give None (:func:`neurocredit.neurons.decision.decide`)."""
    from neurocredit.chip.compile import compile_graph
    rates = np.clip(np.asarray(rates, dtype=np.float64), 0.0, 1.0)
    fixed = backend in ("emulator", "lava")
    if backend == "torch":      # NIR semantics in torch: no chip compile (any graph load accepts)
        from neurocredit.nir.simulate import compile_graph as nir_program, graph_dt, graph_discretisation
        dt = graph_dt(graph)
        prog = nir_program(graph, dt, graph_discretisation(graph))
        in_shape = tuple(prog.ops[prog.inputs[0]].in_shape)
        n_in = int(np.prod(in_shape))
    else:
        program = compile_graph(graph, profile, fixed_point=fixed)
        circuit = program.circuit(fixed)
        n_in, dt = circuit.n_in, program.dt
    if rates.shape[1] != n_in:
        raise UserError(f"the network takes {n_in} inputs, the data has {rates.shape[1]}")
    rng = np.random.default_rng(seed)
    outs, ends = [], []
    spiking_out = backend != "torch" and \
        next(p for p in circuit.populations if p.name == circuit.outputs[0]).spiking
    for i in range(0, len(rates), batch):
        r = rates[i:i + batch]
        x = (rng.random((steps, *r.shape)) < r[None]).astype(np.int64)
        if backend == "emulator":
            from neurocredit.chip.emulator import emulate
            res = emulate(circuit, x, voltage=[circuit.outputs[0]] if spiking_out else None)
            y = res[circuit.outputs[0]].numpy()
            if spiking_out:
                ends.append(res[f"v:{circuit.outputs[0]}"].numpy()[-1])
        elif backend == "lava":
            from neurocredit.lava.run import run_lava
            res = run_lava(circuit, x, seed=seed, voltage=[circuit.outputs[0]] if spiking_out else None)
            y = np.asarray(res[circuit.outputs[0]])
            if spiking_out:
                ends.append(np.asarray(res[f"v:{circuit.outputs[0]}"])[-1])
        else:
            import torch

            from neurocredit.nir.simulate import simulate
            xt = torch.as_tensor(x, dtype=torch.float32).reshape(steps, len(r), *in_shape)
            out = simulate(graph, xt, dt=dt)
            y = (next(iter(out.values())) if isinstance(out, dict) else out).numpy()
        outs.append(np.asarray(y, dtype=np.float64).sum(axis=0))
    counts = np.concatenate(outs, axis=0)
    return counts, (np.concatenate(ends, axis=0).astype(np.float64) if ends else None)


def predict(graph, rates: np.ndarray, steps: int, backend: str = "emulator", seed: int = 0,
            profile: str = "loihi2", batch: int = 256) -> np.ndarray:
    """Output counts [N, classes] of ``graph`` for rate-coded inputs ``rates`` [N, n_in] in
    [0, 1] over ``steps`` steps (spike counts, or summed voltages for a voltage readout)."""
    return predict_outputs(graph, rates, steps, backend, seed, profile, batch)[0]


def accuracy_line(counts: np.ndarray, labels: np.ndarray, shown: int = 20,
                  v_end: np.ndarray | None = None) -> tuple[float, str]:
    """(accuracy, the line ``run --data`` prints: accuracy and the first predicted classes); the
    class is :func:`neurocredit.neurons.decision.decide` (counts, ties by ``v_end`` when given)."""
    from neurocredit.neurons.decision import decide
    pred = decide(counts, v_end)
    acc = float((pred == np.asarray(labels)).mean())
    return acc, (f"accuracy {100 * acc:.2f} % on {len(labels)} test samples; predicted classes "
                 f"(first {min(shown, len(pred))}): " + " ".join(map(str, pred[:shown]))
                 + "; true: " + " ".join(map(str, np.asarray(labels)[:shown])))


def describe(model: Any) -> str:
    return "-".join(map(str, getattr(model, "sizes", [])))
