"""Fixed-point emulator of phaseless alignment learning (PAL) on a neuromorphic chip.

Max et al. 2024, "Learning efficient backprojections across cortical hierarchies in real time"
(arXiv:2212.10249).  A two-layer graded-rate network in integers, with Lava's timing (every
connection delivers at step t + 1 what it computed at step t from the weights before step t's
update), learning at every step, no phases.  At step t, with b_c the buffer of connection c:

    hidden   r_h = max(b_W1 + b_N, 0),   ξ = b_N,   e_h = b_B ⊙ [r_h > 0]           (PALHidden)
    output   a = b_W2,  r_o = a >> hp_gain,  h ← h + (a − a_prev) − trunc(h / 2^k_hp),
             e_o = r_o − b_Y,  e_w = trunc(e_o / 2^e_shift)                          (PALOutput)
    W1       b_W1 = (W1 x[t]) >> s1,               ΔW1 = c_W · e_h ⊗ x[t]
    W2       b_W2 = (W2 r_h) >> (s2 − hp_gain),    ΔW2 = c_W · e_w ⊗ r_h            (c_W < 0)
    B        b_B  = (B e_o) >> sb,                 ΔB  = c_B · ξ ⊗ h + c_α · B · [tick]
    N, Y     b_N = ξ_src[t] (integer OU noise),  b_Y = y_src[t] (the target, one step late)

with ξ_src[t+1] = ξ_src[t] − trunc(ξ_src[t] / 2^k_xi) + round(N(0, σ_n²)) (a discretised
Ornstein-Uhlenbeck process, AR(1)) drawn from a seeded stream: the nearest Lava's fixed point
holds — a RingBuffer source in Lava, Loihi 2's per-neuron noise or a microcode neuron on silicon.

Each Δ is one learning-engine epoch (t_epoch = 1): products of two 7-bit traces (|·| clipped
to 127) lose max(0, 7 + 7 + 4 − 15) = 3 bits, the constant is m 2^k (m in [−8, 7],
k in [−7, 8]; the decay's smallest constant 2^-7 per step is too fast, so its product depends
on a tick every ``decay_every`` steps, as a post trace y0 of a slow clock would), the sum is
stochastically rounded to an integer weight (one seeded numpy stream per connection) and
clipped to [−256, 255].  ``neurocredit.lava.onchip_pal.run_lava_pal`` runs the same network as
Lava processes whose models (``neurocredit.lava.processes.pal_models``) implement the engine
again, in integer fixed point, without importing this module; the two agree weight for weight
(tests/test_onchip_pal.py).
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
    e_shift: int = 4         # the error neurons send trunc(e_o / 2^e_shift) as W's third factor
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


def ou_noise(steps: int, n: int, spec: PALChip, seed: int) -> np.ndarray:
    """The integer AR(1) / discretised OU noise stream ξ_src [steps, n] (seeded)."""
    rng = np.random.default_rng(seed)
    out = np.zeros((steps, n), np.int64)
    xi = np.zeros(n, np.int64)
    for t in range(steps):
        xi = xi - np.sign(xi) * (np.abs(xi) >> spec.k_xi) + np.round(rng.normal(0, spec.noise_std, n)).astype(np.int64)
        out[t] = xi
    return out


def pal_streams(x: np.ndarray, y: np.ndarray, n_hidden: int, spec: PALChip, seed: int) -> dict[str, np.ndarray]:
    """Source streams of the on-chip PAL network: input x, noise ξ_src, target y_src (y delayed by
    one step so that it meets the output's answer to the same input, two connections later)."""
    x = np.asarray(x, np.int64)
    y = np.asarray(y, np.int64)
    y_src = np.concatenate([np.zeros((1, y.shape[1]), np.int64), y[:-1]])
    return {"x": x, "noise": ou_noise(len(x), n_hidden, spec, seed), "y": y_src}


def emulate_pal(w1: np.ndarray, w2: np.ndarray, b: np.ndarray, x: np.ndarray, y: np.ndarray,
                spec: PALChip, seed: int = 0, log_every: int = 0,
                ) -> tuple[dict[str, np.ndarray], dict[str, list]]:
    """Run the on-chip PAL network on the integer input stream ``x`` [T, n_in] with targets
    ``y`` [T, n_out]; returns (final W1, W2, B) and logs (step, ∠(B, W2ᵀ), squared error) every
    ``log_every`` steps.  Seeds: noise ``seed``, stochastic rounding ``seed + 1 .. seed + 3``."""
    w1, w2, b = (np.asarray(a, np.int64).copy() for a in (w1, w2, b))
    n_in, n_h, n_o = w1.shape[1], w1.shape[0], w2.shape[0]
    if w2.shape[1] != n_h or b.shape != (n_h, n_o) or x.shape[1] != n_in or y.shape[1] != n_o:
        raise ValueError(f"shape mismatch: W1 {w1.shape}, W2 {w2.shape}, B {b.shape}, x {x.shape}, y {y.shape}")
    src = pal_streams(x, y, n_h, spec, seed)
    rng = {k: np.random.default_rng(seed + i) for i, k in enumerate(("W1", "W2", "B"), start=1)}
    b_w1, b_n, b_b = (np.zeros(n_h, np.int64) for _ in range(3))
    b_w2, b_y, hp, a_prev = (np.zeros(n_o, np.int64) for _ in range(4))
    logs: dict[str, list] = {"step": [], "angle": [], "sq_err": []}
    sq = 0.0
    for t in range(x.shape[0]):
        # neurons, from the buffers of step t - 1
        r_h = np.maximum(b_w1 + b_n, 0)
        xi = b_n
        e_h = b_b * (r_h > 0)
        a = b_w2
        r_o = a >> spec.hp_gain
        hp = hp + (a - a_prev) - np.sign(hp) * (np.abs(hp) >> spec.k_hp)
        a_prev = a
        e_o = r_o - b_y
        e_w = np.sign(e_o) * (np.abs(e_o) >> spec.e_shift)
        sq += float((e_o.astype(float) ** 2).mean())
        # connections: forward with the weights before this step's update, then learn
        xt = src["x"][t]
        b_w1 = (w1 @ xt) >> spec.s1
        w1 = _update(w1, outer_traces(e_h, xt), spec.c_w, PRODUCT_SHIFT, rng["W1"])
        b_w2 = (w2 @ r_h) >> (spec.s2 - spec.hp_gain)
        w2 = _update(w2, outer_traces(e_w, r_h), spec.c_w, PRODUCT_SHIFT, rng["W2"])
        b_b = (b @ e_o) >> spec.sb
        tick = spec.plastic_b and (t + 1) % spec.decay_every == 0
        if spec.plastic_b:
            m, k = spec.c_alpha
            b = _update(b, outer_traces(xi, hp), spec.c_b, PRODUCT_SHIFT, rng["B"],
                        extra=m * 2.0 ** k * b if tick else None)
        b_n, b_y = src["noise"][t], src["y"][t]
        if log_every and (t + 1) % log_every == 0:
            logs["step"].append(t + 1)
            logs["angle"].append(angle_deg(b, w2.T))
            logs["sq_err"].append(sq / log_every)
            sq = 0.0
    return {"W1": w1, "W2": w2, "B": b}, logs
