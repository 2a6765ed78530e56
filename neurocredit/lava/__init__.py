"""NIR -> Lava compiler for Loihi-2-style targets (profile, compile, acceptance, run).

Importing this package does not import Lava; :mod:`neurocredit.lava.run` imports it when a run
starts (Lava forces the ``fork`` start method on import).
"""
