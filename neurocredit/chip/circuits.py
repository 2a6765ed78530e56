"""Rule -> on-chip learning circuit: the one rule compiler and the one circuit builder.

:func:`compile_rule` turns a :class:`~neurocredit.rules.rule.Rule` into product series (through
:mod:`neurocredit.chip.plasticity`) and a plan for its feedback pathway and error dynamics, or
refuses it naming what the chip lacks.  :func:`build_circuit` adds that plan to a compiled
feed-forward fixed-point circuit (INPUT -> pop_1 -> ... -> pop_L)::

    forward W_l   plastic, view 'forward':  the rule's forward terms (ΔW = η c · x0 · (y3 − y2) ...)
    pop_l         'third' populations: LIF + third-factor compartment e_l (hidden: >> third_shift,
                  gated by a box-car derivative where the pathway has f'; output: its own error)
    error         graded output error units e_L = g (z_L − y*)   (out --g I--> error <--−g I-- target)
    B_l           the pathway (data: :data:`PATHWAY_SOURCES`): from the output error (DFA family),
                  the target (DRTP), or layer l+1's error (FA family), fixed (random / sparse),
                  learned while training (drive 'error': view 'transposed', the rule's feedback
                  terms: Kolen-Pollack, relaxed PC), or learned in scheduled mirror phases
                  (drive 'noise': :class:`~neurocredit.chip.ir.Phase`, weight mirror)

Error dynamics (:data:`DYNAMICS`): 'feedforward' is one pass through the pathway.  Relaxations
run as neuron dynamics: the hidden neurons' third-factor compartments are the error units
(predictive coding's ε_l with fixed predictions and one-to-one error units, Whittington & Bogacz
2017, Millidge et al. 2020; activation relaxation's g_l, Millidge et al. 2020/2021), every
connection is one step of delay, so each time step is one Jacobi step with γ = 1 and the errors
settle within L − 1 steps at the relaxation's fixed point; a backward derivative f'(v_l) is the
box-car gate of the receiving neuron; a non-frozen feed-forward pass scales the forward
products by the decayed pre trace (1 − ff_decay)^steps.  A dynamics row with ``neurons = 'rate'``
builds a graded-rate circuit instead (:mod:`neurocredit.chip.rate_circuits`: noise compartments
fed by OU leaky integrators, high-passed potentials, W on the view ``forward_view`` and learned
B on ``feedback_view``, both learning at every step — PAL).  Dynamics with no neuron-dynamics
counterpart here are refused, named (:data:`MISSING_DYNAMICS`).
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from neurocredit.chip.errors import OnChipError
from neurocredit.chip.ir import ERROR, TARGET, Circuit, Connection, GradedSignal, Phase, Population, ProductSeries
from neurocredit.chip.plasticity import compile_terms
from neurocredit.chip import tags as TG
from neurocredit.chip.profile import Profile, load_profile
from neurocredit.chip.rate import RateSpec
from neurocredit.rules.dynamical import PC_GAMMA_TERMS
from neurocredit.rules.feedback_masks import balanced_sparse_mask
from neurocredit.rules.factors import Factor
from neurocredit.rules.locality import check_locality
from neurocredit.rules.rule import Rule, Term

PATHWAY_SOURCES = {"output": (ERROR, "s"), "target": (TARGET, "s"), "next": (None, "err")}
"""Where a pathway's B_l reads from: (population, port); None = layer l+1 (its signed error)."""
FIXED_KINDS = ("random", "sparse")
LEARNED_DRIVES = {"error": ("transposed", None),
                  "forward": ("transposed_graded", "in")}
"""A learned B_l's drive -> (the engine view it learns on, the port of layer l+1 whose graded value is its
learning payload: 'in' = the input current W_(l+1) x_l; None = the error it carries).  'noise' drives
learn in mirror phases (:mod:`neurocredit.chip.phases`)."""

def _held(rule: Rule) -> float:
    """1 where the feed-forward pass is held during the relaxation; else the factor by which the
    pre trace has decayed when the weights learn, (1 − ff_decay)^steps (Millidge et al. 2021)."""
    if rule.param("frozen", True):
        return 1.0
    return (1.0 - float(rule.param("ff_decay", 0.02))) ** int(rule.param("steps", 40))


