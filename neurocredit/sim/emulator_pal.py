"""Fixed-point emulator of phaseless alignment learning (PAL) on a neuromorphic chip.

Max et al. 2024, "Learning efficient backprojections across cortical hierarchies in real time"
(arXiv:2212.10249).  A two-layer graded-rate network (Lava ``GradedReluVec`` hidden neurons,
``GradedVec`` output and error neurons, graded-spike ``Dense`` connections with Lava's one-step
delay) in integers, learning at every step, no phases:

    ξ[t+1]   = ξ[t] − trunc(ξ[t] / 2^k_xi) + n[t],   n[t] ~ round(N(0, σ_n²))    (OU noise, AR(1))
    r_h[t]   = clip(trunc(W1 x[t−1] / 2^s1) + ξ[t], 0, 127)                        (ReLU, 7 bits)
    r_o[t]   = clip(trunc(W2 r_h[t−1] / 2^s2), −127, 127)
    u_o[t]   = trunc(W2 r_h[t−1] / 2^(s2 − hp_gain))                             (finer copy of r_o)
    h[t]     = h[t−1] + (u_o[t] − u_o[t−1]) − trunc(h[t−1] / 2^k_hp)              (high pass)
    e_o[t]   = r_o[t] − y*[t]                                                     (output error)
    e_h[t]   = trunc(B e_o[t−1] / 2^sb) ⊙ [r_h[t] > 0]                             (third factor)
    ΔW2      = c_W · trunc(e_o / 2^e_shift) ⊗ r_h[t−1] ,  ΔW1 = c_W · e_h ⊗ x[t−1]                    (c_W < 0)
    ΔB       = c_B · ξ ⊗ h[t] + c_α · B · [t mod decay_every = 0]                   (c_α < 0)

Each Δ is one learning-engine epoch (t_epoch = 1): products of two 7-bit traces
(|·| clipped to 127) lose max(0, 7 + 7 + 4 − 15) = 3 bits, the constant is m 2^k
(m in [−8, 7], k in [−7, 8]; the decay's smallest constant 2^-7 per step is too fast, so its
product depends on a tick every ``decay_every`` steps, as a post trace y0 of a slow clock
would), the sum is stochastically rounded to an integer weight
(seeded numpy stream) and clipped to [−256, 255].  The noise source is the nearest Lava's fixed
point holds: an integer AR(1) (discretised Ornstein-Uhlenbeck) process whose Gaussian
increments come from a seeded stream (a RingBuffer source in Lava; Loihi 2's per-neuron noise
or a microcode neuron on silicon).  Not checked against Lava's engine for graded traces.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

W_MIN, W_MAX = -256, 255
TRACE = 127
PRODUCT_SHIFT = 3        # 7 + 7 + 4 - 15: two 7-bit traces per product


@dataclass
class PALChip:
    """Integer constants of the on-chip PAL network (see the module docstring)."""

    s1: int = 8
    s2: int = 8
    sb: int = 12
    k_xi: int = 2            # OU decay 1/4 per step (τ_ξ = 4 steps)
    noise_std: float = 8.0   # std of the integer increments n[t]
    k_hp: int = 2            # high-pass decay 1/4 per step (τ_HP = 4 steps)
    hp_gain: int = 1         # the filter reads the output potential at 2^hp_gain x the rate's resolution
    c_w: tuple[int, int] = (-1, -7)       # (m, k) of the W products
    c_b: tuple[int, int] = (1, -7)        # (m, k) of ξ ⊗ h on B
    c_alpha: tuple[int, int] = (-1, -7)   # (m, k) of the decay on B
    e_shift: int = 3         # the error neurons send trunc(e_o / 2^e_shift) as W's third factor
    decay_every: int = 160    # the decay product's dependency ticks every this many steps
    plastic_b: bool = True


def _update(w: np.ndarray, prod: np.ndarray | None, const: tuple[int, int], shift: int,
            rng: np.random.Generator, extra: np.ndarray | None = None) -> np.ndarray:
    """One learning epoch: w + stochastic_round(m 2^k prod / 2^shift [+ extra]), clipped."""
    m, k = const
    dw = np.zeros(w.shape) if prod is None else m * 2.0 ** (k - shift) * prod
    if extra is not None:
        dw = dw + extra
    lo = np.floor(dw)
    dw = lo + (rng.random(w.shape) < dw - lo)
    return np.clip(w + dw.astype(np.int64), W_MIN, W_MAX)


def outer_traces(post: np.ndarray, pre: np.ndarray) -> np.ndarray:
    """post ⊗ pre with both factors as 7-bit traces (magnitudes clipped to 127)."""
    return np.outer(np.clip(post, -TRACE, TRACE), np.clip(pre, -TRACE, TRACE)).astype(np.float64)


def angle_deg(b: np.ndarray, w_t: np.ndarray) -> float:
    """Angle in degrees between two matrices seen as vectors."""
    b, w_t = np.asarray(b, float).ravel(), np.asarray(w_t, float).ravel()
    cos = b @ w_t / max(np.linalg.norm(b) * np.linalg.norm(w_t), 1e-12)
    return float(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))))


def emulate_pal(w1: np.ndarray, w2: np.ndarray, b: np.ndarray, x: np.ndarray, y: np.ndarray,
                spec: PALChip, seed: int = 0, log_every: int = 0,
                ) -> tuple[dict[str, np.ndarray], dict[str, list]]:
    """Run the on-chip PAL network on the integer input stream ``x`` [T, n_in] with targets
    ``y`` [T, n_out]; returns (final W1, W2, B) and logs (step, ∠(B, W2ᵀ), squared error) every
    ``log_every`` steps."""
    rng_noise = np.random.default_rng(seed)
    rng_w = np.random.default_rng(seed + 1)
    w1, w2, b = (np.asarray(a, np.int64).copy() for a in (w1, w2, b))
    n_in, n_h, n_o = w1.shape[1], w1.shape[0], w2.shape[0]
    if w2.shape[1] != n_h or b.shape != (n_h, n_o) or x.shape[1] != n_in or y.shape[1] != n_o:
        raise ValueError(f"shape mismatch: W1 {w1.shape}, W2 {w2.shape}, B {b.shape}, x {x.shape}, y {y.shape}")
    xi = np.zeros(n_h, np.int64)
    r_h = np.zeros(n_h, np.int64)
    r_o = np.zeros(n_o, np.int64)
    u_o = np.zeros(n_o, np.int64)
    hp = np.zeros(n_o, np.int64)
    e_o = np.zeros(n_o, np.int64)
    x_prev = np.zeros(n_in, np.int64)
    logs: dict[str, list] = {"step": [], "angle": [], "sq_err": []}
    sq = 0.0
    for t in range(x.shape[0]):
        xi = xi - np.sign(xi) * (np.abs(xi) >> spec.k_xi) + np.round(rng_noise.normal(0, spec.noise_std, n_h)).astype(np.int64)
        a_h = w1 @ x_prev
        r_h_new = np.clip(np.sign(a_h) * (np.abs(a_h) >> spec.s1) + xi, 0, TRACE)
        a_o = w2 @ r_h
        r_o_new = np.clip(np.sign(a_o) * (np.abs(a_o) >> spec.s2), -TRACE, TRACE)
        u_new = np.clip(np.sign(a_o) * (np.abs(a_o) >> max(spec.s2 - spec.hp_gain, 0)), -2 ** 23, 2 ** 23)
        hp = hp + (u_new - u_o) - np.sign(hp) * (np.abs(hp) >> spec.k_hp)
        u_o = u_new
        a_b = b @ e_o
        e_h = np.sign(a_b) * (np.abs(a_b) >> spec.sb) * (r_h_new > 0)
        r_h_prev, r_h, r_o = r_h, r_h_new, r_o_new
        e_o = r_o - y[t]
        sq += float((e_o.astype(float) ** 2).mean())
        # pre factor: what the synapse delivered to the post neuron this step (one-step delay)
        e_w = np.sign(e_o) * (np.abs(e_o) >> spec.e_shift)
        w2 = _update(w2, outer_traces(e_w, r_h_prev), spec.c_w, PRODUCT_SHIFT, rng_w)
        w1 = _update(w1, outer_traces(e_h, x_prev), spec.c_w, PRODUCT_SHIFT, rng_w)
        if spec.plastic_b:
            m, k = spec.c_alpha
            tick = (t + 1) % spec.decay_every == 0
            b = _update(b, outer_traces(xi, hp), spec.c_b, PRODUCT_SHIFT, rng_w,
                        extra=m * 2.0 ** k * b if tick else None)
        x_prev = np.asarray(x[t], np.int64)
        if log_every and (t + 1) % log_every == 0:
            logs["step"].append(t + 1)
            logs["angle"].append(angle_deg(b, w2.T))
            logs["sq_err"].append(sq / log_every)
            sq = 0.0
    return {"W1": w1, "W2": w2, "B": b}, logs
