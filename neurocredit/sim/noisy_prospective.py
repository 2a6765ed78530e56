"""Phaseless alignment learning (PAL): phase-free dynamics with always-on plasticity.

Max, Kriener, Pineda García, Nowotny, Jaras, Senn & Petrovici 2024, "Learning efficient
backprojections across cortical hierarchies in real time" (arXiv:2212.10249; authors' code:
github.com/kma-code/Phaseless-Alignment-Learning).

Neurons are prospective (latent equilibrium, Haider et al. 2021): a leaky membrane
τ du_l/dt = −u_l + I_l with the prospective potential ŭ_l = u_l + τ du_l/dt, which equals
the instantaneous input I_l, so rates r̆_l = f(ŭ_l) follow the input without lag.  Hidden
neurons carry Ornstein-Uhlenbeck noise ξ_l in their soma,

    dξ_l = −ξ_l dt/τ_ξ + σ sqrt(2 dt/τ_ξ) N(0, 1),   I_l = W_l r̆_{l−1} + b_l + ξ_l,

the output error is e_L = ∂L/∂ŭ_L and hidden errors come through the feedback weights,
e_l = f'(ŭ_l) ⊙ B_l e_{l+1}.  Each rate is high-pass filtered,
r_HP ← r_HP + Δr̆ − (dt/τ_HP) r_HP.  At every time step, with no phases:

    dW_l = −η dt e_l ⊗ r̆_{l−1}                (the rule's forward terms)
    dB_l =  η_B dt (ξ_l ⊗ r_HP,l+1 − α B_l)      (the rule's feedback terms: post = ξ_l,
                                                  pre = r_HP of layer l+1, weight = B_l)

The noise ξ_l reaches layer l+1 through W_{l+1}, so E[ξ_l ⊗ r_HP,l+1] ∝ (D W_{l+1} D)ᵀ and
B_l aligns with W_{l+1}ᵀ, while the high pass removes the slow, input-driven part of the
rate.  Every update is evaluated with :func:`neurocredit.sim.updates.connection_update`.

Two ways to run it:

* :func:`train_pal` -- the continuous-time driver: inputs are presented for ``steps`` time
  steps each and W and B change at every step (used by the example and the benchmark);
* the error scheme ``pal`` -- for the batch trainer (``neurocredit train --rule pal``): a
  batch is presented for ``steps`` time steps with B plastic at every step; W changes
  once per batch with the errors of the last step.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from neurocredit.data import Dataset
from neurocredit.sim.dynamics import Settled, register_scheme
from neurocredit.sim.losses import loss_value, output_error, target_vector
from neurocredit.sim.metrics import angle
from neurocredit.sim.network import ForwardCache, Network
from neurocredit.sim.relaxation import apply_plastic_grad
from neurocredit.sim.updates import connection_update


def _mm_outer(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    return p.flatten(1).T @ q.flatten(1)


@dataclass
class PALParams:
    dt: float = 0.05
    tau: float = 1.0        # membrane time constant
    tau_xi: float = 0.1     # OU noise correlation time
    tau_hp: float = 0.1     # high-pass filter time constant
    noise_std: float = 0.3  # std of the OU noise ξ
    steps: int = 20         # time steps per presented input

    @classmethod
    def from_rule(cls, net: Network) -> "PALParams":
        r = net.rule
        p = cls(**{k: type(getattr(cls, k))(r.param(k, getattr(cls, k)))
                   for k in ("dt", "tau", "tau_xi", "tau_hp", "noise_std", "steps")})
        if min(p.dt, p.tau, p.tau_xi, p.tau_hp) <= 0 or p.steps < 1 or p.noise_std < 0:
            raise ValueError(f"rule '{r.name}': PAL time constants, dt and steps must be positive")
        if p.dt > min(p.tau, p.tau_xi, p.tau_hp):
            raise ValueError(f"rule '{r.name}': dt = {p.dt} exceeds a time constant "
                             f"(tau {p.tau}, tau_xi {p.tau_xi}, tau_hp {p.tau_hp})")
        return p


class PALState:
    """Neuron state of a batch of network copies that share W and B."""

    def __init__(self, net: Network, batch: int, params: PALParams,
                 generator: torch.Generator | None = None) -> None:
        self.net, self.p, self.gen = net, params, generator
        dev = net.layers[0].weight.device
        dtype = net.layers[0].weight.dtype
        shapes = [(batch, *layer.out_shape) for layer in net.layers]
        self.u = [torch.zeros(s, device=dev, dtype=dtype) for s in shapes]
        self.xi = [torch.zeros(s, device=dev, dtype=dtype) for s in shapes[:-1]]
        self.rate = [torch.zeros(s, device=dev, dtype=dtype) for s in shapes]
        self.r_hp = [torch.zeros(s, device=dev, dtype=dtype) for s in shapes]
        self.u_breve = [torch.zeros(s, device=dev, dtype=dtype) for s in shapes]
        self.errors: list[torch.Tensor] = []
        self.inputs: list[torch.Tensor] = []

    def _noise_step(self) -> None:
        p = self.p
        a = p.dt / p.tau_xi
        for l, xi in enumerate(self.xi):
            w = torch.randn(xi.shape, generator=self.gen, device="cpu").to(xi)
            self.xi[l] = xi * (1 - a) + p.noise_std * math.sqrt(2 * a) * w

    def step(self, x: torch.Tensor, target: torch.Tensor, loss: str, noise: bool = True) -> None:
        """Advance every neuron by dt (noise, membranes, prospective rates, errors, high pass)."""
        net, p = self.net, self.p
        n = net.n_layers
        if noise:
            self._noise_step()
        h = x
        self.inputs = []
        for l, layer in enumerate(net.layers):
            self.inputs.append(h)
            drive = layer(h)
            if l < n - 1 and noise:
                drive = drive + self.xi[l]
            u_old = self.u[l]
            self.u[l] = u_old + (p.dt / p.tau) * (drive - u_old)
            self.u_breve[l] = u_old + p.tau * (self.u[l] - u_old) / p.dt   # = drive
            new_rate = net.act.f(self.u_breve[l]) if l < n - 1 else self.u_breve[l]
            self.r_hp[l] = self.r_hp[l] + (new_rate - self.rate[l]) - (p.dt / p.tau_hp) * self.r_hp[l]
            self.rate[l] = new_rate
            h = new_rate
        errors = [output_error(self.u_breve[-1], target, loss)]
        for l in range(n - 2, -1, -1):
            back = (errors[0].flatten(1) @ net.effective_B(l).T).reshape(self.u_breve[l].shape)
            if net.rule.feedback.derivative:
                back = back * net.act.df(self.u_breve[l])
            errors.insert(0, back)
        self.errors = errors

    def forward_deltas(self) -> tuple[list[torch.Tensor], list[torch.Tensor | None]]:
        """The rule's forward terms on the current state: ΔW_l, Δb_l (per unit time)."""
        net = self.net
        terms = net.rule.forward
        dws, dbs = [], []
        for l, layer in enumerate(net.layers):
            pre, post, third = self.inputs[l], self.rate[l], self.errors[l]
            dws.append(connection_update(terms, layer.outer, pre, post, third, None, layer.weight))
            if layer.bias is not None:
                ones = torch.ones(pre.shape[0], 1, device=pre.device, dtype=pre.dtype)
                db = connection_update(terms, _mm_outer, ones, post, third, None,
                                       layer.bias.unsqueeze(1))
                dbs.append(db.squeeze(1))
            else:
                dbs.append(None)
        return dws, dbs

    def feedback_deltas(self) -> dict[int, torch.Tensor]:
        """The rule's feedback terms on B_l's synapses: post = ξ_l, pre = r_HP,l+1, weight = B_l."""
        net = self.net
        terms = net.rule.feedback.terms
        return {l: connection_update(terms, _mm_outer, self.r_hp[l + 1].flatten(1),
                                     self.xi[l].flatten(1), None, None, net.B(l))
                for l in range(net.n_layers - 1) if net.B(l) is not None}


