"""What a synapse can see, and refusals naming what a rule needs that it cannot see.

The check walks a rule's plasticity terms and feedback pathways for a concrete stack of
layers (names ``fc1 .. fcL`` by default) and returns one :class:`Violation` per non-local
quantity, e.g. "layer fc1: needs W2ᵀ, the transposed weight of layer fc2".

An ``eligibility`` factor (e-prop) passes: it is the synapse's own trace of pre trace × post
pseudo-derivative.  What makes symmetric e-prop non-local is its pathway (B = W_outᵀ), which
is named like any transposed weight.  For a recurrent layer, pass the neuron layers' names
(e.g. ``["lif1", "readout"]``): the recurrent connection of lif1 counts as lif1's own.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from neurocredit.rules.factors import LOCAL_FACTORS
from neurocredit.rules.rule import Feedback, Rule


class LocalityError(ValueError):
    """A rule was asked to run where only synapse-local information is allowed."""


@dataclass(frozen=True)
class Violation:
    layer: str
    quantity: str

    def __str__(self) -> str:
        return f"layer {self.layer}: needs {self.quantity}"


def _pathway_kind_for(fb: Feedback, hidden_index: int, n_layers: int) -> str:
    """The pathway kind that reaches hidden layer ``hidden_index`` (1-based, < n_layers)."""
    if fb.module_size is None:
        return fb.kind
    from_top = n_layers - hidden_index  # 1 for the last hidden layer
    return fb.kind if from_top % fb.module_size == 0 or fb.module_size == 1 else fb.within_module


def default_layer_names(n_layers: int) -> list[str]:
    return [f"fc{i}" for i in range(1, n_layers + 1)]


def check_locality(rule: Rule, layer_names: Sequence[str] | None = None) -> list[Violation]:
    """Every quantity ``rule`` needs that a synapse of a ``len(layer_names)``-layer stack cannot see.

    Default: a 3-layer stack fc1, fc2, fc3 (two hidden layers), enough to expose every
    pathway kind.
    """
    names = list(layer_names or default_layer_names(3))
    n = len(names)
    out: list[Violation] = []
    for term in rule.forward:
        for f in term.factors:
            if f not in LOCAL_FACTORS:  # pragma: no cover - Factor only has local members
                out.append(Violation(names[0], f"the non-local factor {f}"))
    if rule.dynamics == "autograd":
        out.append(Violation(names[0], "the gradient of the global loss through every later "
                             "layer (autograd), i.e. " + ", ".join(
                                 f"W{i + 1}ᵀ" for i in range(1, n))))
    fb = rule.feedback
    if fb is not None:
        for l in range(1, n):
            kind = _pathway_kind_for(fb, l, n)
            upper = names[l]
            if kind == "transpose":
                out.append(Violation(names[l - 1],
                                     f"W{l + 1}ᵀ, the transposed weight of layer {upper}"))
            elif kind == "sign":
                out.append(Violation(names[l - 1],
                                     f"sign(W{l + 1}ᵀ), the sign of the transposed weight of "
                                     f"layer {upper}"))
    extra = rule.param("nonlocal_quantity")
    if extra:
        out.append(Violation(names[0], str(extra)))
    seen: set[str] = set()
    unique = []
    for v in out:
        if str(v) not in seen:
            seen.add(str(v))
            unique.append(v)
    return unique


def assert_local(rule: Rule, layer_names: Sequence[str] | None = None) -> None:
    """Raise :class:`LocalityError` listing every non-local quantity ``rule`` needs."""
    violations = check_locality(rule, layer_names)
    if violations:
        raise LocalityError(f"rule '{rule.name}' is not local: " + "; ".join(map(str, violations)))
