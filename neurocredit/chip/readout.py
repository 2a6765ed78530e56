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


__all__ = ["leaky_readout", "readout_scales", "leak_of", "is_leaky_readout", "logits"]
