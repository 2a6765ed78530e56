"""The class a spiking output layer answers: the most output spikes, a tie broken by the
membrane voltage at the end of the sample.

For output spike counts c_k and the voltages v_k of the output neurons after the sample's last
step (after reset, as the neuron holds it)::

    class = argmax_k (c_k, v_k)         lexicographic: the largest count; among the neurons that
                                        share it, the largest v; then the lowest index

A count ties often on short samples (16 steps, a few output spikes): plain ``argmax`` of counts
gives every tie to the lowest class index, which costs accuracy.  The end-of-sample voltage
is the neuron's progress toward its next spike, which the chip can read: on Loihi / Lava a
``Monitor`` or ``lava.proc.io.sink.Read`` probe on the output LIF's ``v`` at the sample's last
step (``neurocredit.lava.run.run_lava(voltage=...)``), at the cost of one voltage read per output
neuron per sample (the spike counts are read anyway).  The emulator records the same voltage
(``neurocredit.chip.emulator.emulate(voltage=...)``) and the float spiking network uses the same
rule on its LIF readout (``neurocredit.sim.spiking.evaluate_figures``), so chip and float figures
share one decision.  A graded (non-spiking) readout has no ties to break: pass ``v_end=None``.
"""
from __future__ import annotations

import numpy as np


def _np(a) -> np.ndarray:
    """A numpy copy of an array or a (CPU or device) torch tensor."""
    if hasattr(a, "detach"):
        a = a.detach().cpu()
    return np.asarray(a)


def decide(counts, v_end=None) -> np.ndarray:
    """Class per sample [N] from output spike counts [N, K] and end-of-sample voltages [N, K]
    (``None``: plain argmax): argmax_k (c_k, v_k), lexicographic (module docstring)."""
    c = _np(counts)
    if c.ndim != 2:
        raise ValueError(f"output counts must be [samples, classes], got shape {c.shape}")
    if v_end is None:
        return c.argmax(axis=1)
    v = _np(v_end).astype(np.float64)
    if v.shape != c.shape:
        raise ValueError(f"end-of-sample voltages {v.shape} must match the output counts {c.shape}")
    top = c == c.max(axis=1, keepdims=True)
    return np.where(top, v, -np.inf).argmax(axis=1)


def tied(counts) -> np.ndarray:
    """Per sample [N]: True where the largest output count is shared by two or more neurons
    (zero spikes everywhere included)."""
    c = _np(counts)
    return (c == c.max(axis=1, keepdims=True)).sum(axis=1) > 1


def decision_figures(counts, v_end, labels) -> dict[str, float]:
    """{'test_acc': accuracy of :func:`decide` (counts, voltage tie-break), 'test_acc_counts':
    accuracy of plain argmax of the counts (ties to the lowest index), 'test_tied': fraction of
    samples whose top count is tied}; without ``v_end`` (a graded readout) only 'test_acc'."""
    y = _np(labels)
    acc = float((decide(counts, v_end) == y).mean())
    if v_end is None:
        return {"test_acc": acc}
    return {"test_acc": acc, "test_acc_counts": float((decide(counts) == y).mean()),
            "test_tied": float(tied(counts).mean())}
