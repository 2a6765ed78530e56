"""Per-unit adaptive inference rates for a nonlinear relaxation, with kink snapping and a
contraction-corrected stop: how exact predictive coding reaches its energy minimum in a few
steps.

A relaxation descends an energy E(v) by v ← v + γ F(v), F = −∂E/∂v.  With a piecewise-linear
activation (ReLU) the energy has kinks: a unit whose minimum lies on one (v_i = 0, pulled down
by its error feedback above and up by its prediction below) makes forward Euler chatter
across it for ever (F_i jumps between the two sides' values, ‖F‖_∞ never falls below a
fraction ~0.6 of ‖ε‖_∞ on the digits net), so a stop test on F never fires.  This module's
step, for every unit i of every layer:

* rate (SuperSAB, Tollenaere 1990, "SuperSAB: fast adaptive back propagation with good
  scaling properties", Neural Networks 3:561; the rate rule of Rprop, Riedmiller & Braun 1993,
  applied to the gradient step): γ_i ← γ_i · CUT where F_i changed sign since the last step
  (the step overshot: a kink, or a direction the rate is too large for), else
  γ_i ← min(γ_i · GROW, γ_max);
* kink snapping: where F_i changed sign and f is piecewise linear (:func:`piecewise_linear`:
  ReLU, linear) and its slope changed between the last two states, v_i jumps onto the kink,
  where the two pieces' tangents meet, k = (f(v) − f(v') + f'(v')v' − f'(v)v) / (f'(v') − f'(v))
  (ReLU: 0 exactly), instead of stepping;
* stop: m_l = ‖Δv_l‖_∞ / γ_max (what still moves, in units of F), scaled by 1/(1 − ρ_l) with
  ρ_l = m_l(t)/m_l(t−1) (≤ :data:`RHO_MAX`), the a-posteriori distance to the fixed point of
  an iteration that contracts by ρ per step; stop when m_l/(1 − ρ_l) ≤ τ ‖ε_l‖_∞ for every
  layer (ε at the state the step started from) — the rule's tolerance τ of
  :mod:`neurocredit.sim.relaxation`, on what still moves.

The fixed point is the one Euler would reach if it converged: F_i = 0 on smooth units, the
kink where the energy's one-sided derivatives bracket 0.  γ_max is the rule constant
``solver_rate`` (1: the step that settles the self term ε_l = μ_l − v_l of a unit in one step).
"""
from __future__ import annotations

import functools
from typing import Sequence

import numpy as np
import torch

try:                                  # a declared dependency; torch ops stand in without it
    from numba import njit
except ImportError:                   # pragma: no cover
    njit = None

from neurocredit.neurons.rate import Activation

GROW = 1.2
"""γ_i grows by this factor per step while F_i keeps its sign (SuperSAB's η⁺, Rprop's 1.2)."""
CUT = 0.5
"""γ_i shrinks by this factor when F_i changes sign (η⁻ = 0.5: bisection of a bracketed kink)."""
RHO_MAX = 0.95
"""Contraction estimates are capped here (the stop then asks m ≤ τ‖ε‖/20)."""
_MID, _HALF_SPAN = (GROW + CUT) / 2, (GROW - CUT) / 2
PASSES = 1
"""The test must pass on this many consecutive steps (2 is stricter: on the digits net 15-30
instead of 5 steps, update within 0.2 % instead of 3-4 % of the converged one)."""


@functools.lru_cache(maxsize=32)
def piecewise_linear(act: Activation) -> bool:
    """Whether f is linear between kinks (ReLU, linear): its second difference on a fine grid
    over [−8, 8] vanishes everywhere but at a few grid points.  Only then is the tangents'
    intersection of two states on either side of a kink the kink itself."""
    a = torch.linspace(-8.0, 8.0, 4097, dtype=torch.float64)
    fa = act.f(a)
    second = (fa[2:] - 2 * fa[1:-1] + fa[:-2]).abs()
    return int((second > 1e-9 * (1 + fa.abs().amax())).sum()) <= 8


