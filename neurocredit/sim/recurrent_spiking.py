"""A recurrent spiking network (recurrent LIF or CubaLIF, as snnTorch's RLeaky / RSynaptic)
that learns with e-prop, spiking DFA, or surrogate-gradient BPTT (the float reference).

Network (NIR: Input -> Affine -> [LIF|CubaLIF with a recurrent Affine]* -> Affine -> LI ->
Output), neuron steps from :mod:`neurocredit.neurons.lif` (snnTorch discretisation)::

    hidden l:  input I_l[t] = W_l z_{l−1}[t] + b_l,  recurrent R_l z_l[t−1] + c_l
               (v_l, z_l) = LIF step: v = β v + I_l + R_l z_l[t−1];  z = H(v − θ), reset to 0
               CubaLIF: i_syn = α i_syn + I_l + R_l z_l[t−1];  v = β v + i_syn
    readout:   v_out[t] = κ v_out[t−1] + W_L z_{L−1}[t] + b_L,   logits a = (1/T) Σ_t v_out[t]
               ('li');  or a LIF readout, logits a = Σ_t z_out[t] ('lif': what snnTorch's
               importer rebuilds, it has no LI node)

z_0[t] are the inputs at step t (spikes, or real values injected as currents: e.g. an image row).

Adaptive threshold (``adapt`` β > 0: ALIF, the LSNN of Bellec et al. 2018/2020), a model
property shared by every rule: the first ``adapt_fraction`` of each hidden layer's neurons
spike at A_j[t] = θ + β a_j[t], a_j[t] = ρ a_j[t−1] + (1 − ρ) z_j[t−1] (a: the neuron's own
recent firing rate per step, ρ = exp(−1/τ_a)); surrogate BPTT differentiates through a, e-prop
adds the adaptation's eligibility ε^a (:mod:`neurocredit.sim.eligibility`).

Firing-rate regularisation (``rate_reg`` c, ``rate_target`` f₀ spikes per step; Bellec et al.
2020, Methods "Firing rate regularization"), part of the objective for every rule:
E_reg = c Σ_j (f_j − f₀)², f_j the neuron's mean rate over the batch and the sequence.
Surrogate BPTT adds it to the loss; e-prop adds its learning signal 2c (f_j − f₀) to L_j[t],
with the unfiltered eligibility e_ji[t] (no readout filter κ), as in the paper.

Learning without autograd: every plastic connection (W_l, R_l, W_L) gets the rule's terms on
per-step factors (:mod:`neurocredit.sim.eligibility`)::

    pre trace  x̄[t]: the pre signal filtered by the post neuron's own decays (β; α then β for
               CubaLIF): x̄ = ∂v[t]/∂w exactly, ignoring the reset (Bellec et al. 2020)
    ψ[t]       fast-sigmoid pseudo-derivative 1/(1 + k|v' − θ|)² of the post neuron
    third      output error δy[t] = softmax(a) − y* (readout);  learning signal
               L_l[t] = B_l δy[t] (random e-prop, DFA), W_outᵀ δy[t] (symmetric e-prop),
               ⊙ ψ[t] if the pathway says ``derivative`` (spiking DFA)
    eligibility ē[t] = κ ē[t−1] + ψ[t] x̄[t]  (κ: the readout's decay; readout itself: ψ = 1, no κ)
               ``reset_trace``: x̄ replaced by the membrane trace reset with the post spike,
               ε[t] = β (1 − z[t−1]) ε[t−1] + x[t] (exact for the reset-to-zero neuron)
    δy[t]      ∂E/∂a for the LI readout's mean; ∂E/∂a · ψ_out[t] for a LIF readout's spike count
               (``error="step"``: the chip's e[t] = y[t] − y*[t] at every step, B centred: step_error)

e-prop:  ΔW = −η ⟨L[t] ē[t]⟩ (Bellec et al. 2020, Nat. Commun. 11:3625).  BPTT: autograd through
the same steps with the spike's derivative replaced by ψ (straight-through: z + s(u) − s(u)
detached, s(x) = x / (1 + k|x|), s' = ψ; Neftci, Mostafa & Zenke 2019).
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from neurocredit.neurons import lif as L
from neurocredit.rules.rule import Rule
from neurocredit.sim.eligibility import PlasticFactors, delayed, low_pass, plastic_update
from neurocredit.sim.layers import Dense
from neurocredit.sim.losses import output_error
from neurocredit.sim.network import Network, pathway_source
from neurocredit.sim.recurrent_rate import RecurrentRuleError, check_recurrent_rule

NEURONS = ("lif", "cubalif")
READOUTS = ("li", "lif")
ERRORS = ("sample", "step")


@dataclass
class RecurrentSpikingConfig:
    """Neurons of a recurrent spiking network (all written to NIR on export)."""

    neuron: str = "lif"
    beta: float = 0.9
    alpha: float = 0.8
    beta_out: float = 0.9
    threshold: float = 1.0
    dt: float = L.SNNTORCH_DT
    discretisation: str = "snntorch"
    surrogate_slope: float = 2.0
    rec_gain: float = 0.5
    input_gain: float = 1.0
    readout: str = "li"
    adapt: float = 0.0            # ALIF: threshold rise β per unit of the adaptation a (0: LIF)
    tau_adapt: float = 28.0       # ALIF: adaptation time constant τ_a in steps (ρ = e^{−1/τ_a})
    adapt_fraction: float = 1.0   # ALIF: share of each hidden layer's neurons that adapt
    reset_trace: bool = False     # e-prop: the membrane eligibility is reset with the post spike
    rate_reg: float = 0.0         # firing-rate regularisation coefficient c (0: off)
    rate_target: float = 0.02     # its target rate f₀, spikes per step
    error: str = "sample"         # 'sample': δy = softmax(a) − y* of the whole sample (Bellec et al.);
                                  # 'step': the chip's per-step error (step_error)
    target_delay: int = 0         # 'step': the target starts this many steps after the input
    blank: int = 0                # 'step': the sequence's last ``blank`` steps are silent (no target)


def cubalif_from_alpha_beta(alpha: float, beta: float, threshold: float, n: int,
                            dt: float = L.SNNTORCH_DT) -> L.CubaLIFParams:
    """CubaLIF parameters written the way snnTorch exports ``Synaptic(alpha, beta)``:
    τ_syn = dt/(1−α), τ_mem = dt/(1−β), R = τ_mem/dt, w_in = τ_syn/dt."""
    full = lambda v: torch.full((n,), float(v))  # noqa: E731
    tau_syn, tau_mem = dt / (1 - full(alpha)), dt / (1 - full(beta))
    return L.CubaLIFParams(tau_syn=tau_syn, tau_mem=tau_mem, r=tau_mem / dt,
                           v_leak=torch.zeros(n), v_threshold=full(threshold),
                           v_reset=torch.zeros(n), w_in=tau_syn / dt)


def _surrogate_shape(x: torch.Tensor, slope: float) -> torch.Tensor:
    """s(x) = x / (1 + k|x|), whose derivative is the fast-sigmoid pseudo-derivative."""
    return x / (1 + slope * x.abs())


def _decay_gain(c: L.Constants, mode: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(decay, input gain) of a leaky membrane step, v = decay·v + gain·I (leak-free part)."""
    if mode == "euler":
        return 1 - c.decay, c.decay * c.gain
    return c.decay, (c.gain if c.gain is not None else torch.ones_like(c.decay))


