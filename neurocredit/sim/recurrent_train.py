"""Training loop of the recurrent models (rate RNN, recurrent spiking network), any rule.

Local rules: the model's ``local_updates`` gives Δ per plastic connection (no autograd); the
optimiser receives −Δ as the gradient.  The BPTT reference (``dynamics='autograd'``) takes
its gradient from torch autograd through every time step (spiking: surrogate derivative).
The same optimiser, learning rate and initial weights serve every rule, so the figures compare
rules on the same network.
"""
from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import torch
from tqdm.auto import tqdm

from neurocredit.data import Dataset
from neurocredit.rules.rule import Rule
from neurocredit.sim.losses import loss_value, target_vector

MODELS = ("rnn", "rsnn")
CODINGS = ("current", "rate", "graded", "regular")
OPTIMIZERS = ("adam", "sgd")
SCHEDULES = ("none", "cosine")


@dataclass
class RecurrentTrainConfig:
    epochs: int = 10
    batch_size: int = 32
    lr: float = 1e-3
    optimizer: str = "adam"
    momentum: float = 0.9
    schedule: str = "none"            # 'none' | 'cosine' (lr → 0 over the run, per batch)
    warmup: float = 0.0               # epochs of linear lr warm-up from 0 (then the schedule)
    weight_decay: float = 0.0         # decoupled (AdamW) / L2 (SGD), on every weight alike
    seed: int = 0
    activation: str = "tanh"          # rate RNN
    rec_gain: float = 0.5             # initial recurrent weights × this
    rec_init: str = "uniform"         # rate RNN: 'uniform' (as W) | 'orthogonal' (gain = singular values)
    leak: float = 1.0                 # rate RNN: x[t] = (1 − leak) x[t−1] + leak f(a[t]); 1 = Elman
    clip: float = 0.0                 # clip the update's global norm to this (every rule alike; 0: off)
    beta1: float = 0.9                # Adam's moment decays
    beta2: float = 0.999
    neuron: str = "lif"               # RSNN: 'lif' | 'cubalif'
    beta: float = 0.9                 # RSNN membrane decay
    alpha: float = 0.8                # RSNN synaptic decay (cubalif)
    beta_out: float = 0.9             # RSNN readout decay
    threshold: float = 1.0
    surrogate_slope: float = 2.0
    input_gain: float = 1.0           # RSNN: inputs scaled as currents
    readout: str = "li"               # RSNN: 'li' (mean membrane) | 'lif' (spike count)
    adapt: float = 0.0                # RSNN: adaptive threshold rise β (ALIF; 0: plain LIF)
    tau_adapt: float = 28.0           # RSNN: adaptation time constant, steps
    adapt_fraction: float = 1.0       # RSNN: share of hidden neurons that adapt
    reset_trace: bool = False         # RSNN e-prop: membrane eligibility gated by the post spike's reset
    rate_reg: float = 0.0             # RSNN: firing-rate regularisation c Σ_j (f_j − f₀)² (every rule)
    rate_target: float = 0.02         # RSNN: f₀, spikes per step
    feedback_scale: float = 1.0
    progress: bool = True
    # the chip's conditions, one switch each (benchmarks/onchip_recurrent.py --twin; defaults: the paper's)
    input_coding: str = "current"     # 'current': x[t] injected as currents | 'rate': rate_coded spikes |
                                      # 'graded': each row held for row_steps steps (graded spikes, payload x) |
                                      # 'regular': regular_coded spikes (deterministic, evenly spaced)
    row_steps: int = 1                # 'rate': steps per row (sequence step) of the input
    blank: int = 0                    # silent steps appended to every sequence (the chip's blank)
    error: str = "sample"             # RSNN: 'sample' softmax error | 'step' the chip's per-step error
    target_delay: int = 0             # RSNN 'step' error: the target's delay in steps
    lr_decay: float = 1.0             # lr × lr_decay^(epoch − 1) (the chip's schedule; 1: off)
    learn_bias: bool = True           # False: biases stay as initialised (the chip learns no bias)


