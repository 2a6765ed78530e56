"""A layered network plus explicit feedback pathways, built from a rule.

Forward:  a_l = W_l x_{l-1} + b_l,  x_l = f(a_l) (hidden),  output a_L (read out by the loss).
Feedback: for each hidden layer l a matrix B_l of shape (size of layer l, size of its source),
built as the rule's :class:`~neurocredit.rules.Feedback` says (random, sparse, learned),
or absent when the pathway is computed from the forward weights (transpose, sign).

Two ways to build one: ``Network(sizes, rule)`` (a dense MLP, sizes = [n_in, hidden..., n_out])
or ``Network.from_specs(in_shape, specs, rule)`` with layer specs such as
``["conv:16:3", "flatten", "dense:128", "dense:10"]`` (see :func:`build_layers`).
"""
from __future__ import annotations

import importlib
import math
from dataclasses import dataclass
from typing import Sequence

import torch
from torch import nn

from neurocredit.neurons.rate import Activation, get_activation
from neurocredit.rules.feedback_masks import balanced_sparse_mask
from neurocredit.rules.rule import Feedback, Rule
from neurocredit.sim.layers import Conv2d, Dense
from neurocredit.sim.term_plans import transposes_forward


@dataclass
class ForwardCache:
    """Inputs x_0..x_{L-1} to each layer, pre-activations a_1..a_L, hidden outputs x_1..x_{L-1}."""

    inputs: list[torch.Tensor]      # inputs[l] is the input to layer l (0-based), i.e. x_l
    pre: list[torch.Tensor]         # pre[l] = a of layer l

    @property
    def output(self) -> torch.Tensor:
        return self.pre[-1]


SCHEME_MODULES: dict[str, str] = {
    "predictive_coding": "neurocredit.sim.error_units",
    "activation_relaxation": "neurocredit.sim.activity_settling",
    "dynamic_inversion": "neurocredit.sim.feedback_control",
    "pal": "neurocredit.sim.noisy_prospective",
}
"""Modules that register a dynamical error scheme (loaded when a network's rule names one)."""


def load_scheme_module(dynamics: str) -> None:
    """Import the module registering error scheme ``dynamics`` (no-op for built-in schemes)."""
    module = SCHEME_MODULES.get(dynamics)
    if module is not None:
        importlib.import_module(module)


def pathway_kind(fb: Feedback, layer: int, n_layers: int) -> str:
    """Kind of pathway reaching hidden layer ``layer`` (0-based, < n_layers-1); see module-wise DFA."""
    if fb.module_size is None or fb.module_size == 1:
        return fb.kind
    from_top = n_layers - 1 - layer
    return fb.kind if from_top % fb.module_size == 0 else fb.within_module


def pathway_source(fb: Feedback, layer: int, n_layers: int) -> str:
    kind = pathway_kind(fb, layer, n_layers)
    return fb.source if kind == fb.kind else "next"


LayerSpec = str | dict


def _parse_spec(spec: LayerSpec) -> dict:
    """'conv:C:K[:S]' | 'dense:N' | 'flatten' | a dict with key 'type' -> a dict."""
    if isinstance(spec, dict):
        if "type" not in spec:
            raise ValueError(f"layer spec {spec} has no 'type'")
        return dict(spec)
    parts = str(spec).strip().lower().split(":")
    kind, args = parts[0], parts[1:]
    try:
        if kind == "conv" and 2 <= len(args) <= 3:
            out = {"type": "conv", "channels": int(args[0]), "kernel": int(args[1])}
            if len(args) == 3:
                out["stride"] = int(args[2])
            return out
        if kind == "dense" and len(args) == 1:
            return {"type": "dense", "units": int(args[0])}
        if kind == "flatten" and not args:
            return {"type": "flatten"}
    except ValueError:
        pass
    raise ValueError(f"bad layer spec '{spec}': expected 'conv:CHANNELS:KERNEL[:STRIDE]', "
                     "'dense:UNITS' or 'flatten'")


