"""Fixed-point model of :class:`~.transposed_process.TransposedLearningDense`: Lava's own
bit-approximate learning engine on the transposed (learning) view of the weights."""
from __future__ import annotations

import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.ports import PyInPort, PyOutPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol
from lava.magma.core.model.py.connection import LearningConnectionModelBitApproximate
from lava.proc.dense.models import AbstractPyDenseModelBitAcc
from lava.utils.weightutils import truncate_weights

from neurocredit.lava.processes.transposed_process import TransposedLearningDense

TRACE_MAX = 127


@implements(proc=TransposedLearningDense, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyTransposedLearningDenseModel(LearningConnectionModelBitApproximate, AbstractPyDenseModelBitAcc):
    """Spiking phase: a = (weightsᵀ ε) << weight_exp (sent next step); x0 = the driven neurons'
    spikes; y2/y3 = the negative/positive part of ε (what ``recv_traces`` would take from a
    post neuron).  Learning phase: inherited unchanged (Lava's ``run_lrn``).  Built from the
    same bases as Lava's ``PyLearningDenseModelBitApproximate`` (a decorated model cannot be
    subclassed)."""

    s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=24)
    s_in_x0: PyInPort = LavaPyType(PyInPort.VEC_DENSE, bool, precision=1)
    a_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)
    a_buff: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)

    def __init__(self, proc_params) -> None:
        super().__init__(proc_params)
        self.num_weight_bits: int = self.proc_params.get("num_weight_bits", 8)

    def run_spk(self) -> None:
        weight_exp = int(self.proc_params.get("weight_exp", 0))
        if not self.weights_set:
            self.weights = truncate_weights(self.weights, sign_mode=self.sign_mode,
                                            num_weight_bits=self.num_weight_bits)
            self.weights_set = True
        self.a_out.send(self.a_buff)
        eps = self.s_in.recv().astype(np.int64)
        acc = self.weights.T.astype(np.int64).dot(eps)
        self.a_buff = (acc << weight_exp if weight_exp > 0 else acc >> -weight_exp).astype(np.int32)
        x0 = self.s_in_x0.recv().astype(bool)
        # Lava's recv_traces, with the post traces taken from the signed payload
        self._process_pre_spikes(x0)
        self._update_trace_randoms()
        self._process_post_spikes(np.zeros(self.weights.shape[0], bool))
        y = self._y_traces
        y[0, :] = 0
        y[1, :] = np.clip(-eps, 0, TRACE_MAX)
        y[2, :] = np.clip(eps, 0, TRACE_MAX)
        self._set_y_traces(y)
        self._update_trace_randoms()
