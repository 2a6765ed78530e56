"""Fixed-point process models of the on-chip PAL processes (:mod:`.pal_process`).

Self-contained: nothing here is imported from ``neurocredit.sim``.  The network's equations are
those documented in :mod:`neurocredit.sim.emulator_pal`, but the arithmetic is written again
here, in integers: the learning-engine epoch of :func:`engine_epoch` holds Δw as a fixed-point
number with ``F`` fractional bits (the product m·x·y shifted by k − 3, the decay m_α·w shifted
by k_α), takes the integer part with an arithmetic shift (floor) and rounds up with probability
frac / 2^F from the connection's own seeded numpy Generator.  The emulator does the same sum in
float64 (exact for these dyadic numbers); tests/test_onchip_pal.py checks that the two
implementations agree weight for weight.
"""
from __future__ import annotations

import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyInPort, PyOutPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol

from neurocredit.lava.processes.pal_process import PALDense, PALHidden, PALNoiseDense, PALOutput

W_MIN, W_MAX = -256, 255      # 9-bit signed weights
TRACE = 127                   # 7-bit trace magnitude
PRODUCT_SHIFT = 3             # 7 + 7 + 4 - 15: the bits a product of two 7-bit traces loses


def engine_epoch(w: np.ndarray, post: np.ndarray, pre: np.ndarray, const: tuple[int, int],
                 rng: np.random.Generator, decay: tuple[int, int] | None = None) -> np.ndarray:
    """One learning-engine epoch on integer weights ``w`` [post, pre]:
    w + stochastic_round(m 2^(k − 3) (post ⊗ pre) [+ m_α 2^k_α w]), clipped to [−256, 255];
    post and pre are 7-bit traces (magnitudes clipped to 127).  Integer arithmetic throughout."""
    m, k = (int(c) for c in const)
    prod = np.outer(np.clip(post, -TRACE, TRACE).astype(np.int64), np.clip(pre, -TRACE, TRACE).astype(np.int64))
    k_prod = k - PRODUCT_SHIFT
    frac_bits = max(0, -k_prod, -int(decay[1]) if decay is not None else 0)
    fixed = (m * prod) << (frac_bits + k_prod)          # Δw · 2^F, exact
    if decay is not None:
        m_a, k_a = (int(c) for c in decay)
        fixed = fixed + ((m_a * w.astype(np.int64)) << (frac_bits + k_a))
    whole = fixed >> frac_bits                          # floor (arithmetic shift)
    frac = fixed - (whole << frac_bits)                 # in [0, 2^F)
    up = rng.random(w.shape) < frac / float(1 << frac_bits)
    return np.clip(w.astype(np.int64) + whole + up, W_MIN, W_MAX)


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
        p = self.proc_params
        self.a_out.send(self.a_buff)
        s = self.s_in.recv().astype(np.int64)
        post = self.s_in_post.recv().astype(np.int64)
        pre = self._pre(s)
        w = np.asarray(self.weights).astype(np.int64)
        self.a_buff = ((w @ s) >> (-int(p["weight_exp"]))).astype(np.int32)
        self.t += 1
        every = int(p["decay_every"])
        decay = tuple(p["decay"]) if every and self.t % every == 0 else None
        self.weights = engine_epoch(w, post, pre, tuple(p["const"]), self.rng, decay).astype(np.int32)


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
