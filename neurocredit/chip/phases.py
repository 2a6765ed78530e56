"""Scheduled noise phases of a learning circuit: learned feedback B driven by noise (the mirror
phase of Akrout et al. 2019, NeurIPS, "Deep learning without weight transport").

For every hidden layer l at once (independent noise per layer)::

    ξ_l(t) ~ Bernoulli(p) spikes of layer l's neurons (a relay population),
    y_{l+1}(t) = (W_{l+1} (ξ_l(t) − p)) >> s     the next layer's graded, mean-subtracted response,
    ΔB_l = η_B (ξ_l ⊗ y_{l+1} / σ² − B_l),      σ² = p (1 − p),

B_l's products come from the rule's feedback terms (:func:`neurocredit.chip.circuits.mirror_terms`)
on its transposed view: x0 = the relay spike ξ, y3/y2 = the signed response it carries.  With
E[ξ_i y_j] = σ² W_ji 2^-s, B_l settles at W_{l+1}ᵀ 2^-s; s is chosen per layer so that B_l
has the mean size of the random feedback it replaces (:func:`response_shifts`; B stored
2^MIRROR_PRECISION finer and read with weight_exp −MIRROR_PRECISION).  The mean input
p Σ_k W_jk 2^-s is subtracted by a Dense from an always-on source (set when a phase starts).

Phase circuit per hidden layer k::

    noise --255 I--> mirror_x<k> (relay LIF, 'third')      noise --W_{k+1} copy, exp − s--> mirror_y<k> (graded)
    always_on --−p Σ_k W_jk >> s--> mirror_y<k>              mirror_y<k> --B<k> (learns, transposed)--> mirror_x<k>

Both paths take one Dense hop, so x0 = ξ(t−1) meets W ξ(t−1) in the same step.
"""
from __future__ import annotations

import numpy as np

from neurocredit.chip.ir import Circuit, Connection, Phase, Population, ProductSeries

RELAY_WEIGHT = 255
RELAY_VTH = 100
MIRROR_PRECISION = 2
NOISE = "noise"
ALWAYS_ON = "always_on"


def response_shifts(circuit: Circuit, pairs: list[tuple[str, str]], spec) -> tuple[int, ...]:
    """Per (B, W) pair, the right shift s of the response W ξ: ``spec.mirror_shift`` if set, else
    the s with which W_{l+1}ᵀ 2^-s has the mean magnitude of random FA feedback,
    feedback_scale · E|N(0, 1/n_l)| (on 64-128-64-10, s = 4 gave |B| ≈ 18 / 30 against FA's
    4.5 / 6.4, and training reached 66 % where FA reaches 93 %)."""
    out = []
    for _, w_name in pairs:
        if spec.mirror_shift is not None:
            out.append(int(spec.mirror_shift))
            continue
        w = circuit.connection(w_name)
        w_eff = np.abs(np.asarray(w.weights, float)).mean() * 2.0 ** int(w.weight_exp)
        n_l = np.asarray(w.weights).shape[1]
        b_fa = spec.feedback_scale * np.sqrt(2 / np.pi) / np.sqrt(n_l)
        out.append(max(MIRROR_PRECISION, int(round(np.log2(max(w_eff, 1e-9) / b_fa)))))
    return tuple(out)


def mirror_phase(circuit: Circuit, plastic: ProductSeries, spec) -> Phase:
    """The mirror :class:`Phase` of a training circuit whose B<k> connections are learned from
    noise: each B<k> (layer k <- layer k+1) mirrors the forward connection from layer k into k+1."""
    pairs = []
    for name in circuit.meta["learned_feedback"]:
        b = circuit.connection(name)
        w = next(c for c in circuit.connections if c.src == b.dst and c.dst == b.src and c.dst_port == "a")
        pairs.append((name, w.name))
    shifts = response_shifts(circuit, pairs, spec)
    return Phase("mirror", tuple((b, w, s) for (b, w), s in zip(pairs, shifts)), spec.mirror_rate,
                 spec.mirror_steps, spec.mirror_every, plastic)


def phase_circuit(phase: Phase, weights: dict[str, np.ndarray], circuit: Circuit) -> Circuit:
    """The circuit of ``phase`` on the current integer ``weights`` of the training ``circuit``.
    One noise source holds every layer's noise neurons side by side (one connected graph)."""
    widths = [np.asarray(weights[w]).shape[1] for _, w, _ in phase.layers]
    offsets = np.concatenate([[0], np.cumsum(widths)])
    pops, conns = [], []
    for k, ((b_name, w_name, shift), n_l, off) in enumerate(zip(phase.layers, widths, offsets), start=1):
        w = circuit.connection(w_name)
        w_now = np.asarray(weights[w_name])
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
        exp = int(w.weight_exp) - (shift - MIRROR_PRECISION)
        conns.append(Connection(f"relay{k}", NOISE, x, relay, 0, 8, "excitatory"))
        conns.append(Connection(f"mirror_W{k}", NOISE, y, w_copy, exp, w.num_weight_bits, w.sign_mode))
        conns.append(mean_input_connection(f"mirror_bias{k}", ALWAYS_ON, y, w_now, exp, phase.rate))
        conns.append(Connection(b_name, y, x, np.asarray(weights[b_name]), 0, 8, "mixed", dst_port="third",
                                plastic=phase.plastic, view="transposed", mask=circuit.connection(b_name).mask))
    return Circuit(0, pops, conns, [p.name for p in pops if p.kind == "graded"], True,
                   {"phase_of": circuit.meta.get("rule"), "learned_feedback": tuple(b for b, _, _ in phase.layers)})


def mean_input_connection(name: str, src: str, dst: str, w: np.ndarray, exp: int, rate: float) -> Connection:
    """Minus the mean input under Bernoulli(p) noise, −p Σ_k W_jk 2^exp, as a Dense from an
    always-on source; 8-bit even weights with the smallest exponent that fits."""
    mean = -rate * np.asarray(w, float).sum(axis=1, keepdims=True) * 2.0 ** exp
    e = 0
    while np.abs(mean).max() / 2.0 ** e > 254:
        e += 1
    while e > -8 and np.abs(mean).max() / 2.0 ** (e - 1) <= 254:
        e -= 1
    q = 2 * np.round(mean / 2.0 ** e / 2).astype(np.int64)
    return Connection(name, src, dst, q, e, 8, "mixed")


def phase_stream(phase: Phase, mirror: Circuit, steps: int, seed: int) -> dict[str, np.ndarray]:
    """Independent Bernoulli(rate) noise spikes for every layer ([steps, Σ n_l]) and the
    always-on source."""
    n = next(np.asarray(c.weights).shape[1] for c in mirror.connections if c.src == NOISE)
    rng = np.random.default_rng(seed)
    return {NOISE: (rng.random((steps, n)) < phase.rate).astype(np.int64), ALWAYS_ON: np.ones((steps, 1), np.int64)}
