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
"""
from __future__ import annotations

from dataclasses import replace

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