DYNAMICS = {
    "feedforward": {"how": "one pass through the feedback pathway", "third_shift": 4, "requires": (),
                    "pre_scale": lambda rule: 1.0},
    "predictive_coding": {
        "how": "relaxation v_l ← v_l + γ(ε_l − B_l ε_(l+1)) as neuron dynamics (value neurons' error "
               "compartments, one Jacobi step per time step: γ = 1, the same fixed point)",
        "third_shift": 7,
        "requires": (("fixed_prediction", True, "predictions recomputed from relaxed values are not compiled "
                      "(fixed_prediction=True)"),),
        "pre_scale": lambda rule: 1.0,
        # dense learned error weights (rule constant dense_error): Γ_l μ_l reaches a prediction
        # compartment that the value unit absorbs at the fixed point; Γ_l learns ΔΓ_l = −η ε_l ⊗ μ_l
        # with the graded prediction μ_l (the layer's input current) as the extension factor gx
        "error_weights": ("dense_error", PC_GAMMA_TERMS, "forward_graded"),
    },
    "activation_relaxation": {
        "how": "relaxation g_l ← g_l + γ(−g_l + B_l g_(l+1)) as neuron dynamics (the third-factor "
               "compartments, one Jacobi step per time step: γ = 1, the same fixed point)",
        "third_shift": 7,
        "requires": (),
        "pre_scale": _held,
    },
    "pal": {
        "how": "graded-rate units with OU noise in the hidden somata (leaky integrators of a white-noise "
               "source) and high-passed potentials as neuron dynamics; W and B learn at every step, no phases "
               "(ΔB_l from the noise ξ_l and layer l+1's high-passed potential)",
        "third_shift": 0, "requires": (), "pre_scale": lambda rule: 1.0,
        "neurons": "rate", "forward_view": "rate_forward", "feedback_view": "rate_noise",
        "spec": {"lr": 2.0 ** -10, "feedback_lr": 2.0 ** -10, "decay_steps": 1},
    },
}
"""Error dynamics the chip runs as neuron dynamics: the rule constants they need, the hidden
error shift, and the factor on the forward products' pre trace."""
MISSING_DYNAMICS = {
    "dynamic_inversion": "dynamic inversion's loop du_l/dt = e_(l+1) − W_(l+1) g_l − αu_l needs the forward "
                         "synapses W_(l+1) to carry a second, graded signal g_l = −B_l u_l beside the spikes "
                         "(a Lava Dense has one input; a copy of W_(l+1) would be weight transport); not built",
    "autograd": "the BP reference runs in torch only",
}


@dataclass(frozen=True)
class OnChipSpec:
    """Integer parameters of an on-chip learning circuit."""

    error_gain: int = 16          # e_out = gain (z_out - y*) at the graded error units
    feedback_scale: float = 64.0  # B_int = round(feedback_scale * B)
    third_shift: int = 4          # hidden t = trunc(B_int e / 2^third_shift)
    out_third_shift: int = 0      # output t = trunc(e_out / 2^out_third_shift)
    lr: float = 2 ** -4           # weight units per (spike x third-factor unit)
    gate: float | None = None     # hidden box-car derivative: learn where v >= gate * threshold
    decay_steps: int = 16         # weight decay −lr·λ·w spread over this many steps (one sample)
    mirror_rate: float = 0.125    # mirror phases: Bernoulli noise spike probability per step
    mirror_shift: int | None = None  # mirror phases: the response W ξ is read >> this (None: per layer)
    mirror_steps: int = 2048      # mirror phases: steps per phase
    mirror_lr: float = 1.6e-3     # mirror phases: η_B per step
    mirror_every: int = 256       # mirror phases: training samples between phases
    rate: RateSpec = RateSpec()   # integers of a graded-rate circuit (dynamics rows with neurons 'rate')
    feedback_lr: float | None = None  # η_B of feedback learned at every step (None: lr · the pathway's lr_scale)
    hop_shift: int | None = None  # hidden error shift where a feed-forward pathway reads another hidden layer's
                                  # error (source 'next', FA family, below the top hidden layer); None: third_shift
    hidden_exp_offset: int = 0    # forward weights into hidden layers at exponent e + o, W_int / 2^o (o < 0: a
                                  # finer grid, one weight unit a smaller step; |W_int| beyond the 8-bit range clipped)
    output_exp_offset: int = 0    # forward weights into the output layer at exponent e + o, W_int / 2^o (o > 0: twice
                                  # the integer range per step, one weight unit a coarser step; the hidden grid untouched)
    schedule_hold: bool = False   # the between-run lr schedule (lr_decay per epoch) stops lowering every constant of
                                  # the circuit where the first would fall below the engine's floor (a decay at
                                  # 1·2^k_min u<d_max>): the constants keep their ratios (chip.session.schedule_factor)
    tag_carry: int = 0            # k > 0: hidden forward connections learn through a tag carry (chip.carry): the tag
                                  # takes the rule's products x 2^s, the weight moves by 2^-(k+s) t per step; 0: off
    decay_epochs: int = 0         # n > 0: a rule's weight-decay products (−λW on u<d>) act in the first n epochs of a
                                  # session only, dropped from epoch n + 1 on (chip.session.epoch_circuit); 0: always
    output_init: float = 1.0      # the output layer's initial integer weights x this (0: a zero start, its weight
                                  # exponent kept): learned feedback without decay (ΔB = ΔWᵀ) keeps B − Wᵀ = B0 − W0ᵀ
    target_gain: int | None = None  # e_out = g z − g_y y* at the error units (None: g_y = error_gain); g_y < g: the
                                  # label's error is +(g − g_y) on a step it spikes, −g_y on one it does not, zero on
                                  # average at the spike rate g_y / g whatever the steps it picks


