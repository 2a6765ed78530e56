"""Phaseless alignment learning (PAL) on chip: check, integer constants from the rule, runs.

Max et al. 2024 (arXiv:2212.10249).  The rule ``pal`` (:mod:`neurocredit.rules.dynamical`) says

    dW_l = −η e_l ⊗ r_{l−1}                 forward Term(−1, third·pre)
    dB_l = η_B (ξ_l ⊗ r_HP,l+1 − α B_l)      feedback Terms (+1, post·pre), (−α, weight)

with post = the hidden neuron's noise ξ_l (a post trace), pre = the high-passed rate of layer
l+1 that the B synapse carries.  Everything is always on, no phases.  On chip (see
:mod:`neurocredit.sim.emulator_pal` for the integer network): the forward products and the B
products get the learning engine's scaling constant m 2^k of ``lr · coef``; the decay
−α η_B B is smaller than the engine's smallest constant 2^-7 per step, so its product ticks
every ``decay_every`` = round(2^-7 / (η_B 2^-3 α)) steps (2^-3: the two-trace product shift),
which keeps the rule's ratio α between the ξ ⊗ r_HP term and the decay.

Long runs happen in the emulator; :func:`run_lava_pal` runs the same network as Lava processes
(``neurocredit.lava.processes.pal_process``) and matches it weight for weight
(tests/test_onchip_pal.py).  Lava 0.10's ``LearningDense`` is not used for PAL: its traces are
unsigned 7-bit and a graded payload reaches only the pre trace, while PAL multiplies two signed
graded factors (ξ and r_HP, e and r); the products follow the engine's arithmetic in custom
process models (:mod:`neurocredit.lava.processes.pal_models`, written independently of the
emulator).

Through NIR: :func:`pal_model` builds neurocredit's torch model (a
:class:`~neurocredit.sim.spiking.SpikingNetwork` with rule ``pal`` attached),
``neurocredit.nir.export.write`` writes it with the rule and B as metadata, and
:func:`pal_from_nir` reads a file (or graph) back into a :class:`PALNetwork` (rule, integer
constants, integer W1, W2, B) that :func:`run_pal_vs_fa`, :func:`neurocredit.sim.emulator_pal.emulate_pal`
and :func:`run_lava_pal` run.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from neurocredit.chip import circuits as _circuits
from neurocredit.chip import plasticity as _plasticity
from neurocredit.chip import session as _session
from neurocredit.chip.errors import OnChipError
from neurocredit.chip.profile import Profile, load_profile
from neurocredit.rules.factors import Factor
from neurocredit.rules.rule import Rule
from neurocredit.sim.emulator_pal import PALChip, PRODUCT_SHIFT, angle_deg, emulate_pal

ENGINE_MIN = 2.0 ** -7


def check_onchip_pal(rule: Rule, layer_names: list[str]) -> None:
    """Refuse a rule that cannot run as on-chip PAL, naming the reason (locality first)."""
    _circuits.refuse_non_local(rule, layer_names)
    fb = rule.feedback
    if rule.dynamics != "pal" or fb is None or fb.kind != "learned" or fb.drive != "noise":
        raise OnChipError(f"rule '{rule.name}' is not PAL (noise-driven learned feedback, dynamics 'pal')")
    for term in rule.forward:
        if set(term.factors) != {Factor.THIRD, Factor.PRE}:
            raise OnChipError(f"rule '{rule.name}': forward term {term} is not compiled (third·pre)")
    kinds = {frozenset(t.factors) for t in fb.terms}
    if kinds - {frozenset({Factor.POST, Factor.PRE}), frozenset({Factor.WEIGHT})}:
        raise OnChipError(f"rule '{rule.name}': feedback terms {', '.join(map(str, fb.terms))} are not "
                             f"compiled (post·pre and weight only)")


@dataclass
class PALCompiled:
    spec: PALChip
    products: dict[str, str]


def compile_pal(rule: Rule, lr: float = ENGINE_MIN, lr_feedback: float = ENGINE_MIN,
                profile: str | Profile = "loihi2", **spec) -> PALCompiled:
    """Integer constants of the on-chip PAL network from ``rule``'s Terms (``lr`` and
    ``lr_feedback``: weight units per trace product unit before the 2^-3 product shift);
    ``spec``: other :class:`PALChip` fields, or an explicit ``decay_every`` (tests)."""
    check_onchip_pal(rule, ["fc1", "fc2"])
    prof = load_profile(profile)
    (fwd,) = rule.forward
    c_w = _plasticity.scaling_constant(lr * fwd.coef, prof)
    hebb = next(t for t in rule.feedback.terms if set(t.factors) == {Factor.POST, Factor.PRE})
    c_b = _plasticity.scaling_constant(lr_feedback * hebb.coef, prof)
    decay = [t for t in rule.feedback.terms if set(t.factors) == {Factor.WEIGHT}]
    alpha = -sum(t.coef for t in decay) / hebb.coef
    every = max(1, round(ENGINE_MIN / (lr_feedback * 2.0 ** -PRODUCT_SHIFT * alpha))) if alpha > 0 else 0
    c_alpha = _plasticity.scaling_constant(-ENGINE_MIN, prof)
    chip = PALChip(**{"c_w": c_w, "c_b": c_b, "c_alpha": c_alpha, "decay_every": every or 1 << 30, **spec})
    every = chip.decay_every
    prods = {"W": f"{c_w[0]} * 2^{c_w[1]} * x1 * (y3 - y2)   (pre rate x signed error)",
             "B": f"{c_b[0]} * 2^{c_b[1]} * x1 * y1 {c_alpha[0]:+d} * 2^{c_alpha[1]} * w * y0   "
                  f"(pre high-passed rate x post noise; decay on a tick every {every} steps)"}
    return PALCompiled(chip, prods)


def initial_weights(n_in: int, n_hidden: int, n_out: int, seed: int, scale: float = 256.0):
    """Integer W1, W2, B0 (normal, variance 1/fan-in, times ``scale``), as FA's initialisation."""
    rng = np.random.default_rng(seed)
    w1 = np.round(scale * rng.normal(0, 1 / np.sqrt(n_in), (n_hidden, n_in))).astype(np.int64)
    w2 = np.round(scale * rng.normal(0, 1 / np.sqrt(n_hidden), (n_out, n_hidden))).astype(np.int64)
    b = np.round(scale * rng.normal(0, 1 / np.sqrt(n_out), (n_hidden, n_out))).astype(np.int64)
    return [np.clip(a, -256, 255) for a in (w1, w2, b)]


