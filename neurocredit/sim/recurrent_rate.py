"""A rate RNN that learns with BPTT (autograd reference) or any local rule of the library.

Network (Elman RNN, hidden layers l = 1..L−1 each with its own recurrent connection)::

    a_l[t] = W_l x_{l−1}[t] + b_l + R_l x_l[t−1],    x_l[t] = f(a_l[t]),   x_l[−1] = 0
    leaky (``leak`` λ < 1):  x_l[t] = (1 − λ) x_l[t−1] + λ f(a_l[t])      (∂x/∂a = λ f'(a))
    y[t]   = W_L x_{L−1}[t] + b_L,                   logits a = (1/T) Σ_t y[t]

Local rules (no autograd) are evaluated per time step on every plastic connection — the
input connections W_l, the recurrent connections R_l and the readout W_L — by the core's term
engine (:mod:`neurocredit.sim.eligibility`), time flattened into the batch.  The error
compartments follow the rule's feedback pathway at every step (Han et al. 2020, "Extension of
Direct Feedback Alignment to Convolutional and Recurrent Neural Network", arXiv:2006.12830)::

    e_L[t] = ∂L/∂a = softmax(a) − y*                    (the readout's error, every step)
    e_l[t] = (B_l s[t]) ⊙ f'(a_l[t]),  s = e_L ('output': DFA, sparse DFA), y* ('target': DRTP),
             e_{l+1}[t] ('next', FA: layer by layer at the same step, no error through time)
    ΔW_l = −η ⟨e_l[t] ⊗ x_{l−1}[t]⟩,   ΔR_l = −η ⟨e_l[t] ⊗ x_l[t−1]⟩   (⟨·⟩: mean over t, batch)

With the mean readout the readout's update is its exact gradient.  An ``eligibility`` term
reads ψ = f'(a_l[t]) and x̄ = the connection's pre activity (rate neurons hold no state).
"""
from __future__ import annotations

import torch
from torch import nn

from neurocredit.rules.rule import Rule
from neurocredit.sim.eligibility import PlasticFactors, delayed, plastic_update
from neurocredit.sim.layers import Dense
from neurocredit.sim.losses import output_error
from neurocredit.sim.network import Network, pathway_kind, pathway_source


REC_INITS = ("uniform", "orthogonal")


class RecurrentRuleError(ValueError):
    """The rule cannot train this recurrent network (named why)."""


def check_recurrent_rule(rule: Rule, n_layers: int) -> None:
    """Refuse rules a recurrent network cannot run: error dynamics other than one pass or
    autograd, sign-symmetric or learned feedback, and transposed feedback into a layer not
    connected to the readout (e-prop's learning signal comes from the output)."""
    if rule.dynamics not in ("feedforward", "autograd"):
        raise RecurrentRuleError(f"rule '{rule.name}' needs error dynamics '{rule.dynamics}'; "
                                 "recurrent networks run one-pass feedback or autograd (BPTT)")
    fb = rule.feedback
    if rule.dynamics == "autograd" or fb is None:
        return
    for l in range(n_layers - 1):
        kind = pathway_kind(fb, l, n_layers)
        if kind in ("sign", "learned"):
            raise RecurrentRuleError(f"rule '{rule.name}': {kind} feedback is not supported in "
                                     "recurrent networks (fixed random, sparse or transposed B)")
        if kind == "transpose" and l != n_layers - 2:
            raise RecurrentRuleError(f"rule '{rule.name}': transposed feedback reaches only the "
                                     "last hidden layer of a recurrent network (B = W_outᵀ); "
                                     f"layer {l + 1} is not connected to the readout")


