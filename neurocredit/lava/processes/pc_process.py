"""PostPlasticDense: a Dense connection whose weights learn from (post spike x signed pre payload).

Relaxed predictive coding's backward weights B_l (layer l+1's error ε_{l+1} -> layer l's
third-factor compartment) change with what each synapse sees, ΔB_l[i, j] = c · s_{l,i} · ε_{l+1,j}
(:mod:`neurocredit.lava.onchip_pc`).  Lava 0.10's ``LearningDense`` cannot express it: its pre
traces are unsigned 7-bit and take one graded payload, and its post traces come from the post
neuron (here the *pre* payload is the signed factor).  This process carries the graded error on
``s_in`` (forward: a = (W ε) << weight_exp, one step late as Dense) and the post neuron's spikes
on ``s_in_post``; its fixed-point model applies the learning engine's arithmetic
(:func:`neurocredit.sim.emulator.learning_update`, Lava's bit-approximate engine for
``m 2^k x0 y`` products, with Lava's random streams) on the transposed matrix.  Import-safe.
"""
from __future__ import annotations

import numpy as np
from lava.magma.core.process.ports.ports import InPort
from lava.magma.core.process.variable import Var
from lava.proc.dense.process import Dense


class PostPlasticDense(Dense):
    """Dense + learning from post spikes and the signed graded pre payload.

    ``products``: rows (mantissa, exponent, trace) with trace 2 (y2: negative part of the pre
    payload) or 3 (y3: positive part); ``rng_seed`` as Lava's learning rule's."""

    def __init__(self, *, weights: np.ndarray, products: np.ndarray, rng_seed: int = 0, **kwargs) -> None:
        super().__init__(weights=weights, products=products, rng_seed=rng_seed, **kwargs)
        self.s_in_post = InPort(shape=(weights.shape[0],))
        self.products = Var(shape=np.asarray(products).shape, init=np.asarray(products))
        self.rng_seed = Var(shape=(1,), init=rng_seed)