@dataclass
class RecurrentResult:
    net: torch.nn.Module
    config: RecurrentTrainConfig
    model: str
    history: list[dict] = field(default_factory=list)

    @property
    def final(self) -> dict:
        return self.history[-1] if self.history else {}

    def to_json(self) -> dict:
        return {"rule": self.net.rule.name, "model": self.model, "sizes": self.net.sizes,
                "config": asdict(self.config), "history": self.history}


DEFAULTS_FILE = Path(__file__).with_name("recurrent_defaults.toml")
OPTIMISER_FIELDS = ("lr", "schedule", "warmup", "epochs", "beta1", "beta2", "clip", "momentum",
                    "optimizer", "weight_decay")


def recurrent_defaults(model: str, rule: str, path: Path | str | None = None) -> dict:
    """The training defaults of ``model`` with ``rule`` from ``recurrent_defaults.toml``: the
    model's table (network and shared choices, 'hidden' included) updated by the rule's own
    table, which may hold only optimiser settings (:data:`OPTIMISER_FIELDS`): every rule of a
    model is compared on the same network."""
    import tomllib
    path = Path(path) if path is not None else DEFAULTS_FILE
    table = tomllib.loads(path.read_text())
    if model not in table:
        raise ValueError(f"no [{model}] table in {path} (known: {', '.join(table)})")
    base = {k: v for k, v in table[model].items() if k != "rules"}
    own = table[model].get("rules", {}).get(rule, {})
    bad = sorted(set(own) - set(OPTIMISER_FIELDS))
    if bad:
        raise ValueError(f"{path} [{model}.rules.{rule}] sets {', '.join(bad)}: a rule may set only "
                         f"its optimiser ({', '.join(OPTIMISER_FIELDS)}), the network is shared")
    fields = {f.name for f in dataclasses.fields(RecurrentTrainConfig)} | {"hidden"}
    unknown = sorted(set(base) - fields)
    if unknown:
        raise ValueError(f"{path} [{model}]: unknown field(s) {', '.join(unknown)}")
    return base | own


def default_config(model: str, rule: str, path: Path | str | None = None, **overrides
                   ) -> tuple[RecurrentTrainConfig, list[int]]:
    """(config, hidden sizes) of ``model`` with ``rule``: :func:`recurrent_defaults`, then
    ``overrides`` (config fields or 'hidden'; None values are ignored)."""
    values = recurrent_defaults(model, rule, path) | {k: v for k, v in overrides.items()
                                                      if v is not None}
    hidden = values.pop("hidden", 128)
    hidden = list(hidden) if isinstance(hidden, (list, tuple)) else [int(hidden)]
    return RecurrentTrainConfig(**values), hidden


def build_model(model: str, rule: Rule, sizes: list[int], cfg: RecurrentTrainConfig):
    """A fresh :class:`RateRNN` ('rnn') or :class:`RecurrentSpikingNetwork` ('rsnn')."""
    if model == "rnn":
        from neurocredit.sim.recurrent_rate import RateRNN
        return RateRNN(sizes, rule, cfg.activation, cfg.seed, cfg.rec_gain, cfg.feedback_scale,
                       cfg.rec_init, cfg.leak)
    if model == "rsnn":
        from neurocredit.sim.recurrent_spiking import RecurrentSpikingConfig, RecurrentSpikingNetwork
        scfg = RecurrentSpikingConfig(neuron=cfg.neuron, beta=cfg.beta, alpha=cfg.alpha,
                                      beta_out=cfg.beta_out, threshold=cfg.threshold,
                                      surrogate_slope=cfg.surrogate_slope,
                                      rec_gain=cfg.rec_gain, input_gain=cfg.input_gain,
                                      readout=cfg.readout, adapt=cfg.adapt,
                                      tau_adapt=cfg.tau_adapt, adapt_fraction=cfg.adapt_fraction,
                                      rate_reg=cfg.rate_reg, rate_target=cfg.rate_target,
                                      reset_trace=cfg.reset_trace, error=cfg.error,
                                      target_delay=cfg.target_delay, blank=cfg.blank)
        return RecurrentSpikingNetwork(sizes, rule, scfg, cfg.seed, cfg.feedback_scale)
    raise ValueError(f"unknown model '{model}'; known: {', '.join(MODELS)}")


