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

      max_l ‖F_l(t)‖_∞ / ‖R_l(t)‖_∞  ≤  τ

  with R_l what F_l is measured against: the value that settles (PC: ε_l; AR: g_l) or the
  drive that sets it (DI: e_{l+1}, since W_{l+1} g_l* balances it) -- i.e. when what still
  moves is a fraction τ of what the weights will read; the
  rule's ``steps`` is then the cap.  τ = 0 runs exactly ``steps`` steps (the fixed-step mode
  the gradient-equality checks use).  Default τ (no ``tolerance`` constant):
  :data:`DEFAULT_TOLERANCE` for rules that run only in PyTorch; 0 for a rule with
  ``hardware=True`` (the chip runs a fixed schedule of ``steps``, and the float reference must
  run the same) and for a relaxation whose result depends on T itself (AR with a decaying,
  non-frozen feed-forward trace).  Steps run are returned in ``Settled.steps``, counted
  in :data:`STEP_LOG` and logged at DEBUG level.  The test runs every :data:`CHECK_EVERY`
  steps (so a run stops at a multiple of it, or at the cap).
* exact predictive coding (nonlinear, no closed form) with τ > 0 settles with per-unit adaptive
  rates and kink snapping (:mod:`.adaptive_rates`, rule constant ``solver``), whose stop is the
  same test on what still moves, corrected for the iteration's contraction.
* :func:`closed_form` -- whether a linear relaxation (PC with fixed predictions, frozen AR)
  skips the step loop: :mod:`.linear_relaxation` gives the same Euler states x(t) in closed
  form and tests the tolerance at every step (so it stops at the first step that meets it,
  where the loop stops at the next multiple of :data:`CHECK_EVERY`).
"""
from __future__ import annotations

import logging
from collections import defaultdict

import torch

from neurocredit.sim.layers import Dense
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


def backward_operators(net: Network) -> list:
    """For every hidden layer l, a function s -> backward_message(net, l, s), resolved once
    per settle: a dense layer's W_{l+1} or B_l is looked up once and applied as one GEMM
    (same values); conv layers and sign pathways (which may redraw their magnitudes at every
    call) go through :func:`backward_message`."""
    fb = net.rule.feedback
    if fb is None:
        raise ValueError(f"rule '{net.rule.name}' has no feedback pathway to relax over")
    ops = []
    n = net.n_layers
    for l in range(n - 1):
        kind = pathway_kind(fb, l, n)
        flat = len(net.layers[l].out_shape) == 1
        upper = net.layers[l + 1]
        if flat and kind == "transpose" and isinstance(upper, Dense):
            ops.append(lambda s, w=upper.weight: s.flatten(1) @ w)
        elif flat and kind in ("random", "sparse", "learned"):
            ops.append(lambda s, bt=net.effective_B(l).T: s.flatten(1) @ bt)
        else:
            ops.append(lambda s, l=l: backward_message(net, l, s))
    return ops


def closed_form(net: Network) -> bool:
    """Whether a linear relaxation (PC with fixed predictions, frozen AR) may be evaluated in
    closed form (:mod:`.linear_relaxation`: the same states as the Euler loop, up to float
    rounding): rule constant ``closed_form`` (default true; false runs the step loop, e.g. to
    time one step), and every hidden layer's feedback operator the same at every call of a
    settle (all but a sign pathway that redraws its magnitudes per call)."""
    fb = net.rule.feedback
    if not net.rule.param("closed_form", True) or fb is None:
        return False
    if fb.magnitude != "batch_random":
        return True
    n = net.n_layers
    return not any(pathway_kind(fb, l, n) == "sign" for l in range(n - 1))


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
"""τ when a PyTorch-only rule names none.  On the digits MLP (64-256-10 relu) the update's
cosine to the fixed-step update stays at 1.0000 while PC with fixed predictions and DI stop
after about 22 of 40 / 23 of 60 steps (AR about 36 of 40); on a conv net exact AR keeps
cos ≥ 0.998 to BP (τ = 0.05 would give 0.95 there: the lowest layer lags the ones above)."""


def relaxation_tolerance(net: Network, depends_on_steps: bool = False) -> float:
    """τ of the adaptive stop (rule constant ``tolerance``; 0 = fixed steps; default above)."""
    rule = net.rule
    default = 0.0 if rule.hardware or depends_on_steps else DEFAULT_TOLERANCE
    tol = float(rule.param("tolerance", default))
    if not tol >= 0.0:
        raise ValueError(f"rule '{net.rule.name}': tolerance must be >= 0, got {tol}")
    return tol


CHECK_EVERY = 8
"""The stop is tested at every 8th step: a test costs a few reductions and a host read, more
than a small relaxation step itself (about 30 vs 20 µs on the digits net), so testing every
step would eat what stopping saves."""


class Convergence:
    """The adaptive stop of one settle (see the module docstring): tested every
    :data:`CHECK_EVERY` steps with two reductions per layer and one host read; nothing when
    τ = 0."""

    def __init__(self, net: Network, max_steps: int, depends_on_steps: bool = False) -> None:
        self.rule = net.rule.name
        self.tol = relaxation_tolerance(net, depends_on_steps)
        self.max_steps = max_steps
        self.steps = 0
        self._moving: list[torch.Tensor] = []
        self._scale: list[torch.Tensor] = []

    @property
    def testing(self) -> bool:
        """Whether the step now running is tested (callers skip :meth:`force` otherwise)."""
        return bool(self.tol) and (self.steps + 1) % CHECK_EVERY == 0

    def force(self, f: torch.Tensor, reference: torch.Tensor) -> None:
        """Register one layer's F(t) and R(t) of this step (kept only on a tested step)."""
        if self.testing:   # ‖·‖_∞ as abs().amax(): linalg.vector_norm(ord=inf) is ~40x slower here
            self._moving.append(f.abs().amax())
            self._scale.append(reference.abs().amax() * self.tol)

    def done(self) -> bool:
        """Count one step; True when a tested step met the tolerance (never when τ = 0)."""
        tested = self.testing
        self.steps += 1
        if not tested or not self._moving:
            return False
        if len(self._moving) == 1:
            met = bool(self._moving[0] <= self._scale[0])
        else:
            met = bool((torch.stack(self._moving) <= torch.stack(self._scale)).all())
        self._moving.clear()
        self._scale.clear()
        return met

    def finish(self) -> int:
        STEP_LOG[self.rule].append(self.steps)
        LOG.debug("rule %s: relaxation stopped after %d of %d steps", self.rule, self.steps,
                  self.max_steps)
        return self.steps
