"""Marked extensions of the learning engine: the graded factors Lava's stock engine lacks.

The stock engine (Loihi 2; Lava's ``LearningDense``) multiplies a dependency (the pre spike x0
or a decimated tick u<d>) by spike traces x1, x2, y1..y3 and the weight.  Some local rules need a
*graded* factor instead (``mappings/engine.toml`` [extensions]):

* ``gx`` — a signed graded factor on the engine's pre side, read from the connection's
  :class:`~neurocredit.chip.ir.GradedSignal` g (clipped to ``bits``):

  - forward view (a synapse whose pre sends a graded value): gx_j = sign(g_j)(|g_j| >> shift),
    e.g. predictive coding's dense error weights ΔΓ_l = −η ε_l ⊗ μ_l (Millidge et al. 2020,
    "Relaxing the constraints on predictive coding models", arXiv:2010.01047);
  - transposed view (learned feedback with a graded *learning payload* g, one value per unit
    the carried payload comes from): the payload traces are y3 = clip(g', 0, 127),
    y2 = clip(−g', 0, 127) with g' = sign(g)(|g| >> shift), and gx_i = sign(d_i)(|d_i| >>
    deliver_shift) with d = B (y3 − y2), the input the weights deliver from the payload to
    driven neuron i — information alignment's null term ΔB = −(B y) ⊗ y with y = W_(l+1) x_l
    (Kunin et al. 2020, ICML, "Two Routes to Scalable Credit Assignment without Weight
    Symmetry").

An extension product is evaluated with the engine's own arithmetic (Lava's
``LearningRuleApplierBitApprox``)::

    cur = dependency · Π clip(f_i, −2^b_i, 2^b_i − 1) · m  >> s  << (7 + k)
                                                     (s = max(0, 4 + Σ b_i − 15): chip.ir.engine_shift)
    acc = clip(acc + clip(cur))                      (16-bit signed accumulator, then the one
                                                      stochastic rounding of the step)

after the stock products (a product series lists its stock products first).  The emulator
(:func:`neurocredit.chip.emulator.apply_series`) and the Lava backend's generic custom learning
process (:mod:`neurocredit.lava.processes.extended_learning`) both call
:func:`accumulate_extensions`, so the stock products are checked against Lava's own engine and
the extension products are the same arithmetic on both sides.
"""
from __future__ import annotations

import numpy as np

from neurocredit.chip.ir import MANT_BITS, STOCK_BITS, engine_shift, extension_table, factor_bits  # noqa: F401

ACC_MAX = 2 ** 15 - 1
ACC_MIN = -(2 ** 15) - 1
TRACE_MAX = 127


def is_extension(factor: str) -> bool:
    return factor in extension_table()


def shifted(g: np.ndarray, shift: int) -> np.ndarray:
    """sign(g) (|g| >> shift): a graded value scaled down, rounded toward zero."""
    g = np.asarray(g, np.int64)
    return np.sign(g) * (np.abs(g) >> int(shift))


def payload_traces(g: np.ndarray, shift: int) -> dict[str, np.ndarray]:
    """A signed learning payload as the post traces y3/y2 (7-bit + and − parts; y1 = 0)."""
    t = shifted(g, shift)
    return {"y1": np.zeros_like(t), "y2": np.clip(-t, 0, TRACE_MAX), "y3": np.clip(t, 0, TRACE_MAX)}


def delivered(weights_out: np.ndarray, traces: dict[str, np.ndarray], deliver_shift: int) -> np.ndarray:
    """gx on the transposed view: sign(d)(|d| >> deliver_shift), d = B (y3 − y2) with
    ``weights_out`` B ([chips,] n_dst, n_src) as it transmits (one value per driven neuron)."""
    t = np.asarray(traces["y3"], np.int64) - np.asarray(traces["y2"], np.int64)
    d = np.einsum("...ij,...j->...i", np.asarray(weights_out, np.int64), t)
    return shifted(d, deliver_shift)


