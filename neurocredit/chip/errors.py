"""The one error of the chip compiler."""
from __future__ import annotations

from neurocredit.errors import UserError


class OnChipError(UserError):
    """A rule or circuit cannot be compiled to on-chip learning; the message names the term,
    product, factor or limit (and, for a non-local rule, the quantity a synapse cannot see)."""
