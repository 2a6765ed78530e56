"""Fixed-point process model of :class:`~neurocredit.lava.processes.derivative_process.PseudoDerivativeLIF`:
ThirdFactorLIF's model with y1 = the pseudo-derivative ψ of the voltage before reset."""
from __future__ import annotations

import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.neuron import LearningNeuronModelFixed
from lava.magma.core.model.py.ports import PyInPort, PyOutPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol

from neurocredit.lava.processes.derivative_process import PseudoDerivativeLIF
from lava.proc.lif.models import AbstractPyLifModelFixed

from neurocredit.lava.processes.models import TRACE_MAX, ThirdFactorFixedStep


def _psi(v: np.ndarray, theta: int, slope: float) -> np.ndarray:
    """ψ = floor(127 θ² / (θ + k|v − θ|)²), k to 1/16 (as neurocredit.chip.tags.pseudo_derivative)."""
    th = np.int64(theta) * 16
    d = np.abs(np.asarray(v, np.int64) * 16 - th) // 16
    den = th + int(round(16 * slope)) * d
    return np.clip((TRACE_MAX * th * th) // np.maximum(den * den, 1), 0, TRACE_MAX)


@implements(proc=PseudoDerivativeLIF, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyPseudoDerivativeLIFModelFixed(ThirdFactorFixedStep, LearningNeuronModelFixed, AbstractPyLifModelFixed):
    """ThirdFactorLIF's fixed-point step (the shared ThirdFactorFixedStep mixin) with y1 = ψ."""

    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)
    s_err: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)
    a_third_factor_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=24)
    vth: int = LavaPyType(int, np.int32, precision=17)
    third_shift: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=8)
    third_scale: np.ndarray = LavaPyType(np.ndarray, float)
    gate_lo: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=32)
    psi_slope: np.ndarray = LavaPyType(np.ndarray, float)

    def post_y1(self, spikes: np.ndarray) -> np.ndarray:
        """y1 = ψ of the voltage before reset (instead of the spike)."""
        return _psi(self.v, int(self.effective_vth), float(self.psi_slope[0]))
