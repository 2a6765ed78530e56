"""Rule -> batched, vectorised weight updates, without autograd.

A term c · Π factors is evaluated for a whole connection at once.  Factors indexed by the
post neuron (post, third, post_input) are multiplied into P (batch × post), those indexed
by the pre neuron into Q (batch × pre), and the synapse factor (weight) into S:

    ΔW = c · (Σ_b P_b ⊗ Q_b) / batch · S        (missing sides are ones)

Bias b_l is the weight from a constant pre neuron (pre = 1).  The returned deltas are the
*changes* (already signed); the trainer hands −Δ to a torch optimiser as the gradient.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch

from neurocredit.rules.factors import Factor
from neurocredit.rules.rule import Term
from neurocredit.sim.dynamics import Settled, get_scheme
from neurocredit.sim.network import Network


@dataclass
class Updates:
    """ΔW, Δb per layer and ΔB per learned feedback matrix (keyed by hidden layer)."""

    weight: list[torch.Tensor]
    bias: list[torch.Tensor | None]
    feedback: dict[int, torch.Tensor] = field(default_factory=dict)


def term_update(term: Term, outer: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
                pre: torch.Tensor, post: torch.Tensor, third: torch.Tensor | None,
                post_input: torch.Tensor | None, weight: torch.Tensor,
                scale: float = 1.0) -> torch.Tensor:
    """Value of one product term for one connection (shape of ``weight``), times ``scale``.

    The constant scale · c / batch is folded into the (small) batch × post factor before
    the contraction, so a term costs one matmul and no extra pass over the weights.
    """
    batch = pre.shape[0]
    p = q = None
    synapse = None
    for f in term.factors:
        if f is Factor.PRE:
            q = pre if q is None else q * pre
        elif f is Factor.POST:
            p = post if p is None else p * post
        elif f is Factor.THIRD:
            if third is None:
                raise ValueError(f"term {term} reads the third factor, which this connection lacks")
            p = third if p is None else p * third
        elif f is Factor.POST_INPUT:
            p = post_input if p is None else p * post_input
        elif f is Factor.WEIGHT:
            synapse = weight if synapse is None else synapse * weight
    const = scale * term.coef
    if p is None and q is None:
        return const * (synapse if synapse is not None else torch.ones_like(weight))
    p = torch.ones_like(post) if p is None else p
    q = torch.ones_like(pre) if q is None else q
    value = outer(p * (const / batch), q).reshape(weight.shape)
    return value * synapse if synapse is not None else value


def connection_update(terms, outer, pre, post, third, post_input, weight,
                      scale: float = 1.0) -> torch.Tensor:
    """scale · Σ_k term_k for one connection."""
    total = None
    for t in terms:
        v = term_update(t, outer, pre, post, third, post_input, weight, scale)
        total = v if total is None else total.add_(v)
    return total if total is not None else torch.zeros_like(weight)


def _needs_post_input(terms) -> bool:
    return any(Factor.POST_INPUT in t.factors for t in terms)


def forward_updates(net: Network, state: Settled, scale: float = 1.0) -> tuple[list[torch.Tensor], list[torch.Tensor | None]]:
    """ΔW_l and Δb_l for every layer from the rule's forward terms."""
    terms = net.rule.forward
    dws, dbs = [], []
    for l, layer in enumerate(net.layers):
        pre, post, third = state.inputs[l], state.outputs[l], state.errors[l]
        post_in = layer(pre) if _needs_post_input(terms) else None
        dws.append(connection_update(terms, layer.outer, pre, post, third, post_in, layer.weight,
                                       scale))
        if layer.bias is not None:
            ones = torch.ones(pre.shape[0], 1, device=pre.device, dtype=pre.dtype)
            outer_b = lambda p, q: p.flatten(1).T @ q
            db = connection_update(terms, outer_b, ones, post, third,
                                   post_in, layer.bias.unsqueeze(1), scale)
            dbs.append(db.squeeze(1))
        else:
            dbs.append(None)
    return dws, dbs


def _mm_outer(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    return p.flatten(1).T @ q.flatten(1)


def feedback_updates(net: Network, state: Settled, generator: torch.Generator | None = None,
                     scale: float = 1.0) -> dict[int, torch.Tensor]:
    """ΔB_l for every learned feedback matrix.

    In B_l's own frame (B_l: layer l+1 -> layer l) the post neuron is in layer l and the
    pre signal is what B_l carries: e_{l+1} ('error' drive), W_{l+1} ξ_l for a noise sample
    ξ_l at layer l ('noise' drive, the weight-mirror phase), or W_{l+1} x_l ('forward').
    """
    fb = net.rule.feedback
    out: dict[int, torch.Tensor] = {}
    if fb is None or fb.kind != "learned":
        return out
    for l in net.feedback_index:
        B = net.B(l)
        upper = net.layers[l + 1]
        if fb.drive == "error":
            pre, post = state.errors[l + 1], state.outputs[l]
        elif fb.drive == "noise":
            n_noise = fb.noise_batch or state.outputs[l].shape[0]
            xi = torch.randn((n_noise, *state.outputs[l].shape[1:]), generator=generator,
                             dtype=B.dtype, device="cpu").to(B.device) * fb.noise_std
            post = xi
            pre = (xi.flatten(1) @ upper.weight.T) / fb.noise_std ** 2
        else:  # forward
            post = state.outputs[l]
            pre = post.flatten(1) @ upper.weight.T
        post_in = pre.flatten(1) @ B.T if _needs_post_input(fb.terms) else None
        out[l] = connection_update(fb.terms, _mm_outer, pre, post.flatten(1), None, post_in, B,
                                   scale)
    return out


def local_updates(net: Network, x: torch.Tensor, target: torch.Tensor, loss: str,
                  generator: torch.Generator | None = None, scale: float = 1.0
                  ) -> tuple[Updates, Settled]:
    """Settle the error compartments with the rule's dynamics and evaluate every term.

    ``scale`` multiplies every update; the trainer passes −1 to get −Δ, the gradient a torch
    optimiser expects, without an extra pass over the weights.
    """
    state = get_scheme(net.rule.dynamics)(net, x, target, loss)
    dws, dbs = forward_updates(net, state, scale)
    return Updates(dws, dbs, feedback_updates(net, state, generator, scale)), state
