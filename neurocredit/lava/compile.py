"""Moved to :mod:`neurocredit.chip.compile` (the target-independent chip floor); kept as an alias for callers."""
from neurocredit.chip.compile import *  # noqa: F401,F403
