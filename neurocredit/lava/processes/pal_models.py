"""Fixed-point process models of the on-chip PAL processes (:mod:`.pal_process`); the
equations are those of :mod:`neurocredit.sim.emulator_pal`."""
from __future__ import annotations

import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyInPort, PyOutPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol

from neurocredit.lava.processes.pal_process import PALDense, PALHidden, PALNoiseDense, PALOutput

_IN = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=24)
_OUT = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)


@implements(proc=PALHidden, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyPALHiddenModel(PyLoihiProcessModel):
    a_in: PyInPort = _IN
    a_noise: PyInPort = _IN
    a_third: PyInPort = _IN
    s_out: PyOutPort = _OUT
    s_xi: PyOutPort = _OUT
    s_err: PyOutPort = _OUT

    def run_spk(self) -> None:
        a = self.a_in.recv().astype(np.int64)
        xi = self.a_noise.recv().astype(np.int64)
        third = self.a_third.recv().astype(np.int64)
        r = np.maximum(a + xi, 0)
        self.s_out.send(r.astype(np.int32))
        self.s_xi.send(xi.astype(np.int32))
        self.s_err.send((third * (r > 0)).astype(np.int32))


@implements(proc=PALOutput, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyPALOutputModel(PyLoihiProcessModel):
    a_in: PyInPort = _IN
    a_target: PyInPort = _IN
    s_out: PyOutPort = _OUT
    s_err: PyOutPort = _OUT
    s_ew: PyOutPort = _OUT
    s_hp: PyOutPort = _OUT
    hp: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)
    a_prev: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)

    def run_spk(self) -> None:
        p = self.proc_params
        a = self.a_in.recv().astype(np.int64)
        y = self.a_target.recv().astype(np.int64)
        hp = np.asarray(self.hp).astype(np.int64)
        r = a >> int(p["hp_gain"])
        hp = hp + (a - np.asarray(self.a_prev).astype(np.int64)) - np.sign(hp) * (np.abs(hp) >> int(p["k_hp"]))
        e = r - y
        self.hp = hp.astype(np.int32)
        self.a_prev = a.astype(np.int32)
        self.s_out.send(r.astype(np.int32))
        self.s_err.send(e.astype(np.int32))
        self.s_ew.send((np.sign(e) * (np.abs(e) >> int(p["e_shift"]))).astype(np.int32))
        self.s_hp.send(hp.astype(np.int32))


class _PALDenseBase(PyLoihiProcessModel):
    s_in: PyInPort = _IN
    s_in_post: PyInPort = _IN
    a_out: PyOutPort = _OUT
    weights: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=9)
    a_buff: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)

    def __init__(self, proc_params):
        super().__init__(proc_params)
        self.rng = np.random.default_rng(int(proc_params["rng_seed"]))
        self.t = 0

    def _pre(self, s: np.ndarray) -> np.ndarray:
        return s

    def run_spk(self) -> None:
        from neurocredit.sim.emulator_pal import PRODUCT_SHIFT, _update, outer_traces
        p = self.proc_params
        self.a_out.send(self.a_buff)
        s = self.s_in.recv().astype(np.int64)
        post = self.s_in_post.recv().astype(np.int64)
        pre = self._pre(s)
        w = np.asarray(self.weights).astype(np.int64)
        self.a_buff = ((w @ s) >> (-int(p["weight_exp"]))).astype(np.int32)
        self.t += 1
        every = int(p["decay_every"])
        extra = None
        if every and self.t % every == 0:
            m, k = p["decay"]
            extra = m * 2.0 ** k * w
        self.weights = _update(w, outer_traces(post, pre), tuple(p["const"]), PRODUCT_SHIFT, self.rng,
                               extra=extra).astype(np.int32)


@implements(proc=PALDense, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyPALDenseModel(_PALDenseBase):
    """Forward weights: pre = s_in, post = the error."""


@implements(proc=PALNoiseDense, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyPALNoiseDenseModel(_PALDenseBase):
    """Backward weights: pre = s_in_pre (high-passed rate), post = s_in_post (noise)."""

    s_in_pre: PyInPort = _IN

    def _pre(self, s: np.ndarray) -> np.ndarray:
        return self.s_in_pre.recv().astype(np.int64)