def make_optimizer(net, rule: Rule, cfg: RecurrentTrainConfig) -> torch.optim.Optimizer:
    if cfg.optimizer not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer '{cfg.optimizer}'; known: {', '.join(OPTIMIZERS)}")
    lr = cfg.lr * float(rule.param("lr_scale", 1.0))
    groups = [{"params": net.weight_params(), "lr": lr}]
    learned = net.learned_feedback_params()
    if learned:
        groups.append({"params": learned, "lr": lr * rule.feedback.lr_scale})
    if cfg.optimizer == "adam":
        return torch.optim.AdamW(groups, lr=lr, betas=(cfg.beta1, cfg.beta2),
                                 weight_decay=cfg.weight_decay)
    return torch.optim.SGD(groups, lr=lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)


def lr_factor(step: int, total: int, warm: int, schedule: str) -> float:
    """lr multiplier at batch ``step`` of ``total``: linear warm-up (step+1)/warm over the first
    ``warm`` steps, then 1 ('none') or the cosine ½(1 + cos(π·s/(total − warm))) (Loshchilov &
    Hutter 2017) over the rest."""
    if step < warm:
        return (step + 1) / warm
    if schedule == "cosine":
        return 0.5 * (1 + math.cos(math.pi * min(step - warm, total - warm) / max(1, total - warm)))
    return 1.0


def lr_schedule(opt: torch.optim.Optimizer, cfg: RecurrentTrainConfig, steps_per_epoch: int
                ) -> torch.optim.lr_scheduler.LRScheduler | None:
    """The per-batch lr schedule of ``cfg`` (:func:`lr_factor`); None for a constant lr."""
    if cfg.schedule not in SCHEDULES:
        raise ValueError(f"unknown schedule '{cfg.schedule}'; known: {', '.join(SCHEDULES)}")
    if cfg.warmup < 0:
        raise ValueError(f"warmup must be >= 0 epochs, got {cfg.warmup}")
    total, warm = cfg.epochs * steps_per_epoch, round(cfg.warmup * steps_per_epoch)
    if cfg.schedule == "none" and warm == 0:
        return None
    if cfg.schedule == "cosine" and warm == 0:   # the run's original scheduler, unchanged
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total)
    return torch.optim.lr_scheduler.LambdaLR(
        opt, lambda step: lr_factor(step, total, warm, cfg.schedule))


def rate_coded(x: torch.Tensor, row_steps: int, blank: int, generator: torch.Generator | None = None
               ) -> torch.Tensor:
    """Spikes [N, R·row_steps + blank, n] of sequences ``x`` [N, R, n] with values in [0, 1]: row r
    rate-coded on steps [r·row_steps, (r+1)·row_steps), each step an independent Bernoulli draw with
    probability x[:, r] (as the chip's ``neurocredit.chip.session.sample_stream``), then ``blank``
    silent steps."""
    if row_steps < 1 or blank < 0:
        raise ValueError(f"rate coding needs row_steps >= 1 and blank >= 0, got {row_steps}, {blank}")
    if float(x.min()) < 0 or float(x.max()) > 1:
        raise ValueError(f"rate coding needs inputs in [0, 1] (spike probabilities), got "
                         f"[{float(x.min()):.3g}, {float(x.max()):.3g}]: use unstandardised pixels")
    p = x.repeat_interleave(row_steps, dim=1)
    spikes = (torch.rand(p.shape, generator=generator) < p).to(x.dtype)
    return torch.cat([spikes, spikes.new_zeros(x.shape[0], blank, x.shape[2])], dim=1)


def regular_coded(x: torch.Tensor, row_steps: int, blank: int) -> torch.Tensor:
    """Deterministic spikes [N, R·row_steps + blank, n] of sequences ``x`` [N, R, n] in [0, 1]: row r
    on steps j = 0..row_steps−1 of its slot, a spike where ⌊(j+1) x + ½⌋ > ⌊j x + ½⌋ (first-order
    sigma-delta: round(row_steps·x) spikes, evenly spaced, no sampling noise), then ``blank`` silent steps."""
    if row_steps < 1 or blank < 0:
        raise ValueError(f"regular coding needs row_steps >= 1 and blank >= 0, got {row_steps}, {blank}")
    if float(x.min()) < 0 or float(x.max()) > 1:
        raise ValueError(f"regular coding needs inputs in [0, 1], got [{float(x.min()):.3g}, {float(x.max()):.3g}]")
    j = torch.arange(row_steps, dtype=x.dtype).view(1, 1, -1, 1)
    xs = x.unsqueeze(2)
    spikes = (torch.floor((j + 1) * xs + 0.5) > torch.floor(j * xs + 0.5)).to(x.dtype)
    spikes = spikes.reshape(x.shape[0], -1, x.shape[2])
    return torch.cat([spikes, spikes.new_zeros(x.shape[0], blank, x.shape[2])], dim=1)