@dataclass(frozen=True)
class CompiledRule:
    """What the compiler made of a rule: product series per plastic connection kind, the
    pathway, the dynamics, and a line saying how."""

    rule: Rule
    forward: ProductSeries
    feedback: ProductSeries          # learned B while training (view 'transposed'), else empty
    mirror: ProductSeries            # learned B in mirror phases, else empty
    how: str
    error: ProductSeries = ProductSeries(())   # learned dense error weights Γ_l (view 'forward_graded'), else empty


def refuse_non_local(rule: Rule, layer_names: list[str]) -> None:
    """OnChipError naming every quantity a synapse of ``rule`` would need but cannot see."""
    violations = check_locality(rule, layer_names)
    if violations:
        raise OnChipError(f"rule '{rule.name}' cannot learn on chip, it is not local: "
                          + "; ".join(str(v) for v in violations))


def _dynamics(rule: Rule) -> dict:
    if rule.dynamics in DYNAMICS:
        d = DYNAMICS[rule.dynamics]
        for name, want, why in d["requires"]:
            if bool(rule.param(name, not want)) != want:
                raise OnChipError(f"rule '{rule.name}': {why}")
        return d
    why = MISSING_DYNAMICS.get(rule.dynamics, "no neuron-dynamics counterpart")
    raise OnChipError(f"rule '{rule.name}': error dynamics '{rule.dynamics}': {why}")


def mirror_terms(rule: Rule, rate: float) -> tuple[Term, ...]:
    """A noise-driven pathway's terms with the amp (pre·post) coefficient divided by the spike
    noise variance σ² = p (1 − p) (Akrout et al. 2019's 1/σ² normalisation)."""
    if not 0.0 < rate < 1.0:
        raise OnChipError(f"mirror_rate must be in (0, 1), got {rate}")
    hebb = frozenset({Factor.PRE, Factor.POST})
    return tuple(replace(t, coef=t.coef / (rate * (1 - rate))) if frozenset(t.factors) == hebb else t
                 for t in rule.feedback.terms)


