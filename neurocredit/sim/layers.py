"""Weight layers of the PyTorch backend.

Each layer knows what the local-learning engine needs:
``forward(x) = a`` (pre-activation), ``outer(post, pre) = Σ_batch post ⊗ pre`` (the
batched contraction every plasticity term reduces to, shaped like the weight),
``outer_into(out, post, pre, β)`` (out ← β·out + outer, in place: the fused momentum /
in-place update), and ``transpose(e) = Wᵀ e`` (only for non-local pathways and the BP
reference).  :class:`Dense` and :class:`Conv2d` implement the same methods.
"""
from __future__ import annotations

import math

import torch
from torch import nn


class Dense(nn.Module):
    """a = W x + b with W of shape (out, in); x is flattened per sample.

    ``column_major=True`` stores W with Wᵀ contiguous (same shape, values and ``.grad``): the
    forward product x Wᵀ is then a plain (NN) GEMM, about 0.3-0.4 ms faster than the
    transposed-operand one at 64×1000×1000 on one CPU thread, and the outer product
    Σ_b post ⊗ pre is written as preᵀ·post into Wᵀ's rows.  Momentum buffers made with
    ``zeros_like`` keep the layout.
    """

    def __init__(self, n_in: int, n_out: int, generator: torch.Generator | None = None,
                 bias: bool = True, column_major: bool = False) -> None:
        super().__init__()
        bound = 1.0 / math.sqrt(n_in)
        w = (torch.rand(n_out, n_in, generator=generator) * 2 - 1) * bound * math.sqrt(3)
        self.weight = nn.Parameter(w.t().contiguous().t() if column_major else w)
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
        if self.bias is None:
            return x.flatten(1) @ self.weight.T
        return torch.addmm(self.bias, x.flatten(1), self.weight.T)

    def outer(self, post: torch.Tensor, pre: torch.Tensor) -> torch.Tensor:
        """Σ_b post[b, i] · pre[b, j] -> (out, in)."""
        return post.flatten(1).T @ pre.flatten(1)

    def outer_into(self, out: torch.Tensor, post: torch.Tensor, pre: torch.Tensor,
                   beta: float) -> torch.Tensor:
        """out ← β·out + Σ_b post ⊗ pre, in place, in one GEMM (BLAS's own β: no extra pass)."""
        return out.addmm_(post.flatten(1).T, pre.flatten(1), beta=beta)

    def transpose(self, e: torch.Tensor) -> torch.Tensor:
        """Wᵀ e, shaped like the layer input."""
        return (e.flatten(1) @ self.weight).reshape(e.shape[0], *self.in_shape)

    def __repr__(self) -> str:
        return f"Dense({self.n_in} -> {self.n_out})"


class Conv2d(nn.Module):
    """a = W ⋆ x + b: a 2-D convolution (cross-correlation), W of shape (c_out, c_in, k, k).

    The input arrives flattened or shaped; it is viewed as ``in_shape = (c_in, h, w)``.
    ``outer(post, pre)`` is the weight gradient of a convolution,
    Σ_b Σ_positions post[b, o, p] · pre_patch[b, i, p + kernel offset]
    (``torch.nn.grad.conv2d_weight``): the same pre ⊗ post product as a dense layer,
    summed over the positions that share a weight.  ``transpose(e)`` is the transposed
    convolution Wᵀ ⋆ e (only for non-local pathways and references).
    """

    def __init__(self, in_shape: tuple[int, int, int], c_out: int, kernel: int = 3,
                 stride: int = 1, padding: int | None = None,
                 generator: torch.Generator | None = None, bias: bool = True) -> None:
        super().__init__()
        if len(in_shape) != 3 or any(int(s) < 1 for s in in_shape):
            raise ValueError(f"a conv layer needs an input shape (channels, height, width), got {in_shape}")
        if c_out < 1 or kernel < 1 or stride < 1:
            raise ValueError(f"conv channels, kernel and stride must be >= 1, got {c_out}, {kernel}, {stride}")
        c_in, h, w = (int(s) for s in in_shape)
        self.stride = int(stride)
        self.padding = kernel // 2 if padding is None else int(padding)
        h_out = (h + 2 * self.padding - kernel) // self.stride + 1
        w_out = (w + 2 * self.padding - kernel) // self.stride + 1
        if h_out < 1 or w_out < 1:
            raise ValueError(f"conv kernel {kernel} (stride {stride}, padding {self.padding}) does "
                             f"not fit an input of {h}x{w}")
        fan_in = c_in * kernel * kernel
        bound = 1.0 / math.sqrt(fan_in)
        wt = (torch.rand(c_out, c_in, kernel, kernel, generator=generator) * 2 - 1) * bound * math.sqrt(3)
        self.weight = nn.Parameter(wt)
        self.bias = nn.Parameter(torch.zeros(c_out)) if bias else None
        self.in_shape = (c_in, h, w)
        self.out_shape = (int(c_out), h_out, w_out)

    @property
    def n_in(self) -> int:
        return math.prod(self.in_shape)

    @property
    def n_out(self) -> int:
        return math.prod(self.out_shape)

    def _shaped(self, x: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
        return x.reshape(x.shape[0], *shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.conv2d(self._shaped(x, self.in_shape), self.weight, self.bias,
                                          stride=self.stride, padding=self.padding)

    def outer(self, post: torch.Tensor, pre: torch.Tensor) -> torch.Tensor:
        """Σ_b Σ_positions post ⊗ pre-patch -> (c_out, c_in, k, k).

        ``pre`` of shape (batch, 1) is the constant input of the bias: then the sum over
        the positions of each output channel, shaped like the bias (c_out, 1).
        """
        post = self._shaped(post, self.out_shape)
        if pre.dim() == 2 and pre.shape[1] == 1:
            return (post * pre.reshape(-1, 1, 1, 1)).sum(dim=(0, 2, 3)).unsqueeze(1)
        return torch.nn.grad.conv2d_weight(self._shaped(pre, self.in_shape), self.weight.shape, post,
                                           stride=self.stride, padding=self.padding)

    def outer_into(self, out: torch.Tensor, post: torch.Tensor, pre: torch.Tensor,
                   beta: float) -> torch.Tensor:
        """out ← β·out + outer(post, pre), in place."""
        value = self.outer(post, pre)
        return out.copy_(value) if beta == 0 else out.mul_(beta).add_(value)

    def transpose(self, e: torch.Tensor) -> torch.Tensor:
        """Wᵀ ⋆ e (transposed convolution), shaped like the layer input."""
        return torch.nn.grad.conv2d_input((e.shape[0], *self.in_shape), self.weight,
                                          self._shaped(e, self.out_shape),
                                          stride=self.stride, padding=self.padding)

    def dense_matrix(self) -> torch.Tensor:
        """The convolution as a dense (n_out, n_in) matrix (for metrics and small nets)."""
        eye = torch.eye(self.n_in, dtype=self.weight.dtype, device=self.weight.device)
        cols = torch.nn.functional.conv2d(eye.reshape(-1, *self.in_shape), self.weight, None,
                                          stride=self.stride, padding=self.padding)
        return cols.flatten(1).T

    def __repr__(self) -> str:
        c_out, k = self.weight.shape[0], self.weight.shape[-1]
        return (f"Conv2d({'x'.join(map(str, self.in_shape))} -> {'x'.join(map(str, self.out_shape))}, "
                f"{c_out} channels, {k}x{k}, stride {self.stride})")
