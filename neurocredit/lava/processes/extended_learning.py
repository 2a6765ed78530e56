"""ExtendedLearningDense: the one generic custom learning process, for product series with
marked extension factors (:mod:`neurocredit.chip.extensions`).

Lava's stock engine computes products of a dependency (x0, u<d>) and spike traces / the weight.
A product series with an extension factor (today ``gx``, a signed graded factor on the engine's
pre side) is split: its stock products go through Lava's own bit-approximate engine (the
generated ``Loihi3FLearningRule`` of :attr:`~neurocredit.chip.ir.ProductSeries.stock`), its
extension products are added to the same 16-bit accumulator by
:func:`neurocredit.chip.extensions.accumulate_extensions`, and then Lava's own saturation and
one stochastic rounding of the step apply::

    acc = W << 7;  acc = Lava's applier(stock products);  acc += extension products;  W = round(acc)

The process works on either synapse view of a plastic connection (``view``):

* 'forward': weights W (n_dst x n_src) as LearningDense; y1..y3 from the post neuron
  (``s_in_bap``, ``s_in_y1..3``); x0 = [s_in > 0]; ``gx`` = sign(g)(|g| >> shift) of the graded
  signal on ``s_in_g`` (one per pre neuron);
* 'transposed': weights kept as Wᵀ (the engine view of learned feedback, as
  :class:`~.transposed_process.TransposedLearningDense`), a = W s_in sent one step late; x0 = the
  driven neurons' spikes (``s_in_x0``; with ``x0_delay`` 1 those of the previous step, the ones
  the payload answers one Dense hop later); the learning payload g on ``s_in_g`` sets y3/y2, and
  ``gx`` = the input W delivers from it (>> deliver_shift).

``extended``: the extension products as (mantissa, exponent, dependency, factors) tuples.
Import-safe (no Lava run at import).
"""
from __future__ import annotations

import numpy as np
from lava.magma.core.process.ports.ports import InPort, OutPort
from lava.magma.core.process.variable import Var
from lava.proc.dense.process import LearningDense


class ExtendedLearningDense(LearningDense):
    """``weights_out``: the connection's weights as they transmit (n_dst x n_src); ``view``
    'forward' | 'transposed'; ``extended`` the extension products; ``shift``/``deliver_shift`` as
    :class:`neurocredit.chip.ir.GradedSignal`; ``post_shift``: the shift of the post side's graded
    signal on ``s_in_gp`` (a graded-rate connection's ``graded_post``: the factor ry), None: none."""

    def __init__(self, *, weights_out: np.ndarray, view: str, extended: tuple, shift: int = 0,
                 deliver_shift: int = 0, x0_delay: int = 0, post_shift: int | None = None, **kwargs) -> None:
        if view not in ("forward", "transposed"):
            raise ValueError(f"ExtendedLearningDense: view must be 'forward' or 'transposed', got {view!r}")
        w = np.asarray(weights_out)
        engine = w if view == "forward" else w.T
        super().__init__(weights=np.ascontiguousarray(engine), num_message_bits=24, view=view,
                         extended=tuple(extended), shift=int(shift), deliver_shift=int(deliver_shift),
                         x0_delay=int(x0_delay), post_shift=post_shift, **kwargs)
        n_dst, n_src = w.shape
        if view == "transposed":
            self.s_in = InPort(shape=(n_src,))
            self.a_out = OutPort(shape=(n_dst,))
            self.a_buff = Var(shape=(n_dst,), init=0)
        self.s_in_x0 = InPort(shape=(n_dst,))          # transposed: the driven neurons' spikes (else unused)
        self.s_in_g = InPort(shape=(n_src,))
        self.s_in_gp = InPort(shape=(n_dst,))           # the post side's graded signal (ry, with post_shift)
