"""Moved to :mod:`neurocredit.chip.profile` (the target-independent chip floor); kept as an alias for callers."""
from neurocredit.chip.profile import *  # noqa: F401,F403