def coded_input(x: torch.Tensor, cfg: RecurrentTrainConfig, generator: torch.Generator | None = None
                ) -> torch.Tensor:
    """The sequences as the network receives them (``cfg.input_coding``): currents x (with ``blank``
    zero steps appended), :func:`rate_coded` spikes, or 'graded': row r held on steps
    [r·row_steps, (r+1)·row_steps) as its value (a graded spike carrying x, every step), then the blank."""
    if cfg.input_coding not in CODINGS:
        raise ValueError(f"unknown input coding '{cfg.input_coding}'; known: {', '.join(CODINGS)}")
    if cfg.input_coding == "rate":
        return rate_coded(x, cfg.row_steps, cfg.blank, generator)
    if cfg.input_coding == "regular":
        return regular_coded(x, cfg.row_steps, cfg.blank)
    if cfg.input_coding == "graded":
        x = x.repeat_interleave(cfg.row_steps, dim=1)
    if cfg.blank:
        return torch.cat([x, x.new_zeros(x.shape[0], cfg.blank, x.shape[2])], dim=1)
    return x


def evaluate(net, x: torch.Tensor, y: torch.Tensor, batch: int = 500) -> tuple[float, float]:
    """(test loss, test accuracy)."""
    total, correct = 0.0, 0
    with torch.no_grad():
        for i in range(0, x.shape[0], batch):
            out = net(x[i:i + batch])
            total += float(loss_value(out, y[i:i + batch], "ce")) * out.shape[0]
            correct += int((out.argmax(1) == y[i:i + batch]).sum())
    return total / x.shape[0], correct / x.shape[0]


def train_step(net, opt: torch.optim.Optimizer, xb: torch.Tensor, yb: torch.Tensor,
               n_out: int, clip: float = 0.0, learn_bias: bool = True) -> float:
    """One update on a batch; returns the batch loss (before the update).  ``clip`` > 0 scales
    the update (−Δ or ∇, all weights together) down to that global norm, for every rule alike."""
    opt.zero_grad(set_to_none=True)
    if net.rule.dynamics == "autograd":
        penalty = getattr(net, "rate_penalty", None)
        if penalty is not None and net.config.rate_reg > 0:   # the objective's regulariser
            rec = net.run(xb, surrogate=True)
            value = loss_value(net.readout(rec), yb, "ce")
            (value + penalty(rec)).backward()
        else:
            value = loss_value(net(xb), yb, "ce")
            value.backward()
        if not learn_bias:
            _drop_bias_grads(net)
        if clip > 0:
            torch.nn.utils.clip_grad_norm_(net.weight_params(), clip)
        opt.step()
        return float(value.detach())
    with torch.no_grad():
        target = target_vector(yb, n_out, "ce")
        updates, logits = net.local_updates(xb, target, "ce", scale=-1.0)
        for (w, b), (gw, gb) in zip(net.parameters_in_update_order(), updates):
            w.grad = gw
            if b is not None:
                b.grad = gb if learn_bias else None
        if clip > 0:
            torch.nn.utils.clip_grad_norm_(net.weight_params(), clip)
        opt.step()
        return float(loss_value(logits, yb, "ce"))


def _drop_bias_grads(net) -> None:
    """No update for the biases (``learn_bias`` False): their gradients removed."""
    for _, b in net.parameters_in_update_order():
        if b is not None:
            b.grad = None


