"""Activation relaxation as an error-settling scheme.

Millidge, Tschantz, Seth & Buckley 2020, "Activation Relaxation: a local dynamical
approximation to backpropagation in the brain" (arXiv:2009.05359); simplifications and the
non-frozen feed-forward pass after Millidge et al. 2021, "Investigating the scalability and
biological plausibility of the activation relaxation algorithm" (arXiv:2010.06219).

After the feed-forward pass (x̄_l = f(a_l)) the same neurons' activities relax, starting from
x̄_l, with the output clamped to the output error e_L = ∂L/∂a_L:

    g_l ← g_l + γ (−g_l + B_l e_{l+1}),      e_l = D_l ⊙ g_l           for t = 1 .. T

B_l = W_{l+1}ᵀ and D_l = f'(a_l) (exact AR): the fixed point g_l* = ∂L/∂x_l is BP's gradient
w.r.t. the activity and e_l = δ_l.  Simplified AR: learned B_l (ΔB_l = −η x̄_l ⊗ e_{l+1} −
λB_l, the transpose of W_{l+1}'s own update) and D_l = 1.  Frozen feed-forward pass
(default): pre = x̄_{l−1} and f'(a_l) are held unchanged for the whole relaxation.
Non-frozen (``frozen=False``): nothing is held; the feed-forward values survive only as
traces that decay at rate λ (``ff_decay``) per step while the activity relaxes, as a
Loihi pre-synaptic trace does: pre = (1−λ)^T x̄_{l−1} and D_l(t) = f'((1−λ)^t a_l).
Weight update: ΔW_l = −η e_l ⊗ pre.
"""
from __future__ import annotations

import functools

import torch

from neurocredit.sim.dynamics import Settled, layer_outputs, register_scheme
from neurocredit.sim.losses import output_error
from neurocredit.sim.network import Network
from neurocredit.sim.linear_relaxation import relax
from neurocredit.sim.relaxation import (Convergence, backward_operators, closed_form,
                                        relaxation_params)

DEFAULT_STEPS = 40
DEFAULT_RATE = 0.2


@register_scheme("activation_relaxation")
def activation_relaxation(net: Network, x: torch.Tensor, target: torch.Tensor, loss: str) -> Settled:
    """Relax the hidden activities to the BP gradient (see module docstring).

    Per step: one backward message per hidden layer, one in-place update of g and one
    product with f'; frozen, the relaxation is linear in g and evaluated in closed form
    (:mod:`.linear_relaxation`; rule constant ``closed_form`` false runs the loop).  Stops
    early when the rule's ``tolerance`` is met (:class:`~neurocredit.sim.relaxation.Convergence`).
    """
    steps, rate = relaxation_params(net, DEFAULT_STEPS, DEFAULT_RATE)
    frozen = bool(net.rule.param("frozen", True))
    decay = 0.0 if frozen else float(net.rule.param("ff_decay", 0.02))
    if not 0.0 <= decay < 1.0:
        raise ValueError(f"rule '{net.rule.name}': ff_decay must be in [0, 1), got {decay}")
    derivative = net.rule.feedback.derivative
    cache = net.forward_cache(x)
    n = net.n_layers
    e_out = output_error(cache.output, target, loss)
    g = [cache.inputs[l + 1].reshape(cache.pre[l].shape) for l in range(n - 1)]   # x̄_l = f(a_l)
    trace = 1.0
    backward = backward_operators(net)
    conv = Convergence(net, steps, depends_on_steps=not frozen)  # non-frozen: pre ∝ (1−λ)^T
    if frozen and closed_form(net):
        # linear dynamics g_l ← (1−γ)g_l + γ B_l (D_{l+1} ⊙ g_{l+1}) from g_l(0) = x̄_l: the
        # same states in closed form, stopped at the first step that meets the tolerance;
        # D_l ⊙ s as the fused gate reading x̄_l (f'(a_l) is never formed)
        def gate(s: torch.Tensor, l: int) -> torch.Tensor:
            return net.act.gate(s, cache.pre[l], g[l]) if derivative else s

        def op(s: torch.Tensor, l: int) -> torch.Tensor:
            if l < n - 2:
                s = gate(s, l + 1)
            return backward[l](s).reshape(g[l].shape)
        hidden, conv.steps = relax([functools.partial(op, l=l) for l in range(n - 1)], g, e_out,
                                   rate, steps, conv.tol)
        e = [gate(h, l) for l, h in enumerate(hidden)] + [e_out]
        return Settled(cache.inputs, layer_outputs(net, cache), e, cache, steps=conv.finish())
    held = [net.act.df(a) for a in cache.pre[:-1]] if derivative and frozen else None

    def errors(trace: float) -> list[torch.Tensor]:
        if held is not None:
            return [g[l] * held[l] for l in range(n - 1)] + [e_out]
        if derivative:
            return [g[l] * net.act.df(trace * cache.pre[l]) for l in range(n - 1)] + [e_out]
        return [*g, e_out]

    e = errors(trace)
    g = [gl.clone() for gl in g]     # relaxed in place below
    for _ in range(steps):
        for l in range(n - 1):
            force = backward[l](e[l + 1]).reshape(g[l].shape).sub_(g[l])
            g[l].add_(force, alpha=rate)
            conv.force(force, g[l])
        trace *= 1.0 - decay
        e = errors(trace)
        if conv.done():
            break
    outputs = layer_outputs(net, cache)
    inputs = cache.inputs if frozen else [x * trace, *(h * trace for h in cache.inputs[1:])]
    return Settled(inputs, outputs, e, cache, steps=conv.finish())
