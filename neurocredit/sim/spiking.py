"""A spiking MLP that learns with any local rule of the library, on the core's update engine.

Network (NIR graph Input -> [Affine -> LIF]* -> Affine -> LI -> Output)::

    hidden l:  v_l[t], z_l[t] = LIF step (neurocredit.neurons.lif) with input W_l z_{l-1}[t] + b_l
    readout:   v_L[t] = LI step with input W_L z_{L-1}[t] + b_L;   a = (1/T) Σ_t v_L[t]

Input coding (``coding='rate'``): pixel intensities x ∈ [0, 1] become Bernoulli spike trains,
z_0[t] ~ Bernoulli(max_rate · x), T steps, seeded.  ``coding='latency'``: one spike per input
at step ⌊(1 − x)(T − 1)⌋ for x > threshold 0.05 (brighter = earlier), none otherwise.

Learning (no autograd).  The rule's own :class:`~neurocredit.rules.Term` s are evaluated by
the core's :func:`neurocredit.sim.updates.forward_updates` / ``feedback_updates`` on per-step
factors, the batch and time axes flattened together (T·B samples)::

    pre[t]    x̄_{l-1}[t] = λ_l x̄_{l-1}[t-1] + z_{l-1}[t]   (pre trace, λ_l = the post layer's β)
    post[t]   ȳ_l[t]     = λ_l ȳ_l[t-1] + z_l[t]            (post trace)
    third[t]  output:  e_L = ∂L/∂a (softmax(a) − y* for 'ce'), the same at every step
              hidden:  e_l[t] = (B_l s[t]) ⊙ σ'(v'_l[t])   (⊙ σ' only if Feedback.derivative)
              s = e_{l+1}[t] ('next', FA), e_L ('output', DFA / sparse DFA), y* ('target', DRTP)
    ΔW_l = η Σ_k c_k Π factors  averaged over the T·B samples (e.g. −η ⟨e_l[t] ⊗ x̄_{l-1}[t]⟩)

σ' is the fast-sigmoid surrogate 1/(1 + k|v' − θ|)² of the post neuron's membrane before reset
(Zenke & Ganguli 2018).  For the readout layer the trace with λ = β_out makes the update the
exact gradient of the loss of a (v_L is linear in x̄).  This is the three-factor form
(pre trace × post error compartment) that a Loihi 3-factor rule computes.

Weights and feedback matrices live in a core :class:`~neurocredit.sim.network.Network`
(``activation='linear'``), so B is built exactly as for the rate networks.
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from neurocredit.data import Dataset
from neurocredit.neurons import lif as L
from neurocredit.rules.rule import Rule
from neurocredit.sim.dynamics import Settled
from neurocredit.sim.losses import loss_value, output_error, target_vector
from neurocredit.sim.network import Network, pathway_source
from neurocredit.sim.updates import (Updates, apply_sgd_step, feedback_updates, forward_updates,
                                     sgd_fusable)

CODINGS = ("rate", "latency")
READOUTS = ("li", "lif")
OPTIMIZERS = ("sgd", "adam")
SCHEDULES = ("constant", "cosine")


class SpikingRuleError(ValueError):
    """The rule cannot drive a spiking network (non-local pathway, unknown dynamics)."""


@dataclass
class SpikingConfig:
    """Neuron, coding and surrogate settings of a spiking MLP (all exported to NIR)."""

    steps: int = 20
    dt: float = L.SNNTORCH_DT
    beta: float = 0.9
    beta_out: float = 0.9
    threshold: float = 1.0
    discretisation: str = "snntorch"
    coding: str = "rate"
    max_rate: float = 1.0
    surrogate_slope: float = 2.0
    weight_gain: float = 1.0
    readout: str = "li"          # 'li': a = mean_t v_out[t];  'lif': a = Σ_t z_out[t] (spike count)


def check_rule(rule: Rule) -> None:
    """Refuse rules the spiking backend cannot train, naming why.  (Any rule's network can be
    built, simulated and exported; only ``local_updates`` needs a one-pass local rule.)"""
    if rule.dynamics != "feedforward":
        raise SpikingRuleError(f"rule '{rule.name}' needs error dynamics '{rule.dynamics}'; the "
                               "spiking backend runs one-pass feedback pathways only")
    fb = rule.feedback
    if fb is not None and (fb.kind in ("transpose", "sign") or fb.module_size not in (None, 1)):
        raise SpikingRuleError(f"rule '{rule.name}' is not local (its pathway reads W_(l+1)); "
                               "the spiking backend runs local rules only")


class SpikingNetwork(nn.Module):
    """LIF hidden layers, an LI readout, the rule's feedback matrices (see module docstring)."""

    def __init__(self, sizes: list[int], rule: Rule, config: SpikingConfig | None = None,
                 seed: int = 0, feedback_scale: float = 1.0) -> None:
        super().__init__()
        self.config = cfg = config or SpikingConfig()
        if cfg.coding not in CODINGS:
            raise ValueError(f"unknown coding '{cfg.coding}'; known: {', '.join(CODINGS)}")
        if cfg.readout not in READOUTS:
            raise ValueError(f"unknown readout '{cfg.readout}'; known: {', '.join(READOUTS)}")
        if cfg.steps < 1:
            raise ValueError(f"steps must be >= 1, got {cfg.steps}")
        self.net = Network(sizes, rule, activation="linear", seed=seed, feedback_scale=feedback_scale)
        with torch.no_grad():
            for layer in self.net.layers:
                layer.weight.mul_(cfg.weight_gain)
        self.disc = L.get_discretisation(cfg.discretisation)
        self.hidden_params = [L.lif_from_beta(cfg.beta, cfg.threshold, n, cfg.dt)
                              for n in self.sizes[1:-1]]
        self.out_params: L.LIParams | L.LIFParams = (
            L.li_from_beta(cfg.beta_out, self.sizes[-1], cfg.dt) if cfg.readout == "li"
            else L.lif_from_beta(cfg.beta_out, cfg.threshold, self.sizes[-1], cfg.dt))
        self.seed = seed

    # -- structure ------------------------------------------------------------------
    @property
    def rule(self) -> Rule:
        return self.net.rule

    @property
    def sizes(self) -> list[int]:
        return self.net.sizes

    @property
    def layers(self):
        return self.net.layers

    def trace_decays(self) -> list[torch.Tensor]:
        """λ_l of each connection's pre trace: the β of its post layer (snnTorch form; the
        layer mean if β differs between neurons, as a pre trace is shared by all posts)."""
        return [L.constants(p, self.config.dt, L.PRESETS["snntorch"]).decay.mean()
                for p in [*self.hidden_params, self.out_params]]

    # -- coding ---------------------------------------------------------------------
    def encode(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """x [batch, n_in] in [0, 1] -> spikes [T, batch, n_in] (module docstring)."""
        cfg = self.config
        x = x.flatten(1).clamp(0, 1)
        T = cfg.steps
        if cfg.coding == "rate":
            u = torch.rand((T, *x.shape), generator=generator).to(x.device)
            return (u < cfg.max_rate * x).to(torch.float32)
        t_spike = torch.floor((1 - x) * (T - 1)).long()
        steps = torch.arange(T, device=x.device).view(T, 1, 1)
        return ((steps == t_spike.unsqueeze(0)) & (x > 0.05).unsqueeze(0)).to(torch.float32)

    # -- dynamics -------------------------------------------------------------------
    def run(self, spikes: torch.Tensor, record: bool = True) -> dict[str, list[torch.Tensor]]:
        """Simulate T steps on input spikes [T, batch, n_in].

        Returns per-layer lists over time: 'z' (spikes, z[0] the input), 'u' (hidden membrane
        before reset), 'v_out' (readout membrane), 'z_out' (readout spikes, 'lif' readout).
        Same operations, in the same order, as :func:`neurocredit.nir.simulate.simulate` on
        the exported graph (the values of :meth:`run_tensors`, as lists of views).
        """
        rec = self.run_tensors(spikes)
        return {"z": [list(z.unbind(0)) for z in rec["z"]],
                "u": [list(u.unbind(0)) for u in rec["u"]] if record else [[] for _ in rec["u"]],
                "v_out": list(rec["v_out"].unbind(0)),
                "z_out": list(rec["z_out"].unbind(0)) if "z_out" in rec else []}

    def run_tensors(self, spikes: torch.Tensor, record: bool = True) -> dict:
        """Simulate T steps on input spikes [T, batch, n_in].

        One loop over time; at each step every layer's product z W_lᵀ + b_l and its neurons'
        step (:func:`neurocredit.neurons.lif.lif_step_into`, hand-fused) write into
        preallocated buffers that stay in cache, so the per-step cost is the arithmetic.
        Returns tensors [T, batch, n]: 'v_out' (readout membrane), 'z_out' for a 'lif'
        readout, and when ``record`` 'z' (per layer, z[0] the input) and 'u' (hidden
        membrane before reset).  Same values, bit for bit, as stepping ``lif_step``.
        """
        T, batch = spikes.shape[:2]
        dev, dtype = spikes.device, spikes.dtype
        cfg = self.config
        if _tracked(spikes, *self.parameters()):   # autograd: the per-step functional form
            return self._run_functional(spikes)
        hid = [L.constants(_to(p, dev), cfg.dt, self.disc) for p in self.hidden_params]
        out_c = L.constants(_to(self.out_params, dev), cfg.dt, self.disc)
        zero = [c.v_reset is not None and not bool(c.v_reset.any()) for c in [*hid, out_c]]
        sizes = self.sizes[1:-1]
        new = lambda n, *lead: torch.empty(*lead, batch, n, device=dev, dtype=dtype)  # noqa: E731
        zs = [new(n, T) if record else new(n) for n in sizes]
        us = [new(n, T) if record else new(n) for n in sizes]
        cur = [new(n) for n in self.sizes[1:]]
        vs = [[torch.zeros(batch, n, device=dev, dtype=dtype), new(n)] for n in self.sizes[1:]]
        n_out = self.sizes[-1]
        v_rec = new(n_out, T)
        spiking_out = cfg.readout == "lif"
        z_out = new(n_out, T) if spiking_out else None
        u_out = new(n_out) if spiking_out else None
        li_fused = self.disc.mode == "snntorch" and out_c.gain is None and out_c.v_leak is None
        for t in range(T):
            z = spikes[t]
            for l, c in enumerate(hid):
                layer = self.layers[l]
                i = torch.mm(z, layer.weight.T, out=cur[l])
                if layer.bias is not None:
                    i.add_(layer.bias)
                v_prev, v_next = vs[l][t % 2], vs[l][(t + 1) % 2]
                _, z, _ = L.lif_step_into(v_prev, i, c, self.disc, us[l][t] if record else us[l],
                                          zs[l][t] if record else zs[l], v_next, zero[l])
            layer = self.layers[-1]
            i = torch.mm(z, layer.weight.T, out=cur[-1])
            if layer.bias is not None:
                i.add_(layer.bias)
            v_prev = vs[-1][0] if t == 0 else v_rec[t - 1]
            if spiking_out:
                L.lif_step_into(vs[-1][t % 2], i, out_c, self.disc, u_out, z_out[t],
                                vs[-1][(t + 1) % 2], zero[-1])
                v_rec[t].copy_(vs[-1][(t + 1) % 2])
            elif li_fused:   # v[t] = β·v[t−1] + I[t], written in place
                torch.mul(v_prev, out_c.decay, out=v_rec[t]).add_(i)
            else:
                v_rec[t].copy_(L.li_step(v_prev, i, out_c, self.disc))
        rec: dict = {"v_out": v_rec, "z": [spikes, *zs] if record else [], "u": us if record else []}
        if spiking_out:
            rec["z_out"] = z_out
        return rec

    def _run_functional(self, spikes: torch.Tensor) -> dict:
        """run_tensors with autograd recording (e.g. a BPTT reference through the readout)."""
        T = spikes.shape[0]
        dev = spikes.device
        cfg = self.config
        hid = [L.constants(_to(p, dev), cfg.dt, self.disc) for p in self.hidden_params]
        out_c = L.constants(_to(self.out_params, dev), cfg.dt, self.disc)
        z = spikes
        rec: dict = {"z": [spikes], "u": []}
        for l, c in enumerate(hid):
            z, u, _ = L.lif_sequence(_current(self.layers[l], z), c, self.disc)
            rec["z"].append(z)
            rec["u"].append(u)
        i_out = _current(self.layers[-1], z)
        if cfg.readout == "lif":
            rec["z_out"], _, rec["v_out"] = L.lif_sequence(i_out, out_c, self.disc, keep_v=True)
        else:
            rec["v_out"] = L.li_sequence(i_out, out_c, self.disc)
        return rec

    def readout(self, rec: dict) -> torch.Tensor:
        """a = mean_t v_out[t] ('li') or the output spike count Σ_t z_out[t] ('lif')."""
        if self.config.readout == "lif":
            return torch.stack(rec["z_out"]).sum(0)
        return torch.stack(rec["v_out"]).mean(0)

    def forward(self, spikes: torch.Tensor) -> torch.Tensor:
        return self.readout_tensors(self.run_tensors(spikes, record=False))

    # -- learning -------------------------------------------------------------------
    def settle(self, spikes: torch.Tensor, target: torch.Tensor, loss: str) -> tuple[Settled, torch.Tensor]:
        """Per-step factors of every connection, flattened over (T, batch).

        A signal that is the same at every step (the output error e_L, the target) is sent
        through B once and broadcast over time; a trace shared by two connections (post
        trace of layer l = pre trace of layer l+1 when their λ agree) is computed once.
        """
        rec = self.run_tensors(spikes)
        a = self.readout_tensors(rec)
        T, batch = spikes.shape[:2]
        lambdas = self.trace_decays()
        traces: dict[tuple[int, float], torch.Tensor] = {}

        def trace(l: int, lam: torch.Tensor) -> torch.Tensor:   # trace of rec["z"][l]
            key = (l, float(lam))
            if key not in traces:
                traces[key] = _trace(rec["z"][l], lam)
            return traces[key]

        pre_traces = [trace(l, lambdas[l]) for l in range(self.net.n_layers)]
        post_traces = [trace(l + 1, lambdas[l]) for l in range(self.net.n_layers - 1)]
        e_out = output_error(a, target, loss)
        errors: list[torch.Tensor] = [e_out.unsqueeze(0).expand(T, *e_out.shape)]
        fb = self.rule.feedback
        cfg = self.config
        for l in range(self.net.n_layers - 2, -1, -1):
            src = pathway_source(fb, l, self.net.n_layers)
            s = {"next": errors[0], "output": errors[-1],
                 "target": target.unsqueeze(0).expand(T, *target.shape)}[src]
            if s.stride(0) == 0:   # constant over time: one product, broadcast
                e = (s[0] @ self.net.B(l).T).unsqueeze(0).expand(T, batch, -1)
            else:
                e = s @ self.net.B(l).T
            if fb.derivative:
                u = rec["u"][l]
                thr = self.hidden_params[l].v_threshold.to(u.device)
                e = e * L.fast_sigmoid_derivative(u, thr, cfg.surrogate_slope)
            errors.insert(0, e)
        flat = lambda t: t.reshape(T * batch, *t.shape[2:])  # noqa: E731
        outputs = [flat(p) for p in post_traces] + [flat(rec["v_out"])]
        state = Settled(inputs=[flat(p) for p in pre_traces], outputs=outputs,
                        errors=[flat(e) for e in errors], cache=None)
        return state, a

    def readout_tensors(self, rec: dict) -> torch.Tensor:
        """:meth:`readout` on :meth:`run_tensors`' record."""
        if self.config.readout == "lif":
            return rec["z_out"].sum(0)
        return rec["v_out"].mean(0)

    def local_updates(self, spikes: torch.Tensor, target: torch.Tensor, loss: str,
                      generator: torch.Generator | None = None) -> tuple[Updates, torch.Tensor]:
        """ΔW, Δb (and ΔB) from the rule's terms on per-step factors; returns (updates, a)."""
        check_rule(self.rule)
        state, a = self.settle(spikes, target, loss)
        dws, dbs = forward_updates(self.net, state)
        return Updates(dws, dbs, feedback_updates(self.net, state, generator)), a

    @torch.no_grad()
    def train_step(self, spikes: torch.Tensor, target: torch.Tensor, opt: torch.optim.Optimizer,
                   loss: str, generator: torch.Generator | None = None) -> torch.Tensor:
        """One local-rule update on a batch of input spikes; returns the readout a (before it).

        Plain torch SGD is fused into the update GEMMs (:func:`~neurocredit.sim.updates.
        apply_sgd_step`); any other optimiser receives −Δ as the gradient."""
        check_rule(self.rule)
        if sgd_fusable(opt):
            state, a = self.settle(spikes, target, loss)
            apply_sgd_step(self.net, opt, state, generator)
            return a
        upd, a = self.local_updates(spikes, target, loss, generator)
        for layer, dw, db in zip(self.layers, upd.weight, upd.bias):
            layer.weight.grad = -dw
            if db is not None:
                layer.bias.grad = -db
        for l, dB in upd.feedback.items():
            self.net.B(l).grad = -dB
        opt.step()
        return a


def _current(layer: nn.Module, z: torch.Tensor) -> torch.Tensor:
    """z [T, batch, n_in] -> W z[t] + b for every t, as one GEMM (same values as per step)."""
    T, batch = z.shape[:2]
    i = z.reshape(T * batch, -1) @ layer.weight.T
    if layer.bias is not None:
        i = i + layer.bias
    return i.reshape(T, batch, -1)


def _tracked(*ts: torch.Tensor) -> bool:
    return torch.is_grad_enabled() and any(t.requires_grad for t in ts)


def _to(p, device):
    return type(p)(**{k: v.to(device) for k, v in vars(p).items()})


def _trace(z: torch.Tensor, lam: torch.Tensor) -> torch.Tensor:
    """x̄[t] = λ x̄[t−1] + z[t] over the leading time axis (in place, preallocated)."""
    out = torch.empty_like(z)
    acc = torch.zeros_like(z[0])
    lam = lam.to(z.device)
    for t in range(z.shape[0]):
        acc = torch.mul(acc, lam, out=out[t]).add_(z[t])
    return out


# --------------------------------------------------------------------------- training
@dataclass
class SpikingTrainConfig:
    epochs: int = 20
    batch_size: int = 32
    lr: float = 0.005
    momentum: float = 0.9
    loss: str = "ce"
    seed: int = 0
    feedback_scale: float = 1.0
    spiking: SpikingConfig = field(default_factory=SpikingConfig)
    optimizer: str = "sgd"       # 'sgd' (momentum, fused into the update GEMMs) or 'adam' (Kingma & Ba
                                 # 2015; receives −Δ of the local rule as its gradient)
    schedule: str = "constant"   # 'constant' or 'cosine': lr_e = lr (1 + cos(π (e−1)/E)) / 2 per epoch e of E
    weight_decay: float = 0.0    # L2 on the forward weights and biases (torch's weight_decay: −Δ + wd·W is
                                 # the optimiser's gradient; not on learned feedback, whose rule has its own)


TRAINING_TABLE = "spiking_training.toml"
"""Measured trainer settings per data set (``mappings/``; one table per data set)."""


def trainer_settings(data_name: str) -> dict:
    """The measured float spiking trainer settings of ``data_name``: the ``[<data_name>]`` table of
    ``mappings/spiking_training.toml`` (SpikingTrainConfig and SpikingConfig field names)."""
    import tomllib

    from neurocredit.io_utils import data_dir
    with open(data_dir("mappings") / TRAINING_TABLE, "rb") as fh:
        table = tomllib.load(fh)
    if data_name not in table:
        raise ValueError(f"mappings/{TRAINING_TABLE} has no [{data_name}] table (known: {', '.join(table)})")
    return dict(table[data_name])


def train_config(settings: dict, **fixed) -> SpikingTrainConfig:
    """A SpikingTrainConfig from flat ``settings`` (e.g. :func:`trainer_settings`' table): keys naming
    SpikingTrainConfig fields set those, keys naming SpikingConfig fields set its ``spiking``;
    ``fixed`` (either kind, e.g. ``seed``, ``steps``, ``readout``) overrides ``settings``."""
    train_keys = set(SpikingTrainConfig.__dataclass_fields__) - {"spiking"}
    net_keys = set(SpikingConfig.__dataclass_fields__)
    merged = {**settings, **fixed}
    unknown = set(merged) - train_keys - net_keys
    if unknown:
        raise ValueError(f"unknown spiking trainer settings {sorted(unknown)}; known: "
                         f"{', '.join(sorted(train_keys | net_keys))}")
    return SpikingTrainConfig(**{k: v for k, v in merged.items() if k in train_keys},
                              spiking=SpikingConfig(**{k: v for k, v in merged.items() if k in net_keys}))


@dataclass
class SpikingResult:
    net: SpikingNetwork
    config: SpikingTrainConfig
    history: list[dict] = field(default_factory=list)

    @property
    def final(self) -> dict:
        return self.history[-1] if self.history else {}

    def to_json(self) -> dict:
        return {"rule": self.net.rule.name, "sizes": self.net.sizes, "config": asdict(self.config),
                "history": self.history}


def evaluate_figures(net: SpikingNetwork, x: torch.Tensor, y: torch.Tensor, seed: int = 12345,
                     batch: int = 512) -> dict[str, float]:
    """Test figures with a fixed encoding seed, decided as on the chip
    (:func:`neurocredit.neurons.decision.decision_figures`): a 'lif' readout answers the most
    output spikes, a tie broken by the output membrane v after the last step ('test_acc'; also
    'test_acc_counts', plain argmax of the counts, and 'test_tied', the tied fraction); an 'li'
    readout answers argmax of a = mean_t v ('test_acc')."""
    from neurocredit.neurons.decision import decision_figures

    g = torch.Generator().manual_seed(seed)
    outs, v_ends = [], []
    with torch.no_grad():
        for i in range(0, x.shape[0], batch):
            rec = net.run_tensors(net.encode(x[i:i + batch], g), record=False)
            outs.append(net.readout_tensors(rec))
            v_ends.append(rec["v_out"][-1])
    spiking = net.config.readout == "lif"
    return decision_figures(torch.cat(outs), torch.cat(v_ends) if spiking else None, y)


def evaluate(net: SpikingNetwork, x: torch.Tensor, y: torch.Tensor, seed: int = 12345,
             batch: int = 512) -> float:
    """Test accuracy with a fixed encoding seed (:func:`evaluate_figures`' 'test_acc')."""
    return evaluate_figures(net, x, y, seed, batch)["test_acc"]


def train_spiking(rule: Rule, data: Dataset, hidden: list[int],
                  cfg: SpikingTrainConfig | None = None, progress: bool = False,
                  net: SpikingNetwork | None = None) -> SpikingResult:
    """Train a spiking MLP with ``rule`` on ``data`` (inputs must lie in [0, 1]).

    ``net``: keep training this network (e.g. ``neurocredit.nir.load.load(...).to_network()``);
    ``hidden`` and ``cfg.spiking`` are then ignored."""
    from neurocredit.sim.train import check_loss
    cfg = cfg or SpikingTrainConfig()
    torch.manual_seed(cfg.seed)
    check_rule(rule)
    if net is None:
        net = SpikingNetwork([data.n_in, *hidden, data.n_out], rule, cfg.spiking, cfg.seed,
                             cfg.feedback_scale)
    elif net.sizes[0] != data.n_in or net.sizes[-1] != data.n_out:
        raise ValueError(f"network {net.sizes} does not fit data '{data.name}' "
                         f"({data.n_in} inputs, {data.n_out} outputs)")
    lr = cfg.lr * float(rule.param("lr_scale", 1.0))
    if cfg.weight_decay < 0:
        raise ValueError(f"weight_decay must be >= 0, got {cfg.weight_decay}")
    groups = [{"params": net.net.weight_params(), "lr": lr, "weight_decay": cfg.weight_decay}]
    if net.net.learned_feedback_params():
        groups.append({"params": net.net.learned_feedback_params(), "lr": lr * rule.feedback.lr_scale,
                       "weight_decay": 0.0})
    if cfg.optimizer not in OPTIMIZERS or cfg.schedule not in SCHEDULES:
        raise ValueError(f"optimizer must be one of {OPTIMIZERS} and schedule one of {SCHEDULES}, "
                         f"got {cfg.optimizer!r}, {cfg.schedule!r}")
    opt = (torch.optim.SGD(groups, lr=lr, momentum=cfg.momentum) if cfg.optimizer == "sgd"
           else torch.optim.Adam(groups, lr=lr))
    base_lrs = [g["lr"] for g in opt.param_groups]
    gen = torch.Generator().manual_seed(cfg.seed + 1)
    result = SpikingResult(net, cfg)
    n = data.x_train.shape[0]
    first = math.inf
    try:
        for epoch in range(1, cfg.epochs + 1):
            t0 = time.perf_counter()
            if cfg.schedule == "cosine":
                for g, base in zip(opt.param_groups, base_lrs):
                    g["lr"] = base * 0.5 * (1 + math.cos(math.pi * (epoch - 1) / cfg.epochs))
            perm = torch.randperm(n, generator=gen)
            running, batches = 0.0, 0
            for i in range(0, n, cfg.batch_size):
                idx = perm[i:i + cfg.batch_size]
                xb, yb = data.x_train[idx], data.y_train[idx]
                with torch.no_grad():
                    spikes = net.encode(xb, gen)
                    target = target_vector(yb, data.n_out, cfg.loss)
                    a = net.train_step(spikes, target, opt, cfg.loss, gen)
                    value = float(loss_value(a, yb, cfg.loss))
                    first = value if epoch == 1 and batches == 0 else first
                    check_loss(value, first, rule.name, epoch, batches, cfg.lr)   # NaN or explosion
                running += value
                batches += 1
            row = {"epoch": epoch, "train_loss": running / batches,
                   **evaluate_figures(net, data.x_test, data.y_test),
                   "epoch_seconds": time.perf_counter() - t0}
            result.history.append(row)
            if progress:
                print(f"  {rule.name} epoch {epoch}: loss {row['train_loss']:.4f} "
                      f"test {100 * row['test_acc']:.2f} %", flush=True)
    except KeyboardInterrupt as exc:   # the finished epochs stay with the caller (Ctrl-C)
        exc.partial_result = result
        raise
    return result


# --------------------------------------------------------------------------- checkpoints
CHECKPOINT = "spiking.pt"


def save_checkpoint(net: SpikingNetwork, folder, history: list[dict] | None = None):
    """Write ``folder/spiking.pt`` (the whole rule as data, sizes, config, weights and B)
    atomically; the rule travels in the file (a rule file's rule reloads without the file)."""
    from pathlib import Path

    from neurocredit.sim.checkpoint import write_checkpoint
    return write_checkpoint(Path(folder) / CHECKPOINT, "neurocredit.spiking", net, net.seed,
                            {"config": asdict(net.config),
                             "discretisation": net.disc.to_dict()}, history)


def load_checkpoint(folder) -> SpikingNetwork:
    """The network saved by :func:`save_checkpoint` (``folder`` or the .pt file itself)."""
    from pathlib import Path

    from neurocredit.sim.checkpoint import checkpoint_rule
    path = Path(folder)
    if path.is_dir():
        path = path / CHECKPOINT
    if not path.is_file():
        raise FileNotFoundError(f"no spiking checkpoint at {path} (written by `neurocredit export "
                                "--save-run DIR`)")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
        assert payload.get("format") == "neurocredit.spiking"
        net = SpikingNetwork(payload["sizes"], checkpoint_rule(payload),
                             SpikingConfig(**payload["config"]), seed=int(payload["seed"]))
        net.disc = L.get_discretisation(payload["discretisation"])
        net.load_state_dict(payload["state"])
    except Exception as exc:  # noqa: BLE001 - any corruption is the same user error
        raise ValueError(f"{path} is not a readable neurocredit spiking checkpoint: {exc}") from None
    return net