def _syn_decay_gain(c: L.Constants, mode: str) -> tuple[torch.Tensor, torch.Tensor]:
    if mode == "euler":
        return 1 - c.syn_decay, c.syn_decay * c.syn_gain
    return c.syn_decay, (c.syn_gain if c.syn_gain is not None else torch.ones_like(c.syn_decay))


class RecurrentSpikingNetwork(nn.Module):
    """W_l, W_L and B in a core :class:`Network`; recurrent R_l (with bias, as snnTorch's)."""

    def __init__(self, sizes: list[int], rule: Rule, config: RecurrentSpikingConfig | None = None,
                 seed: int = 0, feedback_scale: float = 1.0) -> None:
        super().__init__()
        self.config = cfg = config or RecurrentSpikingConfig()
        if cfg.neuron not in NEURONS:
            raise ValueError(f"unknown neuron '{cfg.neuron}'; known: {', '.join(NEURONS)}")
        if cfg.readout not in READOUTS:
            raise ValueError(f"unknown readout '{cfg.readout}'; known: {', '.join(READOUTS)}")
        if len(sizes) < 3:
            raise ValueError(f"a recurrent network needs at least one hidden layer, got sizes {sizes}")
        if cfg.adapt < 0 or cfg.tau_adapt <= 0 or not 0.0 <= cfg.adapt_fraction <= 1.0:
            raise ValueError(f"adaptive threshold needs adapt >= 0, tau_adapt > 0 and "
                             f"adapt_fraction in [0, 1]; got {cfg.adapt}, {cfg.tau_adapt}, "
                             f"{cfg.adapt_fraction}")
        if cfg.error not in ERRORS:
            raise ValueError(f"unknown error form '{cfg.error}'; known: {', '.join(ERRORS)}")
        if cfg.target_delay < 0 or cfg.blank < 0:
            raise ValueError(f"target_delay and blank must be >= 0 steps; got {cfg.target_delay}, {cfg.blank}")
        if cfg.rate_reg < 0 or cfg.rate_target < 0:
            raise ValueError(f"rate_reg and rate_target must be >= 0; got {cfg.rate_reg}, "
                             f"{cfg.rate_target}")
        self.net = Network(sizes, rule, activation="linear", seed=seed, feedback_scale=feedback_scale)
        check_recurrent_rule(rule, self.net.n_layers)
        fb = rule.feedback
        if fb is not None and rule.dynamics != "autograd" and fb.source == "next" \
                and self.net.n_layers > 2:
            raise RecurrentRuleError(f"rule '{rule.name}' sends the error layer by layer "
                                     "('next'); a recurrent spiking network with several hidden "
                                     "layers takes its learning signals from the output "
                                     "(e.g. eprop, dfa)")
        g = torch.Generator().manual_seed(seed + 7919)
        self.recurrent = nn.ModuleList(Dense(n, n, generator=g) for n in sizes[1:-1])
        with torch.no_grad():
            for r in self.recurrent:
                r.weight.mul_(cfg.rec_gain)
        self.disc = L.get_discretisation(cfg.discretisation)
        self.hidden_params: list = [
            L.lif_from_beta(cfg.beta, cfg.threshold, n, cfg.dt) if cfg.neuron == "lif"
            else cubalif_from_alpha_beta(cfg.alpha, cfg.beta, cfg.threshold, n, cfg.dt)
            for n in sizes[1:-1]]
        self.out_params = (L.li_from_beta(cfg.beta_out, sizes[-1], cfg.dt) if cfg.readout == "li"
                           else L.lif_from_beta(cfg.beta_out, cfg.threshold, sizes[-1], cfg.dt))
        self.seed = seed

    @property
    def rule(self) -> Rule:
        return self.net.rule

    @property
    def adaptive(self) -> bool:
        return self.config.adapt > 0 and self.config.adapt_fraction > 0

    @property
    def rho(self) -> float:
        """Decay ρ = exp(−1/τ_a) of the adaptation variable."""
        return math.exp(-1.0 / self.config.tau_adapt)

    def adapt_vector(self, l: int, device: torch.device | str = "cpu") -> torch.Tensor:
        """β_j of hidden layer ``l``: β for its first ⌊fraction·n⌉ neurons, 0 for the rest."""
        n = self.sizes[l + 1]
        beta = torch.zeros(n, device=device)
        beta[:round(self.config.adapt_fraction * n)] = self.config.adapt
        return beta

    def rate_penalty(self, rec: dict) -> torch.Tensor:
        """E_reg = c Σ_l Σ_j (f_j − f₀)², f_j = mean over time and batch of z_j (module docstring)."""
        c, f0 = self.config.rate_reg, self.config.rate_target
        return sum(c * ((z.mean((0, 1)) - f0) ** 2).sum() for z in rec["z"])

    @property
    def sizes(self) -> list[int]:
        return self.net.sizes

    @property
    def layers(self):
        return self.net.layers

    def weight_params(self) -> list[nn.Parameter]:
        return self.net.weight_params() + [p for r in self.recurrent for p in r.parameters()]

    def learned_feedback_params(self) -> list[nn.Parameter]:
        return self.net.learned_feedback_params()

    def parameters_in_update_order(self) -> list[tuple[nn.Parameter, nn.Parameter | None]]:
        return ([(lay.weight, lay.bias) for lay in self.net.layers]
                + [(r.weight, r.bias) for r in self.recurrent])

    def constants(self, device: torch.device | str = "cpu"):
        to = lambda p: type(p)(**{k: v.to(device) for k, v in vars(p).items()})  # noqa: E731
        hid = [L.constants(to(p), self.config.dt, self.disc) for p in self.hidden_params]
        return hid, L.constants(to(self.out_params), self.config.dt, self.disc)

    # -- dynamics -----------------------------------------------------------------------
    def run(self, x: torch.Tensor, surrogate: bool = False, time_major: bool = False
            ) -> dict[str, list[torch.Tensor] | torch.Tensor]:
        """Simulate the sequence x [batch, T, n_in] (or [T, batch, n_in] if ``time_major``).

        Returns 'z' (per hidden layer, [T, batch, n] spikes), 'u' (membranes before reset),
        'v_out' [T, batch, n_out].  ``surrogate``: spikes carry the pseudo-derivative for
        autograd (BPTT).
        """
        xs = x if time_major else x.transpose(0, 1)
        if xs.dim() != 3 or xs.shape[-1] != self.sizes[0]:
            raise ValueError(f"input must be [batch, T, {self.sizes[0]}], got {list(x.shape)}")
        xs = xs * self.config.input_gain if self.config.input_gain != 1.0 else xs
        T, batch = xs.shape[:2]
        hid, out_c = self.constants(xs.device)
        n_hidden = len(self.recurrent)
        vs = [xs.new_zeros(batch, n) for n in self.sizes[1:-1]]
        isyn = [xs.new_zeros(batch, n) for n in self.sizes[1:-1]]
        zs = [xs.new_zeros(batch, n) for n in self.sizes[1:-1]]
        v_out = xs.new_zeros(batch, self.sizes[-1])
        rec = {"z": [[] for _ in range(n_hidden)], "u": [[] for _ in range(n_hidden)], "v_out": [],
               "z_out": [], "u_out": [], "thr": [[] for _ in range(n_hidden)]}
        adaptive, rho = self.adaptive, self.rho
        betas = [self.adapt_vector(l, xs.device) for l in range(n_hidden)] if adaptive else []
        adapt = [xs.new_zeros(batch, n) for n in self.sizes[1:-1]]
        spiking_out = self.config.readout == "lif"
        slope = self.config.surrogate_slope
        for t in range(T):
            inp = xs[t]
            for l in range(n_hidden):
                lay, R = self.layers[l], self.recurrent[l]
                drive = [F.linear(inp, lay.weight, lay.bias), F.linear(zs[l], R.weight, R.bias)]
                c = hid[l]
                if adaptive:   # a[t] = ρ a[t−1] + (1 − ρ) z[t−1];  A[t] = θ + β a[t]
                    adapt[l] = rho * adapt[l] + (1 - rho) * zs[l]
                    c = dataclasses.replace(c, threshold=c.threshold + betas[l] * adapt[l])
                if self.config.neuron == "lif":
                    vs[l], z, u = L.lif_step(vs[l], drive, c, self.disc)
                else:
                    isyn[l], vs[l], z, u = L.cubalif_step(isyn[l], vs[l], drive, c, self.disc)
                if surrogate:
                    s = _surrogate_shape(u - c.threshold, slope)
                    z = z + s - s.detach()
                zs[l] = z
                rec["z"][l].append(z)
                rec["u"][l].append(u)
                if adaptive:
                    rec["thr"][l].append(c.threshold)
                inp = z
            lay = self.layers[-1]
            i_out = F.linear(inp, lay.weight, lay.bias)
            if spiking_out:
                v_out, z_out, u_out = L.lif_step(v_out, i_out, out_c, self.disc)
                if surrogate:
                    s = _surrogate_shape(u_out - out_c.threshold, slope)
                    z_out = z_out + s - s.detach()
                rec["z_out"].append(z_out)
                rec["u_out"].append(u_out)
            else:
                v_out = L.li_step(v_out, i_out, out_c, self.disc)
            rec["v_out"].append(v_out)
        out = {"z": [torch.stack(z) for z in rec["z"]], "u": [torch.stack(u) for u in rec["u"]],
               "v_out": torch.stack(rec["v_out"]), "z_steps": rec["z"]}
        if adaptive:   # the threshold each step's spike was compared with, [T, batch, n]
            out["thr"] = [torch.stack(a) for a in rec["thr"]]
        if spiking_out:
            out["z_out"], out["u_out"] = torch.stack(rec["z_out"]), torch.stack(rec["u_out"])
        return out

    def readout(self, rec: dict) -> torch.Tensor:
        """Logits: mean_t v_out[t] ('li') or the spike count Σ_t z_out[t] ('lif')."""
        return rec["z_out"].sum(0) if self.config.readout == "lif" else rec["v_out"].mean(0)

    def output_trace(self, rec: dict) -> torch.Tensor:
        """Per-step readout activity whose mean over time gives the logits (times T for 'lif')."""
        return rec["z_out"] if self.config.readout == "lif" else rec["v_out"]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (surrogate spikes under autograd)."""
        return self.readout(self.run(x, surrogate=torch.is_grad_enabled()))

    # -- local learning -----------------------------------------------------------------
    def membrane_input(self, l: int, signal: torch.Tensor, hid) -> tuple[torch.Tensor, float]:
        """(x, β) of hidden layer ``l``: the pre signal as the membrane receives it (input gain;
        CubaLIF: after the synaptic filter) and the membrane decay, for the reset-gated trace."""
        mode = self.disc.mode
        c = hid[l]
        if self.config.neuron == "cubalif":
            a, ga = _syn_decay_gain(c, mode)
            signal = low_pass(signal, a.mean(), ga.mean())
        decay, gain = _decay_gain(c, mode)
        return signal * gain.mean(), float(decay.mean())

    def pre_trace(self, l: int, signal: torch.Tensor, hid, out_c) -> torch.Tensor:
        """x̄[t] = ∂v[t]/∂w of connection into layer ``l`` for a pre signal [T, batch, n_pre]
        (the post neuron's membrane filter, preceded by its synaptic filter for CubaLIF)."""
        mode = self.disc.mode
        if l == len(self.recurrent):
            decay, gain = _decay_gain(out_c, mode)
            return low_pass(signal, decay.mean(), gain.mean())
        c = hid[l]
        if self.config.neuron == "cubalif":
            a, ga = _syn_decay_gain(c, mode)
            signal = low_pass(signal, a.mean(), ga.mean())
        decay, gain = _decay_gain(c, mode)
        return low_pass(signal, decay.mean(), gain.mean())

    def learning_signals(self, rec: dict, e_out: torch.Tensor, target: torch.Tensor
                         ) -> list[torch.Tensor | None]:
        """L_l[t] for every hidden layer: the pathway's source through B_l (or W_outᵀ)."""
        fb = self.rule.feedback
        n_layers = self.net.n_layers
        T = e_out.shape[0]
        out: list[torch.Tensor | None] = []
        for l in range(n_layers - 1):
            if fb is None:
                out.append(None)
                continue
            src = pathway_source(fb, l, n_layers)
            s = e_out if src in ("output", "next") else target.unsqueeze(0).expand(T, *target.shape)
            B = self.net.effective_B(l)
            if self.config.error == "step" and src in ("output", "next"):
                B = B - B.mean(dim=1, keepdim=True)   # as chip.tags.centre_feedback (step_error)
            out.append(s @ B.T)
        return out

    def rate_signal(self, z: torch.Tensor, kappa: float) -> torch.Tensor:
        """The regulariser's learning signal 2c (f_j − f₀) at every step [T, batch, n], written
        so that the readout filter κ applied to every learning signal leaves it unfiltered:
        r[t] = P − κ P (t < T−1), r[T−1] = P, whose reverse κ-filter is P at every step."""
        cfg = self.config
        p = (2 * cfg.rate_reg * (z.mean((0, 1)) - cfg.rate_target)).expand_as(z)
        if not kappa:
            return p
        r = p * (1 - kappa)
        r[-1] = p[-1]
        return r

    def step_target(self, target: torch.Tensor, T: int) -> torch.Tensor:
        """y*[t] [T, batch, n_out]: the one-hot ``target`` on steps [d, T − blank + d) (d the
        config's ``target_delay``), zero elsewhere: the chip's target stream at rate 1
        (``neurocredit.chip.session.sample_stream``)."""
        cfg = self.config
        on = torch.zeros(T, 1, 1, dtype=target.dtype, device=target.device)
        on[cfg.target_delay:max(cfg.target_delay, T - cfg.blank + cfg.target_delay)] = 1
        return on * target.unsqueeze(0)

    def step_error(self, rec: dict, target: torch.Tensor) -> torch.Tensor:
        """The chip's error at every step (``error='step'``): e[t] = y[t] − y*[t], y the readout's
        per-step activity (LIF: its spikes z_out, as the chip's error units e = g (z − y*); LI: its
        potential, as the chip's leaky readout e = r − y*), y* :meth:`step_target`.  Unlike the
        sample's softmax error it does not sum to zero over the classes, so the hidden layers'
        learning signals read B centred over the classes, as on chip
        (``neurocredit.chip.tags.centre_feedback``); the readout's eligibility is its pre trace
        (no ψ of the readout, as the chip's readout dw = u0 x1 (y3 − y2))."""
        y = self.output_trace(rec)
        return y - self.step_target(target, y.shape[0])

    def plastic_factors(self, x: torch.Tensor, target: torch.Tensor, loss: str
                        ) -> tuple[list[PlasticFactors], torch.Tensor]:
        """Factors of W_1..W_L then R_1..R_{L−1} (module docstring) and the logits."""
        cfg = self.config
        rec = self.run(x)
        xs = x.transpose(0, 1) * cfg.input_gain
        v_out = self.output_trace(rec)
        a = self.readout(rec)
        e_out = output_error(a, target, loss).unsqueeze(0).expand_as(v_out)
        hid, out_c = self.constants(x.device)
        if cfg.error == "step":
            e_out = self.step_error(rec, target)
        elif cfg.readout == "lif":
            # a = Σ_t z_out[t]: the readout's error compartment is ∂E/∂u_out[t] = ∂E/∂a · ψ_out[t]
            # (T × the mean's per-step weight, as updates average over time)
            e_out = e_out * v_out.shape[0] * L.fast_sigmoid_derivative(
                rec["u_out"], out_c.threshold, cfg.surrogate_slope)
        kappa = float(_decay_gain(out_c, self.disc.mode)[0].mean())
        fb = self.rule.feedback
        signals = self.learning_signals(rec, e_out, target)
        if cfg.rate_reg > 0:
            signals = [s if s is None else s + self.rate_signal(z, kappa)
                       for s, z in zip(signals, rec["z"])]
        thr = rec.get("thr") or [c.threshold for c in hid]
        psis = [L.fast_sigmoid_derivative(u, th, cfg.surrogate_slope)
                for u, th in zip(rec["u"], thr)]
        adapt = ([(1 - self.rho) * self.adapt_vector(l, x.device) for l in range(len(hid))]
                 if self.adaptive else [None] * len(hid))
        ones = xs.new_ones(*xs.shape[:2], 1)
        n_hidden = len(self.recurrent)
        inputs = [xs, *rec["z"]]
        factors = []
        for l in range(n_hidden + 1):
            bias_pre = self.pre_trace(l, ones, hid, out_c)
            pre = self.pre_trace(l, inputs[l], hid, out_c)
            if l == n_hidden:
                factors.append(PlasticFactors(pre, v_out, e_out, torch.ones_like(v_out), 0.0,
                                              bias_pre))
                continue
            third = signals[l]
            if third is not None and fb.derivative:
                third = third * psis[l]
            factors.append(PlasticFactors(pre, rec["z"][l], third, psis[l], kappa, bias_pre,
                                          adapt[l], self.rho))
        for l in range(n_hidden):
            f = factors[l]
            pre = self.pre_trace(l, delayed(rec["z"][l]), hid, out_c)
            factors.append(PlasticFactors(pre, f.post, f.third, f.psi, f.kappa, f.bias_pre,
                                          f.adapt, f.rho))
        if cfg.reset_trace and self.disc.reset == "zero":   # zero reset: gate by 1 − z (module doc)
            for l in range(n_hidden):
                keep = 1.0 - rec["z"][l]
                bias_in, decay = self.membrane_input(l, ones, hid)
                for f, sig in ((factors[l], inputs[l]), (factors[n_hidden + 1 + l], delayed(rec["z"][l]))):
                    f.keep, f.decay, f.bias_in = keep, decay, bias_in
                    f.pre_in = self.membrane_input(l, sig, hid)[0]
        return factors, a

    def local_updates(self, x: torch.Tensor, target: torch.Tensor, loss: str, scale: float = 1.0
                      ) -> tuple[list[tuple[torch.Tensor, torch.Tensor | None]], torch.Tensor]:
        """[(ΔW, Δb)] in :meth:`parameters_in_update_order` and the logits."""
        factors, a = self.plastic_factors(x, target, loss)
        out = [plastic_update(self.rule.forward, f, w, b, scale)
               for f, (w, b) in zip(factors, self.parameters_in_update_order())]
        return out, a


def learning_signal_alignment(net: RecurrentSpikingNetwork, x: torch.Tensor, y: torch.Tensor,
                              loss: str = "ce") -> dict[str, float]:
    """Cosine similarity, per hidden layer, between the rule's learning signal L_l[t] (filtered
    as e-prop applies it, P̃ = Σ_{t'≥t} κ^{t'−t} L[t']) and BPTT's total derivative ∂E/∂z_l[t]
    (surrogate gradient through every step), over all steps, samples and neurons.
    Also the cosine between the rule's ΔW of every connection and −∇BPTT."""
    from neurocredit.sim.eligibility import reverse_low_pass
    from neurocredit.sim.losses import loss_value, target_vector
    target = target_vector(y, net.sizes[-1], loss)
    with torch.no_grad():
        factors, _ = net.plastic_factors(x, target, loss)
        updates, _ = net.local_updates(x, target, loss)
    with torch.enable_grad():
        rec = net.run(x, surrogate=True)
        value = loss_value(net.readout(rec), y, loss) * x.shape[0]
        params = [w for w, _ in net.parameters_in_update_order()]
        steps = [z for layer in rec["z_steps"] for z in layer]
        grads = torch.autograd.grad(value, params + steps, allow_unused=True)
    T = x.shape[1]
    dzs = [torch.stack(grads[len(params) + l * T: len(params) + (l + 1) * T])
           for l in range(len(rec["z_steps"]))]
    out = {}
    cos = lambda a, b: float(F.cosine_similarity(a.flatten(), b.flatten(), dim=0))  # noqa: E731
    for l, dz in enumerate(dzs):
        f = factors[l]
        if f.third is None or dz is None:
            continue
        sig = reverse_low_pass(f.third, f.kappa) if f.kappa else f.third
        out[f"signal_cos_{l + 1}"] = cos(sig, dz * T)
    names = [f"W{i + 1}" for i in range(net.net.n_layers)] + [f"R{i + 1}" for i in range(len(net.recurrent))]
    for name, (dw, _), g in zip(names, updates, grads[:len(params)]):
        if g is not None:
            out[f"update_cos_{name}"] = cos(dw, -g)
    return out
