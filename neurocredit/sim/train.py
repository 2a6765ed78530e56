"""Training loop of the PyTorch backend: any rule, batched, CPU or CUDA.

Local rules: the error dynamics and terms give Δ (no autograd); the optimiser receives
−Δ as the gradient, so plain SGD gives W ← W + η Δ (momentum as configured).
The BP reference (``dynamics='autograd'``) takes its gradient from torch autograd.
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field

import torch
from tqdm.auto import tqdm

from neurocredit.data import Dataset
from neurocredit.rules.rule import Rule
from neurocredit.sim.losses import loss_value, target_vector
from neurocredit.sim.metrics import alignment
from neurocredit.sim.network import Network
from neurocredit.sim.updates import local_sgd_step, local_updates, sgd_fusable


class DivergenceError(RuntimeError):
    """Training produced a non-finite loss or weight, or a loss that exploded."""


# a batch loss above this many times the first batch's is an explosion, not noise
EXPLODE_FACTOR = 20.0


def check_loss(value: float, first: float, rule: str, epoch: int, batch: int, lr: float) -> None:
    """Stop a diverging run: NaN/inf, or a loss above :data:`EXPLODE_FACTOR` x the first
    batch's, with the rule, epoch and a suggestion."""
    if not math.isfinite(value):
        raise DivergenceError(f"training diverged: rule '{rule}', epoch {epoch}, batch {batch}: "
                              f"loss is {value} (lr {lr:g}); lower --lr (try {lr / 10:g})")
    if value > EXPLODE_FACTOR * max(first, 1e-6):
        raise DivergenceError(f"training diverged: rule '{rule}', epoch {epoch}, batch {batch}: "
                              f"loss {value:.4g} is over {EXPLODE_FACTOR:g} x the first batch's "
                              f"{first:.4g} (lr {lr:g}); lower --lr (try {lr / 10:g})")


@dataclass
class TrainConfig:
    epochs: int = 30
    batch_size: int = 32
    lr: float = 0.01
    momentum: float = 0.9
    loss: str = "ce"
    seed: int = 0
    device: str = "cpu"
    activation: str = "tanh"
    feedback_scale: float = 1.0
    metrics: bool = True
    metrics_batch: int = 512
    progress: bool = True


@dataclass
class TrainResult:
    net: Network
    config: TrainConfig
    history: list[dict] = field(default_factory=list)

    @property
    def final(self) -> dict:
        return self.history[-1] if self.history else {}

    def to_json(self) -> dict:
        return {"rule": self.net.rule.name, "sizes": self.net.sizes,
                "config": asdict(self.config), "history": self.history}


def resolve_device(device: str) -> torch.device:
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device '{device}' requested but CUDA is not available here")
    return torch.device(device)


def make_optimizer(net: Network, rule: Rule, cfg: TrainConfig) -> torch.optim.Optimizer:
    lr = cfg.lr * float(rule.param("lr_scale", 1.0))
    groups = [{"params": net.weight_params(), "lr": lr}]
    learned = net.learned_feedback_params()
    if learned:
        groups.append({"params": learned, "lr": lr * rule.feedback.lr_scale})
    return torch.optim.SGD(groups, lr=lr, momentum=cfg.momentum)


def evaluate(net: Network, data: Dataset, loss: str, batch: int = 2048) -> dict[str, float]:
    """Test loss, and accuracy for classification."""
    with torch.no_grad():
        total_loss, correct = 0.0, 0
        n = data.x_test.shape[0]
        for i in range(0, n, batch):
            xb, yb = data.x_test[i:i + batch], data.y_test[i:i + batch]
            out = net(xb)
            total_loss += float(loss_value(out, yb, loss)) * xb.shape[0]
            if data.n_classes is not None:
                correct += int((out.argmax(1) == yb).sum())
    res = {"test_loss": total_loss / n}
    if data.n_classes is not None:
        res["test_acc"] = correct / n
    return res


