"""Eligibility traces on the learning engine's synaptic tag: e-prop on chip.

e-prop (Bellec et al. 2020, Nat. Commun. 11:3625, eqs. 13-14 and Methods) learns a recurrent
spiking network with, per synapse j <- i::

    e_ji[t] = ψ_j[t] x̄_i[t]            eligibility: post pseudo-derivative x pre trace
    ē_ji[t] = κ ē_ji[t−1] + e_ji[t]    filtered by the readout's decay κ
    ΔW_ji   = −η L_j[t] ē_ji[t]        L_j = Σ_k B_jk (y_k − y*_k): the third factor

Lava's / Loihi 2's learning engine holds, beside the weight, a per-synapse *tag* ``t``
(``tag_1``) learned by its own product series ``dt``, and a pre trace ``x1`` (impulse per pre
spike, exponential decay with time constant ``x1_tau``).  The rule compiler
(:mod:`neurocredit.chip.plasticity`) maps the rule's ``eligibility`` factor to ``t``
(``mappings/engine.toml`` [eligibility]); this module gives every plastic connection::

    x1     impulse I per pre spike, tau = the post neuron's membrane decay (x1 ≈ I x̄)
    y1     the post neuron's pseudo-derivative ψ (fast sigmoid, :func:`pseudo_derivative`) in
           place of its spike
    dt     = c u0 x1 y1 − (1 − κ) u0 t        (t ≈ ē in tag units; c puts ψ = 1, x1 = 127 at the
                                              tag's full scale 255 in the steady state)
    dw     = the rule's products on u0 t y3 / u0 t y2 (y3 − y2 = L, the third factor)

The engine reads every synaptic variable before any of them changes (Lava's
``_apply_learning_rules`` extracts its arguments once per epoch), so the weight learns from the
tag of the previous step.  A readout connection (post neurons with their own error, e-prop's
ψ = 1, no κ) needs no tag: its eligibility is the pre trace itself, ``dw`` on u0 x1 y3 / u0 x1 y2.

Dependencies: the tag products ride on ``u0`` (every step); Lava allows one decimation u<k> in a
rule's dw, dd and dt together, so an eligibility rule with a decimated decay term is refused, as
is a term that needs the post spike on y1 (y1 carries ψ), and a learning-rate schedule keeps a
tagged dw on u0 (:func:`scheduled`).

Two conversions keep the chip's updates those of the float rule: each connection's learning
rate is scaled by 2^(e_max − e) of its weight exponent e (:func:`exponent_steps`: one integer
weight step of a finer connection moves its post neuron less), and the feedback B that reads a
leaky readout's error is centred over the classes (:func:`centre_feedback`: the float error
softmax − one-hot sums to zero, the readout's r − y* does not).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from neurocredit.chip.errors import OnChipError
from neurocredit.chip.ir import TARGET, Circuit, Connection, Population, Product, ProductSeries, engine_scale
from neurocredit.chip.ir import engine_shift  # noqa: F401  (the engine's right shift of a product, re-exported)
from neurocredit.chip.plasticity import _table, compile_terms, requantised, scale_series, scaling_constant
from neurocredit.chip.profile import Profile, load_profile
from neurocredit.chip.readout import is_leaky_readout
from neurocredit.neurons import fixed_point as fp
from neurocredit.rules.factors import Factor
from neurocredit.rules.rule import Rule

TRACE_MAX = 127                 # 7-bit traces (x1, y1)
TAG_BOUNDS = (-257, 255)        # Lava W_TAG_1_U = 8: tag_1 saturates to [-(2^8) - 1, 2^8 - 1]


def eligibility_table() -> dict:
    """The [eligibility] section of mappings/engine.toml (tag, pre trace, ψ trace, dependency,
    units)."""
    table = _table().get("eligibility")
    if not table:
        raise OnChipError("mappings/engine.toml has no [eligibility] section: the eligibility factor "
                          "has no learning-engine counterpart")
    return table


def uses_eligibility(rule: Rule) -> bool:
    """True if a forward term of ``rule`` reads the eligibility trace."""
    return any(Factor.ELIGIBILITY in t.factors for t in rule.forward)


# -- neuron side: the pseudo-derivative ------------------------------------------------------------
def pseudo_derivative(v: np.ndarray, vth: np.ndarray | int, slope: float) -> np.ndarray:
    """ψ = floor(127 θ² / (θ + k |v − θ|)²) in [0, 127]: the fast-sigmoid pseudo-derivative
    1/(1 + k|v/θ − 1|)² of the voltage ``v`` before reset, θ = ``vth`` (Lava units, vth << 6),
    k = ``slope`` (the torch e-prop's ``surrogate_slope``; Zenke & Ganguli 2018), in integer
    arithmetic with k to 1/16."""
    theta = np.asarray(vth, np.int64) * 16
    k16 = int(round(16 * slope))
    d = np.abs(np.asarray(v, np.int64) * 16 - theta) // 16
    den = theta + k16 * d
    return np.clip((TRACE_MAX * theta * theta) // np.maximum(den * den, 1), 0, TRACE_MAX).astype(np.int64)


# -- synapse side: pre trace, tag ------------------------------------------------------------------
def pre_trace_params(dv: int, full_scale: float | None = None) -> tuple[int, int]:
    """(x1 impulse, x1 tau) for a post neuron with voltage decay ``dv`` (v ← v (4096 − dv)/4096):
    tau = −1/ln(1 − dv/4096) rounded into [1, 255] (Lava's x1_tau, 8 bits; 0 would mean no
    decay), impulse = X (1 − e^(−1/tau)) so that a pre neuron spiking every step holds x1 near
    X = ``full_scale`` (engine.toml [eligibility] pre_full_scale; at most 127)."""
    full = float(full_scale if full_scale is not None else eligibility_table()["pre_full_scale"])
    beta = 1.0 - int(dv) / 4096.0
    tau = 255 if beta >= math.exp(-1 / 255) else max(1, min(255, round(-1.0 / math.log(max(beta, 1e-12)))))
    return max(1, min(TRACE_MAX, round(full * (1.0 - math.exp(-1.0 / tau))))), tau


def pre_trace_step(x1: np.ndarray, spiked: np.ndarray, impulse: int, tau: int, r: np.ndarray) -> np.ndarray:
    """One epoch of Lava's x1 (LearningConnectionModelBitApproximate._compute_trace_histories,
    t_epoch 1): decay by e^(−1/tau) with stochastic rounding (r: the chip's trace random, one
    per chip), then the impulse where the pre neuron spiked, clipped to [0, 127]."""
    v = math.exp(-1.0 / tau) * x1
    out = (np.floor(v) + (np.asarray(r)[..., None] < v % 1)).astype(np.int64)
    return np.where(spiked, np.clip(out + int(impulse), 0, TRACE_MAX), out)


class TraceRandoms:
    """Lava's x-trace decay stream of one connection for N chips: ``default_rng(rng_seed)``, one
    draw at creation and two per step (recv_traces advances twice), the second used."""

    def __init__(self, rng_seeds: list[int], block: int = 256) -> None:
        self._g = [np.random.default_rng(s) for s in rng_seeds]
        for g in self._g:
            g.random(1)
        self._block, self._i, self._r = block, block, np.zeros((0, len(rng_seeds)))

    def step(self) -> np.ndarray:
        if self._i == self._block:
            self._r = np.stack([g.random(2 * self._block)[1::2] for g in self._g], axis=1)
            self._i = 0
        self._i += 1
        return self._r[self._i - 1]


class EligibilityState:
    """The per-chip pre traces x1 and tags t of a circuit's eligibility connections, for the
    emulator (:func:`neurocredit.chip.emulator.emulate_chips`)."""

    def __init__(self, ref: Circuit, n_chips: int, rng_seeds: list[int]) -> None:
        self.conns = {c.name: c for c in ref.plastic if c.pre_trace[1] > 0}
        self.x1 = {k: np.zeros((n_chips, np.shape(c.weights)[1]), np.int64) for k, c in self.conns.items()}
        self.tags = {k: np.zeros((n_chips, *np.shape(c.weights)), np.int64) for k, c in self.conns.items() if c.tag}
        self.randoms = {k: TraceRandoms(list(rng_seeds)) for k in self.conns}

    def __contains__(self, name: str) -> bool:
        return name in self.conns

    def factors(self, name: str, spiked: np.ndarray) -> dict[str, np.ndarray]:
        """Advance connection ``name``'s x1 by one step (``spiked``: [chips, n_pre] pre spikes);
        the factors its products read: x1 [chips, 1, n_pre] and the tag t before this step."""
        impulse, tau = self.conns[name].pre_trace
        self.x1[name] = pre_trace_step(self.x1[name], spiked, impulse, tau, self.randoms[name].step())
        out = {"x1": self.x1[name][:, None, :]}
        if name in self.tags:
            out["t"] = self.tags[name]
        return out


# -- compiler side -------------------------------------------------------------------------------
@dataclass(frozen=True)
class EligibilityPlan:
    """What the tag of one connection holds: ``tau``/``impulse`` of its pre trace, ``kappa`` the
    tag's decay (None: no tag, the eligibility is the pre trace itself), the dt series, and the
    dw series."""

    impulse: int
    tau: int
    kappa: float | None
    dt: ProductSeries
    dw: ProductSeries


def tag_series(kappa: float, profile: Profile) -> tuple[ProductSeries, float]:
    """(dt series, c): dt = c u0 x1 y1 − (1 − κ) u0 t with c such that ψ = 1 and x1 at its full
    scale hold the tag at its full scale 255 in the steady state, quantised on the m 2^k grid."""
    el = eligibility_table()
    dep, pre, psi, tag = el["dependency"], el["pre_trace"], el["pseudo_derivative"], el["tag"]
    if not 0.0 <= kappa < 1.0:
        raise OnChipError(f"eligibility decay κ = {kappa} must be in [0, 1)")
    full = min(TRACE_MAX, float(el["pre_full_scale"]))
    top = TAG_BOUNDS[1] * (1.0 - kappa) / (full * TRACE_MAX)
    try:
        m, k = scaling_constant(top * engine_scale((pre, psi)), profile, "eligibility gain")
    except OnChipError:                # a slow κ: the smallest gain (the tag tops out sooner)
        m, k = 1, int(profile.get("learning.scaling_exponent_min"))
    c = m * 2.0 ** k / engine_scale((pre, psi))
    prods = [Product(m, k, dep, (pre, psi), "eligibility ← ψ · x̄", abs(c - top) / top)]
    if kappa < 1.0:                    # (always: κ < 1 is checked above)
        md, kd = scaling_constant(-(1.0 - kappa), profile, "eligibility decay 1 − κ")
        prods.append(Product(md, kd, dep, (tag,), "eligibility decay (1 − κ)",
                             abs(-md * 2.0 ** kd - (1 - kappa)) / (1 - kappa)))
    return ProductSeries(tuple(prods)), c


def plan(rule: Rule, lr: float, kappa: float | None, dv: int, profile: str | Profile = "loihi2",
         decay_steps: int = 1) -> EligibilityPlan:
    """The eligibility of one plastic connection of ``rule`` whose post neurons decay with
    ``dv``: a tag with decay ``kappa`` (hidden neurons: κ the readout's decay, ψ on y1), or
    with ``kappa`` None the pre trace alone (a readout: ψ = 1, no filter).  The rule's terms are
    compiled by :func:`neurocredit.chip.plasticity.compile_terms` with the eligibility factor
    on the tag (u0; the compiler scales each constant by the product's engine scale, the tag
    counted in engine.toml [eligibility] tag_unit); a readout's products read the pre trace x1
    in place of the tag, counted in pre_unit."""
    prof = load_profile(profile)
    impulse, tau = pre_trace_params(dv)
    for t in rule.forward:
        if Factor.POST in t.factors:
            raise OnChipError(f"rule '{rule.name}': term {t} needs the post spike on y1, which carries the "
                              f"pseudo-derivative ψ of the eligibility trace")
    if kappa is None:                  # the eligibility is x1 itself: x1's unit, x1's engine scale
        dw = compile_terms(rule.forward, lr, "forward", prof, decay_steps, eligibility="pre_trace")
        dt = ProductSeries(())
    else:
        dw = compile_terms(rule.forward, lr, "forward", prof, decay_steps)
        dt, _ = tag_series(kappa, prof)
    ks = {p.decimation for s in (dw, dt) for p in s if p.decimation is not None}
    if len(ks) > 1:
        raise OnChipError(f"rule '{rule.name}': products {dw.dw} ; dt = {dt.dw} ride on decimations "
                          f"{sorted(ks)}; the engine allows one u<k> in a connection's dw, dd and dt")
    return EligibilityPlan(impulse, tau, kappa, dt, dw)


def attach(circuit: Circuit, rule: Rule, lr: float, slope: float, profile: str | Profile = "loihi2",
           decay_steps: int = 1) -> Circuit:
    """``circuit`` (a learning circuit of :func:`neurocredit.chip.circuits.build_circuit`) with
    the eligibility of ``rule`` on every plastic forward connection: into a hidden population a
    tag (κ = the output population's voltage decay, ψ with ``slope`` sent as y1), into the output
    population the pre trace alone; the circuit's meta gains the series (``dw``, ``dt``)."""
    outputs = set(circuit.outputs)
    out_pops = [p for p in circuit.populations if p.name in outputs]
    if not out_pops:
        raise OnChipError("an eligibility rule needs the circuit's output population (the readout) for κ")
    kappa = 1.0 - int(out_pops[0].dv) / 4096.0
    plans: dict[tuple, EligibilityPlan] = {}
    conns = []
    steps = exponent_steps(circuit)
    for c in circuit.connections:
        if not c.plastic or c.view != "forward" or c.dst_port != "a":
            conns.append(c)
            continue
        post = circuit.population(c.dst)
        key = (post.name in outputs, int(post.dv), steps[c.name])
        if key not in plans:
            plans[key] = plan(rule, lr * 2.0 ** key[2], None if key[0] else kappa, int(post.dv), profile,
                              decay_steps)
        p = plans[key]
        conns.append(replace(c, plastic=p.dw, tag=p.dt, pre_trace=(p.impulse, p.tau)))
    hidden = {c.dst for c in conns if c.tag}
    pops = [replace(p, psi_slope=float(slope)) if p.name in hidden else p for p in circuit.populations]
    first_hidden = next((p for (out, _, _), p in plans.items() if not out), None)
    first_out = next((p for (out, _, _), p in plans.items() if out), None)
    meta = dict(circuit.meta)
    if first_hidden is not None:
        meta.update(dw=first_hidden.dw.dw, dt_tag=first_hidden.dt.dw, kappa=kappa)   # meta["dt"] is the NIR time step
    if first_out is not None:
        meta["dw_out"] = first_out.dw.dw
    out = replace(circuit, populations=tuple(pops), connections=tuple(conns), meta=meta)
    return centre_feedback(out)


def scheduled(conn: Connection, series: ProductSeries, factor: float,
              profile: str | Profile = "loihi2") -> ProductSeries:
    """``series`` (the dw of ``conn``) with its constants times ``factor``: a learning-rate
    schedule between runs.  A connection with a tag keeps every product on the tag's dependency
    (u0): Lava's engine refuses a rule whose dw, dd and dt ride on different decimations, so the
    constant is re-quantised on the m 2^k grid and held at the smallest, 1·2^k_min; any other
    connection follows :func:`neurocredit.chip.plasticity.scale_series` (a constant below the
    grid moves to a slower decimation u<d>)."""
    if not conn.tag:
        return scale_series(series, factor, profile)
    prof = load_profile(profile)
    return ProductSeries(tuple(requantised(p, factor, prof) for p in series))


def exponent_steps(circuit: Circuit) -> dict[str, int]:
    """{plastic forward connection: e_max − e}: a weight LSB of a connection with weight exponent
    e moves its post neuron's input by 2^e, so the same rule (the same change of the float weight)
    changes its integer weights 2^(e_max − e) times more than a connection into the same post
    population with the coarsest exponent e_max (a recurrent R at e = 1 beside an input W at
    e = 4 learns 8 times the integer steps).  :func:`attach` multiplies each connection's learning
    rate by 2^(e_max − e), so the connection with the coarsest weights keeps ``lr``."""
    plastic = [c for c in circuit.connections if c.plastic and c.view == "forward" and c.dst_port == "a"]
    top = {}
    for c in plastic:
        top[c.dst] = max(top.get(c.dst, int(c.weight_exp)), int(c.weight_exp))
    return {c.name: top[c.dst] - int(c.weight_exp) for c in plastic}


def centre_feedback(circuit: Circuit) -> Circuit:
    """``circuit`` with every fixed feedback connection into a hidden population that reads the
    output error — a leaky readout's own error (port ``err``) or a spiking readout's error units
    (e = g (z − y*)) — centred over the readout's units: B_jk − mean_k B_jk, kept even (Lava's
    mixed-sign weights).  The float e-prop's error softmax(y) − y* sums to zero over the classes, so its
    learning signal L_j = Σ_k B_jk e_k is the same for B and the centred B; the readout's
    error on chip, e = r − y* (:mod:`neurocredit.chip.readout`), does not sum to zero, and its
    common part Σ_k e_k would reach hidden neuron j as (Σ_k B_jk) ē, the same sign on every
    step (measured on seqdigits 8-64-10: the hidden layer's rate fell from 0.11 to 0.04 spikes
    per step in one epoch, 39 of 64 neurons silent).  The centred B passes the error's
    differences between classes only, as the float learning signal does.  A spiking readout's
    error g (z − y*) does not sum to zero either (Σ_k = g (Σ_k z_k − 1) while its units are
    silent)."""
    leaky = {p.name for p in circuit.populations if is_leaky_readout(p)}
    # a spiking readout's graded error units (e = g (z − y*), the population the target drives)
    units = {c.dst for c in circuit.connections if c.src == TARGET} & \
        {p.name for p in circuit.populations if p.kind == "graded"}
    outputs = set(circuit.outputs)
    conns = []
    for c in circuit.connections:
        if c.dst_port == "third" and c.dst not in outputs and not c.plastic and \
                ((c.src in leaky and c.src_port == "err") or c.src in units):
            b = np.asarray(c.weights, np.float64)
            c = replace(c, weights=2 * np.round((b - b.mean(axis=1, keepdims=True)) / 2).astype(np.int64))
        conns.append(c)
    return replace(circuit, connections=tuple(conns))


def frozen(circuit: Circuit, names: list[str] | tuple[str, ...]) -> Circuit:
    """``circuit`` with the plastic connections ``names`` frozen: their dw and their tag's dt
    removed (they keep their initial weights, and :func:`neurocredit.chip.session.inference_circuit`
    keeps them).  Refused: a name that is not a plastic connection of the circuit."""
    plastic = {c.name for c in circuit.plastic}
    bad = [n for n in names if n not in plastic]
    if bad or not names:
        raise OnChipError(f"freeze: {bad or 'nothing'} is not a plastic connection (plastic: {sorted(plastic)})")
    conns = tuple(replace(c, plastic=ProductSeries(()), tag=ProductSeries(()), pre_trace=(0, 0))
                  if c.name in names else c for c in circuit.connections)
    return replace(circuit, connections=conns, meta={**circuit.meta, "frozen": tuple(names)})


def readout_only(circuit: Circuit) -> Circuit:
    """``circuit`` with every tagged (hidden) connection frozen (:func:`frozen`), so only the
    readout learns (the hidden layer keeps its initial weights).  A diagnostic: it splits the blame
    between the readout's rule and the hidden layer's learning."""
    names = tuple(c.name for c in circuit.connections if c.tag)
    if not names:
        raise OnChipError("readout_only: the circuit has no tagged (eligibility) connection to freeze")
    return frozen(circuit, names)


def psi_of(p: Population, v: np.ndarray, vth: np.ndarray | int) -> np.ndarray:
    """The ψ a population with ``psi_slope`` sends as y1 (voltage ``v`` before reset, ``vth``
    its threshold mantissa)."""
    return pseudo_derivative(v, np.asarray(vth, np.int64) << fp.VTH_SHIFT, p.psi_slope)


def rate_regulariser(circuit: Circuit, strength: float, target: float) -> Circuit:
    """``circuit`` (with :func:`attach`'s eligibility) with e-prop's firing-rate regulariser in
    every tagged hidden population's learning signal (Bellec et al. 2020, Methods, "Firing rate
    regularization": ΔW_ji += −η_reg (f_j − f₀) ē_ji)::

        L_j[t] += λ (z_j[t−1] − f₀ Σ_k y*_k[t−1])    λ = ``strength`` third-factor units per
                                                     spike, f₀ = ``target`` spikes per step

    as data, two fixed connections into the population's third-factor compartment (summed before
    its shift, weights in units of 2^third_shift): its own spikes on the diagonal, weight λ, and
    the target source, every weight −λ f₀ — while a sample plays, the one-hot target stream spikes
    once per step (session.sample_stream, target rate 1), so it is the always-on input the engine
    otherwise lacks.  The tagged connections' dw = −c u0 (y3 − y2) t then adds −c λ (f_j − f₀) ē:
    a neuron below f₀ has its tagged weights pushed up, one above it down.  (A constant product
    c λ f₀ u0 t on the tag is not an option: its engine shift is 7 bits finer than u0 y3 t's, so
    the smallest constant 1·2^k_min is worth λ f₀ ≈ 32 learning-signal units.)  Refused: a
    strength or target that is not positive, weights that round to 0 or leave the 8-bit range."""
    if strength <= 0 or not 0 < target < 1:
        raise OnChipError(f"rate regulariser: strength {strength} must be > 0 and target {target} in (0, 1) "
                          f"spikes per step")
    hidden = sorted({c.dst for c in circuit.connections if c.tag})
    if not hidden:
        raise OnChipError("rate regulariser: the circuit has no tagged (eligibility) connection")
    n_target = int(circuit.meta["n_target"])
    conns = list(circuit.connections)
    for name in hidden:
        p = circuit.population(name)
        g, g0 = float(strength) * 2.0 ** int(p.third_shift), float(strength) * target * 2.0 ** int(p.third_shift)
        exp = max(0, math.ceil(math.log2(g / 254)))
        w, w0 = int(round(g / 2 ** exp)), int(round(g0 / 2 ** exp))
        if w0 < 1:
            raise OnChipError(f"rate regulariser: λ f₀ 2^third_shift = {g0:.3g} rounds to 0 at weight exponent "
                              f"{exp} (raise the strength or the target)")
        conns.append(Connection(f"{name}->{name}:rate", name, name, w * np.eye(p.n, dtype=np.int64), exp, 8,
                                "excitatory", dst_port="third"))
        conns.append(Connection(f"{TARGET}->{name}:rate", TARGET, name, np.full((p.n, n_target), -w0, np.int64),
                                exp, 8, "inhibitory", dst_port="third"))
    meta = {**circuit.meta, "rate_reg": (float(strength), float(target))}
    return replace(circuit, connections=tuple(conns), meta=meta)
