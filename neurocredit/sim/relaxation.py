"""Shared pieces of the dynamical (relaxation) error schemes.

* :func:`backward_message` -- what hidden layer l receives over the rule's feedback
  pathway from a signal s of layer l+1: Wᵀ s (``transpose``, via the layer's own transposed
  operator, so conv layers work), or B_l s (fixed or learned B).
* :func:`apply_plastic_grad` -- hands a locally computed change Δ of a plastic matrix that
  lives inside a scheme's dynamics (e.g. predictive coding's dense error weights Γ) to the
  trainer's optimiser the same way the trainer does for W and B: ``p.grad = −Δ``.
* :func:`relaxation_params` -- a rule's step count and inference rate, checked.
"""
from __future__ import annotations

import torch

from neurocredit.sim.network import Network, pathway_kind


def backward_message(net: Network, layer: int, signal: torch.Tensor) -> torch.Tensor:
    """B_l · s (or W_{l+1}ᵀ · s for a transpose pathway), shaped like layer ``layer``'s output."""
    fb = net.rule.feedback
    shape = (signal.shape[0], *net.layers[layer].out_shape)
    if fb is None:
        raise ValueError(f"rule '{net.rule.name}' has no feedback pathway to relax over")
    if pathway_kind(fb, layer, net.n_layers) == "transpose":
        return net.layers[layer + 1].transpose(signal).reshape(shape)
    return (signal.flatten(1) @ net.effective_B(layer).T).reshape(shape)


def apply_plastic_grad(param: torch.nn.Parameter, delta: torch.Tensor) -> None:
    """The trainer's convention: the optimiser receives −Δ as the gradient (W ← W + ηΔ)."""
    param.grad = (-delta).to(param.dtype)


def relaxation_params(net: Network, default_steps: int, default_rate: float) -> tuple[int, float]:
    """(T, γ) from the rule's ``steps`` and ``inference_rate`` constants."""
    steps = int(net.rule.param("steps", default_steps))
    rate = float(net.rule.param("inference_rate", default_rate))
    if steps < 0:
        raise ValueError(f"rule '{net.rule.name}': steps must be >= 0, got {steps}")
    if not 0.0 < rate <= 1.0:
        raise ValueError(f"rule '{net.rule.name}': inference_rate must be in (0, 1], got {rate}")
    return steps, rate