class AdaptiveRates:
    """State of one settle: per-unit rates, the last step's force, state and activity."""

    def __init__(self, act: Activation, top_rate: float, tol: float) -> None:
        if not top_rate > 0.0:
            raise ValueError(f"solver_rate must be > 0, got {top_rate}")
        self.act = act
        self.top = top_rate
        self.tol = tol
        self.rates: list[torch.Tensor] | None = None
        self._last: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] | None = None
        self._moved: list[float] | None = None
        self._passes = 0

    def moves(self, v: Sequence[torch.Tensor], acts: Sequence[torch.Tensor],
              forces: Sequence[torch.Tensor], eps: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """Δv_l of this step for every layer (module docstring); updates the rates and records
        ‖Δv_l‖_∞ and ‖ε_l‖_∞ (ε at the state the forces were computed from) for
        :meth:`converged`.  One compiled pass per layer on CPU (:func:`_kernel_step`, the
        rates and the last step's state in one buffer it keeps); torch ops elsewhere (same
        arithmetic)."""
        snap = piecewise_linear(self.act)
        first = self.rates is None
        if first:
            self.rates = [torch.full_like(f, self.top) for f in forces]
            self._ones = [torch.ones_like(f) for f in forces]
            self._last = [(f, f, f, f) for f in forces]        # unread on the first step
            self._state = [None] * len(forces)
            if njit is not None:
                for l, f in enumerate(forces):
                    if _numpy_views((f,)) is not None:
                        buf = torch.empty((5, f.numel()), dtype=f.dtype)
                        buf[0] = self.top
                        self._state[l] = buf.numpy()
        out, slopes, norms = [], [], []
        for l, (vl, al, fl, el) in enumerate(zip(v, acts, forces, eps)):
            s_now = self.act.gate(self._ones[l], vl, al) if snap else fl
            arrays = (None if self._state[l] is None
                      else _numpy_views((vl, al, fl, s_now, el)))
            if arrays is not None:
                move = torch.empty_like(fl)
                norms.append(_kernel_step(*arrays, self._state[l], move.view(-1).numpy(),
                                          self.top, snap, first))
            else:
                move = self._torch_step(l, vl, al, fl, s_now, snap, first)
                norms.append((float(move.abs().amax()), float(el.abs().amax())))
            out.append(move)
            slopes.append(s_now)
        self._last = list(zip(v, acts, forces, slopes))
        self._norms = norms
        return out

    def _torch_step(self, l: int, vl: torch.Tensor, al: torch.Tensor, fl: torch.Tensor,
                    s_now: torch.Tensor, snap: bool, first: bool) -> torch.Tensor:
        """:func:`_kernel_step` as torch ops (CUDA, or no numba), with float masks (sign, relu):
        on small tensors ``torch.where`` and comparisons cost ~10x a multiply."""
        if first:
            return fl * self.top
        pv, pa, pf, ps = self._last[l]
        agree = torch.mul(fl, pf).sign_()                     # +1 same sign, −1 flipped
        rate = self.rates[l].mul_(agree * _HALF_SPAN + _MID).clamp_(max=self.top)
        move = rate * fl
        if snap:   # the tangents of the two pieces meet at the kink k
            ds = ps - s_now
            bent = ds.sign().abs_()                           # 1 where the slope changed
            k = torch.sub(al, pa).addcmul_(ps, pv).addcmul_(s_now, vl, value=-1)
            k.div_(ds.sub_(bent).add_(1.0))                   # ds, or 1 where unchanged
            put = torch.relu(agree.neg_()).mul_(bent)         # flipped and bent: snap
            # put ∈ {0, 1}: move or k − v exactly, so that v lands on the kink itself
            move = move.mul_(1.0 - put).addcmul_(put, k.sub_(vl))
        return move

    def converged(self) -> bool:
        """m_l / (1 − ρ_l) ≤ τ ‖ε_l‖_∞ for every layer, on the norms :meth:`moves` recorded."""
        moved = [m / self.top for m, _ in self._norms]
        last, self._moved = self._moved, moved
        if last is None:
            return False
        rho = [min(m / m_prev, RHO_MAX) if m_prev > 0 else 0.0 for m, m_prev in zip(moved, last)]
        met = all(m <= self.tol * e * (1.0 - r)
                  for m, (_, e), r in zip(moved, self._norms, rho))
        self._passes = self._passes + 1 if met else 0
        return self._passes >= PASSES


def _numpy_views(tensors: tuple[torch.Tensor, ...]) -> list[np.ndarray] | None:
    """1-D numpy views of dense CPU float tensors of one dtype, or None (then torch ops)."""
    if njit is None:
        return None
    dtype = tensors[0].dtype
    if tensors[0].device.type != "cpu" or dtype not in (torch.float32, torch.float64):
        return None
    out = []
    for t in tensors:
        if t.dtype != dtype or not t.is_contiguous() or t.device.type != "cpu":
            return None
        out.append(t.detach().view(-1).numpy())
    return out


if njit is not None:
    @njit(cache=True, nogil=True, fastmath=True)
    def _kernel_step(v, a, f, s, eps, state, move, top, snap, first):  # pragma: no cover - compiled
        """One pass over a layer: the rate update, the move (or the jump to the kink), the two
        max-norms; ``state`` rows = rate, v, f(v), F, f'(v) of the last step (rewritten)."""
        mmax = 0.0
        emax = 0.0
        rate, pv, pa, pf, ps = state[0], state[1], state[2], state[3], state[4]
        for i in range(v.shape[0]):
            r = rate[i]
            fi = f[i]
            m = r * fi
            if not first:
                g = fi * pf[i]
                if g > 0:
                    r = min(r * GROW, top)
                elif g < 0:
                    r = r * CUT
                else:
                    r = min(r * _MID, top)
                m = r * fi
                if snap and g < 0:
                    ds = ps[i] - s[i]
                    if ds != 0:
                        m = (a[i] - pa[i] + ps[i] * pv[i] - s[i] * v[i]) / ds - v[i]
            rate[i] = r
            pv[i] = v[i]
            pa[i] = a[i]
            pf[i] = fi
            ps[i] = s[i]
            move[i] = m
            mmax = max(mmax, abs(m))
            emax = max(emax, abs(eps[i]))
        return mmax, emax
