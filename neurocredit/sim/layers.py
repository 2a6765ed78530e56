"""Weight layers of the PyTorch backend.

Each layer knows three things the local-learning engine needs:
``forward(x) = a`` (pre-activation), ``outer(post, pre) = Σ_batch post ⊗ pre`` (the
batched contraction every plasticity term reduces to, shaped like the weight), and
``transpose(e) = Wᵀ e`` (only for non-local pathways and the BP reference).
Dense layers now; a conv layer implements the same three methods.
"""
from __future__ import annotations

import math

import torch
from torch import nn


class Dense(nn.Module):
    """a = W x + b with W of shape (out, in); x is flattened per sample."""

    def __init__(self, n_in: int, n_out: int, generator: torch.Generator | None = None,
                 bias: bool = True) -> None:
        super().__init__()
        bound = 1.0 / math.sqrt(n_in)
        w = (torch.rand(n_out, n_in, generator=generator) * 2 - 1) * bound * math.sqrt(3)
        self.weight = nn.Parameter(w)
        self.bias = nn.Parameter(torch.zeros(n_out)) if bias else None
        self.in_shape: tuple[int, ...] = (n_in,)
        self.out_shape: tuple[int, ...] = (n_out,)

    @property
    def n_in(self) -> int:
        return self.weight.shape[1]

    @property
    def n_out(self) -> int:
        return self.weight.shape[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = x.flatten(1) @ self.weight.T
        return a + self.bias if self.bias is not None else a

    def outer(self, post: torch.Tensor, pre: torch.Tensor) -> torch.Tensor:
        """Σ_b post[b, i] · pre[b, j] -> (out, in)."""
        return post.flatten(1).T @ pre.flatten(1)

    def transpose(self, e: torch.Tensor) -> torch.Tensor:
        """Wᵀ e, shaped like the layer input."""
        return (e.flatten(1) @ self.weight).reshape(e.shape[0], *self.in_shape)

    def __repr__(self) -> str:
        return f"Dense({self.n_in} -> {self.n_out})"
