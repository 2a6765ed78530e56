"""Local rules -> Loihi on-chip learning: dw strings, error pathways, locality refusals.

From a :class:`~neurocredit.rules.Rule` (never a hand-written string):

* every forward term ``c * third * pre`` becomes two products of a ``Loihi3FLearningRule``::

      dW = eta c e x   with   x = x0 (the pre spike),  e = y3 - y2 (the post neuron's signed
      third factor, sent as two 7-bit traces: y3 = max(e, 0), y2 = max(-e, 0))
      -> "m * 2^k * x0 * y3 - m * 2^k * x0 * y2"     (m in [-8, 7], k in [-7, 8])

* the rule's feedback pathway becomes real connections into each hidden layer's third-factor
  port (``ThirdFactorLIF.a_third_factor_in``): DFA / sparse DFA from the output error neurons
  (a ``GradedVec`` holding e_out = z_out - y*), FA from the next layer's error (its ``s_err``),
  DRTP from the target source.  The output layer's third factor is its own error (identity).

* learned feedback (Kolen-Pollack: ``Feedback('learned', 'next')`` with a post x pre term) makes
  B_l plastic too: a :class:`~neurocredit.lava.processes.transposed_process.TransposedLearningDense`
  whose synapse learns from the spike of the neuron it drives and the signed error it carries,
  ΔB_l = c s_l ⊗ ε_{l+1} (the same products as W_{l+1}'s, on the transposed view).

* a weight-decay term ``c * w`` becomes ``m * 2^k * u<d> * w``: Lava's decimated dependency
  u<d> applies it every 2^d steps, so that m 2^k / 2^d ≈ lr · c / decay_steps (the rule decays
  once per update, the chip learns every step of a ``decay_steps``-step sample) although that
  is below the engine's smallest constant 2^-7 per step.

* :func:`check_onchip` refuses, before compiling, anything the synapse cannot see (via
  :mod:`neurocredit.rules.locality`: "needs W2ᵀ, the transposed weight of layer fc2"), and
  anything the learning engine cannot compute (factors or pathways with no chip counterpart).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from neurocredit.errors import UserError
from neurocredit.lava.profile import Profile, load_profile
from neurocredit.rules.factors import Factor
from neurocredit.rules.locality import check_locality
from neurocredit.rules.rule import Rule
from neurocredit.sim.emulator import INPUT, Circuit, Connection, Population

TARGET = "target"
ERROR = "error"
SUPPORTED_PATHWAYS = {("random", "output"): "DFA", ("sparse", "output"): "sparse DFA",
                      ("random", "next"): "FA", ("sparse", "next"): "sparse FA",
                      ("random", "target"): "DRTP", ("sparse", "target"): "sparse DRTP",
                      ("learned", "next"): "learned FA (Kolen-Pollack)"}
HEBB = frozenset({Factor.PRE, Factor.POST})
DELTA_FACTORS = frozenset({Factor.THIRD, Factor.PRE})
DECAY = frozenset({Factor.WEIGHT})
MAX_DECIMATION = 9       # Lava's rule parser reads one digit after u


class OnChipError(UserError):
    """A rule cannot be compiled to on-chip learning; the message names the quantity."""


def refuse_non_local(rule: Rule, layer_names: list[str]) -> None:
    """Raise OnChipError naming every quantity a synapse of ``rule`` would need but cannot see
    (:func:`neurocredit.rules.locality.check_locality`); the first check of every on-chip path."""
    violations = check_locality(rule, layer_names)
    if violations:
        raise OnChipError(f"rule '{rule.name}' cannot learn on chip, it is not local: "
                          + "; ".join(str(v) for v in violations))


def learns_in_mirror_phases(rule: Rule) -> bool:
    """Whether ``rule``'s feedback B is learned from noise in mirror phases (weight mirror,
    :mod:`neurocredit.lava.onchip_wm`) rather than while training."""
    fb = rule.feedback
    return fb is not None and fb.kind == "learned" and fb.drive == "noise"


def check_onchip(rule: Rule, layer_names: list[str]) -> None:
    """Refuse non-local rules (naming the quantity) and rules the learning engine cannot run."""
    refuse_non_local(rule, layer_names)
    if rule.dynamics != "feedforward":
        raise OnChipError(f"rule '{rule.name}': error dynamics '{rule.dynamics}' have no on-chip "
                          f"counterpart here (only one-pass feedback pathways)")
    for term in rule.forward:
        if frozenset(term.factors) not in (DELTA_FACTORS, DECAY):
            raise OnChipError(f"rule '{rule.name}': term {term} is not compiled; the on-chip rule "
                              f"supports third x pre (x0 * y2/y3) and weight-decay (u<d> * w) terms")
    fb = rule.feedback
    if fb is None or (fb.kind, fb.source) not in SUPPORTED_PATHWAYS or fb.module_size not in (None, 1):
        what = "none" if fb is None else f"{fb.kind} from {fb.source}"
        raise OnChipError(f"rule '{rule.name}': feedback pathway '{what}' is not compiled to chip "
                          f"connections (supported: {', '.join(SUPPORTED_PATHWAYS.values())})")
    if learns_in_mirror_phases(rule):
        from neurocredit.lava.onchip_wm import check_onchip_wm
        check_onchip_wm(rule)
        return
    if fb.kind == "learned":
        if fb.drive != "error":
            raise OnChipError(f"rule '{rule.name}': learned feedback driven by '{fb.drive}' is not compiled "
                              f"(only by the error it carries, as Kolen-Pollack, or by noise in a mirror "
                              f"phase, as weight mirror)")
        for term in fb.terms:
            if frozenset(term.factors) not in (HEBB, DECAY):
                raise OnChipError(f"rule '{rule.name}': feedback term {term} is not compiled (supported: "
                                  f"post spike x the error the synapse carries, weight decay)")
        if not any(frozenset(t.factors) == HEBB for t in fb.terms):
            raise OnChipError(f"rule '{rule.name}': learned feedback without a post x pre term does not learn")


def scaling_constant(value: float, profile: Profile) -> tuple[int, int]:
    """(m, k) with m 2^k nearest to ``value``, m in the learning engine's signed 4-bit mantissa
    range, k in its exponent range.  Refuses values that quantise to 0 or overflow."""
    m_bits = int(profile.get("learning.scaling_mantissa_bits"))
    k_lo, k_hi = int(profile.get("learning.scaling_exponent_min")), int(profile.get("learning.scaling_exponent_max"))
    m_max = 2 ** (m_bits - 1) - 1
    if value == 0 or not math.isfinite(value):
        raise OnChipError(f"learning-rate constant {value} cannot be a scaling constant")
    k = int(np.clip(math.ceil(math.log2(abs(value) / m_max)), k_lo, k_hi))
    m = int(np.clip(round(value / 2 ** k), -m_max - 1, m_max))
    if m == 0:
        raise OnChipError(f"learning-rate constant {value:.3g} is below the smallest scaling constant "
                          f"1·2^{k_lo} of the learning engine")
    if abs(m * 2.0 ** k - value) > 0.5 * abs(value):
        raise OnChipError(f"learning-rate constant {value:.3g} is outside the scaling constant range "
                          f"[-{m_max + 1}·2^{k_hi}, {m_max}·2^{k_hi}]")
    return m, k


def decay_product(value: float, profile: Profile) -> tuple[int, int, str, str]:
    """(m, k, 'w', 'u<d>') with m 2^k / 2^d nearest to ``value`` (a weight change per step per
    weight unit): the smallest decimation d whose constant is within 1/16 of ``value``, else the
    closest.  Refuses a value that no (m, k, d) reaches."""
    best = None
    for d in range(MAX_DECIMATION + 1):
        try:
            m, k = scaling_constant(value * 2 ** d, profile)
        except OnChipError:
            continue
        err = abs(m * 2.0 ** (k - d) - value) / abs(value)
        if best is None or err < best[0]:
            best = (err, m, k, d)
        if err <= 1 / 16:
            break
    if best is None or best[0] > 0.5:
        raise OnChipError(f"weight-decay constant {value:.3g} per step is outside what m 2^k u<d> reaches "
                          f"(d <= {MAX_DECIMATION})")
    _, m, k, d = best
    return m, k, "w", f"u{d}"


def term_products(terms, lr: float, profile: Profile, decay_steps: int = 1) -> tuple[tuple[int, int, str, str], ...]:
    """Lava dw products (mantissa, exponent, factor, dependency) for ``terms``: a signed-error
    term (third x pre, or post x pre on learned feedback) gives ``m 2^k x0 y3 − m 2^k x0 y2``
    with m 2^k = lr · c; a weight term gives the decimated decay ``m 2^k u<d> w`` with
    m 2^k / 2^d = lr · c / decay_steps (the rule decays once per update; on chip one update is
    spread over ``decay_steps`` learning steps)."""
    out = []
    for term in terms:
        if frozenset(term.factors) == DECAY:
            out.append(decay_product(lr * term.coef / decay_steps, profile))
            continue
        m, k = scaling_constant(lr * term.coef, profile)
        out.append((m, k, "y3", "x0"))          # + eta c x0 e+
        out.append((-m, k, "y2", "x0"))         # - eta c x0 e-
    return tuple(out)


def products(rule: Rule, lr: float, profile: Profile) -> tuple[tuple[int, int, str, str], ...]:
    """Lava dw products for ``rule``'s forward terms (:func:`term_products`).

    ``lr`` is the learning rate in weight units per (pre spike x third-factor unit)."""
    return term_products(rule.forward, lr, profile)


def scale_products(prods: tuple, factor: float, profile: str | Profile = "loihi2") -> tuple:
    """``prods`` with every scaling constant multiplied by ``factor`` and re-quantised to the
    learning engine's (mantissa, exponent) grid (a learning-rate schedule between runs; the
    constants never fall below the smallest representable 1·2^k_min)."""
    prof = load_profile(profile) if isinstance(profile, str) else profile
    k_lo = int(prof.get("learning.scaling_exponent_min"))
    out = []
    for m, k, trace, dep in prods:
        if dep.startswith("u"):                       # decay: may move to a slower decimation
            try:
                out.append(decay_product(m * 2.0 ** (k - int(dep[1:])) * factor, prof))
            except OnChipError:                       # the slowest decay the engine reaches
                out.append((1 if m > 0 else -1, k_lo, trace, f"u{MAX_DECIMATION}"))
            continue
        try:
            m2, k2 = scaling_constant(m * 2.0 ** k * factor, prof)
        except OnChipError:
            m2, k2 = (1 if m > 0 else -1), k_lo
        out.append((m2, k2, trace, dep))
    return tuple(out)


def dw_string(prods: tuple) -> str:
    """The ``Loihi3FLearningRule`` dw string of ``prods`` (generated, never written by hand)."""
    parts = []
    for m, k, trace, dep in prods:
        sign = "-" if m < 0 else "+"
        parts.append(f"{sign} {abs(m)} * 2^{k} * {dep} * {trace}")
    s = " ".join(parts)
    return s[2:] if s.startswith("+ ") else "-" + s[2:]


@dataclass
class OnChipSpec:
    """Integer parameters of an on-chip learning network (see :func:`build_circuit`)."""

    error_gain: int = 16          # e_out = gain (z_out - y*) at the GradedVec error neurons
    feedback_scale: float = 64.0  # B_int = round(feedback_scale * B)
    third_shift: int = 4          # hidden t = trunc(B_int e / 2^third_shift)
    out_third_shift: int = 0      # output t = trunc(e_out / 2^out_third_shift)
    lr: float = 2 ** -4           # weight units per (spike x third-factor unit)
    gate: float | None = None     # hidden box-car derivative: learn where v >= gate * threshold
    decay_steps: int = 16         # weight decay −lr·λ·w spread over this many steps (one sample = one update)
    mirror_rate: float = 0.125    # weight mirror: Bernoulli noise spike probability per step (onchip_wm)
    mirror_shift: int | None = None  # weight mirror: the response W ξ is read >> this (None: per layer,
                                    # so that B settles at random FA feedback's size, onchip_wm.mirror_shifts)
    mirror_steps: int = 2048      # weight mirror: steps per mirror phase
    mirror_lr: float = 1.6e-3     # weight mirror: η_B per step (time constant 1/η_B ≈ 640 steps)
    mirror_every: int = 256       # weight mirror: training samples between mirror phases


@dataclass(frozen=True)
class StreamTiming:
    """How samples are streamed through an on-chip learning circuit: ``steps`` input steps per
    sample, ``blank`` silent steps after it, the target one-hot from ``target_delay`` steps
    after the input starts to ``target_delay`` steps after it ends."""

    steps: int
    blank: int
    target_delay: int


def stream_timing(n_hidden: int) -> StreamTiming:
    """Default streaming for a circuit with ``n_hidden`` hidden layers (measured on digits,
    benchmarks/onchip_accuracy.py).

    One hidden layer: 16 steps, target delay = the 2 Dense hops, blank 4.  Deeper: the untrained
    output answers about 2 steps per hop after the input starts (6 for 64-128-64-10), so the
    target waits 2·hops; FA's error reaches layer 1 one feedback hop per layer later, so the
    blank is 4·hops (with blank 8 for two hidden layers, 19 % of layer 1's x0·e product fell on
    the next sample); 24 input steps, since a 64-neuron second layer's rate code over 16 steps
    held FA at 85.9 % (93.1 % with 24)."""
    if n_hidden < 1:
        raise OnChipError(f"an on-chip learning circuit needs at least one hidden layer, got {n_hidden}")
    if n_hidden == 1:
        return StreamTiming(steps=16, blank=4, target_delay=2)
    hops = n_hidden + 1
    return StreamTiming(steps=24, blank=4 * hops, target_delay=2 * hops)


def default_gate(rule: Rule, n_hidden: int) -> float | None:
    """The hidden box-car derivative gate (fraction of threshold) for ``rule``: 0.3 where the
    rule multiplies by f' and the net has one hidden layer; None (no gate) where it has no f'
    or is deeper: there the gate lets weights only ratchet up (a neuron pushed below the gate
    stops learning), the hidden layers saturate and the second layer's code collapses
    (DFA 64-128-64-10, seed 0: 35.6 % with gate 0.6, 90.0 % without)."""
    derivative = rule.feedback is not None and rule.feedback.derivative
    return 0.3 if (derivative and n_hidden == 1) else None


def random_feedback(rule: Rule, sizes: list[int], seed: int) -> list[np.ndarray]:
    """Float feedback matrices B_l (n_l x n_source) for a fresh ``sizes`` network: entries
    N(0, 1/n_l) (n_l the receiving layer's width), for a sparse pathway zeroed with
    probability ``sparsity`` and rescaled by 1/sqrt(1 - sparsity); the source is the next
    layer (FA, KP: B_l is n_l x n_(l+1)), or the output error or the target (DFA, DRTP: n_l x n_L).
    Drawn from ``numpy.random.default_rng(seed + 1)``."""
    fb = rule.feedback
    if fb is None:
        raise OnChipError(f"rule '{rule.name}' has no feedback pathway")
    rng = np.random.default_rng(seed + 1)
    out = []
    for l in range(len(sizes) - 2):
        n_src = sizes[l + 2] if fb.source == "next" else sizes[-1]
        b = rng.normal(0, 1 / np.sqrt(sizes[l + 1]), (sizes[l + 1], n_src))
        if fb.kind == "sparse":
            b = b * (rng.random(b.shape) >= fb.sparsity) / np.sqrt(1 - fb.sparsity)
        out.append(b)
    return out


def build_circuit(base: Circuit, rule: Rule, feedback: list[np.ndarray], spec: OnChipSpec,
                  profile: str | Profile = "loihi2") -> Circuit:
    """On-chip learning version of a compiled feedforward fixed-point circuit ``base``
    (INPUT -> pop_1 -> ... -> pop_L): plastic forward connections, ThirdFactorLIF neurons,
    GradedVec error neurons, and the rule's feedback pathway as Dense connections.

    ``feedback[l]`` is hidden layer l's float B (n_l x n_source) as the torch backend builds it."""
    prof = load_profile(profile)
    pops = [p for p in base.populations]
    names = [p.name for p in pops]
    check_onchip(rule, [f"fc{i + 1}" for i in range(len(pops))])
    for p in pops:
        if not p.spiking:
            raise OnChipError(f"layer '{p.name}' is a voltage readout (NIR LI/CubaLI/I): on-chip learning needs "
                              f"spiking layers, the output's spike counts are its answer (export with "
                              f"`--readout lif`)")
    prods = term_products(rule.forward, spec.lr, prof, spec.decay_steps)
    fb = rule.feedback
    mirror = learns_in_mirror_phases(rule)
    fb_prods = (term_products(fb.terms, spec.lr * fb.lr_scale, prof, spec.decay_steps)
                if fb.kind == "learned" and not mirror else ())
    hidden_gate = -(2 ** 30)
    new_pops = []
    for i, p in enumerate(pops):
        hidden = i < len(pops) - 1
        gate = int(spec.gate * (int(p.vth) << 6)) if (hidden and spec.gate is not None) else hidden_gate
        new_pops.append(Population(p.name, p.n, p.du, p.dv, p.vth, p.bias_mant, p.bias_exp, True, p.v_scale,
                                   "third", spec.third_shift if hidden else spec.out_third_shift, gate))
    out = pops[-1]
    new_pops.append(Population(ERROR, out.n, 0, 0, 0, np.zeros(out.n, np.int64), np.zeros(out.n, np.int64),
                               True, 1.0, "graded"))
    conns = []
    for c in base.connections:
        conns.append(Connection(c.name, c.src, c.dst, np.asarray(c.weights), c.weight_exp, c.num_weight_bits,
                                "mixed", plastic=prods))
    eye = np.eye(out.n, dtype=np.int64)
    conns += [Connection("out->error", out.name, ERROR, spec.error_gain * eye, 0, 8, "excitatory"),
              Connection("target->error", TARGET, ERROR, -spec.error_gain * eye, 0, 8, "inhibitory"),
              Connection("error->out", ERROR, out.name, eye, 0, 8, "excitatory", dst_port="third")]
    b_exp = 0
    if mirror:                           # B stored 2^k finer, read with weight_exp -k (onchip_wm)
        from neurocredit.lava.onchip_wm import MIRROR_PRECISION
        b_exp = -MIRROR_PRECISION
    for l in range(len(pops) - 1):
        b = np.round(spec.feedback_scale * 2.0 ** -b_exp * np.asarray(feedback[l])).astype(np.int64)
        b = np.clip(b, -256, 254)
        b = 2 * (b // 2)                     # Lava keeps mixed-sign weights even
        src, port = {"output": (ERROR, "s"), "target": (TARGET, "s"),
                     "next": (names[l + 1], "err")}[fb.source]
        conns.append(Connection(f"B{l + 1}", src, names[l], b, b_exp, 8, "mixed", src_port=port,
                                dst_port="third", plastic=fb_prods))
    meta = {**base.meta, "rule": rule.name, "dw": dw_string(prods), "n_target": out.n}
    b_names = tuple(f"B{l + 1}" for l in range(len(pops) - 1))
    if fb_prods:
        meta.update({"transposed": b_names, "dw_B": dw_string(fb_prods)})
    circuit = Circuit(base.n_in, new_pops, conns, base.outputs, True, meta)
    if mirror:                           # B fixed while training, learned in mirror phases (onchip_wm)
        from neurocredit.lava.onchip_wm import mirror_products, mirror_shifts
        mp = mirror_products(rule, spec, prof)
        meta.update({"mirror": b_names, "mirror_products": mp, "dw_B": dw_string(mp), "mirror_spec": spec})
        meta["mirror_shifts"] = mirror_shifts(circuit, spec)
    return circuit


def run_lava(circuit: Circuit, inputs: dict[str, np.ndarray], rng_seed: int = 0,
             record: list[str] | None = None) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Run an on-chip learning circuit on Loihi2SimCfg fixed point for the length of
    ``inputs`` ({INPUT: [T, n_in], TARGET: [T, n_out]}); returns (final weights, records
    [T, n] of the spikes of the populations in ``record``).

    Populations: ``ThirdFactorLIF`` neurons (with the generated ``Loihi3FLearningRule`` of their
    incoming plastic connections), ``GradedVec`` error neurons.  Connections: ``LearningDense``
    (plastic forward), ``Dense`` (fixed, graded where they carry errors), and for the learned
    feedback named in ``circuit.meta['transposed']`` a ``TransposedLearningDense`` (Lava's own
    learning engine on Bᵀ); its weights are returned as B, as the emulator's."""
    from lava.magma.core.learning.learning_rule import Loihi3FLearningRule
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.dense.process import Dense, LearningDense
    from lava.proc.graded.process import GradedVec
    from lava.proc.io.sink import RingBuffer as Sink
    from lava.proc.io.source import RingBuffer as Source
    from lava.utils.weightutils import SignMode

    from neurocredit.lava.processes.process import ThirdFactorLIF
    from neurocredit.lava.processes.transposed_process import TransposedLearningDense
    from neurocredit.lava.run import LavaNet, lava_session, seed_everything

    def learning_rule(prods: tuple) -> Loihi3FLearningRule:
        return Loihi3FLearningRule(dw=dw_string(prods), t_epoch=1, rng_seed=rng_seed)

    seed_everything(rng_seed)
    steps = next(iter(inputs.values())).shape[0]
    record = list(record or [])
    transposed = set(circuit.meta.get("transposed", ()))
    sources = {k: Source(data=np.asarray(v, dtype=np.int32).T) for k, v in inputs.items()}
    procs = {}
    for p in circuit.populations:
        if p.kind == "graded":
            procs[p.name] = GradedVec(shape=(p.n,), vth=int(p.vth))
            continue
        plastic_in = [c for c in circuit.connections if c.dst == p.name and c.plastic and c.name not in transposed]
        procs[p.name] = ThirdFactorLIF(shape=(p.n,), du=int(p.du), dv=int(p.dv), vth=int(p.vth),
                                       bias_mant=np.asarray(p.bias_mant, np.int32),
                                       bias_exp=np.asarray(p.bias_exp, np.int32),
                                       third_shift=int(p.third_shift), gate_lo=int(p.gate_lo),
                                       learning_rule=learning_rule(plastic_in[0].plastic) if plastic_in else None,
                                       name=p.name)
    modes = {"mixed": SignMode.MIXED, "excitatory": SignMode.EXCITATORY, "inhibitory": SignMode.INHIBITORY}
    dense = {}
    for c in circuit.connections:
        w = np.asarray(c.weights, dtype=np.int32)
        common = dict(weight_exp=int(c.weight_exp), num_weight_bits=int(c.num_weight_bits),
                      sign_mode=modes[c.sign_mode], name=c.name)
        if c.name in transposed:
            d = TransposedLearningDense(weights_out=w, learning_rule=learning_rule(c.plastic), **common)
        elif c.plastic:
            d = LearningDense(weights=w, learning_rule=learning_rule(c.plastic), **common)
        else:
            graded = c.src == ERROR or c.src_port == "err"
            d = Dense(weights=w, num_message_bits=24 if graded else 0, **common)
        src = sources[c.src] if c.src in sources else procs[c.src]
        (src.s_out if c.src in sources or c.src_port == "s" else src.s_err).connect(d.s_in)
        dst = procs[c.dst]
        d.a_out.connect(dst.a_third_factor_in if c.dst_port == "third" else dst.a_in)
        if c.name in transposed:
            dst.s_out.connect(d.s_in_x0)
        elif c.plastic:
            dst.s_out_bap.connect(d.s_in_bap)
            dst.s_out_y1.connect(d.s_in_y1)
            dst.s_out_y2.connect(d.s_in_y2)
            dst.s_out_y3.connect(d.s_in_y3)
        dense[c.name] = d
    sinks = {}
    for k in record:
        sinks[k] = Sink(shape=(circuit.population(k).n,), buffer=steps)
        procs[k].s_out.connect(sinks[k].a_in)
    net = LavaNet(next(iter(sources.values())), dense, procs, sinks, True)
    with lava_session(net) as proc:
        proc.run(condition=RunSteps(num_steps=steps), run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
        weights = {k: np.asarray(d.weights.get()).astype(np.int64) for k, d in dense.items()}
        recs = {k: np.asarray(s.data.get()).T.astype(np.int64) for k, s in sinks.items()}
    weights.update({k: np.ascontiguousarray(weights[k].T) for k in transposed})
    return weights, recs


def onchip_status(rule: Rule, n_layers: int = 3) -> tuple[bool, str]:
    """(compiles to on-chip learning, reason) for tables such as ``neurocredit rules``: the
    one-pass pathways here, predictive coding by :func:`neurocredit.lava.onchip_pc.check_onchip_pc`,
    PAL by :func:`neurocredit.lava.onchip_pal.check_onchip_pal` (one hidden layer)."""
    names = [f"fc{i + 1}" for i in range(n_layers)]
    try:
        if rule.dynamics == "predictive_coding":
            from neurocredit.lava.onchip_pc import check_onchip_pc
            check_onchip_pc(rule, names)
            return True, "relaxed PC: Loihi3FLearningRule on W, learned B on TransposedLearningDense"
        if rule.dynamics == "pal":
            from neurocredit.lava.onchip_pal import check_onchip_pal
            check_onchip_pal(rule, names[:2])
            return True, "PAL: graded-rate processes, noise + high-pass learning (custom models)"
        check_onchip(rule, names)
    except OnChipError as exc:
        return False, str(exc)
    fb = rule.feedback
    if learns_in_mirror_phases(rule):
        return True, ("weight mirror: Loihi3FLearningRule x0*y2/y3 + feedback Dense, B learned in mirror phases "
                      "(noise spikes x the next layer's response) on TransposedLearningDense")
    how = "learned B on TransposedLearningDense" if fb.kind == "learned" else "feedback Dense"
    return True, f"{SUPPORTED_PATHWAYS[(fb.kind, fb.source)]}: Loihi3FLearningRule x0*y2/y3 + {how}"


def read_learning_graph(graph_or_path) -> tuple:
    """(graph, rule, learning spec, where) of a NIR graph or file that carries its learning rule
    (``neurocredit export`` / ``neurocredit.nir.load.attach_rule``); ``where`` names it for
    messages.  Refuses a graph without a rule."""
    from pathlib import Path

    from neurocredit.nir import schema
    from neurocredit.nir.load import read_graph

    where, graph = "the NIR graph", graph_or_path
    if isinstance(graph_or_path, (str, Path)):
        where, graph = f"NIR file '{graph_or_path}'", read_graph(graph_or_path)
    learning = schema.read_learning(graph)
    if learning is None:
        raise OnChipError(f"{where} carries no learning rule; attach one with "
                          "neurocredit.nir.load.attach_rule (or `neurocredit export --rule`)")
    return graph, schema.rule_from_dict(learning["rule"]), learning, where


def feedback_matrices(graph, learning: dict, where: str = "the NIR graph") -> list[np.ndarray]:
    """The float feedback matrices B_l the learning spec locates in node metadata, in layer order."""
    out = []
    for l, fb in enumerate(learning.get("feedback", [])):
        node, key = fb["matrix"]["node"], fb["matrix"]["key"]
        meta = getattr(graph.nodes.get(node), "metadata", None) or {}
        if key not in meta:
            raise OnChipError(f"{where}: feedback matrix B of hidden layer {l + 1} ({key!r} of node {node!r}) "
                              f"is missing")
        out.append(np.asarray(meta[key], dtype=np.float64))
    return out


def learning_from_nir(graph, profile: str | Profile = "loihi2"):
    """(rule, feedback matrices B_l, compiled fixed-point circuit) of a NIR graph or file that
    carries its learning rule."""
    from neurocredit.lava.compile import compile_graph

    graph, rule, learning, where = read_learning_graph(graph)
    return rule, feedback_matrices(graph, learning, where), compile_graph(graph, profile).fixed_circuit


def circuit_from_nir(graph, spec: OnChipSpec | None = None, profile: str | Profile = "loihi2") -> Circuit:
    """The on-chip learning circuit of a NIR graph (or file) with its rule attached: the
    one-pass pathways and learned feedback here, relaxed predictive coding via
    :func:`neurocredit.lava.onchip_pc.build_pc_circuit`."""
    rule, backward, base = learning_from_nir(graph, profile)
    spec = spec or OnChipSpec()
    if rule.dynamics == "predictive_coding":
        from neurocredit.lava.onchip_pc import build_pc_circuit
        return build_pc_circuit(base, rule, backward, spec, profile)
    return build_circuit(base, rule, backward, spec, profile)


def backward_angle(circuit: Circuit, weights: dict[str, np.ndarray]) -> float:
    """Mean over hidden layers of the angle (degrees) between the learned B_l and W_{l+1}ᵀ
    (integer weights); NaN for circuits without learned feedback."""
    transposed = circuit.meta.get("transposed", ())
    fwd = [c for c in circuit.connections if c.plastic and c.name not in transposed]
    angles = []
    for l, name in enumerate(transposed or circuit.meta.get("mirror", ())):
        b = np.asarray(weights[name], float).ravel()
        w = np.asarray(weights[fwd[l + 1].name], float).T.ravel()
        cos = b @ w / max(np.linalg.norm(b) * np.linalg.norm(w), 1e-12)
        angles.append(float(np.degrees(np.arccos(np.clip(cos, -1, 1)))))
    return float(np.mean(angles)) if angles else float("nan")


# -- on-chip training runs (emulator or Lava) ---------------------------------------------------
def initial_graph(sizes: list[int], seed: int = 0, tau: float = 1e-3, dt: float = 1e-4):
    """An untrained spiking MLP as NIR (Affine -> LIF per layer, zero bias, uniform init with
    variance 1/n_in, snnTorch convention R = tau/dt): the network learning starts from."""
    import nir
    rng = np.random.default_rng(seed)
    nodes = [nir.Input(input_type=np.array([sizes[0]]))]
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        w = rng.uniform(-1, 1, (n_out, n_in)) * np.sqrt(3.0 / n_in)
        nodes += [nir.Affine(weight=w, bias=np.zeros(n_out)),
                  nir.LIF(tau=np.full(n_out, tau), r=np.full(n_out, tau / dt), v_leak=np.zeros(n_out),
                          v_threshold=np.ones(n_out))]
    nodes.append(nir.Output(output_type=np.array([sizes[-1]])))
    return nir.NIRGraph.from_list(*nodes)


def sample_stream(rates: np.ndarray, labels: np.ndarray, n_classes: int, steps: int, blank: int,
                  seed: int, delay: int = 0) -> dict[str, np.ndarray]:
    """Samples one after the other: ``steps`` rate-coded steps, then ``blank`` silent steps; the
    one-hot target spikes for ``steps`` steps starting ``delay`` steps after the input (the
    output layer answers ``delay`` = its number of Dense hops later).  {INPUT: [N(T+b), n_in],
    TARGET: [N(T+b), n_classes]}."""
    if delay > blank:
        raise ValueError(f"the target delay ({delay}) must fit in the blank steps ({blank})")
    rng = np.random.default_rng(seed)
    n, n_in = rates.shape
    x = np.zeros((n, steps + blank, n_in), np.int64)
    x[:, :steps] = rng.random((n, steps, n_in)) < np.clip(rates, 0, 1)[:, None, :]
    y = np.zeros((n, steps + blank, n_classes), np.int64)
    y[np.arange(n)[:, None], np.arange(delay, delay + steps)[None, :], np.asarray(labels)[:, None]] = 1
    return {INPUT: x.reshape(-1, n_in), TARGET: y.reshape(-1, n_classes)}


def inference_circuit(circuit: Circuit, weights: dict[str, np.ndarray]) -> Circuit:
    """The forward network of a learning circuit with the given (learned) weights, as a plain
    fixed-point circuit for the batched emulator / Lava inference."""
    pops = [Population(p.name, p.n, p.du, p.dv, p.vth, p.bias_mant, p.bias_exp) for p in circuit.populations
            if p.kind != "graded"]
    transposed = set(circuit.meta.get("transposed", ()))
    conns = [Connection(c.name, c.src, c.dst, weights[c.name], c.weight_exp, c.num_weight_bits, "mixed")
             for c in circuit.connections if c.plastic and c.name not in transposed]
    return Circuit(circuit.n_in, pops, conns, circuit.outputs, True, dict(circuit.meta))


def accuracy(circuit: Circuit, rates: np.ndarray, labels: np.ndarray, steps: int, seed: int) -> float:
    """Test accuracy of an inference circuit (batched emulator): argmax of output spike counts."""
    from neurocredit.sim.emulator import emulate
    x = np.random.default_rng(seed).random((steps, *rates.shape)) < rates[None]
    out = emulate(circuit, x.astype(np.int64))[circuit.outputs[0]].numpy().sum(axis=0)
    return float((out.argmax(axis=1) == np.asarray(labels)).mean())


def train(circuit: Circuit, data, epochs: int, steps: int = 16, blank: int = 4, seed: int = 0,
          backend: str = "emulator", samples: int | None = None, log=print,
          target_delay: int = 0, lr_decay: float = 1.0) -> list[dict]:
    """On-chip training on ``data`` (a neurocredit Dataset with pixels in [0, 1]): the training
    set streamed sample by sample (learning every step, only local information), the test
    accuracy measured after every epoch with the learned integer weights.

    ``backend='lava'`` runs the training stream in Lava (Loihi2SimCfg fixed point);
    'emulator' in the fixed-point emulator (the same arithmetic, weight for weight).
    ``target_delay`` shifts the target by that many steps (the output answers one step later per
    Dense hop); it must not exceed ``blank``.  ``lr_decay`` multiplies the learning rate (every
    plastic connection's scaling constants) by that factor after each epoch, re-quantised to the
    engine's mantissa/exponent grid (``scale_products``); 1.0 keeps it constant.  Circuits with
    learned feedback also log ``angle_B``, the mean ∠(B_l, W_{l+1}ᵀ) in degrees.  Weight-mirror
    circuits (``meta['mirror']``) run a mirror phase (:func:`neurocredit.lava.onchip_wm.run_mirror`,
    on the same backend) before every ``mirror_every`` training samples."""
    import time as _time
    if backend not in ("emulator", "lava"):
        raise OnChipError(f"backend must be 'emulator' or 'lava', got {backend!r}")
    x_tr, y_tr = data.x_train.numpy(), data.y_train.numpy()
    x_te, y_te = data.x_test.numpy(), data.y_test.numpy()
    n_classes = circuit.meta["n_target"]
    weights = {c.name: np.asarray(c.weights) for c in circuit.connections}
    learned = bool(circuit.meta.get("transposed") or circuit.meta.get("mirror"))
    mirror_spec = circuit.meta.get("mirror_spec")

    def measure(epoch: int, seen: int, secs: float = 0.0) -> dict:
        h = {"epoch": epoch, "samples": seen, "seconds": secs,
             "test_acc": accuracy(inference_circuit(circuit, weights), x_te, y_te, steps, seed + 999)}
        if learned:
            h["angle_B"] = backward_angle(circuit, weights)
        return h

    def angle(h: dict) -> str:
        return f", ∠(B, Wᵀ) {h['angle_B']:.1f}°" if learned else ""

    history = [measure(0, 0)]
    log(f"epoch 0: test accuracy {100 * history[0]['test_acc']:.2f} % (untrained){angle(history[0])}")
    rng = np.random.default_rng(seed)
    seen = 0
    base_prods = {c.name: c.plastic for c in circuit.connections if c.plastic}
    for epoch in range(1, epochs + 1):
        if lr_decay != 1.0:
            for c in circuit.connections:
                if c.plastic:
                    c.plastic = scale_products(base_prods[c.name], lr_decay ** (epoch - 1))
        perm = rng.permutation(len(y_tr))[:samples]
        chunk = mirror_spec.mirror_every if mirror_spec and mirror_spec.mirror_every > 0 else len(perm)
        t0 = _time.perf_counter()
        for i, start in enumerate(range(0, len(perm), chunk)):
            part = perm[start:start + chunk]
            run_seed = seed * 1000 + epoch + 7919 * i
            if mirror_spec is not None:
                from neurocredit.lava.onchip_wm import run_mirror
                weights = {**weights, **run_mirror(circuit, weights, run_seed, backend)}
            stream = sample_stream(x_tr[part], y_tr[part], n_classes, steps, blank, run_seed, target_delay)
            for c in circuit.connections:
                c.weights = weights[c.name]
            if backend == "lava":
                weights, _ = run_lava(circuit, stream, rng_seed=seed + epoch + 7919 * i)
            else:
                from neurocredit.sim.emulator import emulate_learning
                weights, _ = emulate_learning(circuit, stream, rng_seed=seed + epoch + 7919 * i)
        seen += len(perm)
        history.append(measure(epoch, seen, _time.perf_counter() - t0))
        h = history[-1]
        log(f"epoch {epoch}: {seen} samples streamed ({backend}, {h['seconds']:.1f} s), "
            f"test accuracy {100 * h['test_acc']:.2f} %{angle(h)}")
    for c in circuit.connections:
        c.weights = weights[c.name]
        if c.name in base_prods:
            c.plastic = base_prods[c.name]
    return history
