"""Graded-rate neuron processes (:mod:`neurocredit.chip.rate`'s population kinds).  Import-safe.

RateUnits        graded rate units: u = a_in + a_noise, r = f(u) >> out_shift (f ReLU or identity),
                 high-passed potential h <- h + (a_in - a_prev) - trunc(h / 2^hp_shift),
                 error e = r - a_target (target) or a_third ⊙ f'(u); sends r (s_out), e (s_err),
                 the noise (s_xi), h (s_hp) as graded spikes and t = trunc(e / 2^third_shift) as the
                 post traces y3 = t+, y2 = t- (s_out_y2/y3; y1 = 0, s_out_bap = 1) of its plastic inputs.
LeakyIntegrator  v <- v - trunc(v / 2^leak_shift) + a_in, sends v (s_out): driven by white noise it
                 is an Ornstein-Uhlenbeck (AR(1)) noise source.
"""
from __future__ import annotations

import typing as ty

from lava.magma.core.process.ports.ports import InPort, OutPort
from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.process.variable import Var


class RateUnits(AbstractProcess):
    def __init__(self, *, shape: ty.Tuple[int, ...], act: int = 0, out_shift: int = 0, hp_shift: int = 0,
                 third_shift: int = 0, target: int = 0, leak_shift: int = 0, **kwargs) -> None:
        super().__init__(shape=shape, act=act, out_shift=out_shift, hp_shift=hp_shift, third_shift=third_shift,
                         target=target, leak_shift=leak_shift, **kwargs)
        for name in ("a_in", "a_noise", "a_third_factor_in", "a_target"):
            setattr(self, name, InPort(shape=shape))
        for name in ("s_out", "s_err", "s_xi", "s_hp", "s_out_y1", "s_out_y2", "s_out_y3", "s_out_bap"):
            setattr(self, name, OutPort(shape=shape))
        self.hp = Var(shape=shape, init=0)
        self.a_prev = Var(shape=shape, init=0)
        self.li = Var(shape=shape, init=0)      # leak_shift > 0: the leakily integrated forward input


class LeakyIntegrator(AbstractProcess):
    def __init__(self, *, shape: ty.Tuple[int, ...], leak_shift: int = 0, **kwargs) -> None:
        super().__init__(shape=shape, leak_shift=leak_shift, **kwargs)
        self.a_in = InPort(shape=shape)
        self.s_out = OutPort(shape=shape)
        self.v = Var(shape=shape, init=0)
