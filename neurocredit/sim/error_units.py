"""Predictive coding as an error-settling scheme (value and error units, T inference steps).

Whittington & Bogacz 2017 (Neural Comput. 29:1229); relaxations after Millidge, Tschantz,
Seth & Buckley 2020, "Relaxing the constraints on predictive coding models" (arXiv:2010.01047).

Value units v_l (one per hidden neuron, initialised at the feed-forward pre-activation a_l),
predictions μ_l = W_l f(v_{l-1}) + b_l, error units ε_l = Γ_l μ_l − v_l (Γ_l = I: the usual
one-to-one wiring), output error ε_L = ∂L/∂μ_L.  Inference descends the energy
F = Σ_l ½‖ε_l‖² + L(μ_L):

    v_l ← v_l + γ (ε_l − D_l ⊙ (B_l ε_{l+1}))            for t = 1 .. T

with B_l = W_{l+1}ᵀ (exact PC, non-local) or a learned B_l, D_l = f'(v_l) or 1 (no backward
derivative).  With fixed predictions (Millidge et al. 2022, "PC approximates backprop along
arbitrary computation graphs") μ_l and f' are read from the feed-forward pass and ε_l
converges to BP's δ_l = f'(a_l) ⊙ W_{l+1}ᵀ δ_{l+1}.

The three relaxations are switches of the rule, used independently:

* learned backward weights: the rule's feedback pathway is ``learned`` (ΔB_l = −η f(v_l) ⊗
  ε_{l+1} − λB_l, Kolen-Pollack-like; evaluated by ``updates.feedback_updates``);
* no backward derivative: the pathway's ``derivative=False``;
* dense error connectivity (rule constant ``dense_error``): the error units receive the
  prediction through a dense learned Γ_l instead of one-to-one (as in the authors' code,
  ``error_weights``), ΔΓ_l = −η ε_l ⊗ μ_l — the delta rule Term(−1, third·pre).

Weight updates are the rule's terms on the settled state: pre = f(v_{l-1}) (x for the first
layer), third = ε_l; ΔW_l = −η ε_l ⊗ f(v_{l−1}).
"""
from __future__ import annotations

import functools

import torch

from neurocredit.rules.dynamical import PC_GAMMA_TERMS
from neurocredit.sim.adaptive_rates import AdaptiveRates
from neurocredit.sim.dynamics import Settled, layer_outputs, register_scheme
from neurocredit.sim.layers import Dense
from neurocredit.sim.losses import output_error
from neurocredit.sim.network import Network
from neurocredit.sim.linear_relaxation import relax
from neurocredit.sim.relaxation import (Convergence, apply_plastic_grad, backward_operators,
                                        closed_form, relaxation_params)
from neurocredit.sim.updates import connection_update

DEFAULT_STEPS = 40
DEFAULT_RATE = 0.2


def _errors(net: Network, mu: list[torch.Tensor], v: list[torch.Tensor],
            target: torch.Tensor, loss: str) -> list[torch.Tensor]:
    out = []
    for l in range(net.n_layers - 1):
        out.append(_prediction(net, l, mu[l]) - v[l])
    out.append(output_error(mu[-1], target, loss))
    return out


def _prediction(net: Network, l: int, mu: torch.Tensor) -> torch.Tensor:
    """What error unit ε_l receives from the prediction: μ_l, or Γ_l μ_l (dense_error)."""
    gamma = net.error_weight(l)
    return mu if gamma is None else (mu.flatten(1) @ gamma.T).reshape(mu.shape)


def _predictor(layer: torch.nn.Module):
    """h -> the layer's prediction W h + b, with a dense layer's W and b looked up once per
    settle (they do not change while the value units relax)."""
    if isinstance(layer, Dense) and layer.bias is not None:
        bias, weight_t = layer.bias, layer.weight.T
        return lambda h: torch.addmm(bias, h.flatten(1), weight_t)
    return layer.forward


def _solver(net: Network) -> str:
    """Rule constant ``solver`` of exact PC with a tolerance: "supersab" (per-unit adaptive
    rates with kink snapping, :mod:`.adaptive_rates`) or "euler" (the rule's T Euler steps at
    γ, stopped by the tolerance)."""
    name = str(net.rule.param("solver", "euler"))
    if name not in ("euler", "supersab"):
        raise ValueError(f"rule '{net.rule.name}': solver must be 'euler' or 'supersab', got '{name}'")
    return name


def _back(net: Network, backward: list, l: int, above: torch.Tensor, v: torch.Tensor,
          fv: torch.Tensor) -> torch.Tensor:
    """D_l ⊙ B_l ε_{l+1} at value units v (f(v) = fv), D_l = f'(v_l) or 1."""
    back = backward[l](above).reshape(v.shape)
    return net.act.gate(back, v, fv) if net.rule.feedback.derivative else back


