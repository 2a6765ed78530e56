"""Alignment metrics between a rule and backpropagation on the same batch.

* ∠(Wᵀ, B):   angle between the feedback matrix B_l and the matrix BP would use in its
              place: W_{l+1}ᵀ for a pathway from layer l+1, (W_L ⋯ W_{l+1})ᵀ for a pathway
              from the output (DFA, DRTP; derivatives ignored).
* ∠(e, δ):    angle between the rule's error compartment e_l and BP's δ_l = ∂L/∂a_l
              (flattened over the batch).
* cos(ΔW, −∇W): cosine between the rule's weight change and the negative BP gradient.
* ‖B‖/‖W‖:    Frobenius-norm ratio of B_l to that reference matrix.

angle(A, B) = arccos(⟨A, B⟩_F / (‖A‖_F ‖B‖_F)) in degrees.
"""
from __future__ import annotations

import math

import torch

from neurocredit.sim.losses import loss_value, target_vector
from neurocredit.sim.network import Network, pathway_kind, pathway_source


def cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.flatten().double(), b.flatten().double()
    denom = a.norm() * b.norm()
    return float((a @ b) / denom) if denom > 0 else float("nan")


def angle(a: torch.Tensor, b: torch.Tensor) -> float:
    """Angle in degrees between two tensors seen as vectors."""
    c = cosine(a, b)
    return float("nan") if math.isnan(c) else math.degrees(math.acos(max(-1.0, min(1.0, c))))


def bp_reference(net: Network, x: torch.Tensor, y: torch.Tensor, loss: str
                 ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """BP's δ_l = ∂(Σ_b L_b)/∂a_l per layer and ∇W_l of the mean loss, by torch autograd."""
    with torch.enable_grad():
        cache = net.forward_cache(x)
        for a in cache.pre:
            a.retain_grad()
        weights = [layer.weight for layer in net.layers]
        value = loss_value(cache.output, y, loss)
        grads = torch.autograd.grad(value, weights + cache.pre)
    n = len(weights)
    batch = x.shape[0]
    return [g * batch for g in grads[n:]], list(grads[:n])


def reference_feedback(net: Network, layer: int) -> torch.Tensor:
    """The matrix BP would use where the rule uses B_layer (see module docstring)."""
    src = pathway_source(net.rule.feedback, layer, net.n_layers)
    ref = net.weight_matrix(layer + 1).T
    if src != "next":
        for upper in range(layer + 2, net.n_layers):
            ref = ref @ net.weight_matrix(upper).T
    return ref


def alignment(net: Network, x: torch.Tensor, y: torch.Tensor, loss: str,
              errors: list[torch.Tensor], dws: list[torch.Tensor]) -> list[dict[str, float]]:
    """Per-layer metrics of a rule's errors ``errors`` and updates ``dws`` on batch (x, y)."""
    deltas, grads = bp_reference(net, x, y, loss)
    rows = []
    for l in range(net.n_layers):
        row = {"layer": l + 1,
               "delta_angle": angle(errors[l], deltas[l]),
               "dw_cosine": cosine(dws[l], -grads[l])}
        if l < net.n_layers - 1 and net.rule.feedback is not None:
            ref = reference_feedback(net, l)
            B = net.effective_B(l).detach()
            ref = ref.detach()
            row["angle_WT_B"] = angle(ref.detach(), B)
            row["B_over_W"] = float(B.norm() / ref.norm())
            row["pathway"] = pathway_kind(net.rule.feedback, l, net.n_layers)
        rows.append(row)
    return rows


__all__ = ["angle", "cosine", "bp_reference", "reference_feedback", "alignment", "target_vector"]
