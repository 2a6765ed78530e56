"""A layered network plus explicit feedback pathways, built from a rule.

Forward:  a_l = W_l x_{l-1} + b_l,  x_l = f(a_l) (hidden),  output a_L (read out by the loss).
Feedback: for each hidden layer l a matrix B_l of shape (size of layer l, size of its source),
built as the rule's :class:`~neurocredit.rules.Feedback` says (random, sparse, learned),
or absent when the pathway is computed from the forward weights (transpose, sign).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from neurocredit.neurons.rate import Activation, get_activation
from neurocredit.rules.rule import Feedback, Rule
from neurocredit.sim.layers import Dense


@dataclass
class ForwardCache:
    """Inputs x_0..x_{L-1} to each layer, pre-activations a_1..a_L, hidden outputs x_1..x_{L-1}."""

    inputs: list[torch.Tensor]      # inputs[l] is the input to layer l (0-based), i.e. x_l
    pre: list[torch.Tensor]         # pre[l] = a of layer l

    @property
    def output(self) -> torch.Tensor:
        return self.pre[-1]


def pathway_kind(fb: Feedback, layer: int, n_layers: int) -> str:
    """Kind of pathway reaching hidden layer ``layer`` (0-based, < n_layers-1); see module-wise DFA."""
    if fb.module_size is None or fb.module_size == 1:
        return fb.kind
    from_top = n_layers - 1 - layer
    return fb.kind if from_top % fb.module_size == 0 else fb.within_module


def pathway_source(fb: Feedback, layer: int, n_layers: int) -> str:
    kind = pathway_kind(fb, layer, n_layers)
    return fb.source if kind == fb.kind else "next"


class Network(nn.Module):
    """Layers W_1..W_L, a hidden activation, and the feedback matrices the rule needs."""

    def __init__(self, sizes: list[int], rule: Rule, activation: str = "tanh",
                 seed: int = 0, feedback_scale: float = 1.0) -> None:
        super().__init__()
        if len(sizes) < 2 or any(int(s) < 1 for s in sizes):
            raise ValueError(f"layer sizes must be >= 2 positive integers, got {sizes}")
        self.rule = rule
        self.sizes = [int(s) for s in sizes]
        self.act: Activation = get_activation(activation)
        self.activation = activation
        g = torch.Generator().manual_seed(seed)
        self.layers = nn.ModuleList(Dense(a, b, generator=g) for a, b in zip(sizes[:-1], sizes[1:]))
        self.feedback = nn.ParameterList()
        self.feedback_index: dict[int, int] = {}
        self.sign_magnitude: dict[int, torch.Tensor] = {}
        self._build_feedback(g, feedback_scale)
        self._generator = g

    # -- construction -----------------------------------------------------------------
    @property
    def n_layers(self) -> int:
        return len(self.layers)

    def source_size(self, layer: int, source: str) -> int:
        if source == "next":
            return math.prod(self.layers[layer + 1].out_shape)
        return math.prod(self.layers[-1].out_shape)

    def _build_feedback(self, g: torch.Generator, scale: float) -> None:
        fb = self.rule.feedback
        if fb is None:
            return
        for l in range(self.n_layers - 1):
            kind = pathway_kind(fb, l, self.n_layers)
            n_here = math.prod(self.layers[l].out_shape)
            if kind == "sign" and fb.magnitude == "fixed_random":
                self.sign_magnitude[l] = torch.rand(self.layers[l + 1].weight.T.shape, generator=g)
            if kind not in ("random", "sparse", "learned"):
                continue
            src = pathway_source(fb, l, self.n_layers)
            n_src = self.source_size(l, src)
            # B_l has the scale of W_(l+1)ᵀ at initialisation (std 1/sqrt(n_l)), so that the
            # delivered error starts with BP's magnitude; ``scale`` multiplies it.
            b = torch.randn(n_here, n_src, generator=g) * scale / math.sqrt(n_here)
            if kind == "sparse":
                b = b * self._sparse_mask(n_here, n_src, fb.sparsity, g) / math.sqrt(1 - fb.sparsity)
            self.feedback_index[l] = len(self.feedback)
            self.feedback.append(nn.Parameter(b, requires_grad=kind == "learned"))

    @staticmethod
    def _sparse_mask(rows: int, cols: int, sparsity: float, g: torch.Generator) -> torch.Tensor:
        """Each row keeps exactly max(1, round((1-s)·cols)) random non-zeros (no silent neuron)."""
        keep = max(1, round((1.0 - sparsity) * cols))
        order = torch.rand(rows, cols, generator=g).argsort(dim=1)
        mask = torch.zeros(rows, cols)
        mask.scatter_(1, order[:, :keep], 1.0)
        return mask

    def B(self, layer: int) -> torch.Tensor | None:
        """The stored feedback matrix of hidden layer ``layer`` (None for transpose/sign)."""
        i = self.feedback_index.get(layer)
        return None if i is None else self.feedback[i]

    def effective_B(self, layer: int) -> torch.Tensor:
        """The matrix that maps the pathway's source into hidden layer ``layer`` right now."""
        fb = self.rule.feedback
        kind = pathway_kind(fb, layer, self.n_layers)
        if kind == "transpose":
            return self.layers[layer + 1].weight.T
        if kind == "sign":
            w_t = self.layers[layer + 1].weight.T
            if fb.magnitude == "unit":
                mag = w_t.abs().mean()
            elif fb.magnitude == "fixed_random":
                mag = self.sign_magnitude[layer].to(w_t) * w_t.abs().mean() * 2
            else:  # batch_random: a new magnitude draw at every call (one per batch)
                mag = torch.rand(w_t.shape, device=w_t.device) * w_t.abs().mean() * 2
            return torch.sign(w_t) * mag
        return self.B(layer)

    # -- dynamics ---------------------------------------------------------------------
    def forward_cache(self, x: torch.Tensor) -> ForwardCache:
        inputs, pre = [], []
        h = x
        for l, layer in enumerate(self.layers):
            inputs.append(h)
            a = layer(h)
            pre.append(a)
            h = self.act.f(a) if l < self.n_layers - 1 else a
        return ForwardCache(inputs, pre)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_cache(x).output

    def weight_params(self) -> list[nn.Parameter]:
        return [p for layer in self.layers for p in layer.parameters()]

    def learned_feedback_params(self) -> list[nn.Parameter]:
        return [p for p in self.feedback if p.requires_grad]
