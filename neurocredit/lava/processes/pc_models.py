"""Fixed-point process model of :class:`~neurocredit.lava.processes.pc_process.PostPlasticDense`."""
from __future__ import annotations

import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyInPort, PyOutPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol
from lava.utils.weightutils import clip_weights, determine_sign_mode, truncate_weights

from neurocredit.lava.processes.pc_process import PostPlasticDense

TRACE_MAX = 127


@implements(proc=PostPlasticDense, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyPostPlasticDenseModelFixed(PyLoihiProcessModel):
    """Dense's bit-accurate forward pass on graded input, then one learning epoch (t_epoch 1)."""

    s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=24)
    s_in_post: PyInPort = LavaPyType(PyInPort.VEC_DENSE, bool, precision=1)
    a_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)
    a_buff: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)
    weights: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=9)
    num_message_bits: np.ndarray = LavaPyType(np.ndarray, int, precision=5)
    products: np.ndarray = LavaPyType(np.ndarray, int, precision=16)
    rng_seed: np.ndarray = LavaPyType(np.ndarray, int, precision=32)

    def __init__(self, proc_params):
        super().__init__(proc_params)
        self.weights_set = False
        self.randoms = None

    def run_spk(self) -> None:
        from neurocredit.sim.emulator import _LavaRandoms, learning_update
        if not self.weights_set:
            sign_mode = self.proc_params.get("sign_mode") or determine_sign_mode(self.weights)
            w = clip_weights(self.weights, sign_mode, num_bits=8)
            self.weights = truncate_weights(w, sign_mode, self.proc_params.get("num_weight_bits", 8))
            self.randoms = _LavaRandoms(int(np.asarray(self.rng_seed).ravel()[0]))
            self.weights_set = True
        self.a_out.send(self.a_buff)
        s = self.s_in.recv().astype(np.int64)
        post = self.s_in_post.recv().astype(bool)
        w = np.asarray(self.weights).astype(np.int64)
        acc = w @ s
        e = int(self.proc_params.get("weight_exp", 0))
        self.a_buff = (acc << e if e > 0 else acc >> (-e)).astype(np.int32)
        prods = tuple((int(m), int(k), f"y{int(tr)}", "x0") for m, k, tr in np.asarray(self.products))
        r_y, r_w = self.randoms.step()
        y = {"y2": np.clip(-s, 0, TRACE_MAX), "y3": np.clip(s, 0, TRACE_MAX)}
        self.weights = learning_update(w.T, post, y, prods, r_y, r_w).T.astype(np.int32).copy()