def compile_rule(rule: Rule, spec: OnChipSpec | None = None, profile: str | Profile = "loihi2",
                 n_layers: int = 3) -> CompiledRule:
    """Compile ``rule`` for a net of ``n_layers`` plastic layers, or raise OnChipError naming
    the non-local quantity, the missing dynamics, the term / factor / constant the engine cannot
    compute, or the pathway the builder lacks."""
    spec = spec or OnChipSpec(**DYNAMICS.get(rule.dynamics, {}).get("spec", {}))
    prof = load_profile(profile)
    refuse_non_local(rule, [f"fc{i + 1}" for i in range(n_layers)])
    dyn = _dynamics(rule)
    fb = rule.feedback
    if fb is None:
        raise OnChipError(f"rule '{rule.name}' has no feedback pathway: its hidden layers get no third factor")
    lr_fwd = spec.lr * float(rule.param("lr_scale", 1.0)) * dyn["pre_scale"](rule)
    rate = dyn.get("neurons") == "rate"
    if rate:      # graded-rate units: constants scaled for the integer units of their signals (rate.plan)
        from neurocredit.chip.rate import plan
        from neurocredit.chip.rate_circuits import compensated
        _, _, dt, scale_w, scale_b = plan(dict(rule.params), spec.rate)
        lr_fwd *= dt
    try:
        forward = compile_terms(rule.forward, lr_fwd, dyn.get("forward_view", "forward"), prof, spec.decay_steps)
        if rate:
            forward = compensated(forward, scale_w, prof)
    except OnChipError as exc:
        raise OnChipError(f"rule '{rule.name}', forward: {exc}") from None
    if not any(p.dependency == "x0" or TG.eligibility_table()["tag"] in p.factors or p.extensions for p in forward):
        raise OnChipError(f"rule '{rule.name}': no forward term has a pre spike factor, W would only decay")
    learned = fb_series = mirror = ProductSeries(())
    if fb.module_size not in (None, 1):
        raise OnChipError(f"rule '{rule.name}': module-wise pathways (module_size {fb.module_size}) are not built")
    if fb.kind == "learned":
        try:
            if dyn.get("feedback_view"):      # learned at every step from the dynamics' own signals
                lr_b = spec.feedback_lr if spec.feedback_lr is not None else spec.lr * fb.lr_scale
                if rate and spec.rate.from_rule:     # η_B = η · lr_scale per unit time
                    lr_b = spec.lr * fb.lr_scale * dt
                fb_series = compile_terms(fb.terms, lr_b, dyn["feedback_view"], prof,
                                          spec.decay_steps)
                if rate:
                    fb_series = compensated(fb_series, scale_b, prof)
            elif fb.drive == "noise":
                mirror = compile_terms(mirror_terms(rule, spec.mirror_rate), spec.mirror_lr, "transposed", prof, 1)
            else:
                if fb.drive not in LEARNED_DRIVES:
                    raise OnChipError(f"learned feedback driven by '{fb.drive}' is not built (drives: "
                                      f"{', '.join(LEARNED_DRIVES)}, noise)")
                fb_series = compile_terms(fb.terms, spec.lr * fb.lr_scale, LEARNED_DRIVES[fb.drive][0], prof,
                                          spec.decay_steps)
        except OnChipError as exc:
            raise OnChipError(f"rule '{rule.name}', learned feedback ({fb.drive}-driven): {exc}") from None
        learned = fb_series or mirror
        if not any(p.factors != ("w",) for p in learned):
            raise OnChipError(f"rule '{rule.name}': learned feedback without a pre x post term does not learn")
        if fb.source != "next":
            raise OnChipError(f"rule '{rule.name}': learned feedback from '{fb.source}' is not built "
                              f"(only from the next layer)")
    elif fb.kind not in FIXED_KINDS:
        raise OnChipError(f"rule '{rule.name}': feedback pathway '{fb.kind}' is not built")
    if fb.source not in PATHWAY_SOURCES:
        raise OnChipError(f"rule '{rule.name}': feedback source '{fb.source}' is not built")
    error = ProductSeries(())
    name, terms, view = dyn.get("error_weights", (None, (), ""))
    if name and rule.param(name, False):
        try:
            error = compile_terms(terms, spec.lr, view, prof, spec.decay_steps)
        except OnChipError as exc:
            raise OnChipError(f"rule '{rule.name}', error weights ({name}): {exc}") from None
    what = {"random": "fixed random B", "sparse": "fixed sparse B",
            "learned": "learned B (TransposedLearningDense)" if fb.drive == "error"
            else "learned B carrying the error, learning from the forward input W_(l+1) x_l" if fb.drive == "forward"
            else f"B learned at every step (view {dyn['feedback_view']})" if dyn.get("feedback_view")
            else "B learned in scheduled mirror phases"}[fb.kind]
    ext = sorted({*forward.extensions, *learned.extensions, *error.extensions})
    engine = f"marked extensions {', '.join(ext)}" if ext else "Lava's stock engine"
    how = f"{what} from {fb.source}; {dyn['how']}; dw = {forward.dw}" + \
          (f"; dw(B) = {learned.dw}" if learned else "") + (f"; dw(Γ) = {error.dw}" if error else "") + f" ({engine})"
    return CompiledRule(rule, forward, fb_series, mirror, how, error)