def train_recurrent(rule: Rule, data: Dataset, hidden: list[int], model: str = "rnn",
                    cfg: RecurrentTrainConfig | None = None, net=None,
                    on_epoch: Callable[[int, object], dict] | None = None) -> RecurrentResult:
    """Train a recurrent ``model`` with ``rule`` on a temporal data set ([N, T, features]).

    ``on_epoch(epoch, net)`` may return extra figures logged in that epoch's row (e.g. the
    learning signal's alignment with BPTT).
    """
    from neurocredit.sim.train import check_loss
    cfg = cfg or RecurrentTrainConfig()
    if data.x_train.dim() != 3:
        raise ValueError(f"data set '{data.name}' is not a sequence set ([N, T, features]); "
                         "use seqdigits, rowmnist5k or spikepattern")
    if data.n_classes is None:
        raise ValueError("recurrent models are trained on classification sets")
    torch.manual_seed(cfg.seed)
    if net is None:
        net = build_model(model, rule, [data.n_features, *hidden, data.n_out], cfg)
    elif net.sizes[0] != data.n_features or net.sizes[-1] != data.n_out:
        raise ValueError(f"network {net.sizes} does not fit data '{data.name}' "
                         f"({data.n_features} inputs per step, {data.n_out} classes)")
    opt = make_optimizer(net, rule, cfg)
    gen = torch.Generator().manual_seed(cfg.seed + 1)
    result = RecurrentResult(net, cfg, model)
    n = data.x_train.shape[0]
    sched = lr_schedule(opt, cfg, math.ceil(n / cfg.batch_size))
    if cfg.lr_decay != 1.0 and (sched is not None or not 0 < cfg.lr_decay <= 1):
        raise ValueError(f"lr_decay {cfg.lr_decay} must be in (0, 1] and needs schedule 'none' without warm-up")
    base_lr = [g["lr"] for g in opt.param_groups]
    code_gen = torch.Generator().manual_seed(cfg.seed + 2)
    x_test = coded_input(data.x_test, cfg, torch.Generator().manual_seed(cfg.seed + 999))
    bar = tqdm(range(1, cfg.epochs + 1), desc=f"{model} {rule.name}", disable=not cfg.progress,
               leave=False)
    first = math.inf
    try:
        for epoch in bar:
            t0 = time.perf_counter()
            if cfg.lr_decay != 1.0:
                for g, lr0 in zip(opt.param_groups, base_lr):
                    g["lr"] = lr0 * cfg.lr_decay ** (epoch - 1)
            perm = torch.randperm(n, generator=gen)
            running, batches = 0.0, 0
            for i in range(0, n, cfg.batch_size):
                idx = perm[i:i + cfg.batch_size]
                value = train_step(net, opt, coded_input(data.x_train[idx], cfg, code_gen),
                                   data.y_train[idx], data.n_out, cfg.clip, cfg.learn_bias)
                first = value if epoch == 1 and batches == 0 else first
                check_loss(value, first, rule.name, epoch, batches, cfg.lr)   # NaN or explosion
                running += value
                batches += 1
                if sched is not None:
                    sched.step()
            test_loss, test_acc = evaluate(net, x_test, data.y_test)
            row = {"epoch": epoch, "train_loss": running / batches, "test_loss": test_loss,
                   "test_acc": test_acc, "epoch_seconds": time.perf_counter() - t0}
            if on_epoch is not None:
                row.update(on_epoch(epoch, net) or {})
            result.history.append(row)
            bar.set_postfix({"loss": f"{row['train_loss']:.3f}", "acc": f"{test_acc:.3f}"})
    except KeyboardInterrupt as exc:   # the finished epochs stay with the caller (Ctrl-C)
        exc.partial_result = result
        raise
    return result


RECURRENT_CHECKPOINT = "recurrent.pt"


def save_recurrent(net, folder) -> "Path":
    """Write ``folder/recurrent.pt`` atomically: model kind, rule (as data), sizes, config,
    seed and every tensor (weights, recurrent weights, feedback matrices)."""
    from neurocredit.sim.checkpoint import write_checkpoint
    kind = "rsnn" if hasattr(net, "hidden_params") else "rnn"
    config = asdict(net.config) if kind == "rsnn" else {"activation": net.net.activation,
                                                         "leak": net.leak}
    return write_checkpoint(Path(folder) / RECURRENT_CHECKPOINT, "neurocredit.recurrent", net,
                            net.seed, {"model": kind, "config": config})
