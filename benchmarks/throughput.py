"""Training throughput (samples/s) of every rule against a plain torch-autograd BP loop.

Both run in the same process on the same data (MNIST-5k inputs), interleaved batch by batch
(alternating which goes first) so that a neighbour stealing a core slows both alike; the
figure of merit is the ratio rule / autograd-BP of the summed step times, median over
repeats.  Architectures: 784-500-10 and 784-1000-1000-10.

    python benchmarks/throughput.py [--batch-size 64] [--repeats 5] [--rules fa,dfa]
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn

from neurocredit.data import load_mnist5k
from neurocredit.rules import RULES, get_rule
from neurocredit.sim.losses import loss_value
from neurocredit.sim.network import Network
from neurocredit.sim.train import TrainConfig, make_optimizer, train_step

ARCHS = {"784-500-10": [784, 500, 10], "784-1000-1000-10": [784, 1000, 1000, 10]}


def plain_bp(sizes: list[int], activation: str) -> tuple[nn.Module, torch.optim.Optimizer]:
    """The baseline: nn.Sequential of Linear layers, autograd, torch SGD with momentum."""
    act = {"relu": nn.ReLU, "tanh": nn.Tanh}[activation]
    mods: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        mods.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            mods.append(act())
    model = nn.Sequential(*mods)
    return model, torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)


def time_interleaved(step_a, step_b, x: torch.Tensor, y: torch.Tensor, batch: int
                     ) -> tuple[float, float]:
    """Samples/s of ``step_a`` and ``step_b`` over one pass, alternating them batch by batch."""
    ta = tb = 0.0
    for k, i in enumerate(range(0, x.shape[0], batch)):
        xb, yb = x[i:i + batch], y[i:i + batch]
        order = ((step_a, 0), (step_b, 1)) if k % 2 == 0 else ((step_b, 1), (step_a, 0))
        for step, which in order:
            t0 = time.perf_counter()
            step(xb, yb)
            dt = time.perf_counter() - t0
            if which == 0:
                ta += dt
            else:
                tb += dt
    return x.shape[0] / ta, x.shape[0] / tb


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rules", default=",".join(r for r in RULES if RULES[r].dynamics != "autograd"))
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--samples", type=int, default=2048)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--activation", default="relu")
    p.add_argument("--archs", default=",".join(ARCHS))
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    data = load_mnist5k(seed=0)
    x, y = data.x_train[:args.samples], data.y_train[:args.samples]
    print(f"torch threads: {torch.get_num_threads()}, batch {args.batch_size}, {args.samples} samples "
          f"per pass, {args.repeats} interleaved repeats, median ratio vs autograd BP")
    print("| net | rule | samples/s rule | samples/s autograd BP | ratio |\n|---|---|---|---|---|")
    for arch in args.archs.split(","):
        sizes = ARCHS[arch]
        for name in args.rules.split(","):
            rule = get_rule(name)
            net = Network(sizes, rule, args.activation, seed=0)
            opt = make_optimizer(net, rule, TrainConfig(lr=0.01))
            gen = torch.Generator().manual_seed(0)
            model, bp_opt = plain_bp(sizes, args.activation)

            def rule_step(xb, yb):
                train_step(net, opt, xb, yb, 10, "ce", gen)

            def bp_step(xb, yb):
                bp_opt.zero_grad(set_to_none=True)
                loss_value(model(xb), yb, "ce").backward()
                bp_opt.step()

            time_interleaved(rule_step, bp_step, x[:256], y[:256], args.batch_size)  # warm-up
            ours, base = [], []
            for _ in range(args.repeats):
                o, b = time_interleaved(rule_step, bp_step, x, y, args.batch_size)
                ours.append(o)
                base.append(b)
            ratio = statistics.median(o / b for o, b in zip(ours, base))
            print(f"| {arch} | {name} | {statistics.median(ours):.0f} | {statistics.median(base):.0f} "
                  f"| {ratio:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
