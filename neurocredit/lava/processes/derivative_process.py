"""PseudoDerivativeLIF: a ThirdFactorLIF whose post trace y1 is its pseudo-derivative ψ.

For eligibility traces on the synaptic tag (e-prop, :mod:`neurocredit.chip.tags`) the learning
engine's dt series reads ψ_j as y1 (in place of the spike)::

    ψ = floor(127 θ² / (θ + k |v − θ|)²)      v: the voltage before reset, θ = vth << 6,
                                             k = ``psi_slope`` (the fast-sigmoid slope)

y2, y3 and ``s_err`` carry the third factor as in ThirdFactorLIF.
"""
from __future__ import annotations

import typing as ty

from lava.magma.core.process.variable import Var

from neurocredit.lava.processes.process import ThirdFactorLIF


class PseudoDerivativeLIF(ThirdFactorLIF):
    """ThirdFactorLIF sending y1 = ψ (module docstring)."""

    def __init__(self, *, shape: ty.Tuple[int, ...], psi_slope: float = 2.0, **kwargs) -> None:
        super().__init__(shape=shape, **kwargs)
        self.psi_slope = Var(shape=(1,), init=psi_slope)
