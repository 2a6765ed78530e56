"""Graded-rate neuron dynamics of the chip (Loihi 2 graded spikes, integer microcode neurons):
rate units and leaky integrators, in integers, one step at a time, batched over chips.

A population of kind ``'rate'`` (parameters in :attr:`~neurocredit.chip.ir.Population.params`)
sums its input compartments — ``a`` (the forward input), ``noise`` (ξ), ``third`` (the error
delivered by a feedback pathway), ``target`` (y*) — and every step computes::

    u = a + ξ                       r = f(u) >> out_shift        f = ReLU (act 1) or identity (act 0)
    h ← h + (a − a_prev) − trunc(h / 2^hp_shift)                  high-passed potential (hp_shift > 0)
    e = r − y*   (target 1)    else    e = third ⊙ f'(u)          the unit's error
    t = trunc(e / 2^third_shift)                                  its third factor

and sends r (port ``s``), e (``err``), ξ (``xi``) and h (``hp``) as graded spikes, with the
post traces y3 = clip(t, 0, 127), y2 = clip(−t, 0, 127) of the learning engine.  A population
of kind ``'integrator'`` is a leaky integrator ``v ← v − trunc(v / 2^leak_shift) + a`` that
sends v: driven by a white-noise source n[t] ~ round(N(0, σ²)) (Loihi 2's per-neuron noise
generator; here a seeded stream) it is the discretised Ornstein-Uhlenbeck process (AR(1)) that
phaseless alignment learning puts into the hidden somata (Max et al. 2024, arXiv:2212.10249);
the high-passed potential is that paper's r_HP.  A ``'rate'`` unit with ``leak_shift`` k > 0
integrates its forward input first, a ← li = li − trunc(li / 2^k) + a (a leaky readout: Bellec
et al. 2020's y[t] = κ y[t−1] + W z[t] with κ = 1 − 2^-k, its error e = r − y* at every step).

These are the equations of the former hand-written on-chip PAL network, now neuron dynamics
that any circuit can use; :mod:`neurocredit.chip.rate_circuits` builds graded-rate learning
circuits from a rule, :mod:`neurocredit.chip.emulator` steps them with :func:`step`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

RATE = "rate"
INTEGRATOR = "integrator"
KINDS = (RATE, INTEGRATOR)
IN_PORTS = ("a", "noise", "third", "target")
TRACE_MAX = 127


@dataclass(frozen=True)
class RateSpec:
    """Integers of a graded-rate learning circuit (the former on-chip PAL network's constants).

    ``weight_scale``: integer weights round(weight_scale · w) clipped to 9 bits; ``w_shift``:
    the forward Dense right shift (b = (W x) >> w_shift); ``out_gain``: the output layer reads its
    potential 2^out_gain finer than its rate (r = a >> out_gain; the high-pass sees the finer a);
    ``b_shift``: the feedback Dense right shift; ``input_scale`` / ``target_scale``: graded input
    and target values round(scale · x) clipped to 7 bits + sign; ``noise_std``: std of the white
    noise increments; ``xi_shift``: the OU leak 2^-xi_shift per step; ``hp_shift``: the high-pass
    leak; ``e_shift``: the output error's third-factor shift; ``hp_read_shift`` /
    ``xi_read_shift``: the learned feedback reads the high-passed potential and the noise this
    many bits coarser (to fit the engine's 7- and 4-bit graded factors; its constant makes up for it).  (Learning rates are the rule's,
    :class:`~neurocredit.chip.circuits.OnChipSpec` ``lr``.)"""

    weight_scale: float = 256.0
    w_shift: int = 8
    out_gain: int = 1
    b_shift: int = 12
    input_scale: float = 16.0
    target_scale: float = 16.0
    noise_std: float = 8.0
    xi_shift: int = 2
    hp_shift: int = 2
    e_shift: int = 4
    hp_read_shift: int = 1
    xi_read_shift: int = 2


def feedback_read_bits(spec: RateSpec) -> int:
    """The bits by which learned feedback reads its two graded factors coarser in total."""
    return spec.hp_read_shift + spec.xi_read_shift


def params(p) -> dict:
    """A population's graded-rate parameters as a dict (defaults 0)."""
    return {"act": 0, "out_shift": 0, "hp_shift": 0, "third_shift": 0, "target": 0, "leak_shift": 0,
            **dict(p.params)}


def _trunc_shift(x: np.ndarray, k: int) -> np.ndarray:
    """trunc(x / 2^k): the magnitude shifted, the sign kept."""
    return np.sign(x) * (np.abs(x) >> k)


def step(p, st: dict, o: dict, ins: dict[str, np.ndarray]) -> None:
    """One integer step of a graded-rate population ``p`` (module docstring) on input
    compartments ``ins`` (arrays [chips, n], missing ports 0); updates its state ``st`` and
    outputs ``o`` in place."""
    q = params(p)
    z = np.zeros_like(ins["a"])
    a = ins["a"]
    if p.kind == INTEGRATOR:
        v = st.get("v", z)
        v = v - _trunc_shift(v, q["leak_shift"]) + a
        st["v"] = v
        o["s"] = o["err"] = v
        return
    if q["leak_shift"]:               # a leaky readout: the forward input integrated first (li)
        a = st["li"] = st.get("li", z) - _trunc_shift(st.get("li", z), q["leak_shift"]) + a
    xi = ins.get("noise", z)
    u = a + xi
    relu = bool(q["act"])
    r = (np.maximum(u, 0) if relu else u) >> q["out_shift"]
    if q["hp_shift"]:
        h = st.get("hp", z)
        h = h + (a - st.get("a_prev", z)) - _trunc_shift(h, q["hp_shift"])
        st["hp"], st["a_prev"] = h, a
        o["hp"] = h
    else:
        o["hp"] = z
    if q["target"]:
        e = r - ins.get("target", z)
    else:
        e = ins.get("third", z) * (u > 0) if relu else ins.get("third", z)
    t = _trunc_shift(e, q["third_shift"])
    o["s"], o["err"], o["xi"] = r, e, xi
    o["y1"] = np.zeros_like(t)
    o["y2"], o["y3"] = np.clip(-t, 0, TRACE_MAX), np.clip(t, 0, TRACE_MAX)


def white_noise(steps: int, n: int, std: float, seed: int) -> np.ndarray:
    """Integer white-noise increments round(N(0, std²)) [steps, n] from ``default_rng(seed)``
    (the seeded stream that stands for the chip's per-neuron noise generator)."""
    rng = np.random.default_rng(seed)
    return np.round(rng.normal(0.0, std, (steps, n))).astype(np.int64)


def graded_values(x: np.ndarray, scale: float) -> np.ndarray:
    """round(scale · x) clipped to the graded payload range [−127, 127]."""
    return np.clip(np.round(scale * np.asarray(x, np.float64)), -TRACE_MAX, TRACE_MAX).astype(np.int64)
