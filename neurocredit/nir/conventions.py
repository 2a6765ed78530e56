"""Which time step (and discretisation) a NIR file's producer meant, read from the file itself.

NIR stores continuous-time equations (``tau dv/dt = v_leak - v + r I``); each library writes its
discrete neurons into them with its own step ``dt``, which the file does not record.  The step
can usually be recovered from how the producer folds it into ``r`` (and ``w_in``):

=============  ======================================================  ======================
producer       what it writes                                          dt recovered
=============  ======================================================  ======================
neurocredit    its learning metadata holds ``dt`` and the discretisation  the metadata's
snnTorch       LIF / CubaLIF ``r = tau/dt`` (``w_in = tau_syn/dt``)    ``tau / r`` (one value)
Rockpool       CubaLIF ``r = tau e^(-dt/tau)/dt``, ``w_in = 1``        root of that equation
Sinabs         ``r = 1``, ``tau`` in steps (``IF`` / ``LIF``)          1 (one step per unit)
Norse          ``r = 1``, ``tau`` in seconds                           1e-3 (Norse's default)
=============  ======================================================  ======================

A value is accepted only when every neuron of the graph agrees on it (relative 1e-3); otherwise
the default 1e-4 s (the step snnTorch's exporter assumes) is kept and the reason says so.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from neurocredit.neurons import lif as L

DEFAULT_DT = L.SNNTORCH_DT
SINABS_DT = 1.0
NORSE_DT = 1e-3
_TOL = 1e-3


@dataclass(frozen=True)
class Conventions:
    """The step a file's producer meant: ``dt`` (s), ``producer`` ('neurocredit', 'metadata',
    'snntorch', 'rockpool', 'sinabs', 'norse' or 'unknown'), a one-line ``reason``, and the
    discretisation preset of :mod:`neurocredit.neurons.lif` it names (None: 'nir')."""

    dt: float
    producer: str
    reason: str
    discretisation: Any = None


def _vals(node: Any, field: str) -> np.ndarray | None:
    v = getattr(node, field, None)
    if v is None:
        return None
    try:
        a = np.asarray(v, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        return None
    return a if a.size and np.all(np.isfinite(a)) else None


def _agree(values: list[np.ndarray]) -> float | None:
    """The one positive value all arrays hold (relative tolerance _TOL), else None."""
    if not values:
        return None
    a = np.concatenate(values)
    if a.size == 0 or not np.all(a > 0):
        return None
    mid = float(np.median(a))
    return mid if float(np.max(np.abs(a - mid))) <= _TOL * mid else None


def _rockpool_dt(tau: np.ndarray, r: np.ndarray) -> np.ndarray | None:
    """Per neuron, the dt solving r = tau e^(-dt/tau) / dt (decreasing in dt: bisection in log)."""
    if not (np.all(tau > 0) and np.all(r > 0)):
        return None
    lo, hi = np.full(tau.shape, -30.0), np.full(tau.shape, 10.0)      # ln dt
    for _ in range(80):
        mid = (lo + hi) / 2
        dt = np.exp(mid)
        f = tau * np.exp(-dt / tau) / dt - r
        lo, hi = np.where(f > 0, mid, lo), np.where(f > 0, hi, mid)
    dt = np.exp((lo + hi) / 2)
    ok = np.abs(tau * np.exp(-dt / tau) / dt - r) <= _TOL * r
    return dt if ok.all() else None


def _all_nodes(graph: Any, depth: int = 0) -> list[Any]:
    """Every node of ``graph``, nested sub-graphs included."""
    out = []
    for n in (getattr(graph, "nodes", None) or {}).values():
        if type(n).__name__ == "NIRGraph" and depth < 32:
            out += _all_nodes(n, depth + 1)
        else:
            out.append(n)
    return out


def detect(graph: Any) -> Conventions:
    """The producer conventions of ``graph`` (a nir.NIRGraph; see the module docstring)."""
    from neurocredit.nir.schema import read_learning

    try:
        spec = read_learning(graph, strict=False)
    except Exception:   # noqa: BLE001 - malformed metadata: the loader reports it, not this
        spec = None
    if spec and "dt" in spec:
        return Conventions(float(spec["dt"]), "neurocredit", "neurocredit learning metadata",
                           spec.get("discretisation"))
    meta = getattr(graph, "metadata", None) or {}
    if "dt" in meta:
        try:
            dt = float(np.asarray(meta["dt"]).reshape(-1)[0])
            if math.isfinite(dt) and dt > 0:
                return Conventions(dt, "metadata", "the graph's metadata 'dt'")
        except (TypeError, ValueError, IndexError):
            pass
    neurons = [(type(n).__name__, n) for n in _all_nodes(graph)
               if type(n).__name__ in ("LIF", "CubaLIF", "IF", "LI", "CubaLI")]
    if not neurons:
        return Conventions(DEFAULT_DT, "unknown", "no neuron nodes")
    rs = [_vals(n, "r") for _, n in neurons]
    if any(r is None for r in rs):
        return Conventions(DEFAULT_DT, "unknown", "a neuron without a finite r")
    taus = [_vals(n, "tau") if k in ("LIF", "LI") else _vals(n, "tau_mem") for k, n in neurons]
    taus_known = [t for (k, _), t in zip(neurons, taus) if k != "IF"]
    if any(t is None for t in taus_known):
        return Conventions(DEFAULT_DT, "unknown", "a neuron without a finite time constant")
    if all(np.all(r == 1.0) for r in rs):
        if all(np.all(t >= 1.0) for t in taus_known):
            return Conventions(SINABS_DT, "sinabs", "r = 1 and time constants in steps (Sinabs): dt = 1")
        if all(np.all(t < 1.0) for t in taus_known):
            return Conventions(NORSE_DT, "norse", "r = 1 and time constants in seconds (Norse): "
                               "Norse's default dt = 1 ms")
    cuba = [(n, r) for (k, n), r in zip(neurons, rs) if k in ("CubaLIF", "CubaLI")]
    if cuba and len(cuba) == len(neurons) and all(
            (w := _vals(n, "w_in")) is not None and np.all(w == 1.0) for n, _ in cuba):
        dts = [_rockpool_dt(np.broadcast_to(_vals(n, "tau_mem"), r.shape), r) for n, r in cuba]
        if all(d is not None for d in dts) and (dt := _agree(dts)) is not None:
            return Conventions(dt, "rockpool", f"r = tau e^(-dt/tau)/dt, w_in = 1 (Rockpool): dt = {dt:.4g} s")
    ratios = [np.broadcast_to(t, r.shape) / r for (k, _), t, r in zip(neurons, taus, rs) if k != "IF"]
    if ratios and (dt := _agree(ratios)) is not None:
        return Conventions(dt, "snntorch", f"r = tau/dt in every neuron (snnTorch): dt = {dt:.4g} s")
    return Conventions(DEFAULT_DT, "unknown", "no producer convention recognised: dt = 1e-4 s "
                       "(snnTorch's exporter default)")
