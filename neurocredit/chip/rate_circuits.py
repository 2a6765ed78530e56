"""Graded-rate learning circuits: a feed-forward network of graded-rate units
(:mod:`neurocredit.chip.rate`) with noise compartments, high-passed potentials and learned
feedback that learns at every step from the noise (no phases), built from a compiled rule.

For ``sizes`` n_0 - n_1 - ... - n_L and hidden layers l = 1 .. L−1 (names ``layer<l>``, the
output ``layer<L>``)::

    input  --W_1 (>> w_shift)-->  layer1 --W_2--> ... --W_L (>> w_shift − out_gain)--> layer<L>
    noise<l> --I--> xi<l> (leaky integrator, leak 2^-xi_shift: OU noise) --I--> layer<l>.noise
    target --I--> layer<L>.target                 the output's error e_L = r_L − y*
    layer<l+1>.err --B_l (>> b_shift)--> layer<l>.third    e_l = (B_l e_(l+1)) ⊙ f'(u_l)  (every e_l in
                                                  rate.error_unit; b_shift − e_shift from a hidden error)

    W_l  plastic, view 'rate_forward': the rule's forward terms, rx = the pre layer's rate r_(l−1),
         ry = layer l's error e_l (the output's read >> e_shift)
    B_l  plastic, view 'rate_noise': the rule's feedback terms, rx = the high-passed potential of
         layer l+1 (its r_HP, read >> hp_read_shift), ry = layer l's noise ξ_l (read >> xi_read_shift);
         Max et al. 2024's ΔB_l = η_B (ξ_l ⊗ r_HP − α B_l)

rx (7 bits) and ry (4 bits) are the engine's graded extension factors (``mappings/engine.toml``):
with 7 + 4 + 4 mantissa bits a product loses no bits; where a signal is read coarser to fit
them, and for the integer units of every signal, the product's constant is scaled (:func:`compensated`,
:func:`neurocredit.chip.rate.product_scales`, applied by the compiler,
:func:`neurocredit.chip.circuits.compile_rule`).

Hidden units are ReLU rates r = max(a + ξ, 0), the output linear r = a >> out_gain with its
high-pass; weights are round(weight_scale · w) in 9 bits, inputs and targets graded values
round(scale · x) (:class:`~neurocredit.chip.rate.RateSpec`; its leaks, noise std and noise read shift
derived from the rule's dt, tau_xi, tau_hp, noise_std by :func:`neurocredit.chip.rate.for_rule`).  Which dynamics build this circuit
is data: a row of :data:`neurocredit.chip.circuits.DYNAMICS` with ``neurons = 'rate'``.
"""
from __future__ import annotations

import numpy as np

from neurocredit.chip import rate as R
from neurocredit.chip.errors import OnChipError
from neurocredit.chip.ir import INPUT, TARGET, Circuit, Connection, GradedSignal, Population, Product, ProductSeries
from neurocredit.chip.plasticity import decimated_constant
from neurocredit.chip.profile import Profile, load_profile

W_MIN, W_MAX = -256, 255


def noise_source(l: int) -> str:
    """The name of hidden layer ``l``'s white-noise source (1-based)."""
    return f"noise{l}"


def quantise(w, scale: float) -> np.ndarray:
    """round(scale · w) clipped to the 9-bit weight range."""
    return np.clip(np.round(scale * np.asarray(w, np.float64)), W_MIN, W_MAX).astype(np.int64)


def compensated(series: ProductSeries, factor: float, profile: str | Profile = "loihi2") -> ProductSeries:
    """``series`` with the constants of its graded products (those with extension factors)
    multiplied by ``factor`` and re-quantised (error kept per product): their factors count in
    integer units of the signals they read (:func:`neurocredit.chip.rate.product_scales`), so the
    product keeps the rule's value in float units; weight-only products (decay) are unit-free and kept."""
    if factor == 1:
        return series
    prof = load_profile(profile)
    out = []
    for p in series:
        if not p.extensions:
            out.append(p)
            continue
        value = p.mant * 2.0 ** (p.exp - (p.decimation or 0)) * factor
        m, k, d = decimated_constant(value, prof)
        again = abs(m * 2.0 ** (k - d) - value) / abs(value)
        out.append(Product(m, k, f"u{d}", p.factors, p.term, (1 + p.error) * (1 + again) - 1))   # both roundings, a bound
    return ProductSeries(tuple(out))