def _quantise(w: Any, scale: float) -> np.ndarray:
    """round(scale · w) clipped to the 9-bit weight range, as :func:`initial_weights`."""
    return np.clip(np.round(scale * np.asarray(w, np.float64)), -256, 255).astype(np.int64)


@dataclass
class PALNetwork:
    """An on-chip PAL network read from NIR: the rule, its compiled integer constants and the
    integer initial weights W1 [n_hidden, n_in], W2 [n_out, n_hidden], B [n_hidden, n_out]."""

    rule: Rule
    compiled: PALCompiled
    w1: np.ndarray
    w2: np.ndarray
    b: np.ndarray

    @property
    def sizes(self) -> tuple[int, int, int]:
        return int(self.w1.shape[1]), int(self.w1.shape[0]), int(self.w2.shape[0])

    def weights(self) -> list[np.ndarray]:
        """Copies of [W1, W2, B] (the argument order of emulate_pal / run_lava_pal)."""
        return [self.w1.copy(), self.w2.copy(), self.b.copy()]


def pal_from_nir(graph_or_path: Any, scale: float = 256.0, profile: str | Profile = "loihi2",
                 **spec) -> PALNetwork:
    """The on-chip PAL network of a NIR graph (or file path) that carries its learning rule.

    Read from the file: the rule (``graph.metadata['neurocredit']``, checked by
    :func:`check_onchip_pal`), the two Affine weight matrices (the learning metadata's
    ``layers``, in order: W1 input -> hidden, W2 hidden -> output) and the hidden layer's
    feedback matrix B (at ``learning['feedback'][0]['matrix']`` = {'node', 'key'}).  Weights and B
    are quantised as :func:`initial_weights` does: round(scale · w), clipped to [−256, 255].
    ``spec`` goes to :func:`compile_pal` (``lr``, ``lr_feedback`` and PALChip fields).

    The chip network's neurons are PAL's graded ReLU rate units (hidden r = max(a + ξ, 0),
    graded linear outputs), not the file's neurons: the parameters of the NIR neuron nodes
    (LIF / LI τ, r, thresholds) are NOT used.  Only the weights, B and the rule come from NIR.

    Raises ``OnChipError`` when the file carries no rule, a rule :func:`check_onchip_pal`
    refuses, not exactly two Affine layers (one hidden layer), no B matrix, B or weights of the
    wrong shape, or non-zero Affine biases (the chip PAL network has no biases)."""
    graph, rule, learning, where = _session.read_learning_graph(graph_or_path)
    nodes = graph.nodes
    affine = sorted(n for n, node in nodes.items() if type(node).__name__ in ("Affine", "Linear"))
    layers = [d["weight"] for d in learning.get("layers", [])] or affine
    if len(affine) != 2 or len(layers) != 2 or set(layers) != set(affine):
        raise OnChipError(f"{where}: on-chip PAL needs exactly two Affine layers (one hidden layer), "
                             f"found {len(affine)} ({', '.join(affine) or 'none'})")
    check_onchip_pal(rule, layers)
    ws = []
    for name in layers:
        node = nodes[name]
        bias = getattr(node, "bias", None)
        if bias is not None and np.any(np.asarray(bias) != 0):
            raise OnChipError(f"{where}: Affine '{name}' has non-zero biases; the on-chip PAL network "
                                 "has no biases (export with zero biases)")
        ws.append(np.asarray(node.weight, np.float64))
    w1, w2 = ws
    if w1.ndim != 2 or w2.ndim != 2 or w2.shape[1] != w1.shape[0]:
        raise OnChipError(f"{where}: weight shapes {w1.shape} and {w2.shape} do not chain")
    fbs = _session.feedback_matrices(graph, learning, where)
    if len(fbs) != 1:
        raise OnChipError(f"{where}: missing feedback matrix B of the hidden layer (the learning "
                             f"metadata lists {len(fbs)} feedback pathways, PAL needs one)")
    b = fbs[0]
    if b.shape != (w1.shape[0], w2.shape[0]):
        raise OnChipError(f"{where}: feedback matrix B has shape {b.shape}, expected "
                             f"{(w1.shape[0], w2.shape[0])} (hidden x output)")
    comp = compile_pal(rule, profile=profile, **spec)
    return PALNetwork(rule, comp, _quantise(w1, scale), _quantise(w2, scale), _quantise(b, scale))


