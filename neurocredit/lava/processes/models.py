"""Process models of :class:`~neurocredit.lava.processes.process.ThirdFactorLIF` (float and
fixed point).  The LIF part is Lava's own (``AbstractPyLifModelFloat/Fixed``), unchanged."""
from __future__ import annotations

import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.neuron import LearningNeuronModelFixed, LearningNeuronModelFloat
from lava.magma.core.model.py.ports import PyInPort, PyOutPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol
from lava.proc.lif.models import AbstractPyLifModelFixed, AbstractPyLifModelFloat

from neurocredit.lava.processes.process import ThirdFactorLIF

TRACE_MAX = 127   # 7-bit unsigned post traces (lava/magma/core/learning/constants.py W_TRACE)


class ThirdFactorFixedStep:
    """The fixed-point step every third-factor LIF model shares (a mixin, not a model: Lava forbids
    subclassing a model that implements another process): PyLifModelBitAcc's dynamics, then
    t = sign(a_third)(|a_third| >> third_shift) where v >= gate_lo, y2/y3 = the 7-bit negative and
    positive parts of t, y1 = :meth:`post_y1` of the voltage before reset."""

    def __init__(self, proc_params):
        super().__init__(proc_params)
        self.effective_vth = 0

    def scale_threshold(self):
        self.effective_vth = np.left_shift(self.vth, self.vth_shift)
        self.isthrscaled = True

    def spiking_activation(self):
        return self.v > self.effective_vth

    def post_y1(self, spikes: np.ndarray) -> np.ndarray:
        """The post trace y1 the learning engine reads: the spike."""
        return spikes

    def run_spk(self) -> None:
        a_in = self.a_in.recv()
        third = self.a_third_factor_in.recv().astype(np.int64)
        self.scale_bias()
        if not self.isthrscaled:
            self.scale_threshold()
        self.subthr_dynamics(activation_in=a_in)
        gate = self.v >= int(self.gate_lo[0])
        spikes = self.spiking_activation()
        y1 = self.post_y1(spikes)
        self.reset_voltage(spike_vector=spikes)
        t = np.sign(third) * (np.abs(third) >> int(self.third_shift[0])) * gate
        self.y1[:] = y1
        self.y2[:] = np.clip(-t, 0, TRACE_MAX)
        self.y3[:] = np.clip(t, 0, TRACE_MAX)
        self.s_out.send(spikes)
        self.s_out_bap.send(spikes)
        self.s_out_y1.send(self.y1)
        self.s_out_y2.send(self.y2)
        self.s_out_y3.send(self.y3)
        self.s_err.send(t.astype(np.int32))


@implements(proc=ThirdFactorLIF, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyThirdFactorLIFModelFixed(ThirdFactorFixedStep, LearningNeuronModelFixed, AbstractPyLifModelFixed):
    """Fixed point: PyLifModelBitAcc's dynamics, then the third factor of the module docstring."""

    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)
    s_err: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)
    a_third_factor_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=24)
    vth: int = LavaPyType(int, np.int32, precision=17)
    third_shift: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=8)
    third_scale: np.ndarray = LavaPyType(np.ndarray, float)
    gate_lo: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=32)


@implements(proc=ThirdFactorLIF, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyThirdFactorLIFModelFloat(LearningNeuronModelFloat, AbstractPyLifModelFloat):
    """Float: PyLifModelFloat's dynamics; t = a_third * third_scale (no 7-bit clipping)."""

    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    s_err: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    vth: float = LavaPyType(float, float)
    third_shift: np.ndarray = LavaPyType(np.ndarray, int)
    third_scale: np.ndarray = LavaPyType(np.ndarray, float)
    gate_lo: np.ndarray = LavaPyType(np.ndarray, float)

    def spiking_activation(self):
        return self.v > self.vth

    def run_spk(self) -> None:
        a_in = self.a_in.recv()
        third = self.a_third_factor_in.recv()
        self.subthr_dynamics(activation_in=a_in)
        gate = self.v >= float(self.gate_lo[0])
        spikes = self.spiking_activation()
        self.reset_voltage(spike_vector=spikes)
        t = third * float(self.third_scale[0]) * gate
        self.y1[:] = spikes
        self.y2[:] = np.maximum(-t, 0)
        self.y3[:] = np.maximum(t, 0)
        self.s_out.send(spikes)
        self.s_out_bap.send(spikes)
        self.s_out_y1.send(self.y1)
        self.s_out_y2.send(self.y2)
        self.s_out_y3.send(self.y3)
        self.s_err.send(t)
