"""Relaxed predictive coding on chip: locality check and circuit.

Predictive coding (Whittington & Bogacz 2017; relaxations after Millidge, Tschantz, Seth &
Buckley 2020, arXiv:2010.01047) with fixed predictions μ_l = W_l f(v_{l−1}) settles

    v_l ← v_l + γ (ε_l − B_l ε_{l+1}),   ε_l = μ_l − v_l,   ε_L = μ_L − y*

and learns ΔW_l = −η ε_l ⊗ f(v_{l−1}).  Exact PC has B_l = W_{l+1}ᵀ (and a backward derivative
f'(v_l)): a synapse of B_l would have to read the transposed weight of the next layer, so
:func:`check_onchip_pc` refuses it, naming the quantity ("needs W2ᵀ, the transposed weight of
layer fc2").  The relaxed variant that runs on chip (rule ``pc_onchip``, :data:`PC_ONCHIP`) has

* learned backward weights B_l with their own local rule ΔB_l = −η f(v_l) ⊗ ε_{l+1}
  (Term(−1, pre·post) of the feedback pathway: pre = the error ε_{l+1} the synapse carries,
  post = the spike of its post-synaptic value neuron), Kolen-Pollack-like;
* no backward derivative (the pathway's ``derivative=False``);
* one-to-one error wiring (Γ_l = I): Γ_l learning (``dense_error``) is not compiled.
  A weight decay −λB_l would compile to a decimated ``u<d> * w`` product
  (:func:`neurocredit.lava.learning.decay_product`); ``pc_onchip`` has none.

The circuit (fixed point, Lava's arithmetic): value neurons are ``ThirdFactorLIF`` populations
whose spikes are f(v_l) (rate code); their third-factor compartment is the error unit ε_l.  The
output error population is a ``GradedVec`` holding ε_L = g (z_L − y*).  The hidden error
ε_l = (B_l ε_{l+1}) >> shift arrives through the plastic feedback connection B_l from layer
l+1's ``s_err``.  Every connection has a one-step delay, so the chip runs one Jacobi step of the
relaxation above per time step with γ = 1; with fixed predictions it settles (ε_l = B_l ε_{l+1})
within L − 1 steps and then tracks the input.  That settled circuit is FA from the next layer's
error with learned B, so :func:`build_pc_circuit` is :func:`neurocredit.lava.learning.build_circuit`
of the rule's one-pass pathway: W learns with the generated ``Loihi3FLearningRule``
(ΔW = m 2^k x0 (y3 − y2), pre spike × signed error) and B_l is a ``TransposedLearningDense`` on
which Lava's own engine applies the same products with the roles of its payload and the driven
neuron's spike exchanged.  Training and Lava runs: :func:`neurocredit.lava.learning.train`
(which logs ∠(B_l, W_{l+1}ᵀ)) and :func:`neurocredit.lava.learning.run_lava`.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from neurocredit.lava import learning as LR
from neurocredit.lava.profile import Profile, load_profile
from neurocredit.rules import get_rule
from neurocredit.rules.rule import Rule
from neurocredit.sim.emulator import Circuit

PC_ONCHIP = get_rule("pc_onchip")
"""The relaxed PC rule compiled to chip (registered in :mod:`neurocredit.rules.dynamical`)."""


def check_onchip_pc(rule: Rule, layer_names: list[str], lr: float = 2 ** -4,
                    profile: str | Profile = "loihi2") -> None:
    """Refuse a predictive-coding rule that cannot learn on chip, naming why.

    First locality (:func:`neurocredit.rules.locality.check_locality`: exact PC needs
    W_{l+1}ᵀ), then what this compiler supports: fixed predictions, a learned feedback pathway
    from the next layer's error without backward derivative, one-to-one error units, terms
    that the learning engine computes (:func:`neurocredit.lava.learning.check_onchip`) with
    constants ``lr · c`` it can hold."""
    LR.refuse_non_local(rule, layer_names)
    if rule.dynamics != "predictive_coding":
        raise LR.OnChipError(f"rule '{rule.name}' is not a predictive-coding rule (dynamics "
                             f"'{rule.dynamics}'); use neurocredit.lava.learning for one-pass pathways")
    fb = rule.feedback
    if fb is None or fb.kind != "learned" or fb.source != "next" or fb.drive != "error":
        raise LR.OnChipError(f"rule '{rule.name}': on-chip PC needs learned backward weights B_l driven by "
                             f"the next layer's error, got {rule.feedback_needed()}")
    if fb.derivative:
        raise LR.OnChipError(f"rule '{rule.name}': the backward derivative f'(v_l) on B_l ε_(l+1) is not "
                             f"compiled (use the no-derivative relaxation, derivative=False)")
    if not rule.param("fixed_prediction", False):
        raise LR.OnChipError(f"rule '{rule.name}': predictions recomputed from relaxed values are not "
                             f"compiled (fixed_prediction=True)")
    if rule.param("dense_error", False):
        raise LR.OnChipError(f"rule '{rule.name}': dense learned error connections Γ_l (dense_error) are "
                             f"not compiled; the chip wires error units one to one")
    pathway = _pathway_rule(rule)
    LR.check_onchip(pathway, layer_names)
    prof = load_profile(profile)
    for where, terms, scale in (("forward", rule.forward, 1.0), ("feedback", fb.terms, fb.lr_scale)):
        for term in terms:
            try:
                LR.term_products((term,), lr * scale, prof)
            except LR.OnChipError as exc:
                raise LR.OnChipError(f"rule '{rule.name}': {where} term {term}: {exc}") from None


def _pathway_rule(rule: Rule) -> Rule:
    """The one-pass pathway the settled fixed-prediction relaxation reduces to: FA from the next
    layer's error through learned B_l, no f'."""
    return replace(rule, dynamics="feedforward")


def build_pc_circuit(base: Circuit, rule: Rule, backward: list[np.ndarray], spec: LR.OnChipSpec,
                     profile: str | Profile = "loihi2") -> Circuit:
    """On-chip relaxed-PC version of a compiled feedforward fixed-point circuit ``base``.

    ``backward[l]`` is the initial float B_l (n_l x n_{l+1}); it becomes the plastic integer
    feedback connection ``B{l+1}`` whose products come from the pathway's Terms."""
    names = [f"fc{i + 1}" for i in range(len(base.populations))]
    check_onchip_pc(rule, names, spec.lr, profile)
    if spec.gate is not None:
        raise LR.OnChipError(f"rule '{rule.name}' has no backward derivative: OnChipSpec.gate must be None")
    return LR.build_circuit(base, _pathway_rule(rule), backward, spec, profile)


def initial_backward(sizes: list[int], seed: int, scale: float = 1.0) -> list[np.ndarray]:
    """Random initial B_l (n_l x n_{l+1}), normal with std scale / sqrt(n_l), as FA's."""
    rng = np.random.default_rng(seed)
    return [rng.normal(0, scale / np.sqrt(sizes[l + 1]), (sizes[l + 1], sizes[l + 2]))
            for l in range(len(sizes) - 2)]


def circuit_from_nir(graph, spec: LR.OnChipSpec | None = None,
                     profile: str | Profile = "loihi2") -> Circuit:
    """The on-chip relaxed-PC circuit of a NIR graph (or file path) that carries its learning
    rule (``neurocredit.nir.load.attach_rule`` / export): the rule and the initial backward
    matrices B_l are read from the file, the network is compiled by
    :func:`neurocredit.lava.compile.compile_graph`."""
    rule, backward, base = LR.learning_from_nir(graph, profile)
    return build_pc_circuit(base, rule, backward, spec or LR.OnChipSpec(), profile)