def pal_model(n_in: int, n_hidden: int, n_out: int, seed: int, scale: float = 256.0):
    """neurocredit's torch model of the PAL student with rule ``pal`` attached: a
    :class:`~neurocredit.sim.spiking.SpikingNetwork` n_in-n_hidden-n_out (exportable to NIR;
    the spiking backend does not train PAL) whose W1, W2 and B are FA's initialisation of
    :func:`initial_weights` (normal, variance 1/fan-in; B with variance 1/n_out) in float,
    biases zero.  Quantised with ``scale`` they are exactly ``initial_weights(..., seed, scale)``."""
    import torch

    from neurocredit.rules import get_rule
    from neurocredit.sim.spiking import SpikingNetwork

    net = SpikingNetwork([n_in, n_hidden, n_out], get_rule("pal"), seed=seed)
    w1, w2, b = initial_weights(n_in, n_hidden, n_out, seed, scale)
    with torch.no_grad():
        for layer, w in zip(net.layers, (w1, w2)):
            layer.weight.copy_(torch.as_tensor(w / scale, dtype=layer.weight.dtype))
            if layer.bias is not None:
                layer.bias.zero_()
        net.net.B(0).copy_(torch.as_tensor(b / scale, dtype=net.net.B(0).dtype))
    return net


def export_pal_model(n_in: int, n_hidden: int, n_out: int, seed: int, scale: float = 256.0):
    """The NIR graph (nir.NIRGraph, rule and B in its metadata) of :func:`pal_model`."""
    from neurocredit.nir.export import export

    return export(pal_model(n_in, n_hidden, n_out, seed, scale))


def teacher_stream(data, epochs: int, steps: int, seed: int, scale: float = 16.0):
    """Integer input/target streams: each training sample held for ``steps`` steps."""
    x_tr, y_tr = data.x_train.numpy(), data.y_train.numpy()
    idx = np.concatenate([np.random.default_rng(seed + e).permutation(len(x_tr)) for e in range(epochs)])
    x = np.clip(np.round(scale * x_tr[idx]), -127, 127).astype(np.int64).repeat(steps, 0)
    y = np.clip(np.round(scale * y_tr[idx]), -127, 127).astype(np.int64).repeat(steps, 0)
    return x, y


