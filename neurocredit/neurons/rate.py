"""Rate neurons: x = f(a) with the derivative f'(a) each neuron can compute locally.

Functional core (pure functions of tensors); the simulator wraps them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch


@dataclass(frozen=True)
class Activation:
    """A pointwise nonlinearity f and its derivative f' (as a function of a)."""

    name: str
    f: Callable[[torch.Tensor], torch.Tensor]
    df: Callable[[torch.Tensor], torch.Tensor]


def _tanh_d(a: torch.Tensor) -> torch.Tensor:
    t = torch.tanh(a)
    return 1.0 - t * t


def _sigmoid_d(a: torch.Tensor) -> torch.Tensor:
    s = torch.sigmoid(a)
    return s * (1.0 - s)


ACTIVATIONS: dict[str, Activation] = {
    "tanh": Activation("tanh", torch.tanh, _tanh_d),
    "relu": Activation("relu", torch.relu, lambda a: (a > 0).to(a.dtype)),
    "sigmoid": Activation("sigmoid", torch.sigmoid, _sigmoid_d),
    "linear": Activation("linear", lambda a: a, torch.ones_like),
}


def get_activation(name: str) -> Activation:
    """The activation called ``name``; ValueError listing the known names otherwise."""
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise ValueError(f"unknown activation '{name}'; known: {', '.join(ACTIVATIONS)}") from None
