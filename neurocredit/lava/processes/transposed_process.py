"""TransposedLearningDense: a LearningDense that transmits through its transpose.

Learned feedback (Kolen-Pollack, Akrout et al. 2019; the learned backward weights of relaxed
predictive coding, Millidge et al. 2020) changes each backward synapse B_l[i, j] with what that
synapse sees: the graded error ε_{l+1,j} it carries and the spike s_{l,i} of the neuron it
drives,

    ΔB_l[i, j] = c · s_{l,i} · ε_{l+1,j}        ( = ΔW_{l+1}[j, i], the forward update transposed).

Lava 0.10's ``LearningDense`` learns from (pre spike x post traces) of the neurons it *connects*;
here the spike belongs to the neuron the connection drives and the signed graded factor is the
payload it carries.  So this process keeps its weights in the learning engine's view
(``weights`` = B_lᵀ, n_src x n_dst: "post" = the error units, "pre" = the driven neurons) and its
model (:mod:`.transposed_models`) runs Lava's own bit-approximate engine on that view
(``PyLearningDenseModelBitApproximate.run_lrn``: traces, products, stochastic rounding) while the
spiking phase sends a = (B_l ε) << weight_exp, one step late like every Dense.

Ports: ``s_in`` the graded error (n_src), ``a_out`` (n_dst), ``s_in_x0`` the driven neurons'
spikes (n_dst, the x0 dependency).  The signed payload becomes the post traces y2 = max(−ε, 0),
y3 = max(ε, 0) (7-bit) as a ThirdFactorLIF sends its own error.  Import-safe.
"""
from __future__ import annotations

import numpy as np
from lava.magma.core.process.ports.ports import InPort, OutPort
from lava.magma.core.process.variable import Var
from lava.proc.dense.process import LearningDense
from lava.proc.sparse.process import LearningSparse
from scipy.sparse import csr_matrix


class TransposedLearningDense(LearningDense):
    """``weights_out``: B as it transmits (n_dst x n_src); stored transposed (``weights``)."""

    def __init__(self, *, weights_out: np.ndarray, **kwargs) -> None:
        b = np.asarray(weights_out)
        super().__init__(weights=np.ascontiguousarray(b.T), num_message_bits=24, **kwargs)
        n_dst, n_src = b.shape
        self.s_in = InPort(shape=(n_src,))
        self.a_out = OutPort(shape=(n_dst,))
        self.a_buff = Var(shape=(n_dst,), init=0)
        self.s_in_x0 = InPort(shape=(n_dst,))


def synapses(weights: np.ndarray, mask: np.ndarray) -> csr_matrix:
    """The existing synapses (``mask`` True) of ``weights`` as a CSR matrix that keeps the ones
    whose weight is 0 as explicit zeros: Lava's sparse learning engine updates exactly the stored
    entries (``find(..., explicit_zeros=True)`` in ``_apply_learning_rules``)."""
    rows, cols = np.nonzero(np.asarray(mask, bool))
    return csr_matrix((np.asarray(weights)[rows, cols], (rows, cols)), shape=np.shape(weights))


class TransposedLearningSparse(LearningSparse):
    """:class:`TransposedLearningDense` on a sparse matrix (Lava's ``LearningSparse``): only the
    synapses ``mask`` names exist and learn.  ``weights_out``, ``mask``: n_dst x n_src."""

    def __init__(self, *, weights_out: np.ndarray, mask: np.ndarray, **kwargs) -> None:
        b = np.asarray(weights_out)
        super().__init__(weights=synapses(b.T, np.asarray(mask).T), num_message_bits=24, **kwargs)
        n_dst, n_src = b.shape
        self.s_in = InPort(shape=(n_src,))
        self.a_out = OutPort(shape=(n_dst,))
        self.a_buff = Var(shape=(n_dst,), init=0)
        self.s_in_x0 = InPort(shape=(n_dst,))