def train_step(net: Network, opt: torch.optim.Optimizer, xb: torch.Tensor, yb: torch.Tensor,
               n_out: int, loss: str, generator: torch.Generator) -> float:
    """One update on a batch; returns the batch loss (before the update)."""
    rule = net.rule
    if rule.dynamics == "autograd":
        opt.zero_grad(set_to_none=True)
        value = loss_value(net(xb), yb, loss)
        value.backward()
        opt.step()
        return float(value.detach())
    with torch.no_grad():
        target = target_vector(yb, n_out, loss)
        if sgd_fusable(opt):  # the SGD step fused into the update GEMMs (same arithmetic)
            state = local_sgd_step(net, opt, xb, target, loss, generator)
            return float(loss_value(state.cache.output, yb, loss))
        grads, state = local_updates(net, xb, target, loss, generator, scale=-1.0)
        for layer, gw, gb in zip(net.layers, grads.weight, grads.bias):
            layer.weight.grad = gw
            if gb is not None:
                layer.bias.grad = gb
        for l, gB in grads.feedback.items():
            net.B(l).grad = gB
        opt.step()
        return float(loss_value(state.cache.output, yb, loss))


def measure(net: Network, data: Dataset, cfg: TrainConfig) -> list[dict]:
    """Alignment metrics on the first ``metrics_batch`` training samples."""
    xb = data.x_train[:cfg.metrics_batch]
    yb = data.y_train[:cfg.metrics_batch]
    with torch.no_grad():
        target = target_vector(yb, data.n_out, cfg.loss)
        upd, state = local_updates(net, xb, target, cfg.loss)
    return alignment(net, xb, yb, cfg.loss, state.errors, upd.weight)


def train(rule: Rule, data: Dataset, hidden: list[int], cfg: TrainConfig | None = None,
          net: Network | None = None) -> TrainResult:
    """Train a network with ``rule`` on ``data``; metrics logged after every epoch."""
    cfg = cfg or TrainConfig()
    if data.n_classes is None and cfg.loss == "ce":
        cfg = TrainConfig(**{**asdict(cfg), "loss": "mse"})
    device = resolve_device(cfg.device)
    torch.manual_seed(cfg.seed)
    if net is None:
        net = Network([data.n_in, *hidden, data.n_out], rule, cfg.activation, cfg.seed,
                      cfg.feedback_scale)
    net = net.to(device)
    data = data.to(device)
    opt = make_optimizer(net, rule, cfg)
    gen = torch.Generator().manual_seed(cfg.seed + 1)
    result = TrainResult(net, cfg)
    n = data.x_train.shape[0]
    bar = tqdm(range(1, cfg.epochs + 1), desc=f"{rule.name}", disable=not cfg.progress,
               leave=False)
    first = math.inf
    try:
        _epochs(bar, net, opt, data, cfg, rule, gen, result, device, n, first)
    except KeyboardInterrupt as exc:   # the finished epochs stay with the caller (Ctrl-C)
        exc.partial_result = result
        raise
    return result


def _epochs(bar, net, opt, data, cfg, rule, gen, result, device, n, first) -> None:
    for epoch in bar:
        t0 = time.perf_counter()
        perm = torch.randperm(n, generator=gen).to(device)
        running, batches = 0.0, 0
        for i in range(0, n, cfg.batch_size):
            idx = perm[i:i + cfg.batch_size]
            value = train_step(net, opt, data.x_train[idx], data.y_train[idx], data.n_out,
                               cfg.loss, gen)
            first = value if epoch == 1 and batches == 0 else first
            check_loss(value, first, rule.name, epoch, batches, cfg.lr)
            running += value
            batches += 1
        row = {"epoch": epoch, "train_loss": running / batches,
               "epoch_seconds": time.perf_counter() - t0, **evaluate(net, data, cfg.loss)}
        if cfg.metrics:
            row["layers"] = measure(net, data, cfg)
        result.history.append(row)
        bar.set_postfix({k: f"{row[k]:.4f}" for k in ("train_loss", "test_acc") if k in row})
