"""Traces and eligibility traces over time, and the rule's terms on recurrent connections.

A recurrent network's plastic connection is described, at every step t of a sequence, by its
factors (:class:`PlasticFactors`, tensors shaped [T, batch, ·]): the pre trace x̄, the post
activity, the third factor (error compartment or learning signal L) and, for eligibility
terms, the post pseudo-derivative ψ and the decay κ of the path from the post neuron to the loss.

Eligibility trace (Bellec et al. 2020, Nat. Commun., eqs. 13-14; Methods "e-prop")::

    e_ji[t] = ψ_j[t] x̄_i[t],     ē_ji[t] = κ ē_ji[t−1] + e_ji[t]

A term c · P · eligibility (P: a product of post-side factors, e.g. the learning signal)
summed over time is evaluated without materialising the per-synapse trace, by exchanging sums::

    Σ_t P_j[t] ē_ji[t] = Σ_s P̃_j[s] ψ_j[s] x̄_i[s],    P̃[s] = Σ_{t≥s} κ^{t−s} P[t]

which is one backward low-pass filter of P and then the ordinary (post ⊗ pre) contraction of
:func:`neurocredit.sim.updates.term_update`.

Adaptive threshold (ALIF / LSNN, Bellec et al. 2020, Methods eqs. 25-27): the threshold
A_j[t] = θ + β_j a_j[t], a_j[t] = ρ a_j[t−1] + g z_j[t−1] adds a slow state to the neuron and a
second eligibility vector ε^a (how a_j depends on w_ji through the neuron's own spikes)::

    e_ji[t] = ψ_j[t] (x̄_i[t] − β_j ε^a_ji[t]),   ε^a_ji[t+1] = (ρ − g β_j ψ_j[t]) ε^a_ji[t] + g ψ_j[t] x̄_i[t]

Its decay depends on the post neuron only, so the sum exchange still holds:
Σ_s G[s] ε^a[s] = Σ_r g ψ[r] x̄[r] H[r] with H[r] = G[r+1] + (ρ − gβψ[r+1]) H[r+1] (H[T−1] = 0),
G = P̃ ψ: the third factor becomes ψ (P̃ − g β H) (:func:`adaptation_signal`).

Reset of the membrane (Bellec et al. 2020, eq. 13: the eligibility vector follows the neuron's
own state Jacobian ∂h[t]/∂h[t−1]).  A neuron reset to v_reset when it spikes carries its
membrane only where it did not spike, v[t] = (1 − z[t]) u[t], so the membrane part of the
eligibility is gated by the post neuron's own spikes (the spike's pseudo-derivative path through
the reset stays out, as in the paper)::

    ε_ji[t] = β (1 − z_j[t−1]) ε_ji[t−1] + x_i[t],     e_ji[t] = ψ_j[t] ε_ji[t]

(x: the pre signal with the membrane's input gain; CubaLIF: the synaptic current trace).  The
gate depends on the post neuron only: Σ_t Q_j[t] ε_ji[t] = Σ_s x_i[s] H_j[s] with
H[s] = Q[s] + β (1 − z[s]) H[s+1] (:func:`gated_reverse_filter`), Q the post side above.  :func:`eligibility_online` computes ē the way a
chip does (forward, per synapse) and is the reference the tests compare against.
Every update is averaged over time and batch, as the feed-forward engine averages over batch.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from neurocredit.rules.factors import Factor
from neurocredit.rules.rule import Term
from neurocredit.sim.updates import term_update


def low_pass(x: torch.Tensor, decay: float | torch.Tensor, gain: float | torch.Tensor = 1.0
             ) -> torch.Tensor:
    """x̄[t] = decay · x̄[t−1] + gain · x[t] over the leading time axis (x̄[−1] = 0)."""
    out = torch.empty_like(x)
    acc = torch.zeros_like(x[0])
    for t in range(x.shape[0]):
        acc = decay * acc + gain * x[t]
        out[t] = acc
    return out


def reverse_low_pass(x: torch.Tensor, decay: float | torch.Tensor) -> torch.Tensor:
    """x̃[s] = Σ_{t≥s} decay^{t−s} x[t]: the anti-causal filter that moves a forward filter
    of the eligibility onto the signal it multiplies (module docstring)."""
    out = torch.empty_like(x)
    acc = torch.zeros_like(x[0])
    for t in range(x.shape[0] - 1, -1, -1):
        acc = decay * acc + x[t]
        out[t] = acc
    return out


def delayed(x: torch.Tensor) -> torch.Tensor:
    """x[t−1] over the leading time axis, zero at t = 0 (what a recurrent synapse sees)."""
    return torch.cat([torch.zeros_like(x[:1]), x[:-1]], dim=0)


def eligibility_online(psi: torch.Tensor, pre_trace: torch.Tensor, kappa: float,
                       adapt: torch.Tensor | float | None = None, rho: float = 0.0
                       ) -> torch.Tensor:
    """ē[t] per synapse, [T, batch, post, pre], computed forward in time as on chip.

    ``adapt`` (g·β_j per post neuron) and ``rho``: the adaptive-threshold eligibility of the
    module docstring, e = ψ (x̄ − β ε^a) with ε^a carried per synapse."""
    out = torch.empty(*psi.shape, pre_trace.shape[-1], dtype=psi.dtype, device=psi.device)
    acc = torch.zeros(*psi.shape[1:], pre_trace.shape[-1], dtype=psi.dtype, device=psi.device)
    eps_a = torch.zeros_like(acc)
    gb = None if adapt is None else torch.as_tensor(adapt, dtype=psi.dtype).reshape(-1, 1)
    for t in range(psi.shape[0]):
        p, x = psi[t].unsqueeze(-1), pre_trace[t].unsqueeze(-2)
        e = p * x if gb is None else p * (x - gb * eps_a)
        if gb is not None:   # ε^a[t+1] (g folded into β: ε' = ε/g, same e)
            eps_a = (rho - gb * p) * eps_a + p * x
        acc = kappa * acc + e
        out[t] = acc
    return out


def gated_reverse_filter(x: torch.Tensor, decay: float | torch.Tensor, keep: torch.Tensor
                         ) -> torch.Tensor:
    """H[s] = x[s] + decay · keep[s] · H[s+1] (H[T] = 0): the adjoint of the gated forward
    trace ε[t] = decay · keep[t−1] · ε[t−1] + x[t] (module docstring, membrane reset)."""
    out = torch.empty_like(x)
    acc = torch.zeros_like(x[0])
    for t in range(x.shape[0] - 1, -1, -1):
        acc = x[t] + (decay * keep[t] * acc if t < x.shape[0] - 1 else 0.0)
        out[t] = acc
    return out


def adaptation_signal(p_tilde: torch.Tensor, psi: torch.Tensor, adapt: torch.Tensor | float,
                      rho: float) -> torch.Tensor:
    """P̃ − gβ·H with H[r] = G[r+1] + (ρ − gβ ψ[r+1]) H[r+1], G = P̃ ψ, H[T−1] = 0: the
    adaptive-threshold eligibility moved onto the post side (module docstring).  ``adapt`` is
    g·β per post neuron (broadcast over the last axis)."""
    gb = torch.as_tensor(adapt, dtype=psi.dtype, device=psi.device)
    g_sig = p_tilde * psi
    h = torch.zeros_like(p_tilde[0])
    out = torch.empty_like(p_tilde)
    out[-1] = h
    for r in range(p_tilde.shape[0] - 2, -1, -1):
        h = g_sig[r + 1] + (rho - gb * psi[r + 1]) * h
        out[r] = h
    return p_tilde - gb * out


@dataclass
class PlasticFactors:
    """A plastic connection's factors over a sequence, each [T, batch, ·].

    ``bias_pre`` is the trace of the constant input the bias sees (ones filtered like ``pre``).
    ``adapt`` (g·β per post neuron) and ``rho``: the post neurons' adaptive threshold (module
    docstring); None for neurons without one.  ``keep`` (1 − z of the post neuron, [T, batch,
    post]) with ``decay`` β: eligibility terms use the reset-gated membrane trace of ``pre_in``
    (and ``bias_in``), the pre signal before the membrane filter, instead of ``pre``.
    """

    pre: torch.Tensor
    post: torch.Tensor
    third: torch.Tensor | None
    psi: torch.Tensor | None = None
    kappa: float = 0.0
    bias_pre: torch.Tensor | None = None
    adapt: torch.Tensor | float | None = None
    rho: float = 0.0
    keep: torch.Tensor | None = None
    decay: float = 0.0
    pre_in: torch.Tensor | None = None
    bias_in: torch.Tensor | None = None


def _flat(t: torch.Tensor | None) -> torch.Tensor | None:
    return None if t is None else t.reshape(t.shape[0] * t.shape[1], *t.shape[2:])


def _outer(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    return p.T @ q


def _check_eligibility_term(term: Term) -> None:
    if Factor.PRE in term.factors or Factor.POST_INPUT in term.factors:
        raise ValueError(f"term {term}: an eligibility trace already holds the pre trace; it can "
                         "be multiplied only by post-side factors (third, post) and the weight")
    if sum(f is Factor.ELIGIBILITY for f in term.factors) > 1:
        raise ValueError(f"term {term} uses the eligibility trace twice")


def _eligibility_as_delta(term: Term, f: PlasticFactors, pre: torch.Tensor
                          ) -> tuple[Term, torch.Tensor, torch.Tensor]:
    """Rewrite c · P · ē into c · third' · pre with third' = P̃ ⊙ ψ (module docstring)."""
    _check_eligibility_term(term)
    if f.psi is None:
        raise ValueError(f"term {term} reads an eligibility trace, which this connection lacks")
    p = torch.ones_like(f.psi)
    for factor in term.factors:
        if factor is Factor.THIRD:
            if f.third is None:
                raise ValueError(f"term {term} reads the third factor, which this connection lacks")
            p = p * f.third
        elif factor is Factor.POST:
            p = p * f.post
    p = reverse_low_pass(p, f.kappa) if f.kappa else p
    if f.adapt is not None:
        p = adaptation_signal(p, f.psi, f.adapt, f.rho)
    p = p * f.psi
    if f.keep is not None:
        p, pre = gated_reverse_filter(p, f.decay, f.keep), f.pre_in
    rest = tuple(x for x in term.factors if x not in (Factor.THIRD, Factor.POST, Factor.ELIGIBILITY))
    return Term(term.coef, (Factor.THIRD, Factor.PRE, *rest)), p, pre


def plastic_update(terms: tuple[Term, ...], f: PlasticFactors, weight: torch.Tensor,
                   bias: torch.Tensor | None = None, scale: float = 1.0
                   ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(ΔW, Δb) = scale · Σ_k term_k for one connection, averaged over time and batch.

    Terms without an eligibility factor go straight to the core's ``term_update`` with time
    flattened into the batch; eligibility terms are rewritten first (module docstring).
    """
    dw = torch.zeros_like(weight)
    db = None if bias is None else torch.zeros_like(bias)
    for term in terms:
        if Factor.POST_INPUT in term.factors:
            raise ValueError(f"term {term}: the post_input factor is not available on the "
                             "connections of a recurrent network")
        third, pre_w, pre_b, t = f.third, f.pre, f.bias_pre, term
        if Factor.ELIGIBILITY in term.factors:
            t, third, pre_w = _eligibility_as_delta(term, f, f.pre)
            pre_b = f.bias_in if f.keep is not None else f.bias_pre
        dw += term_update(t, _outer, _flat(pre_w), _flat(f.post), _flat(third), None, weight,
                          scale)
        if bias is not None:
            ones = pre_b if pre_b is not None else torch.ones(*f.post.shape[:2], 1,
                                                              dtype=f.post.dtype,
                                                              device=f.post.device)
            db += term_update(t, _outer, _flat(ones), _flat(f.post), _flat(third), None,
                              bias.unsqueeze(1), scale).squeeze(1)
    return dw, db
