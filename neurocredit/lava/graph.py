"""Moved to :mod:`neurocredit.chip.graph` (the target-independent chip floor); kept as an alias for callers."""
from neurocredit.chip.graph import *  # noqa: F401,F403
