"""Processes of the on-chip PAL network (:mod:`neurocredit.lava.onchip_pal`).  Import-safe.

PALHidden   graded ReLU rate neurons with a noise compartment and an error (third-factor)
            compartment: r = max(a_in + a_noise, 0), sends r (s_out), ξ = a_noise (s_xi) and
            e = a_third ⊙ [r > 0] (s_err).
PALOutput   graded output neurons: a = a_in, r = a >> hp_gain, high pass
            h ← h + (a − a_prev) − trunc(h / 2^k_hp), e = r − a_target; sends r (s_out), e (s_err),
            trunc(e / 2^e_shift) (s_ew, the forward weights' third factor), h (s_hp).
PALDense    a graded Dense (a = (W s_in) >> -weight_exp, one step late) whose weights learn every
            step: ΔW = c · post ⊗ pre with post from ``s_in_post`` and pre = s_in (forward
            weights: post = the error); PALNoiseDense takes pre from ``s_in_pre`` (backward
            weights: pre = the high-passed rate, post = the noise), plus the decay c_α W on a tick every ``decay_every`` steps.
            Lava 0.10's LearningDense cannot take signed graded traces on both sides.
"""
from __future__ import annotations

import typing as ty

import numpy as np
from lava.magma.core.process.ports.ports import InPort, OutPort
from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.process.variable import Var


class PALHidden(AbstractProcess):
    def __init__(self, *, shape: ty.Tuple[int, ...], **kwargs) -> None:
        super().__init__(shape=shape, **kwargs)
        self.a_in = InPort(shape=shape)
        self.a_noise = InPort(shape=shape)
        self.a_third = InPort(shape=shape)
        self.s_out = OutPort(shape=shape)
        self.s_xi = OutPort(shape=shape)
        self.s_err = OutPort(shape=shape)


class PALOutput(AbstractProcess):
    def __init__(self, *, shape: ty.Tuple[int, ...], hp_gain: int, k_hp: int, e_shift: int, **kwargs) -> None:
        super().__init__(shape=shape, hp_gain=hp_gain, k_hp=k_hp, e_shift=e_shift, **kwargs)
        self.a_in = InPort(shape=shape)
        self.a_target = InPort(shape=shape)
        self.s_out = OutPort(shape=shape)
        self.s_err = OutPort(shape=shape)
        self.s_ew = OutPort(shape=shape)
        self.s_hp = OutPort(shape=shape)
        self.hp = Var(shape=shape, init=0)
        self.a_prev = Var(shape=shape, init=0)


class PALDense(AbstractProcess):
    def __init__(self, *, weights: np.ndarray, weight_exp: int, const: tuple[int, int], rng_seed: int,
                 decay: tuple[int, int] = (0, 0), decay_every: int = 0, **kwargs) -> None:
        super().__init__(weight_exp=weight_exp, const=tuple(const), rng_seed=rng_seed,
                         decay=tuple(decay), decay_every=decay_every, **kwargs)
        n_post, n_pre = weights.shape
        self.s_in = InPort(shape=(n_pre,))
        self.s_in_post = InPort(shape=(n_post,))
        self.a_out = OutPort(shape=(n_post,))
        self.weights = Var(shape=weights.shape, init=weights)
        self.a_buff = Var(shape=(n_post,), init=0)


class PALNoiseDense(PALDense):
    """PALDense whose learning reads its pre factor from ``s_in_pre`` (B: the high-passed rate),
    while ``s_in`` carries the forward payload (B: the output error)."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.s_in_pre = InPort(shape=self.s_in.shape)