def compile_status(rule: Rule, n_layers: int = 3) -> tuple[bool, str]:
    """(compiles to on-chip learning, how or why not), asked of the compiler itself; a rule that
    declares ``hardware=False`` is not on chip even where it would compile (the reason says so)."""
    try:
        how = compile_rule(rule, n_layers=n_layers).how
    except OnChipError as exc:
        return False, str(exc)
    if not rule.hardware:
        return False, f"compiles, but rule '{rule.name}' declares hardware=False ({how})"
    return True, how


def regridded(conn: Connection, offset: int) -> tuple[np.ndarray, int]:
    """``conn``'s integer weights and exponent moved by ``offset`` with W_int · 2^e kept::

        W'_int = clip(round(W_int / 2^offset), −2^b, 2^b − 1),   e' = e + offset

    (one connection of :func:`neurocredit.chip.quantise.with_weight_exponent`; offset 0: unchanged; Lava's
    weights have b magnitude bits and a sign)."""
    w = np.asarray(conn.weights)
    if not offset:
        return w, conn.weight_exp
    lim = 2 ** conn.num_weight_bits
    w = np.clip(np.round(w.astype(np.float64) / 2.0 ** offset), -lim, lim - 1).astype(np.int64)
    return w, int(conn.weight_exp) + int(offset)


def default_spec(rule: Rule, n_hidden: int, **overrides) -> OnChipSpec:
    """The spec for ``rule``: its dynamics' hidden error shift, :func:`default_gate`; keyword
    ``overrides`` that are not None replace fields (a negative ``gate`` turns the gate off)."""
    dyn = DYNAMICS.get(rule.dynamics, DYNAMICS["feedforward"])
    base = OnChipSpec(third_shift=dyn["third_shift"], gate=default_gate(rule, n_hidden), **dyn.get("spec", {}))
    spec = replace(base, **{k: v for k, v in overrides.items() if v is not None})
    return replace(spec, gate=None) if spec.gate is not None and spec.gate < 0 else spec


def default_gate(rule: Rule, n_hidden: int) -> float | None:
    """The hidden box-car derivative gate (fraction of threshold): 0.3 where the rule multiplies
    by f' and the net has one hidden layer; None where it has no f' or is deeper (there the gate
    lets weights only ratchet up: DFA 64-128-64-10, seed 0: 35.6 % with gate 0.6, 90.0 % without)."""
    derivative = rule.feedback is not None and rule.feedback.derivative
    return 0.3 if (derivative and n_hidden == 1) else None


def random_feedback(rule: Rule, sizes: list[int], seed: int) -> list[np.ndarray]:
    """Float feedback matrices B_l (n_l x n_source) for a fresh ``sizes`` network: entries
    N(0, 1/n_l), for a sparse pathway (fixed or learned) masked by the torch networks' rule
    (:func:`neurocredit.rules.feedback_masks.balanced_sparse_mask`: each row keeps the same number of
    non-zeros, each source component drives the same number of neurons) and rescaled by
    1/sqrt(1 − sparsity); the source is the next layer (n_l x n_(l+1)) or the output error /
    target (n_l x n_L).  Drawn from ``numpy.random.default_rng(seed + 1)``."""
    fb = rule.feedback
    if fb is None:
        raise OnChipError(f"rule '{rule.name}' has no feedback pathway")
    rng = np.random.default_rng(seed + 1)
    out = []
    for l in range(len(sizes) - 2):
        n_src = sizes[l + 2] if fb.source == "next" else sizes[-1]
        b = rng.normal(0, 1 / np.sqrt(sizes[l + 1]), (sizes[l + 1], n_src))
        if fb.kind == "sparse" or (fb.kind == "learned" and fb.sparsity > 0):
            b = b * balanced_sparse_mask(*b.shape, fb.sparsity, rng.permutation) / np.sqrt(1 - fb.sparsity)
        out.append(b)
    return out


