"""Weight mirror on chip (Akrout et al. 2019, NeurIPS, "Deep learning without weight transport"):
the feedback B_l learns in a *mirror phase* that alternates with FA-style training.

Mirror phase, for every hidden layer l at once (independent noise per layer):

    ξ_l(t) ~ Bernoulli(p) spikes of layer l's neurons,
    y_{l+1}(t) = (W_{l+1} ξ_l(t)) >> s       the graded response of layer l+1 (its own synapses),
    ΔB_l = η_B (ξ_l ⊗ y_{l+1} / σ² − B_l),   σ² = p (1 − p),

the rule's own terms (amp ``+1·pre·post`` with the paper's 1/σ² noise normalisation, decay
``−1·w``), compiled by :func:`neurocredit.lava.learning.term_products` to the same Lava
products as Kolen-Pollack's B: ``x0 * y3 − x0 * y2`` on a
:class:`~neurocredit.lava.processes.transposed_process.TransposedLearningDense` (x0 the spike
of the layer-l neuron the synapse drives, y2/y3 the signed payload it carries) and a decimated
``u<d> * w`` decay.  With E[ξ_i y_j] ≈ σ² W_ji 2^-s, B_l settles at W_{l+1}ᵀ 2^-s (s from
:func:`mirror_shifts`) (plus a rank-one
term p² Σ_k W_jk 2^-s per column from the noise mean, which is larger than σ² W_ji for
p = 1/8 and 128 neurons: ∠(B, Wᵀ) stayed at 54°).  The response neuron therefore subtracts its
mean input under the noise, p Σ_k W_jk 2^-s, the sum of its own synapses (a bias, set when a
mirror phase starts): E[ξ_i y_j] = σ² W_ji 2^-s.

During training B is a fixed Dense connection (the FA circuit); between chunks of the training
stream the mirror circuit runs on the current W and its learned B replaces the training
circuit's.  The mirror circuit is an ordinary learning circuit, so the fixed-point emulator and
Lava run it (:func:`neurocredit.lava.learning.run_lava`) with the same arithmetic.

Mirror circuit per hidden layer l (1-based k = l + 1):

    noise[k] --eye, 255--> mirror_x<k> (relay LIF: spikes the step after its noise spike)
    noise[k] --W_{k+1} copy, exp − s--> mirror_y<k> (GradedVec, vth 0: payload W ξ >> s)
    always_on --−p Σ_k W_jk >> s--> mirror_y<k>    (the mean input: payload W (ξ − p) >> s)
    mirror_y<k> --B<k> (TransposedLearningDense, learns)--> mirror_x<k> (third port)

Both paths take one Dense hop, so x0 = ξ(t−1) meets the payload W ξ(t−1) in the same step.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from neurocredit.lava.learning import DECAY, HEBB, OnChipError, OnChipSpec, term_products
from neurocredit.lava.profile import Profile, load_profile
from neurocredit.rules.rule import Rule
from neurocredit.sim.emulator import Circuit, Connection, Population

RELAY_WEIGHT = 255        # one noise spike makes the relay neuron spike (vth 100 << 6)
RELAY_VTH = 100
MIRROR_PRECISION = 2      # B is stored 2^2 finer than FA's and read by the training circuit >> 2
NOISE = "noise"           # the mirror phase's noise source (every layer's noise neurons)
ALWAYS_ON = "always_on"   # a source that spikes every step (the mean-input biases)


def check_onchip_wm(rule: Rule) -> None:
    """Refuse anything but a noise-driven learned feedback from the next layer with amp
    (post x pre) and decay terms (called by :func:`neurocredit.lava.learning.check_onchip`
    after its locality refusal)."""
    fb = rule.feedback
    if fb is None or fb.kind != "learned" or fb.drive != "noise" or fb.source != "next":
        raise OnChipError(f"rule '{rule.name}': the mirror phase needs a learned, noise-driven feedback "
                          f"from the next layer")
    kinds = {frozenset(t.factors) for t in fb.terms}
    if HEBB not in kinds or not kinds <= {HEBB, DECAY}:
        raise OnChipError(f"rule '{rule.name}': mirror-phase terms {', '.join(map(str, fb.terms))} are not "
                          f"compiled (supported: noise x the next layer's response, weight decay)")


def mirror_products(rule: Rule, spec: OnChipSpec, profile: str | Profile = "loihi2") -> tuple:
    """Lava dw products of B in the mirror phase: the amp term's coefficient divided by the
    spike noise variance σ² = p (1 − p), learning rate ``spec.mirror_lr`` per step (one noise
    sample per step).  Its time constant sets how well B averages the noise: on 64-128-64-10,
    ∠(B, Wᵀ) after 2048 steps is 31° with η_B = 0.00625 (lr 2^-4 x the rule's lr_scale 0.1)
    and 19° with 0.0016; smaller η_B puts η_B/σ² below the engine's smallest constant 2^-7."""
    p = spec.mirror_rate
    if not 0.0 < p < 1.0:
        raise OnChipError(f"mirror_rate must be in (0, 1), got {p}")
    var = p * (1 - p)
    fb = rule.feedback
    terms = tuple(replace(t, coef=t.coef / var) if frozenset(t.factors) == HEBB else t for t in fb.terms)
    prof = load_profile(profile) if isinstance(profile, str) else profile
    return term_products(terms, spec.mirror_lr, prof, decay_steps=1)


def mirrored_layers(circuit: Circuit) -> list[tuple[str, Connection]]:
    """(B connection name, the forward connection W_{l+1} it mirrors) for every hidden layer."""
    out = []
    for name in circuit.meta["mirror"]:
        b = next(c for c in circuit.connections if c.name == name)
        w = next(c for c in circuit.connections
                 if c.src == b.dst and c.dst == circuit.population(b.src).name and c.dst_port == "a")
        out.append((name, w))
    return out


def mirror_shifts(circuit: Circuit, spec: OnChipSpec) -> tuple[int, ...]:
    """Per mirrored layer, the right shift s of the response W ξ (fixed when the circuit is
    built): ``spec.mirror_shift`` if set, else the s with which B_l = W_{l+1}ᵀ 2^-s has the mean
    magnitude of the random FA feedback it replaces, feedback_scale · E|N(0, 1/n_l)|.  The hidden
    error B e >> third_shift then starts at FA's size (on 64-128-64-10, s = 4 gave |B| ≈ 18 / 30
    against FA's 4.5 / 6.4, and training reached 66 % where FA reaches 93 %).  The mirror phase
    reads W ξ >> (s − MIRROR_PRECISION) and the training circuit reads B with weight_exp
    −MIRROR_PRECISION: the same effective B with 2 more bits (at |B| ≈ 4, ∠(B, Wᵀ) after 2048
    steps was 38°)."""
    out = []
    for name, w in mirrored_layers(circuit):
        if spec.mirror_shift is not None:
            out.append(int(spec.mirror_shift))
            continue
        w_eff = np.abs(np.asarray(w.weights, float)).mean() * 2.0 ** int(w.weight_exp)
        n_l = np.asarray(w.weights).shape[1]
        b_fa = spec.feedback_scale * np.sqrt(2 / np.pi) / np.sqrt(n_l)
        out.append(max(MIRROR_PRECISION, int(round(np.log2(max(w_eff, 1e-9) / b_fa)))))
    return tuple(out)


def mirror_circuit(circuit: Circuit, weights: dict[str, np.ndarray]) -> Circuit:
    """The mirror-phase circuit of a weight-mirror training ``circuit`` (built by
    :func:`neurocredit.lava.learning.build_circuit`, its OnChipSpec in ``meta['mirror_spec']``),
    with the current integer ``weights``.

    One noise source ``noise`` holds every layer's noise neurons side by side (one connected
    process graph: Lava runs the graph connected to the process it is started from)."""
    layers = mirrored_layers(circuit)
    widths = [np.asarray(weights[w.name]).shape[1] for _, w in layers]
    offsets = np.concatenate([[0], np.cumsum(widths)])
    pops, conns, transposed = [], [], []
    spec, prods = circuit.meta["mirror_spec"], circuit.meta["mirror_products"]
    for k, ((b_name, w), n_l, off) in enumerate(zip(layers, widths, offsets), start=1):
        w_now = np.asarray(weights[w.name])
        n_next = w_now.shape[0]
        x, y = f"mirror_x{k}", f"mirror_y{k}"
        pops.append(Population(x, n_l, 4095, 4095, RELAY_VTH, np.zeros(n_l, np.int64), np.zeros(n_l, np.int64),
                               True, 1.0, "third", 0))
        pops.append(Population(y, n_next, 0, 0, 0, np.zeros(n_next, np.int64), np.zeros(n_next, np.int64),
                               True, 1.0, "graded"))
        relay = np.zeros((n_l, offsets[-1]), np.int64)
        relay[:, off:off + n_l] = RELAY_WEIGHT * np.eye(n_l, dtype=np.int64)
        w_copy = np.zeros((n_next, offsets[-1]), np.int64)
        w_copy[:, off:off + n_l] = w_now
        conns.append(Connection(f"relay{k}", NOISE, x, relay, 0, 8, "excitatory"))
        shift = circuit.meta["mirror_shifts"][k - 1] - MIRROR_PRECISION
        conns.append(Connection(f"mirror_W{k}", NOISE, y, w_copy, int(w.weight_exp) - shift,
                                w.num_weight_bits, w.sign_mode))
        conns.append(mean_input_connection(f"mirror_bias{k}", ALWAYS_ON, y, w_now,
                                           int(w.weight_exp) - shift, spec.mirror_rate))
        conns.append(Connection(b_name, y, x, np.asarray(weights[b_name]), 0, 8, "mixed",
                                dst_port="third", plastic=prods))
        transposed.append(b_name)
    return Circuit(0, pops, conns, [p.name for p in pops if p.kind == "graded"], True,
                   {"transposed": tuple(transposed), "mirror_of": circuit.meta.get("rule")})


def mean_input_connection(name: str, src: str, dst: str, w: np.ndarray, exp: int, rate: float) -> Connection:
    """The mirror-phase bias of the response neurons: minus their mean input under Bernoulli(p)
    noise, −p Σ_k W_jk 2^exp (the neuron's own synapses summed), as a Dense from an always-on
    source; 8-bit even weights (Lava's mixed sign mode) with the smallest exponent that fits."""
    mean = -rate * np.asarray(w, float).sum(axis=1, keepdims=True) * 2.0 ** exp
    e = 0
    while np.abs(mean).max() / 2.0 ** e > 254:
        e += 1
    while e > -8 and np.abs(mean).max() / 2.0 ** (e - 1) <= 254:
        e -= 1
    q = 2 * np.round(mean / 2.0 ** e / 2).astype(np.int64)
    return Connection(name, src, dst, q, e, 8, "mixed")


def mirror_stream(mirror: Circuit, steps: int, rate: float, seed: int) -> dict[str, np.ndarray]:
    """Independent Bernoulli(``rate``) noise spikes for every mirrored layer's neurons
    (``noise``, [steps, Σ n_l]) and the always-on source of the mean-input biases."""
    n = next(c.weights.shape[1] for c in mirror.connections if c.src == NOISE)
    rng = np.random.default_rng(seed)
    return {NOISE: (rng.random((steps, n)) < rate).astype(np.int64), ALWAYS_ON: np.ones((steps, 1), np.int64)}


def run_mirror(circuit: Circuit, weights: dict[str, np.ndarray], seed: int, backend: str = "emulator",
               steps: int | None = None) -> dict[str, np.ndarray]:
    """One mirror phase of ``mirror_steps`` (the circuit's OnChipSpec) or ``steps`` steps on the
    current ``weights``; returns the learned B_l by name (the training circuit's fixed feedback)."""
    spec = circuit.meta["mirror_spec"]
    from neurocredit.lava import learning as LR
    from neurocredit.sim.emulator import emulate_learning
    mirror = mirror_circuit(circuit, weights)
    stream = mirror_stream(mirror, steps or spec.mirror_steps, spec.mirror_rate, seed)
    if backend == "lava":
        learned, _ = LR.run_lava(mirror, stream, rng_seed=seed)
    else:
        learned, _ = emulate_learning(mirror, stream, rng_seed=seed)
    return {name: learned[name] for name in circuit.meta["mirror"]}
