"""Fixed-point emulator of on-chip circuits whose feedback connections learn too (relaxed
predictive coding's learned backward weights B_l).

The same arithmetic as :func:`neurocredit.sim.emulator.emulate_learning` (Lava's
``PyLifModelBitAcc`` neurons, ``ThirdFactorLIF`` third factors, ``GradedVec`` errors, and the
bit-approximate learning engine of :func:`~neurocredit.sim.emulator.learning_update` on every
plastic forward connection), plus *transposed-plastic* connections: a feedback connection
B_l (layer l+1's error ε_{l+1} -> layer l's third-factor compartment) whose synapse (i, j)
changes with the product of what it sees, its pre-synaptic payload ε_{l+1,j} and its
post-synaptic neuron's spike s_{l,i}:

    ΔB_l[i, j] = c · s_{l,i} · ε_{l+1,j}        (KP / relaxed PC: ΔB_l = −η f(v_l) ⊗ ε_{l+1})

It is computed with the same engine as a forward connection, on the transposed matrix:
the post spike plays the part of the x0 dependency and the signed payload is split into the
7-bit traces y2 (negative part) and y3 (positive part) that layer l+1 sends (its ``s_err``).
So ΔB_l is, bit for bit up to the stochastic rounding draws, ΔW_{l+1}ᵀ (Kolen-Pollack).

In Lava (``neurocredit.lava.onchip_pc.run_lava_pc``) the forward connections are Lava's own
``LearningDense`` with the generated ``Loihi3FLearningRule`` and B_l is a ``PostPlasticDense``
(Lava's LearningDense cannot take a signed graded pre factor); the two agree weight for weight
(tests/test_onchip_pc.py).
"""
from __future__ import annotations

import numpy as np
import torch

from neurocredit.sim.emulator import (Circuit, engine_state, learning_update,
                                      third_factor_lif_step)


@torch.no_grad()
def emulate_learning_pc(circuit: Circuit, inputs: dict[str, np.ndarray], rng_seed: int = 0,
                        record: list[str] | None = None, transposed: tuple[str, ...] | None = None,
                        snapshot_every: int = 0,
                        ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Run ``circuit`` on ``inputs`` {source: [T, n]} with learning every step.

    ``transposed`` names the plastic feedback connections that learn from (post spike x pre
    payload) (default: ``circuit.meta['transposed']``).  Returns (final integer weights,
    records [T, n] of ``record``: a population name for its spikes, ``'err:<name>'`` for its
    signed third factor / graded error); with ``snapshot_every`` > 0 the records also hold
    ``'w:<name>'`` arrays [T // snapshot_every, *shape] of every plastic connection's weights."""
    steps = next(iter(inputs.values())).shape[0]
    record = list(record or [])
    transposed = tuple(circuit.meta.get("transposed", ()) if transposed is None else transposed)
    names = {c.name for c in circuit.connections}
    for k in transposed:
        if k not in names:
            raise ValueError(f"transposed-plastic connection {k!r} is not in the circuit")
    pops = {p.name: p for p in circuit.populations}
    state, outs, weights, bufs, randoms, into, bias = engine_state(circuit, rng_seed)
    rec = {k: np.zeros((steps, pops[k.split(":")[-1]].n), np.int64) for k in record}
    snaps: dict[str, list[np.ndarray]] = {c.name: [] for c in circuit.connections if c.plastic}
    for t in range(steps):
        for p in circuit.populations:
            a = np.zeros(p.n, np.int64)
            for k in into[(p.name, "a")]:
                a = a + bufs[k]
            o = outs[p.name]
            if p.kind == "graded":
                o["s"] = a * (np.abs(a) > int(p.vth))
                o["err"] = o["s"]
                o["y2"], o["y3"] = np.clip(-o["s"], 0, 127), np.clip(o["s"], 0, 127)
                continue
            third_factor_lif_step(p, state[p.name], o, a, bias[p.name],
                                  sum((bufs[k] for k in into[(p.name, "third")]),
                                      np.zeros(p.n, np.int64)))
        for c in circuit.connections:
            if c.src in inputs:
                s = np.asarray(inputs[c.src][t], dtype=np.int64)
            else:
                s = outs[c.src]["err" if c.src_port == "err" else "s"]
            acc = weights[c.name] @ s
            e = int(c.weight_exp)
            bufs[c.name] = acc << e if e > 0 else acc >> (-e)
            if c.plastic:
                r_y, r_w = randoms[c.name].step()
                if c.name in transposed:       # post spike x pre payload, on the transposed matrix
                    src = outs[c.src]
                    y = {"y2": src["y2"], "y3": src["y3"]}
                    w_t = learning_update(weights[c.name].T, outs[c.dst]["s"] > 0, y, c.plastic, r_y, r_w)
                    weights[c.name] = np.ascontiguousarray(w_t.T)
                else:
                    y = {"y2": outs[c.dst]["y2"], "y3": outs[c.dst]["y3"]}
                    weights[c.name] = learning_update(weights[c.name], s > 0, y, c.plastic, r_y, r_w)
                if snapshot_every and (t + 1) % snapshot_every == 0:
                    snaps[c.name].append(weights[c.name].copy())
        for k in record:           # "pop": spikes / graded output;  "err:pop": the signed error
            port, _, name = k.rpartition(":")
            rec[k][t] = outs[name]["err" if port == "err" else "s"]
    if snapshot_every:
        rec.update({f"w:{k}": np.asarray(v) for k, v in snaps.items()})
    return weights, rec
