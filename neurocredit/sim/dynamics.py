"""How the third-factor (error) compartments settle, one function per scheme.

Each scheme maps (network, input, target) to a :class:`Settled` state: the activities the
plasticity terms read (pre = input to each layer, post = its output) and the error
compartment e_l of every layer.  'feedforward' is the one-shot pass through the rule's
feedback pathways:

    e_L = ∂L/∂a_L,    e_l = (B_l s_l) ⊙ f'(a_l)   (⊙ f' only if the pathway says so)

Dynamical schemes (predictive coding, activation relaxation, ...) register here too.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from neurocredit.sim.losses import output_error
from neurocredit.sim.network import ForwardCache, Network, pathway_source


@dataclass
class Settled:
    """Activities and error compartments after the error dynamics have settled."""

    inputs: list[torch.Tensor]   # pre-synaptic activity of each layer
    outputs: list[torch.Tensor]  # post-synaptic activity of each layer (x_l; a_L for the output)
    errors: list[torch.Tensor]   # e_l, same shape as the layer output
    cache: ForwardCache
    steps: int | None = None     # relaxation steps run (dynamical schemes; None: one pass)


Scheme = Callable[[Network, torch.Tensor, torch.Tensor, str], Settled]
SCHEMES: dict[str, Scheme] = {}


def register_scheme(name: str) -> Callable[[Scheme], Scheme]:
    def deco(fn: Scheme) -> Scheme:
        SCHEMES[name] = fn
        return fn
    return deco


def get_scheme(name: str) -> Scheme:
    try:
        return SCHEMES[name]
    except KeyError:
        raise ValueError(f"unknown error dynamics '{name}'; known: {', '.join(SCHEMES)}") from None


def layer_outputs(net: Network, cache: ForwardCache) -> list[torch.Tensor]:
    """x_l for hidden layers (the next layer's input, already computed), a_L for the output."""
    return list(cache.inputs[1:]) + [cache.pre[-1]]


@register_scheme("feedforward")
def feedforward(net: Network, x: torch.Tensor, target: torch.Tensor, loss: str) -> Settled:
    cache = net.forward_cache(x)
    e_out = output_error(cache.output, target, loss)
    errors: list[torch.Tensor] = [e_out]
    fb = net.rule.feedback
    for l in range(net.n_layers - 2, -1, -1):
        source = pathway_source(fb, l, net.n_layers)
        s = {"next": errors[0], "output": e_out, "target": target}[source]
        e = (s.flatten(1) @ net.effective_B(l).T).reshape(cache.pre[l].shape)
        if fb.derivative:  # e ⊙ f'(a_l), fused, reading x_l = f(a_l) from the forward pass
            e = net.act.gate(e, cache.pre[l], cache.inputs[l + 1].reshape(e.shape))
        errors.insert(0, e)
    return Settled(cache.inputs, layer_outputs(net, cache), errors, cache)


# The BP reference trains with torch autograd; for metrics (and the test that they agree)
# its errors come from the same one-shot pass through its transpose pathway.
SCHEMES["autograd"] = feedforward
