"""Output error compartments e_L = ∂L/∂a_L per sample (what the output error neurons compute).

ce:  L = −Σ_k y_k log softmax(a)_k      ->  e_L = softmax(a_L) − y      (y one-hot)
mse: L = ½‖a_L − y‖²                   ->  e_L = a_L − y
The batch loss is the mean over samples, so weight updates average over the batch.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

LOSSES = ("ce", "mse")


def target_vector(y: torch.Tensor, n_out: int, loss: str) -> torch.Tensor:
    """The target as the output neurons see it: one-hot y* for class labels (integer ``y`` of
    shape [batch]) under either loss; real-valued targets (regression, 'mse') as they are."""
    if loss == "ce" or (not torch.is_floating_point(y) and y.dim() == 1):
        return F.one_hot(y, n_out).to(torch.float32)
    return y


def output_error(a_out: torch.Tensor, target: torch.Tensor, loss: str) -> torch.Tensor:
    if loss == "ce":
        return torch.softmax(a_out, dim=1) - target
    if loss == "mse":
        return a_out - target
    raise ValueError(f"unknown loss '{loss}'; known: {', '.join(LOSSES)}")


def loss_value(a_out: torch.Tensor, y: torch.Tensor, loss: str) -> torch.Tensor:
    """Mean batch loss (class indices for 'ce'; for 'mse' real targets, or class indices compared
    with their one-hot vector as :func:`target_vector` gives it)."""
    if loss == "ce":
        return F.cross_entropy(a_out, y)
    if not torch.is_floating_point(y) and y.dim() == 1:
        y = target_vector(y, a_out.shape[1], loss)
    return 0.5 * ((a_out - y) ** 2).sum(1).mean()
