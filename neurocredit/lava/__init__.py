"""Lava backend of the chip model (:mod:`neurocredit.chip`): a compiled circuit -> Lava
processes on ``Loihi2SimCfg`` (:mod:`.run` for inference, :mod:`.backend` for on-chip learning
with the generated Loihi3FLearningRule strings), custom processes (:mod:`.processes`),
acceptance reports.  The compiler, graph reduction and hardware profiles are the chip floor's
(:mod:`neurocredit.chip.compile`, ``.graph``, ``.profile``).  Every rule that compiles, PAL
included (graded-rate units, :class:`.processes.rate_process.RateUnits`, and the generic
:class:`.processes.extended_learning.ExtendedLearningDense`), runs through :mod:`.backend`.

Importing this package does not import Lava; a run imports it when it starts (Lava forces the
``fork`` start method on import).
"""
