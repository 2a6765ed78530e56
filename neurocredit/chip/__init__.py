"""The target-independent chip floor: compiled circuits as frozen data (:mod:`.ir`), the NIR ->
fixed-point compiler (:mod:`.compile`), the rule -> product-series compiler (:mod:`.plasticity`),
the feedback-pathway circuit builder (:mod:`.circuits`, :mod:`.phases`), the bit-exact emulator
(:mod:`.emulator`), streaming sessions (:mod:`.session`) and target profiles (:mod:`.profile`).
Nothing here imports Lava; :mod:`neurocredit.lava` is one backend of it."""
from neurocredit.chip.circuits import compile_status

__all__ = ["compile_status"]
