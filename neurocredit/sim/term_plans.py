"""A rule's terms compiled for the batched update engine, and what can be read off them.

:func:`compile_terms` groups a connection's product terms once (cached per tuple of terms):
terms with the same pre-side factors share one contraction, (Σ_k c_k Π post_k) ⊗ Π pre; exact
decay terms c·w are summed into one coefficient; anything else stays a general term.
:func:`transposes_forward` says whether a learned B_l learns W_{l+1}'s product transposed
(Kolen-Pollack, Akrout et al. 2019, NeurIPS: ΔB_l = −x_l ⊗ e_{l+1} − λB_l against
ΔW_{l+1} = −e_{l+1} ⊗ x_l − λW_{l+1}); the engine (:mod:`neurocredit.sim.updates`) then shares
one product between them, and the network (:mod:`neurocredit.sim.network`) stores such a B_l so
that B_lᵀ has W_{l+1}'s memory layout.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

from neurocredit.rules.factors import Factor
from neurocredit.rules.rule import Term

_POST_SIDE = (Factor.POST, Factor.THIRD, Factor.POST_INPUT)


@dataclass(frozen=True)
class TermGroup:
    """Outer-product terms that share their pre-side factors: (Σ_k c_k Π post_k) ⊗ Π pre."""

    pre: tuple[Factor, ...]                               # () = the constant pre neuron (ones)
    posts: tuple[tuple[float, tuple[Factor, ...]], ...]   # (c_k, post-side factors of term k)


@dataclass(frozen=True)
class Plan:
    """A connection's terms, compiled: ΔW = Σ_groups outer + decay · W + Σ general terms."""

    groups: tuple[TermGroup, ...]
    decay: float                      # Σ c over terms that are exactly c · weight
    general: tuple[Term, ...]         # evaluated term by term (weight × outer, weight², ...)
    needs_post_input: bool


@functools.lru_cache(maxsize=None)
def compile_terms(terms: tuple[Term, ...]) -> Plan:
    """Group a connection's terms once (see the module docstring)."""
    groups: dict[tuple[Factor, ...], list[tuple[float, tuple[Factor, ...]]]] = {}
    decay, general = 0.0, []
    for t in terms:
        unknown = [f for f in t.factors
                   if f not in (Factor.PRE, Factor.WEIGHT) and f not in _POST_SIDE]
        if unknown:
            raise ValueError(f"term {t} reads the '{unknown[0].value}' factor, which a feed-forward "
                             "connection does not keep (eligibility traces live in recurrent "
                             "models: train with --model rsnn)")
        n_weight = sum(f is Factor.WEIGHT for f in t.factors)
        if n_weight == 0:
            pre = tuple(f for f in t.factors if f is Factor.PRE)
            post = tuple(f for f in t.factors if f in _POST_SIDE)
            groups.setdefault(pre, []).append((float(t.coef), post))
        elif t.factors == (Factor.WEIGHT,):
            decay += float(t.coef)
        else:
            general.append(t)
    return Plan(tuple(TermGroup(k, tuple(v)) for k, v in groups.items()), decay, tuple(general),
                any(Factor.POST_INPUT in t.factors for t in terms))


_AS_FORWARD = {Factor.PRE: Factor.THIRD, Factor.POST: Factor.PRE}


@functools.lru_cache(maxsize=None)
def transposes_forward(forward: tuple[Term, ...], feedback: tuple[Term, ...]) -> bool:
    """Whether a learned B_l driven by the error (pre = e_{l+1}, post = x_l) learns the
    transpose of W_{l+1}'s product: read in W_{l+1}'s frame (B's pre e_{l+1} is W_{l+1}'s third
    factor, B's post x_l is W_{l+1}'s pre), B's outer-product terms are exactly W_{l+1}'s (same
    coefficients), both plans being one group with no general terms.  The decay terms may
    differ.  Then ΔB_l = Tᵀ + c_B·B_l and ΔW_{l+1} = T + c_W·W_{l+1} with one product T
    (Kolen-Pollack: T = −e_{l+1} ⊗ x_l)."""
    fw, fb = compile_terms(forward), compile_terms(feedback)
    if fw.general or fb.general or len(fw.groups) != 1 or len(fb.groups) != 1:
        return False

    def outer_terms(terms: tuple[Term, ...], mapping: dict | None) -> list | None:
        out = []
        for t in terms:
            if t.factors == (Factor.WEIGHT,):
                continue
            factors = t.factors if mapping is None else tuple(mapping.get(f) for f in t.factors)
            if None in factors:
                return None
            out.append((float(t.coef), tuple(sorted(f.value for f in factors))))
        return sorted(out)

    mine, theirs = outer_terms(forward, None), outer_terms(feedback, _AS_FORWARD)
    return bool(mine) and mine == theirs