def build_layers(in_shape: Sequence[int], specs: Sequence[LayerSpec],
                 generator: torch.Generator) -> list[nn.Module]:
    """Weight layers from specs; 'flatten' only marks where conv maps become vectors.

    Conv layers are built without bias (the shared bias update reads dense biases);
    a conv layer after a dense one is refused.
    """
    shape = tuple(int(s) for s in in_shape)
    layers: list[nn.Module] = []
    flat = len(shape) == 1
    for raw in specs:
        spec = _parse_spec(raw)
        kind = spec["type"]
        if kind == "flatten":
            flat = True
            shape = (math.prod(shape),)
        elif kind == "conv":
            if flat or len(shape) != 3:
                raise ValueError(f"layer spec {raw}: a conv layer needs a (channels, height, width) "
                                 f"input, got {shape} (conv after flatten/dense?)")
            layer = Conv2d(shape, spec["channels"], spec["kernel"], spec.get("stride", 1),
                           spec.get("padding"), generator=generator, bias=False)
            layers.append(layer)
            shape = layer.out_shape
        elif kind == "dense":
            if int(spec["units"]) < 1:
                raise ValueError(f"layer spec {raw}: units must be >= 1")
            layer = Dense(math.prod(shape), int(spec["units"]), generator=generator,
                          column_major=True)
            layers.append(layer)
            flat = True
            shape = layer.out_shape
        else:
            raise ValueError(f"unknown layer type '{kind}' in spec {raw}; known: conv, dense, flatten")
    if not layers:
        raise ValueError("a network needs at least one weight layer")
    return layers


