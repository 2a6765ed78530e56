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
(default): pre = x̄_{l−1} and f'(a_l) from the stored pass; non-frozen (``frozen=False``):
both are read from the neurons' current, relaxed activity (f'(W_l g_{l−1} + b_l), pre =
g_{l−1}), as in the scalability paper.  Weight update: ΔW_l = −η e_l ⊗ pre.
"""
from __future__ import annotations

import torch

from neurocredit.sim.dynamics import Settled, layer_outputs, register_scheme
from neurocredit.sim.losses import output_error
from neurocredit.sim.network import Network
from neurocredit.sim.relaxation import backward_message, relaxation_params

DEFAULT_STEPS = 40
DEFAULT_RATE = 0.2


@register_scheme("activation_relaxation")
def activation_relaxation(net: Network, x: torch.Tensor, target: torch.Tensor, loss: str) -> Settled:
    """Relax the hidden activities to the BP gradient (see module docstring)."""
    steps, rate = relaxation_params(net, DEFAULT_STEPS, DEFAULT_RATE)
    frozen = bool(net.rule.param("frozen", True))
    derivative = net.rule.feedback.derivative
    cache = net.forward_cache(x)
    n = net.n_layers
    e_out = output_error(cache.output, target, loss)
    g = [net.act.f(a) for a in cache.pre[:-1]]

    def slopes() -> list[torch.Tensor]:
        if frozen:
            return [net.act.df(a) for a in cache.pre[:-1]]
        return [net.act.df(net.layers[l](x if l == 0 else g[l - 1])) for l in range(n - 1)]

    def errors(d: list[torch.Tensor]) -> list[torch.Tensor]:
        return [g[l] * d[l] if derivative else g[l] for l in range(n - 1)] + [e_out]

    e = errors(slopes())
    for _ in range(steps):
        g = [g[l] + rate * (backward_message(net, l, e[l + 1]) - g[l]) for l in range(n - 1)]
        e = errors(slopes())
    outputs = layer_outputs(net, cache)
    inputs = cache.inputs if frozen else [x, *g]
    return Settled(inputs, outputs, e, cache)