@register_scheme("pal")
def pal_scheme(net: Network, x: torch.Tensor, target: torch.Tensor, loss: str) -> Settled:
    """Batch-trainer form: present x for ``steps`` steps, B plastic at every step (its summed
    change is handed to the optimiser as B.grad), errors of the last step for W."""
    p = PALParams.from_rule(net)
    state = PALState(net, x.shape[0], p)
    total = {l: torch.zeros_like(net.B(l)) for l in range(net.n_layers - 1)}
    for _ in range(p.steps):
        state.step(x, target, loss)
        for l, d in state.feedback_deltas().items():
            total[l] += d / p.steps
    for l, d in total.items():
        apply_plastic_grad(net.B(l), d)
    cache = ForwardCache(state.inputs, [u.clone() for u in state.u_breve])
    return Settled(state.inputs, state.rate, state.errors, cache)


@dataclass
class PALRun:
    """History of a :func:`train_pal` run: per logged step, time, angles per hidden layer, loss."""

    steps: list[int] = field(default_factory=list)
    angles: list[list[float]] = field(default_factory=list)
    test_loss: list[float] = field(default_factory=list)
    test_acc: list[float] = field(default_factory=list)


def test_metrics(net: Network, data: Dataset, loss: str) -> tuple[float, float | None]:
    with torch.no_grad():
        out = net(data.x_test)
        value = float(loss_value(out, data.y_test, loss))
        acc = float((out.argmax(1) == data.y_test).float().mean()) if data.n_classes else None
    return value, acc


