"""Fused elementwise steps of torch SGD for the local update engine: one pass per matrix.

torch SGD with momentum m, learning rate η and gradient g = −Δ:  v ← m·v + g,  p ← p − η·v.
The update engine (:mod:`neurocredit.sim.updates`) writes the outer-product part of g with a
GEMM; what is left is elementwise, and each function here does it in one pass that reads and
writes v and p once (torch ops need one pass per operation):

* :func:`decay_step`    v ← v + c·p;           p ← p − η·v   (a decay term c·p, e.g. Kolen-Pollack's
  λW or the weight mirror's −B, added after the GEMM wrote m·v + the product);
* :func:`product_step`  v ← m·v + s·T + c·p;   p ← p − η·v   (the product T written once elsewhere);
* :func:`pair_step`     :func:`product_step` for two matrices that share T, reading T once: W_{l+1}
  and B_lᵀ of a rule whose ΔB_l is the transpose of ΔW_{l+1}'s product (Kolen-Pollack,
  Akrout et al. 2019, NeurIPS; Kolen & Pollack 1994: ΔW_{l+1} = −η e_{l+1} ⊗ x_l − λW_{l+1},
  ΔB_l = −η x_l ⊗ e_{l+1} − λB_l).

The kernels are compiled by numba (``cache=True``) for dense CPU float32 / float64 tensors whose
strides all agree (elementwise over memory order); anything else (CUDA, mismatched layouts, numba
missing) runs the same arithmetic as torch ops.  Rounding differs from separate torch passes only
in the order of the float operations.
"""
from __future__ import annotations

import numpy as np
import torch

try:                                  # a declared dependency; torch ops stand in without it
    from numba import njit
except ImportError:                   # pragma: no cover
    njit = None

if njit is not None:
    @njit(cache=True, nogil=True)
    def _decay(v, p, c, lr):          # pragma: no cover - compiled
        for i in range(p.shape[0]):
            g = v[i] + c * p[i]
            v[i] = g
            p[i] -= lr * g

    @njit(cache=True, nogil=True)
    def _product(t, v, p, m, s, c, lr):   # pragma: no cover - compiled
        for i in range(p.shape[0]):
            g = m * v[i] + s * t[i] + c * p[i]
            v[i] = g
            p[i] -= lr * g

    @njit(cache=True, nogil=True)
    def _pair(t, s, v1, p1, m1, c1, lr1, v2, p2, m2, c2, lr2):   # pragma: no cover - compiled
        for i in range(t.shape[0]):
            u = s * t[i]
            g = m1 * v1[i] + u + c1 * p1[i]
            v1[i] = g
            p1[i] -= lr1 * g
            h = m2 * v2[i] + u + c2 * p2[i]
            v2[i] = h
            p2[i] -= lr2 * h


MIN_ELEMENTS = 1 << 15
"""Below this many elements torch's separate passes are cheaper than handing the tensors to
numba (about 10 µs of views per call; 1000×1000 float32: two torch passes 0.62 ms, one kernel
pass 0.34 ms)."""


def _flat(tensors: tuple[torch.Tensor, ...]) -> list[np.ndarray] | None:
    """1-D numpy views over the memory of ``tensors`` in one shared order, or None when the
    kernels cannot take them (not CPU, not float32/64, mixed dtypes or strides, not dense) or
    when they are too small to gain (:data:`MIN_ELEMENTS`)."""
    if njit is None:
        return None
    first = tensors[0]
    if (first.device.type != "cpu" or first.dtype not in (torch.float32, torch.float64)
            or first.numel() < MIN_ELEMENTS):
        return None
    out = []
    for t in tensors:
        if t.dtype != first.dtype or t.shape != first.shape or t.stride() != first.stride():
            return None
        if t.is_contiguous():
            flat = t.detach().view(-1)
        elif t.dim() == 2 and t.t().is_contiguous():
            flat = t.detach().t().view(-1)
        else:
            return None
        out.append(flat.numpy())
    return out


def _scalars(dtype: torch.dtype, *values: float) -> list:
    kind = np.float32 if dtype == torch.float32 else np.float64
    return [kind(v) for v in values]


def decay_step(v: torch.Tensor, p: torch.Tensor, c: float, lr: float) -> None:
    """v ← v + c·p;  p ← p − lr·v  (in place)."""
    arrays = _flat((v, p))
    if arrays is None:
        v.add_(p, alpha=c)
        p.add_(v, alpha=-lr)
        return
    _decay(*arrays, *_scalars(p.dtype, c, lr))


def product_step(t: torch.Tensor, v: torch.Tensor, p: torch.Tensor, m: float, s: float,
                 c: float, lr: float) -> None:
    """v ← m·v + s·t + c·p;  p ← p − lr·v  (in place; ``t`` shaped and laid out like ``p``)."""
    arrays = _flat((t, v, p))
    if arrays is None:
        v.mul_(m).add_(t, alpha=s)
        if c:
            v.add_(p, alpha=c)
        p.add_(v, alpha=-lr)
        return
    a_t, a_v, a_p = arrays
    _product(a_t, a_v, a_p, *_scalars(p.dtype, m, s, c, lr))


def pair_step(t: torch.Tensor, s: float,
              first: tuple[torch.Tensor, torch.Tensor, float, float, float],
              second: tuple[torch.Tensor, torch.Tensor, float, float, float]) -> None:
    """:func:`product_step` on two matrices that share ``t``; each of ``first`` and ``second``
    is (v, p, m, c, lr), laid out like ``t``."""
    (v1, p1, m1, c1, lr1), (v2, p2, m2, c2, lr2) = first, second
    arrays = _flat((t, v1, p1, v2, p2))
    if arrays is None:
        product_step(t, v1, p1, m1, s, c1, lr1)
        product_step(t, v2, p2, m2, s, c2, lr2)
        return
    a_t, a_v1, a_p1, a_v2, a_p2 = arrays
    k = _scalars(p1.dtype, s, m1, c1, lr1, m2, c2, lr2)
    _pair(a_t, k[0], a_v1, a_p1, k[1], k[2], k[3], a_v2, a_p2, k[4], k[5], k[6])
