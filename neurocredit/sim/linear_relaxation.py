"""Closed-form trajectory of a layered linear relaxation, with the adaptive stop.

Predictive coding with fixed predictions (Millidge, Tschantz & Buckley 2022, "Predictive coding
approximates backprop along arbitrary computation graphs") and activation relaxation with a
frozen forward pass (Millidge et al. 2020, arXiv:2009.05359) integrate, for the hidden layers
l = 0 .. H−1, the same forward-Euler recurrence

    x_l(t+1) = x_l(t) + γ F_l(t),    F_l(t) = M_l x_{l+1}(t) − x_l(t),    x_H = c (held)

(PC: x_l = ε_l, M_l s = f'(a_l) ⊙ B_l s, c = ε_L; AR: x_l = g_l, M_l s = B_l (D_{l+1} ⊙ s),
c = e_L), with linear maps M_l that do not change during the settle.  Unrolling the t Euler
steps, each step either keeps a layer's value (weight 1−γ) or hops one layer up through M
(weight γ), and the held top never decays, so

    x_l(t) = Σ_{k<K} P(Bin(t, γ) = k) · C_{l,k}  +  P(Bin(t, γ) ≥ K) · C_{l,K},     K = H − l,
    C_{l,0} = x_l(0),   C_{l,k} = M_l C_{l+1,k−1},   C_{H,0} = c,

the same state the Euler loop reaches after t steps (equal up to float rounding), and
F_l(t) = (x_l(t+1) − x_l(t)) / γ.  The chains C cost H(H+1)/2 applications of M whatever t
is; the weights w_K(t) are the recurrence itself run on scalars (:func:`weight_table`).

The adaptive stop is the rule's own (see :mod:`neurocredit.sim.relaxation`): the first step
t ≤ T with ‖F_l(t−1)‖_∞ ≤ τ ‖x_l(t)‖_∞ for every layer, here tested at every step (the loop
tests every ``CHECK_EVERY``-th, for cost), mostly on scalars (:func:`first_converged`).
"""
from __future__ import annotations

import functools
import operator
from typing import Callable, Sequence

import torch

Operator = Callable[[torch.Tensor], torch.Tensor]


@functools.lru_cache(maxsize=256)
def weight_table(steps: int, rate: float, hops: int) -> tuple[tuple[float, ...], ...]:
    """w[t][k], t = 0..steps: x_l(t) = Σ_k w[t][k] C_{l,k} for a layer ``hops`` = K below the
    held top: w[0] = (1, 0, …); w[t+1][k] = (1−γ) w[t][k] + γ w[t][k−1] (k < K),
    w[t+1][K] = w[t][K] + γ w[t][K−1]  (float64; i.e. Binomial(t, γ) probabilities)."""
    row = [1.0] + [0.0] * hops
    rows = [tuple(row)]
    keep = 1.0 - rate
    for _ in range(steps):
        new = [keep * row[0]]
        for k in range(1, hops):
            new.append(keep * row[k] + rate * row[k - 1])
        new.append(row[hops] + rate * row[hops - 1])
        row = new
        rows.append(tuple(row))
    return tuple(rows)


def chains(ops: Sequence[Operator], init: Sequence[torch.Tensor | None], top: torch.Tensor
           ) -> list[list[torch.Tensor | None]]:
    """C_{l,k} for every hidden layer l (k = 0..H−l); None where a chain is exactly zero
    (it starts from a layer whose x(0) is None, i.e. zero)."""
    H = len(ops)
    above: list[torch.Tensor | None] = [top]
    out: list[list[torch.Tensor | None]] = [[] for _ in range(H)]
    for l in range(H - 1, -1, -1):
        row = [init[l]] + [None if c is None else ops[l](c) for c in above]
        out[l] = row
        above = row
    return out


def _combine(ws: Sequence[float], cs: Sequence[torch.Tensor | None]) -> torch.Tensor | None:
    out = None
    for w, c in zip(ws, cs):
        if c is None or w == 0.0:
            continue
        out = c * w if out is None else out.add_(c, alpha=w)
    return out


def first_converged(C: list[list[torch.Tensor | None]], rate: float, steps: int, tol: float) -> int:
    """The first t in 1..steps with ‖F_l(t−1)‖_∞ ≤ tol · ‖x_l(t)‖_∞ for every layer (steps if
    none).

    Written around the fixed point x_l* = C_{l,K}:  x_l(t) = x_l* + Σ_{k<K} b_k(t) E_k and
    F_l(t) = Σ_{k<K} (b_{k−1}(t) − b_k(t)) E_k, with b_k = P(Bin(t, γ) = k) and
    E_k = C_{l,k} − x_l* (= −x_l* for a zero chain; those are merged into x*'s own
    coefficient).  Every step is first decided on the triangle-inequality bounds of the norms
    of these few directions (scalars, one host read for all of them); only a step the bounds
    leave open is evaluated on the tensors (a handful of axpys and two max-norms).
    """
    H = len(C)
    layers = []          # per layer: (K, directions, which E_k each direction is)
    for l, row in enumerate(C):
        K = H - l
        star = row[K]
        dirs = [star]
        kinds: list[int | None] = [None]                      # None: x* itself
        for k in range(K):
            if row[k] is not None:
                dirs.append(row[k] - star)
                kinds.append(k)
        layers.append((K, dirs, kinds))
    flat = [d.abs().amax() for _, dirs, _ in layers for d in dirs]
    values = torch.stack(flat).tolist()
    pos = 0
    verdicts, exact = [], []     # per layer: PASS/FAIL/OPEN for t = 1..steps; what to evaluate
    for K, dirs, kinds in layers:
        n = values[pos:pos + len(dirs)]
        pos += len(dirs)
        key = (steps, rate, K, tuple(kinds))
        cx, cf = _coefficients(*key)
        verdicts.append(_verdicts(key, tuple(n), tol))
        exact.append((dirs, cx, cf))
    worst = verdicts[0] if len(verdicts) == 1 else list(map(max, *verdicts))
    for t in range(1, steps + 1):
        if worst[t] == _PASS:
            return t
        if worst[t] == _OPEN and all(
                v[t] == _PASS or _norm(cf[t], dirs) <= tol * _norm(cx[t], dirs)
                for v, (dirs, cx, cf) in zip(verdicts, exact)):
            return t
    return steps