def feedback_angles(net: Network) -> list[float]:
    """∠(B_l, W_{l+1}ᵀ) in degrees for every hidden layer."""
    return [angle(net.B(l).detach(), net.weight_matrix(l + 1).detach().T)
            for l in range(net.n_layers - 1)]


def train_pal(net: Network, data: Dataset, epochs: int, lr: float, lr_feedback: float,
              batch_size: int = 16, plastic_feedback: bool = True, log_every: int = 10,
              seed: int = 0, loss: str | None = None) -> PALRun:
    """Continuous-time PAL training: every time step changes W (η = ``lr``) and, if
    ``plastic_feedback``, B (η_B = ``lr_feedback``); with it off the same dynamics are
    feedback alignment (B fixed).  The state (membranes, noise, filters) carries over from one
    input to the next: nothing is reset, there are no phases."""
    p = PALParams.from_rule(net)
    loss = loss or ("ce" if data.n_classes else "mse")
    gen = torch.Generator().manual_seed(seed)
    state = PALState(net, batch_size, p, gen)
    run = PALRun()
    n = data.x_train.shape[0]
    k = 0
    with torch.no_grad():
        for _ in range(epochs):
            perm = torch.randperm(n, generator=gen)
            for i in range(0, n - batch_size + 1, batch_size):
                idx = perm[i:i + batch_size]
                xb = data.x_train[idx]
                target = target_vector(data.y_train[idx], data.n_out, loss)
                for _ in range(p.steps):
                    state.step(xb, target, loss)
                    dws, dbs = state.forward_deltas()
                    for layer, dw, db in zip(net.layers, dws, dbs):
                        layer.weight += lr * p.dt * dw
                        if db is not None:
                            layer.bias += lr * p.dt * db
                    if plastic_feedback:
                        for l, d in state.feedback_deltas().items():
                            net.B(l).add_(lr_feedback * p.dt * d)
                if not all(torch.isfinite(l.weight).all() for l in net.layers):
                    raise FloatingPointError(f"PAL diverged at batch {k} (lr {lr}, lr_feedback "
                                             f"{lr_feedback}); lower the learning rates")
                if k % log_every == 0:
                    value, acc = test_metrics(net, data, loss)
                    run.steps.append(k)
                    run.angles.append(feedback_angles(net))
                    run.test_loss.append(value)
                    if acc is not None:
                        run.test_acc.append(acc)
                k += 1
    return run