class Network(nn.Module):
    """Layers W_1..W_L, a hidden activation, and the feedback matrices the rule needs."""

    def __init__(self, sizes: list[int], rule: Rule, activation: str = "tanh",
                 seed: int = 0, feedback_scale: float = 1.0, *,
                 specs: Sequence[LayerSpec] | None = None,
                 in_shape: Sequence[int] | None = None) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        if specs is not None:
            if in_shape is None:
                raise ValueError("layer specs need the input shape, e.g. in_shape=(1, 8, 8)")
            layers = build_layers(in_shape, specs, g)
            sizes = [math.prod(in_shape)] + [math.prod(l.out_shape) for l in layers]
        elif len(sizes) < 2 or any(int(s) < 1 for s in sizes):
            raise ValueError(f"layer sizes must be >= 2 positive integers, got {sizes}")
        else:
            layers = [Dense(a, b, generator=g, column_major=True)
                      for a, b in zip(sizes[:-1], sizes[1:])]
        load_scheme_module(rule.dynamics)
        self.rule = rule
        self.sizes = [int(s) for s in sizes]
        self.specs = list(specs) if specs is not None else None
        self.in_shape = tuple(in_shape) if in_shape is not None else (self.sizes[0],)
        self.act: Activation = get_activation(activation)
        self.activation = activation
        self.layers = nn.ModuleList(layers)
        self.feedback = nn.ParameterList()
        self.feedback_index: dict[int, int] = {}
        # learned B updated by the rule's own dynamics (PAL's always-on plasticity), not by
        # the one-shot drives of updates.feedback_updates; B(l) finds them here
        self.dynamic_feedback_index: dict[int, int] = {}
        # predictive coding's dense error weights Γ_l (rule constant dense_error)
        self.error_weight_index: dict[int, int] = {}
        self.sign_magnitude: dict[int, torch.Tensor] = {}
        self._build_feedback(g, feedback_scale)
        if rule.param("dense_error", False):
            self._build_error_weights(g)
        self._generator = g

    @classmethod
    def from_specs(cls, in_shape: Sequence[int], specs: Sequence[LayerSpec], rule: Rule,
                   activation: str = "tanh", seed: int = 0,
                   feedback_scale: float = 1.0) -> "Network":
        """A network from layer specs, e.g. ``(1, 8, 8), ["conv:16:3", "flatten", "dense:10"]``."""
        return cls([], rule, activation, seed, feedback_scale, specs=specs, in_shape=in_shape)

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
                n_next = math.prod(self.layers[l + 1].out_shape)
                self.sign_magnitude[l] = torch.rand(n_here, n_next, generator=g)
            if kind not in ("random", "sparse", "learned"):
                continue
            src = pathway_source(fb, l, self.n_layers)
            n_src = self.source_size(l, src)
            # B_l has the scale of W_(l+1)ᵀ at initialisation (std 1/sqrt(n_l)), so that the
            # delivered error starts with BP's magnitude; ``scale`` multiplies it.
            b = torch.randn(n_here, n_src, generator=g) * scale / math.sqrt(n_here)
            if kind == "sparse" or (kind == "learned" and fb.sparsity > 0):   # sparse learned B too
                b = b * self._sparse_mask(n_here, n_src, fb.sparsity, g) / math.sqrt(1 - fb.sparsity)
            index = self.dynamic_feedback_index if self._feedback_in_dynamics() else self.feedback_index
            upper = self.layers[l + 1].weight
            if (kind == "learned" and index is self.feedback_index and src == "next"
                    and upper.t().shape == b.shape and fb.drive == "error"
                    and transposes_forward(tuple(self.rule.forward), tuple(fb.terms))):
                # a B that learns W_(l+1)'s update transposed (Kolen-Pollack) is stored so
                # that B_lᵀ has W_(l+1)'s memory layout: both share one product and one
                # contiguous pass (sim.updates.transposed_pairs)
                b = torch.empty_like(upper.t()).copy_(b)
            elif b.dim() == 2:
                # any other B column-major (B_lᵀ contiguous, same shape and values): the
                # delivered error s B_lᵀ is a plain GEMM, no transposed operand
                b = b.t().contiguous().t()
            index[l] = len(self.feedback)
            self.feedback.append(nn.Parameter(b, requires_grad=kind == "learned"))

    def _feedback_in_dynamics(self) -> bool:
        return bool(self.rule.param("feedback_in_dynamics", False))

    def _build_error_weights(self, g: torch.Generator) -> None:
        """Dense Γ_l (n_l × n_l, std 1/sqrt(n_l), no identity part) for every hidden layer."""
        for l in range(self.n_layers - 1):
            n = math.prod(self.layers[l].out_shape)
            gamma = torch.randn(n, n, generator=g) / math.sqrt(n)
            self.error_weight_index[l] = len(self.feedback)
            self.feedback.append(nn.Parameter(gamma))

    def error_weight(self, layer: int) -> torch.Tensor | None:
        """Predictive coding's dense error weights Γ_layer (None when one-to-one)."""
        i = self.error_weight_index.get(layer)
        return None if i is None else self.feedback[i]

    @staticmethod
    def _sparse_mask(rows: int, cols: int, sparsity: float, g: torch.Generator) -> torch.Tensor:
        """The balanced sparse mask of :func:`neurocredit.rules.feedback_masks.balanced_sparse_mask`
        (each row k distinct non-zeros, each column ⌊rows·k/cols⌋ or ⌈rows·k/cols⌉), permuted by
        ``g`` (rows, then columns); the chip compiler draws the same rule with numpy."""
        return torch.from_numpy(balanced_sparse_mask(
            rows, cols, sparsity, lambda n: torch.randperm(n, generator=g).numpy())).float()

    def B(self, layer: int) -> torch.Tensor | None:
        """The stored feedback matrix of hidden layer ``layer`` (None for transpose/sign)."""
        i = self.feedback_index.get(layer, self.dynamic_feedback_index.get(layer))
        return None if i is None else self.feedback[i]

    def effective_B(self, layer: int) -> torch.Tensor:
        """The matrix that maps the pathway's source into hidden layer ``layer`` right now."""
        fb = self.rule.feedback
        kind = pathway_kind(fb, layer, self.n_layers)
        if kind == "transpose":
            return self.weight_matrix(layer + 1).T
        if kind == "sign":
            w_t = self.weight_matrix(layer + 1).T
            if fb.magnitude == "unit":
                mag = w_t.abs().mean()
            elif fb.magnitude == "fixed_random":
                mag = self.sign_magnitude[layer].to(w_t) * w_t.abs().mean() * 2
            else:  # batch_random: a new magnitude draw at every call (one per batch)
                mag = torch.rand(w_t.shape, device=w_t.device) * w_t.abs().mean() * 2
            return torch.sign(w_t) * mag
        return self.B(layer)

    def weight_matrix(self, layer: int) -> torch.Tensor:
        """W of layer ``layer`` as a dense (n_out, n_in) matrix (a conv layer's unrolled form)."""
        lay = self.layers[layer]
        return lay.weight if isinstance(lay, Dense) else lay.dense_matrix()

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