@register_scheme("predictive_coding")
def predictive_coding(net: Network, x: torch.Tensor, target: torch.Tensor, loss: str) -> Settled:
    """Relax value units for up to T steps; return the settled errors (module docstring).

    Per step: one backward message per hidden layer, the fused gate, one in-place update of
    v, and (exact PC) the predictions of layers 2..L (μ_1 = W_1 x + b_1 never changes).
    With fixed predictions μ, Γμ, f'(a) and the output error are computed once, and the
    relaxation, linear in ε, is evaluated in closed form (:mod:`.linear_relaxation`; rule
    constant ``closed_form`` false runs the loop).  Stops early when the rule's ``tolerance``
    is met (:class:`~neurocredit.sim.relaxation.Convergence`).  Exact PC with a tolerance
    and rule constant ``solver = "supersab"`` settles with per-unit adaptive rates and kink
    snapping instead (:mod:`.adaptive_rates`): forward Euler at γ chatters across ReLU kinks
    and never meets the tolerance; this reaches the energy minimum in ~5 steps on the digits
    net.  τ = 0 always runs the T Euler steps (the fixed-step mode).
    """
    steps, rate = relaxation_params(net, DEFAULT_STEPS, DEFAULT_RATE)
    fixed = bool(net.rule.param("fixed_prediction", False))
    derivative = net.rule.feedback.derivative
    cache = net.forward_cache(x)
    n = net.n_layers
    mu = list(cache.pre)
    gates = [cache.inputs[l + 1].reshape(cache.pre[l].shape) for l in range(n - 1)]
    backward = backward_operators(net)
    conv = Convergence(net, steps)
    if fixed and closed_form(net):
        # linear dynamics ε_l ← (1−γ)ε_l + γ f'(a_l) ⊙ B_l ε_{l+1} from ε_l(0) = Γ_l μ_l − μ_l
        # (0 for Γ = I): the same states in closed form, stopped at the first step that meets
        # the tolerance (linear_relaxation)
        def op(s: torch.Tensor, l: int) -> torch.Tensor:
            back = backward[l](s).reshape(mu[l].shape)
            return net.act.gate(back, cache.pre[l], gates[l]) if derivative else back
        init = [None if net.error_weight(l) is None else _prediction(net, l, mu[l]) - mu[l]
                for l in range(n - 1)]
        top = output_error(mu[-1], target, loss)
        hidden, conv.steps = relax([functools.partial(op, l=l) for l in range(n - 1)], init,
                                   top, rate, steps, conv.tol)
        eps = [*hidden, top]
    elif not fixed and conv.tol > 0 and _solver(net) == "supersab":
        # exact PC with a tolerance: per-unit adaptive rates and kink snapping (adaptive_rates)
        v = list(cache.pre[:-1])
        acts = list(gates)
        eps = _errors(net, mu, v, target, loss)
        predict = [_predictor(layer) for layer in net.layers]
        solver = AdaptiveRates(net.act, float(net.rule.param("solver_rate", 1.0)), conv.tol)
        for _ in range(steps):
            forces = [torch.sub(eps[l], _back(net, backward, l, eps[l + 1], v[l], acts[l]))
                      for l in range(n - 1)]
            moves = solver.moves(v, acts, forces, eps[:-1])
            v = [vl + dl for vl, dl in zip(v, moves)]
            acts = [net.act.f(vl) for vl in v]
            for l in range(1, n):
                mu[l] = predict[l](acts[l - 1])
            eps = _errors(net, mu, v, target, loss)
            conv.steps += 1
            if solver.converged():
                break
    else:
        v = [a.clone() for a in cache.pre[:-1]]
        eps = _errors(net, mu, v, target, loss)
        preds = [_prediction(net, l, mu[l]) for l in range(n - 1)] if fixed else None
        # exact PC: f(v_l) of the step before, read by the gate (fused with f') and the predictions
        acts = list(gates)
        predict = [_predictor(layer) for layer in net.layers]
        for _ in range(steps):
            forces = []
            for l in range(n - 1):
                back = backward[l](eps[l + 1]).reshape(v[l].shape)
                if derivative:
                    back = (net.act.gate(back, cache.pre[l], gates[l]) if fixed
                            else net.act.gate(back, v[l], acts[l]))
                force = torch.sub(eps[l], back)
                v[l].add_(force, alpha=rate)
                forces.append(force)
            if fixed:
                eps = [torch.sub(preds[l], v[l]) for l in range(n - 1)] + eps[-1:]
            else:
                acts = [net.act.f(vl) for vl in v]
                for l in range(1, n):
                    mu[l] = predict[l](acts[l - 1])
                eps = _errors(net, mu, v, target, loss)
            if conv.testing:
                for l, force in enumerate(forces):     # F_l against the error unit it settles
                    conv.force(force, eps[l])
            if conv.done():
                break
    if fixed:
        inputs, outputs = cache.inputs, layer_outputs(net, cache)
    else:
        inputs, outputs = [x, *acts], [*acts, mu[-1]]     # acts = f(v) of the last step
    for l in net.error_weight_index:
        gamma = net.error_weight(l)
        pre = mu[l].flatten(1)
        d_gamma = connection_update(PC_GAMMA_TERMS, lambda p, q: p.flatten(1).T @ q.flatten(1),
                                    pre, outputs[l].flatten(1), eps[l].flatten(1), None, gamma)
        apply_plastic_grad(gamma, d_gamma)
    return Settled(inputs, outputs, eps, cache, steps=conv.finish())
