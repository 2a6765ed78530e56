"""Exact bias timing: a constant drive (an Affine bias, a leak towards v_leak) that starts at each
layer's depth, built from two small onset populations instead of the neuron's own bias.

Every Dense delays by one step, so the layer at depth d receives the input of NIR step t at chip
step t + d; a neuron's own bias acts from chip step 1, d steps early, and the spike phase it shifts
persists.  Instead (chip steps counted from 1)::

    clock_j   (j = 0 .. D-1)  fires at every step >= j + 1     clock_0 by its bias, clock_j fed
                                                                by clock_(j-1) through a Dense
    onset_j   (j = 0 .. D-1)  fires once, at step j + 1         onset_0 = bias - clock_0,
                                                                onset_j = clock_(j-1) - clock_j

and a layer at depth d with synaptic decay du receives, through Dense connections (arriving at
step d + 1, with its first input)::

    from clock_(d-1):  g b + du L      from onset_(d-1):  (1 - du) L

where g b is the Affine bias in the layer's input units (it passes the synapse, as in NIR) and L
the constant part of dv (dt/tau v_leak, per threshold): the synaptic current u then holds
exactly g b-filtered + L from step d + 1 on, in float (Lava ``floating_pt``) and fixed point
alike.  Plain LIF (du = 1) needs no onset pulse.  All neurons here are LIF with du = 1, dv = 0.
"""
from __future__ import annotations

import numpy as np

from neurocredit.chip.ir import Connection, Population

CLOCK = "clock"
ONSET = "onset"


def onset_populations(depth: int, fixed_point: bool) -> tuple[list[Population], list[Connection]]:
    """The clock and onset populations of ``depth`` neurons each, and the connections between
    them (float: vth 0.5, weights ±1, bias 1; fixed point: vth 1 (64 in v), weights ±2, bias 128)."""
    one, vth, bias = (2, 1, 128) if fixed_point else (1.0, 0.5, 1.0)
    du = 4095 if fixed_point else 1.0
    b = np.zeros(depth, np.int64 if fixed_point else np.float64)
    b[0] = bias
    exp = np.zeros(depth, np.int64)
    clock = Population(CLOCK, depth, du, 0, vth, b.copy(), exp.copy())
    onset = Population(ONSET, depth, du, 0, vth, b.copy(), exp.copy())
    dtype = np.int64 if fixed_point else np.float64
    shift = np.zeros((depth, depth), dtype)
    for j in range(1, depth):
        shift[j, j - 1] = one
    to_onset = shift - one * np.eye(depth, dtype=dtype)      # onset_j = clock_(j-1) - clock_j
    return [clock, onset], [Connection(f"{CLOCK}->{CLOCK}", CLOCK, CLOCK, shift, 0, 8, "mixed"),
                            Connection(f"{CLOCK}->{ONSET}", CLOCK, ONSET, to_onset, 0, 8, "mixed")]


def drive_connections(name: str, depth: int, size: int, input_drive: np.ndarray, leak: np.ndarray,
                      du: float) -> list[Connection]:
    """Float connections that give layer ``name`` (at ``depth``, ``size`` clock neurons) the
    constant input ``input_drive`` (into u, as its weights do) and ``leak`` (into v) from its
    first input on (module docstring)."""
    conns = []
    w_clock = np.asarray(input_drive, np.float64) + du * np.asarray(leak, np.float64)
    w_onset = (1.0 - du) * np.asarray(leak, np.float64)
    for src, w in ((CLOCK, w_clock), (ONSET, w_onset)):
        if np.any(w != 0):
            m = np.zeros((w.shape[0], size))
            m[:, depth - 1] = w
            conns.append(Connection(f"{src}->{name}", src, name, m, 0, 8, "mixed"))
    return conns
