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
    ``b_shift``: the right shift of a feedback Dense that reads the output error (log2 weight_scale +
    e_shift: it delivers hidden errors in :func:`error_unit`; one that reads a hidden error shifts by
    b_shift − e_shift); ``input_scale`` / ``target_scale``: graded input
    and target values round(scale · x) clipped to 7 bits + sign; ``noise_std``: std of the white
    noise increments; ``xi_shift``: the OU leak 2^-xi_shift per step; ``hp_shift``: the high-pass
    leak; ``e_shift``: the output error's third-factor shift; ``hp_read_shift`` /
    ``xi_read_shift``: the learned feedback reads the high-passed potential and the noise this
    many bits coarser (to fit the engine's 7- and 4-bit graded factors; its constant makes up for it).  The
    leaks, the noise std and xi_read_shift are derived from the rule (:func:`for_rule`).  The
    learning rate is :class:`~neurocredit.chip.circuits.OnChipSpec` ``lr``.  ``from_rule``: derive
    the leaks, the noise std and xi_read_shift from the rule (:func:`for_rule`), take ``lr`` as the
    rule's η per unit time with η_B = η · lr_scale (constants η·dt·c in integer units:
    :func:`product_scales`); off (the default, the measured figures): these integers, ``lr`` /
    ``feedback_lr`` per integer product (:func:`plan`)."""

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
    from_rule: bool = False


RULE_TIMES = (("xi_shift", "tau_xi"), ("hp_shift", "tau_hp"))
"""RateSpec leak shifts and the rule params (time constants) they are derived from."""
FACTOR_MAX = {"xi_read_shift": 15}
"""The largest magnitude a graded factor holds (engine extension ``ry``: 4 bits) for the read shift it sets."""
NOISE_SPAN = 3.0
"""The noise factor fits ± NOISE_SPAN stationary standard deviations (after its read shift)."""


def leak_shift(dt: float, tau: float) -> tuple[int, float]:
    """(k, relative error): the leak 2^-k nearest (in log) to an Euler step's dt/τ."""
    if dt <= 0 or tau < dt:
        raise ValueError(f"a leak needs 0 < dt <= tau, got dt {dt}, tau {tau}")
    k = max(0, int(round(np.log2(tau / dt))))
    return k, abs(2.0 ** -k - dt / tau) / (dt / tau)


def potential_scale(spec: RateSpec) -> float:
    """Integer potential units per float unit: graded inputs round(input_scale · x) through weights
    round(weight_scale · w) >> w_shift."""
    return spec.input_scale * spec.weight_scale / 2.0 ** spec.w_shift


def for_rule(params: dict, base: RateSpec = RateSpec()) -> tuple[RateSpec, dict[str, float]]:
    """``base`` with the dynamics the rule's ``params`` set (one chip step = the rule's ``dt``),
    and the relative quantisation error of each derived integer.  The OU noise
    ξ ← ξ (1 − dt/τ_ξ) + σ sqrt(2 dt/τ_ξ) N(0, 1) and the high pass
    r_HP ← r_HP + Δr − (dt/τ_HP) r_HP (Max et al. 2024) become leaks 2^-xi_shift, 2^-hp_shift
    (:func:`leak_shift`) and white-noise increments of std
    ``potential_scale`` · σ · sqrt(2 · 2^-xi_shift) (the float Euler step with the quantised leak:
    the stationary std is the rule's); ``xi_read_shift`` is the least shift that fits
    ± :data:`NOISE_SPAN` stationary stds of ξ into the ``ry`` factor.  Params the rule does not
    set keep ``base``'s integers."""
    if "dt" not in params:
        return base, {}
    dt = float(params["dt"])
    fields, errors = {}, {}
    for field, tau in RULE_TIMES:
        if tau in params:
            fields[field], errors[field] = leak_shift(dt, float(params[tau]))
    k = fields.get("xi_shift", base.xi_shift)
    if "noise_std" in params:
        sigma = float(params["noise_std"])
        if sigma < 0:
            raise ValueError(f"noise_std must be >= 0, got {sigma}")
        fields["noise_std"] = potential_scale(base) * sigma * np.sqrt(2.0 * 2.0 ** -k)
        errors["noise_std"] = 0.0
    spec = RateSpec(**{**base.__dict__, **fields})
    a = 2.0 ** -spec.xi_shift
    stationary = spec.noise_std / np.sqrt(1.0 - (1.0 - a) ** 2)
    span = NOISE_SPAN * stationary / FACTOR_MAX["xi_read_shift"]
    spec = RateSpec(**{**spec.__dict__, "xi_read_shift": max(0, int(np.ceil(np.log2(span)))) if span > 1 else 0})
    return spec, errors


def plan(params: dict, spec: RateSpec) -> tuple[RateSpec, dict[str, float], float, float, float]:
    """(integers, their quantisation errors, the learning-rate factor dt, forward constant scale,
    feedback constant scale) of a graded-rate circuit for a rule's ``params``: with
    ``spec.from_rule`` :func:`for_rule`, the rule's dt and :func:`product_scales`; else ``spec``
    as it is, 1, 1 and 2^(hp_read_shift + xi_read_shift) (the learned feedback's two factors are
    read that many bits coarser, its constant makes up for it)."""
    if not spec.from_rule:
        return spec, {}, 1.0, 1.0, 2.0 ** (spec.hp_read_shift + spec.xi_read_shift)
    derived, errors = for_rule(params, spec)
    forward, feedback = product_scales(derived)
    return derived, errors, float(params.get("dt", 1.0)), forward, feedback


def error_unit(spec: RateSpec) -> float:
    """Integer units per float unit of every error the learning engine reads (its ``ry`` on W): the
    output error r − y* (target_scale per unit) read >> e_shift; hidden errors B e >> their shifts
    come out in the same units (:func:`neurocredit.chip.rate_circuits.build_rate_circuit`)."""
    return spec.target_scale / 2.0 ** spec.e_shift


def product_scales(spec: RateSpec) -> tuple[float, float]:
    """(forward, feedback): integer weight change per (float weight change x integer product) of
    the graded products — W's rx·ry = (rate x potential_scale)(error x :func:`error_unit`), B's
    rx·ry = (high-passed output potential x potential_scale 2^out_gain / 2^hp_read_shift)
    (noise x potential_scale / 2^xi_read_shift) — with weights stored weight_scale per unit.  A
    product's constant is the rule's η·dt·c times this (weight-only products are unit-free)."""
    u = potential_scale(spec)
    forward = spec.weight_scale / (u * error_unit(spec))
    feedback = spec.weight_scale / (u * 2.0 ** (spec.out_gain - spec.hp_read_shift) * u / 2.0 ** spec.xi_read_shift)
    return forward, feedback


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
