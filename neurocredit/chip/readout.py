"""A leaky (non-spiking) readout that learns on chip from a graded error at every step.

A network whose output layer is a leaky integrator (NIR LI / CubaLI: the torch RSNN's 'li'
readout, snnTorch's ``Leaky(output=...)`` voltage readout) reads its answer from the readout's
potential, not from spike counts.  Bellec et al. (2020, Nat. Commun. 11:3625, Methods, "e-prop
for classification") use exactly such a readout::

    y_k[t] = κ y_k[t−1] + Σ_j W_kj z_j[t]          (κ: the readout's decay)
    e_k[t] = y_k[t] − y*_k[t]                      (the error at every step; MSE form)
    ΔW_kj  = −η Σ_t e_k[t] z̄_j[t],   z̄_j[t] = κ z̄_j[t−1] + z_j[t]

On chip the readout is a graded-rate population (:mod:`neurocredit.chip.rate`, kind ``'rate'``,
identity activation, its own target input): ``leak_shift`` k integrates the forward input,
li ← li − trunc(li / 2^k) + W z (κ = 1 − 2^-k), sends r = li >> out_shift and its error
e = r − y* as graded spikes (port ``err``, which the feedback pathway B reads in place of the
spiking circuit's error units), and its third factor t = trunc(e / 2^third_shift) as y3 / y2.
The readout connection's eligibility is its pre trace x1 with the readout's decay
(:mod:`neurocredit.chip.tags`): x1 ≈ z̄.  The target is the one-hot label times
:func:`readout_scales`' target value (a Dense from the target source).
"""
from __future__ import annotations

import math
import numpy as np

from neurocredit.chip.errors import OnChipError
from neurocredit.chip.ir import TARGET, Connection, Population
from neurocredit.neurons import fixed_point as fp

KIND = "rate"
UNIT = 64.0
"""Graded readout units r per unit of the float readout's potential (before rounding to a shift)."""


def leak_of(dv: int) -> int:
    """k with 1 − 2^-k nearest (in log) to the decay 1 − dv/4096 of a LI population's voltage."""
    if not 0 < int(dv) < 4096:
        raise OnChipError(f"a leaky readout needs a voltage decay 0 < dv < 4096, got {dv}")
    return max(1, int(round(math.log2(4096.0 / int(dv)))))


def readout_scales(p: Population, unit: float = UNIT) -> tuple[int, int]:
    """(out_shift, target value) for LI population ``p``: its float potential is
    v = li · 2^6 · v_scale (Lava's a << 6, du = 4095), read as r = li >> out_shift with
    out_shift = round(log2(1 / (2^6 v_scale · unit))); the target value is one float unit of v in r
    units, clipped to an 8-bit weight."""
    per_li = 64.0 * float(np.mean(p.v_scale))        # float v per unit of li
    if per_li <= 0:
        raise OnChipError(f"readout '{p.name}' has no voltage scale")
    shift = max(0, int(round(math.log2(1.0 / (per_li * unit)))))
    target = int(np.clip(round(1.0 / (per_li * 2 ** shift)), 1, 254))
    return shift, target


def leaky_readout(p: Population, third_shift: int, unit: float = UNIT) -> tuple[Population, Connection]:
    """(the readout population, the target connection) for the non-spiking output ``p`` of a
    learning circuit (module docstring).  The population keeps dv = 4096 · 2^-k, so that
    everything that reads the readout's decay (the eligibility's κ) sees the κ it integrates with."""
    if p.spiking:
        raise OnChipError(f"layer '{p.name}' spikes: a leaky readout is built for a non-spiking output")
    k = leak_of(int(p.dv))
    shift, target = readout_scales(p, unit)
    zeros = np.zeros(p.n, np.int64)
    pop = Population(p.name, p.n, 4095, 4096 >> k, 0, zeros, zeros, False, p.v_scale, KIND,
                     params=(("act", 0), ("out_shift", shift), ("target", 1), ("leak_shift", k),
                             ("third_shift", int(third_shift))))
    conn = Connection(f"target->{p.name}", TARGET, p.name, target * np.eye(p.n, dtype=np.int64), 0, 8,
                      "excitatory", dst_port="target")
    return pop, conn


def is_leaky_readout(p: Population) -> bool:
    """True for a readout built by :func:`leaky_readout`."""
    return p.kind == KIND and dict(p.params).get("leak_shift", 0) > 0 and dict(p.params).get("target", 0) == 1


