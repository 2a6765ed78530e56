"""Fixed-point model of :class:`~.extended_learning.ExtendedLearningDense`: Lava's own
bit-approximate learning engine for the stock products, the marked extension products added to
its accumulator before Lava's saturation and stochastic rounding (see the process module)."""
from __future__ import annotations

import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.learning.constants import W_ACCUMULATOR_S, W_SYN_VAR_S
from lava.magma.core.model.py.connection import LearningConnectionModelBitApproximate
from lava.magma.core.model.py.ports import PyInPort, PyOutPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol
from lava.proc.dense.models import AbstractPyDenseModelBitAcc
from lava.utils.weightutils import truncate_weights

from neurocredit.chip.extensions import accumulate_extensions, delivered, payload_traces, shifted
from neurocredit.chip.ir import Product
from neurocredit.lava.processes.extended_learning import ExtendedLearningDense


@implements(proc=ExtendedLearningDense, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyExtendedLearningDenseModel(LearningConnectionModelBitApproximate, AbstractPyDenseModelBitAcc):
    """Spiking phase: the view's transmission, x0, the post traces and the graded factor ``gx``
    (process docstring).  Learning phase: Lava's ``run_lrn`` with ``_apply_learning_rules``
    extended by the extension products.  Built from the same bases as Lava's
    ``PyLearningDenseModelBitApproximate`` (a decorated model cannot be subclassed)."""

    s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=24)
    s_in_x0: PyInPort = LavaPyType(PyInPort.VEC_DENSE, bool, precision=1)
    s_in_g: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=24)
    s_in_gp: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=24)
    a_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)
    a_buff: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)

    def __init__(self, proc_params) -> None:
        super().__init__(proc_params)
        self.num_weight_bits: int = self.proc_params.get("num_weight_bits", 8)
        self._view: str = self.proc_params["view"]
        self._extended = tuple(Product(int(m), int(k), str(d), tuple(fs)) for m, k, d, fs in self.proc_params["extended"])
        self._shift = int(self.proc_params["shift"])
        self._deliver_shift = int(self.proc_params["deliver_shift"])
        self._stock = bool(self.proc_params.get("has_stock", True))
        self._x0_delay = int(self.proc_params.get("x0_delay", 0))
        self._held = None
        self._gx = None
        self._post_shift = self.proc_params.get("post_shift")
        self._gy = None                                  # the post side's graded factor ry (post_shift set)

    def run_spk(self) -> None:
        weight_exp = int(self.proc_params.get("weight_exp", 0))
        if not self.weights_set:
            self.weights = truncate_weights(self.weights, sign_mode=self.sign_mode, num_weight_bits=self.num_weight_bits)
            self.weights_set = True
        self.a_out.send(self.a_buff)
        s = self.s_in.recv().astype(np.int64)
        g = self.s_in_g.recv().astype(np.int64)
        gp = self.s_in_gp.recv().astype(np.int64)
        w_out = self.weights.T if self._view == "transposed" else self.weights   # as it transmits
        acc = w_out.astype(np.int64).dot(s)
        self.a_buff = (acc << weight_exp if weight_exp > 0 else acc >> -weight_exp).astype(np.int32)
        if self._view == "forward":
            self._gx = shifted(g, self._shift)[None, :]
            self._gy = shifted(gp, int(self._post_shift))[:, None] if self._post_shift is not None else None
            self.recv_traces(s > 0)                      # Lava's own: x0, y1..y3 from the post neuron
            return
        traces = payload_traces(g, self._shift)          # the learning payload as post traces y3/y2
        self._gx = delivered(w_out, traces, self._deliver_shift)[None, :]
        x0 = self.s_in_x0.recv().astype(bool)
        if self._x0_delay:                               # the spike the payload answers: one step back
            x0, self._held = (self._held if self._held is not None else np.zeros_like(x0)), x0
        # Lava's recv_traces, with the post traces taken from the learning payload
        self._process_pre_spikes(x0)
        self._update_trace_randoms()
        self._process_post_spikes(np.zeros(self.weights.shape[0], bool))
        y = self._y_traces
        y[0, :], y[1, :], y[2, :] = traces["y1"], traces["y2"], traces["y3"]
        self._set_y_traces(y)
        self._update_trace_randoms()

    def _apply_learning_rules(self, x_traces_history: np.ndarray, y_traces_history: np.ndarray) -> None:
        """Lava's ``_apply_learning_rules`` for the weights (LearningConnectionModelBitApproximate),
        with the extension products accumulated after the stock applier's."""
        args = self._extract_applier_args(x_traces_history, y_traces_history)
        shift = W_ACCUMULATOR_S - W_SYN_VAR_S["weights"]
        w = self.weights.copy()
        acc = w << shift
        if self._stock:
            acc = self._learning_rule_appliers["weights"].apply(acc, **args)
        traces = {f: np.asarray(args[f"{f}_u"])[:, 0] for f in ("y1", "y2", "y3")}
        graded = {"gx": self._gx} if self._gy is None else {"gx": self._gx, "rx": self._gx, "ry": self._gy}
        acc = accumulate_extensions(acc, self._extended, np.asarray(args["x0"])[0], traces, w, graded,
                                    int(self.time_step))
        acc = self._saturate_synaptic_variable_accumulator("weights", acc)
        acc = self._stochastic_round_synaptic_variable("weights", acc, self._conn_var_random.random_stochastic_round)
        self.weights = self._saturate_synaptic_variable("weights", acc >> shift)