def dynamics_line(spec: R.RateSpec, errors: dict[str, float]) -> str:
    """The dynamics integers with their relative quantisation errors where derived from the rule's params."""
    if not spec.from_rule:
        return (f"dynamics: RateSpec's integers xi_shift {spec.xi_shift}, hp_shift {spec.hp_shift}, noise_std "
                f"{spec.noise_std:g}, xi_read_shift {spec.xi_read_shift} (not from the rule: RateSpec.from_rule off)")
    parts = [f"{k} {getattr(spec, k):g}" + (f" (error {100 * errors[k]:.1f} %)" if k in errors else " (default)")
             for k in ("xi_shift", "hp_shift", "noise_std")]
    return "dynamics from the rule: " + ", ".join(parts) + f", xi_read_shift {spec.xi_read_shift}"


def _pop(name: str, n: int, kind: str, **params) -> Population:
    zeros = np.zeros(n, np.int64)
    return Population(name, n, 0, 0, 0, zeros, zeros, True, 1.0, kind,
                      third_shift=int(params.get("third_shift", 0)), params=tuple(sorted(params.items())))


def build_rate_circuit(weights: list[np.ndarray], feedback: list[np.ndarray], compiled, spec: R.RateSpec,
                       meta: dict | None = None) -> Circuit:
    """The graded-rate learning circuit (module docstring) of float forward ``weights`` W_l
    (n_l x n_(l−1)) and float feedback ``feedback`` B_l (n_l x n_(l+1)), learning with the
    product series of ``compiled`` (:class:`~neurocredit.chip.circuits.CompiledRule`)."""
    if len(weights) < 2:
        raise OnChipError(f"a graded-rate learning circuit needs at least one hidden layer, got {len(weights)} layers")
    sizes = [int(np.shape(weights[0])[1])] + [int(np.shape(w)[0]) for w in weights]
    for l, w in enumerate(weights):
        if np.shape(w) != (sizes[l + 1], sizes[l]):
            raise OnChipError(f"forward weights {l + 1} have shape {np.shape(w)}, expected {(sizes[l + 1], sizes[l])}")
    if len(feedback) != len(weights) - 1:
        raise OnChipError(f"{len(weights) - 1} hidden layers need as many feedback matrices, got {len(feedback)}")
    for l, b in enumerate(feedback):
        if np.shape(b) != (sizes[l + 1], sizes[l + 2]):
            raise OnChipError(f"feedback matrix B{l + 1} has shape {np.shape(b)}, expected "
                              f"{(sizes[l + 1], sizes[l + 2])} (layer {l + 1} x layer {l + 2})")
    spec, errors = R.plan(dict(compiled.rule.params), spec)[:2]
    n_layers = len(weights)
    names = [f"layer{l + 1}" for l in range(n_layers)]
    pops, conns = [], []
    for l in range(n_layers - 1):
        pops.append(_pop(f"xi{l + 1}", sizes[l + 1], R.INTEGRATOR, leak_shift=spec.xi_shift))
    for l, name in enumerate(names):
        out = l == n_layers - 1
        if out:
            pops.append(_pop(name, sizes[l + 1], R.RATE, act=0, out_shift=spec.out_gain, hp_shift=spec.hp_shift,
                             target=1, third_shift=spec.e_shift))
        else:
            pops.append(_pop(name, sizes[l + 1], R.RATE, act=1, hp_shift=spec.hp_shift if l > 0 else 0))
    for l, (name, w) in enumerate(zip(names, weights)):
        src = INPUT if l == 0 else names[l - 1]
        shift = spec.w_shift - (spec.out_gain if l == n_layers - 1 else 0)
        e_read = spec.e_shift if l == n_layers - 1 else 0
        conns.append(Connection(f"W{l + 1}", src, name, quantise(w, spec.weight_scale), -shift, 8, "mixed",
                                plastic=compiled.forward, graded=GradedSignal(src, "s"),
                                graded_post=GradedSignal(name, "err", e_read)))
    for l in range(n_layers - 1):
        n = sizes[l + 1]
        eye = np.eye(n, dtype=np.int64)
        conns += [Connection(f"noise{l + 1}->xi{l + 1}", noise_source(l + 1), f"xi{l + 1}", eye, 0, 8, "excitatory"),
                  Connection(f"xi{l + 1}->{names[l]}", f"xi{l + 1}", names[l], eye, 0, 8, "excitatory",
                             dst_port="noise")]
    conns.append(Connection("target->out", TARGET, names[-1], np.eye(sizes[-1], dtype=np.int64), 0, 8,
                            "excitatory", dst_port="target"))
    b_names = tuple(f"B{l + 1}" for l in range(n_layers - 1))
    for l, name in enumerate(b_names):
        from_out = l == n_layers - 2     # reads the output (its error, its potential 2^out_gain finer) / a hidden layer
        b_shift = spec.b_shift if from_out else spec.b_shift - spec.e_shift
        hp_read = spec.hp_read_shift if from_out else spec.hp_read_shift - spec.out_gain
        conns.append(Connection(name, names[l + 1], names[l], quantise(feedback[l], spec.weight_scale), -b_shift,
                                8, "mixed", src_port="err", dst_port="third", plastic=compiled.feedback,
                                graded=GradedSignal(names[l + 1], "hp", hp_read),
                                graded_post=GradedSignal(names[l], "xi", spec.xi_read_shift)))
    meta = {**(meta or {}), "rule": compiled.rule.name, "dw": compiled.forward.dw, "dw_B": compiled.feedback.dw,
            "n_target": sizes[-1], "how": f"{compiled.how}; {dynamics_line(spec, errors)}", "learned_feedback": b_names, "graded_io": True,
            "n_layers": n_layers, "target_delay": n_layers - 1,
            "input_scale": spec.input_scale, "target_scale": spec.target_scale, "noise_std": spec.noise_std,
            "noise_sources": tuple(noise_source(l + 1) for l in range(n_layers - 1))}
    return Circuit(sizes[0], pops, conns, (names[-1],), True, meta)


