"""Rate neurons: x = f(a) with the derivative f'(a) each neuron can compute locally.

Functional core (pure functions of tensors); the simulator wraps them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch


@dataclass(frozen=True)
class Activation:
    """A pointwise nonlinearity f, its derivative f' (as a function of a), and the gate.

    ``gate(e, a, x)`` = e ⊙ f'(a) given x = f(a): the third-factor compartment's local
    multiplication, fused into one kernel (the one torch autograd's own backward uses:
    ``threshold_backward``, ``tanh_backward``, ``sigmoid_backward``), so a local rule pays
    no more per element than BP does.
    """

    name: str
    f: Callable[[torch.Tensor], torch.Tensor]
    df: Callable[[torch.Tensor], torch.Tensor]
    fused_gate: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor] | None = None

    def gate(self, e: torch.Tensor, a: torch.Tensor, x: torch.Tensor | None = None) -> torch.Tensor:
        """e ⊙ f'(a); ``x`` = f(a) when the caller has it (saves recomputing f)."""
        if self.fused_gate is not None and x is not None:
            return self.fused_gate(e, a, x)
        return e * self.df(a)


def _tanh_d(a: torch.Tensor) -> torch.Tensor:
    t = torch.tanh(a)
    return 1.0 - t * t


def _sigmoid_d(a: torch.Tensor) -> torch.Tensor:
    s = torch.sigmoid(a)
    return s * (1.0 - s)


_ATEN = torch.ops.aten

ACTIVATIONS: dict[str, Activation] = {
    "tanh": Activation("tanh", torch.tanh, _tanh_d,
                       lambda e, a, x: _ATEN.tanh_backward(e, x)),            # e (1 − x²)
    "relu": Activation("relu", torch.relu, lambda a: (a > 0).to(a.dtype),
                       lambda e, a, x: _ATEN.threshold_backward(e, a, 0)),    # e [a > 0]
    "sigmoid": Activation("sigmoid", torch.sigmoid, _sigmoid_d,
                          lambda e, a, x: _ATEN.sigmoid_backward(e, x)),      # e x (1 − x)
    "linear": Activation("linear", lambda a: a, torch.ones_like, lambda e, a, x: e),
}


def get_activation(name: str) -> Activation:
    """The activation called ``name``; ValueError listing the known names otherwise."""
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise ValueError(f"unknown activation '{name}'; known: {', '.join(ACTIVATIONS)}") from None
