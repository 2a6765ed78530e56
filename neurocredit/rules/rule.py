"""Rule, Term and Feedback: a learning rule as data.

A rule says, for every plastic connection, how its weights change as a weighted sum of
products of synapse-local factors (:class:`Term`), and which feedback pathways carry the
credit signal into each hidden neuron's third-factor compartment (:class:`Feedback`).

    ΔW = η · Σ_k c_k · Π_{f ∈ factors_k} f          (summed over the batch for sample-indexed factors)

The hidden error compartment of layer l is set by its feedback pathway:

    e_l = (B_l · s_l) ⊙ f'(a_l)   (the ⊙ f'(a_l) only if ``derivative``)

with s_l the pathway's source: the error of layer l+1 (``next``), the output error
(``output``) or the one-hot target (``target``).  Dynamical rules (predictive coding,
activation relaxation, ...) name an error ``dynamics`` instead of the one-shot pass.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from neurocredit.rules.factors import Factor

PathwayKind = Literal["random", "sparse", "learned", "transpose", "sign"]
PathwaySource = Literal["next", "output", "target"]
PathwayDrive = Literal["error", "noise", "forward"]
SignMagnitude = Literal["unit", "fixed_random", "batch_random"]


@dataclass(frozen=True)
class Term:
    """One product term c · Π factors of a weight update (c relative to the learning rate)."""

    coef: float
    factors: tuple[Factor, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "factors", tuple(Factor(f) for f in self.factors))
        if not self.factors:
            raise ValueError("a Term needs at least one factor")

    def __str__(self) -> str:
        return f"{self.coef:+g}·" + "·".join(f.value for f in self.factors)


@dataclass(frozen=True)
class Feedback:
    """A feedback pathway into each hidden layer's third-factor compartment.

    kind       'random' fixed dense B; 'sparse' fixed B with a fraction ``sparsity`` of zeros;
               'learned' B with its own local rule ``terms``; 'transpose' B = W_{l+1}ᵀ (BP,
               non-local); 'sign' B = M ⊙ sign(W_{l+1}ᵀ) (sign symmetry, non-local).
    source     'next' (error of layer l+1), 'output' (output error), 'target' (one-hot target).
    derivative multiply the delivered signal by f'(a_l) at the receiving neuron.
    drive      for learned B, what its pre/post factors are: 'error' (pre = e_{l+1},
               post = x_l; Kolen-Pollack), 'noise' (a mirror phase: post = ξ_l noise,
               pre = W_{l+1} ξ_l; weight mirror, ``noise_batch`` samples of ξ per step, 0 = the
               training batch size), 'forward' (post = x_l, pre = W_{l+1} x_l).
    module_size  module-wise DFA: layers are grouped in modules of this many layers; only a
               module's top layer receives the pathway, the others receive ``within_module``.
    """

    kind: PathwayKind
    source: PathwaySource = "next"
    derivative: bool = True
    sparsity: float = 0.0
    magnitude: SignMagnitude = "unit"
    terms: tuple[Term, ...] = ()
    drive: PathwayDrive = "error"
    lr_scale: float = 1.0
    noise_std: float = 1.0
    noise_batch: int = 0
    module_size: int | None = None
    within_module: PathwayKind = "transpose"

    def __post_init__(self) -> None:
        if not 0.0 <= self.sparsity < 1.0:
            raise ValueError(f"sparsity must be in [0, 1), got {self.sparsity}")
        if self.kind == "learned" and not self.terms:
            raise ValueError("a learned feedback pathway needs its own plasticity terms")
        if self.kind != "learned" and self.terms:
            raise ValueError(f"a '{self.kind}' pathway is fixed; it takes no plasticity terms")
        if self.kind in ("transpose", "sign") and self.source != "next":
            raise ValueError(f"a '{self.kind}' pathway mirrors W_(l+1) and needs source='next'")
        if self.module_size is not None and self.module_size < 1:
            raise ValueError("module_size must be >= 1")


@dataclass(frozen=True)
class Rule:
    """A learning rule: forward plasticity terms, feedback pathways, error dynamics.

    ``dynamics`` names how the third-factor compartments settle: 'feedforward' (one pass
    through the pathways), 'autograd' (the BP reference, torch autograd), or a dynamical
    scheme registered in :mod:`neurocredit.sim.dynamics`.  ``params`` holds the rule's
    own constants (decays, step counts, ...) as sorted (name, value) pairs so that the
    rule stays hashable data.
    """

    name: str
    title: str
    paper: str
    equation: str
    forward: tuple[Term, ...]
    feedback: Feedback | None
    local: bool
    dynamics: str = "feedforward"
    params: tuple[tuple[str, float | int | bool | str], ...] = field(default=())
    hardware: bool = True

    def param(self, name: str, default: float | int | bool | str | None = None):
        """The value of rule constant ``name`` (or ``default``)."""
        return dict(self.params).get(name, default)

    def with_params(self, **updates: float | int | bool | str) -> "Rule":
        """A copy with some constants replaced (used by CLI flags and sweeps)."""
        merged = dict(self.params) | updates
        return Rule(**{**self.__dict__, "params": tuple(sorted(merged.items()))})

    def feedback_needed(self) -> str:
        """One-line description of the feedback pathway, for tables."""
        fb = self.feedback
        if fb is None:
            return "none"
        what = {"random": "fixed random B", "sparse": f"sparse random B ({fb.sparsity:.0%} zeros)",
                "learned": f"learned B ({fb.drive}-driven)", "transpose": "W_(l+1)ᵀ",
                "sign": f"sign(W_(l+1)ᵀ), {fb.magnitude} magnitude"}[fb.kind]
        src = {"next": "from layer l+1's error", "output": "from the output error",
               "target": "from the target"}[fb.source]
        extra = f", modules of {fb.module_size} (within: {fb.within_module})" if fb.module_size else ""
        return f"{what} {src}{extra}"
