"""ThirdFactorLIF: a LearningLIF that delivers an error (third factor) to its plastic synapses.

Lava's stock ``LearningLIF`` models send nothing on ``s_out_y1..y3`` (DESIGN.md: a
``Loihi3FLearningRule`` wired to them blocks).  This process receives an error on
``a_third_factor_in`` (through a feedback Dense: fixed random B for DFA/FA, the identity for the
output layer, B from the target for DRTP) and sends, every step::

    t      = trunc(a_third / 2^third_shift)                  (fixed point; float: a_third * third_scale)
    g      = 1 if the neuron's voltage before reset >= gate_lo else 0   (box-car derivative)
    y2     = clip(-g t, 0, 127),  y3 = clip(g t, 0, 127)    (7-bit unsigned traces: - and + parts)
    y1     = the neuron's spike                              (for Hebbian post x pre products)
    s_err  = g t                                              (graded, for FA's next pathway)

so that the learning rule ``dw = C x0 y2 - C x0 y3`` is ``dW = -C x e`` with e the signed error.
"""
from __future__ import annotations

import typing as ty

from lava.magma.core.process.ports.ports import OutPort
from lava.magma.core.process.variable import Var
from lava.proc.lif.process import LearningLIF


class ThirdFactorLIF(LearningLIF):
    """LIF neurons that send their third factor as post traces y2 (negative part) and y3
    (positive part), and as a graded spike on ``s_err``."""

    def __init__(self, *, shape: ty.Tuple[int, ...], third_shift: int = 0, third_scale: float = 1.0,
                 gate_lo: float = -(2 ** 30), **kwargs) -> None:
        super().__init__(shape=shape, third_shift=third_shift, third_scale=third_scale,
                         gate_lo=gate_lo, **kwargs)
        self.s_err = OutPort(shape=shape)
        self.third_shift = Var(shape=(1,), init=third_shift)
        self.third_scale = Var(shape=(1,), init=third_scale)
        self.gate_lo = Var(shape=(1,), init=gate_lo)