_PASS, _OPEN, _FAIL = 0, 1, 2     # ordered: a step's verdict over layers is their max


def _verdicts(key: tuple, n: tuple[float, ...], tol: float) -> list[int]:
    """Per step t (index 0 unused): PASS / FAIL when the triangle-inequality bounds on
    ‖F(t−1)‖ and ‖x(t)‖ decide the test, OPEN when only the tensors can (never for a single
    direction, whose bounds are exact)."""
    if len(n) == 1:
        return _single_verdicts(key, tol) if n[0] > 0 else [_PASS] * (key[0] + 1)
    cx_abs, cf_abs = _abs_columns(key)
    f_lo, f_hi = _column_bounds(cf_abs, n)
    x_lo, x_hi = _column_bounds(cx_abs, n)
    return [_OPEN] + [_PASS if fh <= tol * xl else _FAIL if fl > tol * xh else _OPEN
                      for fl, fh, xl, xh in zip(f_lo[1:], f_hi[1:], x_lo[1:], x_hi[1:])]


@functools.lru_cache(maxsize=256)
def _abs_columns(key: tuple) -> tuple[tuple[tuple[float, ...], ...], ...]:
    """|c_j(t)| of x(t) and of F(t−1), one tuple over t per direction j (row 0 of F's table
    is empty: 0); key = (steps, rate, K, kinds) of :func:`_coefficients`."""
    def columns(rows):
        width = len(rows[-1])
        return tuple(tuple(abs(r[j]) if r else 0.0 for r in rows) for j in range(width))
    cx, cf = _coefficients(*key)
    return columns(cx), columns(cf)


def _column_bounds(cols, n: Sequence[float]) -> tuple[list[float], list[float]]:
    """Triangle-inequality bounds for every t at once: ‖Σ_j c_j(t) d_j‖_∞ ∈
    [2 max_j − Σ_j, Σ_j] of the |c_j(t)| ‖d_j‖_∞ (exact for one direction)."""
    terms = [[v * nj for v in col] for col, nj in zip(cols, n)]
    if len(terms) == 2:                  # 2 max − Σ = |a − b| for two terms
        a, b = terms
        return [abs(x - y) for x, y in zip(a, b)], list(map(operator.add, a, b))
    total = list(map(sum, zip(*terms)))
    top = list(map(max, zip(*terms)))
    return [2.0 * m - s if 2.0 * m > s else 0.0 for m, s in zip(top, total)], total


@functools.lru_cache(maxsize=256)
def _single_verdicts(key: tuple, tol: float) -> list[int]:
    cx, cf = _coefficients(*key)
    return [_OPEN] + [_PASS if abs(f[0]) <= tol * abs(x[0]) else _FAIL
                      for x, f in zip(cx[1:], cf[1:])]


@functools.lru_cache(maxsize=256)
def _coefficients(steps: int, rate: float, K: int, kinds: tuple[int | None, ...]
                  ) -> tuple[tuple[tuple[float, ...], ...], tuple[tuple[float, ...], ...]]:
    """Coefficients of x_l(t) (t = 0..steps) and of F_l(t−1) (t = 1..steps; row 0 unused) on a
    layer's directions (x* and the non-zero E_k named by ``kinds``; see first_converged)."""
    table = weight_table(steps, rate, K)
    zero = [k for k in range(K) if k not in kinds]
    cx, cf = [], [()]
    for t in range(steps + 1):
        b = table[t][:K]
        cx.append((1.0 - sum(b[k] for k in zero), *(b[k] for k in kinds[1:])))
        if t:
            bp = table[t - 1][:K]
            fp = [(bp[k - 1] if k else 0.0) - bp[k] for k in range(K)]     # F(t−1) on E_k
            cf.append((-sum(fp[k] for k in zero), *(fp[k] for k in kinds[1:])))
    return tuple(cx), tuple(cf)


def _norm(c: Sequence[float], dirs: Sequence[torch.Tensor]) -> float:
    return float(_combine(c, dirs).abs().amax()) if any(c) else 0.0


def relax(ops: Sequence[Operator], init: Sequence[torch.Tensor | None], top: torch.Tensor,
          rate: float, steps: int, tol: float) -> tuple[list[torch.Tensor], int]:
    """(x_l(t*) for every hidden layer, t*): the state after t* Euler steps, where t* = the
    first step meeting the tolerance (module docstring), or ``steps`` when tol = 0."""
    C = chains(ops, init, top)
    t = first_converged(C, rate, steps, tol) if tol > 0 and steps > 0 else steps
    H = len(ops)
    xs = []
    for l, row in enumerate(C):
        x = _combine(weight_table(steps, rate, H - l)[t], row)
        xs.append(x if x is not None else torch.zeros_like(row[-1]))   # t = 0, x(0) = 0
    return xs, t
