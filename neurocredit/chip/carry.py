"""A tag-based carry of sub-LSB weight updates: the synapse's tag low-passes the rule's updates.

A hidden synapse whose every update is below one weight unit learns by stochastic rounding alone:
the weight carries about one unit of rounding noise whatever the rate, and updates of opposite
sign random-walk the weight instead of cancelling (results/onchip_study_mnist5k.md, "summary ·
H14m").  The learning engine's per-synapse tag t (Lava's ``tag_1``, 9-bit signed, saturating to
[−257, 255]) can hold the rule's updates at a finer grain, and only its low-passed value moves the
weight (a first-order carry, time constant 2^k steps)::

    dt = 2^s · (the rule's products)  −  2^-k u0 t        the rule's Δw in units of 2^-s weight LSB
    dw = 2^-(k+s) u0 t                                   the weight moves by c t / 2^s, c = 2^-k

In the steady state t = 2^(s+k) · U for a constant per-step update U, so the weight drifts by U per
step, as without the carry; updates whose signs alternate within ~2^k steps cancel in the tag.  The
engine reads every synaptic variable before any of them changes (Lava's
``_apply_learning_rules``; :mod:`neurocredit.chip.tags`), so dw reads the tag of the previous step.

s is chosen as large as the grid allows: 2^-(k+s) = 2^(k_min + 1) (``hardware/<target>.toml``
scaling_exponent_min, one octave above the floor, kept for a between-run lr schedule:
:func:`neurocredit.chip.tags.scheduled` scales dw's constant), so s = −k_min − 1 − k.  The rule's
products keep their dependency (x0) and their mantissas; their exponents rise by s (refused beyond
scaling_exponent_max).  Lava allows one decimation u<d> in a connection's dw, dd and dt together,
so a rule with a decimated (weight-decay) product is refused, as is a rule that already reads the
tag (e-prop's eligibility, :mod:`neurocredit.chip.tags`).

Limits: s + k = −k_min − 1 (6 on Loihi 2), so a longer window 2^k leaves a coarser tag grain 2^-s
weight units; the weight still moves by stochastic rounding of c t / 2^s every step (its noise now
follows the low-passed update, not each update).  The tag is reset between runs, as a fresh Lava
process starts it at 0; a connection into the output population keeps the rule's own dw.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from neurocredit.chip.errors import OnChipError
from neurocredit.chip.ir import Circuit, Product, ProductSeries
from neurocredit.chip.profile import Profile, load_profile

TAG = "t"          # the engine factor of the synapse's tag (mappings/engine.toml [eligibility] tag)
DEPENDENCY = "u0"  # the carry's products ride on every step
PRE_TRACE = (1, 1)  # (x1 impulse, x1 tau): no product reads x1, but a tagged connection keeps its engine's pre
                    # trace running, as the emulator's EligibilityState and the Lava backend treat one


def carry_shift(k: int, profile: str | Profile = "loihi2") -> int:
    """s = −k_min − 1 − k: the rule's products are scaled by 2^s into the tag, so the weight's
    constant 2^-(k+s) sits one octave above the engine's smallest constant 2^k_min."""
    prof = load_profile(profile)
    k_min = int(prof.get("learning.scaling_exponent_min"))
    s = -k_min - 1 - int(k)
    if k < 1 or s < 0:
        raise OnChipError(f"tag carry: shift k = {k} must be in [1, {-k_min - 1}] (the carry's decay 2^-k and the "
                          f"weight's constant 2^-(k+s) on the engine's grid, exponents >= {k_min})")
    return s


def carry_series(series: ProductSeries, k: int, profile: str | Profile = "loihi2") -> tuple[ProductSeries, ProductSeries]:
    """(dw, dt) of a connection whose rule compiles to ``series`` with a carry of shift ``k``
    (module docstring).  Refused: a product on a decimated tick (a decay: Lava allows one u<d> in
    dw, dd and dt), a product that reads the tag, an exponent beyond the grid after the 2^s scale."""
    prof = load_profile(profile)
    k_max = int(prof.get("learning.scaling_exponent_max"))
    s = carry_shift(k, prof)
    dt = []
    for p in series:
        if p.dependency != "x0":
            raise OnChipError(f"tag carry: product {p} rides on {p.dependency}; the carry's dt and dw ride on u0 and "
                              f"the engine allows one decimation in a connection's dw, dd and dt")
        if TAG in p.factors:
            raise OnChipError(f"tag carry: product {p} already reads the tag")
        if p.exp + s > k_max:
            raise OnChipError(f"tag carry: product {p} scaled by 2^{s} has exponent {p.exp + s} > {k_max} "
                              f"(a smaller carry shift k leaves less room; raise k)")
        dt.append(replace(p, exp=p.exp + s, term=f"{p.term} (carried, x 2^{s})"))
    dt.append(Product(-1, -int(k), DEPENDENCY, (TAG,), f"carry decay 2^-{k}"))
    dw = ProductSeries((Product(1, -int(k) - s, DEPENDENCY, (TAG,), f"carry 2^-{k} t / 2^{s}"),))
    return dw, ProductSeries(tuple(dt))