def rate_streams(circuit: Circuit, x: np.ndarray, y: np.ndarray, steps: int, blank: int, seed: int,
                 delay: int | None = None) -> dict[str, np.ndarray]:
    """Source streams of a graded-rate circuit for samples ``x`` [N, n_in] and targets ``y``
    ([N, n_out] floats, or [N] class labels: one-hot): each sample's graded input held ``steps``
    steps then ``blank`` silent ones, its graded target ``delay`` steps later (default
    ``meta['target_delay']``: the input takes one Dense hop more than the target), and one
    white-noise stream per hidden layer (seeded by ``seed``, :func:`neurocredit.chip.rate.white_noise`)."""
    meta = circuit.meta
    delay = meta["target_delay"] if delay is None else delay
    y = np.asarray(y)
    if y.ndim == 1:
        y = np.eye(meta["n_target"])[y.astype(np.int64)]
    n = len(x)
    xs = np.zeros((n, steps + blank, circuit.n_in), np.int64)
    xs[:, :steps] = R.graded_values(x, meta["input_scale"])[:, None, :]
    ys = np.zeros((n, steps + blank, y.shape[1]), np.int64)
    ys[:, :steps] = R.graded_values(y, meta["target_scale"])[:, None, :]
    xs, ys = xs.reshape(-1, circuit.n_in), ys.reshape(-1, y.shape[1])
    if delay:
        ys = np.concatenate([np.zeros((delay, ys.shape[1]), np.int64), ys[:len(ys) - delay]])
    out = {INPUT: xs, TARGET: ys}
    for k, src in enumerate(meta["noise_sources"]):
        width = next(c for c in circuit.connections if c.src == src).weights.shape[0]
        out[src] = R.white_noise(len(xs), width, meta["noise_std"], seed + 7919 * k)
    return out


def evaluate(circuit: Circuit, x: np.ndarray, y: np.ndarray, steps: int, seed: int) -> dict[str, float]:
    """Test figures of a graded-rate circuit's current weights (learning off, noise on):
    the output rate averaged over each sample's ``steps`` steps; ``test_mse`` (in target units)
    against float targets, ``test_acc`` (argmax) against class labels."""
    from neurocredit.chip.emulator import emulate_learning
    from neurocredit.chip.ir import NO_LEARNING

    frozen = circuit.with_plasticity({c.name: NO_LEARNING for c in circuit.plastic})
    stream = rate_streams(frozen, x, np.zeros(len(x), np.int64) if np.asarray(y).ndim == 1 else y, steps, 0,
                          seed, 0)
    out = frozen.outputs[0]
    _, rec = emulate_learning(frozen, stream, seed, record=[out])
    rate = rec[out].reshape(len(x), steps, -1)[:, circuit.meta["n_layers"]:].mean(axis=1)
    y = np.asarray(y)
    if y.ndim == 1:
        return {"test_acc": float((rate.argmax(axis=1) == y).mean())}
    scale = circuit.meta["target_scale"]
    return {"test_mse": float(((rate / scale - y) ** 2).mean())}
