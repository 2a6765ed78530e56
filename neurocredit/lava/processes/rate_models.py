"""Fixed-point models of the graded-rate neuron processes (:mod:`.rate_process`).

Written in integers from the equations of :mod:`neurocredit.chip.rate` (not importing it), so
that the emulator and Lava are two implementations of the same dynamics.
"""
from __future__ import annotations

import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyInPort, PyOutPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol

from neurocredit.lava.processes.rate_process import LeakyIntegrator, RateUnits

TRACE_MAX = 127
_IN = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=24)
_OUT = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)


def _trunc(x: np.ndarray, k: int) -> np.ndarray:
    """x / 2^k rounded toward zero."""
    return np.where(x < 0, -((-x) >> k), x >> k)


@implements(proc=RateUnits, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyRateUnitsModel(PyLoihiProcessModel):
    a_in: PyInPort = _IN
    a_noise: PyInPort = _IN
    a_third_factor_in: PyInPort = _IN
    a_target: PyInPort = _IN
    s_out: PyOutPort = _OUT
    s_err: PyOutPort = _OUT
    s_xi: PyOutPort = _OUT
    s_hp: PyOutPort = _OUT
    s_out_y1: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=7)
    s_out_y2: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=7)
    s_out_y3: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=7)
    s_out_bap: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, bool, precision=1)
    hp: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)
    a_prev: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)
    li: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)

    def run_spk(self) -> None:
        p = self.proc_params
        a = self.a_in.recv().astype(np.int64)
        xi = self.a_noise.recv().astype(np.int64)
        third = self.a_third_factor_in.recv().astype(np.int64)
        target = self.a_target.recv().astype(np.int64)
        if int(p.get("leak_shift", 0)):               # a leaky readout: li = li − trunc(li / 2^k) + a
            li = np.asarray(self.li).astype(np.int64)
            a = li - _trunc(li, int(p["leak_shift"])) + a
            self.li = a.astype(np.int32)
        u = a + xi
        relu = bool(p["act"])
        r = (np.maximum(u, 0) if relu else u) >> int(p["out_shift"])
        h = np.zeros_like(a)
        if int(p["hp_shift"]):
            h = np.asarray(self.hp).astype(np.int64)
            h = h + (a - np.asarray(self.a_prev).astype(np.int64)) - _trunc(h, int(p["hp_shift"]))
            self.hp = h.astype(np.int32)
            self.a_prev = a.astype(np.int32)
        if int(p["target"]):
            e = r - target
        else:
            e = np.where(u > 0, third, 0) if relu else third
        t = _trunc(e, int(p["third_shift"]))
        self.s_out.send(r.astype(np.int32))
        self.s_err.send(e.astype(np.int32))
        self.s_xi.send(xi.astype(np.int32))
        self.s_hp.send(h.astype(np.int32))
        self.s_out_y1.send(np.zeros(a.shape, np.int32))
        self.s_out_y2.send(np.clip(-t, 0, TRACE_MAX).astype(np.int32))
        self.s_out_y3.send(np.clip(t, 0, TRACE_MAX).astype(np.int32))
        self.s_out_bap.send(np.ones(a.shape, bool))


@implements(proc=LeakyIntegrator, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyLeakyIntegratorModel(PyLoihiProcessModel):
    a_in: PyInPort = _IN
    s_out: PyOutPort = _OUT
    v: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)

    def run_spk(self) -> None:
        v = np.asarray(self.v).astype(np.int64)
        v = v - _trunc(v, int(self.proc_params["leak_shift"])) + self.a_in.recv().astype(np.int64)
        self.v = v.astype(np.int32)
        self.s_out.send(self.v)