def attach_carry(circuit: Circuit, k: int, profile: str | Profile = "loihi2") -> Circuit:
    """``circuit`` with a tag carry of shift ``k`` on every plastic forward connection into a
    hidden population (not the circuit's outputs) that has no tag yet: its dw becomes the
    carry's (:func:`carry_series`), its tag learns the rule's products.  ``k`` 0: unchanged."""
    if not k:
        return circuit
    outputs = set(circuit.outputs)
    conns, done = [], []
    for c in circuit.connections:
        if c.plastic and c.view == "forward" and c.dst_port == "a" and c.dst not in outputs and not c.tag \
                and not c.plastic.extensions:
            dw, dt = carry_series(c.plastic, k, profile)
            conns.append(replace(c, plastic=dw, tag=dt, pre_trace=PRE_TRACE))
            done.append(c.name)
        else:
            conns.append(c)
    if not done:
        raise OnChipError("tag carry: the circuit has no plastic forward connection into a hidden population "
                          "without a tag")
    meta = {**circuit.meta, "tag_carry": int(k), "carried": tuple(done)}
    return replace(circuit, connections=tuple(conns), meta=meta)


# -- the emulator's step of a carried connection (numba; the same arithmetic as emulator.apply_series) --
try:                                  # optional: without numba the emulator runs apply_series
    from numba import njit
except ImportError:                   # pragma: no cover - numba is a declared dependency
    njit = None

TRACES = ("y1", "y2", "y3")   # the post traces a carried dt may read, in carry_step's order


def fast_plan(c) -> tuple | None:
    """The arrays :func:`carry_step` reads for connection ``c`` (dw: u0 products of t; dt: x0
    products of one post trace and u0 products of t, each with engine shift 0), or None where the
    connection has another form (the emulator then runs apply_series)."""
    if njit is None or not c.tag or c.view != "forward":
        return None
    dw = [(p.mant, p.exp) for p in c.plastic if p.dependency == DEPENDENCY and p.factors == (TAG,)]
    if len(dw) != len(c.plastic):
        return None
    kind, mant, exp = [], [], []
    for p in c.tag:
        if p.dependency == DEPENDENCY and p.factors == (TAG,):
            kind.append(-1)
        elif p.dependency == "x0" and len(p.factors) == 1 and p.factors[0] in TRACES:
            kind.append(TRACES.index(p.factors[0]))
        else:
            return None
        mant.append(p.mant)
        exp.append(p.exp)
    i64 = lambda v: np.asarray(v, np.int64)  # noqa: E731
    return (i64([m for m, _ in dw]), i64([e for _, e in dw]), i64(kind), i64(mant), i64(exp))


if njit is not None:
    @njit(cache=True)
    def _carry_kernel(wt, tag, x0, tr, wm, we, kind, dm, de, r_w):     # pragma: no cover - compiled
        acc_min, acc_max = -(2 ** 15) - 1, 2 ** 15 - 1
        n_chips, n_post, n_pre = tag.shape
        for c in range(n_chips):
            for i in range(n_post):
                for j in range(n_pre):
                    t_old = tag[c, i, j]
                    tv = min(max(t_old, -512), 511)
                    acc = np.int64(wt[c, j, i]) << 7
                    for p in range(wm.shape[0]):
                        cur = (tv * wm[p]) << (7 + we[p])
                        acc = min(max(acc + min(max(cur, acc_min), acc_max), acc_min), acc_max)
                    q = (acc >> 7) + (1 if r_w[c] < (acc & 127) / 128.0 else 0)
                    wt[c, j, i] = min(max(q, -256), 255)
                    acc = t_old << 7
                    for p in range(kind.shape[0]):
                        if kind[p] < 0:
                            cur = (tv * dm[p]) << (7 + de[p])
                        elif x0[c, j]:
                            cur = (min(max(tr[kind[p], c, i], -128), 127) * dm[p]) << (7 + de[p])
                        else:
                            cur = 0
                        acc = min(max(acc + min(max(cur, acc_min), acc_max), acc_min), acc_max)
                    q = (acc >> 7) + (1 if r_w[c] < (acc & 127) / 128.0 else 0)
                    tag[c, i, j] = min(max(q, -257), 255)


def carry_step(wt: np.ndarray, tag: np.ndarray, x0: np.ndarray, traces: np.ndarray, plan: tuple,
               r_w: np.ndarray) -> None:
    """One learning epoch of a carried connection, in place: ``wt`` [chips, n_pre, n_post] its
    weights (the emulator's column-major layout), ``tag`` [chips, n_post, n_pre], ``x0`` [chips,
    n_pre] the pre spikes, ``traces`` [3, chips, n_post] the engine's reading of the post traces
    y1, y2, y3 (:data:`TRACES`; :func:`neurocredit.chip.emulator.trace_values`), ``plan``
    :func:`fast_plan`'s, ``r_w`` [chips] the step's random.  Both dw and dt read the tag before the
    step (Lava's engine); the arithmetic is :func:`neurocredit.chip.emulator.apply_series`'s
    (tested equal)."""
    wm, we, kind, dm, de = plan
    _carry_kernel(wt, tag, np.ascontiguousarray(x0, np.bool_), np.ascontiguousarray(traces, np.int64), wm, we,
                  kind, dm, de, np.ascontiguousarray(r_w, np.float64))