def run_pal_vs_fa(rule: Rule | None, data, hidden: int = 50, epochs: int = 3, steps: int = 20, seed: int = 0,
                  log_points: int = 30, network: PALNetwork | None = None, **spec) -> dict[str, dict]:
    """The same on-chip task twice: PAL (B learns) and FA (B fixed at its initial value).
    Returns {'PAL': logs, 'FA': logs} with steps, ∠(B, W2ᵀ) in degrees and mean squared error.

    Without ``network`` the weights are ``initial_weights(n_in, hidden, n_out, seed + 1)`` and the
    constants ``compile_pal(rule, **spec)``; with a :class:`PALNetwork` (:func:`pal_from_nir`) its
    weights and constants are used (``rule`` may be None; ``hidden`` is the network's; ``spec``,
    if given, recompiles the network's rule)."""
    if network is None:
        if rule is None:
            raise ValueError("run_pal_vs_fa needs a rule or a PALNetwork")
        comp = compile_pal(rule, **spec)
        w1, w2, b = initial_weights(data.x_train.shape[1], hidden, data.n_out, seed + 1)
    else:
        comp = compile_pal(network.rule, **spec) if spec else network.compiled
        w1, w2, b = network.weights()
        if network.sizes[0] != data.x_train.shape[1] or network.sizes[2] != data.n_out:
            raise ValueError(f"PALNetwork {network.sizes} does not fit the task "
                             f"({data.x_train.shape[1]} inputs, {data.n_out} outputs)")
    x, y = teacher_stream(data, epochs, steps, seed)
    out = {}
    for label, plastic in (("PAL", True), ("FA", False)):
        chip = PALChip(**{**comp.spec.__dict__, "plastic_b": plastic})
        weights, logs = emulate_pal(w1, w2, b, x, y, chip, seed=seed, log_every=max(1, len(x) // log_points))
        out[label] = logs | {"weights": weights, "angle_start": angle_deg(b, w2.T)}
    out["products"] = comp.products
    return out


def run_lava_pal(w1: np.ndarray, w2: np.ndarray, b: np.ndarray, x: np.ndarray, y: np.ndarray,
                 spec: PALChip, seed: int = 0) -> dict[str, np.ndarray]:
    """The on-chip PAL network of :func:`neurocredit.sim.emulator_pal.emulate_pal` as Lava processes
    (Loihi2SimCfg fixed point): RingBuffer sources for the input, the OU noise and the target,
    identity Dense connections for noise and target, ``PALHidden`` / ``PALOutput`` neurons,
    ``PALDense`` W1, W2 and ``PALNoiseDense`` B.  Returns the final W1, W2, B."""
    from neurocredit._setup_lava import import_lava
    import_lava()
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.dense.process import Dense
    from lava.proc.io.source import RingBuffer as Source
    from lava.utils.weightutils import SignMode

    from neurocredit.lava.processes.pal_process import PALDense, PALHidden, PALNoiseDense, PALOutput
    from neurocredit.lava.run import LavaNet, lava_session, seed_everything
    from neurocredit.sim.emulator_pal import pal_streams

    if not spec.plastic_b:
        raise OnChipError("run_lava_pal runs PAL (plastic B); FA is its emulator run with plastic_b=False")
    seed_everything(seed)
    w1, w2, b = (np.asarray(a, np.int64) for a in (w1, w2, b))
    n_h, n_o = w1.shape[0], w2.shape[0]
    src = pal_streams(x, y, n_h, spec, seed)
    steps = len(src["x"])
    sources = {k: Source(data=np.asarray(v, np.int32).T) for k, v in src.items()}
    hidden = PALHidden(shape=(n_h,), name="hidden")
    output = PALOutput(shape=(n_o,), hp_gain=spec.hp_gain, k_hp=spec.k_hp, e_shift=spec.e_shift, name="output")
    d_w1 = PALDense(weights=w1.astype(np.int32), weight_exp=-spec.s1, const=spec.c_w, rng_seed=seed + 1, name="W1")
    d_w2 = PALDense(weights=w2.astype(np.int32), weight_exp=-(spec.s2 - spec.hp_gain), const=spec.c_w,
                    rng_seed=seed + 2, name="W2")
    d_b = PALNoiseDense(weights=b.astype(np.int32), weight_exp=-spec.sb, const=spec.c_b, rng_seed=seed + 3,
                        decay=spec.c_alpha, decay_every=spec.decay_every, name="B")
    eye = {n: Dense(weights=np.eye(n, dtype=np.int32), num_message_bits=24, sign_mode=SignMode.EXCITATORY,
                    name=f"eye{n}_{k}") for k, n in (("noise", n_h), ("y", n_o))}
    d_noise, d_y = eye[n_h], eye[n_o]
    sources["x"].s_out.connect(d_w1.s_in)
    d_w1.a_out.connect(hidden.a_in)
    sources["noise"].s_out.connect(d_noise.s_in)
    d_noise.a_out.connect(hidden.a_noise)
    hidden.s_err.connect(d_w1.s_in_post)
    hidden.s_out.connect(d_w2.s_in)
    d_w2.a_out.connect(output.a_in)
    output.s_ew.connect(d_w2.s_in_post)
    sources["y"].s_out.connect(d_y.s_in)
    d_y.a_out.connect(output.a_target)
    output.s_err.connect(d_b.s_in)
    output.s_hp.connect(d_b.s_in_pre)
    hidden.s_xi.connect(d_b.s_in_post)
    d_b.a_out.connect(hidden.a_third)
    dense = {"W1": d_w1, "W2": d_w2, "B": d_b}
    net = LavaNet(sources["x"], dense, {"hidden": hidden, "output": output}, {}, True)
    with lava_session(net) as proc:
        proc.run(condition=RunSteps(num_steps=steps), run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
        return {k: np.asarray(d.weights.get()).astype(np.int64) for k, d in dense.items()}
