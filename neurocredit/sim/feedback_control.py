"""Dynamic inversion as an error-settling scheme, with its stability condition checked.

Podlaski & Machens 2020, "Biological credit assignment through dynamic inversion of
feedforward networks" (NeurIPS; arXiv:2007.05112).

For each hidden layer l a controller u_l (one unit per neuron of layer l+1) integrates the
error of layer l+1 and drives layer l through fixed random feedback B_l; the resulting
activity change −B_l u_l is sent forward again through the forward weights W_{l+1} (the
existing forward synapses, no weight transport):

    du_l/dt = (e_{l+1} − W_{l+1} g_l) − α u_l = e_{l+1} + (W_{l+1} B_l − α I) u_l,
    g_l = −B_l u_l,     e_l = f'(a_l) ⊙ g_l

(u_l integrates what is still missing, e_{l+1} − W_{l+1} g_l, with a leak α.)  B_l enters with
a minus sign (an inhibitory loop), the convention under which the condition reads as in the
paper's review; training aligns W_{l+1} with −B_lᵀ (FA-like), which makes W_{l+1}B_l more
negative definite, so the margin grows while learning and the metric ∠(Wᵀ, B) ends above 90°.

Fixed point: g_l* = B_l (W_{l+1} B_l − α I)⁻¹ e_{l+1}; for α → 0, W_{l+1} g_l* = e_{l+1}, a
(right) inverse of the forward map.  The dynamics are stable iff every eigenvalue of
M_l = W_{l+1} B_l − α I has a negative real part (the condition named in the paper's
NeurIPS review).  This scheme computes those eigenvalues for every layer at every settle,
and when the condition fails it raises :class:`InstabilityError` (``on_unstable='error'``,
the default) or issues a :class:`DynamicInversionWarning` (``'warn'``) and carries on with the
unstable dynamics.  B is never adjusted.  Forward Euler with step dt is used; dt is
reduced to 1/max|λ(M_l)| when needed so that the integrator itself stays stable (the step
used is reported in :data:`LAST_REPORT`).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch

from neurocredit.sim.dynamics import Settled, layer_outputs, register_scheme
from neurocredit.sim.losses import output_error
from neurocredit.sim.network import Network
from neurocredit.sim.relaxation import Convergence

DEFAULT_STEPS = 60
DEFAULT_DT = 0.5
DEFAULT_LEAK = 0.5


class InstabilityError(ValueError):
    """The feedback dynamics of dynamic inversion are unstable (eig(W·B − αI) ≥ 0)."""


class DynamicInversionWarning(RuntimeWarning):
    """Dynamic inversion runs although its stability condition fails."""


@dataclass
class LayerStability:
    layer: int                 # hidden layer index l (1-based in messages)
    max_real: float            # max Re λ(W_{l+1} B_l − α I); stable iff < 0
    spectral_radius: float     # max |λ|
    dt: float                  # Euler step used

    @property
    def stable(self) -> bool:
        return self.max_real < 0.0

    def __str__(self) -> str:
        verdict = "stable" if self.stable else "UNSTABLE"
        return (f"layer {self.layer}: max Re eig(W{self.layer + 1}·B{self.layer} − αI) = "
                f"{self.max_real:+.4f} ({verdict})")


LAST_REPORT: list[LayerStability] = []
"""Stability of every hidden layer at the most recent settle (read by benchmarks/CLI)."""


def stability(net: Network, leak: float | None = None) -> list[LayerStability]:
    """Eigenvalue check of M_l = W_{l+1} B_l − α I for every hidden layer of ``net``."""
    return _stability_maps(net, leak)[0]


def _stability_maps(net: Network, leak: float | None = None
                    ) -> tuple[list[LayerStability], list[tuple[torch.Tensor, torch.Tensor]]]:
    """:func:`stability`, and (M_l in float64, the B_l it was built from) per hidden layer."""
    alpha = float(net.rule.param("leak", DEFAULT_LEAK) if leak is None else leak)
    dt = float(net.rule.param("dt", DEFAULT_DT))
    out, maps = [], []
    for l in range(net.n_layers - 1):
        W = net.weight_matrix(l + 1).detach().double()
        B_l = net.effective_B(l).detach()
        M = W @ B_l.double()
        M.diagonal().sub_(alpha)
        lam = torch.linalg.eigvals(M)
        rho = float(lam.abs().max())
        # forward Euler is stable iff |1 + dt·λ| < 1, i.e. dt < −2 Re λ / |λ|² for every λ
        limit = float((-2.0 * lam.real / lam.abs().clamp_min(1e-12) ** 2).min())
        step = min(dt, 0.9 * limit) if limit > 0 else dt
        out.append(LayerStability(l + 1, float(lam.real.max()), rho, step))
        maps.append((M, B_l))
    return out, maps


def _check(net: Network, report: list[LayerStability]) -> None:
    bad = [r for r in report if not r.stable]
    if not bad:
        return
    mode = str(net.rule.param("on_unstable", "error"))
    msg = (f"dynamic inversion (rule '{net.rule.name}'): the feedback dynamics are unstable: "
           + "; ".join(map(str, bad)) + f" with leak α = {net.rule.param('leak', DEFAULT_LEAK)}. "
           "The errors it would deliver are meaningless; B is not adjusted. "
           "Raise the leak (rule constant 'leak') or use another feedback matrix.")
    if mode == "warn":
        warnings.warn(msg, DynamicInversionWarning, stacklevel=3)
    else:
        raise InstabilityError(msg)


@register_scheme("dynamic_inversion")
def dynamic_inversion(net: Network, x: torch.Tensor, target: torch.Tensor, loss: str) -> Settled:
    """Run the inversion dynamics of every hidden layer for up to T steps (module docstring).

    Per step and hidden layer one product: u ← dt·e_{l+1} + u (I + dt M_l)ᵀ with M_l =
    W_{l+1}B_l − αI, the matrix the stability check builds anyway; −g_l = u_l B_lᵀ only
    where it drives the layer below (and at the end); f'(a_l) is computed once.  Stops early when the rule's ``tolerance`` is met
    (:class:`~neurocredit.sim.relaxation.Convergence`, F = du/dt).
    """
    steps = int(net.rule.param("steps", DEFAULT_STEPS))
    alpha = float(net.rule.param("leak", DEFAULT_LEAK))
    report, maps = _stability_maps(net, alpha)
    LAST_REPORT[:] = report
    _check(net, report)
    cache = net.forward_cache(x)
    n = net.n_layers
    e_out = output_error(cache.output, target, loss)
    derivative = net.rule.feedback.derivative
    Bts = [B.T for _, B in maps]          # the B_l the stability check was made on
    # −f'(a_l): g_l = −B_l u_l, e_l = f'(a_l) ⊙ g_l = (−f'(a_l)) ⊙ (u_l B_lᵀ)
    held = [-net.act.df(cache.pre[l]) for l in range(n - 1)] if derivative else None
    # one Euler step of every layer as one product: u ← u + dt (e + u (W B − αI)ᵀ)
    #                                                 = dt·e + u Aᵀ,  A = I + dt M  (M from the check)
    steps_T = []
    for l, (M, _) in enumerate(maps):
        A = M.mul(report[l].dt)
        A.diagonal().add_(1.0)
        steps_T.append(A.T.to(dtype=x.dtype, device=x.device))
    u = [torch.zeros(x.shape[0], M.shape[0], dtype=x.dtype, device=x.device) for M, _ in maps]

    def error(l: int) -> torch.Tensor:
        # g_l = −B_l u_l;  e_l = f'(a_l) ⊙ g_l  (flat: batch × neurons)
        ub = u[l] @ Bts[l]
        return ub.mul_(held[l].reshape(ub.shape)) if derivative else ub.neg_()

    # the drive of layer l is e_{l+1}: the output error (fixed) for the top hidden layer,
    # the (moving) error of hidden layer l+1 otherwise; layer 0's error is read only at the end
    drive = [torch.zeros_like(u[l]) for l in range(n - 2)] + [e_out.flatten(1)]
    dts = [r.dt for r in report]
    layers = range(n - 1)
    conv = Convergence(net, steps)
    for _ in range(steps):
        if conv.testing:
            for l in layers:
                new = torch.addmm(drive[l], u[l], steps_T[l], beta=dts[l])
                conv.force(new.sub(u[l]).div_(dts[l]), drive[l])  # F = du/dt vs the drive e_{l+1}
                u[l] = new
        else:
            for l in layers:
                u[l] = torch.addmm(drive[l], u[l], steps_T[l], beta=dts[l])
        for l in range(n - 2):
            drive[l] = error(l + 1)
        if conv.done():
            break
    e = [error(l).reshape(cache.pre[l].shape) for l in layers] + [e_out]
    return Settled(cache.inputs, layer_outputs(net, cache), e, cache, steps=conv.finish())