def ordered(series) -> tuple:
    """The products in the order the engine applies them: stock ones first, then extensions
    (a backend's custom process runs the stock engine, then adds the extensions)."""
    series = tuple(series)
    return (*[p for p in series if not p.extensions], *[p for p in series if p.extensions])


def extension_current(p, x0: np.ndarray, traces: dict[str, np.ndarray], w: np.ndarray,
                      graded: dict[str, np.ndarray], time_step: int) -> np.ndarray | None:
    """The clipped current ``cur`` of extension product ``p`` (module docstring) on weights ``w``
    ([chips,] n_post, n_pre): ``x0`` ([chips,] n_pre), ``traces[f]`` the evaluated post traces
    ([chips,] n_post), ``graded[f]`` each extension factor ([chips,] 1, n_pre: one value per pre
    neuron, broadcast over the post rows).  None when a u<d>
    dependency does not tick at ``time_step``."""
    w = np.asarray(w, np.int64)
    if p.dependency == "x0":
        cur = np.broadcast_to(np.asarray(x0).astype(np.int64)[..., None, :], w.shape)
    elif p.decimation is not None:
        if time_step % (1 << p.decimation):
            return None
        cur = np.ones(w.shape, np.int64)
    else:
        raise ValueError(f"product {p}: dependency {p.dependency!r} is not evaluated (x0, u<d> are)")
    table = extension_table()
    for f in p.factors:
        if f in table:
            val = np.asarray(graded[f], np.int64)
        elif f in ("y1", "y2", "y3"):
            val = np.asarray(traces[f], np.int64)[..., :, None]
        elif f == "w":
            val = w
        else:
            raise ValueError(f"product {p}: factor {f!r} is neither stock nor a listed extension")
        bits = factor_bits(f)
        cur = cur * np.clip(val, -(2 ** bits), 2 ** bits - 1)
    cur = (cur * int(p.mant)) >> engine_shift(p.factors)
    return np.clip(cur << (7 + int(p.exp)), ACC_MIN, ACC_MAX)


def accumulate_extensions(acc: np.ndarray, series, x0: np.ndarray, traces: dict[str, np.ndarray],
                          w: np.ndarray, graded: dict[str, np.ndarray], time_step: int) -> np.ndarray:
    """``acc`` (the 16-bit accumulator, W << 7 plus the stock products) plus every extension
    product of ``series`` in order, saturating after each (as the engine does)."""
    for p in series:
        if not p.extensions:
            continue
        cur = extension_current(p, x0, traces, w, graded, time_step)
        if cur is not None:
            acc = np.clip(acc + cur, ACC_MIN, ACC_MAX)
    return acc


def graded_factors(c, source_value, weights: np.ndarray, post_value=None,
                   ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray] | None]:
    """(extension factors, payload traces or None) of plastic connection ``c`` for one step:
    ``source_value`` the graded signal g its :class:`~neurocredit.chip.ir.GradedSignal` names
    (and ``post_value`` the one its ``graded_post`` names, for the post factor ry)
    ([chips,] n), ``weights`` its weights as they transmit ([chips,] n_dst, n_src).  The factors
    are shaped for the engine view ([chips,] 1, n_pre, broadcast over its rows); on the transposed
    view the traces replace those of the carried payload."""
    gs = c.graded
    if c.view == "transposed":
        traces = payload_traces(source_value, gs.shift)
        return {"gx": delivered(weights, traces, gs.deliver_shift)[..., None, :]}, traces
    pre = shifted(source_value, gs.shift)[..., None, :]
    if c.graded_post is None:
        return {"gx": pre}, None
    # a graded-rate connection: rx = the pre's value, ry = the post's (``post_value``: the
    # signal c.graded_post names, one value per post neuron, broadcast over the columns)
    return {"gx": pre, "rx": pre, "ry": shifted(post_value, c.graded_post.shift)[..., :, None]}, None