def logits(p: Population, w: np.ndarray, weight_exp: int, sign_mode: str, bits: int,
           z: np.ndarray) -> np.ndarray:
    """Σ_t r[t] of readout ``p`` (:func:`leaky_readout`) over hidden spikes ``z`` [T, batch, n]
    through integer weights ``w`` [n_out, n] stored as the chip stores them: the answer it reads
    (argmax), in the chip's integer arithmetic."""
    import torch
    q = dict(p.params)
    wi = fp.stored_weights(torch.as_tensor(np.asarray(w)).round().to(torch.int64), sign_mode, bits).numpy()
    li = np.zeros((z.shape[1], p.n), np.int64)
    total = np.zeros_like(li)
    for t in range(1, z.shape[0]):    # one step of synaptic delay: the readout at t reads z[t − 1]
        a = np.asarray(z[t - 1], np.int64) @ wi.T
        a = (a << weight_exp) if weight_exp >= 0 else (a >> -weight_exp)
        li = li - np.sign(li) * (np.abs(li) >> q["leak_shift"]) + a
        total += li >> q["out_shift"]
    return total


def readout_connections(circuit) -> list[Connection]:
    """The plastic forward connections into ``circuit``'s output population (the readout W)."""
    outs = set(circuit.outputs)
    return [c for c in circuit.connections if c.dst in outs and c.plastic and c.view == "forward"
            and c.dst_port == "a"]


def zeroed_readout(circuit):
    """``circuit`` with its readout W (:func:`readout_connections`) starting from zero weights.

    The on-chip readout learns with a delta rule ΔW = −η e x̄ (per step, the engine's products);
    the least-mean-squares iteration converges fastest from W = 0 along the directions its input
    hardly excites, where a random start stays (Widrow & Hoff 1960; the float e-prop trains its
    readout with Adam from the torch init instead).  Refused: a circuit without a plastic readout."""
    conns = readout_connections(circuit)
    if not conns:
        raise OnChipError("zeroed readout: the circuit has no plastic connection into its output population")
    return circuit.with_weights({c.name: np.zeros_like(np.asarray(c.weights)) for c in conns})


def split_bias(value: float, mant_bits: int = 12) -> tuple[int, int]:
    """(mantissa, exponent) with mantissa << exponent ≈ ``value`` and |mantissa| < 2^mant_bits
    (Lava's LIF bias_mant, 13-bit signed; bias_exp ≥ 0)."""
    exp = 0
    while abs(value) / 2 ** exp >= 2 ** mant_bits - 1:
        exp += 1
    return int(round(value / 2 ** exp)), exp


def fitted_readout(circuit, w: np.ndarray, b: np.ndarray, steps: int):
    """``circuit`` (an inference circuit, :func:`neurocredit.chip.session.inference_circuit`) with
    its spiking readout set to a float linear classifier of the hidden spike counts c over a
    sample of ``steps`` steps, score = W c + b (e.g. a logistic regression): W quantised to the
    readout connection's integer grid, W_int = round(s W) with s = 2^(bits) − 2 over max |W|, and b
    spread over the sample as the readout neurons' bias, s b / T per step in weight units
    (bias_mant << bias_exp = s b 2^(e + 6) / T, e the weight exponent; Lava's Dense shifts by e,
    the LIF by 6).  What a readout of these weights answers in the chip's LIF (threshold, leak,
    reset) against the linear score's own figure."""
    from dataclasses import replace

    outs = set(circuit.outputs)
    conn = next((c for c in circuit.connections if c.dst in outs and c.dst_port == "a"), None)
    if conn is None:
        raise OnChipError("fitted readout: the circuit has no forward connection into its output population")
    w, b = np.asarray(w, np.float64), np.asarray(b, np.float64)
    top = 2 ** int(conn.num_weight_bits) - 2
    s = top / max(float(np.abs(w).max()), 1e-12)
    wi = np.clip(np.round(s * w), -top, top).astype(np.int64)
    per_step = s * b / steps * 2.0 ** (int(conn.weight_exp) + fp.ACT_SHIFT)
    mant, exp = zip(*(split_bias(v) for v in per_step))
    pops = [replace(p, bias_mant=np.asarray(mant, np.int64), bias_exp=np.asarray(exp, np.int64))
            if p.name == conn.dst else p for p in circuit.populations]
    return replace(circuit, populations=tuple(pops)).with_weights({conn.name: wi})


__all__ = ["leaky_readout", "readout_scales", "leak_of", "is_leaky_readout", "logits", "readout_connections",
           "zeroed_readout", "split_bias", "fitted_readout"]