class RateRNN(nn.Module):
    """Input/readout weights and B in a core :class:`Network`, plus recurrent weights R_l."""

    def __init__(self, sizes: list[int], rule: Rule, activation: str = "tanh", seed: int = 0,
                 rec_gain: float = 0.5, feedback_scale: float = 1.0, rec_init: str = "uniform",
                 leak: float = 1.0) -> None:
        super().__init__()
        if rec_init not in REC_INITS:
            raise ValueError(f"unknown recurrent init '{rec_init}'; known: {', '.join(REC_INITS)}")
        if not 0.0 < leak <= 1.0:
            raise ValueError(f"leak must be in (0, 1], got {leak}")
        if len(sizes) < 3:
            raise ValueError(f"a recurrent network needs at least one hidden layer, got sizes {sizes}")
        self.net = Network(sizes, rule, activation, seed, feedback_scale)
        check_recurrent_rule(rule, self.net.n_layers)
        g = torch.Generator().manual_seed(seed + 7919)
        self.recurrent = nn.ModuleList(Dense(n, n, generator=g, bias=False) for n in sizes[1:-1])
        with torch.no_grad():
            for r in self.recurrent:
                if rec_init == "orthogonal":   # Saxe et al. 2014: all singular values = gain
                    q, _ = torch.linalg.qr(torch.randn(r.weight.shape, generator=g))
                    r.weight.copy_(q)
                r.weight.mul_(rec_gain)
        self.leak = float(leak)
        self.seed = seed

    @property
    def rule(self) -> Rule:
        return self.net.rule

    @property
    def sizes(self) -> list[int]:
        return self.net.sizes

    def weight_params(self) -> list[nn.Parameter]:
        return self.net.weight_params() + [p for r in self.recurrent for p in r.parameters()]

    def learned_feedback_params(self) -> list[nn.Parameter]:
        return self.net.learned_feedback_params()

    def run(self, x: torch.Tensor) -> dict[str, list[torch.Tensor]]:
        """x [batch, T, n_in] -> per hidden layer 'a' and 'h' stacked [T, batch, n], 'y' [T, batch, n_out]."""
        if x.dim() != 3 or x.shape[-1] != self.sizes[0]:
            raise ValueError(f"input must be [batch, T, {self.sizes[0]}], got {list(x.shape)}")
        xs = x.transpose(0, 1)
        T, batch = xs.shape[:2]
        f = self.net.act.f
        layers = self.net.layers
        hs = [xs.new_zeros(batch, n) for n in self.sizes[1:-1]]
        rec = {"a": [[] for _ in hs], "h": [[] for _ in hs], "y": []}
        for t in range(T):
            inp = xs[t]
            for l, R in enumerate(self.recurrent):
                a = layers[l](inp) + R(hs[l])
                hs[l] = f(a) if self.leak == 1.0 else (1 - self.leak) * hs[l] + self.leak * f(a)
                rec["a"][l].append(a)
                rec["h"][l].append(hs[l])
                inp = hs[l]
            rec["y"].append(layers[-1](inp))
        out = {"a": [torch.stack(a) for a in rec["a"]], "h": [torch.stack(h) for h in rec["h"]],
               "y": torch.stack(rec["y"])}
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits a = mean over time of the readout."""
        return self.run(x)["y"].mean(0)

    # -- local learning -----------------------------------------------------------------
    def local_updates(self, x: torch.Tensor, target: torch.Tensor, loss: str, scale: float = 1.0
                      ) -> tuple[list[tuple[torch.Tensor, torch.Tensor | None]], torch.Tensor]:
        """[(ΔW, Δb) for W_1..W_L, then (ΔR, None) for R_1..R_{L−1}] and the logits."""
        rule = self.rule
        rec = self.run(x)
        y = rec["y"]
        a_out = y.mean(0)
        T = y.shape[0]
        e_out = output_error(a_out, target, loss).unsqueeze(0).expand_as(y)
        n_layers = self.net.n_layers
        fb = rule.feedback
        act = self.net.act
        xs = x.transpose(0, 1)
        errors: list[torch.Tensor | None] = [None] * (n_layers - 1) + [e_out]
        psis = [act.df(a) * self.leak for a in rec["a"]]
        for l in range(n_layers - 2, -1, -1):
            if fb is None:
                errors[l] = None
                continue
            src = pathway_source(fb, l, n_layers)
            s = {"next": errors[l + 1], "output": e_out,
                 "target": target.unsqueeze(0).expand(T, *target.shape)}[src]
            e = s @ self.net.effective_B(l).T
            errors[l] = e * psis[l] if fb.derivative else e
        inputs = [xs, *rec["h"]]
        out = []
        for l, layer in enumerate(self.net.layers):
            hidden = l < n_layers - 1
            post = rec["h"][l] if hidden else y
            psi = psis[l] if hidden else torch.ones_like(y)
            f = PlasticFactors(pre=inputs[l], post=post, third=errors[l], psi=psi)
            out.append(plastic_update(rule.forward, f, layer.weight, layer.bias, scale))
        for l, R in enumerate(self.recurrent):
            f = PlasticFactors(pre=delayed(rec["h"][l]), post=rec["h"][l], third=errors[l],
                               psi=psis[l])
            out.append(plastic_update(rule.forward, f, R.weight, None, scale))
        return out, a_out

    def parameters_in_update_order(self) -> list[tuple[nn.Parameter, nn.Parameter | None]]:
        """(weight, bias) pairs in the order :meth:`local_updates` returns them."""
        return ([(lay.weight, lay.bias) for lay in self.net.layers]
                + [(r.weight, None) for r in self.recurrent])

