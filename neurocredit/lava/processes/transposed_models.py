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
from lava.proc.sparse.models import AbstractPySparseModelBitAcc
from lava.utils.weightutils import truncate_weights
from scipy.sparse import csr_matrix

from neurocredit.lava.processes.transposed_process import TransposedLearningDense, TransposedLearningSparse

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
        transposed_step(self)


def transposed_step(m) -> None:
    """The spiking phase of a transposed learning connection model ``m`` (dense or sparse weights)."""
    weight_exp = int(m.proc_params.get("weight_exp", 0))
    if not m.weights_set:
        m.weights = truncate_weights(m.weights, sign_mode=m.sign_mode, num_weight_bits=m.num_weight_bits)
        m.weights_set = True
    m.a_out.send(m.a_buff)
    eps = m.s_in.recv().astype(np.int64)
    acc = m.weights.T.astype(np.int64).dot(eps)
    m.a_buff = (acc << weight_exp if weight_exp > 0 else acc >> -weight_exp).astype(np.int32)
    x0 = m.s_in_x0.recv().astype(bool)
    # Lava's recv_traces, with the post traces taken from the signed payload
    m._process_pre_spikes(x0)
    m._update_trace_randoms()
    m._process_post_spikes(np.zeros(m.weights.shape[0], bool))
    y = m._y_traces
    y[0, :] = 0
    y[1, :] = np.clip(-eps, 0, TRACE_MAX)
    y[2, :] = np.clip(eps, 0, TRACE_MAX)
    m._set_y_traces(y)
    m._update_trace_randoms()


@implements(proc=TransposedLearningSparse, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyTransposedLearningSparseModel(LearningConnectionModelBitApproximate, AbstractPySparseModelBitAcc):
    """:class:`PyTransposedLearningDenseModel` on CSR weights (bases as Lava's
    ``PyLearningSparseModelBitApproximate``): the engine updates the stored synapses only."""

    s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=24)
    s_in_x0: PyInPort = LavaPyType(PyInPort.VEC_DENSE, bool, precision=1)
    a_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)
    a_buff: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)
    tag_1: csr_matrix = LavaPyType(csr_matrix, int, precision=8)
    tag_2: csr_matrix = LavaPyType(csr_matrix, int, precision=6)

    def __init__(self, proc_params) -> None:
        super().__init__(proc_params)
        self.num_weight_bits: int = self.proc_params.get("num_weight_bits", 8)

    def run_spk(self) -> None:
        transposed_step(self)

    def _apply_learning_rules(self, x_traces_history: np.ndarray, y_traces_history: np.ndarray) -> None:
        """Lava's engine on the dense view, then only the stored synapses kept.  Lava 0.10's own
        CSR path hands the CSR matrix to ``np.clip`` (the applier's w factor, the saturation), which
        scipy >= 1.11 refuses; the dense update restricted to the stored entries is the same
        arithmetic (one stochastic-rounding random per step for the whole matrix either way)."""
        sparse = {k: getattr(self, k) for k in self._learning_rule_appliers if isinstance(getattr(self, k), csr_matrix)}
        for k, m in sparse.items():
            setattr(self, k, m.toarray())
        super()._apply_learning_rules(x_traces_history, y_traces_history)
        for k, m in sparse.items():
            rows = np.repeat(np.arange(m.shape[0]), np.diff(m.indptr))
            out = m.copy()
            out.data = np.asarray(getattr(self, k))[rows, m.indices].astype(m.data.dtype)
            setattr(self, k, out)
