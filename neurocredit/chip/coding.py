"""Input spike codings of the streaming sessions: how a sample's values in [0, 1] become the binary
input spikes of its steps.

    'rate'     each step an independent Bernoulli draw, P(spike at t) = p[t]  (rate coding)
    'regular'  deterministic, evenly spaced: within each row's slot of steps j = 0, 1, ..., a spike
               where ⌊(j+1) p + ½⌋ > ⌊j p + ½⌋ (a first-order sigma-delta modulator restarted for
               every row: round(n p) spikes in a slot of n steps, no sampling noise)

p[t] is the value the step reads (:func:`neurocredit.chip.session.step_rates`: a flat sample the
same on every step, a sequence [N, rows, n_in] row by row).  Both give binary spikes, so the
learning engine (the pre traces x1) and every backend see ordinary spikes.  The float twin of the
chip's e-prop (``neurocredit.sim.recurrent_train.regular_coded``) codes its input the same way.
"""
from __future__ import annotations

import numpy as np

CODINGS = ("rate", "regular")


def slot_position(steps: int, rows: int) -> np.ndarray:
    """j[t] [steps]: step t's position inside its row's slot, the row of step t being ⌊t·rows/steps⌋
    (as :func:`neurocredit.chip.session.step_rates`)."""
    row = np.arange(steps) * rows // steps
    start = np.searchsorted(row, np.arange(rows))
    return np.arange(steps) - start[row]


def regular_spikes(p: np.ndarray, rows: int) -> np.ndarray:
    """Deterministic spikes (module docstring, 'regular') of per-step probabilities ``p``
    [N, T, n] whose steps fall into ``rows`` equal slots; int64 [N, T, n]."""
    p = np.clip(np.asarray(p, np.float64), 0, 1)
    j = slot_position(p.shape[1], rows)[None, :, None]
    return (np.floor((j + 1) * p + 0.5) > np.floor(j * p + 0.5)).astype(np.int64)


def coded_spikes(p: np.ndarray, rows: int, coding: str, rng: np.random.Generator) -> np.ndarray:
    """Binary spikes [N, T, n] of per-step probabilities ``p`` [N, T, n] under ``coding``
    (:data:`CODINGS`); 'rate' draws ``rng.random(p.shape)`` (as the sessions always did)."""
    if coding == "rate":
        return (rng.random(p.shape) < p).astype(np.int64)
    if coding == "regular":
        return regular_spikes(p, rows)
    raise ValueError(f"unknown input coding '{coding}'; known: {', '.join(CODINGS)}")


__all__ = ["CODINGS", "slot_position", "regular_spikes", "coded_spikes"]
