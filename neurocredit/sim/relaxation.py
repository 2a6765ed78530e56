"""Shared pieces of the dynamical (relaxation) error schemes.

* :func:`backward_message` -- what hidden layer l receives over the rule's feedback
  pathway from a signal s of layer l+1: Wᵀ s (``transpose``, via the layer's own transposed
  operator, so conv layers work), or B_l s (fixed or learned B).
* :func:`apply_plastic_grad` -- hands a locally computed change Δ of a plastic matrix that
  lives inside a scheme's dynamics (e.g. predictive coding's dense error weights Γ) to the
  trainer's optimiser the same way the trainer does for W and B: ``p.grad = −Δ``.
* :func:`relaxation_params` -- a rule's step count and inference rate, checked.
* :func:`relaxation_tolerance` and :class:`Convergence` -- the adaptive stop.  A relaxation
  integrates ds/dt = F(s) (PC: F = ε_l − D ⊙ B ε_{l+1}; AR: F = B e_{l+1} − g_l; DI:
  F = e_{l+1} − W g_l − αu_l).  With rule constant ``tolerance`` τ > 0 it stops at the first
  step t with

      max_l ‖F_l(t)‖_∞  ≤  τ · max_l ‖e_l(t)‖_∞        (e: the error compartments, e_L included)

  i.e. when what is still moving is a fraction τ of the errors the weights will read; the
  rule's ``steps`` is then the cap.  τ = 0 runs exactly ``steps`` steps (the fixed-step mode
  the gradient-equality checks use).  Default τ (no ``tolerance`` constant):
  :data:`DEFAULT_TOLERANCE` for rules that run only in PyTorch; 0 for a rule with
  ``hardware=True`` (the chip runs a fixed schedule of ``steps``, and the float reference must
  run the same) and for a relaxation whose result depends on T itself (AR with a decaying,
  non-frozen feed-forward trace).  Steps run are returned in ``Settled.steps``, counted
  in :data:`STEP_LOG` and logged at DEBUG level.
"""
from __future__ import annotations

import logging
from collections import defaultdict

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


LOG = logging.getLogger("neurocredit.relaxation")

STEP_LOG: dict[str, list[int]] = defaultdict(list)
"""Relaxation steps per settle, by rule name (benchmarks read and clear it)."""


DEFAULT_TOLERANCE = 0.01
"""τ when a PyTorch-only rule names none: the update's cosine to the fixed-step update stays
above 0.999 on the digits nets while PC/AR/DI stop after 14-30 of their 40-60 steps."""


def relaxation_tolerance(net: Network, depends_on_steps: bool = False) -> float:
    """τ of the adaptive stop (rule constant ``tolerance``; 0 = fixed steps; default above)."""
    rule = net.rule
    default = 0.0 if rule.hardware or depends_on_steps else DEFAULT_TOLERANCE
    tol = float(rule.param("tolerance", default))
    if not tol >= 0.0:
        raise ValueError(f"rule '{net.rule.name}': tolerance must be >= 0, got {tol}")
    return tol


class Convergence:
    """The adaptive stop of one settle (see the module docstring)."""

    def __init__(self, net: Network, max_steps: int, depends_on_steps: bool = False) -> None:
        self.rule = net.rule.name
        self.tol = relaxation_tolerance(net, depends_on_steps)
        self.max_steps = max_steps
        self.steps = 0
        self._force: list[torch.Tensor] = []

    def force(self, f: torch.Tensor) -> None:
        """Register one layer's F(t) of this step (read only when a tolerance is set)."""
        if self.tol:
            self._force.append(torch.linalg.vector_norm(f, float("inf")))

    def done(self, errors: list[torch.Tensor]) -> bool:
        """Count one step; True when it met the tolerance (always False when τ = 0)."""
        self.steps += 1
        if not self.tol or not self._force:
            return False
        moving = float(torch.stack(self._force).max())
        self._force.clear()
        scale = float(torch.stack([torch.linalg.vector_norm(e, float("inf")) for e in errors]).max())
        return moving <= self.tol * scale

    def finish(self) -> int:
        STEP_LOG[self.rule].append(self.steps)
        LOG.debug("rule %s: relaxation stopped after %d of %d steps", self.rule, self.steps,
                  self.max_steps)
        return self.steps