MIRROR_PRECISION = 2      # mirrored B is stored 2^2 finer than fixed B and read with weight_exp −2


def graded_shift(p: Population) -> int:
    """The right shift that puts a population's input current a on the graded factors' scale:
    a = vth (one step of input that reaches threshold) reads as 64..127 (the extension's unit)."""
    return max(0, int(p.vth).bit_length() - 7)


def error_weights(base: Circuit, seed: int) -> list[np.ndarray]:
    """Float dense error weights Γ_l (n_l x n_l, N(0, 1/n_l), as the torch network draws them) for
    every hidden layer of ``base``, from ``numpy.random.default_rng(seed + 2)``."""
    rng = np.random.default_rng(seed + 2)
    return [rng.normal(0, 1 / np.sqrt(p.n), (p.n, p.n)) for p in base.populations[:-1]]


def build_circuit(base: Circuit, rule: Rule, feedback: list[np.ndarray], spec: OnChipSpec | None = None,
                  profile: str | Profile = "loihi2", float_base: Circuit | None = None) -> Circuit:
    """The on-chip learning circuit of a compiled feed-forward fixed-point circuit ``base`` for
    ``rule`` (module docstring); ``feedback[l]`` is hidden layer l's float B (n_l x n_source).
    Dynamics with graded-rate neurons are built from the float weights of ``float_base`` (the
    same network in NIR units; ``base`` itself where it is a float circuit)."""
    spec = spec or OnChipSpec()
    pops = list(base.populations)
    names = [p.name for p in pops]
    compiled = compile_rule(rule, spec, profile, len(pops))
    if _dynamics(rule).get("neurons") == "rate":
        from neurocredit.chip.rate_circuits import build_rate_circuit
        src = float_base if float_base is not None else base
        if src.fixed_point:
            raise OnChipError(f"rule '{rule.name}': graded-rate circuits are built from the network's float "
                              f"weights (float_base)")
        for p in src.populations:
            if np.any(np.asarray(p.bias_mant) != 0):
                raise OnChipError(f"layer '{p.name}' has non-zero biases; graded-rate units have none (export "
                                  f"with zero biases)")
        return build_rate_circuit([np.asarray(c.weights) for c in src.connections], feedback, compiled, spec.rate,
                                  dict(base.meta))
    fb = rule.feedback
    if len(feedback) != len(pops) - 1:
        raise OnChipError(f"{len(pops) - 1} hidden layers need as many feedback matrices, got {len(feedback)}")
    for p in pops[:-1]:
        if not p.spiking:
            raise OnChipError(f"hidden layer '{p.name}' is a voltage readout (NIR LI/CubaLI/I): on-chip learning "
                              f"needs spiking hidden layers")
    leaky = not pops[-1].spiking      # a LI readout: graded error at every step (chip.readout)
    if spec.gate is not None and not fb.derivative:
        raise OnChipError(f"rule '{rule.name}' has no backward derivative on chip: OnChipSpec.gate must be None")
    new_pops = []
    for i, p in enumerate(pops):
        hidden = i < len(pops) - 1
        gate = int(spec.gate * (int(p.vth) << 6)) if (hidden and spec.gate is not None) else -(2 ** 30)
        shift = spec.third_shift if hidden else spec.out_third_shift
        if (spec.hop_shift is not None and i < len(pops) - 2 and fb.source == "next"
                and rule.dynamics == "feedforward"):      # reads layer i+1's error t, not the error units
            shift = spec.hop_shift
        new_pops.append(replace(p, kind="third", third_shift=shift, gate_lo=gate))
    out = pops[-1]
    zeros = np.zeros(out.n, np.int64)
    conns = [Connection(c.name, c.src, c.dst, *regridded(c, spec.hidden_exp_offset if c.dst != out.name
                                                         else spec.output_exp_offset),
                        c.num_weight_bits, "mixed", plastic=compiled.forward) for c in base.connections]
    if spec.output_init != 1.0:       # the output layer starts from x output_init of its weights, on its own grid
        conns = [replace(c, weights=np.round(np.asarray(c.weights) * spec.output_init).astype(np.int64))
                 if c.dst == out.name else c for c in conns]
    eye = np.eye(out.n, dtype=np.int64)
    if leaky:                         # the readout is its own error unit (e = r − y*, port 'err')
        from neurocredit.chip.readout import leaky_readout
        new_pops[-1], target_conn = leaky_readout(out, spec.out_third_shift)
        conns.append(target_conn)
    else:
        new_pops.append(Population(ERROR, out.n, 0, 0, 0, zeros, zeros, True, 1.0, "graded"))
        conns += [Connection("out->error", out.name, ERROR, spec.error_gain * eye, 0, 8, "excitatory"),
                  Connection("target->error", TARGET, ERROR,
                             -(spec.error_gain if spec.target_gain is None else spec.target_gain) * eye, 0, 8,
                             "inhibitory"),
                  Connection("error->out", ERROR, out.name, eye, 0, 8, "excitatory", dst_port="third")]
    b_exp = -MIRROR_PRECISION if compiled.mirror else 0
    b_names = tuple(f"B{l + 1}" for l in range(len(pops) - 1))
    for l, name in enumerate(b_names):
        b = np.round(spec.feedback_scale * 2.0 ** -b_exp * np.asarray(feedback[l])).astype(np.int64)
        b = 2 * (np.clip(b, -256, 254) // 2)             # Lava keeps mixed-sign weights even
        src, port = PATHWAY_SOURCES[fb.source]
        if leaky and src == ERROR:    # the leaky readout sends its own error
            src, port = out.name, "err"
        # a sparse learned B: its absent synapses (zero in the float B, as sim.updates.existing_synapses
        # reads them) are no synapses on chip either, so its learning never fills them in
        mask = np.asarray(feedback[l]) != 0 if ((compiled.feedback or compiled.mirror) and fb.sparsity > 0) else None
        payload = LEARNED_DRIVES.get(fb.drive, (None, None))[1] if compiled.feedback else None
        graded = GradedSignal(names[l + 1], payload, graded_shift(pops[l + 1]),
                              int(round(np.log2(spec.feedback_scale))), x0_delay=1) if payload else None
        conns.append(Connection(name, src or names[l + 1], names[l], b, b_exp, 8, "mixed", src_port=port,
                                dst_port="third", plastic=compiled.feedback,
                                view="transposed" if compiled.feedback else "forward", mask=mask, graded=graded))
    if compiled.error:        # dense learned error weights Γ_l: prediction μ_l -> the prediction compartment
        for l, g in enumerate(error_weights(base, int(base.meta.get("seed", 0)))):
            gi = 2 * (np.clip(np.round(spec.feedback_scale * g).astype(np.int64), -256, 254) // 2)
            conns.append(Connection(f"G{l + 1}", names[l], names[l], gi, 0, 8, "mixed", src_port="in",
                                    dst_port="pred", plastic=compiled.error,
                                    graded=GradedSignal(names[l], "in", graded_shift(pops[l]))))
    meta = {**base.meta, "rule": rule.name, "dw": compiled.forward.dw, "n_target": out.n, "how": compiled.how,
            "learned_feedback": b_names if (compiled.feedback or compiled.mirror) else ()}
    if compiled.feedback:
        meta["dw_B"] = compiled.feedback.dw
    if compiled.error:
        meta["dw_G"] = compiled.error.dw
    if spec.schedule_hold:
        meta["schedule_hold"] = True
    if spec.decay_epochs:
        meta["decay_epochs"] = int(spec.decay_epochs)
    circuit = Circuit(base.n_in, new_pops, conns, base.outputs, True, meta)
    if TG.uses_eligibility(rule):       # e-prop: eligibility traces on the synapses' tags (chip.tags)
        circuit = TG.attach(circuit, rule, spec.lr * float(rule.param("lr_scale", 1.0)),
                            float(rule.param("surrogate_slope", 2.0)), profile, spec.decay_steps)
    if spec.tag_carry:                  # sub-LSB updates low-passed on the synapses' tags (chip.carry)
        from neurocredit.chip.carry import attach_carry
        circuit = attach_carry(circuit, spec.tag_carry, profile)
    if compiled.mirror:
        from neurocredit.chip.phases import mirror_phase
        circuit = replace(circuit, phases=(mirror_phase(circuit, compiled.mirror, spec),),
                          meta={**meta, "dw_B": compiled.mirror.dw})
    return circuit
